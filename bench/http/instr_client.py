"""The client of bench/http-instructions.sh: sequential GETs of /<mac>.cfg over one kept-alive
connection, so the server's instruction count covers exactly `count` requests.

    instr_client.py HOST:PORT MACS_FILE COUNT SEED MODE

MODE: open (random MACs from the file, Yealink User-Agent with the MAC), openall (each MAC once),
digest / digestall (the same, with Digest SHA-256 qop=auth for user "fleet", nc = 1, 2, ...),
sample (prints the first MAC's file). Counts non-200 answers on stderr.
"""
import hashlib, random, re, socket, sys
host, macs_file, n, seed, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
h, p = host.split(":")
s = socket.create_connection((h, int(p)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
def get(path, extra=""):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
    status = f.readline()
    length = 0; hdrs = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""): break
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower()] = v.strip().decode()
        if k.strip().lower() == b"content-length": length = int(v)
    body = f.read(length)
    return status, hdrs, body
macs = open(macs_file).read().split()
rnd = random.Random(seed)
bad = 0
def ua(mac):
    return "Yealink SIP-T46S 66.86.0.15 " + ":".join(mac[j:j+2] for j in range(0, 12, 2))
if mode == "sample":
    st, _, body = get(f"/{macs[0]}.cfg", f"User-Agent: {ua(macs[0])}\r\n")
    sys.stdout.buffer.write(body)
    bad += b" 200 " not in st
elif mode == "openall":
    for mac in macs:
        st, _, _ = get(f"/{mac}.cfg", f"User-Agent: {ua(mac)}\r\n")
        bad += b" 200 " not in st
elif mode == "open":
    for i in range(n):
        mac = rnd.choice(macs)
        st, _, _ = get(f"/{mac}.cfg", f"User-Agent: {ua(mac)}\r\n")
        bad += b" 200 " not in st
elif mode in ("digest", "digestall"):
    st, hd, _ = get(f"/{macs[0]}.cfg", "User-Agent: Yealink SIP-T46S 66.86.0.15\r\n")
    ch = hd[b"www-authenticate"]
    realm, nonce = re.search(r'realm="([^"]+)"', ch)[1], re.search(r'nonce="([^"]+)"', ch)[1]
    H = lambda x: hashlib.sha256(x.encode()).hexdigest()
    ha1 = H(f"fleet:{realm}:bench-secret")
    seq = macs if mode == "digestall" else [rnd.choice(macs) for _ in range(n)]
    for i, mac in enumerate(seq, 1):
        uri = f"/{mac}.cfg"; nc = f"{i:08x}"
        resp = H(f"{ha1}:{nonce}:{nc}:c0ffee:auth:{H('GET:' + uri)}")
        auth = (f'Digest username="fleet", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                f'algorithm=SHA-256, qop=auth, nc={nc}, cnonce="c0ffee", response="{resp}"')
        st, _, _ = get(uri, f"User-Agent: Yealink SIP-T46S 66.86.0.15\r\nAuthorization: {auth}\r\n")
        bad += b" 200 " not in st
print(mode, "non-200:", bad, file=sys.stderr)
