#!/usr/bin/env python3
"""PyTorch reference for `resnet bench` (paper §4.2: the CIFAR-10 ResNets, option A shortcuts).

With ``--train --config FILE`` it is instead the independent PyTorch *trainer* of the same recipe
(scripts/reference_trainer.py: a run folder in our format, for `resnet report` beside ours); what
follows describes the benchmark mode.

Trains exactly the network, initialization, batch, SGD recipe and augmentation of our Rust
implementation (src/net/model.rs, src/net/arch.rs, src/data/mod.rs) and reports steady-state training
images/s, the fraction of that time spent waiting for data, and evaluation images/s, as one
readable line and one CSV line in the format of `resnet bench`.

Two ways of writing it:

* ``--impl typical``: as most users write it (the popular CIFAR ResNet repositories and
  torchvision's reference scripts): ``ImageFolder`` on the extracted JPEGs, torchvision transforms
  (ToTensor, mean-image subtraction, Pad(4), RandomCrop(32), RandomHorizontalFlip), a
  ``DataLoader`` with worker processes, the default ``SGD`` and a ``loss.item()`` plus correct-count
  ``.item()`` every step for the running statistics.
* ``--impl careful``: as a careful user writes it: every image decoded once into one uint8 tensor
  on the device, per-batch ``index_select`` and the same pad/crop/flip as tensor ops on the device,
  ``cudnn.benchmark``, no host sync per step, ``SGD(foreach=True)`` (``--optimizer fused`` on
  CUDA), optional ``--channels-last``, ``--bf16`` (autocast) and ``--compile``.

* ``--impl best`` (CUDA): PyTorch at its best for this step, as the CUDA-graphs section of the
  PyTorch docs writes it: the careful data on the device, and the whole training step (batch
  gather, crop/flip drawn inside the graph from the graph-safe CUDA generator, forward, backward,
  fused SGD with the learning rate as a device tensor, device-side loss/error sums) captured
  once with ``torch.cuda.graph`` after three warm-up steps on a side stream and replayed every
  iteration; only the batch position (and, once per epoch, the permutation) is written before a
  replay. SGD has no ``capturable`` flag: it is capturable as is, and a tensor ``lr`` keeps the
  rate changeable without re-capture. Combine with ``--bf16`` and ``--channels-last``;
  ``--compile`` (careful only) adds ``torch.compile`` with ``--compile-mode`` (e.g.
  ``max-autotune``, which also uses CUDA graphs for the compiled forward and backward).

Differences from ours that torchvision cannot avoid (typical only): random numbers come from
torch's generators rather than our SplitMix64 stream; batches never span an epoch boundary
(``drop_last``), and each epoch restarts the loader. The mean image is subtracted before padding
in both, so the padding is zero in the mean-subtracted space, as in ours.

``data_wait_frac`` is the host time spent obtaining the next batch (``next(loader)`` and the copy
for typical, building the batch for careful) over the timed span; on CUDA the careful batch is
only queued, so there it is launch time, not GPU time. ``--profile`` times data, forward,
backward and optimizer separately with a sync after each.

On the CPU, mind the layout: our batches come out of the crop/flip gather with channels-last
strides, and oneDNN then runs every convolution channels-last even with NCHW weights; compare
ours with ``--impl careful --channels-last`` as well as with the plain NCHW careful run.

Needs only torch, torchvision, numpy and pillow (scripts/setup-bench.sh installs them).
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
CSV_HEADER = (
    "impl,model,device,threads,precision,memory_format,batch,iters,"
    "train_images_per_s,data_wait_frac,eval_images_per_s"
)
PAD = 4


# ----------------------------------------------------------------------------------------------
# The network of §4.2 (mirrors src/net/model.rs)


class ZeroPadShortcut(nn.Module):
    """Option A: x[:, :, ::s, ::s] zero-padded in channels, split evenly before/after."""

    def __init__(self, stride: int, before: int, after: int):
        super().__init__()
        self.stride, self.before, self.after = stride, before, after

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            extra = cout - cin
            self.shortcut = ZeroPadShortcut(stride, extra // 2, extra - extra // 2)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """3x3/16 stem (no bias) + BN + ReLU, 3 stages of n blocks at 16/32/64, avg pool, FC."""

    def __init__(self, depth: int, classes: int = 10):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise SystemExit(f"--depth {depth}: a CIFAR ResNet has depth 6n+2 (20, 32, 44, 56, 110)")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for i, width in enumerate((16, 32, 64)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(cin, width, stride))
                cin = width
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, classes)  # PyTorch's default init, as ours
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ----------------------------------------------------------------------------------------------
# Data: the CIFAR-10 JPEG tree, or synthetic images of the same shape


def extract(archive: Path, cache: Path) -> Path:
    """Extracts the archive once into cache/<stem>/ and returns the folder holding train/ and test/."""
    dest = cache / archive.name.replace(".tar.gz", "").replace(".tgz", "")
    marker = dest / ".extracted"
    if not marker.exists():
        print(f"reference: extracting {archive} into {dest} ...", file=sys.stderr)
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as t:
            try:
                t.extractall(dest, filter="data")
            except TypeError:  # Python without extraction filters (< 3.11.4)
                t.extractall(dest)
        marker.touch()
    return dest


def decode_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """All images of an ImageFolder split as uint8 [N, 3, 32, 32] and int64 labels (sorted classes)."""
    from PIL import Image

    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((folder / name).iterdir())]
    x = np.empty((len(files), 32, 32, 3), np.uint8)
    y = np.empty(len(files), np.int64)
    for i, (f, c) in enumerate(files):
        with Image.open(f) as im:
            x[i] = np.asarray(im.convert("RGB"))
        y[i] = c
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y


def decoded(root: Path) -> dict[str, np.ndarray]:
    """Decodes both splits once and keeps them as .npy beside the extracted tree."""
    out = {}
    for split in ("train", "test"):
        fx, fy = root / f"{split}_x.npy", root / f"{split}_y.npy"
        if not (fx.exists() and fy.exists()):
            print(f"reference: decoding {root / split} once ...", file=sys.stderr)
            x, y = decode_split(root / split)
            np.save(fx, x)
            np.save(fy, y)
        out[f"{split}_x"], out[f"{split}_y"] = np.load(fx), np.load(fy)
    return out


def synthetic(seed: int) -> dict[str, np.ndarray]:
    """Random images of CIFAR-10's shape (50,000 + 10,000, 10 classes), for machines without it."""
    r = np.random.default_rng(seed)
    return {
        "train_x": r.integers(0, 256, (50_000, 3, 32, 32), dtype=np.uint8),
        "train_y": r.integers(0, 10, 50_000, dtype=np.int64),
        "test_x": r.integers(0, 256, (10_000, 3, 32, 32), dtype=np.uint8),
        "test_y": r.integers(0, 10, 10_000, dtype=np.int64),
    }


