# Sourced by scripts/flowload and scripts/test.sh (and so CI), from the repository's root:
# installs what the build needs if it is missing (the pinned Python packages, libtorch 2.11.0
# among them; the Fashion-MNIST Debian package), then exports the variables tch's build script
# reads. Idempotent: a second call only checks.
FLOWLOAD_CACHE="${FLOWLOAD_CACHE:-$HOME/.cache/flowload}"
TORCH_VENV="$FLOWLOAD_CACHE/torch-2.11.0"

# Every Python package, pinned in one file (scripts/requirements.txt): torch 2.11.0 for
# libtorch, torchvision, and what the tests and the README's commands read results with
# (DuckDB, pyarrow) and make the photo workload with (scikit-image). A stamp in the venv
# records what was installed: an edit of the file installs again.
REQUIREMENTS=scripts/requirements.txt
if ! cmp -s "$REQUIREMENTS" "$TORCH_VENV/.flowload-requirements" \
    || ! "$TORCH_VENV/bin/python" -c 'import torch' 2>/dev/null; then
    echo "flowload: installing $REQUIREMENTS into $TORCH_VENV (about 4.7 GB the first time)" >&2
    mkdir -p "$FLOWLOAD_CACHE"
    [ -x "$TORCH_VENV/bin/python" ] || python3 -m venv "$TORCH_VENV"
    "$TORCH_VENV/bin/pip" install -q -r "$REQUIREMENTS" || return 1 2>/dev/null || exit 1
    cp "$REQUIREMENTS" "$TORCH_VENV/.flowload-requirements"
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

# The Python package (crates/python over crates/core and crates/results), built by maturin as
# an abi3 wheel and installed into the venv when its sources changed since the last install: a
# stamp of their hash sits in the venv. Release, as users and the benchmarks run it; warm, a rebuild of the
# changed crates takes about a minute, cold about 7 on 2 cores.
flowload_python_stamp() {
    find Cargo.toml Cargo.lock crates/core/Cargo.toml crates/core/src crates/results/Cargo.toml \
        crates/results/src crates/python/Cargo.toml \
        crates/python/pyproject.toml crates/python/src crates/python/python -type f -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}
FLOWLOAD_PY_STAMP="$(flowload_python_stamp)"
if [ "$FLOWLOAD_PY_STAMP" != "$(cat "$TORCH_VENV/.flowload-python" 2>/dev/null)" ]; then
    echo "flowload: building the Python package (crates/python) into $TORCH_VENV" >&2
    rm -rf "$FLOWLOAD_CACHE/wheels"
    maturin build --quiet --release -m crates/python/Cargo.toml --out "$FLOWLOAD_CACHE/wheels" >&2 \
        && pip install -q --force-reinstall --no-deps "$FLOWLOAD_CACHE"/wheels/flowload-*.whl \
        && echo "$FLOWLOAD_PY_STAMP" > "$TORCH_VENV/.flowload-python" \
        || return 1 2>/dev/null || exit 1
fi
