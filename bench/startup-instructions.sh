#!/usr/bin/env bash
# Instructions a start-up costs, from process start to listening, with DEVICES devices (Yealink
# T46S, four settings each, a contact, twenty groups, as bench/scale.sh imports them), counted by
# valgrind's callgrind over every thread: unlike the start-up time bench/scale.sh reports, the
# count does not depend on what else the machine runs. Each binary is counted RUNS times (the
# runs differ only by a few thousand instructions of thread start-up) and the smallest is kept.
# Prints a Markdown table on stdout, with where the instructions went for the last binary: the
# inventory load, sqlx's row handling, the settings' JSON, the access posture.
#
#   bash bench/startup-instructions.sh [DEVICES=100000] [RUNS=1] [BIN...]
#
# With no BIN, this tree's release build (built first). Give two binaries (e.g. a commit's kept
# aside and this tree's) to compare them on the same data directory, back to back.
#
# Needs valgrind (callgrind_control, callgrind_annotate) and python3. Loopback only; every wait
# is bounded.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-100000}
runs=${2:-1}
shift $(($# < 2 ? $# : 2))
work=$(mktemp -d /tmp/sipprov-startup.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
if [ $# -eq 0 ]; then
  cargo build --release --locked -q -p sipprov
  set -- "${CARGO_TARGET_DIR:-$root/target}/release/sipprov"
fi

python3 - "$devices" "$work/devices.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("mac,vendor,model,group,contact,line.1.username,line.1.password,line.1.registrar,line.1.display_name\n")
    for i in range(n):
        f.write(f"{0x001565000000 + (i * 2654435761) % (1 << 24):012x},yealink,T46S,g{i % 20},sip:{i}@127.0.0.1:5060,"
                f"{10000 + i},pw{i:08d},pbx.example.com,User {i}\n")
PY

serve() { # binary data-dir [valgrind args...] → starts the server in the background, PID in $pid
  local bin=$1 data=$2
  shift 2
  rm -f "$data/listening.json"
  SIPPROV_LOG=warn "$@" "$bin" serve --data-dir "$data" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --sip-listen 127.0.0.1:0 >/dev/null 2>>"$work/server.log" &
  pid=$!
  for _ in $(seq 1 6000); do [ -s "$data/listening.json" ] && return 0; sleep 0.05; done
  echo "the server did not start listening; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
}

# The data directory, made once with the first binary (the real CLI's streamed import).
data="$work/data"
mkdir -p "$data"
serve "$1" "$data"
api=$(python3 -c "import json;print(json.load(open('$data/listening.json'))['api'])")
"$1" device import "$work/devices.csv" --api "http://$api" --data-dir "$data" >/dev/null
"$1" settings set provisioning.url=http://prov.example.com/ security.open_device_files=1 \
  --api "http://$api" --data-dir "$data" >/dev/null
kill "$pid"
wait "$pid" 2>/dev/null || true

count() { # binary → instructions from process start to listening, all threads
  local out="$work/cg.$RANDOM"
  serve "$1" "$data" valgrind --tool=callgrind --separate-threads=no --callgrind-out-file="$out"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  local dump
  dump=$(ls "$out".* | head -1)
  cp "$dump" "$work/last.cg"
  awk '/^summary:/ {print $2}' "$dump"
}

echo "bash bench/startup-instructions.sh $devices $runs on $(date -u '+%Y-%m-%d %H:%M UTC'), callgrind $(valgrind --version | cut -d- -f2)"
echo
echo "| binary | instructions, process start to listening | per device |"
echo "|---|---|---|"
for bin in "$@"; do
  best=""
  for _ in $(seq 1 "$runs"); do
    n=$(count "$bin")
    if [ -z "$best" ] || [ "$n" -lt "$best" ]; then best=$n; fi
  done
  python3 -c 'import sys; b, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); print(f"| {b} | {n:,} | {n // d:,} |")' \
    "$bin" "$best" "$devices"
done
echo
echo "Where the last binary's went (inclusive, per device):"
echo
# From /: run inside the checkout, callgrind_annotate shows some functions under relative paths
# and splits their counts.
(cd / && callgrind_annotate --inclusive=yes "$work/last.cg" 2>/dev/null) | python3 -c '
import re, sys
n = int(sys.argv[1])
wanted = [
    ("wiring.rs:sipprov_server::wiring::open_core::{{closure}} [", "opening the store and loading everything"),
    ("sqlx_sqlite::row::SqliteRow::current [", "sqlx: copying each row'"'"'s values (worker thread)"),
    ("drop_in_place<sqlx_sqlite::row::SqliteRow>", "sqlx: freeing them"),
    ("sqlx_core::row::Row::try_get [", "sqlx: reading a column"),
    ("sorted_map.rs:<sipprov_model::sorted_map::MapVisitor as serde_core::de::Visitor>::visit_map [", "settings JSON into the sorted map"),
    ("posture.rs:sipprov_server::auth::posture::assess [", "access posture"),
]
seen = set()
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
    if not m:
        continue
    for key, label in wanted:
        if key in m[2] and label not in seen:
            seen.add(label)
            count = int(m[1].replace(",", ""))
            print(f"- {label}: {count // n:,}")
' "$devices"
