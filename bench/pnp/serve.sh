# Shared by bench/pnp.sh, bench/pnp-capacity.sh and bench/pnp-stalls.sh (sourced from the repository's root, not
# run). Sourcing it picks the binary (SIPPROV_BIN=path runs that one instead of building this
# tree's, for an A/B against a base), the pinning (server on CPU 0, fleet on CPU 1) and
# defines free_port; pnp_bench_config writes the config, pnp_serve_with_phones starts the server.
# shellcheck source=bench/sipprov-bin.sh
source "$root/bench/sipprov-bin.sh"
if [ "$(nproc)" -ge 2 ]; then FLEET_CPU=(taskset -c 1); SERVER_CPU=(taskset -c 0); else FLEET_CPU=(); SERVER_CPU=(); fi
free_port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# pnp_bench_config PORT writes "$work/sipprov.toml": PnP for known phones, multicast on
# 224.0.1.75:PORT joined on 127.0.0.1. The whole fleet sends from one address here (a real fleet
# has one per phone), so the per-source throttle and request rate are lifted: the benchmark
# measures PnP itself.
pnp_bench_config() { # PORT
  cat >"$work/sipprov.toml" <<TOML
[pnp]
mode = "known"
multicast = "224.0.1.75:$1"
interfaces = ["127.0.0.1"]
[security]
max_failures = 100000000
[sip]
requests_per_source_per_sec = 0
TOML
}

# pnp_serve_with_phones COUNT starts the server with
# "$work/sipprov.toml" (pinned by SERVER_CPU), waits until it listens, sets `api` and `sip` (its
# UDP address), and imports COUNT Yealink phones, MACs 001565000000 upward, 100,000 rows a file
# (the API takes at most 200,000 a file). Needs `bin` and `work`.
pnp_serve_with_phones() { # COUNT
  SIPPROV_LOG=warn "${SERVER_CPU[@]}" "$bin" serve --config "$work/sipprov.toml" --data-dir "$work" \
    --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 2>>"$work/server.log" &
  for _ in $(seq 1 600); do [ -s "$work/listening.json" ] && break; sleep 0.05; done
  api=$(python3 -c "import json;print(json.load(open('$work/listening.json'))['api'])")
  sip=$(python3 -c "import json;print(json.load(open('$work/listening.json'))['sip_udp'])")
  python3 - "$1" "$work/devices" <<'PY'
import sys
n, stem = int(sys.argv[1]), sys.argv[2]
for part, first in enumerate(range(0, n, 100_000)):
    with open(f"{stem}-{part}.csv", "w") as f:
        f.write("mac,vendor,model,group\n")
        for i in range(first, min(n, first + 100_000)):
            f.write("001565%06x,yealink,T46S,\n" % i)
PY
  for csv in "$work"/devices-*.csv; do "$bin" device import "$csv" --api "http://$api" --data-dir "$work" >/dev/null; done
}
