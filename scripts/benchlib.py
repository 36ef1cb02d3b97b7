"""Helpers shared by the benchmark scripts: run flowload, and lay out the IDX files the way
torchvision's FashionMNIST reads them."""
import gzip, json, os, shutil, subprocess, tempfile


def run_flowload(binary, args, command=("run",)):
    """Runs `flowload run ARGS` (or another command ending in `run`, such as
    `cluster-local --processes 2 run`) into a temporary --out and returns summary.json's runs."""
    out = tempfile.mkdtemp(prefix="flowload-bench-")
    try:
        subprocess.run([binary, *command, *args, "--out", out], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "summary.json")) as f:
            return json.load(f)["runs"]
    finally:
        shutil.rmtree(out)


def torchvision_root(idx_dir):
    """A temporary root with FashionMNIST/raw/ holding the IDX files un-gzipped; the caller removes it."""
    root = tempfile.mkdtemp(prefix="flowload-tv-")
    raw = os.path.join(root, "FashionMNIST", "raw")
    os.makedirs(raw)
    for name in os.listdir(idx_dir):
        if name.endswith(".gz"):
            with gzip.open(os.path.join(idx_dir, name)) as src, open(os.path.join(raw, name[:-3]), "wb") as dst:
                shutil.copyfileobj(src, dst)
    return root
