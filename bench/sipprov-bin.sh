# Sourced by the benches (from the repository's root, `root` set): sets `bin`, the sipprov binary
# to measure. SIPPROV_BIN=path runs a binary built elsewhere (an A/B of two builds back to back);
# otherwise this tree's release build, built first.
if [ -n "${SIPPROV_BIN:-}" ]; then
  bin=$SIPPROV_BIN
else
  cargo build --release --locked -q -p sipprov
  bin="${CARGO_TARGET_DIR:-$root/target}/release/sipprov"
fi
