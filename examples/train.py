#!/usr/bin/env python3
"""Train the ResNet-8 of scripts/models.py on an image folder with your own PyTorch loop: SGD
with a cosine learning-rate schedule, batches from flowload.Loader or, with
`--loader dataloader`, from torchvision's ImageFolder + DataLoader with the same transforms.

    python examples/train.py DATA [--loader flowload|dataloader|memory] [--workers N] [--epochs E]
                             [--size S] [--batch-size B] [--lr LR] [--device cpu|cuda] [--json]
                             [--results DIR]

DATA is an image folder with train/ (and test/) of <class>/*.png|jpg. Each epoch prints its
loss, accuracy, seconds, the time the loop waited for data, and the process's peak RSS (with
the DataLoader, its workers' added). `--size 32` trains on 32x32 crops padded by 4 (CIFAR's
recipe); a larger size takes RandomResizedCrop(SIZE) of photos. `--loader memory` runs the same
loop on one batch of random pixels held in memory, as many batches as the data set has: the
floor of time and memory that no loader can go below. With flowload, `--results DIR`
writes the run as flowload's results (DIR/runs/run-NNNN.parquet: the loader's figures and the
loop's loss and accuracy per epoch), which `flowload report DIR` and DuckDB read.
"""
import argparse, json, math, os, sys, time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from models import SmallResNet  # noqa: E402


def augment(a):
    """CIFAR's recipe at 32, else RandomResizedCrop: as flowload transform specs."""
    return ["random_crop:32,padding=4", "hflip"] if a.size == 32 else [f"random_resized_crop:{a.size}", "hflip"]


def flowload_batches(a):
    import flowload
    loader = flowload.Loader(a.data, batch_size=a.batch_size, shuffle=True, seed=0, drop_last=True,
                             augment=augment(a), normalize=True, workers=a.workers,
                             dtype="uint8" if a.device == "cuda" else "float32")
    if a.device == "cuda":  # a quarter of the bytes cross to the GPU; normalize there
        return loader, lambda x: flowload.normalize(x.to(a.device, non_blocking=True), loader.stats)
    return loader, lambda x: x


def dataloader_batches(a):
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2
    crop = [v2.RandomCrop(32, padding=4)] if a.size == 32 else [v2.RandomResizedCrop(a.size, antialias=True)]
    # The per-channel statistics as flowload computes them (through the augmentation's
    # evaluation view, from its cache), so that both sides train on the same input.
    import flowload
    stats = flowload.Loader(a.data, augment=augment(a), normalize=True).stats
    tf = v2.Compose([*crop, v2.RandomHorizontalFlip(), v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                     v2.Normalize(stats["mean"], stats["std"])])
    loader = DataLoader(datasets.ImageFolder(os.path.join(a.data, "train"), transform=tf),
                        batch_size=a.batch_size, shuffle=True, drop_last=True, num_workers=a.workers,
                        persistent_workers=a.workers > 0, pin_memory=a.device == "cuda")
    return loader, lambda x: x.to(a.device, non_blocking=True)


class InMemory:
    """One batch of random pixels, handed out as a copy per step: a loader that costs nothing."""

    def __init__(self, a, classes):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(a.batch_size, 3, a.size, a.size, generator=g)
        self.labels = torch.randint(0, classes, (a.batch_size,), generator=g)
        train = os.path.join(a.data, "train")
        self.batches = sum(len(files) for _, _, files in os.walk(train)) // a.batch_size

    def __len__(self):
        return self.batches

    def __iter__(self):
        for _ in range(self.batches):
            yield self.images.clone(), self.labels.clone()


def peak_rss_mib(loader):
    """This process's peak RSS, plus each DataLoader worker's (VmHWM, summed)."""
    pids = [os.getpid()]
    it = getattr(loader, "_iterator", None)
    pids += [w.pid for w in getattr(it, "_workers", [])]
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    return total / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--loader", choices=["flowload", "dataloader", "memory"], default="flowload")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", action="store_true", help="end with one JSON line of every epoch's figures")
    ap.add_argument("--results", help="with flowload: write the run as flowload's results under this directory")
    a = ap.parse_args()
    torch.manual_seed(0)
    classes = len([d for d in os.listdir(os.path.join(a.data, "train")) if not d.startswith(".")])
    if a.loader == "memory":
        loader, to_device = InMemory(a, classes), lambda x: x.to(a.device)
    else:
        loader, to_device = (flowload_batches if a.loader == "flowload" else dataloader_batches)(a)
    model = SmallResNet(3, classes).to(a.device)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    steps = a.epochs * len(loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    epochs = []
    for epoch in range(a.epochs):
        model.train()
        start = time.perf_counter()
        wait = loss_sum = correct = seen = 0.0
        asked = time.perf_counter()
        for images, labels in loader:
            wait += time.perf_counter() - asked
            images, labels = to_device(images), labels.to(a.device, non_blocking=True)
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
            asked = time.perf_counter()
        seconds = time.perf_counter() - start
        e = {"epoch": epoch, "loss": loss_sum / seen, "accuracy": correct / seen, "seconds": seconds,
             "data_wait_seconds": wait, "lr": schedule.get_last_lr()[0]}
        epochs.append(e)
        if a.loader == "flowload":
            loader.record(loss=e["loss"], accuracy=e["accuracy"])
        print(f"epoch {epoch}  loss {e['loss']:.4f}  acc {e['accuracy']:.4f}  {seconds:.2f} s  "
              f"data wait {wait:.3f} s ({wait / seconds:.1%})  lr {e['lr']:.4f}", file=sys.stderr, flush=True)
    if a.results and a.loader == "flowload":
        path = loader.write_results(a.results, model="resnet8", optimizer="sgd", lr=a.lr, device=a.device)
        print(f"wrote {path}", file=sys.stderr)
    rss = peak_rss_mib(loader)
    print(f"peak RSS {rss:.0f} MiB ({a.loader}, {a.workers} workers)", file=sys.stderr)
    if a.json:
        print(json.dumps({"loader": a.loader, "workers": a.workers, "epochs": epochs, "peak_rss_mib": rss}))


if __name__ == "__main__":
    main()
