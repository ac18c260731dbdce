#!/usr/bin/env bash
# What stalls the answering thread in a PnP boot storm: `perf sched` attribution, not timing.
#
#   bash bench/pnp-stalls.sh [RUNS=2] [RATE=10000]     (SIPPROV_BIN=path: that binary, no build)
#
# Starts the server as bench/pnp.sh does (pinned to CPU 0), then plays RUNS storms of 20,000
# unicast SUBSCRIBEs at RATE per second (bench/pnp/fleet.py on CPU 1), each recorded with
# `perf record -e sched:sched_switch -e sched:sched_wakeup -a`, and prints for each: the fleet's
# row, then bench/pnp/stalls.py's attribution: how long the thread answering the phones waited
# while runnable, how much of each wait the server's own threads (the fetch log writer, the
# SQLite workers) took, and how often each of those preempted it. The server's share does not
# depend much on what else the machine runs; the waits as a whole do (other processes on CPU 0).
#
# Needs perf (linux-perf) and the right to trace the scheduler (root, or
# kernel.perf_event_paranoid <= -1), python3, taskset. Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-2}
rate=${2:-10000}
phones=20000
work=$(mktemp -d /tmp/sipprov-pnp-stalls.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
source "$root/bench/pnp/serve.sh"
pnp_bench_config "$(free_port)"
pnp_serve_with_phones "$((phones * runs))"
pid=$(pgrep -f -- "serve --config $work/sipprov.toml" | head -1)
seconds=$(python3 -c "print($phones / $rate + 1.5)")
echo "bash bench/pnp-stalls.sh $runs $rate on $(nproc) CPU(s), $(date -u '+%Y-%m-%d %H:%M UTC'), server pid $pid"
for run in $(seq 1 "$runs"); do
  "${FLEET_CPU[@]}" perf record -q -m 16M -e sched:sched_switch -e sched:sched_wakeup -a -o "$work/sched.data" \
    -- sleep "$seconds" 2>/dev/null &
  recording=$!
  sleep 0.3
  echo
  echo "run $run: $("${FLEET_CPU[@]}" python3 bench/pnp/fleet.py "$sip" $(((run - 1) * phones)) "$phones" "$rate" 0)"
  wait "$recording"
  echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
  own=$(ls "/proc/$pid/task" | paste -sd,)
  perf script -i "$work/sched.data" -F cpu,time,event,trace 2>/dev/null | python3 bench/pnp/stalls.py "$pid" "$own" 0
done
