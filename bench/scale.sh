#!/usr/bin/env bash
# One million devices on one node, in one run: the single-file CSV import with the real CLI
# (time, server peak RSS), a restart (start-up time, RSS), serving some devices (RSS), then a
# campaign over every device against SIPp phones with wrk fetching random devices' files
# meanwhile (campaign rate, peak RSS, HTTP p50/p99). Prints a Markdown table on stdout.
#
#   bash bench/scale.sh [DEVICES=1000000] [CAMPAIGN=1] [HOT=0]
#   SIPPROV_BIN=/path/to/sipprov bash bench/scale.sh ...   (a given binary, not this tree's build)
#   SCALE_SAVE=DIR bash bench/scale.sh ...    (keeps a copy of the imported data directory in DIR)
#   SCALE_REUSE=DIR bash bench/scale.sh ...   (skips the import: starts from a copy of DIR, which
#                                              SCALE_SAVE wrote with the same DEVICES)
#   SCALE_SERIES=FILE bash bench/scale.sh ... (appends one line a second while the restarted
#       server runs: unix time, -wal bytes, answers held back so far, VmRSS, RssAnon, RssFile and
#       RssShmem in KiB; says whether memory grows with the campaign or stays flat)
#
# A campaign run takes minutes, most of them the import; SCALE_REUSE lets an A/B of two binaries
# run on the same imported database in the same hour. The phones' port is saved with the copy,
# since every device's contact names it.
#
# CAMPAIGN=0 skips the campaign part. wrk fetches a random device among all of them (HOT=0, the
# default and the worst case: nearly every request misses the render cache and renders, and
# every device ends up with a last-seen entry, a change-time entry and a cached file competing
# for the cache's bound); HOT=N picks among the first N, as bench/sip.sh does at 100,000. The
# MACs are spread over the vendor's 24 bits (device i gets OUI 001565 and (i * 2654435761) mod
# 2^24, a bijection), not consecutive, so hash tables keyed by MAC see no easy pattern. With two CPUs or more the server runs on CPU 0 and the
# load (SIPp phones, wrk) on CPU 1 during the campaign, so the load generators do not take the
# server's core; the import and the start-up run unpinned, as an operator would run them.
#
# Needs sipp, wrk, taskset and python3. Loopback only; every wait is bounded.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
campaign=${2:-1}
hot=${3:-0}
[ "$hot" = 0 ] && hot=$n
work=$(mktemp -d /tmp/sipprov-scale.XXXXXX)
# Every process this script starts is one of its background jobs and is stopped by its id.
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
# shellcheck source=bench/sipprov-bin.sh
source "$root/bench/sipprov-bin.sh"
if [ "$(nproc)" -ge 2 ]; then SERVER_CPU=(taskset -c 0); LOAD_CPU=(taskset -c 1); else SERVER_CPU=(); LOAD_CPU=(); fi
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
mb() { awk -v k="$2" '$1 == k":" {printf "%.1f", $2/1024}' "/proc/$1/status"; }

start_server() { # data-dir [pinned] → PID, HTTP, API, STARTUP (process start to listening)
  rm -f "$1/listening.json"; mkdir -p "$1"
  local pin=() t0 t1
  [ "${2:-}" = pinned ] && pin=("${SERVER_CPU[@]}")
  t0=$(now)
  SIPPROV_LOG="${SCALE_LOG:-warn}" "${pin[@]}" "$bin" serve --data-dir "$1" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --sip-listen 127.0.0.1:0 2>>"$1/server.log" &
  PID=$!
  for _ in $(seq 1 1200); do [ -s "$1/listening.json" ] && break; sleep 0.02; done
  t1=$(now)
  HTTP=$(python3 -c "import json;print(json.load(open('$1/listening.json'))['http'])")
  API=$(python3 -c "import json;print(json.load(open('$1/listening.json'))['api'])")
  STARTUP=$(python3 -c "print(round($t1-$t0,2))")
}
stop_server() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
cli() { "$bin" "$@" --api "http://$API" --data-dir "$DATA"; }

# The phones: one SIPp process answering every NOTIFY at once (bench/sip.sh explains the buffer).
if [ -n "${SCALE_REUSE:-}" ]; then
  [ -s "$SCALE_REUSE/phone-port" ] || { echo "SCALE_REUSE=$SCALE_REUSE: no saved data directory (run with SCALE_SAVE first)" >&2; exit 1; }
  PHONE_PORT=$(cat "$SCALE_REUSE/phone-port")
else
  PHONE_PORT=$(free_port)
