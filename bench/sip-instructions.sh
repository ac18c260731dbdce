#!/usr/bin/env bash
# Instructions per check-sync NOTIFY executed in user space by the SIP stack
# (crates/sip/examples/notify_load.rs, one batch) and by SIPp sending the same NOTIFY, both
# against the same SIPp phones, counted by valgrind's callgrind. Unlike a rate, the count does
# not depend on what else the machine is doing; it leaves out the kernel (the UDP path, the
# same for both) and the cost of waiting.
#
# Each sender runs twice, with N and 2N NOTIFYs, and the difference divided by N is the
# marginal cost of one NOTIFY (start-up cancels out). Prints a Markdown table on stdout.
#
#   bash bench/sip-instructions.sh [N=5000]
#
# Needs valgrind, sipp (Debian sip-tester) and python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-5000}
work=$(mktemp -d /tmp/sipprov-siprefs.XXXXXX)
cd "$root"
trap 'kill "${PHONE_PID:-}" 2>/dev/null || true' EXIT
cargo build --release --locked -q -p sipprov-sip --example notify_load
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sipp -sf bench/sipp/uas_200_fast.xml -i 127.0.0.1 -p "$port" -t u1 -buff_size 4194304 -m $((n * 8)) -nostdin \
  >/dev/null 2>&1 &
PHONE_PID=$!
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
python3 - "$n" "$o1" "$o2" "$s1" "$s2" <<'PY'
import sys
n, o1, o2, s1, s2 = map(int, sys.argv[1:])
ours, sipp = (o2 - o1) / n, (s2 - s1) / n
print("| user-space instructions per NOTIFY (callgrind, marginal) | sipprov stack (batch) | SIPp | ratio |")
print("|---|---|---|---|")
print(f"| {n:,} → {2 * n:,} NOTIFYs, 100 in flight | {ours:,.0f} | {sipp:,.0f} | {ours / sipp:.2f}x |")
PY
