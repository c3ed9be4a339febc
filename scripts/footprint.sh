#!/usr/bin/env bash
# Footprint of the agent: stripped release size of `dmagent` and resident
# memory of `dmagent run` idling with its actor system and database up.
# Usage: scripts/footprint.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p dmagent --locked >&2
bin=target/release/dmagent
size=$(stat -c %s "$bin")
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
cat > "$tmp/local.toml" <<CONF
[server]
url = "http://127.0.0.1:9/devicemgmt/server.aspx"
[identity]
source = "configured"
device_id = "FOOTPRINT-1"
[paths]
state_dir = "$tmp/state"
download_root = "$tmp/state/packages"
plugin_dir = "$tmp/plugins"
CONF
"$bin" --no-system-config --config "$tmp/local.toml" run 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/state/dmagent.sock" ] && break; sleep 0.1; done
"$bin" --no-system-config --config "$tmp/local.toml" status >/dev/null   # one request served
samples=()
for _ in 1 2 3 4 5; do
    sleep 1
    samples+=("$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")")
done
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
sorted=$(printf '%s\n' "${samples[@]}" | sort -n)
median=$(echo "$sorted" | sed -n 3p)
awk -v s="$size" 'BEGIN { printf "binary   %d bytes (%.2f MB), stripped release target/release/dmagent\n", s, s / 1e6 }'
awk -v m="$median" -v h="$hwm" -v all="$(echo $sorted | tr ' ' ',')" \
    'BEGIN { printf "idle RSS median %d KiB (%.2f MB) of 5 samples [%s], peak %d KiB\n", m, m * 1024 / 1e6, all, h }'
# Where the last sample lives: file-backed pages (code and read-only data of
# the binary and the shared libraries) versus anonymous memory (heap, stacks,
# relocated data), per mapping, and how many threads are up.
awk '/^RssAnon|^RssFile/ {printf "  %s %d KiB", $1, $2} END {print ""}' "/proc/$pid/status"
awk -v bin="$(realpath "$bin")" '
    /^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "") ? "[anon]" : $6; if (name == bin) name = "dmagent" }
    /^Rss:/ { rss[name] += $2 }
    /^Anonymous:/ { anon[name] += $2 }
    END { for (n in rss) if (rss[n] > 0) printf "    %6d KiB (%d anon) %s\n", rss[n], anon[n], n }' \
    "/proc/$pid/smaps" | sort -rn
echo "  threads $(ls "/proc/$pid/task" | wc -l): $(cat /proc/$pid/task/*/comm | sort | uniq -c | awk '{printf "%s%s x%d", sep, $2, $1; sep=", "}')"