class MeanSubtract:
    """Subtracts the per-pixel mean image of the training set (no std division, §4.2)."""

    def __init__(self, mean: torch.Tensor):
        self.mean = mean

    def __call__(self, x):
        return x - self.mean


class ArrayImages(torch.utils.data.Dataset):
    """Synthetic stand-in for ImageFolder: yields PIL images so the transforms are the same."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i].transpose(1, 2, 0))), int(self.y[i])


def pad_crop_flip(x: torch.Tensor, oy, ox, flip, pad: int = PAD) -> torch.Tensor:
    """Zero-pads x [B,C,H,W] by `pad`, crops H×W at (oy, ox), mirrors where flip; one gather.

    Same indexing as ours: the result has channels-last strides ([B,H,W,C] memory, NCHW view).
    """
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = (oy[:, None] + ar_h[None]).view(b, h, 1)
    cols = torch.where(flip[:, None].bool(), (w - 1) - ar_w[None], ar_w[None]) + ox[:, None]
    bi = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded[bi, :, rows, cols.view(b, 1, w)].permute(0, 3, 1, 2)


class DeviceData:
    """The careful pipeline: uint8 images resident on the device, augmentation as tensor ops."""

    def __init__(self, d, device, batch, channels_last):
        self.x = torch.from_numpy(d["train_x"]).to(device)
        self.y = torch.from_numpy(d["train_y"]).to(device)
        self.tx = torch.from_numpy(d["test_x"]).to(device)
        self.ty = torch.from_numpy(d["test_y"]).to(device)
        self.mean = self.x.float().mean(0) / 255.0
        self.device, self.batch, self.channels_last = device, batch, channels_last
        self.n = self.x.shape[0]
        self.per_epoch = self.n // batch
        self.perm = None

    def _layout(self, x):
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def train_batch(self, it: int):
        k = it % self.per_epoch
        if k == 0 or self.perm is None:
            self.perm = torch.randperm(self.n, device=self.device)
        idx = self.perm[k * self.batch : (k + 1) * self.batch]
        x = self.x.index_select(0, idx).float().div_(255.0).sub_(self.mean)
        b = self.batch
        params = torch.randint(0, 2 * PAD + 1, (2, b), device=self.device)
        flip = torch.randint(0, 2, (b,), device=self.device)
        x = pad_crop_flip(x, params[0], params[1], flip)
        return self._layout(x), self.y.index_select(0, idx)

    def eval_batches(self, batch, limit):
        n = min(limit, self.tx.shape[0])
        for s in range(0, n, batch):
            e = min(s + batch, n)
            yield self._layout(self.tx[s:e].float().div_(255.0).sub_(self.mean)), self.ty[s:e]


class LoaderData:
    """The typical pipeline: ImageFolder (or array images) + torchvision transforms + DataLoader."""

    def __init__(self, d, root, device, batch, workers, eval_batch):
        from torchvision import datasets, transforms as T

        mean = torch.from_numpy(d["train_x"]).float().mean(0) / 255.0
        train_tf = T.Compose(
            [T.ToTensor(), MeanSubtract(mean), T.Pad(PAD), T.RandomCrop(32), T.RandomHorizontalFlip()]
        )
        test_tf = T.Compose([T.ToTensor(), MeanSubtract(mean)])
        if root is not None:
            train = datasets.ImageFolder(str(root / "train"), train_tf)
            test = datasets.ImageFolder(str(root / "test"), test_tf)
        else:
            train = ArrayImages(d["train_x"], d["train_y"], train_tf)
            test = ArrayImages(d["test_x"], d["test_y"], test_tf)
        pin = device.type == "cuda"
        self.device = device
        self.train = torch.utils.data.DataLoader(
            train, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=pin, drop_last=True
        )
        self.test = torch.utils.data.DataLoader(
            test, batch_size=eval_batch, shuffle=False, num_workers=workers, pin_memory=pin
        )
        self.it = None

    def train_batch(self, _it: int):
        while True:
            if self.it is None:
                self.it = iter(self.train)
            try:
                x, y = next(self.it)
                break
            except StopIteration:
                self.it = None
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def eval_batches(self, _batch, limit):
        seen = 0
        for x, y in self.test:
            if seen >= limit:
                break
            x, y = x[: limit - seen], y[: limit - seen]
            seen += len(y)
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


class GraphedStep:
    """--impl best: the whole training step as one CUDA graph (see the module doc).

    Static inputs: ``perm`` (this epoch's permutation, refreshed outside the graph at each epoch
    start) and ``k`` (the batch's position in the epoch), written before every replay. Gradients
    are set to None before the capture, so the captured backward writes fresh ones into the
    graph's pool and the captured fused SGD step reads them (the PyTorch docs' whole-network
    capture).
    """

    def __init__(self, d, model, device, batch, channels_last, bf16):
        self.x = torch.from_numpy(d["train_x"]).to(device)
        self.y = torch.from_numpy(d["train_y"]).to(device)
        self.tx = torch.from_numpy(d["test_x"]).to(device)
        self.ty = torch.from_numpy(d["test_y"]).to(device)
        self.mean = self.x.float().mean(0) / 255.0
        self.model, self.device, self.batch = model, device, batch
        self.channels_last, self.bf16 = channels_last, bf16
        self.n = self.x.shape[0]
        self.per_epoch = self.n // batch
        self.perm = torch.randperm(self.n, device=device)
        self.k = torch.zeros((), dtype=torch.int64, device=device)
        self.positions = torch.arange(batch, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.lr = torch.tensor(0.1, device=device)
        self.opt = torch.optim.SGD(
            model.parameters(), lr=self.lr, momentum=0.9, weight_decay=1e-4, fused=True
        )
        self.graph = None

    def _layout(self, x):
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def _autocast(self):
        # No weight-cast cache inside a captured region (torch.cuda.make_graphed_callables).
        if self.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def _body(self):
        b = self.batch
        idx = self.perm.index_select(0, self.k * b + self.positions)
        x = self.x.index_select(0, idx).float().div_(255.0).sub_(self.mean)
        params = torch.randint(0, 2 * PAD + 1, (2, b), device=self.device)
        flip = torch.randint(0, 2, (b,), device=self.device)
        x = self._layout(pad_crop_flip(x, params[0], params[1], flip))
        y = self.y.index_select(0, idx)
        with self._autocast():
            out = self.model(x)
            loss = F.cross_entropy(out, y)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.loss_sum += loss.detach().float()
            self.correct += out.argmax(1).eq(y).sum()

    def _set_inputs(self, it: int):
        k = it % self.per_epoch
        if k == 0 and it > 0:
            self.perm.copy_(torch.randperm(self.n, device=self.device))
        self.k.fill_(k)

    def capture(self, warmup: int = 3):
        """Warm-up steps (iterations 0..warmup) on a side stream, then the capture."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for it in range(warmup):
                self._set_inputs(it)
                self.opt.zero_grad(set_to_none=True)
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self._body()
        return warmup

    def step(self, it: int) -> float:
        """Writes iteration it's inputs and replays; returns the time the inputs were ready."""
        self._set_inputs(it)
        t = time.perf_counter()
        self.graph.replay()
        return t

    def eval_batches(self, batch, limit):
        n = min(limit, self.tx.shape[0])
        for s in range(0, n, batch):
            e = min(s + batch, n)
            yield self._layout(self.tx[s:e].float().div_(255.0).sub_(self.mean)), self.ty[s:e]


