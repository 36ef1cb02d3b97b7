#!/usr/bin/env python3
"""Training epoch time and data wait, flowload against the equivalent PyTorch program, side by
side in one invocation on the full Fashion-MNIST, 2 epochs per config:

  flowload  `run --sink train`  workers 0,1 x normalize off/on, Adam lr 0.01, batch 1000, CPU
  PyTorch   DataLoader + ToTensor(+Normalize), the same network, Adam lr 0.01, batch 1000,
            the same worker counts; data wait = time blocked in next(loader)

Usage: scripts/bench_train.py FLOWLOAD_BINARY [DATA_DIR]   (scripts/bench.sh train wraps it)
"""
import os, shutil, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from benchlib import run_flowload, torchvision_root

BIN = sys.argv[1]
DATA = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
EPOCHS, BATCH, LR = 2, 1000, 0.01


class Network(nn.Module):  # the seed's network
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 12, 5)
        self.fc1 = nn.Linear(12 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 60)
        self.out = nn.Linear(60, 10)

    def forward(self, t):
        t = F.max_pool2d(F.relu(self.conv1(t)), 2)
        t = F.max_pool2d(F.relu(self.conv2(t)), 2)
        t = F.relu(self.fc1(t.flatten(1)))
        t = F.relu(self.fc2(t))
        return self.out(t)


def flowload():
    runs = run_flowload(BIN, ["--data", DATA, "--sink", "train", "--device", "cpu", "--workers", "0,1",
                              "--normalize", "false,true", "--batch-size", str(BATCH), "--lr", str(LR),
                              "--epochs", str(EPOCHS)])
    stats = next(r["stats"] for r in runs if r["stats"])
    res = {}
    for r in runs:
        p = r["params"]
        res[(p["workers"], p["normalize"])] = (
            statistics.median(e["epoch_seconds"] for e in r["epochs"]),
            statistics.median(e["data_wait_seconds"] for e in r["epochs"]))
    return res, stats


def pytorch(root, workers, normalize, mean, std):
    torch.manual_seed(0)
    tf = [transforms.ToTensor()] + ([transforms.Normalize(mean, std)] if normalize else [])
    ds = torchvision.datasets.FashionMNIST(root, train=True, download=False, transform=transforms.Compose(tf))
    dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers)
    net = Network()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    epochs = []
    for _ in range(EPOCHS):
        start = time.perf_counter(); wait = 0.0; correct = 0; loss_sum = 0.0
        it = iter(dl)
        while True:
            t = time.perf_counter()
            try:
                images, labels = next(it)
            except StopIteration:
                break
            wait += time.perf_counter() - t
            preds = net(images)
            loss = F.cross_entropy(preds, labels)
            opt.zero_grad(); loss.backward(); opt.step()
            loss_sum += loss.item() * images.shape[0]
            correct += preds.argmax(1).eq(labels).sum().item()
        epochs.append((time.perf_counter() - start, wait))
    return statistics.median(e[0] for e in epochs), statistics.median(e[1] for e in epochs)


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, {os.cpu_count()} cores, "
          f"{EPOCHS} epochs per config, median epoch", flush=True)
    fl, stats = flowload()
    root = torchvision_root(DATA)
    rows = []
    try:
        for norm in (False, True):
            for w in (0, 1):
                pt = pytorch(root, w, norm, stats["mean"], stats["std"])
                rows.append((w, norm, fl[(w, norm)], pt))
                print(f"  measured workers={w} normalize={norm}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(root)
    print()
    print("| workers | normalize | flowload epoch s | flowload data wait s (% of epoch) | PyTorch epoch s | PyTorch data wait s (% of epoch) | epoch ratio flowload/PyTorch |")
    print("|---:|:---:|---:|---:|---:|---:|---:|")
    for w, norm, (fe, fw), (pe, pw) in rows:
        print(f"| {w} | {str(norm).lower()} | {fe:.2f} | {fw:.3f} ({100 * fw / fe:.2f}%) | {pe:.2f} | {pw:.2f} ({100 * pw / pe:.0f}%) | {fe / pe:.2f} |")


if __name__ == "__main__":
    main()
