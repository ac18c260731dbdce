"""What kept the server's answering thread waiting during a PnP storm, from `perf sched` events.

    perf script -F cpu,time,event,trace -i sched.data | python3 stalls.py MAIN_TID OWN_TIDS [CPU]

MAIN_TID is the thread that answers the phones (the runtime's, pinned to CPU, 0 by default);
OWN_TIDS the server's threads, comma-separated. A wait is the time from MAIN being woken (by a
packet, from any CPU) or preempted to its running again. Each wait is attributed to whatever ran
on its CPU meanwhile: the server's own threads (marked `own:`) or anything else on the machine.
Prints the waits' distribution, the part of each wait the server's own threads took, and, per
own thread, its runs on the CPU and how often it preempted MAIN.
"""
import collections
import re
import sys

main = sys.argv[1]
own = set(sys.argv[2].split(",")) - {main}
cpu0 = "%03d" % int(sys.argv[3]) if len(sys.argv) > 3 else "000"
switch = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")
wakeup = re.compile(r"comm=(.*?) pid=(\d+) prio=")

runnable_since = None  # when MAIN last became runnable without running yet
current = None  # (tid, comm, since) running on the CPU
during = collections.Counter()
waits, runs, preempted = [], collections.defaultdict(list), collections.Counter()
for line in sys.stdin:
    parts = line.split(None, 3)
    if len(parts) < 4:
        continue
    cpu, t, event, rest = parts[0].strip("[]"), float(parts[1].rstrip(":")), parts[2], parts[3]
    if event.startswith("sched:sched_wakeup"):
        m = wakeup.search(rest)
        if m and m.group(2) == main and runnable_since is None:
            runnable_since, during = t, collections.Counter()
        continue
    if cpu != cpu0 or not event.startswith("sched:sched_switch"):
        continue
    m = switch.search(rest)
    if not m:
        continue
    _, prev, state, next_comm, nxt = m.groups()
    if current is not None:
        tid, comm, since = current
        name = ("own:" if tid in own else "") + comm
        if tid in own:
            runs[name + f"[{tid}]"].append(t - since)
        if runnable_since is not None and tid != main:
            during[name] += t - max(since, runnable_since)
    if prev == main and state.startswith("R"):
        if nxt in own:
            preempted[next_comm + f"[{nxt}]"] += 1
        if runnable_since is None:
            runnable_since, during = t, collections.Counter()
    if nxt == main and runnable_since is not None:
        waits.append((t - runnable_since, during))
        runnable_since = None
    current = (nxt, next_comm, t)


def spread(name, xs):
    xs = sorted(xs)
    if not xs:
        return
    at = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000
    over = "; ".join(f">= {b} ms: {sum(1 for x in xs if x * 1000 >= b)}" for b in (0.5, 1, 2, 4))
    print(f"{name}: {len(xs)}, p99 {at(.99):.3f} ms, p99.9 {at(.999):.3f} ms, max {xs[-1] * 1000:.3f} ms; {over}")


spread("answering thread's waits", [w for w, _ in waits])
spread("the server's own threads' share of each wait", [sum(v for k, v in d.items() if k.startswith("own:")) for _, d in waits])
others = collections.Counter()
for w, d in waits:
    if w >= 1e-3:
        others.update(d)
print("in waits of 1 ms or more, the CPU ran: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in others.most_common(8)))
for name, xs in sorted(runs.items(), key=lambda kv: -sum(kv[1])):
    if sum(xs) < 0.002:
        continue
    xs.sort()
    print(f"{name}: {len(xs)} runs, {sum(xs) * 1000:.1f} ms, p99 {xs[int(len(xs) * .99)] * 1e6:.0f} us, "
          f"max {xs[-1] * 1000:.2f} ms, >= 1 ms: {sum(1 for x in xs if x >= 1e-3)}; preempted the answering thread "
          f"{preempted[name.removeprefix('own:')]} times")
