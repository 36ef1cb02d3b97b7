#!/usr/bin/env python3
"""PyTorch's side of flowload's training parity test (tests/it/models.rs): the same TorchScript
file trained in PyTorch exactly as `flowload run --no-shuffle` trains it, and a saved model
evaluated on the test split.

  parity.py train --model M.pt --data IDX_DIR --mean [..] --std [..] --optimizer adam|adamw|sgd
                  --lr LR [--momentum M] [--weight-decay W] --batch-size B --epochs E --threads T
      prints {"loss": [per epoch], "accuracy": [per epoch]}
  parity.py evaluate --model SAVED.pt --data IDX_DIR --mean [..] --std [..] --threads T
      prints {"test_loss": .., "test_accuracy": ..}; SAVED is flowload's models/run-NNNN.pt

Same order (file order), same batches (the last one partial), same normalization (flowload's
statistics through the same f32 table: (x/255 - mean)/std), the same loss
(cross-entropy, sample-weighted mean per epoch) and PyTorch's own optimizers.
"""
import argparse, gzip, json, os, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import load_flowload_seed  # noqa: E402


def idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def split(data, prefix):
    names = sorted(os.listdir(data))
    images = next(n for n in names if n.startswith(f"{prefix}-images"))
    labels = next(n for n in names if n.startswith(f"{prefix}-labels"))
    x = idx(os.path.join(data, images))
    return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2]), idx(os.path.join(data, labels)).astype(np.int64)


def normalize(x, mean, std):
    """flowload's table, in f32: each u8 value's (v/255 - mean)/std."""
    v = np.arange(256, dtype=np.float32) / np.float32(255)
    tables = [(v - np.float32(m)) / np.float32(s) for m, s in zip(mean, std)]
    return torch.from_numpy(np.stack([tables[c][x[:, c]] for c in range(x.shape[1])], axis=1))


def load(path):
    module = torch.jit.load(path, map_location="cpu")
    if any("|" in n for n, _ in module.named_parameters()):  # flowload's native seed network
        return load_flowload_seed(path)
    return module


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "evaluate"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--mean", type=json.loads, required=True)
    ap.add_argument("--std", type=json.loads, required=True)
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.what == "evaluate":
        x, y = split(a.data, "t10k")
        model = load(a.model).eval()
        loss, correct = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(y), 1000):  # flowload's evaluation batch
                xb, yb = normalize(x[i:i + 1000], a.mean, a.std), torch.from_numpy(y[i:i + 1000])
                logits = model(xb)
                loss += F.cross_entropy(logits, yb).double().item() * len(yb)
                correct += int((logits.argmax(-1) == yb).sum())
        print(json.dumps({"test_loss": loss / len(y), "test_accuracy": correct / len(y)}))
        return
    x, y = split(a.data, "train")
    model = load(a.model)
    params = list(model.parameters())
    opt = {
        "adam": lambda: torch.optim.Adam(params, lr=a.lr, weight_decay=a.weight_decay),
        "adamw": lambda: torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay),
        "sgd": lambda: torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay),
    }[a.optimizer]()
    losses, accuracies = [], []
    for _ in range(a.epochs):
        model.train()
        loss_sum, correct = 0.0, 0
        for i in range(0, len(y), a.batch_size):
            xb, yb = normalize(x[i:i + a.batch_size], a.mean, a.std), torch.from_numpy(y[i:i + a.batch_size])
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double().item() * len(yb)
            correct += int((logits.argmax(-1) == yb).sum())
        losses.append(loss_sum / len(y))
        accuracies.append(correct / len(y))
    print(json.dumps({"loss": losses, "accuracy": accuracies}))


if __name__ == "__main__":
    main()
