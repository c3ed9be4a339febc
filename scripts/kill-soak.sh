#!/usr/bin/env bash
# The random-kill soak (issue 15): the real daemon, killed with SIGKILL at
# random moments while it works through rounds of packages, a recurring job
# and inventory reports, then checked against the reference server's records
# (tests/it/kill_soak.rs says how each figure is counted).
#
#   scripts/kill-soak.sh                 # 200 kills (a few minutes)
#   scripts/kill-soak.sh --kills 1000    # the full run of RELIABILITY.md
#   scripts/kill-soak.sh --seed 7        # other random delays
#
# Prints: kills, lost messages, duplicated messages, duplicated post-install
# runs, bytes fetched again. Exits non-zero unless the first three are 0.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

kills=200
seed=
while [ $# -gt 0 ]; do
    case "$1" in
        --kills) kills="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "kill-soak.sh: unknown argument $1 (try --help)" >&2; exit 64 ;;
    esac
done
case "$kills" in
    ''|*[!0-9]*) echo "kill-soak.sh: --kills needs a whole number, not '$kills'" >&2; exit 64 ;;
esac

export DMAGENT_SOAK_KILLS="$kills"
[ -n "$seed" ] && export DMAGENT_SOAK_SEED="$seed"
# The README's test build (--all-features), so nothing is built twice.
exec cargo test -p dmagent --all-features --locked --test it kill_soak::kill_soak \
    -- --ignored --nocapture --exact
