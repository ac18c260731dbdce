#!/usr/bin/env bash
# Builds the Debian package, installs it with dpkg -i, checks what it installed, starts the
# installed binary with the installed configuration as the sipprov user (on ephemeral loopback
# ports: this machine has no systemd running), and removes it with dpkg -r.
#
#   scripts/test-package.sh [--profile debug|release] [--binary PATH]
#
# Default: the debug profile (CI saves a release build). --binary packages a binary built
# already (see packaging/build-deb.sh).
#
# Needs root (dpkg -i); refuses to run where sipprov is already installed from elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
build=(--profile debug)
[ $# -gt 0 ] && build=("$@")
fail() { echo "package test FAILED: $*" >&2; exit 1; }
if dpkg -s sipprov >/dev/null 2>&1; then
  fail "a sipprov package is already installed here; not touching it"
fi
deb=$(bash packaging/build-deb.sh "${build[@]}" | tail -n1)
echo "built $deb"
dpkg-deb --info "$deb" >/dev/null
export DEBIAN_FRONTEND=noninteractive
dpkg -i "$deb"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  dpkg -s sipprov >/dev/null 2>&1 && dpkg -r sipprov >/dev/null || true
}
trap cleanup EXIT

# Files in place, with the owners and modes the postinst gives them.
for f in /usr/bin/sipprov /lib/systemd/system/sipprov.service /etc/sipprov/sipprov.toml \
         /usr/share/man/man1/sipprov.1.gz /usr/share/man/man1/sipprov-backup.1.gz \
         /usr/share/man/man1/sipprov-device-add.1.gz /usr/share/bash-completion/completions/sipprov \
         /usr/share/zsh/vendor-completions/_sipprov /usr/share/fish/vendor_completions.d/sipprov.fish; do
  [ -e "$f" ] || fail "$f missing"
done
getent passwd sipprov >/dev/null || fail "no sipprov user"
[ "$(stat -c %a:%U /var/lib/sipprov)" = 700:sipprov ] || fail "/var/lib/sipprov is $(stat -c %a:%U /var/lib/sipprov)"
[ "$(stat -c %a:%U:%G /etc/sipprov/sipprov.toml)" = 640:root:sipprov ] || fail "config is $(stat -c %a:%U:%G /etc/sipprov/sipprov.toml)"
grep -qx /etc/sipprov/sipprov.toml /var/lib/dpkg/info/sipprov.conffiles || fail "config is not a conffile"
if command -v systemd-analyze >/dev/null; then
  # Checks directives, the ExecStart binary and the Documentation= man pages (installed above).
  out=$(systemd-analyze verify /lib/systemd/system/sipprov.service 2>&1) || fail "systemd-analyze verify: $out"
  if echo "$out" | grep -i 'sipprov' ; then fail "systemd-analyze verify: $out"; fi
  echo "unit verifies"
fi
/usr/bin/sipprov --version | grep -q '^sipprov ' || fail "--version"
man -l /usr/share/man/man1/sipprov-restore.1.gz 2>/dev/null | grep -q 'restore' || fail "man page"

# The installed binary, the installed configuration, the installed data directory, as the
# service user; flags move the listeners to free loopback ports.
run=$(mktemp -d)
chmod 755 "$run"
# A listening.json left by an earlier run here names ports nobody listens on: wait for this one's.
rm -f /var/lib/sipprov/listening.json
runuser -u sipprov -- /usr/bin/sipprov serve --config /etc/sipprov/sipprov.toml \
  --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --sip-listen 127.0.0.1:0 >"$run/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  [ -s /var/lib/sipprov/listening.json ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$run/log"; fail "the installed server exited"; }
  sleep 0.1
done
api=$(python3 -c 'import json;print(json.load(open("/var/lib/sipprov/listening.json"))["api"])')
http=$(python3 -c 'import json;print(json.load(open("/var/lib/sipprov/listening.json"))["http"])')
/usr/bin/sipprov --api "http://$api" --data-dir /var/lib/sipprov vendors | grep -q yealink || fail "the admin API did not answer"
/usr/bin/sipprov --api "http://$api" --data-dir /var/lib/sipprov device add 001565aabbcc --vendor yealink --model T46S
code=$(curl -s -o /dev/null -w '%{http_code}' -A 'Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc' "http://$http/001565aabbcc.cfg")
[ "$code" = 200 ] || fail "the phone listener answered $code"
[ "$(stat -c %U:%a /var/lib/sipprov/sipprov.db)" = sipprov:600 ] || fail "database is $(stat -c %U:%a /var/lib/sipprov/sipprov.db)"
# A backup of the running installed server, and a restore refused while it runs.
/usr/bin/sipprov --data-dir /var/lib/sipprov backup "$run/backup.db" >/dev/null
/usr/bin/sipprov --data-dir /var/lib/sipprov restore "$run/backup.db" 2>/dev/null && fail "restore while running"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

dpkg -r sipprov >/dev/null
[ -e /usr/bin/sipprov ] && fail "dpkg -r left the binary"
[ -e /lib/systemd/system/sipprov.service ] && fail "dpkg -r left the unit"
[ -e /etc/sipprov/sipprov.toml ] || fail "dpkg -r removed the conffile (only purge does)"
dpkg -P sipprov >/dev/null
[ -e /etc/sipprov/sipprov.toml ] && fail "dpkg -P left the conffile"
# The data directory stays, even on purge (it is the fleet's database); clean the test's up.
rm -rf /var/lib/sipprov "$run"
echo "package test: 1 passed, 0 failed"
