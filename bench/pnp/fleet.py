"""A fleet of PnP phones for bench/pnp.sh: sends Yealink `ua-profile` SUBSCRIBEs at a fixed rate
and times each one to its NOTIFY.

    python3 fleet.py TARGET FIRST N RATE MULTICAST(0|1) [old]

Two processes share one UDP socket, so that neither waits for the other: the sender (a child)
sends datagrams built before the clock starts, paced at RATE per second, and notes the time just
before each leaves; the receiver (the parent) answers every NOTIFY with 200 at once. A NOTIFY's
arrival is the kernel's receive timestamp (SO_TIMESTAMPNS), not the moment Python got round to
reading it, so a receiver that falls behind does not add its own backlog to the latency. Each
phone has its own MAC, Call-ID and branch and sends once (no retransmission: a datagram dropped
anywhere counts as lost). Prints one Markdown table row.

`old` runs the single-process fleet of earlier sessions (one loop sending, reading and answering,
timing with the read): kept to show what the load generator itself adds.

After the table row's usual cells come three more, what became of the SUBSCRIBEs that got no
NOTIFY: how many were answered 503, how many got another final response (or a 200 and then no
NOTIFY), and how many got nothing at all within the run's bound (timeouts).
"""
import array
import os
import re
import select
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
CALL_ID = re.compile(rb"\r\n(?:call-id|i)[ \t]*:[ \t]*bench-(\d+)-(\d+)", re.I)
KEEP = (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")


def open_socket(multicast):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    if multicast:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    s.bind(("127.0.0.1", 0))
    return s


def subscribe(first, i, lport):
    mac = "001565%06x" % (first + i)
    return (f"SUBSCRIBE sip:MAC{mac}@224.0.1.75 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-b{first}-{i}\r\n"
            f"From: <sip:MAC{mac}@224.0.1.75>;tag=f{i}\r\nTo: <sip:MAC{mac}@224.0.1.75>\r\nCall-ID: bench-{first}-{i}\r\n"
            f"CSeq: 1 SUBSCRIBE\r\nContact: <sip:MAC{mac}@127.0.0.1:{lport}>\r\nMax-Forwards: 70\r\n"
            "Event: ua-profile;profile-type=\"device\";vendor=\"yealink\";model=\"T46S\";version=\"66.86.0.15\"\r\n"
            "Expires: 0\r\nAccept: application/url\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\nContent-Length: 0\r\n\r\n").encode()


def ok_for(data):
    """The 200 OK answering a NOTIFY: its Via, From, To, Call-ID and CSeq echoed."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    keep = [l for l in head if l.split(b":", 1)[0].strip().lower() in KEEP]
    return b"SIP/2.0 200 OK\r\n" + b"\r\n".join(keep) + b"\r\nContent-Length: 0\r\n\r\n"


def row(name, n, rate, oks, lat, span, fates):
    lat = sorted(lat)
    achieved = (n - 1) / span if span > 0 else float("nan")
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
    return (f"| {name} | {n} | {rate:.0f}/s | {achieved:.0f}/s | {oks} | {len(lat)} | {n - len(lat)} | {pct(0.5):.2f} | {pct(0.9):.2f} "
            f"| {pct(0.99):.2f} | {lat[-1] if lat else float('nan'):.2f} | {fates[0]} | {fates[1]} | {fates[2]} |")


def fates_of(n, status, notified):
    """(503s, other answers, timeouts) among the SUBSCRIBEs that got no NOTIFY; `status[k]` is the
    first final status phone k got (0: none), `notified(k)` whether its NOTIFY came."""
    busy = other = silent = 0
    for k in range(n):
        if notified(k):
            continue
        if status[k] == 503:
            busy += 1
        elif status[k]:
            other += 1
        else:
            silent += 1
    return busy, other, silent


def phone_of(data, first, n):
    """The phone index a message's Call-ID names, or -1."""
    m = CALL_ID.search(data)
    k = int(m.group(2)) if m and int(m.group(1)) == first else -1
    return k if 0 <= k < n else -1


def send_paced(s, dest, datagrams, rate, start, sent):
    """Sends each datagram at its time (late ones at once), noting when each left."""
    for i, d in enumerate(datagrams):
        due = start + i / rate
        wait = due - time.time()
        if wait > 0.0002:
            time.sleep(wait - 0.0001)
        while time.time() < due:
            pass
        sent[i] = time.time()
        s.sendto(d, dest)


def two_process(s, dest, first, n, rate):
    datagrams = [subscribe(first, i, s.getsockname()[1]) for i in range(n)]
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    start = time.time() + 0.2
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the sender
        os.close(read_end)
        sent = array.array("d", [0.0]) * n
        send_paced(s, dest, datagrams, rate, start, sent)
        payload = sent.tobytes()
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view):]
        os._exit(0)
    os.close(write_end)
    received = array.array("d", [0.0]) * n
    status = array.array("H", [0]) * n
    oks = notified = 0
    others = {}
    deadline = start + n / rate + 10  # bounded: 10 s after the last SUBSCRIBE
    while notified < n and time.time() < deadline:
        if not select.select([s], [], [], 0.05)[0]:
            continue
        while True:
            try:
                data, anc, _, src = s.recvmsg(65536, 64, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if data.startswith(b"SIP/2.0 "):
                k = phone_of(data, first, n)
                if k >= 0 and not status[k] and data[8:11].isdigit():
                    status[k] = int(data[8:11])
                if data.startswith(b"SIP/2.0 200"):
                    oks += 1
                else:
                    others[data[8:11]] = others.get(data[8:11], 0) + 1
            elif data.startswith(b"NOTIFY "):
                at = time.time()
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        at = sec + nsec * 1e-9
                m = CALL_ID.search(data)
                if m and int(m.group(1)) == first:
                    k = int(m.group(2))
                    if 0 <= k < n and received[k] == 0.0:
                        received[k] = at
                        notified += 1
                s.sendto(ok_for(data), src)
    chunks = []
    while True:
        chunk = os.read(read_end, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.waitpid(child, 0)
    sent = array.array("d")
    sent.frombytes(b"".join(chunks))
    lat = [(received[k] - sent[k]) * 1000.0 for k in range(n) if received[k] and sent[k]]
    if others:
        print("other final responses:", {k.decode(): v for k, v in others.items()}, file=sys.stderr)
    fates = fates_of(n, status, lambda k: received[k] != 0.0)
    return oks, lat, sent[n - 1] - sent[0], fates


def one_process(s, dest, first, n, rate):
    """The fleet of earlier sessions: one loop, times taken when Python reads the datagram."""
    s.setblocking(False)
    lport = s.getsockname()[1]
    sent, notified, oks = {}, {}, 0
    status = array.array("H", [0]) * n
    start = time.perf_counter()
    deadline = start + n / rate + 10
    i = 0
    while time.perf_counter() < deadline and len(notified) < n:
        now = time.perf_counter()
        while i < n and start + i / rate <= now:
            sent[i] = time.perf_counter()
            s.sendto(subscribe(first, i, lport), dest)
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
            if data.startswith(b"SIP/2.0 "):
                k = phone_of(data, first, n)
                if k >= 0 and not status[k] and data[8:11].isdigit():
                    status[k] = int(data[8:11])
                oks += data.startswith(b"SIP/2.0 200")
            elif data.startswith(b"NOTIFY "):
                m = CALL_ID.search(data)
                k = int(m.group(2)) if m and int(m.group(1)) == first else -1
                if k in sent and k not in notified:
                    notified[k] = (at - sent[k]) * 1000.0
                s.sendto(ok_for(data), src)
    fates = fates_of(n, status, lambda k: k in notified)
    return oks, list(notified.values()), max(sent.values()) - min(sent.values()), fates


def main():
    target, first, n, rate, multicast = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
    old = len(sys.argv) > 6 and sys.argv[6] == "old"
    host, port = target.rsplit(":", 1)
    s = open_socket(multicast)
    run = one_process if old else two_process
    oks, lat, span, fates = run(s, (host, int(port)), first, n, rate)
    name = ("multicast (lo)" if multicast else "unicast") + (", one-process fleet" if old else "")
    print(row(name, n, rate, oks, lat, span, fates), flush=True)


if __name__ == "__main__":
    main()
