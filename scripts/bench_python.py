#!/usr/bin/env python3
"""The Python package's benchmarks, each table one invocation, every side on the same files:

1. Loader only, from Python: the photo workload (scripts/make_photos.py: 3000 ImageNet-like
   JPEGs), RandomResizedCrop(224) + horizontal flip + normalize to float32, batch 100, at
   1 and 2 workers/threads, every side in its own process under /usr/bin/time:
     flowload.Loader      float32 (normalize=True) and uint8 (raw pixels), median of 3 epochs
     flowload binary      `run --sink null`, median of 3 epochs; the binary and the float32
                          loader alternate 3 times, and the ratio is the median of neighbours
     DALI (CPU)           scripts/bench_photos.py's pipeline, device_id=None, median of 3 epochs
     SPDL 0.8             demux_image -> decode_packets through the filter graph
                          `crop=...,scale=224:224[,hflip]` (torchvision's RandomResizedCrop
                          parameters) in a PipelineBuilder thread stage, batches stacked and
                          normalized in torch, median of 3 epochs
     DataLoader           ImageFolder + torchvision v2, one epoch
2. End to end: examples/train.py (ResNet-8, cosine schedule) with flowload.Loader against
   torchvision's ImageFolder + DataLoader at equal workers, on the CIFAR-style PNGs and on the
   photos (RandomResizedCrop 64, to keep a CPU epoch short), 2 epochs, epoch 2's figures:
   epoch time, data wait, peak RSS (for the DataLoader, its process and its workers' summed).
3. Memory: flowload.Loader's process RSS after each of 20 epochs.

Usage: scripts/bench_python.py FLOWLOAD_BINARY [loader|train|memory|all]
(scripts/bench.sh python wraps it)
"""
import glob, json, os, random, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_photos  # noqa: E402  (the photo set, the binary's, DALI's and the DataLoader's sides)

BATCH = bench_photos.BATCH
AUGMENT = ["random_resized_crop:224", "hflip"]
ROUNDS = 3
CIFAR = os.path.join(bench_photos.WORK, "cifar")


# --- the sides, each run as `bench_python.py --side NAME ROOT N [MEAN STD]` -------------------

def flowload_side(root, workers, dtype):
    import flowload
    loader = flowload.Loader(root, batch_size=BATCH, shuffle=True, seed=0, augment=AUGMENT,
                             normalize=dtype == "float32", workers=workers, dtype=dtype,
                             stats_cache="off")
    for _ in range(3):
        for images, labels in loader:
            pass
    return statistics.median(m["images_per_second"] for m in loader.metrics)


def spdl_side(root, threads, mean, std):
    import torch
    import spdl.io
    from spdl.pipeline import PipelineBuilder
    from torchvision.transforms import RandomResizedCrop
    torch.set_num_threads(1)
    files = sorted(glob.glob(os.path.join(root, "train", "*", "*.jpg")))
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    rng = random.Random(0)

    def decode(path):
        packets = spdl.io.demux_image(path)
        # torchvision's RandomResizedCrop parameters for this image's size (a zero-cost view
        # stands in for the image), then FFmpeg crops, scales and flips as it decodes.
        top, left, h, w = RandomResizedCrop.get_params(
            torch.empty(1).expand(3, packets.height, packets.width), (0.08, 1.0), (3 / 4, 4 / 3))
        flip = ",hflip" if rng.random() < 0.5 else ""
        frames = spdl.io.decode_packets(
            packets, filter_desc=f"crop={w}:{h}:{left}:{top},scale=224:224{flip},format=rgb24")
        return spdl.io.to_torch(spdl.io.convert_frames(frames))

    def collate(images):
        x = torch.stack(images).permute(0, 3, 1, 2).float().div_(255)
        return x.sub_(mean_t).div_(std_t)

    rates = []
    for epoch in range(3):
        order = files[:]
        random.Random(epoch).shuffle(order)
        pipeline = (PipelineBuilder().add_source(order).pipe(decode, concurrency=threads)
                    .aggregate(BATCH).pipe(collate).add_sink(2).build(num_threads=threads))
        t0 = time.perf_counter(); n = 0
        with pipeline.auto_stop():
            for x in pipeline:
                n += x.shape[0]
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def side(name, *args):
    stdout, rss = bench_photos.timed([sys.executable, __file__, "--side", name, *map(str, args)])
    return {**json.loads(stdout.strip().splitlines()[-1]), "rss": rss}


