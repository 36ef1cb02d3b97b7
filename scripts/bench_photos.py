#!/usr/bin/env python3
"""Photo benchmark: ImageNet-like JPEGs (scripts/make_photos.py: 3000 training photos, shorter
side 300-500 px, quality 85-95), loader only, every side with the same transforms,
RandomResizedCrop(224) + RandomHorizontalFlip + Normalize, batch 100, side by side in one
invocation on the same files:

  flowload      `run --sink null`, workers 1 and 2, from the folder and from its Parquet
                (`flowload convert`, JPEG bytes kept), median of 3 epochs
  PyTorch       ImageFolder (PIL) + torchvision v2 transforms, DataLoader workers 0, 1, 2
                (one epoch each)
  DALI (CPU)    readers.file -> decoders.image_random_crop -> resize 224 ->
                crop_mirror_normalize with a coin-flip mirror, device_id=None, 1 and 2 threads,
                median of 3 epochs
  bare PIL      Image.open(...).convert("RGB") on one core: the full-decode floor

Each side runs in its own process under /usr/bin/time for its peak RSS (a DataLoader's
workers are other processes: its figure is the largest one, not the sum). Then flowload's
peak RSS on the folder and the Parquet duplicated 4x, and the time of one statistics pass.
Usage: scripts/bench_photos.py FLOWLOAD_BINARY [PHOTO_DIR]   (scripts/bench.sh photos wraps it)
"""
import glob, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 100
WORK = os.path.join(tempfile.gettempdir(), "flowload-bench-photos")
TRAIN = ["--augment", "random_resized_crop:224", "--augment", "hflip",
         "--test-transforms", "resize:256", "--test-transforms", "center_crop:224"]


