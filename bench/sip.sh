#!/usr/bin/env bash
# Benchmarks of the SIP side, against SIPp phones on loopback, in one run:
#  1. check-sync NOTIFY transactions per second completed by the SIP stack alone
#     (crates/sip/examples/notify_load.rs) and by a sipprov campaign at an unthrottled rate
#     (bench/campaign_round.py: to the last NOTIFY sent, and to the last outcome recorded, both
#     as the server's report times them: `last_notified_at` and, since session 23,
#     `last_outcome_at`; before that the second ran to the 0.05 s poll that saw it), next to
#     SIPp itself sending the same NOTIFYs to the same phones, in ROUNDS alternating rounds
#     (median, min and max of the per-round ratios), with CPU per NOTIFY;
#  2. a 100,000-device campaign: completion rate, peak RSS, and the HTTP provisioning
#     latency p99 (wrk) measured while it runs.
# Prints a Markdown report on stdout.
#
#   bash bench/sip.sh [NOTIFY_DEVICES=20000] [CAMPAIGN_DEVICES=100000] [ROUNDS=15]
#   (SIPPROV_BIN=path: that sipprov binary, no build of it)
#   (CAMPAIGN_DEVICES=0 skips part 2; PHONES=linger runs part 1 against phones that keep
#   each call 5 s, as part 2's do)
#
# Part 1 pins the SIPp phones to CPU 1 and every sender to CPU 0, when there are two CPUs.
# In the field the phones are other machines; here one SIPp process plays them all and
# needs a core of its own, and a sender spreading over both cores (sipprov's runtime has a
# worker per core) would take CPU from the phones and measure the phones' slowdown rather than
# the sender. Each sender gets the one core SIPp, which is single-threaded, can use.
#
# Needs sipp (Debian sip-tester), wrk, time, taskset (util-linux) and python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-20000}
big=${2:-100000}
rounds=${3:-15}
# The phones of part 1: uas_200_now.xml answers and forgets each NOTIFY; PHONES=linger keeps
# each call 5 s as part 2 does (uas_200_fast.xml), which makes the phones the bottleneck.
rate_phones=bench/sipp/uas_200_now.xml
[ "${PHONES:-}" = linger ] && rate_phones=bench/sipp/uas_200_fast.xml
work=$(mktemp -d /tmp/sipprov-sipbench.XXXXXX)
# Every process this script starts (servers, SIPp phones, wrk) is one of its background jobs, and
# is stopped by the id it was started with: never by name, which could hit another user's SIPp.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
cd "$root"
# shellcheck source=bench/sipprov-bin.sh
source bench/sipprov-bin.sh
cargo build --release --locked -q -p sipprov-sip --example notify_load
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# CPU pinning of part 1 (none on a single-CPU machine).
if [ "$(nproc)" -ge 2 ]; then PHONE_CPU=(taskset -c 1); SENDER_CPU=(taskset -c 0); else PHONE_CPU=(); SENDER_CPU=(); fi

# One SIPp process plays every phone. Its socket gets a 4 MiB receive buffer (SIPp's default
# is 64 KiB): a real phone only receives its own NOTIFY, but one process standing in for
# thousands overflows a small buffer under any fast sender and turns the run into a
# measure of retransmission timers. Both senders below face the same phones. SIPp runs as a
# background job (not daemonised with -bg), so that its id is known from the start; taskset
# execs it, keeping that id.
phones() { # calls [pinned] [scenario] → PHONE_PORT, PHONE_PID
  PHONE_PORT=$(free_port)
  local pin=() scenario=${3:-bench/sipp/uas_200_fast.xml}
  [ "${2:-}" = pinned ] && pin=("${PHONE_CPU[@]}")
  "${pin[@]}" sipp -sf "$scenario" -i 127.0.0.1 -p "$PHONE_PORT" -t u1 -buff_size 4194304 -m "$1" -nostdin \
    >/dev/null 2>&1 &
  PHONE_PID=$!
  sleep 0.5
}

start_server() { # data-dir [pinned]
  rm -f "$1/listening.json"; mkdir -p "$1"
  local pin=()
  [ "${2:-}" = pinned ] && pin=("${SENDER_CPU[@]}")
  SIPPROV_LOG=warn "${pin[@]}" "$bin" serve --data-dir "$1" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
    --sip-listen 127.0.0.1:0 2>>"$1/server.log" &
  PID=$!
  for _ in $(seq 1 600); do [ -s "$1/listening.json" ] && break; sleep 0.05; done
  HTTP=$(python3 -c "import json;print(json.load(open('$1/listening.json'))['http'])")
  API=$(python3 -c "import json;print(json.load(open('$1/listening.json'))['api'])")
}
cli() { "$bin" "$@" --api "http://$API" --data-dir "$DATA"; }

