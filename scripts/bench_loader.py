#!/usr/bin/env python3
"""Loader-only throughput on the full Fashion-MNIST train set, side by side in one invocation:

  flowload `run --sink null`           workers 0,1,2 x normalize off/on, 5 epochs each (median epoch)
  PyTorch DataLoader + ToTensor(+Normalize)   the same worker counts, batch 1000 (median of 2 epochs)
  hand-vectorized PyTorch              whole train set as one uint8 tensor, randperm per epoch,
                                       x[idx].float().div(255).sub(m).div(s) (median of 5 epochs)

Usage: scripts/bench_loader.py FLOWLOAD_BINARY [DATA_DIR]   (scripts/bench.sh wraps it)
"""
import os, shutil, statistics, sys, time

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from benchlib import run_flowload, torchvision_root

BIN = sys.argv[1]
DATA = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
WORKERS = [0, 1, 2]
BATCH = 1000


def flowload():
    runs = run_flowload(BIN, ["--data", DATA, "--sink", "null", "--workers", "0,1,2", "--normalize", "false,true",
                              "--batch-size", str(BATCH), "--epochs", "5"])
    stats = next(r["stats"] for r in runs if r["stats"])
    return {(r["params"]["workers"], r["params"]["normalize"]):
            statistics.median(e["images_per_second"] for e in r["epochs"]) for r in runs}, stats


def dataloader(root, workers, normalize, mean, std, epochs=2):
    tf = [transforms.ToTensor()] + ([transforms.Normalize(mean, std)] if normalize else [])
    ds = torchvision.datasets.FashionMNIST(root, train=True, download=False, transform=transforms.Compose(tf))
    dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers,
                    persistent_workers=workers > 0)
    rates = []
    for _ in range(epochs):
        t = time.perf_counter(); n = 0
        for x, y in dl:
            n += x.shape[0]
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def hand_vectorized(root, normalize, mean, std, epochs=5):
    ds = torchvision.datasets.FashionMNIST(root, train=True, download=False)
    x, m, s = ds.data, mean[0], std[0]  # [60000, 28, 28] uint8
    rates = []
    for _ in range(epochs):
        t = time.perf_counter(); n = 0
        perm = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            b = x[perm[i:i + BATCH]].float().div(255)
            if normalize:
                b = b.sub(m).div(s)
            n += b.shape[0]
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def main():
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"{torch.get_num_threads()} intra-op threads, {os.cpu_count()} cores", flush=True)
    fl, stats = flowload()
    mean, std = stats["mean"], stats["std"]
    root = torchvision_root(DATA)
    try:
        hv = {norm: hand_vectorized(root, norm, mean, std) for norm in (False, True)}
        rows = []
        for norm in (False, True):
            for w in WORKERS:
                dl = dataloader(root, w, norm, mean, std)
                rows.append((w, norm, fl[(w, norm)], dl, hv[norm]))
                print(f"  measured workers={w} normalize={norm}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root)
    print()
    print("| workers | normalize | flowload images/s | DataLoader images/s | hand-vectorized images/s | flowload / DataLoader | flowload / hand-vectorized |")
    print("|---:|:---:|---:|---:|---:|---:|---:|")
    for w, norm, f, d, h in rows:
        print(f"| {w} | {str(norm).lower()} | {f:,.0f} | {d:,.0f} | {h:,.0f} | {f / d:.0f}x | {f / h:.1f}x |")


if __name__ == "__main__":
    main()
