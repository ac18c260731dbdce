#!/usr/bin/env bash
# Where a campaign's CPU goes outside user space: the SQLite workers' file system calls and the
# server's threads' CPU, per campaign, as bench/sip.sh's part 1 runs it. Counts, not timing.
#
#   bash bench/campaign-io.sh [DEVICES=20000] [ROUNDS=3]     (SIPPROV_BIN=path: that binary)
#
# Starts SIPp phones answering at once (pinned to CPU 1) and a server (pinned to CPU 0) with
# DEVICES devices whose contacts are those phones, runs one warm-up campaign (so that every
# connection's worker thread exists: `perf trace -p` follows only the threads present when it
# attaches), then ROUNDS campaigns through bench/campaign_round.py, each under
# `perf trace -e pwrite64,pread64,openat,fsync,unlink`. For each it prints the round's figures
# (NOTIFYs/s to the last sent and to every outcome recorded, server CPU µs per NOTIFY), the
# calls per file (the database, its WAL, other files: temporary ones) and each thread's user
# and system CPU from /proc. The counts depend a little on the machine's speed (a slower run
# writes smaller outcome batches); the rates and CPU are timings, and as noisy as the machine.
#
# Needs perf (linux-perf) and the right to trace system calls (root, or
# kernel.perf_event_paranoid <= -1), sipp (Debian sip-tester), python3, taskset. Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-20000}
rounds=${2:-3}
work=$(mktemp -d /tmp/sipprov-campaign-io.XXXXXX)
# Every process this script starts is one of its background jobs, stopped by its id.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
cd "$root"
source "$root/bench/sipprov-bin.sh"
if [ "$(nproc)" -ge 2 ]; then PHONE_CPU=(taskset -c 1); SERVER_CPU=(taskset -c 0); else PHONE_CPU=(); SERVER_CPU=(); fi
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${PHONE_CPU[@]}" sipp -sf bench/sipp/uas_200_now.xml -i 127.0.0.1 -p "$port" -t u1 -buff_size 4194304 \
  -m $((n * (rounds + 2))) -nostdin >/dev/null 2>&1 &
sleep 0.5
data="$work/data"; mkdir -p "$data"
SIPPROV_LOG=warn "${SERVER_CPU[@]}" "$bin" serve --data-dir "$data" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
  --sip-listen 127.0.0.1:0 2>>"$data/server.log" &
pid=$!
for _ in $(seq 1 600); do [ -s "$data/listening.json" ] && break; sleep 0.05; done
api=$(python3 -c "import json;print(json.load(open('$data/listening.json'))['api'])")
python3 - "$n" "$port" "$work/devices.csv" <<'PY'
import sys
n, port, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(path, "w") as f:
    f.write("mac,vendor,model,group,contact,line.1.username,line.1.password,line.1.registrar\n")
    for i in range(n):
        f.write(f"001565{i:06x},yealink,T46S,fleet,sip:{i}@127.0.0.1:{port},{i},pw{i:08d},pbx.example.com\n")
PY
"$bin" device import "$work/devices.csv" --api "http://$api" --data-dir "$data" >/dev/null

threads() { # → "tid comm utime stime" per thread of the server, in clock ticks
  for t in /proc/"$pid"/task/*; do
    s=$(cat "$t/stat" 2>/dev/null) || continue
    # Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    read -r -a f <<<"${s##*) }"
    echo "${t##*/} $(tr ' ' '_' <"$t/comm") ${f[11]} ${f[12]}"
  done
}
round() { python3 bench/campaign_round.py "$api" "$data" fleet "$n" "$pid"; }
echo "bash bench/campaign-io.sh $n $rounds, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
round >/dev/null
for r in $(seq 1 "$rounds"); do
  threads >"$work/before"
  perf trace -p "$pid" -e pwrite64,pread64,openat,fsync,unlink -o "$work/trace.txt" 2>/dev/null &
  tracer=$!
  sleep 0.5
  figures=$(round)
  sleep 0.2
  kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
  threads >"$work/after"
  echo
  echo "round $r: $figures (NOTIFYs/s to the last sent, to every outcome recorded; server CPU µs per NOTIFY)"
  python3 - "$pid" "$work/trace.txt" "$work/before" "$work/after" "$(getconf CLK_TCK)" <<'PY'
import collections, os, re, sys
pid, trace, before, after, tck = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
kinds = {}
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    kinds[int(fd)] = "wal" if target.endswith("-wal") else "shm" if target.endswith("-shm") else "db" if target.endswith(".db") else None
calls = collections.Counter()
for line in open(trace):
    m = re.search(r" (pwrite64|pread64|openat|fsync|unlink)\((?:fd: (\d+))?", line)
    if m:
        kind = (kinds.get(int(m.group(2))) or "other") if m.group(2) else ""
        calls[f"{m.group(1)} {kind}".strip()] += 1
print("  file calls: " + ", ".join(f"{k} {v:,}" for k, v in sorted(calls.items())))
was = {l.split()[0]: l.split() for l in open(before)}
for line in open(after):
    tid, comm, u, s = line.split()
    p = was.get(tid, [tid, comm, "0", "0"])
    du, ds = (int(u) - int(p[2])) * 1000 // tck, (int(s) - int(p[3])) * 1000 // tck
    if du or ds:
        print(f"  thread {tid} {comm}: user {du} ms, system {ds} ms")
PY
done
kill "$pid"; wait "$pid" 2>/dev/null || true
