#!/usr/bin/env bash
# Benchmarks against PyTorch 2.11, each side by side in one invocation:
#   scripts/bench.sh loader [DATA_DIR]   loader-only images/s (scripts/bench_loader.py)
#   scripts/bench.sh train  [DATA_DIR [CIFAR_DIR]]  training epoch and data-wait seconds: the seed's
#                                        network, then a TorchScript ResNet (scripts/bench_train.py)
#   scripts/bench.sh encoded [DATA_DIR]  PNG-in-Parquet decode vs PIL and DALI, peak RSS (scripts/bench_encoded.py)
#   scripts/bench.sh cluster [DATA_DIR]  1 process vs 2 processes (cluster-local) vs 2 workers (scripts/bench_cluster.py)
#   scripts/bench.sh photos [PHOTO_DIR]  JPEG photos, RandomResizedCrop + flip, vs DataLoader, DALI, PIL (scripts/bench_photos.py)
#   scripts/bench.sh stats [PHOTO_DIR]   statistics cache: full pass vs hit vs one shard appended to 10 (scripts/bench_stats.py)
#   scripts/bench.sh auto [DATA_DIR [PHOTO_DIR]]  --workers auto vs every fixed count, 5 workloads (scripts/bench_auto.py)
#   scripts/bench.sh python [loader|train|memory]  the Python package: flowload.Loader vs the binary,
#                                        DALI, SPDL and the DataLoader; examples/train.py end to end;
#                                        RSS over 20 epochs (scripts/bench_python.py)
#   scripts/bench.sh checkpoint [DATA_DIR]  checkpoints at each epoch's end vs none on the seed's
#                                        experiment; a checkpoint's size and write time (scripts/bench_checkpoint.py)
#   scripts/bench.sh ab BEFORE_BINARY [DATA_DIR [PHOTO_DIR]]  a binary built before a change vs this build,
#                                        interleaved: the loader and photo workloads (scripts/bench_ab.py)
# Builds flowload in release first. Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --quiet
what="${1:-loader}"
data="${2:-/usr/share/datasets/fashion-mnist}"
if { [ "$what" = encoded ] || [ "$what" = photos ] || [ "$what" = python ]; } && ! python -c 'import nvidia.dali' 2>/dev/null; then
    pip install -q nvidia-dali-cuda130  # DALI's CPU pipeline, the encoded and photo benchmarks' peer
fi
if [ "$what" = python ] && ! python -c 'import spdl.io' 2>/dev/null; then
    # Meta's SPDL, on Debian's FFmpeg 5 runtime libraries
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libavcodec59 libavfilter8 libavformat59 \
            libavutil57 libswscale6 libswresample4 libavdevice59 >/dev/null
    fi
    pip install -q spdl
fi
case "$what" in
    loader) exec python scripts/bench_loader.py target/release/flowload "$data" ;;
    train) exec python scripts/bench_train.py target/release/flowload "$data" ${3:+"$3"} ;;
    encoded) exec python scripts/bench_encoded.py target/release/flowload "$data" ;;
    cluster) exec python scripts/bench_cluster.py target/release/flowload "$data" ;;
    photos) exec python scripts/bench_photos.py target/release/flowload ${2:+"$2"} ;;
    stats) exec python scripts/bench_stats.py target/release/flowload ${2:+"$2"} ;;
    auto) exec python scripts/bench_auto.py target/release/flowload "$data" ${3:+"$3"} ;;
    python) exec python scripts/bench_python.py target/release/flowload "${2:-all}" ;;
    checkpoint) exec python scripts/bench_checkpoint.py target/release/flowload "$data" ;;
    ab) exec python scripts/bench_ab.py "${2:?usage: scripts/bench.sh ab BEFORE_BINARY}" target/release/flowload ${3:+"$3"} ${4:+"$4"} ;;
    *) echo "usage: scripts/bench.sh loader|train|encoded|cluster|photos|stats|auto|python|checkpoint|ab [DATA_DIR]" >&2; exit 2 ;;
esac
