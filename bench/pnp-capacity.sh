#!/usr/bin/env bash
# Check: does a boot storm larger than PnP's subscription table still get every NOTIFY?
#
#   bash bench/pnp-capacity.sh        (SIPPROV_BIN=path: that binary, no build)
#
# The server remembers each subscription for 64 s (one NOTIFY per phone however often it
# repeats), at most `[pnp] remembered_subscriptions` (default 100,000) of them. This plays
# 105,000 phones (bench/pnp/fleet.py, one SUBSCRIBE each, no retransmission) at 1,800 per
# second, so all arrive within 64 s at a pace a shared core keeps, and prints the fleet's row
# (lost, 503s, other answers, timeouts) and the server's warnings. Until session 12 the table,
# once full, ignored every new SUBSCRIBE: the last 5,000 phones timed out. bench/pnp.sh hit the
# same wall in its second round (75,000 SUBSCRIBEs a round), losing exactly 10,000.
# Pinning as bench/pnp.sh: server on CPU 0, fleet on CPU 1. Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/sipprov-pnp-capacity.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
source "$root/bench/pnp/serve.sh"
phones=105000
pnp_bench_config "$(free_port)"
pnp_serve_with_phones "$phones"
echo "| path | SUBSCRIBEs | rate asked | rate sent | 200 OK | NOTIFY | lost | p50 ms | p90 ms | p99 ms | max ms | 503 | other | timeouts |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
"${FLEET_CPU[@]}" python3 bench/pnp/fleet.py "$sip" 0 "$phones" 1800 0
echo
echo "Server warnings (load $(cut -d' ' -f1-3 /proc/loadavg)):"
grep -o 'WARN.*' "$work/server.log" | sed 's/ source=[^ ]*//' | sort | uniq -c | sort -rn | head -5
