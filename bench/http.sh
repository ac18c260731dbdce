#!/usr/bin/env bash
# Benchmark: GET /<mac>.cfg throughput of sipprov against nginx serving the same
# rendered bytes from disk, in one run on this machine; then peak RSS and
# start-up time with 100,000 devices. Prints a Markdown report on stdout.
#
#   bash bench/http.sh [DEVICES=10000] [BIG=100000] [SECONDS=6] [ROUNDS=7]
#   (SIPPROV_BIN=path: that binary, no build: an A/B of two builds back to back)
#
# With two CPUs or more, sipprov and nginx (one worker) are pinned to CPU 0 and wrk to CPU 1,
# so the load generator never takes the servers' core; ROUNDS rounds alternate which server
# goes first, and the report gives each round, the medians and each server's p99 latency.
# PIN=0 runs unpinned (everything shares every core), as the runs before session 6 did.
# FLOOR=1 adds a minimal hyper server (crates/server/examples/hyper_floor.rs) to each round: the
# cost of hyper and tokio alone, the floor under sipprov's figure.
#
# Needs: nginx, wrk, curl, python3 (bash scripts/test-deps.sh installs them).
# Loopback only; every loop is bounded in count and time.
set -euo pipefail
# shellcheck source=bench/nginx.sh
source "$(dirname "$0")/nginx.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-10000}
big=${2:-100000}
secs=${3:-6}
rounds=${4:-7}
pin_server="" pin_load="" nginx_workers=2
if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  pin_server="taskset -c 0" pin_load="taskset -c 1" nginx_workers=1
fi
work=$(mktemp -d /tmp/sipprov-bench.XXXXXX)
# nginx's worker runs as an unprivileged user: it must be able to read the files. (Before session 9
# the directory stayed 0700 and, run as root, nginx answered every request 403 Forbidden; the
# Non-2xx check below now fails such a run.)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true' EXIT
cd "$root"
# shellcheck source=bench/sipprov-bin.sh
source bench/sipprov-bin.sh

start_server() { # data-dir [command prefix] → sets PID, HTTP, API, STARTUP
  rm -f "$1/listening.json"
  local t0; t0=$(date +%s.%N)
  # shellcheck disable=SC2086 # $pin_server is a command prefix, empty when unpinned.
  SIPPROV_LOG=warn ${2:-} "$bin" serve --data-dir "$1" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --sip-listen 127.0.0.1:0 2>>"$1/server.log" &
  PID=$!
  for _ in $(seq 1 600); do [ -s "$1/listening.json" ] && break; sleep 0.05; done
  local t1; t1=$(date +%s.%N)
  HTTP=$(python3 -c "import json,sys;print(json.load(open('$1/listening.json'))['http'])")
  API=$(python3 -c "import json,sys;print(json.load(open('$1/listening.json'))['api'])")
  STARTUP=$(python3 -c "print(round($t1-$t0,2))")
}

make_csv() { # count file
  python3 - "$1" "$2" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("mac,vendor,model,group,line.1.username,line.1.password,line.1.registrar,line.1.display_name\n")
    for i in range(n):
        mac = "001565%06x" % i
        f.write(f"{mac},yealink,T46S,g{i % 20},{10000 + i},pw{i:08d},pbx.example.com,User {i}\n")
PY
}

rss_peak_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# --- throughput against nginx -------------------------------------------------
data="$work/data"; mkdir -p "$data"
start_server "$data" "$pin_server"
make_csv "$devices" "$work/devices.csv"
"$bin" device import "$work/devices.csv" --api "http://$API" --data-dir "$data" >/dev/null
# Serving is measured here, not authentication (bench/auth.sh): device files open to all.
"$bin" settings set provisioning.url=http://prov.example.com/ time.ntp_server=pool.ntp.org security.open_device_files=1 \
  --api "http://$API" --data-dir "$data" >/dev/null
mkdir -p "$work/www"
python3 - "$HTTP" "$devices" "$work/www" "$work/macs.txt" <<'PY'
# Fetch every device's file once (warms sipprov's cache) and write the same bytes for nginx.
import http.client, sys
host, n, www, macs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conn = http.client.HTTPConnection(*host.split(":"))
with open(macs, "w") as out:
    for i in range(n):
        mac = "001565%06x" % i
        colon = ":".join(mac[j:j+2] for j in range(0, 12, 2))
        conn.request("GET", f"/{mac}.cfg", headers={"User-Agent": f"Yealink SIP-T46S 66.86.0.15 {colon}"})
        r = conn.getresponse(); body = r.read()
        assert r.status == 200, (mac, r.status)
        open(f"{www}/{mac}.cfg", "wb").write(body)
        out.write(mac + "\n")
