#!/usr/bin/env python3
"""A/B of two flowload binaries, interleaved in one invocation (A, B, A, B, ...), so that a slow
spell of the machine hits both alike: `scripts/bench.sh ab BEFORE_BINARY` compares a binary
built before a change with the current build. Two workloads, both `run --sink null`:

  loader   the loader benchmark's grid (scripts/bench_loader.py): full Fashion-MNIST IDX,
           batch 1000, workers 0,1,2 x normalize off/on, 15 epochs (an epoch is ~25 ms: with 5
           epochs and 3 rounds, two builds of the same loader scattered from 0.73 to 1.47)
  photos   the photo benchmark's flowload side (scripts/bench_photos.py): the folder,
           RandomResizedCrop(224) + flip, batch 100, workers 1 and 2, 3 epochs

Each round runs each binary once per workload. A run's figure is its median epoch in
images/s; the table gives the median of the rounds for each binary, and B / A.
Usage: scripts/bench_ab.py A_BINARY B_BINARY [FASHION_MNIST_DIR [PHOTO_DIR]] [--rounds N (5)]
       [--only loader|photos]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TRANSFORMS = ["--augment", "random_resized_crop:224", "--augment", "hflip",
              "--test-transforms", "resize:256", "--test-transforms", "center_crop:224"]


def sweep(binary, args):
    """One `flowload run` sweep; each run's (workers, normalize) and median images/s."""
    out = tempfile.mkdtemp(prefix="flowload-ab-")
    try:
        r = subprocess.run([binary, "run", "--sink", "null", "--out", out, "--no-stats-cache", *args],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{binary}: {r.stderr[-2000:]}")
        with open(os.path.join(out, "summary.json")) as f:
            runs = json.load(f)["runs"]
    finally:
        shutil.rmtree(out)
    return {(str(run["params"]["workers"]), run["params"]["normalize"]):
            statistics.median(e["images_per_second"] for e in run["epochs"]) for run in runs}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a"); p.add_argument("b")
    p.add_argument("data", nargs="?", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("photos", nargs="?", default=os.path.join(HERE, "..", "data", "photos"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", choices=["loader", "photos"], help="one workload alone")
    a = p.parse_args()
    if not os.path.isdir(os.path.join(a.photos, "train")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py"), a.photos], check=True)
    workloads = {
        "loader": ["--data", a.data, "--batch-size", "1000", "--workers", "0,1,2",
                   "--normalize", "false,true", "--epochs", "15"],
        "photos": ["--data", a.photos, "--batch-size", "100", "--workers", "1,2", "--epochs", "3",
                   *TRANSFORMS],
    }
    if a.only:
        workloads = {a.only: workloads[a.only]}
    seen = {}  # (workload, point) -> {"a": [...], "b": [...]}
    for r in range(a.rounds):
        for name, args in workloads.items():
            for side in ("a", "b"):
                for point, rate in sweep(getattr(a, side), args).items():
                    seen.setdefault((name, point), {"a": [], "b": []})[side].append(rate)
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    print(f"A = {a.a}\nB = {a.b}\n{a.rounds} rounds, interleaved; median of the rounds' median epochs\n")
    print("| workload | workers | normalize | A images/s | B images/s | B / A |")
    print("|---|---:|:---:|---:|---:|---:|")
    for (name, (workers, normalize)), v in seen.items():
        ma, mb = statistics.median(v["a"]), statistics.median(v["b"])
        print(f"| {name} | {workers} | {str(normalize).lower()} | {ma:,.0f} | {mb:,.0f} | {mb / ma:.3f} |")


if __name__ == "__main__":
    main()
