#!/usr/bin/env bash
# Benchmark: GET /<mac>.cfg with HTTP Digest (SHA-256, qop=auth) at 32 connections, against the
# same requests served by sipprov without authentication and by nginx, in one run on this
# machine. Prints a Markdown report on stdout.
#
#   bash bench/digest.sh [DEVICES=10000] [SECONDS=6] [ROUNDS=7]
#   (SIPPROV_BIN=path: that binary, no build: an A/B of two builds back to back)
#
# Three servers, all pinned to CPU 0 (wrk to CPU 1, as in bench/http.sh): sipprov with Digest
# required (`http.auth=digest`), a second sipprov with device files open
# (`security.open_device_files=1`), and nginx (one worker, no access log) serving the same bytes
# from disk. Each round gets a fresh nonce from the Digest server and precomputed requests with
# nc = 1, 2, … over random known devices; all three servers get exactly these requests (the
# others ignore the Authorization header), so the client's work is identical. wrk -t1 -c32 sends
# them over 32 connections, so the counts of one nonce arrive slightly out of order: the
# server's sliding nc window (auth/digest.rs) accepts each once. Any non-2xx answer fails the run.
# Rounds rotate which server goes first.
#
# Needs: nginx, wrk, python3. Loopback only; every loop is bounded in count and time.
set -euo pipefail
# shellcheck source=bench/nginx.sh
source "$(dirname "$0")/nginx.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
devices=${1:-10000}
secs=${2:-6}
rounds=${3:-7}
pin_server="" pin_load=""
if [ "$(nproc)" -ge 2 ]; then pin_server="taskset -c 0" pin_load="taskset -c 1"; fi
work=$(mktemp -d /tmp/sipprov-bench-digest.XXXXXX)
chmod 755 "$work" # nginx's unprivileged worker reads the files here
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
# shellcheck source=bench/sipprov-bin.sh
source bench/sipprov-bin.sh

start_server() { # data-dir → sets HTTP, API
  mkdir -p "$1"
  # shellcheck disable=SC2086 # $pin_server is a command prefix, empty when unpinned.
  SIPPROV_LOG=warn $pin_server "$bin" serve --config "$work/sipprov.toml" --data-dir "$1" --http-listen 127.0.0.1:0 \
    --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 2>>"$1/server.log" &
  for _ in $(seq 1 600); do [ -s "$1/listening.json" ] && break; sleep 0.05; done
  HTTP=$(python3 -c "import json;print(json.load(open('$1/listening.json'))['http'])")
  API=$(python3 -c "import json;print(json.load(open('$1/listening.json'))['api'])")
}
cli() { "$bin" "$@" >/dev/null; }
# No first-fetch window (every request must authenticate) and no throttle in the way.
printf '[security]\nfirst_fetch_window_secs = 0\nmax_failures = 1000000\n' > "$work/sipprov.toml"

python3 - "$devices" "$work/devices.csv" "$work/macs.txt" <<'PY'
import sys
n, csv, macs = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(csv, "w") as f, open(macs, "w") as m:
    f.write("mac,vendor,model,group,line.1.username,line.1.password,line.1.registrar,line.1.display_name\n")
    for i in range(n):
        mac = "001565%06x" % i
        f.write(f"{mac},yealink,T46S,g{i % 20},{10000 + i},pw{i:08d},pbx.example.com,User {i}\n")
        m.write(mac + "\n")
PY
common="provisioning.url=http://prov.example.com/ time.ntp_server=pool.ntp.org http.username=fleet http.password=bench-secret"
start_server "$work/digest"; DIGEST_HTTP=$HTTP; DIGEST_API=$API
cli device import "$work/devices.csv" --api "http://$API" --data-dir "$work/digest"
# shellcheck disable=SC2086 # $common is a list of settings.
cli settings set $common http.auth=digest --api "http://$API" --data-dir "$work/digest"
start_server "$work/open"; OPEN_HTTP=$HTTP
cli device import "$work/devices.csv" --api "http://$API" --data-dir "$work/open"
# shellcheck disable=SC2086
cli settings set $common security.open_device_files=1 --api "http://$API" --data-dir "$work/open"

