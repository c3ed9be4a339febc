#!/bin/sh
# Builds the Debian package: the agent and the first-party plugins, then
# cargo-deb (which builds only the agent itself). Writes
# target/debian/dmagent_<version>_<arch>.deb.
#
#   packaging/build-deb.sh                   # release profile
#   packaging/build-deb.sh --profile dev --no-build --fast
#                                            # the test: packs what it built
#
# Other arguments go to `cargo deb` (--deb-version V, --output DIR, --fast).
set -eu
cd "$(dirname "$0")/.."

profile=release
build=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile=$2; shift 2 ;;
        --no-build) build=no; shift ;;
        *) break ;;
    esac
done
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "build-deb.sh: cargo-deb is missing: cargo install --locked cargo-deb" >&2
    exit 1
fi
if [ "$build" = yes ]; then
    cargo build --locked --quiet --profile "$profile" -p dmagent \
        -p dmagent-plugin-exec -p dmagent-plugin-archive \
        -p dmagent-plugin-machine-inventory -p dmagent-plugin-software-inventory \
        -p dmagent-plugin-file-collection -p dmagent-plugin-dpkg-inventory
fi
exec cargo deb --no-build --quiet --profile "$profile" -p dmagent "$@"
