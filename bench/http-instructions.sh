#!/usr/bin/env bash
# Instructions per GET /<mac>.cfg executed in user space by sipprov and by the hyper floor
# (crates/server/examples/hyper_floor.rs), counted by valgrind's callgrind: unlike a rate, the
# count does not depend on what else the machine is doing. It leaves out the kernel (the same
# socket work for both) and the cost of waiting.
#
# Each server runs under callgrind with instrumentation off; the devices' files are fetched once
# (the render cache is warm), then instrumentation is switched on for N requests over one
# kept-alive connection (random known devices among 1,000 of 10,000, Yealink User-Agent naming
# the MAC; for Digest, SHA-256 qop=auth with nc = 1, 2, …), and the counts are dumped per thread.
# "request path" is the thread that runs the connections (the runtime's, one CPU); "all threads"
# adds the fetch record's writer and SQLite. Prints a Markdown table on stdout.
#
#   bash bench/http-instructions.sh [N=3000]
#   SIPPROV_BIN=/path/to/sipprov bash bench/http-instructions.sh   (counts another build, e.g. a
#   commit's binary kept aside, against this checkout's hyper floor)
#   CALLGRIND_KEEP=DIR bash bench/http-instructions.sh   (keeps the callgrind dumps in DIR, for
#   callgrind_annotate)
#   UNCACHED=1 bash bench/http-instructions.sh 1000   (the render cache off, `[cache] max_bytes
#   = 0`: every request renders its file, as nearly every fetch does when a million devices
#   fetch at random; SHA-256 then counts in software, valgrind not running the CPU's SHA
#   instructions)
#
# Needs valgrind and python3. Loopback only; every loop is bounded in count and time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-3000}
work=$(mktemp -d /tmp/sipprov-httprefs.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
# Two builds: one `cargo build -p A -p B --example E` applies `--example` to both packages and
# builds no `sipprov` binary, so a run counted whatever binary was built before.
cargo build --release --locked -q -p sipprov
cargo build --release --locked -q -p sipprov-server --example hyper_floor
bin=${SIPPROV_BIN:-$root/target/release/sipprov}
floor="$root/target/release/examples/hyper_floor"
client="$root/bench/http/instr_client.py"
# One runtime thread, as when sipprov is pinned to one CPU: every connection on one thread.
export SIPPROV_RUNTIME=current-thread

python3 - "$work/devices.csv" "$work/macs.txt" <<'PY'
import random, sys
with open(sys.argv[1], "w") as f:
    f.write("mac,vendor,model,group,line.1.username,line.1.password,line.1.registrar,line.1.display_name\n")
    for i in range(10000):
        f.write(f"001565{i:06x},yealink,T46S,g{i % 20},{10000 + i},pw{i:08d},pbx.example.com,User {i}\n")
with open(sys.argv[2], "w") as m:
    for i in random.Random(7).sample(range(10000), 1000):
        m.write(f"001565{i:06x}\n")
PY
printf '[security]\nfirst_fetch_window_secs = 0\nmax_failures = 1000000\n' > "$work/digest.toml"
: > "$work/none.toml"
if [ "${UNCACHED:-0}" = 1 ]; then
  for f in digest none; do printf '[cache]\nmax_bytes = 0\n' >> "$work/$f.toml"; done
fi
wait_for() { for _ in $(seq 1 1200); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
field() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
common="provisioning.url=http://prov.example.com/ time.ntp_server=pool.ntp.org http.username=fleet http.password=bench-secret"
for kind in open digest; do # two data directories: files open to all, and Digest required
  d="$work/$kind"; mkdir -p "$d"
  SIPPROV_LOG=warn "$bin" serve --config "$work/$([ "$kind" = digest ] && echo digest || echo none).toml" --data-dir "$d" \
    --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 2>>"$d/server.log" &
  pid=$!
  wait_for "$d/listening.json"
  api=$(field "$d/listening.json" api)
  "$bin" device import "$work/devices.csv" --api "http://$api" --data-dir "$d" >/dev/null
  extra=$([ "$kind" = digest ] && echo http.auth=digest || echo security.open_device_files=1)
  # shellcheck disable=SC2086 # a list of settings
  "$bin" settings set $common "$extra" --api "http://$api" --data-dir "$d" >/dev/null
  http=$(field "$d/listening.json" http)
  [ "$kind" = open ] && python3 "$client" "$http" "$work/macs.txt" 1 1 sample > "$work/floor.cfg"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$d/listening.json"
done

measure() { # label kind → "request-path all-threads" instructions per request
  local out="$work/cg-$1" pid host mode
  mkdir -p "$out"
  local vg=(valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes --callgrind-out-file="$out/cg.out")
  if [ "$2" = floor ]; then
    "${vg[@]}" "$floor" 127.0.0.1:18096 "$work/floor.cfg" 2>"$out/vg.log" &
    pid=$! host=127.0.0.1:18096 mode=open
    for _ in $(seq 1 300); do python3 -c "import socket;socket.create_connection(('127.0.0.1',18096))" 2>/dev/null && break; sleep 0.2; done
  else
    cp -a "$work/$2" "$out/data"
    SIPPROV_LOG=warn "${vg[@]}" "$bin" serve --config "$work/$([ "$2" = digest ] && echo digest || echo none).toml" \
      --data-dir "$out/data" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 2>"$out/vg.log" &
    pid=$!
    wait_for "$out/data/listening.json"
    host=$(field "$out/data/listening.json" http)
    mode=$2
    python3 "$client" "$host" "$work/macs.txt" 0 1 "${2}all" # warm the render cache
  fi
  sleep 1
  callgrind_control -i on "$pid" >/dev/null
  python3 "$client" "$host" "$work/macs.txt" "$n" 42 "$mode"
  callgrind_control -d "$pid" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$out" "$n" <<'PY'
import glob, re, sys
out, n = sys.argv[1], int(sys.argv[2])
totals = []
for f in glob.glob(f"{out}/cg.out.1-*"):
    m = re.search(r"^summary: (\d+)", open(f).read(), re.M)
    if m: totals.append(int(m[1]))
print(max(totals) // n, sum(totals) // n)
PY
}
read -r f_path f_all < <(measure floor floor)
read -r o_path o_all < <(measure open open)
read -r d_path d_all < <(measure digest digest)
if [ -n "${CALLGRIND_KEEP:-}" ]; then mkdir -p "$CALLGRIND_KEEP" && cp -a "$work"/cg-* "$CALLGRIND_KEEP"/; fi
echo "| server, $n requests | request path, instructions per request | all threads | request path / floor |"
echo "|---|---|---|---|"
echo "| hyper floor | $f_path | $f_all | 1.00x |"
python3 -c "import sys; f=$f_path; print(f'| sipprov, files open | $o_path | $o_all | {$o_path/f:.2f}x |'); print(f'| sipprov, Digest SHA-256 | $d_path | $d_all | {$d_path/f:.2f}x |')"
echo
echo "- callgrind $(valgrind --version | sed 's/valgrind-//'), $(if [ -n "${SIPPROV_BIN:-}" ]; then echo "binary $SIPPROV_BIN"; else git rev-parse --short HEAD; fi); one kept-alive connection, sequential requests$([ "${UNCACHED:-0}" = 1 ] && echo "; render cache off (every request renders)")"