mkdir -p "$work/www"
python3 - "$OPEN_HTTP" "$work/macs.txt" "$work/www" <<'PY'
# Fetch every device's file once from the open server (warms its cache) and write the same bytes
# for nginx.
import http.client, sys
host, macs, www = sys.argv[1], open(sys.argv[2]).read().split(), sys.argv[3]
conn = http.client.HTTPConnection(*host.split(":"))
for mac in macs:
    conn.request("GET", f"/{mac}.cfg", headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15"})
    r = conn.getresponse(); body = r.read()
    assert r.status == 200, (mac, r.status)
    open(f"{www}/{mac}.cfg", "wb").write(body)
PY
start_nginx "$work" 18090 1 1024 20000 text/plain

make_requests() { # file count: one nonce from the Digest server, nc = 1..count over random devices
  python3 - "$DIGEST_HTTP" "$work/macs.txt" "$1" "$2" <<'PY'
import hashlib, http.client, random, re, sys
host, macs, out, n = sys.argv[1], open(sys.argv[2]).read().split(), sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection(*host.split(":"))
c.request("GET", f"/{macs[0]}.cfg", headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15"})
r = c.getresponse(); r.read()
assert r.status == 401, r.status
challenge = r.getheader("WWW-Authenticate")
realm, nonce = re.search(r'realm="([^"]+)"', challenge)[1], re.search(r'nonce="([^"]+)"', challenge)[1]
h = lambda s: hashlib.sha256(s.encode()).hexdigest()
ha1 = h(f"fleet:{realm}:bench-secret")
rnd = random.Random(n)
with open(out, "w") as f:
    for i in range(1, n + 1):
        uri = f"/{rnd.choice(macs)}.cfg"
        nc = f"{i:08x}"
        resp = h(f"{ha1}:{nonce}:{nc}:c0ffee:auth:{h('GET:' + uri)}")
        f.write(f'{uri}\tDigest username="fleet", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                f'algorithm=SHA-256, qop=auth, nc={nc}, cnonce="c0ffee", response="{resp}"\n')
PY
}
cat > "$work/digest.lua" <<'LUA'
-- Precomputed Digest requests in nc order ("path<TAB>Authorization" per line), formatted once
-- here so that building a request costs the client nothing. Past the end the list starts again:
-- harmless for the servers that ignore the header, a replay (401, failing the run) for Digest.
local reqs = {}
for line in io.lines(os.getenv("REQS")) do
  local path, auth = line:match("([^\t]+)\t(.+)")
  -- Host is named here: at load time wrk has not filled in its default yet.
  local headers = { ["Host"] = os.getenv("HOST"), ["User-Agent"] = "Yealink SIP-T46S 66.86.0.15", ["Authorization"] = auth }
  reqs[#reqs + 1] = wrk.format("GET", path, headers)
end
local i = 0
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
LUA
run_wrk() { # host:port requests-file → "req/s p99-in-ms"; fails on any non-2xx answer
  local out
  # shellcheck disable=SC2086
  out=$(HOST="$1" REQS="$2" $pin_load wrk -t1 -c32 -d"${secs}s" --latency -s "$work/digest.lua" "http://$1")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "wrk saw errors at $1: $out" >&2; tail -3 "$work/nginx-error.log" >&2; exit 1
  fi
  awk '
    /Requests\/sec/ {rps = $2}
    $1 == "99%" {v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u);
                 p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v}
    END {print rps, p99}' <<<"$out"
}

# Enough requests for the Digest server to run a whole round without wrapping around (it would
# meet a replay, and the run fails saying so).
count=$((secs * 80000))
rounds_file="$work/rounds.txt"; : > "$rounds_file"
for r in $(seq 1 "$rounds"); do
  reqs="$work/reqs.txt"
  make_requests "$reqs" "$count"
  declare -A got=()
  order=(digest open nginx)
  for k in $(seq 0 2); do
    which=${order[$(((k + r) % 3))]}
    case $which in
      digest) got[digest]=$(run_wrk "$DIGEST_HTTP" "$reqs") ;;
      open) got[open]=$(run_wrk "$OPEN_HTTP" "$reqs") ;;
      nginx) got[nginx]=$(run_wrk 127.0.0.1:18090 "$reqs") ;;
    esac
  done
  echo "${got[digest]} ${got[open]} ${got[nginx]}" >> "$rounds_file"
done

python3 - "$rounds_file" "$devices" "$secs" "$(uptime)" <<'PY'
import sys, os, platform, statistics
rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
devices, secs, load = sys.argv[2:5]
med = statistics.median
print("| measure | sipprov Digest | sipprov no auth | nginx | Digest / no auth | Digest / nginx |")
print("|---|---|---|---|---|---|")
for i, (d, dp, o, op, n, np_) in enumerate(rows, 1):
    print(f"| round {i}: req/s (p99 ms) | {d:,.0f} ({dp:.2f}) | {o:,.0f} ({op:.2f}) | {n:,.0f} ({np_:.2f}) | "
          f"{d/o:.2f}x | {d/n:.2f}x |")
vs_open = [r[0] / r[2] for r in rows]
vs_nginx = [r[0] / r[4] for r in rows]
print(f"| **median of {len(rows)} rounds, req/s** | **{med(r[0] for r in rows):,.0f}** | "
      f"**{med(r[2] for r in rows):,.0f}** | **{med(r[4] for r in rows):,.0f}** | "
      f"**{med(vs_open):.2f}x** ({min(vs_open):.2f} to {max(vs_open):.2f}) | "
      f"**{med(vs_nginx):.2f}x** ({min(vs_nginx):.2f} to {max(vs_nginx):.2f}) |")
print(f"| p99 latency, ms (median of rounds) | {med(r[1] for r in rows):.2f} | {med(r[3] for r in rows):.2f} | "
      f"{med(r[5] for r in rows):.2f} | — | — |")
print()
print(f"- {devices} Yealink devices, Digest SHA-256 qop=auth, one nonce per round, nc 1, 2, … over random known "
      f"devices; wrk -t1 -c32 -d{secs}s --latency; servers pinned to CPU 0, wrk to CPU 1; "
      f"{os.cpu_count()} cores, {platform.machine()}; load at the end:{load.split('load')[-1]}")
PY
