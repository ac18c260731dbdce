#!/usr/bin/env bash
# Instructions per check-sync NOTIFY executed in user space by the SIP stack
# (crates/sip/examples/notify_load.rs, one batch), by SIPp sending the same NOTIFY, and by a
# sipprov campaign (every thread of the server: the campaign driver, the SIP stack, the SQLite
# writes of the outcomes and history events), all against the same SIPp phones, counted by
# valgrind's callgrind. Unlike a rate, the count does not depend on what else the machine is
# doing; it leaves out the kernel (the UDP path, the same for all three) and the cost of waiting.
#
# Each sender runs twice, with N and 2N NOTIFYs, and the difference divided by N is the
# marginal cost of one NOTIFY (start-up cancels out). The campaign: one server runs under
# callgrind with instrumentation off while it starts and imports 3N devices (N in group `a`,
# 2N in group `b`), then, for each group, the counters are zeroed, a campaign is created through
# the admin API as `sipprov resync` does (rate 100,000/s, 100 in flight, a window of an hour),
# and the counters are dumped once every device has its outcome recorded. That moment is seen by
# reading the database file from this script (read-only), not by polling the report through the
# API, so the polling costs the server nothing here (bench/campaign_round.py polls every 0.05 s;
# under valgrind that would be fifty times as many polls per NOTIFY). What still depends on time
# is the campaign's own confirmation check (every 5 s while sending, every 0.5 s after), which
# under valgrind runs some fifty times as often per NOTIFY as at full speed.
#
# Prints a Markdown table on stdout; CALLGRIND_KEEP=DIR keeps the campaign's callgrind dumps
# there (for callgrind_annotate --inclusive=yes).
#
#   bash bench/sip-instructions.sh [N=5000]
#
# Needs valgrind, sipp (Debian sip-tester) and python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-5000}
work=$(mktemp -d /tmp/sipprov-siprefs.XXXXXX)
cd "$root"
# Every process this script starts is one of its background jobs, stopped by its id.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
cargo build --release --locked -q -p sipprov-sip --example notify_load
# SIPPROV_BIN=path counts a binary built elsewhere (an A/B of two builds); else this tree's.
source "$root/bench/sipprov-bin.sh"
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
sipp -sf bench/sipp/uas_200_fast.xml -i 127.0.0.1 -p "$port" -t u1 -buff_size 4194304 -m $((n * 14)) -nostdin \
  >/dev/null 2>&1 &
sleep 0.5

refs() { # name count command... → total instructions of the command under callgrind
  valgrind --tool=callgrind --callgrind-out-file="$work/$1-$2.out" "${@:3}" >/dev/null 2>"$work/$1-$2.txt" || true
  awk '/I[ ]+refs:/ {gsub(",", "", $NF); print $NF}' "$work/$1-$2.txt"
}
# 100 in flight: under valgrind both senders run some fifty times slower, and more would
# only queue at the phones.
ours() { refs ours "$1" "$root/target/release/examples/notify_load" "127.0.0.1:$port" "$1" 100 batch; }
sipp_sender() {
  refs sipp "$1" sipp -sf bench/sipp/uac_notify.xml -i 127.0.0.1 -t u1 -buff_size 4194304 -r 100000 -l 100 \
    -m "$1" -nostdin "127.0.0.1:$port"
}
o1=$(ours "$n"); o2=$(ours $((n * 2)))
s1=$(sipp_sender "$n"); s2=$(sipp_sender $((n * 2)))

# --- The campaign ---------------------------------------------------------------------------
data="$work/server"; mkdir -p "$data"
python3 - "$n" "$port" "$work/devices.csv" <<'PY'
import sys
n, port, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(path, "w") as f:
    f.write("mac,vendor,model,group,contact,line.1.username,line.1.password,line.1.registrar\n")
    for i in range(3 * n):
        group = "a" if i < n else "b"
        f.write(f"001565{i:06x},yealink,T46S,{group},sip:{i}@127.0.0.1:{port},{i},pw{i:08d},pbx.example.com\n")
