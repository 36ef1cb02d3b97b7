#!/usr/bin/env bash
# The test command (README and CI): installs what is missing (the Python package built and
# installed among it), checks formatting and lints, then runs every unit, integration and doc
# test of the Rust crates (flowload-core's link no libtorch), and the Python package's pytest
# suite against the installed wheel. With cargo-nextest on the machine, the two crates' tests run side by side in one
# pool of processes (measured: 179 s for all of them, against 223 s one test binary after the
# other), and the doc tests after them; without it, `cargo test` runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
    cargo test --workspace --doc
else
    cargo test --workspace
fi
# The binary the cargo tests built: the Python tests check that `flowload report` reads a
# Python run's results.
FLOWLOAD_BIN="${CARGO_TARGET_DIR:-target}/debug/flowload" python -m pytest -q crates/python/tests