# ----------------------------------------------------------------------------------------------
# Benchmark


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def torch_profile(step, its, device, out: Path, name: str) -> None:
    """What bounds a step: torch.profiler over `its` steps; writes the kernel table (by GPU time),
    a chrome trace and one summary line (wall ms/step vs GPU kernel ms/step) into `out`."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile as tprofile

    out.mkdir(parents=True, exist_ok=True)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync(device)
    with tprofile(activities=acts) as prof:
        t0 = time.perf_counter()
        for it in its:
            step(it)
        sync(device)
        wall = time.perf_counter() - t0
    n = len(its)
    dev = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    busy_us = sum(e.time_range.elapsed_us() for e in dev)
    (out / f"{name}.txt").write_text(
        prof.key_averages().table(sort_by="self_device_time_total" if dev else "self_cpu_time_total", row_limit=40)
    )
    trace = out / f"{name}.trace.json"
    prof.export_chrome_trace(str(trace))
    with trace.open("rb") as src, gzip.open(f"{trace}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    trace.unlink()
    line = (
        f"{name}: {1000 * wall / n:.3f} ms/step wall under the profiler, GPU kernels+copies "
        f"{busy_us / 1000 / n:.3f} ms/step ({100 * busy_us / 1e6 / max(wall, 1e-9):.0f}% busy), "
        f"{len(dev) / n:.0f} device events/step"
    )
    with (out / f"{name}.summary.txt").open("w") as f:
        f.write(line + "\n")
    print("torch-profile " + line, file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--train" in argv:
        # The independent trainer (same config, same data, our run-folder format).
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import reference_trainer

        return reference_trainer.main(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impl", choices=["typical", "careful", "best"], required=True)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--iters", type=int, default=50, help="timed training iterations")
    p.add_argument("--warmup", type=int, default=20, help="untimed iterations first")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--eval-batch", type=int, default=500)
    p.add_argument("--eval-images", type=int, default=10_000, help="test images to time (0: skip)")
    p.add_argument("--threads", type=int, default=0, help="intra-op CPU threads (0: torch's default)")
    p.add_argument("--workers", type=int, default=-1, help="DataLoader workers (-1: 2 on CPU, 6 on CUDA)")
    p.add_argument(
        "--data",
        default=str(ROOT.parent / "shared/data/cifar10-jpeg.tar.gz"),
        help="CIFAR-10 JPEG archive (train/<class>/*.jpg, test/<class>/*.jpg); synthetic if absent",
    )
    p.add_argument("--synthetic", action="store_true", help="random images even if --data exists")
    p.add_argument("--cache", default=str(ROOT / ".cache/reference"))
    p.add_argument("--optimizer", choices=["default", "foreach", "fused"], default=None,
                   help="SGD implementation (typical: default; careful: foreach)")
    p.add_argument("--channels-last", action="store_true", help="careful: NHWC activations")
    p.add_argument("--bf16", action="store_true", help="careful, CUDA: bfloat16 autocast")
    p.add_argument("--compile", action="store_true", help="careful: torch.compile the model")
    p.add_argument("--compile-mode", default="default",
                   choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                   help="careful --compile: torch.compile mode")
    p.add_argument("--profile", action="store_true",
                   help="also time data / forward / backward / optimizer separately (syncs each phase)")
    p.add_argument("--torch-profile", default=None, metavar="DIR",
                   help="after the timing, profile 10 more steps with torch.profiler: kernel table, "
                        "gzipped chrome trace and a GPU-busy summary into DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label", default=None, help="impl name in the output (default: --impl + options)")
    a = p.parse_args(argv)

    if a.impl == "typical" and (a.channels_last or a.bf16 or a.compile):
        p.error("--channels-last, --bf16 and --compile belong to --impl careful (or best)")
    if a.impl == "best" and (a.device != "cuda" or a.compile or a.optimizer or a.profile):
        p.error("--impl best is the CUDA-graph step: --device cuda, without --compile, --optimizer, --profile")
    if a.bf16 and a.device != "cuda":
        p.error("--bf16 needs --device cuda (autocast), as run.precision = \"bf16\" in ours")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch sees no CUDA device")
    optim_kind = a.optimizer or ("default" if a.impl == "typical" else "foreach")
    if optim_kind == "fused" and a.device != "cuda":
        p.error("--optimizer fused is used on CUDA only here")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    archive = Path(a.data)
    if archive.exists() and not a.synthetic:
        root = extract(archive, Path(a.cache))
        d = decoded(root)
        source = "cifar10-jpeg"
    else:
        if not a.synthetic:
            print(f"reference: {archive} not found; using synthetic images", file=sys.stderr)
        root, d, source = None, synthetic(a.seed), "synthetic"

    model = CifarResNet(a.depth).to(device)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    kw = {"foreach": True} if optim_kind == "foreach" else {"fused": True} if optim_kind == "fused" else {}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, **kw)
    fwd = torch.compile(model, mode=a.compile_mode) if a.compile else model
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext
    )

    best = None
    if a.impl == "best":
        best = GraphedStep(d, model, device, a.batch, a.channels_last, a.bf16)
        data = best
    elif a.impl == "careful":
        data = DeviceData(d, device, a.batch, a.channels_last)
    else:
        workers = a.workers if a.workers >= 0 else (2 if device.type == "cpu" else 6)
        data = LoaderData(d, root, device, a.batch, workers, a.eval_batch)

    stats = {"loss": 0.0, "correct": 0}

    def step(it):
        x, y = data.train_batch(it)
        t_data = time.perf_counter()
        with autocast():
            out = fwd(x)
            loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if a.impl == "typical":
            # The running statistics of the popular scripts: two host syncs per step.
            stats["loss"] += loss.item()
            stats["correct"] += out.argmax(1).eq(y).sum().item()
        return t_data

    def profile(its):
        """Per-phase seconds per step, with a device sync after every phase."""
        phases = dict.fromkeys(("data", "forward", "backward", "optimizer"), 0.0)
        for it in its:
            t0 = time.perf_counter()
            x, y = data.train_batch(it)
            sync(device)
            t1 = time.perf_counter()
            with autocast():
                loss = F.cross_entropy(fwd(x), y)
            sync(device)
            t2 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            sync(device)
            t3 = time.perf_counter()
            opt.step()
            sync(device)
            t4 = time.perf_counter()
            for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k] += dt
        n = len(its)
        total = sum(phases.values())
        print(
            "profile (ms/step): "
            + ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in phases.items())
            + f", total {1000 * total / n:.1f}",
            file=sys.stderr,
        )

    model.train()
    first = 0
    if best is not None:
        # Warm-up steps and the capture; then the graph is the step.
        first = best.capture()
        step = best.step
    for it in range(first, max(first, a.warmup)):
        step(it)
    sync(device)
    data_wait = 0.0
    start = max(first, a.warmup)
    t0 = time.perf_counter()
    for it in range(start, start + a.iters):
        t_before = time.perf_counter()
        data_wait += step(it) - t_before
    sync(device)
    train_s = time.perf_counter() - t0
    train_ips = a.iters * a.batch / train_s
    if a.profile:
        profile(range(a.warmup + a.iters, a.warmup + 2 * a.iters))
    if a.torch_profile:
        name = f"{a.label or a.impl}-resnet{a.depth}-{'bf16' if a.bf16 else 'fp32'}-{'nhwc' if a.channels_last else 'nchw'}"
        torch_profile(step, range(start + a.iters, start + a.iters + 10), device, Path(a.torch_profile), name)

    eval_ips = float("nan")
    if a.eval_images > 0:
        model.eval()
        with torch.inference_mode(), autocast():
            for x, _ in data.eval_batches(a.eval_batch, a.eval_batch):  # warm-up batch
                fwd(x)
            sync(device)
            t0 = time.perf_counter()
            n = 0
            for x, y in data.eval_batches(a.eval_batch, a.eval_images):
                fwd(x).argmax(1)
                n += len(y)
            sync(device)
            eval_ips = n / (time.perf_counter() - t0)

    label = a.label or a.impl + "".join(
        s
        for s, on in (
            ("+compile" + ("" if a.compile_mode == "default" else "-" + a.compile_mode), a.compile),
            ("+fused", a.impl == "careful" and optim_kind == "fused"),
        )
        if on
    )
    dev = "cpu" if device.type == "cpu" else "cuda"
    precision = "bf16" if a.bf16 else "fp32"
    fmt = "nhwc" if a.channels_last else "nchw"
    threads = torch.get_num_threads()
    wait_frac = data_wait / train_s
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{threads} threads"
    print(
        f"{label}: resnet{a.depth} on {dev} ({name}), {source}, {precision}/{fmt}, batch {a.batch}: "
        f"train {train_ips:.1f} images/s over {a.iters} iterations after {a.warmup} warm-up "
        f"({100 * wait_frac:.1f}% waiting for data), eval {eval_ips:.1f} images/s"
    )
    print(CSV_HEADER)
    print(
        f"{label},resnet{a.depth},{dev},{threads},{precision},{fmt},{a.batch},{a.iters},"
        f"{train_ips:.2f},{wait_frac:.4f},{eval_ips:.2f}"
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
