#!/usr/bin/env python3
"""`--workers auto` against every fixed count, on five workloads. Each workload is one flowload
sweep, `--workers 0,1,...,CORES,auto --repeat 3`: the runs interleave (0, 1, 2, auto, 0, 1, ...),
so a slow spell of this noisy machine hits every count alike.

  fmnist-train     Fashion-MNIST IDX (60,000 28x28), the seed's network, --torch-threads 1
  fmnist-png       Fashion-MNIST as PNG-in-Parquet (`flowload convert`), null sink
  photos           the photo workload (scripts/make_photos.py, 3000 JPEGs) with
                   random_resized_crop:224 + hflip, null sink
  expensive-null   synthetic, an artificially expensive decode (work=40: ~40 us per image),
                   null sink: the trainer takes nothing, so the best count is every core
  expensive-train  synthetic 28x28 with work=40, the seed's network on one thread: one worker
                   keeps up, a second only takes the trainer's core

Per count: the median epoch time over epochs 2.. of every repetition (epoch 1 is when auto
tunes), and the data-wait share of those epochs. For auto: where it settled, why, and after
how many batches (the latest of the repetitions) against the batches of one epoch.
Targets (issue 15): auto's median within 5% of the best fixed count's on every workload; its
data wait under 1% where a fixed count gets there; settled by the end of epoch 1.
Usage: scripts/bench_auto.py FLOWLOAD_BINARY [FASHION_MNIST_DIR [PHOTO_DIR]]
   (scripts/bench.sh auto wraps it)
"""
import json, os, shutil, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(tempfile.gettempdir(), "flowload-bench-auto")
REPEAT = 3
EPOCHS = 3


def sweep(bin_, args):
    out = tempfile.mkdtemp(prefix="flowload-bench-auto-")
    cores = os.cpu_count()
    workers = ",".join([str(w) for w in range(cores + 1)] + ["auto"])
    try:
        subprocess.run([bin_, "run", *args, "--workers", workers, "--repeat", str(REPEAT),
                        "--epochs", str(EPOCHS), "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "summary.json")) as f:
            return json.load(f)["runs"]
    finally:
        shutil.rmtree(out)


def summarize(runs):
    by = {}
    for r in runs:
        by.setdefault(str(r["params"]["workers"]), []).append(r)
    rows = {}
    for w, rs in by.items():
        later = [e for r in rs for e in r["epochs"][1:]]
        rows[w] = {
            "median": statistics.median(e["epoch_seconds"] for e in later),
            "wait": sum(e["data_wait_seconds"] for e in later) / sum(e["epoch_seconds"] for e in later),
            "runs": rs,
        }
    return rows


def main():
    bin_ = os.path.abspath(sys.argv[1])
    fmnist = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    photos = sys.argv[3] if len(sys.argv) > 3 else os.path.join(tempfile.gettempdir(), "flowload-bench-photos", "photos")
    if not os.path.isdir(os.path.join(photos, "train")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py"), photos], check=True)
    png = os.path.join(WORK, "fmnist-png")
    if not os.path.exists(os.path.join(png, "train-00000-of-00001.parquet")):
        shutil.rmtree(png, ignore_errors=True)
        subprocess.run([bin_, "convert", fmnist, "--to", "parquet", png], check=True, stdout=subprocess.DEVNULL)
    workloads = [
        ("fmnist-train", ["--data", fmnist, "--torch-threads", "1"]),
        ("fmnist-png", ["--data", png, "--sink", "null"]),
        ("photos", ["--data", photos, "--sink", "null", "--batch-size", "100",
                    "--augment", "random_resized_crop:224", "--augment", "hflip",
                    "--test-transforms", "resize:256", "--test-transforms", "center_crop:224"]),
        ("expensive-null", ["--data", "synthetic:images=20000,size=16x16,seed=1,work=40",
                            "--sink", "null", "--batch-size", "100"]),
        ("expensive-train", ["--data", "synthetic:images=20000,size=28x28,seed=1,work=40",
                             "--torch-threads", "1", "--batch-size", "100"]),
    ]
    print(f"{os.cpu_count()} cores; {REPEAT} interleaved repetitions of {EPOCHS} epochs per count; "
          "median epoch over epochs 2.., seconds (data wait share)\n")
    counts = [str(w) for w in range(os.cpu_count() + 1)]
    print("| workload | " + " | ".join(f"workers {w}" for w in counts)
          + " | auto | best fixed | auto / best | auto settled at (why, after batches / per epoch) |")
    print("|---|" + "---:|" * (len(counts) + 3) + "---|")
    verdicts = []
    for name, args in workloads:
        rows = summarize(sweep(bin_, args))
        best = min(counts, key=lambda w: rows[w]["median"])
        auto = rows["auto"]
        ratio = auto["median"] / rows[best]["median"]
        settled = [r["workers_settled"] for r in auto["runs"]]
        per_epoch = auto["runs"][0]["epochs"][0]["images"]
        where = ", ".join(sorted({f"{s['active']} ({s['settled'] or 'tuning'})" for s in settled}))
        latest = max(s["last_change"] for s in settled)
        # Batches per epoch: the loader's, from the images and the batch size in the arguments.
        bs = int(args[args.index("--batch-size") + 1]) if "--batch-size" in args else 1000
        per_epoch = -(-per_epoch // bs)
        cell = lambda r: f"{r['median']:.3f} ({100 * r['wait']:.1f}%)"
        print(f"| {name} | " + " | ".join(cell(rows[w]) for w in counts)
              + f" | {cell(auto)} | {best} | {ratio:.3f} | {where}, after {latest} / {per_epoch} |")
        wait_ok = any(rows[w]["wait"] < 0.01 for w in counts)
        verdicts.append((name, ratio <= 1.05, (not wait_ok) or auto["wait"] < 0.01, latest <= per_epoch))
    print()
    for name, fast, wait, early in verdicts:
        print(f"{name}: within 5% of the best fixed count: {'yes' if fast else 'NO'}; "
              f"data wait under 1% where a fixed count gets there: {'yes' if wait else 'NO'}; "
              f"settled in epoch 1: {'yes' if early else 'NO'}")


if __name__ == "__main__":
    main()
