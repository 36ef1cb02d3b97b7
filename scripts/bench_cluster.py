#!/usr/bin/env python3
"""Cluster-mode loader benchmark on this machine, side by side in one invocation:

  1 process  x 1 worker    `run --workers 1`
  2 processes x 1 worker   `cluster-local --processes 2 run --workers 1`, --wire raw and arrow
  1 process  x 2 workers   `run --workers 2`

all with `--sink null`, normalized, batch 1000, on two inputs: the full Fashion-MNIST train set
as PNG-in-Parquet (decoding dominates, as on a real cluster) and as raw IDX (decoding is a
memcpy, so the cross-process path is all that is measured). Each configuration runs ROUNDS
times, interleaved; figures are medians of the per-epoch images/s (3 epochs per run).
The overhead of the cross-process path is 1 - (2 processes x 1) / (1 process x 2): the same
batches from the same number of threads, with half of them crossing a socket.
Usage: scripts/bench_cluster.py FLOWLOAD_BINARY [IDX_DIR]   (scripts/bench.sh cluster wraps it)
"""
import os, shutil, statistics, subprocess, sys, tempfile

from benchlib import run_flowload

BIN = sys.argv[1]
IDX = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
BATCH = 1000
ROUNDS = 3
WORK = os.path.join(tempfile.gettempdir(), "flowload-bench-encoded")  # shared with bench_encoded.py

CONFIGS = [  # (label, command, workers, wire)
    ("1 process x 1 worker", ("run",), 1, "raw"),
    ("2 processes x 1 worker, wire raw", ("cluster-local", "--processes", "2", "run"), 1, "raw"),
    ("2 processes x 1 worker, wire arrow", ("cluster-local", "--processes", "2", "run"), 1, "arrow"),
    ("1 process x 2 workers", ("run",), 2, "raw"),
]


def png_parquet():
    pq_dir = os.path.join(WORK, "fm-png")
    if not os.path.exists(os.path.join(pq_dir, "train-00000-of-00001.parquet")):
        shutil.rmtree(pq_dir, ignore_errors=True)
        subprocess.run([BIN, "convert", IDX, "--to", "parquet", pq_dir], check=True, stdout=subprocess.DEVNULL)
    return pq_dir


def measure(data):
    ips = {c[0]: [] for c in CONFIGS}
    wire = {}
    for _ in range(ROUNDS):
        for label, command, workers, fmt in CONFIGS:
            [run] = run_flowload(BIN, ["--data", data, "--sink", "null", "--workers", str(workers),
                                       "--normalize", "true", "--batch-size", str(BATCH), "--epochs", "3",
                                       "--wire", fmt], command)
            ips[label] += [e["images_per_second"] for e in run["epochs"]]
            if command[0] == "cluster-local":
                e = run["epochs"][0]
                # Process 1 builds every other batch of the epoch.
                batches_from_1 = (e["images"] // BATCH) // 2
                wire[fmt] = e["bytes_received"] / batches_from_1
    return {k: statistics.median(v) for k, v in ips.items()}, wire


def main():
    inputs = [("PNG in Parquet", png_parquet()), ("raw IDX", IDX)]
    print(f"{os.cpu_count()} cores; medians of {ROUNDS} runs x 3 epochs; batch {BATCH}; normalized\n")
    results = {name: measure(data) for name, data in inputs}
    head = "| configuration | " + " | ".join(f"{n} img/s" for n, _ in inputs) + " |"
    print(head)
    print("|---|" + "---:|" * len(inputs))
    for label, *_ in CONFIGS:
        print(f"| {label} | " + " | ".join(f"{results[n][0][label]:,.0f}" for n, _ in inputs) + " |")
    print()
    for n, _ in inputs:
        ips, wire = results[n]
        one, two_p, two_w = ips[CONFIGS[0][0]], ips[CONFIGS[1][0]], ips[CONFIGS[3][0]]
        arrow = ips[CONFIGS[2][0]]
        print(f"{n}: 2 processes / 1 process = {two_p / one:.2f}x; 1 process x 2 workers / 1 = {two_w / one:.2f}x; "
              f"cross-process overhead (raw) = {100 * (1 - two_p / two_w):.1f}%; arrow / raw = {arrow / two_p:.2f}x")
        print(f"{n}: bytes per batch of {BATCH} on the wire: raw {wire['raw']:,.0f}, arrow {wire['arrow']:,.0f} "
              f"({wire['arrow'] / wire['raw']:.2f}x)")


if __name__ == "__main__":
    main()
