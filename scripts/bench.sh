#!/usr/bin/env bash
# Benchmarks against PyTorch 2.11, each side by side in one invocation:
#   scripts/bench.sh loader [DATA_DIR]   loader-only images/s (scripts/bench_loader.py)
#   scripts/bench.sh train  [DATA_DIR]   training epoch and data-wait seconds (scripts/bench_train.py)
# Builds flowload in release first. Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --quiet
what="${1:-loader}"
data="${2:-/usr/share/datasets/fashion-mnist}"
case "$what" in
    loader) exec python scripts/bench_loader.py target/release/flowload "$data" ;;
    train) exec python scripts/bench_train.py target/release/flowload "$data" ;;
    *) echo "usage: scripts/bench.sh loader|train [DATA_DIR]" >&2; exit 2 ;;
esac
