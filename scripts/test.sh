#!/usr/bin/env bash
# The test command (README and CI): installs what is missing, checks formatting and lints,
# then runs every unit, integration and doc test of both crates (flowload-core's link no
# libtorch).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
