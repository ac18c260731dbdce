#!/usr/bin/env bash
# Benchmark: SIP Plug-and-Play SUBSCRIBE-to-NOTIFY latency at a fixed SUBSCRIBE rate, over
# unicast and over multicast on loopback. A Python phone fleet (one UDP socket, a distinct MAC,
# Call-ID and branch per phone, no SUBSCRIBE retransmission, so a dropped datagram counts as
# lost) sends SUBSCRIBEs paced at RATE per second, answers every NOTIFY with 200 at once and
# times SUBSCRIBE sent → NOTIFY received. Prints a Markdown table on stdout.
#
#   bash bench/pnp.sh [PHONES=5000] [RATE=1000]
#
# Needs: python3, and cargo for the release build. Loopback only (127.0.0.1 and 224.0.1.75 on
# lo with a private port); every loop is bounded in count and time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
phones=${1:-5000}
rate=${2:-1000}
work=$(mktemp -d /tmp/sipprov-pnp-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$root"
cargo build --release --locked -q -p sipprov
bin="${CARGO_TARGET_DIR:-$root/target}/release/sipprov"

ip link show lo | grep -q MULTICAST || ip link set lo multicast on 2>/dev/null || true
group_port=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cat >"$work/sipprov.toml" <<TOML
[pnp]
mode = "known"
multicast = "224.0.1.75:$group_port"
interfaces = ["127.0.0.1"]
# The fleet shares 127.0.0.1, and every SUBSCRIBE counts against its source (a real fleet has
# one address per phone): raise the per-source throttle so the benchmark measures PnP itself.
[security]
max_failures = 1000000
[sip]
# The whole fleet sends from one address here: lift the per-source request rate.
requests_per_source_per_sec = 0
TOML
SIPPROV_LOG=warn "$bin" serve --config "$work/sipprov.toml" --data-dir "$work" --http-listen 127.0.0.1:0 \
  --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 2>>"$work/server.log" &
for _ in $(seq 1 600); do [ -s "$work/listening.json" ] && break; sleep 0.05; done
api=$(python3 -c "import json;print(json.load(open('$work/listening.json'))['api'])")
sip=$(python3 -c "import json;print(json.load(open('$work/listening.json'))['sip_udp'])")

python3 - "$phones" "$work/devices.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("mac,vendor,model,group\n")
    for i in range(2 * n):  # unicast run, then multicast run: distinct phones
        f.write("001565%06x,yealink,T46S,\n" % i)
PY
"$bin" device import "$work/devices.csv" --api "http://$api" --data-dir "$work" >/dev/null

cat >"$work/fleet.py" <<'PY'
import select, socket, sys, time
target, first, n, rate, multicast = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
host, port = target.rsplit(":", 1)
dest = (host, int(port))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
if multicast:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
s.bind(("127.0.0.1", 0))
s.setblocking(False)
lport = s.getsockname()[1]

def subscribe(i):
    mac = "001565%06x" % (first + i)
    return (f"SUBSCRIBE sip:MAC{mac}@224.0.1.75 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-b{i}\r\n"
            f"From: <sip:MAC{mac}@224.0.1.75>;tag=f{i}\r\nTo: <sip:MAC{mac}@224.0.1.75>\r\nCall-ID: bench-{first}-{i}\r\n"
            f"CSeq: 1 SUBSCRIBE\r\nContact: <sip:MAC{mac}@127.0.0.1:{lport}>\r\nMax-Forwards: 70\r\n"
            "Event: ua-profile;profile-type=\"device\";vendor=\"yealink\";model=\"T46S\";version=\"66.86.0.15\"\r\n"
            "Expires: 0\r\nAccept: application/url\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\nContent-Length: 0\r\n\r\n").encode()

def header(lines, name):
    for l in lines:
        k, _, v = l.partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return ""

sent, notified, oks = {}, {}, 0
start = time.perf_counter()
deadline = start + n / rate + 10  # bounded: 10 s after the last SUBSCRIBE
i = 0
while time.perf_counter() < deadline and len(notified) < n:
    now = time.perf_counter()
    while i < n and start + i / rate <= now:
        sent[i] = time.perf_counter()
        s.sendto(subscribe(i), dest)
        i += 1
    wait = max(0.0, min(start + i / rate - time.perf_counter(), 0.01)) if i < n else 0.05
    if not select.select([s], [], [], wait)[0]:
        continue
    while True:
        try:
            data, src = s.recvfrom(65536)
        except BlockingIOError:
            break
        at = time.perf_counter()
        text = data.decode("latin-1")
        lines = text.split("\r\n")
        if text.startswith("SIP/2.0 200"):
            oks += 1
        elif text.startswith("NOTIFY "):
            call = header(lines, "call-id")
            k = int(call.rsplit("-", 1)[1]) if call.startswith(f"bench-{first}-") else -1
            if k in sent and k not in notified:
                notified[k] = (at - sent[k]) * 1000.0
            keep = [l for l in lines if l.split(":")[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")]
            s.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode(), src)
elapsed = n / rate
lat = sorted(notified.values())
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
name = "multicast (lo)" if multicast else "unicast"
print(f"| {name} | {n} | {rate:.0f}/s | {oks} | {len(lat)} | {n - len(lat)} | {pct(0.5):.2f} | {pct(0.9):.2f} | {pct(0.99):.2f} | {lat[-1] if lat else float('nan'):.2f} |")
PY

echo "## SIP Plug-and-Play: SUBSCRIBE → NOTIFY latency"
echo
echo "\`bash bench/pnp.sh $phones $rate\` on $(nproc) CPU(s), $(date -u +%Y-%m-%d), loopback, release build, mode = known."
echo
echo "| path | SUBSCRIBEs | rate | 200 OK | NOTIFY | lost | p50 ms | p90 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
python3 "$work/fleet.py" "$sip" 0 "$phones" "$rate" 0
sleep 1
python3 "$work/fleet.py" "224.0.1.75:$group_port" "$phones" "$phones" "$rate" 1
