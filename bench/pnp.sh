#!/usr/bin/env bash
# Benchmark: SIP Plug-and-Play SUBSCRIBE-to-NOTIFY latency at a fixed SUBSCRIBE rate, over
# unicast and over multicast on loopback, at 1,000 and at 10,000 SUBSCRIBEs per second (a site
# booting at once after a power cut). Prints a Markdown table on stdout.
#
#   bash bench/pnp.sh [ROUNDS=3]     (SIPPROV_BIN=path: that binary, no build)
#
# The phones are bench/pnp/fleet.py: a distinct MAC, Call-ID and branch per phone, no SUBSCRIBE
# retransmission (a dropped datagram counts as lost), every NOTIFY answered 200 at once; a
# sender process and a receiver process share one socket, and a NOTIFY's arrival is the
# kernel's receive timestamp. Each rate is run against bench/pnp/responder.py too (a trivial
# Python responder: 200 + NOTIFY, nothing else) and with the single-process fleet of earlier
# sessions, so the table shows what the load generator adds on its own.
#
# Pinning (when there are two CPUs): the server or the responder on CPU 0, the fleet on CPU 1,
# so that neither takes CPU from the other and a fleet that falls behind shows as such.
# Every row is the median run of ROUNDS by p99 (the rounds alternate server and responder).
#
# After it, a second table lists every run: what became of the SUBSCRIBEs that got no NOTIFY
# (answered 503, answered otherwise, or nothing at all: timeouts) and how many lines the server
# logged during the run. When any run lost a SUBSCRIBE, the run's directory (server.log, the
# data directory, rows.txt, and run-N.log: the server's log lines of run N) is kept and its path
# printed on stderr, so that the cause can be read afterwards.
#
# Needs: python3, taskset, and cargo for the release build. Loopback only (127.0.0.1 and
# 224.0.1.75 on lo with a private port); every loop is bounded in count and time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
work=$(mktemp -d /tmp/sipprov-pnp-bench.XXXXXX)
keep_if_lossy() {
  kill $(jobs -p) 2>/dev/null || true
  if [ -s "$work/lossy" ]; then
    echo "pnp.sh: $(wc -l <"$work/lossy") run(s) lost SUBSCRIBEs; kept $work (server.log, run-N.log, rows.txt)" >&2
  else
    rm -rf "$work"
  fi
}
trap keep_if_lossy EXIT
cd "$root"
source "$root/bench/pnp/serve.sh"

# The plan: (phones, rate) pairs.
plan=("5000 1000" "20000 10000")
per_round=0
for p in "${plan[@]}"; do read -r n _ <<<"$p"; per_round=$((per_round + 3 * n)); done
devices=$((per_round * rounds))

ip link show lo | grep -q MULTICAST || ip link set lo multicast on 2>/dev/null || true
group_port=$(free_port)
pnp_bench_config "$group_port"
pnp_serve_with_phones "$devices"

responder_port=$(free_port)
"${SERVER_CPU[@]}" python3 bench/pnp/responder.py "$responder_port" &
sleep 0.5
fleet() { "${FLEET_CPU[@]}" python3 bench/pnp/fleet.py "$@"; }
# One run: `run WHO TARGET FIRST N RATE MULTICAST [old]` appends "round|who|row" to rows.txt,
# keeps the server's log lines written during it as run-N.log, and notes a lossy run.
runs=0
run() {
  local who=$1 before row lost
  shift
  runs=$((runs + 1))
  before=$(stat -c %s "$work/server.log")
  row=$(fleet "$@")
  tail -c +"$((before + 1))" "$work/server.log" >"$work/run-$runs.log"
  echo "$runs|$round|$who|$row" >>"$work/rows.txt"
  lost=$(cut -d'|' -f8 <<<"$row" | tr -d ' ')
  if [ "${lost:-0}" != 0 ]; then echo "run $runs ($who, $*): lost $lost" >>"$work/lossy"; fi
}

: >"$work/rows.txt"
first=0
for round in $(seq 1 "$rounds"); do
  for p in "${plan[@]}"; do
    read -r n rate <<<"$p"
    # Alternate which answerer goes first.
    if [ $((round % 2)) = 1 ]; then order=(responder server); else order=(server responder); fi
    for who in "${order[@]}"; do
      if [ "$who" = responder ]; then
        run "trivial responder" "127.0.0.1:$responder_port" 0 "$n" "$rate" 0
        run "trivial responder" "127.0.0.1:$responder_port" 0 "$n" "$rate" 0 old
      else
        run sipprov "$sip" "$first" "$n" "$rate" 0; first=$((first + n)); sleep 1
        run sipprov "224.0.1.75:$group_port" "$first" "$n" "$rate" 1; first=$((first + n)); sleep 1
        run sipprov "$sip" "$first" "$n" "$rate" 0 old; first=$((first + n)); sleep 1
      fi
    done
  done
done

echo "## SIP Plug-and-Play: SUBSCRIBE → NOTIFY latency"
echo
echo "\`bash bench/pnp.sh $rounds\` on $(nproc) CPU(s), $(date -u +%Y-%m-%d), loopback, release build, mode = known;"
echo "answerer on CPU 0, fleet on CPU 1; each row the median of $rounds runs by p99 (p99 range in brackets); load $(cut -d' ' -f1-3 /proc/loadavg)."
echo
python3 - "$work/rows.txt" "$work" <<'PY'
import sys, statistics
groups, every = {}, []
for line in open(sys.argv[1]):
    number, rnd, who, row = line.rstrip("\n").split("|", 3)
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    groups.setdefault((who, cells[0], cells[2]), []).append(cells)
    logged = sum(1 for _ in open(f"{sys.argv[2]}/run-{number}.log", errors="replace"))
    every.append((number, rnd, who, cells, logged))
print("| answerer | path / fleet | SUBSCRIBEs | rate asked | rate sent | 200 OK | NOTIFY | lost | p50 ms | p90 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (who, path, rate), runs in groups.items():
    runs.sort(key=lambda c: float(c[9]))
    mid = runs[len(runs) // 2]
    spread = f" ({runs[0][9]}–{runs[-1][9]})" if len(runs) > 1 else ""
    lost = max(int(c[6]) for c in runs)
    print(f"| {who} | {path} | {mid[1]} | {rate} | {mid[3]} | {mid[4]} | {mid[5]} | {mid[6]} (worst {lost}) | {mid[7]} | {mid[8]} | {mid[9]}{spread} | {mid[10]} |")
print()
print("Every run (lost = no NOTIFY; of them: answered 503, answered otherwise or 200 without NOTIFY, nothing at all):")
print()
print("| run | round | answerer | path / fleet | rate asked | rate sent | lost | 503 | other | timeouts | p99 ms | server log lines |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for number, rnd, who, c, logged in every:
    extra = c[11:14] if len(c) >= 14 else ["?", "?", "?"]
    print(f"| {number} | {rnd} | {who} | {c[0]} | {c[2]} | {c[3]} | {c[6]} | {extra[0]} | {extra[1]} | {extra[2]} | {c[9]} | {logged} |")
PY
