# Sourced by scripts/flowload and .ci/run: installs what the build needs if it is missing
# (libtorch 2.11.0 from the PyPI wheel, the Fashion-MNIST Debian package), then exports the
# variables tch's build script reads. Idempotent: a second call only checks.
FLOWLOAD_CACHE="${FLOWLOAD_CACHE:-$HOME/.cache/flowload}"
TORCH_VENV="$FLOWLOAD_CACHE/torch-2.11.0"

if ! "$TORCH_VENV/bin/python" -c 'import torch, torchvision, sys; sys.exit(torch.__version__.split("+")[0] != "2.11.0")' 2>/dev/null; then
    echo "flowload: installing torch==2.11.0 into $TORCH_VENV (about 4.7 GB, once)" >&2
    mkdir -p "$FLOWLOAD_CACHE"
    python3 -m venv "$TORCH_VENV"
    "$TORCH_VENV/bin/pip" install -q torch==2.11.0 torchvision==0.26.0 || return 1 2>/dev/null || exit 1
fi

# The tests read results from Python, as users do: DuckDB and pyarrow in the same venv; and
# scripts/make_photos.py makes the photo workload from scikit-image's sample photographs.
if ! "$TORCH_VENV/bin/python" -c 'import duckdb, pyarrow, skimage' 2>/dev/null; then
    echo "flowload: installing duckdb, pyarrow and scikit-image into $TORCH_VENV" >&2
    "$TORCH_VENV/bin/pip" install -q duckdb pyarrow scikit-image || return 1 2>/dev/null || exit 1
fi

# The turbojpeg crate builds libjpeg-turbo 3 from its bundled source: cmake, and nasm for the
# SIMD code it requires.
if { ! command -v cmake >/dev/null || ! command -v nasm >/dev/null; } && [ "$(id -u)" = 0 ]; then
    echo "flowload: installing cmake and nasm" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake nasm >/dev/null
fi

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ "$(id -u)" = 0 ]; then
    echo "flowload: installing dataset-fashion-mnist" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

# The report test renders report.html in headless Chromium.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
    echo "flowload: installing chromium" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

export PATH="$TORCH_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
