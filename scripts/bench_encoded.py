#!/usr/bin/env python3
"""Encoded-input loader benchmark, side by side in one invocation, on the full Fashion-MNIST
train set as PNG-in-Parquet (made with `flowload convert`, Hugging Face layout):

  flowload      `run --sink null`, workers 1 and 2, normalized (median of 3 epochs)
  PyTorch       a Dataset that decodes the same PNG bytes with PIL (as HF datasets does),
                ToTensor + Normalize, DataLoader batch 1000, workers 0, 1, 2 (one epoch each)
  DALI (CPU)    fn.external_source -> fn.decoders.image(device="cpu") -> fn.crop_mirror_normalize,
                device_id=None, 1 and 2 threads (median of 3 epochs)
  bare PIL      a plain decode loop on one core, for scale

Then peak RSS (/usr/bin/time -v) of flowload at workers 1 and 2, and on the data set duplicated
4x. Usage: scripts/bench_encoded.py FLOWLOAD_BINARY [IDX_DIR]   (scripts/bench.sh encoded wraps it)
"""
import io, os, re, shutil, statistics, subprocess, sys, tempfile, time

import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from benchlib import run_flowload

BIN = sys.argv[1]
IDX = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
BATCH = 1000
WORK = os.path.join(tempfile.gettempdir(), "flowload-bench-encoded")


def prepare():
    pq_dir = os.path.join(WORK, "fm-png")
    if not os.path.exists(os.path.join(pq_dir, "train-00000-of-00001.parquet")):
        shutil.rmtree(pq_dir, ignore_errors=True)
        subprocess.run([BIN, "convert", IDX, "--to", "parquet", pq_dir], check=True, stdout=subprocess.DEVNULL)
    x4 = os.path.join(WORK, "fm-png-x4")
    if not os.path.exists(x4):
        os.makedirs(x4)
        for k in range(4):
            shutil.copy(os.path.join(pq_dir, "train-00000-of-00001.parquet"), os.path.join(x4, f"train-{k:05}-of-00004.parquet"))
    return pq_dir, x4


def flowload(pq_dir):
    runs = run_flowload(BIN, ["--data", pq_dir, "--sink", "null", "--workers", "1,2", "--normalize", "true",
                              "--batch-size", str(BATCH), "--epochs", "3"])
    return {r["params"]["workers"]: statistics.median(e["images_per_second"] for e in r["epochs"]) for r in runs}, runs[0]["stats"]


class PngDataset(Dataset):
    def __init__(self, path, tf):
        t = pq.read_table(path)
        self.images = [d["bytes"] for d in t.column("image").to_pylist()]
        self.labels = t.column("label").to_pylist()
        self.tf = tf

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.tf(Image.open(io.BytesIO(self.images[i]))), self.labels[i]


def pytorch(path, workers, mean, std):
    ds = PngDataset(path, transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)]))
    dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers)
    t = time.perf_counter(); n = 0
    for x, y in dl:
        n += x.shape[0]
    return n / (time.perf_counter() - t)


def dali(path, threads, mean, std):
    from nvidia.dali import fn, pipeline_def, types
    t = pq.read_table(path)
    images = [np.frombuffer(d["bytes"], dtype=np.uint8) for d in t.column("image").to_pylist()]
    n = len(images)

    def source(iteration):  # batch=True without batch_info: the iteration number
        i = iteration * BATCH
        if i >= n:
            raise StopIteration
        return images[i:i + BATCH]

    @pipeline_def(batch_size=BATCH, num_threads=threads, device_id=None, exec_dynamic=True)
    def pipe():
        enc = fn.external_source(source=source, batch=True, dtype=types.UINT8)
        img = fn.decoders.image(enc, device="cpu", output_type=types.GRAY)
        return fn.crop_mirror_normalize(img, dtype=types.FLOAT, output_layout="CHW",
                                        mean=[mean[0] * 255], std=[std[0] * 255])

    rates = []
    for _ in range(3):
        p = pipe()
        p.build()
        t0 = time.perf_counter(); done = 0
        try:
            while True:
                (out,) = p.run()
                done += len(out)
        except StopIteration:
            pass
        rates.append(done / (time.perf_counter() - t0))
        del p
    return statistics.median(rates)


def bare_pil(path, limit=20000):
    t = pq.read_table(path)
    images = [d["bytes"] for d in t.column("image").to_pylist()[:limit]]
    t0 = time.perf_counter()
    for b in images:
        Image.open(io.BytesIO(b)).load()
    return len(images) / (time.perf_counter() - t0)


def peak_rss(data, workers):
    out = tempfile.mkdtemp(prefix="flowload-bench-")
    r = subprocess.run(["/usr/bin/time", "-v", BIN, "run", "--data", data, "--sink", "null", "--workers", str(workers),
                        "--epochs", "1", "--out", out], capture_output=True, text=True, check=True)
    shutil.rmtree(out)
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024


def main():
    torch.set_num_threads(1)
    pq_dir, x4 = prepare()
    train = os.path.join(pq_dir, "train-00000-of-00001.parquet")
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {pq.ParquetFile(train).metadata.num_rows} PNG records, "
          f"{pq.ParquetFile(train).metadata.num_row_groups} row groups", flush=True)
    fl, stats = flowload(pq_dir)
    mean, std = stats["mean"], stats["std"]
    pt = {w: pytorch(train, w, mean, std) for w in (0, 1, 2)}
    try:
        dl = {t: dali(train, t, mean, std) for t in (1, 2)}
    except Exception as e:  # DALI missing or failing is reported, not fatal
        print(f"DALI: {e}", file=sys.stderr)
        dl = {1: float("nan"), 2: float("nan")}
    pil = bare_pil(train)
    print()
    print("| loader | workers/threads | images/s |")
    print("|---|---:|---:|")
    print(f"| bare PIL decode loop (1 core) | 1 | {pil:,.0f} |")
    for w in (0, 1, 2):
        print(f"| PyTorch DataLoader + PIL + ToTensor/Normalize | {w} | {pt[w]:,.0f} |")
    for t in (1, 2):
        print(f"| DALI CPU pipeline | {t} | {dl[t]:,.0f} |")
    for w in (1, 2):
        print(f"| flowload | {w} | {fl[w]:,.0f} |")
    print()
    print(f"flowload 2 vs 1 workers: {fl[2] / fl[1]:.2f}x; flowload/DALI per thread: {fl[1] / dl[1]:.2f}x (1), {fl[2] / dl[2]:.2f}x (2); "
          f"flowload/DataLoader: {fl[1] / pt[1]:.1f}x (1), {fl[2] / pt[2]:.1f}x (2)")
    print()
    print("| peak RSS (MiB) | workers 1 | workers 2 |")
    print("|---|---:|---:|")
    for name, data in (("60k PNG records", pq_dir), ("the same, 4x (240k)", x4)):
        print(f"| {name} | {peak_rss(data, 1):.0f} | {peak_rss(data, 2):.0f} |")


if __name__ == "__main__":
    main()
