"""A trivial PnP responder for bench/pnp.sh: answers each SUBSCRIBE with 200 OK and a NOTIFY
carrying a fixed URL, absorbs the phones' 200s, and does nothing else (no inventory, no
retransmission). Run against the same fleet as the server, it shows how much of the measured
latency is the fleet's own.

    python3 responder.py PORT [GROUP]   (prints nothing; stopped by its caller)
"""
import re
import socket
import struct
import sys

HDR = re.compile(rb"\r\n(via|v|from|f|to|t|call-id|i|cseq|contact|m|event|o)[ \t]*:[ \t]*([^\r]*)", re.I)
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if len(sys.argv) > 2:
    s.bind((sys.argv[2], port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(sys.argv[2]), socket.inet_aton("127.0.0.1")))
else:
    s.bind(("127.0.0.1", port))
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.bind(("127.0.0.1", 0))
url = b"http://127.0.0.1:8080/"
while True:
    data, src = s.recvfrom(65536)
    if not data.startswith(b"SUBSCRIBE "):
        continue
    h = {}
    for m in HDR.finditer(data):
        h.setdefault(m.group(1).lower()[:1] if len(m.group(1)) == 1 else m.group(1).lower(), m.group(2))
    via, frm, to, call = h.get(b"via", b""), h.get(b"from", b""), h.get(b"to", b""), h.get(b"call-id", b"")
    cseq, event = h.get(b"cseq", b""), h.get(b"event", b"")
    out.sendto(b"SIP/2.0 200 OK\r\nVia: " + via + b"\r\nFrom: " + frm + b"\r\nTo: " + to + b";tag=r\r\nCall-ID: " + call
               + b"\r\nCSeq: " + cseq + b"\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n", src)
    out.sendto(b"NOTIFY sip:phone@" + ("%s:%d" % src).encode() + b" SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:"
               + str(out.getsockname()[1]).encode() + b";branch=z9hG4bK" + call + b"\r\nFrom: " + to
               + b";tag=r\r\nTo: " + frm + b"\r\nCall-ID: " + call + b"\r\nCSeq: 1 NOTIFY\r\nEvent: " + event
               + b"\r\nSubscription-State: terminated;reason=timeout\r\nContent-Type: application/url\r\nContent-Length: "
               + str(len(url)).encode() + b"\r\n\r\n" + url, src)
