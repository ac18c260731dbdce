#!/usr/bin/env bash
# Runs every test: installs the real peers the tests talk to, starts a throwaway
# PostgreSQL so the store is tested on both databases, then the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
# The console's browser test skips without Chromium only when this is unset: never here.
export SIPPROV_REQUIRE_BROWSER=1
# The cluster tests (several nodes on one PostgreSQL) skip without a database only when this
# is unset: here a PostgreSQL that cannot start fails them instead of hiding them.
export SIPPROV_REQUIRE_POSTGRES=1
if url=$(bash scripts/test-postgres.sh start); then
  export SIPPROV_TEST_POSTGRES_URL="$url"
  trap 'bash scripts/test-postgres.sh stop' EXIT
else
  echo "warning: PostgreSQL could not start; store tests run on SQLite only and the cluster tests fail" >&2
fi
# The house stays clean: formatting, lints with warnings denied, and docs that build.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Licenses and duplicate versions, from the lock file and cargo's registry cache.
python3 scripts/check-deps.py
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads=2
# The Debian package, from the debug binary just built: installed with dpkg -i, checked, removed.
bash scripts/test-package.sh --binary target/debug/sipprov
