"""Fixtures of flowload's Python tests: small data sets written per test, and the cache off."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

# No test reads or writes the user's statistics cache.
os.environ["FLOWLOAD_STATS_CACHE"] = "off"

#: Three-channel 8x8 images with augmentation: the draws must survive every layout.
SYNTH = "synthetic:images=96,channels=3,size=8x8,seed=3"
AUGMENT = ["random_crop:8,padding=2", "hflip"]


@pytest.fixture
def folder(tmp_path):
    """An image folder of 3 classes x 7 PNGs of 5x6 RGB, and its pixels as PIL decodes them."""
    rng = np.random.default_rng(0)
    pixels = {}
    for c in range(3):
        d = tmp_path / "photos" / f"class{c}"
        d.mkdir(parents=True)
        for i in range(7):
            a = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
            path = d / f"img{i}.png"
            Image.fromarray(a).save(path)
            pixels[str(path)] = (a, c)
    return tmp_path / "photos", pixels


def run_python(code: str, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `code` (or, given a path, that script) with `args` in a fresh interpreter, as a
    user's script."""
    source = [str(code)] if isinstance(code, os.PathLike) else ["-c", textwrap.dedent(code)]
    return subprocess.run(
        [sys.executable, *source, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