fi
if [ "$campaign" = 1 ]; then
  "${LOAD_CPU[@]}" sipp -sf bench/sipp/uas_200_now.xml -i 127.0.0.1 -p "$PHONE_PORT" -t u1 -buff_size 4194304 \
    -m $((n + 10)) -nostdin >/dev/null 2>&1 &
  PHONE_PID=$!
fi

python3 - "$n" "$PHONE_PORT" "$work/devices.csv" <<'PY'
import sys
n, port, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(path, "w") as f:
    f.write("mac,vendor,model,group,contact,line.1.username,line.1.password,line.1.registrar,line.1.display_name\n")
    for i in range(n):
        f.write(f"{0x001565000000 + (i * 2654435761) % (1 << 24):012x},yealink,T46S,g{i % 20},sip:{i}@127.0.0.1:{port},"
                f"{10000 + i},pw{i:08d},pbx.example.com,User {i}\n")
PY
csv_mb=$(du -m "$work/devices.csv" | cut -f1)

# --- import: one file, streamed, one transaction ----------------------------------
DATA="$work/data"
if [ -n "${SCALE_REUSE:-}" ]; then
  cp -a "$SCALE_REUSE/data" "$DATA"
  import_s="not run (SCALE_REUSE)" import_rss="—" base_rss="—"
else
  start_server "$DATA"
  base_rss=$(mb "$PID" VmRSS)
  t0=$(now)
  cli device import "$work/devices.csv" >/dev/null
  t1=$(now)
  import_s="$(python3 -c "print(round($t1-$t0,1))") s"
  import_rss=$(mb "$PID" VmHWM)
  # Serving is measured here, not authentication: device files open to all.
  cli settings set provisioning.url=http://prov.example.com/ time.ntp_server=pool.ntp.org security.open_device_files=1 >/dev/null
  stop_server
fi
if [ -n "${SCALE_SAVE:-}" ]; then
  rm -rf "$SCALE_SAVE"; mkdir -p "$SCALE_SAVE"; cp -a "$DATA" "$SCALE_SAVE/data"; echo "$PHONE_PORT" > "$SCALE_SAVE/phone-port"
fi

# --- start-up and serving -----------------------------------------------------------
start_server "$DATA" pinned
startup=$STARTUP
startup_rss=$(mb "$PID" VmRSS)
# The largest the SQLite -wal file gets while the restarted server runs, sampled every second.
( max=0; while kill -0 "$PID" 2>/dev/null; do
    size=$(stat -c %s "$DATA/sipprov.db-wal" 2>/dev/null || echo 0)
    [ "$size" -gt "$max" ] && max=$size && echo "$max" > "$work/wal-max"
    if [ -n "${SCALE_SERIES:-}" ]; then
      held=$(curl -s "http://$API/metrics" | awk '$1 == "sipprov_fetches_held_back_total" {print $2}')
      rss=$(awk '$1 == "VmRSS:" {r=$2} $1 == "RssAnon:" {a=$2} $1 == "RssFile:" {f=$2} $1 == "RssShmem:" {s=$2}
                 END {print r, a, f, s}' "/proc/$PID/status" 2>/dev/null)
      echo "$(date +%s) $size ${held:-0} ${rss:-0}" >> "$SCALE_SERIES"
    fi
    sleep 1
  done ) &
python3 - "$HTTP" "$n" <<'PY'
# Serve 2,000 random devices' files (rendered and cached), as bench/http.sh does at 100,000.
import http.client, sys, random
host, n = sys.argv[1], int(sys.argv[2])
conn = http.client.HTTPConnection(*host.split(":"))
for i in random.Random(1).sample(range(n), 2000):
    mac = "%012x" % (0x001565000000 + (i * 2654435761) % (1 << 24))
    conn.request("GET", f"/{mac}.cfg"); r = conn.getresponse(); r.read(); assert r.status == 200, r.status
PY
serving_rss=$(mb "$PID" VmRSS)
serving_peak=$(mb "$PID" VmHWM)

# --- campaign over every device, wrk fetching meanwhile ---------------------------
rate="—" recorded="—" campaign_rss="—" p50="—" p99="—" campaign_s="—" wrk_rps="—" dropped="—" wrk_total="—"
if [ "$campaign" = 1 ]; then
  cat > "$work/random.lua" <<LUA
-- A random device among the first $hot per request (device i's MAC as the CSV spells it).
math.randomseed(7)
request = function()
  local i = math.random(0, $hot - 1)
  local mac = string.format("%012x", 0x001565000000 + (i * 2654435761) % 16777216)
  return wrk.format("GET", "/" .. mac .. ".cfg", { ["User-Agent"] = "Yealink SIP-T46S 66.86.0.15" })
end
LUA
  # Longer than any campaign here; stopped with SIGINT (wrk then prints its report) when it ends.
  "${LOAD_CPU[@]}" wrk -t1 -c8 -d3600s --latency -s "$work/random.lua" "http://$HTTP" > "$work/wrk.txt" &
  WRK=$!
  sleep 1
  t0=$(now)
  cli resync --all --rate 100000 --max-in-flight 500 --confirm-window 3600 >/dev/null
  for _ in $(seq 1 36000); do
    json=$(cli campaign show 1 --json)
    left=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1])["counts"]; print(c.get("pending",0)+c.get("sending",0))' "$json" 2>/dev/null || echo 1)
    [ "$left" = 0 ] && break
    sleep 1
  done
  t1=$(now)
  kill -INT "$WRK"; wait "$WRK" 2>/dev/null || true
  last=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["last_notified_at"] / 1000)' "$json")
  rate=$(python3 -c "print(round($n/($last-$t0)))")
  recorded=$(python3 -c "print(round($n/($t1-$t0)))")
  campaign_s=$(python3 -c "print(round($t1-$t0,1))")
  campaign_rss=$(mb "$PID" VmHWM)
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  wrk_rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk.txt")
  wrk_total=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  # Every answered fetch must be recorded: records the fetch log had to drop (a full ledger past
  # its wait, change times included), from the server's own counter.
  dropped=$(python3 - "$API" <<'PY'
import sys, urllib.request
lines = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode().splitlines()
value = lambda name: next((l.split()[1] for l in lines if l.startswith(name + " ")), "?")
print(f"{value('sipprov_fetch_records_dropped_total')} (fetches past their wait: "
      f"{value('sipprov_fetch_records_dropped_waiting_total')}; events and change times finding it full: "
      f"{value('sipprov_fetch_records_dropped_full_total')}; answers held back for the writer: "
      f"{value('sipprov_fetches_held_back_total')})")
PY
)
  kill "$PHONE_PID" 2>/dev/null || true
