#!/usr/bin/env bash
# Benchmark: the admin API's device list and fleet summary, and the web console's device list
# and overview pages that show them, with 100,000 devices (not a timed test). Imports DEVICES devices over 3 vendors' models and 20 groups, lets SEEN of them fetch
# their file (so last-seen and firmware are filled), then times REQUESTS sequential requests
# per query over one keep-alive connection and prints a Markdown table of p50/p99/max in ms.
#
#   bash bench/devicelist.sh [DEVICES=100000] [SEEN=20000] [REQUESTS=200]
#
# BIN=path uses that binary instead of building the release one.
# Needs: curl, python3. Loopback only; every loop is bounded in count.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-100000}
seen=${2:-20000}
requests=${3:-200}
work=$(mktemp -d /tmp/sipprov-devicelist.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
cd "$root"
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q -p sipprov
  BIN="$root/target/release/sipprov"
fi

data="$work/data"; mkdir -p "$data"
SIPPROV_LOG=warn "$BIN" serve --data-dir "$data" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 \
  --sip-listen 127.0.0.1:0 2>>"$data/server.log" &
pid=$!
for _ in $(seq 1 600); do [ -s "$data/listening.json" ] && break; sleep 0.05; done
HTTP=$(python3 -c "import json;print(json.load(open('$data/listening.json'))['http'])")
API=$(python3 -c "import json;print(json.load(open('$data/listening.json'))['api'])")

python3 - "$devices" "$work/devices.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
models = ["T46S", "T48S", "T54W"]
with open(path, "w") as f:
    f.write("mac,vendor,model,group,line.1.username,line.1.display_name\n")
    for i in range(n):
        f.write(f"001565{i:06x},yealink,{models[i % 3]},g{i % 20},{10000 + i},User {i}\n")
PY
"$BIN" device import "$work/devices.csv" --api "http://$API" --data-dir "$data" >/dev/null
"$BIN" settings set security.open_device_files=1 --api "http://$API" --data-dir "$data" >/dev/null

python3 - "$HTTP" "$seen" <<'PY'
# SEEN devices fetch once, reporting one of four firmware versions.
import http.client, sys
host, n = sys.argv[1], int(sys.argv[2])
conn = http.client.HTTPConnection(*host.split(":"))
models = ["T46S", "T48S", "T54W"]
for i in range(n):
    mac = "001565%06x" % i
    colon = ":".join(mac[j:j+2] for j in range(0, 12, 2))
    ua = f"Yealink SIP-{models[i % 3]} 66.86.0.{i % 4} {colon}"
    conn.request("GET", f"/{mac}.cfg", headers={"User-Agent": ua})
    r = conn.getresponse(); r.read()
    assert r.status == 200, (mac, r.status)
PY

echo "## Device list and fleet summary, $devices devices ($seen seen), $requests requests each"
echo
echo "Run on $(date -u +%Y-%m-%d) (commit $(git rev-parse --short HEAD)), RSS $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' /proc/$pid/status)."
echo
python3 - "$API" "$(cat "$data/api-token")" "$requests" <<'PY'
import http.client, json, sys, time
host, token, n = sys.argv[1], sys.argv[2].strip(), int(sys.argv[3])
queries = [
    ("first page (100, by MAC)", "/api/v1/devices"),
    ("page 500 of 100 by MAC", "/api/v1/devices?offset=50000"),
    ("vendor + model + group", "/api/v1/devices?vendor=yealink&model=T48S&group=g7"),
    ("firmware", "/api/v1/devices?firmware=66.86.0.2"),
    ("free text MAC 00:15:65:01:86", "/api/v1/devices?q=00%3A15%3A65%3A01%3A86"),
    ("free text name", "/api/v1/devices?q=user%2099"),
    ("sort=last_seen desc", "/api/v1/devices?sort=last_seen&order=desc"),
    ("sort=model, 1000 per page", "/api/v1/devices?sort=model&limit=1000"),
    ("silent=true", "/api/v1/devices?silent=true"),
    ("summary", "/api/v1/summary"),
]
conn = http.client.HTTPConnection(*host.split(":"))
print("| query | p50 ms | p99 ms | max ms | matched |")
print("|---|---|---|---|---|")
for label, path in queries:
    times, total = [], "-"
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse(); body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, (path, r.status, body[:200])
    doc = json.loads(body)
    total = doc.get("total", doc.get("devices", "-"))
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f"| {label} | {p(0.5):.1f} | {p(0.99):.1f} | {times[-1]:.1f} | {total} |")
PY

# The console's pages: a read-only console user, logged in once; each page is rendered HTML.
printf '%s\n' "bench-password-123" | "$BIN" user add bench --role read-only --password-stdin \
  --api "http://$API" --data-dir "$data" >/dev/null
python3 - "$API" "$requests" <<'PY'
import http.client, sys, time, urllib.parse
host, n = sys.argv[1], int(sys.argv[2])
conn = http.client.HTTPConnection(*host.split(":"))
form = urllib.parse.urlencode({"user": "bench", "password": "bench-password-123"})
conn.request("POST", "/console/login", body=form, headers={
    "Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://{host}"})
r = conn.getresponse(); r.read()
assert r.status == 303, r.status
cookie = r.getheader("Set-Cookie").split(";")[0]
pages = [
    ("console: device list, first page (50)", "/console/devices"),
    ("console: device list, page 1000", "/console/devices?page=999"),
    ("console: vendor + model + group", "/console/devices?vendor=yealink&model=T48S&group=g7"),
    ("console: free text MAC", "/console/devices?q=00%3A15%3A65%3A01%3A86"),
    ("console: overview (fleet summary)", "/console/"),
]
print()
print("| console page | p50 ms | p99 ms | max ms | bytes |")
print("|---|---|---|---|---|")
for label, path in pages:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        r = conn.getresponse(); body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, (path, r.status, body[:200])
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f"| {label} | {p(0.5):.1f} | {p(0.99):.1f} | {times[-1]:.1f} | {len(body)} |")
PY
kill "$pid"
