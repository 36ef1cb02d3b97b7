#!/usr/bin/env python3
"""Statistics cache benchmark, on the photo workload (scripts/make_photos.py: 3000 training
JPEGs) as N=10 Parquet shards of 300 photos (`flowload convert --shard-rows 300`, JPEG bytes
kept), with the photo recipe's statistics (random_resized_crop:224 is seen as resize:224 +
center_crop:224), 2 workers. Each figure is the median of 3 runs of `flowload stats`:

  full pass   --no-stats-cache: every shard decoded
  hit         a warm cache, nothing changed: no shard decoded
  append      one shard (300 other photos) added to the 10, the cache warm for the 10: only
              the new shard decoded
  remove      that shard removed again: its sums retracted, nothing decoded

"pass s" is the statistics pass (the `stats_seconds` a run records); "process s" is the whole
command, including opening the shards (footers, the first image's header) and loading
libtorch. Then a 4-run normalized sweep (`--workers 1,2 --batch-size 100,200`, null sink,
1 epoch) with a fresh cache and with --no-stats-cache: what each run's statistics cost.
Targets (issue 13): hit < 1% of the full pass; append <= 1.5/N = 0.15 of it; the sweep pays
for one pass, not four.
Usage: scripts/bench_stats.py FLOWLOAD_BINARY [PHOTO_DIR]   (scripts/bench.sh stats wraps it)
"""
import glob, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(tempfile.gettempdir(), "flowload-bench-photos")
STATS = ["--augment", "random_resized_crop:224", "--augment", "hflip", "--workers", "2"]
N = 10
REPEAT = 3


