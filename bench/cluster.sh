#!/usr/bin/env bash
# Benchmark: two sipprov nodes on one PostgreSQL database. Prints Markdown on stdout.
#   1. propagation delay of a change: PATCH a device's settings on node 1 (the change is
#      committed when the answer comes back), then fetch the device's file from node 2 until it
#      carries the new value; SAMPLES times, p50/p99/max from the PATCH's answer. Samples are
#      1.1 s apart: a file changed twice within one second gets the next second as its change
#      time and its response is held until then (Last-Modified never in the future, see
#      server::provision::dates), which would measure that hold, not the propagation;
#   2. HTTP throughput of GET /<mac>.cfg through nginx round-robin over one node, then over two
#      (wrk -c32). Both nodes, nginx and wrk share this machine's cores: on a 2-core machine two
#      nodes cannot be faster than one, the figure only shows the cost of the balancing layer.
#
#   bash bench/cluster.sh [SAMPLES=100] [SECONDS=10]
#
# Needs: PostgreSQL (scripts/test-postgres.sh starts one), wrk, nginx, curl, psql, python3.
# Loopback only; every loop is bounded in count and time. The bench's database is dropped at exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
samples=${1:-100}
secs=${2:-10}
work=$(mktemp -d /tmp/sipprov-bench-cluster.XXXXXX)
chmod 700 "$work"
base=$(bash "$root/scripts/test-postgres.sh" start)
db="sipprov_bench_$$"
url="${base%/*}/$db"
psql "$base" -qc "CREATE DATABASE $db"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 1
  psql "$base" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$root"
cargo build --release -q -p sipprov
bin="${CARGO_TARGET_DIR:-$root/target}/release/sipprov"
token=$(openssl rand -hex 32)

start_node() { # n → node n's data dir
  local data="$work/node$1"
  mkdir -p "$data" && chmod 700 "$data"
  (umask 077; echo "$token" >"$data/api-token")
  SIPPROV_LOG=warn "$bin" serve --database-url "$url" --data-dir "$data" --http-listen 127.0.0.1:0 \
    --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 2>>"$data/server.log" &
  for _ in $(seq 1 600); do [ -s "$data/listening.json" ] && break; sleep 0.05; done
}
addr() { python3 -c "import json;print(json.load(open('$work/node$1/listening.json'))['$2'])"; }
start_node 1
start_node 2
HTTP1=$(addr 1 http); API1=$(addr 1 api); HTTP2=$(addr 2 http)
cli() { "$bin" "$@" --api "http://$API1" --data-dir "$work/node1" >/dev/null; }
cli settings set security.open_device_files=1
cli device add 001565000001 --vendor yealink --model T46S --set line.1.username=1000

# 1. Propagation delay.
python3 - "$samples" "$API1" "$HTTP2" "$token" >"$work/delays.txt" <<'PY'
import json, sys, time, urllib.request
samples, api, http2, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ua = {"User-Agent": "Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:01"}
def fetch():
    req = urllib.request.Request(f"http://{http2}/001565000001.cfg", headers=ua)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()
for i in range(samples):
    value = f"{20000 + i}"
    body = json.dumps({"settings": {"line.1.username": value}}).encode()
    req = urllib.request.Request(f"http://{api}/api/v1/devices/001565000001", data=body, method="PATCH",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    committed = time.monotonic()
    deadline = committed + 10
    while value not in fetch():
        if time.monotonic() > deadline:
            sys.exit(f"sample {i}: node 2 never served the change")
    print(f"{(time.monotonic() - committed) * 1000:.2f}")
    time.sleep(1.1)
PY
read -r p50 p99 max < <(python3 - "$work/delays.txt" <<'PY'
import sys
d = sorted(float(x) for x in open(sys.argv[1]))
q = lambda p: d[min(len(d) - 1, int(p * len(d)))]
print(f"{q(0.50):.1f} {q(0.99):.1f} {d[-1]:.1f}")
PY
)

# 2. Throughput through nginx over one node, then two.
balancer() { # upstreams… → port
  local port servers=""
  port=$(python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])")
  for u in "$@"; do servers+="    server $u max_fails=0;"$'\n'; done
  [ -f "$work/nginx.pid" ] && { kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; sleep 0.5; }
  cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  upstream nodes {
$servers    keepalive 32;
  }
  server {
    listen 127.0.0.1:$port;
    location / { proxy_pass http://nodes; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
  nginx -c "$work/nginx.conf"
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
  echo "$port"
}
wrk_rps() { # port → req/s
  local out
  out=$(wrk -t1 -c32 -d"${secs}s" -H "User-Agent: Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:01" \
    "http://127.0.0.1:$1/001565000001.cfg")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw errors: $out" >&2; exit 1; fi
  awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}
one=$(wrk_rps "$(balancer "$HTTP1")")
two=$(wrk_rps "$(balancer "$HTTP1" "$HTTP2")")

cat <<MD
### Cluster: propagation and throughput (\`bench/cluster.sh $samples $secs\`)

$(nproc) cores, load before the run: $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(psql "$base" -tAc 'SHOW server_version'), both nodes, nginx and wrk on this machine.

| measure | value |
|---|---|
| propagation of a device change, node 1 → node 2, p50 ($samples samples) | $p50 ms |
| propagation p99 | $p99 ms |
| propagation max | $max ms |
| GET /<mac>.cfg through nginx, one node (wrk -c32, ${secs} s) | $one req/s |
| GET /<mac>.cfg through nginx, two nodes round-robin | $two req/s |

On $(nproc) cores shared by both nodes, nginx and wrk, two nodes cannot serve more than one: each
node's share of the CPU halves. The two-node figure shows what the balancer and the second process
cost here, not the scaling on separate machines, where each node serves from its own memory and
the database is touched only by changes and the fetch log.
MD
