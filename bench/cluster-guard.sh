#!/usr/bin/env bash
# Benchmark: what sharing Digest nonce counts through PostgreSQL costs an authenticated fetch.
# Prints Markdown on stdout.
#
# Two sipprov nodes side by side, same devices and global credentials, no first-fetch window:
# one on SQLite (nonce counts in memory) and one on a fresh PostgreSQL database (nonce counts in
# `digest_nonces`). On each, one client connection (keep-alive, Python http.client) measures:
#   1. "later counts": one nonce, then nc = 1, 2, … (what a phone reusing its nonce sends; on
#      PostgreSQL a read plus a conditional update per request after the first);
#   2. "fresh nonce": challenge then answer per fetch, as curl --digest does (on PostgreSQL one
#      insert per answered fetch); the latency is that of the pair.
# Rounds alternate between the servers so load drift hits both.
#
#   bash bench/cluster-guard.sh [DEVICES=1000] [REQUESTS=3000] [ROUNDS=2]
#
# Needs: python3, psql, PostgreSQL (SIPPROV_TEST_POSTGRES_URL, else scripts/test-postgres.sh
# starts one). Loopback only; every loop is bounded in count.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-1000}
requests=${2:-3000}
rounds=${3:-2}
work=$(mktemp -d /tmp/sipprov-bench-cguard.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
cargo build --release -q -p sipprov
bin="${CARGO_TARGET_DIR:-$root/target}/release/sipprov"
base=${SIPPROV_TEST_POSTGRES_URL:-$(bash scripts/test-postgres.sh start)}
db="sipprov_bench_guard_$$"
psql "$base" -qc "CREATE DATABASE $db" >/dev/null
pg_url="${base%/*}/$db"
printf '[security]\nfirst_fetch_window_secs = 0\nmax_failures = 1000000\n' > "$work/sipprov.toml"

start() { # data-dir [extra args] → prints the HTTP address; API address in data-dir/api
  local data=$1; shift
  mkdir -p "$data"
  SIPPROV_LOG=warn "$bin" serve --config "$work/sipprov.toml" --data-dir "$data" --http-listen 127.0.0.1:0 \
    --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 "$@" >/dev/null 2>>"$data/server.log" &
  for _ in $(seq 1 600); do [ -s "$data/listening.json" ] && break; sleep 0.05; done
  python3 -c "import json;d=json.load(open('$data/listening.json'));open('$data/api','w').write(d['api']);print(d['http'])"
}
python3 - "$devices" "$work/devices.csv" "$work/macs.txt" <<'PY'
import sys
n, csv, macs = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(csv, "w") as f, open(macs, "w") as m:
    f.write("mac,vendor,model,line.1.username\n")
    for i in range(n):
        f.write(f"001565{i:06x},yealink,T46S,{10000 + i}\n")
        m.write(f"001565{i:06x}\n")
PY
sqlite_http=$(start "$work/sqlite")
pg_http=$(start "$work/pg" --database-url "$pg_url")
for data in sqlite pg; do
  api=$(cat "$work/$data/api")
  "$bin" device import "$work/devices.csv" --api "http://$api" --data-dir "$work/$data" >/dev/null
  "$bin" settings set http.username=fleet http.password=bench-secret --api "http://$api" --data-dir "$work/$data" >/dev/null
done

measure() { # http-address mode → "req/s p50_ms p99_ms"
  python3 - "$1" "$2" "$work/macs.txt" "$requests" <<'PY'
import hashlib, http.client, random, re, sys, time
host, mode, macs, n = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().split(), int(sys.argv[4])
c = http.client.HTTPConnection(*host.split(":"))
ua = {"User-Agent": "Yealink SIP-T46S 66.86.0.15"}
h = lambda s: hashlib.sha256(s.encode()).hexdigest()
def challenge(uri):
    c.request("GET", uri, headers=ua); r = c.getresponse(); r.read()
    assert r.status == 401, r.status
    text = [v for k, v in r.getheaders() if k.lower() == "www-authenticate" and "SHA-256" in v][0]
    return re.search(r'realm="([^"]+)"', text)[1], re.search(r'nonce="([^"]+)"', text)[1]
def answer(uri, realm, nonce, i):
    nc = f"{i:08x}"
    resp = h(f"{h('fleet:' + realm + ':bench-secret')}:{nonce}:{nc}:c0ffee:auth:{h('GET:' + uri)}")
    auth = (f'Digest username="fleet", realm="{realm}", nonce="{nonce}", uri="{uri}", algorithm=SHA-256, '
            f'qop=auth, nc={nc}, cnonce="c0ffee", response="{resp}"')
    c.request("GET", uri, headers={**ua, "Authorization": auth}); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
rnd = random.Random(7)
realm, nonce = challenge(f"/{macs[0]}.cfg")
times = []
start = time.perf_counter()
for i in range(1, n + 1):
    uri = f"/{rnd.choice(macs)}.cfg"
    t = time.perf_counter()
    if mode == "fresh":
        realm, nonce = challenge(uri)
        answer(uri, realm, nonce, 1)
    else:
        answer(uri, realm, nonce, i)
    times.append(time.perf_counter() - t)
total = time.perf_counter() - start
times.sort()
print(f"{n / total:.0f} {times[len(times) // 2] * 1000:.2f} {times[int(len(times) * 0.99)] * 1000:.2f}")
PY
}

declare -A result
for round in $(seq 1 "$rounds"); do
  for mode in later fresh; do
    for server in sqlite pg; do
      addr=$sqlite_http; [ "$server" = pg ] && addr=$pg_http
      result[$server-$mode]+="$(measure "$addr" "$mode");"
    done
  done
done
kill $(jobs -p) 2>/dev/null || true
wait 2>/dev/null || true
# FORCE: the killed node's sessions may not be closed yet.
psql "$base" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true

echo "| fetch | store | req/s (per round) | p50 ms | p99 ms |"
echo "|---|---|---|---|---|"
for mode in later fresh; do
  for server in sqlite pg; do
    python3 - "$mode" "$server" "${result[$server-$mode]}" <<'PY'
import sys
mode, server, runs = sys.argv[1], sys.argv[2], [r.split() for r in sys.argv[3].split(";") if r]
label = {"later": "one nonce, nc 1, 2, …", "fresh": "fresh nonce (challenge + answer)"}[mode]
store = {"sqlite": "SQLite (in memory)", "pg": "PostgreSQL (shared)"}[server]
rates = " / ".join(f"{float(r[0]):,.0f}" for r in runs)
p50 = max(float(r[1]) for r in runs); p99 = max(float(r[2]) for r in runs)
print(f"| {label} | {store} | {rates} | {p50:.2f} | {p99:.2f} |")
PY
  done
done
echo
echo "- $devices devices, $requests fetches per cell, one keep-alive connection, Python client; p50/p99: worst round."
echo "- $(nproc) cores shared by client, both servers and PostgreSQL; load at the end:$(uptime | sed 's/.*load/ load/')"