PY
SIPPROV_LOG=warn valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/campaign.out" \
  "$bin" serve --data-dir "$data" --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 \
  >/dev/null 2>"$data/server.log" &
server=$!
for _ in $(seq 1 1200); do [ -s "$data/listening.json" ] && break; sleep 0.1; done
api=$(python3 -c "import json;print(json.load(open('$data/listening.json'))['api'])")
"$bin" device import "$work/devices.csv" --api "http://$api" --data-dir "$data" >/dev/null
callgrind_control --instr=on "$server" >/dev/null
campaign() { # group count → instructions of the server from the campaign's creation to its last outcome
  local cid dump
  callgrind_control --zero "$server" >/dev/null
  cid=$(python3 - "$api" "$data" "$1" <<'PY'
import http.client, json, os, sqlite3, sys, time
api, data, group = sys.argv[1:]
token = open(os.path.join(data, "api-token")).read().strip()
host, port = api.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=600)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
body = {"group": group, "rate": 100000, "max_in_flight": 100, "confirm_window_seconds": 3600}
conn.request("POST", "/api/v1/campaigns", json.dumps(body), headers)
resp = conn.getresponse()
created = resp.read()
if resp.status >= 300:
    sys.exit(f"campaign not created: {resp.status} {created[:300]!r}")
cid = json.loads(created)["id"]
db = sqlite3.connect(f"file:{os.path.join(data, 'sipprov.db')}?mode=ro", uri=True, timeout=60)
# Done when every device of the group has an outcome row (`notified` or `failed`): read
# this way whether or not the server writes a `pending` row per device at creation.
want = int(json.loads(created).get("devices") or 0)
while True:
    (done,) = db.execute(
        "SELECT COUNT(*) FROM campaign_devices WHERE campaign_id = ? AND state IN ('notified', 'failed')", (cid,)
    ).fetchone()
    if want and done >= want:
        break
    time.sleep(0.2)
print(cid)
PY
)
  callgrind_control --dump="campaign-$1" "$server" >/dev/null
  # The dump is written by the server asynchronously: wait for it.
  for _ in $(seq 1 600); do
    dump=$(grep -lx "desc: Trigger: dump campaign-$1" "$work"/campaign.out* 2>/dev/null | head -n 1 || true)
    [ -n "$dump" ] && grep -q '^totals:' "$dump" && break
    sleep 0.1
  done
  "$bin" campaign cancel "$cid" --api "http://$api" --data-dir "$data" >/dev/null 2>&1 || true
  [ -n "${CALLGRIND_KEEP:-}" ] && mkdir -p "$CALLGRIND_KEEP" && cp "$dump" "$CALLGRIND_KEEP/campaign-$2.out"
  awk '/^totals:/ {print $2}' "$dump"
}
c1=$(campaign a "$n"); c2=$(campaign b $((n * 2)))
kill "$server"; wait "$server" 2>/dev/null || true

python3 - "$n" "$o1" "$o2" "$s1" "$s2" "$c1" "$c2" <<'PY'
import sys
n, o1, o2, s1, s2, c1, c2 = map(int, sys.argv[1:])
ours, sipp, camp = (o2 - o1) / n, (s2 - s1) / n, (c2 - c1) / n
print("| user-space instructions per NOTIFY (callgrind, marginal) | sipprov stack (batch) | sipprov campaign (whole server) | SIPp | stack / SIPp | campaign / SIPp | campaign / stack |")
print("|---|---|---|---|---|---|---|")
print(f"| {n:,} → {2 * n:,} NOTIFYs, 100 in flight | {ours:,.0f} | {camp:,.0f} | {sipp:,.0f} | {ours / sipp:.2f}x | {camp / sipp:.2f}x | {camp / ours:.2f}x |")
PY
