#!/usr/bin/env bash
# Instructions the store spends on one fetch-log interval under steady polling: DEVICES devices,
# each with an open fetch event raised once per interval (crates/store/examples/fetch_interval.rs),
# counted by callgrind over every thread (the statements run on sqlx's SQLite worker), as the
# difference between a run of INTERVALS intervals and a run of none, divided by INTERVALS.
# Counted, not timed: the figure does not depend on what else the machine runs.
#
#   bash bench/fetch-interval-instructions.sh [DEVICES=10000] [INTERVALS=5]
#   FI_BIN=/path/to/fetch_interval bash bench/fetch-interval-instructions.sh   (another build)
#
# Needs valgrind. Writes only to a temporary directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-10000}
intervals=${2:-5}
work=$(mktemp -d /tmp/sipprov-fi.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$root"
if [ -z "${FI_BIN:-}" ]; then
  cargo build --release --locked -q -p sipprov-store --example fetch_interval
fi
bin=${FI_BIN:-$root/target/release/examples/fetch_interval}
count() { # intervals → instructions over every thread
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" "$bin" "$devices" "$1" >/dev/null 2>"$work/vg.$1"
  awk '/^summary:/ {s += $2} END {print s}' "$work"/cg."$1"*
}
none=$(count 0)
some=$(count "$intervals")
echo "| devices | instructions per interval (all threads) | per device |"
echo "|---|---|---|"
python3 -c "d=($some-$none)/$intervals; print(f'| $devices | {d:,.0f} | {d/$devices:,.0f} |')"
echo
echo "- callgrind $(valgrind --version | sed 's/valgrind-//'), $(if [ -n "${FI_BIN:-}" ]; then echo "binary $FI_BIN"; else git rev-parse --short HEAD; fi); $intervals intervals against none"
