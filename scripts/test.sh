#!/usr/bin/env bash
# The test command (README and CI): installs what is missing, checks formatting and lints,
# then runs every unit, integration and doc test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test
