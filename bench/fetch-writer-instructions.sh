#!/usr/bin/env bash
# Instructions the fetch log spends on steady polling, per device and round, by thread: DEVICES
# devices each fetching FETCHES times a round (crates/server/examples/fetch_writer.rs: the
# request path's record, the writer's merge and plan, SQLite's statements), counted by callgrind
# as the difference between a run of ROUNDS rounds and a run of none. Each round is one interval
# of the writer; MODE=flush ends each round with a flush instead, which writes the last-seen and
# fetched rows of device_files too (under load they follow every 10 s, a tenth of the intervals).
# Counted, not timed: the figure does not depend on what else the machine runs.
#
#   bash bench/fetch-writer-instructions.sh [DEVICES=10000] [ROUNDS=5] [FETCHES=5] [MODE=tick|flush]
#   FW_BIN=/path/to/fetch_writer bash bench/fetch-writer-instructions.sh   (another build)
#
# Needs valgrind. Writes only to a temporary directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-10000}
rounds=${2:-5}
fetches=${3:-5}
mode=${4:-tick}
work=$(mktemp -d /tmp/sipprov-fw.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$root"
if [ -z "${FW_BIN:-}" ]; then
  cargo build --release --locked -q -p sipprov-server --example fetch_writer
fi
bin=${FW_BIN:-$root/target/release/examples/fetch_writer}
count() { # rounds → "recording writer sqlite" instructions
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg.$1" "$bin" "$devices" "$1" "$fetches" "$mode" \
    >/dev/null 2>"$work/vg.$1"
  python3 - "$work" "$1" <<'PY'
import glob, re, sys
work, rounds = sys.argv[1], sys.argv[2]
main = writer = other = 0
for f in glob.glob(f"{work}/cg.{rounds}*"):
    text = open(f).read()
    m = re.search(r"^summary: (\d+)", text, re.M)
    n = int(m[1]) if m else 0
    if f.endswith("-01"):
        main += n
    elif "write_interval" in text:  # the writer's thread
        writer += n
    else:
        other += n
print(main, writer, other)
PY
}
read -r m0 w0 o0 < <(count 0)
read -r m1 w1 o1 < <(count "$rounds")
echo "| devices, fetches a round, mode | recording (request path) | writer thread | other threads (SQLite) | per device and round, all |"
echo "|---|---|---|---|---|"
python3 -c "
d=$devices*$rounds
print(f'| $devices, $fetches, $mode | {($m1-$m0)/d:,.0f} | {($w1-$w0)/d:,.0f} | {($o1-$o0)/d:,.0f} | {($m1+$w1+$o1-$m0-$w0-$o0)/d:,.0f} |')"
echo
echo "- callgrind $(valgrind --version | sed 's/valgrind-//'), $(if [ -n "${FW_BIN:-}" ]; then echo "binary $FW_BIN"; else git rev-parse --short HEAD; fi); $rounds rounds against none"
