#!/usr/bin/env bash
# Campaign takeover after kill -9, on three sipprov nodes sharing one PostgreSQL database, against
# SIPp phones on loopback. Each run: a fresh database, three nodes, DEVICES devices, a campaign
# launched on node 1 at RATE NOTIFYs a second; once every node holds a chunk, node 1 is killed
# with SIGKILL. Measured from the kill:
#  - to the first NOTIFY another node sent to a device of a chunk node 1 held (the device's
#    `notified_at`, written as its NOTIFY leaves);
#  - to the campaign's completion (`finished_at`: every device has an outcome and every
#    confirmation window has closed; the window is 1 s).
# The first figure is bounded below by the lease length (`[cluster] lease_secs`, LEASE): a
# dead node's chunks wait for their lease to run out. Prints a Markdown table (every run, then
# the median) on stdout.
#
#   bash bench/cluster-takeover.sh [RUNS=5] [DEVICES=2000] [RATE=200] [LEASE=10]
#
# Needs PostgreSQL (SIPPROV_TEST_POSTGRES_URL, else scripts/test-postgres.sh starts the test
# server), sipp, psql and python3. SIPPROV_BIN=path uses that binary instead of a release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
devices=${2:-2000}
rate=${3:-200}
lease=${4:-10}
cd "$root"
if [ -z "${SIPPROV_BIN:-}" ]; then
  cargo build --release --locked -q -p sipprov
  SIPPROV_BIN="$root/target/release/sipprov"
fi
url=${SIPPROV_TEST_POSTGRES_URL:-$(bash scripts/test-postgres.sh start)}
work=$(mktemp -d /tmp/sipprov-takeover.XXXXXX)
# Every process this script starts is one of its background jobs (or the python driver's
# children, which it kills itself), stopped by its id, never by name.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
SIPPROV_BIN="$SIPPROV_BIN" BASE_URL="$url" WORK="$work" python3 - "$runs" "$devices" "$rate" "$lease" <<'PY'
import json, os, secrets, signal, socket, statistics, subprocess, sys, time

runs, devices, rate, lease = (int(a) for a in sys.argv[1:5])
bin_, base, work = os.environ["SIPPROV_BIN"], os.environ["BASE_URL"], os.environ["WORK"]
children = []

