# Shared by the scripts that drive a throw-away dm-server (source it).
#
#   start_dm_server NAME CATALOG TRIES
#
# Starts target/debug/dm-server on 127.0.0.1:0 with CATALOG and state under
# $work, waits up to TRIES × 0.1 s for its "listening on" line, and sets $pid
# and $url. Expects $root and $work to be set; NAME prefixes error messages.
start_dm_server() {
    local name=$1 catalog=$2 tries=$3
    "$root/target/debug/dm-server" --catalog "$catalog" --state "$work/state" \
        --listen 127.0.0.1:0 >"$work/stdout" 2>"$work/stderr" &
    pid=$!
    for _ in $(seq "$tries"); do
        grep -q '^listening on ' "$work/stdout" 2>/dev/null && break
        sleep 0.1
    done
    url="$(head -1 "$work/stdout" | sed 's/^listening on //')"
    [ -n "$url" ] || { echo "$name: the server did not start" >&2; cat "$work/stderr" >&2; exit 1; }
}
