#!/usr/bin/env bash
# Loader benchmark: builds flowload in release, then runs scripts/bench_loader.py against
# PyTorch 2.11 in the same invocation. Prints a Markdown table of images/s and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --quiet
exec python scripts/bench_loader.py target/release/flowload "${1:-/usr/share/datasets/fashion-mnist}"
