#!/usr/bin/env bash
# Measures dm-server's memory while it serves a 1 GiB package.
#
#   scripts/server-memory.sh [SIZE]      (default SIZE 1G; any `truncate -s` size)
#
# Makes a catalog with one sparse package file of SIZE, starts dm-server
# (debug build) on 127.0.0.1:0, downloads the package with curl to
# /dev/null, and prints VmRSS / VmHWM from /proc/PID/status: before the
# download, every 0.5 s during it, and after it. Needs curl.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/scripts/lib/dm-server.sh"
size="${1:-1G}"
command -v curl >/dev/null || { echo "server-memory: curl is not installed" >&2; exit 1; }
cargo build -q -p dm-server --manifest-path "$root/Cargo.toml"
work="$(mktemp -d)"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/catalog/packages" "$work/catalog/files"
truncate -s "$size" "$work/catalog/files/huge.bin"
cat >"$work/catalog/packages/huge.toml" <<TOML
id = "HUGE"
file = "files/huge.bin"
TOML
cat >"$work/catalog/catalog.toml" <<TOML
[[assign]]
all = true
packages = ["HUGE"]
TOML
mem() { awk '/^VmRSS|^VmHWM/ {printf "%s %s %s  ", $1, $2, $3}' "/proc/$pid/status"; echo; }
start=$(date +%s%N)
start_dm_server server-memory "$work/catalog" 600
echo "catalog loaded (SHA-256 of $size computed) in $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo -n "before:  "; mem
curl -sS -o /dev/null -w 'curl: %{http_code} %{size_download} bytes in %{time_total} s\n' \
    "$url/packages/HUGE/huge.bin" >"$work/curl.out" &
cpid=$!
while kill -0 "$cpid" 2>/dev/null; do
    echo -n "during:  "; mem
    sleep 0.5
done
wait "$cpid"
cat "$work/curl.out"
echo -n "after:   "; mem