def ratio(a, b):
    return a["rate"] / b["rate"]


def loader_table(bin_, photos):
    files = glob.glob(os.path.join(photos, "train", "*", "*.jpg"))
    print(f"Loader only: {len(files)} training JPEGs, RandomResizedCrop 224 + flip, batch {BATCH}; "
          f"{os.cpu_count()} cores", flush=True)
    # The binary and the Python loader alternate, ROUNDS times each: this machine's speed drifts
    # by a third between minutes (measured: the binary at 595 then 888 images/s), so each
    # round's ratio is of neighbours, and the table has the medians.
    binary, py, ratios = {}, {}, {1: [], 2: []}
    for w in (1, 2):
        rounds = []
        for _ in range(ROUNDS):
            b = bench_photos.flowload(bin_, photos, w)
            p = side("flowload", photos, w, "float32")
            rounds.append((b, p))
            ratios[w].append(ratio(p, b))
        binary[w] = {**rounds[0][0], "rate": statistics.median(b["rate"] for b, _ in rounds),
                     "rss": statistics.median(b["rss"] for b, _ in rounds)}
        py[w, "float32"] = {"rate": statistics.median(p["rate"] for _, p in rounds),
                            "rss": statistics.median(p["rss"] for _, p in rounds)}
        py[w, "uint8"] = side("flowload", photos, w, "uint8")
    mean, std = json.dumps(binary[1]["stats"]["mean"]), json.dumps(binary[1]["stats"]["std"])
    dali, spdl_ = {}, {}
    for t in (1, 2):
        for table, name in ((dali, "dali"), (spdl_, "spdl")):
            try:
                table[t] = side(name, photos, t, mean, std)
            except Exception as e:  # a missing peer is reported, not fatal
                print(f"{name}: {str(e)[-500:]}", file=sys.stderr)
                table[t] = {"rate": float("nan"), "rss": float("nan")}
    pt = {w: side("pytorch", photos, w, mean, std) for w in (1, 2)}
    print()
    print("| loader | workers/threads | images/s | peak RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for w in (1, 2):
        for name, r in (("flowload.Loader, float32", py[w, "float32"]),
                        ("flowload.Loader, uint8 (normalize on the device)", py[w, "uint8"]),
                        ("flowload binary, --sink null", binary[w]),
                        ("DALI CPU pipeline", dali[w]), ("SPDL 0.8, FFmpeg filter graph", spdl_[w]),
                        ("DataLoader + torchvision v2", pt[w])):
            print(f"| {name} | {w} | {r['rate']:,.0f} | {r['rss']:,.0f} |")
    print()
    for w in (1, 2):
        f = py[w, "float32"]
        print(f"{w} worker(s): Python/binary {statistics.median(ratios[w]):.3f}x (median of {ROUNDS} "
              f"neighbouring pairs: {', '.join(f'{r:.2f}' for r in ratios[w])}); /DALI {ratio(f, dali[w]):.2f}x; "
              f"/SPDL {ratio(f, spdl_[w]):.2f}x; /DataLoader {ratio(f, pt[w]):.2f}x; "
              f"uint8/float32 {ratio(py[w, 'uint8'], f):.2f}x")


def train_table():
    if not os.path.isdir(os.path.join(CIFAR, "train")):
        subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py"), CIFAR, "--cifar"], check=True,
                       stdout=subprocess.DEVNULL)
    photos = os.path.join(bench_photos.WORK, "photos")
    train = os.path.join(HERE, "..", "examples", "train.py")
    print("\nEnd to end: examples/train.py, ResNet-8, SGD with a cosine schedule, batch 100, 2 epochs "
          "(the figures are epoch 2's: the first pays the statistics pass and start-up)\n")
    print("| data | loader | workers | epoch (s) | data wait (s) | data wait | peak RSS (MiB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    peaks = {}
    sets = (("CIFAR-style 32x32 PNGs", CIFAR, 32), ("photos, RRC 64", photos, 64))
    for label, data, size in sets:
        # `memory`: the same loop on a batch already in memory, the floor no loader goes below.
        for workers, loader in ((0, "memory"), (1, "flowload"), (1, "dataloader"), (2, "flowload"),
                                (2, "dataloader")):
                r = subprocess.run([sys.executable, train, data, "--loader", loader, "--workers", str(workers),
                                    "--epochs", "2", "--size", str(size), "--json"],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    raise RuntimeError(r.stderr[-2000:])
                s = json.loads(r.stdout.strip().splitlines()[-1])
                ep = s["epochs"][1:]
                sec = statistics.median(e["seconds"] for e in ep)
                wait = statistics.median(e["data_wait_seconds"] for e in ep)
                print(f"| {label} | {loader} | {workers} | {sec:.2f} | {wait:.3f} | {wait / sec:.1%} | "
                      f"{s['peak_rss_mib']:,.0f} |", flush=True)
                peaks[label, loader, workers] = s["peak_rss_mib"]
    print("\nPeak RSS at 2 workers: flowload/DataLoader, and each over the floor (the loop on a batch in memory)")
    for label, _, _ in sets:
        floor, fl, dl = peaks[label, "memory", 0], peaks[label, "flowload", 2], peaks[label, "dataloader", 2]
        print(f"{label}: {fl / dl:.2f}x; flowload {fl - floor:+,.0f} MiB, DataLoader {dl - floor:+,.0f} MiB "
              f"over the floor of {floor:,.0f} MiB (0.5x the DataLoader would be {dl / 2:,.0f} MiB)")


def memory_table():
    photos = CIFAR if os.path.isdir(CIFAR) else os.path.join(bench_photos.WORK, "photos")
    code = f"""
import json, flowload
loader = flowload.Loader({photos!r}, batch_size=100, shuffle=True, augment=["random_crop:32,padding=4", "hflip"],
                         normalize=True, workers=2, stats_cache="off")
rss = []
for epoch in range(20):
    for x, y in loader:
        pass
    rss.append(int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20)
print(json.dumps(rss))
"""
    rss = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                     .stdout.strip().splitlines()[-1])
    print(f"\nMemory: flowload.Loader's RSS (MiB) after each of 20 epochs, workers 2, {photos}:")
    print(" ".join(f"{r:.0f}" for r in rss))
    print(f"epoch 2 → epoch 20: {rss[-1] - rss[1]:+.1f} MiB")


def main():
    if sys.argv[1] == "--side":
        name, root, n = sys.argv[2], sys.argv[3], sys.argv[4]
        if name == "flowload":
            rate = flowload_side(root, int(n), sys.argv[5])
        else:
            mean, std = json.loads(sys.argv[5]), json.loads(sys.argv[6])
            fn = {"spdl": spdl_side, "dali": bench_photos.dali, "pytorch": bench_photos.pytorch}[name]
            rate = fn(root, int(n), mean, std)
        print(json.dumps({"rate": rate}))
        return
    bin_, what = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "all")
    photos = os.path.join(bench_photos.WORK, "photos")
    bench_photos.prepare(bin_, photos)
    if what in ("loader", "all"):
        loader_table(bin_, photos)
    if what in ("train", "all"):
        train_table()
    if what in ("memory", "all"):
        memory_table()


if __name__ == "__main__":
    main()
