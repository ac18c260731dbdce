#!/usr/bin/env python3
"""A SIP-over-TLS peer on Python's ssl module (OpenSSL), independent of sipprov's rustls stack.

phone:   listens on 127.0.0.1, prints its port, then serves CONNECTIONS TLS connections: each
         request is checked as a check-sync NOTIFY (Via SIP/2.0/TLS, Event, Subscription-State,
         Content-Length: 0) and answered 200, or 400 naming what was wrong; one JSON line per
         request (or failed handshake) goes to stdout. Exit status 0 when every request passed.
options: connects to PORT, verifies the server against CA for 127.0.0.1, sends one OPTIONS and
         prints the response as one JSON line; exit status 0 on a 200.
"""

import argparse
import json
import socket
import ssl
import sys
import uuid


def read_message(conn):
    """One SIP message from a stream: the header section, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise EOFError("connection closed before a whole message arrived")
        data += chunk
        # Keep-alive CRLFs between messages (RFC 5626) are not part of one.
        data = data.lstrip(b"\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    length = int(header(headers, "Content-Length") or "0")
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            raise EOFError("connection closed inside the body")
        body += chunk
    return lines[0], headers, body[:length]


def header(headers, name):
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


def check_notify(start, headers):
    """What is wrong with this check-sync NOTIFY, or None."""
    via = header(headers, "Via") or ""
    if not start.startswith("NOTIFY "):
        return "not a NOTIFY"
    if not via.startswith("SIP/2.0/TLS "):
        return "Via is not SIP/2.0/TLS"
    if not (header(headers, "Event") or "").startswith("check-sync"):
        return "no check-sync Event"
    if header(headers, "Subscription-State") != "terminated":
        return "Subscription-State is not terminated"
    if header(headers, "Content-Length") != "0":
        return "Content-Length is not 0"
    if ";tag=" not in (header(headers, "From") or ""):
        return "From has no tag"
    return None


def answer(conn, headers, status, reason):
    lines = [f"SIP/2.0 {status} {reason}"]
    for name in ("Via", "From", "Call-ID", "CSeq"):
        lines += [f"{n}: {v}" for n, v in headers if n.lower() == name.lower()]
    lines.append(f"To: {header(headers, 'To')};tag=python-phone")
    lines += ["Server: python-ssl-phone", "Content-Length: 0", "", ""]
    conn.sendall("\r\n".join(lines).encode("utf-8"))


def phone(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(args.idle)
    print(listener.getsockname()[1], flush=True)
    ok = True
    for _ in range(args.connections):
        raw, peer = listener.accept()
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            print(json.dumps({"handshake_error": str(e)}), flush=True)
            raw.close()
            continue
        with conn:
            conn.settimeout(args.idle)
            start, headers, _ = read_message(conn)
            problem = check_notify(start, headers)
            peer_cert = conn.getpeercert()
            report = {"start": start, "headers": dict(headers), "problem": problem, "client_cert": bool(peer_cert)}
            print(json.dumps(report), flush=True)
            if problem:
                ok = False
                answer(conn, headers, 400, problem)
            else:
                answer(conn, headers, 200, "OK")
    return 0 if ok else 1


def options(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    with socket.create_connection(("127.0.0.1", args.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            local = conn.getsockname()
            tag = uuid.uuid4().hex[:8]
            request = "\r\n".join([
                "OPTIONS sip:sipprov@127.0.0.1 SIP/2.0",
                f"Via: SIP/2.0/TLS 127.0.0.1:{local[1]};branch=z9hG4bK{uuid.uuid4().hex};rport",
                "Max-Forwards: 70",
                f"From: <sip:python@127.0.0.1>;tag={tag}",
                "To: <sip:sipprov@127.0.0.1>",
                f"Call-ID: {uuid.uuid4().hex}@127.0.0.1",
                "CSeq: 1 OPTIONS",
                f"Contact: <sips:python@127.0.0.1:{local[1]}>",
                "Content-Length: 0",
                "",
                "",
            ])
            conn.sendall(request.encode("utf-8"))
            start, headers, _ = read_message(conn)
    print(json.dumps({"start": start, "headers": dict(headers)}), flush=True)
    return 0 if start.startswith("SIP/2.0 200 ") else 1


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("phone")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", help="require a client certificate from this CA")
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--idle", type=float, default=60.0, help="give up after this many idle seconds")
    o = sub.add_parser("options")
    o.add_argument("--ca", required=True)
    o.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    return phone(args) if args.mode == "phone" else options(args)


if __name__ == "__main__":
    sys.exit(main())
