# Simulates the fetch log's SQLite work per 1 s interval with 10,000 devices each fetching every
# interval: "append" = today (10,000 event rows a second), "extend" = raise the open event in
# place (json_set) and append one event per device per 60 intervals. Reports CPU per interval
# over time and the database size.
import sqlite3, sys, time, os, json, tempfile, resource
mode, intervals = sys.argv[1], int(sys.argv[2])
N = 10000
d = tempfile.mkdtemp(); path = os.path.join(d, "t.db")
c = sqlite3.connect(path, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=NORMAL")
c.execute("CREATE TABLE devices (mac TEXT PRIMARY KEY, created_at BIGINT NOT NULL)")
c.execute("CREATE TABLE device_events (id BIGINT PRIMARY KEY, mac TEXT NOT NULL, at BIGINT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL)")
c.execute("CREATE INDEX device_events_mac ON device_events (mac, at)")
c.execute("CREATE INDEX device_events_kind_at ON device_events (kind, at)")
macs = ["001565%06x" % i for i in range(N)]
c.execute("BEGIN"); c.executemany("INSERT INTO devices VALUES (?, 0)", [(m,) for m in macs]); c.execute("COMMIT")
nid = 1; open_ids = {}
def detail(m, t, n):
    return json.dumps({"file": m + ".cfg", "ip": "127.0.0.1", "hash": "ab" * 32, "status": 200, "count": n, "last_at": t, "auth": "open", "model": "T46S", "firmware": "66.86.0.15"})
cpu = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime
out = []
for k in range(intervals):
    t = 1000 * k
    c0 = cpu()
    c.execute("BEGIN IMMEDIATE")
    ins, upd = [], []
    for m in macs:
        o = open_ids.get(m)
        if mode == "extend" and o and k - o[1] < 60:
            upd.append((o[2] + 3, t, o[0])); open_ids[m] = (o[0], o[1], o[2] + 3)
        else:
            ins.append((nid, m, t, "fetch", detail(m, t, 3))); open_ids[m] = (nid, k, 3); nid += 1
    if ins: c.executemany("INSERT INTO device_events VALUES (?, ?, ?, ?, ?)", ins)
    if upd: c.executemany("UPDATE device_events SET detail = json_set(detail, '$.count', ?, '$.last_at', ?) WHERE id = ? AND at >= (SELECT created_at FROM devices d WHERE d.mac = device_events.mac)", upd)
    c.execute("COMMIT")
    out.append(cpu() - c0)
size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
q = max(1, intervals // 4)
print(f"{mode}: CPU ms per interval, quarters: " + ", ".join(f"{1000*sum(out[i:i+q])/len(out[i:i+q]):.0f}" for i in range(0, intervals, q)) + f"; db+wal {size/1e6:.0f} MB after {intervals} intervals")
