#!/usr/bin/env python3
"""Checkpoints' cost, measured side by side in one invocation (`scripts/bench.sh checkpoint`).

1. Overhead: the seed's experiment (pipelines/fashion_mnist.toml: the full Fashion-MNIST, the
   seed's network, batch 1000) at workers 1, normalized, 4 epochs, with a checkpoint at each
   epoch's end (`--checkpoint-every 1h`: none falls due inside an epoch) against none
   (`--checkpoint-every 0`), interleaved over ROUNDS rounds so that a slow spell hits both.
   A run's figure is its median epoch wall time over epochs 2..4 (the first pays start-up):
   the step of `run_seconds` from the epoch before, which counts training, evaluation and the
   epoch-end checkpoint alike. The table gives each side's median over the rounds, their
   ratio, and the checkpoint_seconds and checkpoint_share columns of the checkpointing side.
2. Size and write time of one checkpoint: the seed's network and the small BatchNorm ResNet of
   scripts/models.py (SGD with momentum, the state a checkpoint must keep), on the shipped mini
   set, `--keep-checkpoints`.

Usage: scripts/bench_checkpoint.py FLOWLOAD_BINARY [FASHION_MNIST_DIR] [--rounds N (3)]
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")


def run(binary, out, args):
    r = subprocess.run([binary, "run", "--out", out, "--no-stats-cache", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return duckdb.sql(f"select epoch, run_seconds - lag(run_seconds) over (order by epoch), "
                      f"checkpoint_seconds, checkpoint_share "
                      f"from read_parquet('{out}/runs/*.parquet') order by epoch").fetchall()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("data", nargs="?", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    pipeline = os.path.join(ROOT, "pipelines", "fashion_mnist.toml")
    common = [pipeline, "--data", a.data, "--epochs", "4", "--workers", "1", "--normalize", "true",
              "--device", "cpu"]
    work = tempfile.mkdtemp(prefix="flowload-ckpt-")
    sides = {"none": [], "every epoch": []}
    ckpt = []
    try:
        for r in range(a.rounds):
            for side, every in (("none", "0"), ("every epoch", "1h")):
                rows = run(a.binary, os.path.join(work, f"{r}-{every}"), [*common, "--checkpoint-every", every])
                sides[side].append(statistics.median(s for e, s, _, _ in rows if e > 1))
                if every != "0":
                    ckpt += [(c, share) for e, _, c, share in rows if e > 1]
                print(f"round {r + 1} {side}: epochs 2.. {[round(s, 3) for e, s, _, _ in rows if e > 1]}",
                      file=sys.stderr)
        print(f"\nOverhead: {a.data}, the seed's network, batch 1000, workers 1, 4 epochs, "
              f"{a.rounds} interleaved rounds (median epoch wall time over epochs 2..4, then over rounds)\n")
        print("| checkpoints | epoch wall time (s) | per round |")
        print("|---|---:|---|")
        for side, values in sides.items():
            print(f"| {side} | {statistics.median(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
        ratio = statistics.median(sides["every epoch"]) / statistics.median(sides["none"])
        print(f"\nevery epoch / none: {ratio:.4f}x epoch time; checkpoint_seconds median "
              f"{statistics.median(c for c, _ in ckpt) * 1000:.1f} ms, checkpoint_share median "
              f"{statistics.median(s for _, s in ckpt):.2%}")

        models = os.path.join(work, "models")
        subprocess.run([sys.executable, os.path.join(HERE, "models.py"), models], check=True, capture_output=True)
        mini = os.path.join(ROOT, "data", "fashion-mnist-mini")
        print("\nOne checkpoint: the shipped mini set, SGD with momentum 0.9, batch 100, 1 epoch\n")
        print("| model | checkpoint file (KiB) | one write (ms) |")
        print("|---|---:|---:|")
        for name, model in (("seed network", "seed"), ("small ResNet (TorchScript)", os.path.join(models, "small_resnet.pt"))):
            out = os.path.join(work, name.split()[0])
            rows = run(a.binary, out, ["--data", mini, "--model", model, "--optimizer", "sgd", "--momentum", "0.9",
                                       "--lr", "0.01", "--batch-size", "100", "--epochs", "1", "--device", "cpu",
                                       "--checkpoint-every", "1h", "--keep-checkpoints"])
            state = os.path.join(out, "checkpoints", "run-0001", "state.pt")
            # One checkpoint, at the epoch's end: the epoch's checkpoint_seconds is its write.
            print(f"| {name} | {os.path.getsize(state) / 1024:,.0f} | {rows[0][2] * 1000:.1f} |")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