def prepare(bin_, photos):
    if not os.path.isdir(os.path.join(photos, "train")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py"), photos], check=True)
    shards = os.path.join(WORK, f"shards-{N}")
    if not os.path.exists(os.path.join(shards, "extra.parquet")):
        shutil.rmtree(shards, ignore_errors=True)
        tmp = shards + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run([bin_, "convert", photos, tmp, "--shard-rows", "300", "--row-group-size", "100"],
                       check=True, stdout=subprocess.DEVNULL)
        os.makedirs(shards)
        for f in glob.glob(os.path.join(tmp, f"train-*-of-{N:05}.parquet")):
            os.rename(f, os.path.join(shards, os.path.basename(f)))
        # 300 other photos (the first test shard), kept beside the data set to be appended.
        os.rename(os.path.join(tmp, "test-00000-of-00002.parquet"), os.path.join(shards, "extra.parquet"))
        shutil.rmtree(tmp)
    names = sorted(os.path.basename(f) for f in glob.glob(os.path.join(shards, "train-*.parquet")))
    assert len(names) == N, names
    return shards, names


def data_dir(shards, names):
    """A fresh directory of hard links to `names`."""
    d = tempfile.mkdtemp(prefix="flowload-bench-stats-")
    for n in names:
        os.link(os.path.join(shards, n), os.path.join(d, n))
    return d


def stats(bin_, data, cache=None):
    """One `flowload stats`: (pass seconds, process seconds, source, decoded, shards, JSON-able figures)."""
    flag = ["--stats-cache", cache] if cache else ["--no-stats-cache"]
    start = time.perf_counter()
    r = subprocess.run([bin_, "stats", data, *STATS, *flag], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    m = re.search(r"statistics pass: ([\d.]+) s on \d+ worker\(s\), (\w+): (\d+) of (\d+) shard", r.stdout)
    figures = [l for l in r.stdout.splitlines() if l.startswith("channel")]
    return float(m.group(1)), wall, m.group(2), int(m.group(3)), int(m.group(4)), figures


def median_of(runs):
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def sweep(bin_, data, cache_flag):
    out = tempfile.mkdtemp(prefix="flowload-bench-")
    try:
        subprocess.run([bin_, "run", "--data", data, "--sink", "null", "--workers", "1,2",
                        "--batch-size", "100,200", "--epochs", "1", *STATS[:4], *cache_flag, "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "summary.json")) as f:
            runs = json.load(f)["runs"]
    finally:
        shutil.rmtree(out)
    return [(r["params"]["workers"], r["params"]["batch_size"], r["epochs"][0]["stats_seconds"],
             r["epochs"][0]["stats_source"], r["epochs"][0]["stats_shards_decoded"], r["epochs"][0]["epoch_seconds"])
            for r in runs]


def main():
    bin_ = sys.argv[1]
    photos = sys.argv[2] if len(sys.argv) > 2 else os.path.join(WORK, "photos")
    shards, names = prepare(bin_, photos)
    mb = sum(os.path.getsize(os.path.join(shards, n)) for n in names) / 2**20
    print(f"{N} Parquet shards of 300 photos, {mb:.0f} MiB; {os.cpu_count()} cores", flush=True)
    tmp = tempfile.mkdtemp(prefix="flowload-bench-stats-")
    try:
        data = data_dir(shards, names)
        full = [stats(bin_, data) for _ in range(REPEAT)]
        warm = os.path.join(tmp, "warm")
        first = stats(bin_, data, warm)  # cold cache: computed, and the shards hashed
        hit = [stats(bin_, data, warm) for _ in range(REPEAT)]
        append, remove = [], []
        for k in range(REPEAT):
            # The same directory throughout: the cache's last version of it is what the next
            # pass updates (adds to, retracts from).
            d, cache = data_dir(shards, names), os.path.join(tmp, f"cache{k}")
            stats(bin_, d, cache)
            os.link(os.path.join(shards, "extra.parquet"), os.path.join(d, "train-extra.parquet"))
            append.append(stats(bin_, d, cache))
            if k == 0:
                assert append[0][5] == stats(bin_, d)[5], "append: figures differ from a fresh pass"
            os.unlink(os.path.join(d, "train-extra.parquet"))
            remove.append(stats(bin_, d, cache))
        assert hit[0][5] == full[0][5] == first[5] == remove[0][5], "hit, remove: figures differ"
        sweeps = {"fresh cache": sweep(bin_, data, ["--stats-cache", os.path.join(tmp, "sweep")]),
                  "--no-stats-cache": sweep(bin_, data, ["--no-stats-cache"])}
    finally:
        shutil.rmtree(tmp)
        for d in glob.glob(os.path.join(tempfile.gettempdir(), "flowload-bench-stats-*")):
            shutil.rmtree(d, ignore_errors=True)
    f_pass, f_wall = median_of(full)
    print()
    print("| statistics | source | shards decoded | pass s | pass / full | process s | process / full |")
    print("|---|---|---:|---:|---:|---:|---:|")
    rows = [("full pass (--no-stats-cache)", full), ("first run, cold cache", [first]),
            ("hit", hit), (f"append 1 shard to {N}", append), (f"remove it again", remove)]
    for name, runs in rows:
        p, w = median_of(runs)
        r = runs[0]
        print(f"| {name} | {r[2]} | {r[3]} of {r[4]} | {p:.3f} | {p / f_pass:.2%} | {w:.2f} | {w / f_wall:.2%} |")
    print()
    print(f"hit / full pass: {median_of(hit)[0] / f_pass:.2%} (target < 1%); "
          f"append / full pass: {median_of(append)[0] / f_pass:.3f} (target <= {1.5 / N:.3f}); "
          "cached, incremental and fresh figures identical: yes")
    print()
    print("| 4-run normalized sweep | run | workers | batch | stats_source | shards decoded | stats s | epoch s |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for name, runs in sweeps.items():
        for i, (w, b, s, src, d, e) in enumerate(runs, 1):
            print(f"| {name} | {i} | {w} | {b} | {src} | {d} | {s:.3f} | {e:.2f} |")
    cached, uncached = (sum(r[2] for r in sweeps[k]) for k in sweeps)
    print(f"statistics over the 4 runs: {cached:.2f} s with the cache (run 1's pass, then "
          f"{sum(r[2] for r in sweeps['fresh cache'][1:]):.3f} s for runs 2-4), {uncached:.2f} s without: "
          f"{cached / uncached:.2f}x")


if __name__ == "__main__":
    main()
