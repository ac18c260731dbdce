#!/usr/bin/env bash
# Installs what the test suite talks to: curl, SIPp, tshark, openssl, Python 3 (the
# SIP-over-TLS peer: its ssl module is OpenSSL), PostgreSQL, the Prometheus parser and promtool,
# Chromium with chromedriver and Selenium (the console's browser test), and (for benchmarks) nginx and wrk. Idempotent; needs root (CI runs as root).
set -euo pipefail
need=()
# groff and man render the generated man pages; strip, dpkg-deb and systemd-analyze build and
# check the Debian package (scripts/test-package.sh).
for pair in curl:curl sipp:sip-tester tshark:tshark openssl:openssl python3:python3 nginx:nginx wrk:wrk \
    groff:groff-base man:man-db strip:binutils dpkg-deb:dpkg systemd-analyze:systemd; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
# The metrics tests parse /metrics with the Prometheus project's Python parser and check the
# example alert rules with promtool (Debian's prometheus package).
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1 || need+=(python3-prometheus-client)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# The web console's browser test: Debian's Chromium and its driver, driven by Debian's Selenium
# (under /usr/bin/python3, whatever python3 is first on PATH).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
/usr/bin/python3 -c 'import selenium' >/dev/null 2>&1 || need+=(python3-selenium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The OpenAPI document's validator (crates/sipprov/tests/openapi.rs), from PyPI.
if ! python3 -c "import openapi_spec_validator" >/dev/null 2>&1; then
  echo "installing: openapi-spec-validator (PyPI)"
  python3 -m pip install -q "openapi-spec-validator>=0.7" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "openapi-spec-validator>=0.7"
fi
