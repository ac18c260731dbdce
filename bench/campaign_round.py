"""One campaign round of bench/sip.sh: creates a campaign over a group through the admin API,
as `sipprov resync` does, and times it.

    python3 campaign_round.py API DATA_DIR GROUP DEVICES SERVER_PID

Prints `sent_rate recorded_rate cpu_us_per_notify`: NOTIFYs per second from the request that
creates the campaign to the last NOTIFY leaving (the report's `last_notified_at`), and to the
last outcome being recorded (the report's `last_outcome_at`: the server's clock, read in the
database transaction that wrote the last batch of outcomes, just before its commit), and the
server's CPU time (user + system, from /proc) per NOTIFY from the request to the last poll. The
report is polled over one kept-alive connection every POLL seconds only to see that every
outcome is in (no device `pending` or `sending` left); the poll's granularity is not in the
rates. Before session 23 the recorded rate ran to the poll that saw the end, 0 to POLL seconds
(plus the request) after it; a server whose report has no `last_outcome_at` (a build from before
then) is still timed that way, with a note on stderr. The campaign is then cancelled, so that
its wait for confirmations (a long window keeps the report cheap) costs the next rounds nothing.
The server runs on this machine: its clock is this script's.
"""
import http.client
import json
import os
import sys
import time

POLL = 0.05


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    api, data, group, devices, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    token = open(os.path.join(data, "api-token")).read().strip()
    host, port = api.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(method, path, body=None):
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            sys.exit(f"{method} {path}: {resp.status} {data[:300]!r}")
        return json.loads(data) if data else None

    body = {"group": group, "rate": 100000, "max_in_flight": 500, "confirm_window_seconds": 3600}
    c0 = cpu_seconds(pid)
    t0 = time.time()
    created = call("POST", "/api/v1/campaigns", body)
    cid = created["id"]
    while True:
        c = call("GET", f"/api/v1/campaigns/{cid}")
        counts = c["counts"]
        if counts.get("pending", 0) + counts.get("sending", 0) == 0:
            break
        time.sleep(POLL)
    t1 = time.time()
    c1 = cpu_seconds(pid)
    last = c["last_notified_at"] / 1000
    recorded = c.get("last_outcome_at")
    if recorded is None:
        print("campaign_round: no last_outcome_at in the report, timed to the poll", file=sys.stderr)
        recorded = t1
    else:
        recorded /= 1000
    call("POST", f"/api/v1/campaigns/{cid}/cancel", {})
    print(round(devices / (last - t0)), round(devices / (recorded - t0)), round((c1 - c0) * 1e6 / devices, 1))


if __name__ == "__main__":
    main()
