#!/usr/bin/env bash
# A private PostgreSQL server for the tests and benches: its own data
# directory, listening on a Unix socket only (no TCP port to collide with
# other processes). Idempotent: starts it if it is not running, then prints
# the admin URL (database `postgres`) on stdout.
#
#   scripts/test-postgres.sh          # start (or find) it, print the URL
#   scripts/test-postgres.sh stop     # stop it and delete its data
#
# Needs Debian's `postgresql` package (initdb, pg_ctl); .ci/run installs it.
# As root, the server runs as the `postgres` user: initdb refuses root.
set -euo pipefail

base=${DM_TEST_PG_DIR:-/tmp/dm-test-postgres-$(id -u)}
data=$base/data
sock=$base/sock

bindir=
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then bindir=$d; break; fi
done
if [ -z "$bindir" ]; then
    echo "test-postgres: no PostgreSQL server found (/usr/lib/postgresql/*/bin/initdb):" \
         "install Debian's postgresql package, or set DM_TEST_POSTGRES to a server's URL" >&2
    exit 1
fi

as_owner=()
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
    owner=postgres
    as_owner=(runuser -u postgres --)
fi

pg_ctl() { "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" "$@"; }

url() {
    # The socket directory percent-encoded as the URL's host.
    local host=${sock//\//%2F}
    echo "postgresql://$owner@$host/postgres"
}

if [ "${1:-start}" = stop ]; then
    if [ -d "$data" ]; then pg_ctl stop -m immediate >/dev/null 2>&1 || true; fi
    rm -rf "$base"
    exit 0
fi

if [ -d "$data" ] && pg_ctl status >/dev/null 2>&1; then
    url
    exit 0
fi

mkdir -p "$base"
if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data" "$sock"
    mkdir -p "$data" "$sock"
    chmod 700 "$data"
    if [ "$owner" != "$(id -un)" ]; then chown -R "$owner" "$base"; fi
    "${as_owner[@]}" "$bindir/initdb" -D "$data" -U "$owner" --auth=trust \
        --no-sync -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 || {
        cat "$base/initdb.log" >&2
        exit 1
    }
fi
# Loopback is not listened on at all; fsync stays on (the crash tests
# depend on commits being durable); enough connections for replica tests.
pg_ctl start -w -t 60 -l "$base/server.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$sock' -c max_connections=200" \
    >/dev/null || {
    cat "$base/server.log" >&2
    exit 1
}
url
