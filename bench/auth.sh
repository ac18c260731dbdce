#!/usr/bin/env bash
# Benchmark: what authentication and TLS cost on the provisioning path. Prints Markdown on stdout.
#   1. GET /<mac>.cfg throughput without authentication, then with Basic (wrk -c32; every request
#      carries credentials, so each one runs the device's policy lookup and the constant-time check);
#   2. Digest SHA-256 at one connection (fresh nc per request, precomputed from one server nonce:
#      one connection keeps the nc order, which the replay check insists on), against the very same
#      requests while device files are open (`security.open_device_files=1`), so the client's work is identical;
#   3. full TLS handshakes per second on the HTTPS listener (openssl s_time -new, ECDSA P-256).
#
#   bash bench/auth.sh [DEVICES=1000] [SECONDS=10]
#
# Needs: wrk, curl, openssl, python3. Loopback only; every loop is bounded in count and time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-1000}
secs=${2:-10}
work=$(mktemp -d /tmp/sipprov-bench-auth.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
cargo build --release -q -p sipprov
bin="${CARGO_TARGET_DIR:-$root/target}/release/sipprov"

# Server certificate for the HTTPS listener.
( cd "$work"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout cert.key \
    -out cert.pem -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null )
cat > "$work/sipprov.toml" <<TOML
[http.tls]
listen = "127.0.0.1:0"
cert = "$work/cert.pem"
key = "$work/cert.key"
[security]
max_failures = 1000000
TOML
data="$work/data"; mkdir -p "$data"
SIPPROV_LOG=warn "$bin" serve --config "$work/sipprov.toml" --data-dir "$data" --http-listen 127.0.0.1:0 \
  --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 2>>"$data/server.log" &
for _ in $(seq 1 600); do [ -s "$data/listening.json" ] && break; sleep 0.05; done
addr() { python3 -c "import json;print(json.load(open('$data/listening.json'))['$1'])"; }
HTTP=$(addr http); API=$(addr api); HTTPS=$(addr https)
cli() { # retried: an admin write can meet SQLite's "database is locked" while fetch records are flushed
  for attempt in 1 2 3 4 5; do
    "$bin" "$@" --api "http://$API" --data-dir "$data" >/dev/null 2>"$work/cli.err" && return 0
    sleep 1
  done
  cat "$work/cli.err" >&2; return 1
}

python3 - "$devices" "$work/devices.csv" "$work/macs.txt" <<'PY'
import sys
n, csv, macs = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(csv, "w") as f, open(macs, "w") as m:
    f.write("mac,vendor,model,line.1.username,line.1.password,line.1.registrar\n")
    for i in range(n):
        mac = "001565%06x" % i
        f.write(f"{mac},yealink,T46S,{10000 + i},pw{i:08d},pbx.example.com\n")
        m.write(mac + "\n")
PY
cli device import "$work/devices.csv"

cat > "$work/random.lua" <<'LUA'
-- Random known MAC per request, Yealink User-Agent, optional fixed Authorization header.
local macs = {}
for line in io.lines(os.getenv("MACS")) do macs[#macs + 1] = line end
local auth = os.getenv("AUTH")
math.randomseed(42)
request = function()
  local mac = macs[math.random(#macs)]
  local headers = { ["User-Agent"] = "Yealink SIP-T46S 66.86.0.15" }
  if auth and auth ~= "" then headers["Authorization"] = auth end
  return wrk.format("GET", "/" .. mac .. ".cfg", headers)
end
LUA
cat > "$work/digest.lua" <<'LUA'
-- Precomputed Digest requests, in nc order: "path<TAB>Authorization" per line.
local reqs = {}
for line in io.lines(os.getenv("REQS")) do
  local path, auth = line:match("([^\t]+)\t(.+)")
  reqs[#reqs + 1] = { path, auth }
end
local i = 0
request = function()
  i = i % #reqs + 1
  return wrk.format("GET", reqs[i][1], { ["User-Agent"] = "Yealink SIP-T46S 66.86.0.15", ["Authorization"] = reqs[i][2] })
end
LUA
wrk_rps() { # url conns script → req/s; also fails if any non-2xx answer was seen
  local out; out=$(wrk -t1 -c"$2" -d"${secs}s" -s "$3" "$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "wrk saw errors: $out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}

# Rounds alternate (none, auth, none, auth) so drift in machine load hits both sides alike.
basic=$(python3 -c "import base64;print('Basic '+base64.b64encode(b'fleet:bench-secret').decode())")
cli settings set http.username=fleet http.password=bench-secret http.allow_basic_plain=1
MACS="$work/macs.txt" wrk -t1 -c8 -d2s -s "$work/random.lua" "http://$HTTP" >/dev/null
none32=(); basic32=()
for round in 1 2; do
  cli settings set security.open_device_files=1
  none32+=("$(MACS="$work/macs.txt" wrk_rps "http://$HTTP" 32 "$work/random.lua")")
  cli settings set security.open_device_files=0 http.auth=basic
  basic32+=("$(MACS="$work/macs.txt" AUTH="$basic" wrk_rps "http://$HTTP" 32 "$work/random.lua")")
done

# Digest SHA-256: per round one nonce from the server, then nc = 1, 2, … over random devices.
cli settings set security.open_device_files=0 http.auth=digest
for round in 1 2; do
  python3 - "$HTTP" "$work/macs.txt" "$work/digest$round.txt" "$((secs * 15000))" <<'PY'
import hashlib, http.client, random, re, sys
host, macs, out, n = sys.argv[1], open(sys.argv[2]).read().split(), sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection(*host.split(":"))
c.request("GET", f"/{macs[0]}.cfg", headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15"})
r = c.getresponse(); r.read()
challenge = r.getheader("WWW-Authenticate")
realm, nonce = re.search(r'realm="([^"]+)"', challenge)[1], re.search(r'nonce="([^"]+)"', challenge)[1]
h = lambda s: hashlib.sha256(s.encode()).hexdigest()
ha1 = h(f"fleet:{realm}:bench-secret")
rnd = random.Random(7)
with open(out, "w") as f:
    for i in range(1, n + 1):
        uri = f"/{rnd.choice(macs)}.cfg"
        nc = f"{i:08x}"
        resp = h(f"{ha1}:{nonce}:{nc}:c0ffee:auth:{h('GET:' + uri)}")
        f.write(f'{uri}\tDigest username="fleet", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                f'algorithm=SHA-256, qop=auth, nc={nc}, cnonce="c0ffee", response="{resp}"\n')
PY
done
# Baseline: the very same requests (identical client work) while device files are open (`security.open_device_files=1`).
none1=(); digest1=()
for round in 1 2; do
  cli settings set security.open_device_files=1
  none1+=("$(REQS="$work/digest$round.txt" wrk_rps "http://$HTTP" 1 "$work/digest.lua")")
  cli settings set security.open_device_files=0 http.auth=digest
  digest1+=("$(REQS="$work/digest$round.txt" wrk_rps "http://$HTTP" 1 "$work/digest.lua")")
done

# Full TLS handshakes (no session reuse), ECDSA P-256 certificate, TLS 1.3.
tls=$(openssl s_time -connect "$HTTPS" -new -time "$secs" 2>/dev/null | awk '/connections in .* real seconds/ {print $1, $4}' | head -1)
tls_rate=$(python3 -c "c, s = '$tls'.split(); print(round(int(c) / float(s)))")

python3 - "${none32[*]}" "${basic32[*]}" "${none1[*]}" "${digest1[*]}" "$tls_rate" "$devices" "$secs" "$(uptime)" <<'PY'
import sys, os, platform
rows = [list(map(float, a.split())) for a in sys.argv[1:5]]
tls, devices, secs, load = sys.argv[5:9]
print("| measure | no auth | with auth | ratio |\n|---|---|---|---|")
for label, (a, b) in [("32 connections, Basic", rows[0:2]), ("1 connection, Digest SHA-256", rows[2:4])]:
    for r in range(2):
        print(f"| GET /<mac>.cfg, {label}, req/s (round {r + 1}) | {a[r]:,.0f} | {b[r]:,.0f} | {b[r]/a[r]:.2f}x |")
    ma, mb = sum(a) / 2, sum(b) / 2
    print(f"| **mean, {label}** | **{ma:,.0f}** | **{mb:,.0f}** | **{mb/ma:.2f}x** |")
print()
print(f"- full TLS handshakes (openssl s_time -new, ECDSA P-256): {tls} per second")
print(f"- {devices} Yealink devices, random MAC per request, all files cached; wrk -t1 -d{secs}s; "
      f"{os.cpu_count()} cores shared by client and server, {platform.machine()}; at the end:{load.split('load')[-1]}")
PY