def psql(db, query):
    out = subprocess.run(["psql", db, "-v", "ON_ERROR_STOP=1", "-qtAc", query], check=True, capture_output=True, text=True)
    return [l for l in out.stdout.splitlines() if l]

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start_node(db, data, token):
    os.makedirs(data, mode=0o700, exist_ok=True)
    path = os.path.join(data, "api-token")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (token + "\n").encode()); os.close(fd)
    with open(os.path.join(data, "sipprov.toml"), "w") as f:
        f.write(f"[cluster]\nlease_secs = {lease}\n")
    listening = os.path.join(data, "listening.json")
    log = open(os.path.join(data, "server.log"), "a")
    p = subprocess.Popen([bin_, "serve", "--data-dir", data, "--database-url", db, "--config", os.path.join(data, "sipprov.toml"),
                          "--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "SIPPROV_LOG": "warn"})
    children.append(p)
    for _ in range(600):
        if os.path.exists(listening) and os.path.getsize(listening) > 0:
            return p, json.load(open(listening))["api"]
        time.sleep(0.05)
    raise SystemExit(f"node did not start: {open(os.path.join(data, 'server.log')).read()}")

def cli(data, api, *args):
    subprocess.run([bin_, *args, "--api", f"http://{api}", "--data-dir", data], check=True, capture_output=True)

def one_run(n):
    name = f"sipprov_takeover_{os.getpid()}_{n}"
    psql(base, f"CREATE DATABASE {name}")
    db = base.rsplit("/", 1)[0] + "/" + name
    token = secrets.token_hex(32)
    port = free_port()
    phones = subprocess.Popen(["sipp", "-sf", "bench/sipp/uas_200_fast.xml", "-i", "127.0.0.1", "-p", str(port), "-t", "u1",
                               "-buff_size", "4194304", "-m", str(devices * 3), "-nostdin"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children.append(phones)
    time.sleep(0.5)
    dirs = [os.path.join(work, f"run{n}-node{i}") for i in range(3)]
    first, api = start_node(db, dirs[0], token)
    csv = os.path.join(work, "devices.csv")
    with open(csv, "w") as f:
        f.write("mac,vendor,model,group,contact,line.1.username\n")
        for i in range(devices):
            f.write(f"001565{i:06x},yealink,T46S,fleet,sip:{10000 + i}@127.0.0.1:{port},{10000 + i}\n")
    cli(dirs[0], api, "device", "import", csv)
    # The other nodes start after the import, so that they read the devices at start whether or
    # not changes reach running nodes.
    others = [start_node(db, d, token) for d in dirs[1:]]
    cli(dirs[0], api, "resync", "--group", "fleet", "--rate", str(rate), "--max-in-flight", "100", "--confirm-window", "1")
    held = f"holder LIKE '%/{first.pid}/%'"
    deadline = time.time() + 60
    while time.time() < deadline:
        holders = psql(db, "SELECT COUNT(DISTINCT holder) FROM campaign_chunks WHERE campaign_id = 1 AND sent = 0 AND holder IS NOT NULL")
        if int(holders[0]) >= 3 and psql(db, f"SELECT COUNT(*) FROM campaign_chunks WHERE campaign_id = 1 AND sent = 0 AND {held}")[0] != "0":
            break
        time.sleep(0.05)
    else:
        raise SystemExit("the three nodes never held chunks at once")
    chunks = psql(db, f"SELECT first_mac || ',' || last_mac FROM campaign_chunks WHERE campaign_id = 1 AND sent = 0 AND {held}")
    first.send_signal(signal.SIGKILL); first.wait()
    killed_ms = int(time.time() * 1000)
    deadline = time.time() + 300
    while psql(db, "SELECT state FROM campaigns WHERE id = 1") != ["done"]:
        if time.time() > deadline:
            raise SystemExit("the campaign did not finish")
        time.sleep(0.1)
    ranges = " OR ".join(f"(mac >= '{c.split(',')[0]}' AND mac <= '{c.split(',')[1]}')" for c in chunks)
    first_notify = int(psql(db, f"SELECT MIN(notified_at) FROM campaign_devices WHERE campaign_id = 1 AND notified_at >= {killed_ms} AND ({ranges})")[0])
    finished = int(psql(db, "SELECT finished_at FROM campaigns WHERE id = 1")[0])
    # The selection less the devices with an outcome (a device gets its row with its outcome).
    outcomes = psql(db, "SELECT devices - (SELECT COUNT(*) FROM campaign_devices WHERE campaign_id = 1 "
                        "AND state IN ('notified', 'failed')) FROM campaigns WHERE id = 1")[0]
    for p, _ in others:
        p.kill(); p.wait()
    phones.kill(); phones.wait()
    psql(base, f"DROP DATABASE {name}")
    return (first_notify - killed_ms) / 1000, (finished - killed_ms) / 1000, len(chunks), outcomes

try:
    print(f"Campaign takeover after kill -9: 3 nodes, {devices} devices at {rate}/s, lease_secs = {lease}, SIPp phones on loopback")
    print()
    print("| run | chunks of the killed node | kill → first NOTIFY by another node (s) | kill → campaign done (s) | devices left without an outcome |")
    print("|---|---|---|---|---|")
    firsts, dones = [], []
    for n in range(1, runs + 1):
        first, done, chunks, left = one_run(n)
        firsts.append(first); dones.append(done)
        print(f"| {n} | {chunks} | {first:.2f} | {done:.2f} | {left} |", flush=True)
    print(f"| **median** | | **{statistics.median(firsts):.2f}** | **{statistics.median(dones):.2f}** | |")
finally:
    for c in children:
        if c.poll() is None:
            c.kill(); c.wait()
PY
rm -rf "$work"