import() { # count port
  python3 - "$1" "$2" "$work/devices.csv" <<'PY'
import sys
n, port, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(path, "w") as f:
    f.write("mac,vendor,model,group,contact,line.1.username,line.1.password,line.1.registrar\n")
    for i in range(n):
        f.write(f"001565{i:06x},yealink,T46S,fleet,sip:{i}@127.0.0.1:{port},{i},pw{i:08d},pbx.example.com\n")
PY
  cli device import "$work/devices.csv" >/dev/null
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# devices → SENT_RATE (NOTIFYs/s from the resync command to the last NOTIFY leaving),
# RECORDED_RATE (to the last outcome recorded: the report's `last_outcome_at`, the server's time
# in the transaction that wrote it; the report is polled every 0.1 s only to see that every
# outcome is in, and before session 23 the rate ran to that poll), CPU_US (server CPU per
# NOTIFY, to the last poll). The confirmation window is long so that polling stays cheap (no
# failing list to build) and the figures are the sending, not the confirmation.
campaign_rate() {
  local t0 t1 c0 c1 json left last
  c0=$(cpu_ticks "$PID")
  t0=$(now)
  cli resync --group fleet --rate 100000 --max-in-flight 500 --confirm-window 3600 >/dev/null
  while true; do
    json=$(cli campaign show 1 --json)
    left=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1])["counts"]; print(c.get("pending",0)+c.get("sending",0))' "$json" 2>/dev/null || echo 1)
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  t1=$(now)
  c1=$(cpu_ticks "$PID")
  last=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["last_notified_at"] / 1000)' "$json")
  # A build from before session 23 has no `last_outcome_at`: timed to the poll, as then.
  recorded=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]).get("last_outcome_at"); print(sys.argv[2] if r is None else r / 1000)' "$json" "$t1")
  SENT_RATE=$(python3 -c "print(round($1/($last-$t0)))")
  RECORDED_RATE=$(python3 -c "print(round($1/($recorded-$t0)))")
  CPU_US=$(python3 -c "print(round(($c1-$c0)*1e6/$(getconf CLK_TCK)/$1))")
}

# --- 1. sipprov vs SIPp as the sender -----------------------------------------
# One server (pinned to CPU 0) over n devices whose contacts are the phones runs one campaign
# per round (bench/campaign_round.py: created through the admin API as `resync` does, polled
# every 0.05 s over one connection until every outcome is in, timed to the server's own times
# of the last NOTIFY and of the last outcome recorded (the report's `last_notified_at` and
# `last_outcome_at`; until session 23 the second figure ran to the poll that saw the end, up to
# 0.05 s late), cancelled once measured so that its wait for confirmations costs later rounds
# nothing). The SIP stack alone (crates/sip/examples/notify_load.rs: the
# same NOTIFY, no inventory, no database), one batch and a task per NOTIFY, and SIPp as the
# sender are each timed until their process exits. ROUNDS times, in an order that flips every
# round, since the machine's speed drifts within a run.
phones $(( (n * 5 + 10) * (rounds + 1) )) pinned "$rate_phones"
DATA="$work/notify"; start_server "$DATA" pinned; import "$n" "$PHONE_PORT"
cpu_of() { # command... → prints "rate cpu_us_per_notify" of the command (its output is dropped)
  local t0 t1 times
  t0=$(now)
  /usr/bin/time -o "$work/time.txt" -f '%U %S' "${SENDER_CPU[@]}" "$@" >/dev/null 2>&1 || true
  times=$(tail -n 1 "$work/time.txt")
  t1=$(now)
  python3 -c "import sys; u, s = sys.argv[1].split(); print(round($n / ($t1 - $t0)), round((float(u) + float(s)) * 1e6 / $n, 1))" "$times"
}
: > "$work/rounds.txt"
stack_batch() { cpu_of "$root/target/release/examples/notify_load" "127.0.0.1:$PHONE_PORT" "$n" 500 batch; }
stack_tasks() { cpu_of "$root/target/release/examples/notify_load" "127.0.0.1:$PHONE_PORT" "$n" 500 tasks; }
sipp_sender() {
  cpu_of sipp -sf bench/sipp/uac_notify.xml -i 127.0.0.1 -t u1 -buff_size 4194304 -r 100000 -l 500 -m "$n" \
    -nostdin "127.0.0.1:$PHONE_PORT"
}
campaign_round() { python3 bench/campaign_round.py "$API" "$DATA" fleet "$n" "$PID"; }
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then
    read -r stack stack_cpu < <(stack_batch); read -r tasks tasks_cpu < <(stack_tasks)
    read -r theirs theirs_cpu < <(sipp_sender); read -r c_sent c_recorded c_cpu < <(campaign_round)
  else
    read -r c_sent c_recorded c_cpu < <(campaign_round); read -r theirs theirs_cpu < <(sipp_sender)
    read -r tasks tasks_cpu < <(stack_tasks); read -r stack stack_cpu < <(stack_batch)
  fi
  echo "$stack $stack_cpu $tasks $tasks_cpu $theirs $theirs_cpu $c_sent $c_recorded $c_cpu" >> "$work/rounds.txt"
