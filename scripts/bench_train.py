#!/usr/bin/env python3
"""Training epoch time and data wait, flowload against the equivalent PyTorch program, side by
side in one invocation on the full Fashion-MNIST, 2 epochs per config:

  flowload  `run --sink train`  workers 0,1 x normalize off/on, Adam lr 0.01, batch 1000, CPU
  PyTorch   DataLoader + ToTensor(+Normalize), the same network, Adam lr 0.01, batch 1000,
            the same worker counts; data wait = time blocked in next(loader)

Then the small ResNet of scripts/models.py (BatchNorm, 3x32x32) on the CIFAR-style workload
(scripts/make_photos.py --cifar: 32x32 RGB PNGs in an image folder), the same TorchScript file
on both sides, Adam lr 0.001, batch 100, median of 3 epochs:

  flowload  `run --model small_resnet.pt`, workers 1 and 2
  PyTorch   torch.jit.load of the same file; ImageFolder + torchvision v2 (ToImage, ToDtype,
            Normalize with flowload's statistics), DataLoader workers 0, 1, 2: its best is the
            comparison

Usage: scripts/bench_train.py FLOWLOAD_BINARY [DATA_DIR [CIFAR_DIR]]   (scripts/bench.sh train wraps it)
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms

from benchlib import run_flowload, torchvision_root

from models import Network  # the seed's network

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1]
DATA = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
CIFAR = sys.argv[3] if len(sys.argv) > 3 else os.path.join(tempfile.gettempdir(), "flowload-bench-cifar")
EPOCHS, BATCH, LR = 2, 1000, 0.01
RESNET_BATCH, RESNET_LR, RESNET_EPOCHS = 100, 0.001, 3  # the median of 3 leaves out the warm-up epoch


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
    return timed_epochs(dl, net, opt, EPOCHS)


def timed_epochs(dl, net, opt, n):
    """Trains `n` epochs as the RunManager does (loss and correct counts per batch); the median
    epoch's (seconds, data wait)."""
    epochs = []
    for _ in range(n):
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


def resnet():
    """The small ResNet on 32x32 RGB, flowload against PyTorch on the same TorchScript file."""
    from torchvision.transforms import v2
    if not os.path.isdir(os.path.join(CIFAR, "train")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py"), CIFAR, "--cifar"], check=True)
    models = tempfile.mkdtemp(prefix="flowload-bench-models-")
    try:
        classes = len([d for d in os.listdir(os.path.join(CIFAR, "train")) if not d.startswith(".")])
        subprocess.run([sys.executable, os.path.join(HERE, "models.py"), models, "--channels", "3", "--size", "32",
                        "--classes", str(classes)], check=True, stdout=subprocess.DEVNULL)
        model = os.path.join(models, "small_resnet.pt")
        runs = run_flowload(BIN, ["--data", CIFAR, "--model", model, "--device", "cpu", "--workers", "1,2",
                                  "--batch-size", str(RESNET_BATCH), "--lr", str(RESNET_LR), "--epochs", str(RESNET_EPOCHS)])
        n = runs[0]["epochs"][0]["images"]
        fl = {r["params"]["workers"]: (statistics.median(e["epoch_seconds"] for e in r["epochs"]),
                                        statistics.median(e["data_wait_seconds"] for e in r["epochs"]),
                                        statistics.median(e["compute_seconds"] for e in r["epochs"])) for r in runs}
        stats = runs[0]["stats"]
        tf = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(stats["mean"], stats["std"])])
        ds = torchvision.datasets.ImageFolder(os.path.join(CIFAR, "train"), transform=tf)
        pt = {}
        for w in (0, 1, 2):
            torch.manual_seed(0)
            net = torch.jit.load(model)
            net.train()
            opt = torch.optim.Adam(net.parameters(), lr=RESNET_LR)
            dl = DataLoader(ds, batch_size=RESNET_BATCH, shuffle=True, num_workers=w)
            pt[w] = timed_epochs(dl, net, opt, RESNET_EPOCHS)
            print(f"  measured PyTorch workers={w}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(models)
    print()
    print(f"Small ResNet (BatchNorm), {n} CIFAR-style 32x32 RGB images, batch {RESNET_BATCH}, Adam {RESNET_LR}, median of {RESNET_EPOCHS} epochs:")
    print()
    print("| side | workers | epoch s | images/s | data wait s (% of epoch) | compute s |")
    print("|---|---:|---:|---:|---:|---:|")
    for w, (e, wait, c) in sorted(fl.items()):
        print(f"| flowload | {w} | {e:.2f} | {n / e:,.0f} | {wait:.3f} ({100 * wait / e:.2f}%) | {c:.2f} |")
    for w, (e, wait) in sorted(pt.items()):
        print(f"| PyTorch DataLoader | {w} | {e:.2f} | {n / e:,.0f} | {wait:.2f} ({100 * wait / e:.0f}%) | {e - wait:.2f} |")
    best_fl = min(fl, key=lambda w: fl[w][0])
    best_pt = min(pt, key=lambda w: pt[w][0])
    print()
    print(f"flowload's best (workers {best_fl}) / PyTorch's best (workers {best_pt}): "
          f"{fl[best_fl][0] / pt[best_pt][0]:.2f}x the epoch time (target <= 0.6x), "
          f"data wait {100 * fl[best_fl][1] / fl[best_fl][0]:.2f}% (target < 1%)")


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
    resnet()


if __name__ == "__main__":
    main()