fi
stop_server

cat <<MD
| $n devices | measured | target |
|---|---|---|
| CSV file | $csv_mb MB, one file | — |
| \`sipprov device import\` (one transaction, streamed) | $import_s | under 60 s |
| server peak RSS during the import | $import_rss MB (idle before: $base_rss MB) | under 600 MB |
| start-up (process start to listening) | $startup s | under 5 s |
| RSS after start-up | $startup_rss MB | — |
| RSS serving (after 2,000 devices' files served) | $serving_rss MB | under 500 MB |
| peak RSS after start-up and serving 2,000 (as bench/http.sh reports at 100,000) | $serving_peak MB | — |
| campaign over all: NOTIFYs/s to the last sent (to every outcome recorded) | $rate ($recorded), $campaign_s s in all | — |
| peak RSS over the whole run, campaign and wrk included | $campaign_rss MB | under 700 MB |
| HTTP while the campaign runs (wrk -t1 -c8, random device of $hot): p50 / p99 | $p50 / $p99 ($wrk_rps req/s) | p99 under 10 ms |
| largest SQLite \`-wal\` file while the restarted server ran (sampled every second) | $(awk '{printf "%.0f MB", $1/1048576}' "$work/wal-max" 2>/dev/null || echo "—") | — |
| fetch records dropped during the run (\`sipprov_fetch_records_dropped_total\`), of $wrk_total requests | $dropped | 0 |

- $(nproc) cores, $(uname -m); load before the run: $(cut -d' ' -f1-3 /proc/loadavg); server pinned to CPU 0 and SIPp + wrk to CPU 1 from the restart on
MD
# The server's warnings and errors over the whole script (the import's server and the restarted one,
# logs at warn): each distinct message once with its count (a store write that failed, records
# dropped), errors first, then each of sqlx's slow statements (over 1 s) with its start and time.
echo
echo "Server warnings and errors, import and restarted run:"
echo
grep -hE " (WARN|ERROR) " "$DATA/server.log" 2>/dev/null | grep -v "slow statement" \
  | sed -E 's/^[^ ]+ +//; s/ (error|pending|limit|dropped|attempts|after_secs|path|mode)=.*$//' \
  | sort | uniq -c | sort -k2,2 -k1,1rn | sed 's/^/    /' || true
grep -h "slow statement" "$DATA/server.log" 2>/dev/null \
  | sed -E 's/.*summary="([^"]*)".* elapsed=([0-9.]+)s.*/    slow statement: \1 (\2 s)/' || true
