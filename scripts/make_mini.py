#!/usr/bin/env python3
"""Writes data/fashion-mnist-mini: the first N train and M test records of Fashion-MNIST.

Source: the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), which
packages Zalando Research's Fashion-MNIST (MIT license, https://github.com/zalandoresearch/fashion-mnist).
Usage: scripts/make_mini.py [N_TRAIN] [N_TEST]
"""
import gzip, os, struct, sys

SRC = "/usr/share/datasets/fashion-mnist"
DST = os.path.join(os.path.dirname(__file__), "..", "data", "fashion-mnist-mini")

def cut(prefix, n):
    with gzip.open(f"{SRC}/{prefix}-images-idx3-ubyte.gz") as f:
        magic, total, h, w = struct.unpack(">IIII", f.read(16))
        images = f.read(n * h * w)
    with gzip.open(f"{SRC}/{prefix}-labels-idx1-ubyte.gz") as f:
        lmagic, ltotal = struct.unpack(">II", f.read(8))
        labels = f.read(n)
    assert len(images) == n * h * w and len(labels) == n
    for name, blob in [(f"{prefix}-images-idx3-ubyte.gz", struct.pack(">IIII", magic, n, h, w) + images),
                       (f"{prefix}-labels-idx1-ubyte.gz", struct.pack(">II", lmagic, n) + labels)]:
        with open(os.path.join(DST, name), "wb") as out:
            # mtime=0 keeps the bytes reproducible.
            out.write(gzip.compress(blob, compresslevel=9, mtime=0))

os.makedirs(DST, exist_ok=True)
cut("train", int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
cut("t10k", int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
