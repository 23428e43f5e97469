"""torchvision's side of `resnet data bench --stream` : §3.4's training transform on an
image folder with torchvision's DataLoader and PIL, and decoding alone, in images/s.

Transform (as src/data/stream.rs): shorter side drawn uniformly in [256, 480] (bilinear,
antialiased resize), random 224x224 crop, random horizontal flip, to a float tensor, AlexNet's PCA
colour shift (N(0, 0.1) coefficients; eigen-decomposition of a fixed covariance here, its cost is
the same), per-pixel mean subtracted. Batches of 64, `--workers` DataLoader worker processes, torch
intra-op threads 1 in each.

Usage: PYTHONPATH=.bench-tv .venv/bin/python scripts/bench_torchvision.py ROOT --workers 1
(torchvision 0.26.0 and pillow installed by scripts/bench_loader.sh with `pip install --target
.bench-tv --no-deps torchvision==0.26.0 pillow numpy`, beside the torch 2.11 of .venv).
"""
import argparse
import random
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


class RandomShorterSide:
    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __call__(self, img):
        return transforms.functional.resize(img, random.randint(self.lo, self.hi))


class Lighting:
    """AlexNet's PCA colour augmentation: img + eigvec @ (alpha * eigval)."""

    def __init__(self, std, eigval, eigvec):
        self.std, self.eigval, self.eigvec = std, eigval, eigvec

    def __call__(self, x):
        alpha = torch.randn(3) * self.std
        return x + (self.eigvec @ (alpha * self.eigval)).view(3, 1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batches", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    eigval = torch.tensor([0.2175, 0.0188, 0.0045])
    eigvec = torch.linalg.qr(torch.randn(3, 3))[0]
    mean = torch.zeros(3, 224, 224)
    t = transforms.Compose([
        RandomShorterSide(256, 480),
        transforms.RandomCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        Lighting(0.1, eigval, eigvec),
        transforms.Lambda(lambda x: x - mean),
    ])
    ds = datasets.ImageFolder(a.root + "/train", transform=t)
    files = [p for p, _ in ds.samples]
    start = time.perf_counter()
    for p in files:
        with Image.open(p) as im:
            im.convert("RGB").load()
    dec = time.perf_counter() - start
    print(f"torchvision/PIL decode,{len(files)},{dec:.3f},{len(files) / dec:.1f}")
    dl = DataLoader(ds, batch_size=64, shuffle=True, num_workers=a.workers,
                    persistent_workers=True, prefetch_factor=4,
                    worker_init_fn=lambda _: torch.set_num_threads(1))
    it = iter(dl)
    next(it)  # warm-up: workers started, first batch
    start = time.perf_counter()
    n = 0
    for _ in range(a.batches):
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(dl)
            x, _ = next(it)
        n += x.shape[0]
    tr = time.perf_counter() - start
    print(f"torchvision DataLoader train transform (workers={a.workers}),{n},{tr:.3f},{n / tr:.1f}")


if __name__ == "__main__":
    main()
