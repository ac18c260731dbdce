#!/usr/bin/env bash
# Benchmark: 200 concurrent downloads of a 50 MB firmware image from sipprov's `/files/<name>`
# against nginx serving the same file, in one run on this machine; and sipprov's memory growth
# while it serves them. Prints a Markdown report on stdout.
#
#   bash bench/files.sh [MB=50] [CONNECTIONS=200] [SECONDS=8] [ROUNDS=5]
#
# sipprov and nginx (one worker, sendfile on) are pinned to CPU 0, wrk to CPU 1, so the load
# generator never takes the servers' core. wrk (one thread, CONNECTIONS keep-alive connections)
# fetches the file over and over; its "Transfer/sec" counts every byte read, partial responses
# included, so a round of a few seconds measures throughput even though one 50 MB response
# takes seconds per connection. Rounds alternate which server goes first.
#
# sipprov's memory: VmRSS once it has served the file once (the baseline), its peak resident
# set is then reset (`/proc/PID/clear_refs`, 5) and read again (VmHWM) after all rounds.
# Each round also reads the server's CPU time (user + system, /proc/PID/stat) around wrk: CPU
# seconds per GB served says how close each server is to its core's limit, which throughput
# alone hides when the load generator is the bottleneck.
#
# Needs: nginx, wrk, curl, python3, taskset. Loopback only; every loop is bounded.
set -euo pipefail
# shellcheck source=bench/nginx.sh
source "$(dirname "$0")/nginx.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
mb=${1:-50}
conns=${2:-200}
secs=${3:-8}
rounds=${4:-5}
pin_server="" pin_load=""
if [ "$(nproc)" -ge 2 ]; then pin_server="taskset -c 0" pin_load="taskset -c 1"; fi
work=$(mktemp -d /tmp/sipprov-bench-files.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
cargo build --release --locked -q -p sipprov
bin="$root/target/release/sipprov"

start_server() { # data-dir → sets PID, HTTP, API
  rm -f "$1/listening.json"
  # shellcheck disable=SC2086 # $pin_server is a command prefix, empty when unpinned.
  SIPPROV_LOG=warn $pin_server "$bin" serve --data-dir "$1" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --sip-listen 127.0.0.1:0 2>>"$1/server.log" &
  PID=$!
  for _ in $(seq 1 600); do [ -s "$1/listening.json" ] && break; sleep 0.05; done
  HTTP=$(python3 -c "import json;print(json.load(open('$1/listening.json'))['http'])")
  API=$(python3 -c "import json;print(json.load(open('$1/listening.json'))['api'])")
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

data="$work/data"; mkdir -p "$data" "$work/www"
image="$work/www/fw-bench.rom"
head -c "$((mb * 1024 * 1024))" /dev/urandom > "$image"
start_server "$data"
"$bin" firmware add "$image" --vendor yealink --model T46S --version 66.86.0.160 \
  --api "http://$API" --data-dir "$data" >/dev/null
# A fresh process: what the upload allocated does not count against serving.
kill "$PID"; wait "$PID" 2>/dev/null || true
start_server "$data"
sum=$(curl -sf "http://$HTTP/files/fw-bench.rom" | sha256sum | cut -d' ' -f1)
[ "$sum" = "$(sha256sum < "$image" | cut -d' ' -f1)" ] || { echo "sipprov served other bytes" >&2; exit 1; }
rss_before=$(status_kb "$PID" VmRSS)
echo 5 > "/proc/$PID/clear_refs"

chmod 644 "$image"
start_nginx "$work" 18090 1 4096 100 application/octet-stream
for _ in $(seq 1 100); do [ -s "$work/nginx.pid" ] && break; sleep 0.05; done
[ "$(curl -sf http://127.0.0.1:18090/fw-bench.rom | sha256sum | cut -d' ' -f1)" = "$sum" ] ||
  { echo "nginx does not serve the file" >&2; exit 1; }

nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system CPU of the whole process
hz=$(getconf CLK_TCK)
run_wrk() { # url server-pid → "MB/s CPU-seconds-per-GB"
  local t0 t1 mbps
  t0=$(ticks "$2")
  # shellcheck disable=SC2086
  mbps=$($pin_load wrk -t1 -c"$conns" -d"${secs}s" --timeout 60s "$1" | awk '
    /Transfer\/sec/ {v = $2; u = v; sub(/[A-Za-z]+$/, "", v); sub(/^[0-9.]+/, "", u);
                     f = (u == "GB") ? 1024 : (u == "KB") ? 1 / 1024 : (u == "B") ? 1 / 1048576 : 1;
                     print v * f}')
  t1=$(ticks "$2")
  python3 -c "print($mbps, round(($t1 - $t0) / $hz / ($mbps * $secs / 1024), 3))"
}
rounds_file="$work/rounds.txt"; : > "$rounds_file"
s_url="http://$HTTP/files/fw-bench.rom" n_url=http://127.0.0.1:18090/fw-bench.rom
for r in $(seq 1 "$rounds"); do
  # The order flips every round, so a machine speeding up or slowing down favours neither.
  if [ $((r % 2)) = 1 ]; then s=$(run_wrk "$s_url" "$PID"); n=$(run_wrk "$n_url" "$nginx_worker")
  else n=$(run_wrk "$n_url" "$nginx_worker"); s=$(run_wrk "$s_url" "$PID"); fi
  echo "$s $n" >> "$rounds_file"
done
rss_after=$(status_kb "$PID" VmRSS)
hwm=$(status_kb "$PID" VmHWM)
kill "$PID"; wait "$PID" 2>/dev/null || true

python3 - "$rounds_file" "$mb" "$conns" "$secs" "$rss_before" "$rss_after" "$hwm" "${pin_load:-unpinned}" <<'PY'
import sys, statistics, platform, os
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
mb, conns, secs, before, after, hwm, pinned = sys.argv[2:9]
s = [r[0] for r in rows]; n = [r[2] for r in rows]
print(f"{len(rows)} rounds of {secs} s, {conns} connections, {mb} MB file, "
      f"{'servers on CPU 0, wrk on CPU 1' if pinned != 'unpinned' else 'unpinned'}; {os.cpu_count()} CPUs, {platform.machine()}\n")
print("| round | sipprov MB/s | nginx MB/s | ratio | sipprov CPU s/GB | nginx CPU s/GB |\n|---|---|---|---|---|---|")
for i, r in enumerate(rows, 1):
    print(f"| {i} | {r[0]:,.0f} | {r[2]:,.0f} | {r[0] / r[2]:.2f}x | {r[1]:.2f} | {r[3]:.2f} |")
ms, mn = statistics.median(s), statistics.median(n)
cs, cn = statistics.median(r[1] for r in rows), statistics.median(r[3] for r in rows)
print(f"| **median** | **{ms:,.0f}** | **{mn:,.0f}** | **{ms / mn:.2f}x** | **{cs:.2f}** | **{cn:.2f}** |")
print(f"| spread (min–max) | {min(s):,.0f}–{max(s):,.0f} | {min(n):,.0f}–{max(n):,.0f} | | | |\n")
b, a, h = int(before) / 1024, int(after) / 1024, int(hwm) / 1024
print(f"sipprov VmRSS before the rounds {b:.1f} MB, after {a:.1f} MB; peak during them (VmHWM after reset) "
      f"{h:.1f} MB: growth {h - b:.1f} MB (target under 20 MB).")
PY