def prepare(bin_, photos):
    if not os.path.isdir(os.path.join(photos, "train")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py"), photos], check=True)
    shards = os.path.join(WORK, "shards")
    if not glob.glob(os.path.join(shards, "train-*.parquet")):
        shutil.rmtree(shards, ignore_errors=True)
        subprocess.run([bin_, "convert", photos, "--to", "parquet", shards, "--row-group-size", "100"],
                       check=True, stdout=subprocess.DEVNULL)
    shards4 = os.path.join(WORK, "shards-x4")
    if not os.path.isdir(shards4):
        os.makedirs(shards4)
        for k in range(4):
            shutil.copy(os.path.join(shards, "train-00000-of-00001.parquet"), os.path.join(shards4, f"train-{k:05}-of-00004.parquet"))
        shutil.copy(os.path.join(shards, "test-00000-of-00001.parquet"), shards4)
    x4 = os.path.join(WORK, "photos-x4")
    if not os.path.isdir(x4):
        for split in ("train", "test"):
            for f in glob.glob(os.path.join(photos, split, "*", "*.jpg")):
                cls = os.path.basename(os.path.dirname(f))
                os.makedirs(os.path.join(x4, split, cls), exist_ok=True)
                for k in range(4 if split == "train" else 1):
                    os.link(f, os.path.join(x4, split, cls, f"{k}-{os.path.basename(f)}"))
    return shards, x4, shards4


def timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns (stdout, peak RSS in MiB)."""
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[:3]}: {r.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    return r.stdout, rss


def flowload(bin_, data, workers, epochs=3):
    out = tempfile.mkdtemp(prefix="flowload-bench-")
    try:
        _, rss = timed([bin_, "run", "--data", data, "--sink", "null", "--workers", str(workers),
                        "--batch-size", str(BATCH), "--epochs", str(epochs), *TRAIN, "--out", out,
                        "--no-stats-cache"])  # every run pays its statistics pass, as measured below
        with open(os.path.join(out, "summary.json")) as f:
            run = json.load(f)["runs"][0]
    finally:
        shutil.rmtree(out)
    rate = statistics.median(e["images_per_second"] for e in run["epochs"])
    return {"rate": rate, "rss": rss, "stats": run["stats"], "stats_seconds": run["epochs"][0]["stats_seconds"]}


def side(name, *args):
    """One peer in its own process: this script with --side."""
    stdout, rss = timed([sys.executable, __file__, "--side", name, *map(str, args)])
    return {**json.loads(stdout.strip().splitlines()[-1]), "rss": rss}


# --- the peers, each run as `bench_photos.py --side NAME ...` --------------------------------

def pytorch(root, workers, mean, std):
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2
    torch.set_num_threads(1)
    tf = v2.Compose([v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip(), v2.ToImage(),
                     v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    dl = DataLoader(datasets.ImageFolder(os.path.join(root, "train"), transform=tf), batch_size=BATCH,
                    shuffle=True, num_workers=workers)
    t = time.perf_counter(); n = 0
    for x, _ in dl:
        n += x.shape[0]
    return n / (time.perf_counter() - t)


def dali(root, threads, mean, std):
    from nvidia.dali import fn, pipeline_def, types
    files = sorted(glob.glob(os.path.join(root, "train", "*", "*.jpg")))

    @pipeline_def(batch_size=BATCH, num_threads=threads, device_id=None, seed=1)
    def pipe():
        enc, _ = fn.readers.file(file_root=os.path.join(root, "train"), random_shuffle=True, name="r")
        img = fn.decoders.image_random_crop(enc, device="cpu", output_type=types.RGB)
        img = fn.resize(img, resize_x=224, resize_y=224)
        return fn.crop_mirror_normalize(img, dtype=types.FLOAT, output_layout="CHW", mirror=fn.random.coin_flip(),
                                        mean=[m * 255 for m in mean], std=[s * 255 for s in std])

    p = pipe()
    p.build()
    rates = []
    for _ in range(3):
        t0 = time.perf_counter(); done = 0
        while done < len(files):
            (out,) = p.run()
            done += len(out)
        rates.append(done / (time.perf_counter() - t0))
    return statistics.median(rates)


def bare_pil(root):
    from PIL import Image
    files = sorted(glob.glob(os.path.join(root, "train", "*", "*.jpg")))
    t0 = time.perf_counter()
    for f in files:
        Image.open(f).convert("RGB")
    return len(files) / (time.perf_counter() - t0)


def main():
    if sys.argv[1] == "--side":
        name, root = sys.argv[2], sys.argv[3]
        rest = sys.argv[4:]
        if name == "pil":
            rate = bare_pil(root)
        else:
            n, mean, std = int(rest[0]), json.loads(rest[1]), json.loads(rest[2])
            rate = (pytorch if name == "pytorch" else dali)(root, n, mean, std)
        print(json.dumps({"rate": rate}))
        return
    bin_ = sys.argv[1]
    photos = sys.argv[2] if len(sys.argv) > 2 else os.path.join(WORK, "photos")
    shards, x4, shards4 = prepare(bin_, photos)
    files = glob.glob(os.path.join(photos, "train", "*", "*.jpg"))
    mb = sum(os.path.getsize(f) for f in files) / len(files) / 2**20
    print(f"{len(files)} training JPEGs, {mb * 1024:.0f} KiB each on average; {os.cpu_count()} cores", flush=True)
    fl = {w: flowload(bin_, photos, w) for w in (1, 2)}
    flp = {w: flowload(bin_, shards, w) for w in (1, 2)}
    mean, std = json.dumps(fl[1]["stats"]["mean"]), json.dumps(fl[1]["stats"]["std"])
    pt = {w: side("pytorch", photos, w, mean, std) for w in (0, 1, 2)}
    try:
        dl = {t: side("dali", photos, t, mean, std) for t in (1, 2)}
    except Exception as e:  # DALI missing or failing is reported, not fatal
        print(f"DALI: {e}", file=sys.stderr)
        dl = {t: {"rate": float("nan"), "rss": float("nan")} for t in (1, 2)}
    pil = side("pil", photos)
    print()
    print("| loader | workers/threads | images/s | MB/s of JPEG | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    row = lambda name, w, r: print(f"| {name} | {w} | {r['rate']:,.0f} | {r['rate'] * mb:,.1f} | {r['rss']:,.0f} |")
    row("bare PIL decode loop, full decode (1 core)", 1, pil)
    for w in (0, 1, 2):
        row("PyTorch DataLoader + torchvision v2", w, pt[w])
    for t in (1, 2):
        row("DALI CPU pipeline", t, dl[t])
    for w in (1, 2):
        row("flowload, image folder", w, fl[w])
    for w in (1, 2):
        row("flowload, Parquet shards", w, flp[w])
    print()
    ratio = lambda a, b: a["rate"] / b["rate"]
    print(f"flowload/DALI per thread: {ratio(fl[1], dl[1]):.2f}x (1), {ratio(fl[2], dl[2]):.2f}x (2); "
          f"flowload/DataLoader: {ratio(fl[1], pt[1]):.2f}x (1), {ratio(fl[2], pt[2]):.2f}x (2); "
          f"flowload 2 vs 1 workers: {ratio(fl[2], fl[1]):.2f}x (folder), {ratio(flp[2], flp[1]):.2f}x (Parquet)")
    print()
    print("| flowload peak RSS (MiB), 1 epoch | workers 1 | workers 2 |")
    print("|---|---:|---:|")
    for name, small, big in (("image folder", photos, x4), ("Parquet shards", shards, shards4)):
        rss = {(n, w): flowload(bin_, d, w, epochs=1)["rss"] for n, d in (("1x", small), ("4x", big)) for w in (1, 2)}
        print(f"| {name}, 3,000 photos | {rss['1x', 1]:.0f} | {rss['1x', 2]:.0f} |")
        print(f"| {name}, the same 4x (12,000) | {rss['4x', 1]:.0f} | {rss['4x', 2]:.0f} |")
    print(f"one statistics pass over the 3000 photos (resize:224 + center_crop:224): "
          f"{fl[1]['stats_seconds']:.2f} s (1 worker), {fl[2]['stats_seconds']:.2f} s (2 workers)")


if __name__ == "__main__":
    main()
