#!/usr/bin/env python3
"""Models for `flowload run --model`: the architectures, exported as TorchScript, and the
loader of a trained seed network.

  python scripts/models.py OUT_DIR [--channels C] [--size S] [--classes K] [--seed N]

writes OUT_DIR/seed.pt (the seed's network) and OUT_DIR/small_resnet.pt (a small ResNet with
BatchNorm), both TorchScript (`torch.jit.script(model).save(path)`), with weights drawn from
`torch.manual_seed(N)`: the same file starts every run, in flowload and in PyTorch, from the
same weights. Defaults: 1 channel, 28x28 (Fashion-MNIST), 10 classes; the small ResNet is
meant for 3-channel 32x32 (CIFAR-style) data, and takes any size of 8 or more.

Your own model: any nn.Module whose forward takes a float32 [B,C,H,W] batch, normalized as
flowload normalizes it, and returns [B,classes] logits:

    torch.jit.script(MyNet()).save("my_net.pt")    # or torch.jit.trace(MyNet(), example)
    flowload run --data ... --model my_net.pt

flowload saves each run's trained model as OUT/models/run-NNNN.pt: a TorchScript module as
TorchScript (torch.jit.load reads it, buffers included), the seed's network as its parameters
in a TorchScript archive, which `load_flowload_seed` below puts into `Network`.
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class Network(nn.Module):
    """The seed's network, as flowload builds it natively (src/model.rs)."""

    def __init__(self, channels=1, size=28, classes=10):
        super().__init__()
        side = ((size - 4) // 2 - 4) // 2
        self.conv1 = nn.Conv2d(channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 12, 5)
        self.fc1 = nn.Linear(12 * side * side, 120)
        self.fc2 = nn.Linear(120, 60)
        self.out = nn.Linear(60, classes)

    def forward(self, t):
        t = F.max_pool2d(F.relu(self.conv1(t)), 2)
        t = F.max_pool2d(F.relu(self.conv2(t)), 2)
        t = F.relu(self.fc1(t.flatten(1)))
        t = F.relu(self.fc2(t))
        return self.out(t)


class Block(nn.Module):
    """A basic residual block: two 3x3 convolutions with BatchNorm, a 1x1 shortcut when the
    shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class SmallResNet(nn.Module):
    """A ResNet-8: a 3x3 stem and three residual blocks of 16, 32 and 64 channels, global
    average pooling, one linear layer."""

    def __init__(self, channels=3, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def load_flowload_seed(path):
    """The seed's network that flowload trained and saved (`models/run-NNNN.pt` of a run with
    `--model seed`), as a `Network` in evaluation mode."""
    saved = torch.jit.load(path, map_location="cpu")
    state = {name.replace("|", "."): t for name, t in saved.named_parameters()}
    channels, size = state["conv1.weight"].shape[1], None
    flat, classes = state["fc1.weight"].shape[1], state["out.weight"].shape[0]
    for s in range(16, 4096):  # the input size that flattens to fc1's width
        side = ((s - 4) // 2 - 4) // 2
        if 12 * side * side == flat:
            size = s
            break
    net = Network(channels, size, classes)
    net.load_state_dict(state)
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import os
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    torch.jit.script(Network(a.channels, a.size, a.classes)).save(os.path.join(a.out, "seed.pt"))
    torch.manual_seed(a.seed)
    torch.jit.script(SmallResNet(a.channels, a.classes)).save(os.path.join(a.out, "small_resnet.pt"))
    print(f"{a.out}/seed.pt, {a.out}/small_resnet.pt: {a.channels}x{a.size}x{a.size} input, {a.classes} classes")


if __name__ == "__main__":
    main()
