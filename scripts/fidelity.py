#!/usr/bin/env python3
"""How close flowload's `random_resized_crop:S` is to torchvision's, on the photo workload:
the same crop boxes (flowload's draws) through torchvision v2 `resized_crop(..., antialias=True)`
on the PIL-decoded photo, against flowload's fused path (the JPEG region decoded at a DCT
scale, then one resample) and its unfused reference (the whole JPEG decoded at full scale).

  python scripts/fidelity.py [PHOTO_DIR [PHOTOS [DRAWS]]]

Builds and runs `crates/core/examples/fidelity.rs`, then prints, per size (64, 128, 224), the
mean and worst absolute pixel difference over every sample, and the share of samples whose
worst pixel is off by more than 10 of 255.
"""
import json, os, subprocess, sys, tempfile

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    photos = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "data", "photos")
    count = sys.argv[2] if len(sys.argv) > 2 else "48"
    draws = sys.argv[3] if len(sys.argv) > 3 else "4"
    if not os.path.isdir(os.path.join(photos, "train")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py"), photos], check=True)
    out = tempfile.mkdtemp(prefix="flowload-fidelity-")
    subprocess.run(["cargo", "run", "--quiet", "--release", "-p", "flowload-core", "--example", "fidelity", "--",
                    os.path.join(photos, "train"), out, count, draws], check=True, cwd=os.path.join(HERE, ".."))
    rows, decoded = {}, {}
    with open(os.path.join(out, "samples.jsonl")) as f:
        for line in f:
            s = json.loads(line)
            size = s["size"]
            if s["file"] not in decoded:
                rgb = np.asarray(Image.open(s["file"]).convert("RGB")).copy()
                decoded[s["file"]] = torch.from_numpy(rgb).permute(2, 0, 1)
            img = decoded[s["file"]]
            ref = F.resized_crop(img, round(s["top"]), round(s["left"]), round(s["height"]), round(s["width"]),
                                 [size, size], antialias=True).numpy().astype(np.int16)
            for side in ("fused", "full"):
                got = np.fromfile(os.path.join(out, f"{s['n']}.{side}"), dtype=np.uint8).reshape(3, size, size)
                d = np.abs(got.astype(np.int16) - ref)
                rows.setdefault((size, side), []).append((d.mean(), d.max()))
    print(f"{count} photos x {draws} draws per size, flowload vs torchvision v2 resized_crop(antialias=True)\n")
    print("| size | flowload path | mean abs diff (of 255) | worst pixel | samples with a pixel off by > 10 |")
    print("|---:|---|---:|---:|---:|")
    for (size, side), v in sorted(rows.items()):
        means, worst = zip(*v)
        over = sum(w > 10 for w in worst)
        name = "fused (DCT-scaled region)" if side == "fused" else "unfused (whole JPEG, full scale)"
        print(f"| {size} | {name} | {np.mean(means):.3f} | {max(worst)} | {over} of {len(worst)} |")


if __name__ == "__main__":
    main()