done
kill "$PID"; wait "$PID" 2>/dev/null || true
kill "$PHONE_PID" 2>/dev/null || true

# Per-round figures → medians, and min/median/max of the per-round ratios.
summary() {
  python3 - "$work/rounds.txt" "$n" "$rounds" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
n, rounds, load = sys.argv[2], sys.argv[3], sys.argv[4]
col = lambda i: [r[i] for r in rows]
med = lambda i: st.median(col(i))
def ratios(i, j):
    rs = sorted(r[i] / r[j] for r in rows)
    return f"**{st.median(rs):.2f}x** (min {rs[0]:.2f}, max {rs[-1]:.2f}, geometric mean {st.geometric_mean(rs):.2f})"
theirs = med(4)
print(f"{rounds} rounds, {n} phones; load average at the end: {load}")
print()
print("| measure | sipprov | SIPp | ratio (per round, median) |")
print("|---|---|---|---|")
print(f"| NOTIFY transactions/s, SIP stack alone, one batch (notify_load batch), {n} phones, UDP, 500 in flight | {med(0):,.0f} | {theirs:,.0f} | {ratios(0, 4)} |")
print(f"| same, a task per NOTIFY (notify_load tasks) | {med(2):,.0f} | {theirs:,.0f} | {ratios(2, 4)} |")
print(f"| CPU per NOTIFY, µs, stack batch | {med(1)} | {med(5)} | {ratios(1, 5)} |")
print(f"| CPU per NOTIFY, µs, stack tasks | {med(3)} | {med(5)} | {ratios(3, 5)} |")
print(f"| NOTIFY transactions/s, campaign, creation to the last NOTIFY sent | {med(6):,.0f} | {theirs:,.0f} | {ratios(6, 4)} |")
print(f"| same, campaign until every outcome was recorded (the server's last_outcome_at) | {med(7):,.0f} | {theirs:,.0f} | {ratios(7, 4)} |")
print(f"| CPU per NOTIFY, µs, campaign server (to every outcome recorded) | {med(8)} | {med(5)} | {ratios(8, 5)} |")
print()
print("Rounds (stack batch /s, µs; stack tasks /s, µs; SIPp /s, µs; campaign sent /s, recorded /s, µs):")
print()
for r in rows:
    print(f"- {r[0]:,.0f}, {r[1]}; {r[2]:,.0f}, {r[3]}; {r[4]:,.0f}, {r[5]}; {r[6]:,.0f}, {r[7]:,.0f}, {r[8]} → campaign recorded {r[7] / r[4]:.2f}x")
PY
}
# CAMPAIGN_DEVICES=0: the rates only.
if [ "$big" = 0 ]; then summary; exit 0; fi

# --- 2. 100,000 devices, with HTTP load during the campaign ----------------------
phones $((big + 10))
DATA="$work/big"; start_server "$DATA"; import "$big" "$PHONE_PORT"
# Restart so the peak RSS below is the campaign's, not the CSV import's (reported by bench/http.sh).
kill "$PID"; wait "$PID" 2>/dev/null || true
start_server "$DATA"
cat > "$work/one.lua" <<'LUA'
request = function()
  local i = math.random(0, 9999)
  local mac = string.format("001565%06x", i)
  return wrk.format("GET", "/" .. mac .. ".cfg", { ["User-Agent"] = "Yealink SIP-T46S 66.86.0.15" })
end
LUA
wrk -t1 -c8 -d20s --latency -s "$work/one.lua" "http://$HTTP" > "$work/wrk.txt" &
WRK=$!
sleep 1
campaign_rate "$big"
big_rate=$SENT_RATE; big_recorded=$RECORDED_RATE
wait "$WRK" || true
rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
kill "$PHONE_PID" 2>/dev/null || true
p99=$(awk '/ 99%/ {print $2}' "$work/wrk.txt")
p50=$(awk '/ 50%/ {print $2}' "$work/wrk.txt")
kill "$PID"; wait "$PID" 2>/dev/null || true

summary
cat <<MD

- $big-device campaign at an unthrottled rate (--rate 100000 --max-in-flight 500): $big_rate NOTIFYs/s to the last NOTIFY sent ($big_recorded/s until every outcome was recorded); peak RSS $rss MB
- HTTP provisioning latency while that campaign ran (wrk -t1 -c8, 10,000 devices' files): p50 $p50, p99 $p99
MD
