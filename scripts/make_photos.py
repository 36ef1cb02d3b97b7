#!/usr/bin/env python3
"""Builds an ImageNet-like JPEG image folder from real photographs: the colour sample photos
that the scikit-image wheel ships (astronaut, coffee, chelsea, rocket, ...), one class each.
Every image is a random crop (30-100% of the area, aspect 3/4-4/3) of its class's photo,
mirrored at random, colour-jittered (brightness, contrast, saturation +-25%), rescaled so its
shorter side is 300-500 px, and saved as a JPEG of quality 85-95 (4:2:0, as cameras and
ImageNet do). Seeded: the same arguments give the same bytes.

  scripts/make_photos.py OUT [--train N] [--test M] [--seed S]
        OUT/train/<class>/NNNNN.jpg and OUT/test/<class>/NNNNN.jpg
  scripts/make_photos.py OUT --cifar [--train N] [--test M]
        the CIFAR-style case: 32x32 RGB PNGs of the same crops

Needs numpy, Pillow and scikit-image (`pip install scikit-image`; scripts/env.sh's venv).
"""
import argparse, os

import numpy as np
from PIL import Image, ImageEnhance


def photos():
    import skimage.data as d
    left, _, _ = d.stereo_motorcycle()
    return {
        "astronaut": d.astronaut(),
        "chelsea": d.chelsea(),
        "coffee": d.coffee(),
        "hubble": d.hubble_deep_field(),
        "immunohistochemistry": d.immunohistochemistry(),
        "motorcycle": left,
        "retina": d.retina(),
        "rocket": d.rocket(),
    }


def one(photo, rng, cifar):
    h, w = photo.shape[:2]
    for _ in range(20):
        area = h * w * rng.uniform(0.3, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
        if cw <= w and ch <= h:
            break
    else:
        cw, ch = w, h
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    img = Image.fromarray(photo[top:top + ch, left:left + cw])
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhance(img).enhance(rng.uniform(0.75, 1.25))
    if cifar:
        return img.resize((32, 32), Image.Resampling.BILINEAR, reducing_gap=None)
    short = int(rng.integers(300, 501))
    scale = short / min(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=3000, help="training images (default 3000)")
    ap.add_argument("--test", type=int, default=400, help="test images (default 400)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cifar", action="store_true", help="32x32 PNGs instead of photo-sized JPEGs")
    a = ap.parse_args()
    classes = photos()
    names = sorted(classes)
    rng = np.random.default_rng(a.seed)
    total = 0
    for split, count in (("train", a.train), ("test", a.test)):
        for n in names:
            os.makedirs(os.path.join(a.out, split, n), exist_ok=True)
        for i in range(count):
            name = names[i % len(names)]
            img = one(classes[name], rng, a.cifar)
            path = os.path.join(a.out, split, name, f"{i:05}")
            if a.cifar:
                img.save(path + ".png")
            else:
                img.save(path + ".jpg", quality=int(rng.integers(85, 96)), subsampling="4:2:0")
            total += 1
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(a.out) for f in fs)
    print(f"{a.out}: {total} images in {len(names)} classes ({a.train} train, {a.test} test), {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