PY
start_nginx "$work" 18089 "$nginx_workers" 1024 20000 text/plain
cat > "$work/random.lua" <<'LUA'
-- Random known MAC per request, with the User-Agent a Yealink sends.
local macs = {}
for line in io.lines(os.getenv("MACS")) do macs[#macs + 1] = line end
math.randomseed(42)
request = function()
  local mac = macs[math.random(#macs)]
  local colon = mac:gsub("(%x%x)", "%1:"):sub(1, 17)
  return wrk.format("GET", "/" .. mac .. ".cfg", { ["User-Agent"] = "Yealink SIP-T46S 66.86.0.15 " .. colon })
end
LUA
run_wrk() { # host:port → "req/s p99-in-ms"; fails on any non-2xx answer
  local out
  # shellcheck disable=SC2086
  out=$(MACS="$work/macs.txt" $pin_load wrk -t1 -c32 -d"${secs}s" --latency -s "$work/random.lua" "http://$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw errors at $1: $out" >&2; exit 1; fi
  awk '
    /Requests\/sec/ {rps = $2}
    $1 == "99%" {v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u);
                 p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v}
    END {print rps, p99}' <<<"$out"
}
# FLOOR=1: also a minimal hyper server (crates/server/examples/hyper_floor.rs) answering every
# request with one device's bytes, pinned alike: what hyper and tokio alone cost per request.
floor_file="$work/floor.txt"; : > "$floor_file"
if [ "${FLOOR:-0}" = 1 ]; then
  cargo build --release --locked -q -p sipprov-server --example hyper_floor
  # shellcheck disable=SC2086
  $pin_server "$root/target/release/examples/hyper_floor" 127.0.0.1:18091 "$work/www/$(head -1 "$work/macs.txt").cfg" &
  FLOOR_PID=$!
  sleep 0.5
fi
rounds_file="$work/rounds.txt"; : > "$rounds_file"
for r in $(seq 1 "$rounds"); do
  # The order flips every round, so a machine speeding up or slowing down favours neither.
  if [ $((r % 2)) = 1 ]; then s=$(run_wrk "$HTTP"); n=$(run_wrk 127.0.0.1:18089)
  else n=$(run_wrk 127.0.0.1:18089); s=$(run_wrk "$HTTP"); fi
  echo "$s $n" >> "$rounds_file"
  if [ "${FLOOR:-0}" = 1 ]; then echo "$(run_wrk 127.0.0.1:18091) $n" >> "$floor_file"; fi
done
throughput_rss=$(rss_peak_mb "$PID")
kill "$PID"; wait "$PID" 2>/dev/null || true
if [ "${FLOOR:-0}" = 1 ]; then kill "$FLOOR_PID"; wait "$FLOOR_PID" 2>/dev/null || true; fi

# --- 100,000 devices: start-up time and peak RSS ------------------------------
bigdata="$work/big"; mkdir -p "$bigdata"
start_server "$bigdata"
make_csv "$big" "$work/big.csv"
"$bin" device import "$work/big.csv" --api "http://$API" --data-dir "$bigdata" >/dev/null
import_rss=$(rss_peak_mb "$PID")
kill "$PID"; wait "$PID" 2>/dev/null || true
start_server "$bigdata"
big_startup=$STARTUP
MACS_N=$big python3 - "$HTTP" "$big" <<'PY'
# Serve a file to 2,000 of the devices so the measurement includes rendering and caching.
import http.client, sys, random
host, n = sys.argv[1], int(sys.argv[2])
conn = http.client.HTTPConnection(*host.split(":"))
for i in random.Random(1).sample(range(n), 2000):
    mac = "001565%06x" % i
    conn.request("GET", f"/{mac}.cfg"); r = conn.getresponse(); r.read(); assert r.status == 200
PY
big_rss=$(rss_peak_mb "$PID")
kill "$PID"; wait "$PID" 2>/dev/null || true

python3 - "$rounds_file" "$devices" "$big" "$big_startup" "$big_rss" "$import_rss" "$throughput_rss" "$secs" "${pin_load:-unpinned}" <<'PY'
import sys, platform, os, statistics
rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
devices, big, startup, rss, import_rss, tput_rss, secs, pinned = sys.argv[2:10]
med = statistics.median
ratios = [s / n for s, _, n, _ in rows]
print(f"| measure | sipprov | nginx | ratio |\n|---|---|---|---|")
for i, (s, sp, n, np_) in enumerate(rows, 1):
    print(f"| round {i}: req/s (p99 ms) | {s:,.0f} ({sp:.2f}) | {n:,.0f} ({np_:.2f}) | {s/n:.2f}x |")
print(f"| **GET /<mac>.cfg, {devices} devices, median of {len(rows)} rounds, req/s** | "
      f"**{med(r[0] for r in rows):,.0f}** | **{med(r[2] for r in rows):,.0f}** | "
      f"**{med(ratios):.2f}x** (per-round ratios {min(ratios):.2f} to {max(ratios):.2f}) |")
print(f"| p99 latency, ms (median of rounds) | {med(r[1] for r in rows):.2f} | {med(r[3] for r in rows):.2f} | — |")
print()
print(f"- peak RSS serving {devices} devices (all files cached): {tput_rss} MB")
print(f"- {big} devices: start-up {startup} s (process start to listening), peak RSS {rss} MB after serving 2,000 of them;")
print(f"  peak RSS during the {big}-device CSV import itself: {import_rss} MB")
where = "servers pinned to CPU 0, wrk to CPU 1" if pinned != "unpinned" else "nothing pinned"
print(f"- wrk -t1 -c32 -d{secs}s --latency, random known MAC per request, Yealink User-Agent; "
      f"{where}; {os.cpu_count()} cores, {platform.machine()}")
PY
if [ -s "$floor_file" ]; then
  python3 - "$floor_file" <<'PY'
import sys, statistics
rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
ratios = [f / n for f, _, n, _ in rows]
print(f"- hyper floor (FLOOR=1, a minimal hyper server answering every request with one device's bytes, "
      f"run right after sipprov and nginx in each round): median {statistics.median(r[0] for r in rows):,.0f} req/s, "
      f"p99 {statistics.median(r[1] for r in rows):.2f} ms, {statistics.median(ratios):.2f}x the same round's nginx "
      f"(per-round {min(ratios):.2f}x to {max(ratios):.2f}x)")
PY
fi
