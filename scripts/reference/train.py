#!/usr/bin/env python3
"""An independent PyTorch trainer for the CIFAR-10 recipe of He et al. 2015, §4.2 (Table 6, Figure 6).

The yardstick for `resnet train`: it reads the same TOML config (python 3.11 ``tomllib``) and the
same data, trains the paper's recipe with plain PyTorch, and writes a run folder that `resnet
report` and `resnet compare` read beside ours. It is written the way a PyTorch user writes a CIFAR
ResNet (the network after akamaster/pytorch_resnet_cifar10, option A as a ``LambdaLayer``), not
translated from our Rust code; the only thing shared with ours is the recipe and the file formats.
Run it as ``scripts/reference/train.py --config FILE [--seed N] [--data PATH] [--out DIR]``
(or this file directly, same flags).

The recipe, as §4.2 states it and as our config spells it:

* Network: 3x3 conv with 16 filters, then 3 stages of n basic blocks (two 3x3 convs each) at
  16/32/64 filters and 32/16/8 pixels, global average pooling, a 10-way fully connected layer;
  depth 6n+2. BN after every convolution, ReLU after the addition. Option A shortcuts: identity,
  and where the dimensions grow, the input subsampled by 2 and zero-padded in channels (half the
  new channels before, half after). ``model.kind = "plain"`` drops the shortcuts (Figure 6).
* Initialization: He et al. [13] (``kaiming_normal_``, fan-out, ReLU gain, as torchvision) for every
  convolution; BN weight 1, bias 0; the classifier keeps PyTorch's default ``nn.Linear`` init.
* Data: the per-pixel mean is the mean image of the training split — for every (channel, row,
  column) the average over all training images (after any ``data.validation`` hold-out, none in
  §4.2) of the pixel value scaled to [0, 1]; no division by a standard deviation. It is subtracted
  from every training and test image. Training images are then zero-padded by 4 pixels on each
  side (zero in the mean-subtracted space), a random 32x32 crop is taken and mirrored with
  probability 1/2. Test images are only mean-subtracted (the single original view).
* Batches: 128 images drawn without replacement from an endless series of epochs, each epoch a
  fresh ``torch.randperm``; a batch that runs past the end of an epoch continues into the next
  (so every batch has 128 images and the schedule counts iterations, as the paper does). All
  random numbers come from torch's generators seeded with ``run.seed``.
* SGD: momentum 0.9, weight decay 1e-4 on every parameter (BN included), ``torch.optim.SGD``
  semantics, lr 0.1 divided by 10 at ``schedule.milestones`` (32k and 48k of 64k iterations).
* Warm-up (``[schedule.warmup]``, ResNet-110): lr ``warmup.lr`` until the training error over the
  iterations since the last check (checks every ``warmup.check_every`` iterations) is below
  ``warmup.until_train_error``, or at ``warmup.max_iterations`` at the latest; the milestones keep
  counting from iteration 0.
* Records: every ``run.log_every`` iterations a ``curves.csv`` row with the mean training loss and
  the training error (%) over the iterations since the last row, measured on the augmented
  batches in training mode; every ``run.eval_every`` iterations (and at the end) the loss and
  error on the whole test split in eval mode (BN running statistics). ``summary.csv`` at the end.
  Both in the exact format of src/run/records.rs, with ``config.toml`` (the resolved config) and
  ``trainer.toml`` (``impl = "pytorch-reference"``, which `resnet report` shows in its ``impl``
  column).

Data parallelism (PyTorch's own, the yardstick for `resnet train --nproc N`): started by
``torchrun --nproc-per-node N scripts/reference/train.py ...`` (WORLD_SIZE > 1 in the
environment), every rank joins a Gloo process group and wraps the network in
``DistributedDataParallel`` (rank 0's initial weights broadcast, gradients averaged over the ranks,
BN statistics per replica and running statistics broadcast from rank 0 before each forward:
``broadcast_buffers=True``, DDP's default). Every rank draws the same global batch of 128 from the
same generator and trains on its contiguous slice (rank r of N: images r*128/N to (r+1)*128/N), so
the data order does not depend on N. The curves' training loss and error are summed over the ranks
at each log row; rank 0 alone evaluates (the whole test split, with its buffers, which DDP keeps
equal on every rank) and writes the run folder; ``run.world_size = N`` lands in its config.toml.

Data sources: ``data.dataset = "image_folder"`` (``ROOT/train/<class>/*.png|jpg`` and
``ROOT/test/`` or ``ROOT/val/``, or a ``.tar.gz`` of that tree, read straight from the archive) and
``"cifar10"`` (the official binary files under ``data.path/cifar-10-batches-bin``). Decoded images
are cached under ``data.cache_dir/reference/``. Relative paths follow `resnet train`'s rule
(src/config.rs): a ``data.path`` or ``data.cache_dir`` written in the config file is relative to
that file's folder; defaults, ``--data`` and ``run.out_dir`` are relative to the current folder.
Needs only torch, numpy and pillow.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import math
import os
import platform
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    raise SystemExit("reference trainer: needs python 3.11 or newer (tomllib)")

CURVES_HEADER = "iteration,epoch,lr,train_loss,train_error,test_loss,test_error,images_per_s,elapsed_s"
SUMMARY_HEADER = (
    "name,model,family,kind,shortcut,depth,params,iterations,final_train_error,final_test_error,"
    "best_test_error,best_iteration,eval_split,warmup_end,wall_s"
)
IMPL = "pytorch-reference"
PAD = 4


class ConfigError(Exception):
    """A bad config value or flag: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------------------------
# The config (the subset of our TOML schema this trainer implements; defaults are §4.2's)


@dataclass
class Warmup:
    lr: float = 0.01
    until_train_error: float = 0.8
    check_every: int = 20
    max_iterations: int = 2000


@dataclass
class Recipe:
    name: str
    depth: int
    kind: str = "residual"
    classes: int = 10
    dataset: str = "cifar10"
    data_path: str = "data/cifar10"
    augment: str = "cifar"
    cache_dir: str = ".cache"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    nesterov: bool = False
    milestones: list = field(default_factory=lambda: [32_000, 48_000])
    gamma: float = 0.1
    iterations: int = 64_000
    warmup: Warmup | None = None
    seed: int = 0
    out_dir: str = ""
    log_every: int = 100
    eval_every: int = 1000
    threads: int = 0
    memory_format: str = "nchw"
    eval_batch_size: int = 500
    raw: dict = field(default_factory=dict)

    def out(self) -> Path:
        return Path(self.out_dir) if self.out_dir else Path("runs") / self.name

    def model_name(self) -> str:
        return f"{'resnet' if self.kind == 'residual' else 'plain'}{self.depth}"


def _get(table: dict, key: str, kind, default, where: str):
    v = table.get(key, default)
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise ConfigError(f"{where}.{key} = {v!r}: expected {kind.__name__}")
    return v


def load_recipe(path: Path, args) -> Recipe:
    """Reads our TOML config, applies the flags (as `resnet train` does) and checks what this
    trainer implements; every error names the file, the key and the value."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"cannot read config file {path}")
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})")
    f = str(path)
    m, d, o = raw.get("model", {}), raw.get("data", {}), raw.get("optimizer", {})
    s, r = raw.get("schedule", {}), raw.get("run", {})
    fam = m.get("family")
    if fam != "cifar":
        raise ConfigError(f"{f}: model.family = {fam!r}: the reference trainer implements the CIFAR nets of §4.2 only")
    rec = Recipe(name=raw.get("name") or path.stem, depth=_get(m, "depth", int, 0, f"{f}: model"), raw=raw)
    if rec.depth < 8 or (rec.depth - 2) % 6:
        raise ConfigError(f"{f}: model.depth = {rec.depth}: a CIFAR net has depth 6n+2 (20, 32, 44, 56, 110, ...)")
    rec.kind = _get(m, "kind", str, "residual", f"{f}: model")
    if rec.kind not in ("residual", "plain"):
        raise ConfigError(f"{f}: model.kind = {rec.kind!r}: allowed are \"residual\" and \"plain\"")
    if m.get("shortcut", "A") != "A":
        raise ConfigError(f"{f}: model.shortcut = {m['shortcut']!r}: the reference implements option A (§4.2) only")
    rec.classes = _get(m, "classes", int, 10, f"{f}: model")
    rec.dataset = _get(d, "dataset", str, "cifar10", f"{f}: data")
    if rec.dataset not in ("image_folder", "cifar10"):
        raise ConfigError(
            f"{f}: data.dataset = {rec.dataset!r}: the reference reads \"image_folder\" and \"cifar10\" "
            "(synthetic images are generated by our Rust code only)"
        )
    # Paths written in the file are relative to its folder (as src/config.rs resolves them).
    here = path.resolve().parent
    rec.data_path = _get(d, "path", str, "data/cifar10", f"{f}: data")
    if "path" in d:
        rec.data_path = str(here / rec.data_path)
    rec.augment = _get(d, "augment", str, "cifar", f"{f}: data")
    if rec.augment not in ("cifar", "none"):
        raise ConfigError(f"{f}: data.augment = {rec.augment!r}: allowed here are \"cifar\" and \"none\"")
    if _get(d, "validation", int, 0, f"{f}: data") != 0:
        raise ConfigError(f"{f}: data.validation = {d['validation']}: the reference evaluates on the test split only")
    rec.cache_dir = _get(d, "cache_dir", str, ".cache", f"{f}: data")
    if "cache_dir" in d:
        rec.cache_dir = str(here / rec.cache_dir)
    rec.lr = _get(o, "lr", float, 0.1, f"{f}: optimizer")
    rec.momentum = _get(o, "momentum", float, 0.9, f"{f}: optimizer")
    rec.weight_decay = _get(o, "weight_decay", float, 1e-4, f"{f}: optimizer")
    rec.batch_size = _get(o, "batch_size", int, 128, f"{f}: optimizer")
    rec.nesterov = _get(o, "nesterov", bool, False, f"{f}: optimizer")
    if s.get("mode", "milestones") != "milestones":
        raise ConfigError(f"{f}: schedule.mode = {s['mode']!r}: the reference implements \"milestones\" (§4.2) only")
    rec.milestones = list(_get(s, "milestones", list, [32_000, 48_000], f"{f}: schedule"))
    rec.gamma = _get(s, "gamma", float, 0.1, f"{f}: schedule")
    rec.iterations = _get(s, "iterations", int, 64_000, f"{f}: schedule")
    if "warmup" in s:
        w = s["warmup"]
        rec.warmup = Warmup(
            lr=_get(w, "lr", float, 0.01, f"{f}: schedule.warmup"),
            until_train_error=_get(w, "until_train_error", float, 0.8, f"{f}: schedule.warmup"),
            check_every=_get(w, "check_every", int, 20, f"{f}: schedule.warmup"),
            max_iterations=_get(w, "max_iterations", int, 2000, f"{f}: schedule.warmup"),
        )
    rec.seed = _get(r, "seed", int, 0, f"{f}: run")
    rec.out_dir = _get(r, "out_dir", str, "", f"{f}: run")
    rec.log_every = _get(r, "log_every", int, 100, f"{f}: run")
    rec.eval_every = _get(r, "eval_every", int, 1000, f"{f}: run")
    rec.threads = _get(r, "threads", int, 0, f"{f}: run")
    rec.memory_format = _get(r, "memory_format", str, "nchw", f"{f}: run")
    rec.eval_batch_size = _get(r, "eval_batch_size", int, 500, f"{f}: run")
    if r.get("precision", "fp32") != "fp32":
        raise ConfigError(f"{f}: run.precision = {r['precision']!r}: the reference trains in fp32 only")
    # The flags, as `resnet train` applies them (--iterations also drops later milestones).
    if args.iterations is not None:
        rec.iterations = args.iterations
        rec.milestones = [x for x in rec.milestones if x <= args.iterations]
    if args.seed is not None:
        rec.seed = args.seed
    if args.data is not None:
        rec.data_path = args.data
    if args.out is not None:
        rec.out_dir = args.out
    if args.threads is not None:
        rec.threads = args.threads
    for key, v in (("schedule.iterations", rec.iterations), ("run.log_every", rec.log_every),
                   ("run.eval_every", rec.eval_every), ("optimizer.batch_size", rec.batch_size),
                   ("run.eval_batch_size", rec.eval_batch_size)):
        if v < 1:
            raise ConfigError(f"{f}: {key} = {v}: must be at least 1")
    if rec.memory_format not in ("nchw", "nhwc"):
        raise ConfigError(f"{f}: run.memory_format = {rec.memory_format!r}: allowed are \"nchw\" and \"nhwc\"")
    return rec


# ----------------------------------------------------------------------------------------------
# The network (after akamaster/pytorch_resnet_cifar10, resnet.py)


class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1, shortcut=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.use_shortcut = shortcut
        self.shortcut = nn.Sequential()
        if shortcut and (stride != 1 or in_planes != planes):
            # Option A: subsample by 2 and zero-pad the new channels, half before and half after.
            extra = planes - in_planes
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, extra // 2, extra - extra // 2), "constant", 0)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.use_shortcut:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNetCifar(nn.Module):
    def __init__(self, depth, num_classes=10, residual=True):
        super().__init__()
        n = (depth - 2) // 6
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, n, 1, residual)
        self.layer2 = self._make_layer(32, n, 2, residual)
        self.layer3 = self._make_layer(64, n, 2, residual)
        self.linear = nn.Linear(64, num_classes)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes, blocks, stride, residual):
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s, residual))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return self.linear(out.view(out.size(0), -1))


# ----------------------------------------------------------------------------------------------
# Data


@dataclass
class Images:
    classes: list
    train_x: torch.Tensor  # [N, 3, H, W] uint8
    train_y: torch.Tensor  # [N] int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    eval_split: str = "test"


IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _split_of(parts: list[str]):
    """(split, class, file) of an archive member or relative path, with any leading folders."""
    for i in range(len(parts) - 2):
        if parts[i] in ("train", "test", "val") and i + 3 == len(parts):
            return parts[i], parts[i + 1], parts[i + 2]
    return None


def _files(path: Path):
    """Yields (split, class, file name, bytes) for every image of a folder or a .tar.gz."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_EXT:
                key = _split_of(list(p.relative_to(path).parts))
                if key:
                    yield (*key, p.read_bytes())
    else:
        with tarfile.open(path, "r:*") as t:
            for m in t:
                if m.isfile() and Path(m.name).suffix.lower() in IMAGE_EXT:
                    key = _split_of(Path(m.name).parts)
                    if key:
                        yield (*key, t.extractfile(m).read())


def read_image_folder(path: Path) -> Images:
    found: dict[str, dict[str, list]] = {}
    for split, cls, name, data in _files(path):
        found.setdefault(split, {}).setdefault(cls, []).append((name, data))
    if "train" not in found:
        raise ConfigError(f"data.path = {path}: no train/<class>/<image> files (expected ROOT/train and ROOT/test or ROOT/val)")
    eval_split = "test" if "test" in found else "val" if "val" in found else None
    if eval_split is None:
        raise ConfigError(f"data.path = {path}: no test/ (or val/) split")
    classes = sorted(found["train"])

    def stack(split):
        xs, ys = [], []
        for cls, items in sorted(found[split].items()):
            if cls not in classes:
                raise ConfigError(f"data.path = {path}: class {cls!r} of {split}/ is not among train/'s classes")
            for _, data in sorted(items):
                xs.append(_decode(data))
                ys.append(classes.index(cls))
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
        return x, torch.tensor(ys, dtype=torch.int64)

    tx, ty = stack("train")
    vx, vy = stack(eval_split)
    return Images(classes, tx, ty, vx, vy, "test" if eval_split == "test" else "validation")


def read_cifar10_binary(path: Path) -> Images:
    root = path / "cifar-10-batches-bin"
    if not root.is_dir():
        raise ConfigError(f"data.path = {path}: no cifar-10-batches-bin/ (run `resnet data fetch cifar10` first)")

    def read(names):
        raw = np.concatenate([np.fromfile(root / n, np.uint8).reshape(-1, 3073) for n in names])
        return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))

    tx, ty = read([f"data_batch_{i}.bin" for i in range(1, 6)])
    vx, vy = read(["test_batch.bin"])
    classes = (root / "batches.meta.txt").read_text().split() if (root / "batches.meta.txt").exists() else [str(i) for i in range(10)]
    return Images(classes, tx, ty, vx, vy)


def load_images(rec: Recipe) -> Images:
    """Decodes the data once and caches the tensors under data.cache_dir/reference/."""
    path = Path(rec.data_path)
    if not path.exists():
        raise ConfigError(f"data.path = {path}: no such file or folder")
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{rec.dataset}".encode()).hexdigest()[:16]
    cache = Path(rec.cache_dir) / "reference" / f"{path.name}-{key}.pt"
    if cache.exists():
        return Images(**torch.load(cache))
    t = time.perf_counter()
    images = read_image_folder(path) if rec.dataset == "image_folder" else read_cifar10_binary(path)
    print(f"reference: decoded {len(images.train_y) + len(images.test_y)} images of {path} in "
          f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    torch.save(images.__dict__, tmp)
    os.replace(tmp, cache)
    return images


class TrainBatches:
    """Mean-subtracted, augmented training batches (see the module doc for the rules)."""

    def __init__(self, images: Images, mean: torch.Tensor, batch: int, augment: bool, gen: torch.Generator):
        self.x, self.y, self.mean = images.train_x, images.train_y, mean
        self.batch, self.augment, self.gen = batch, augment, gen
        self.queue = torch.empty(0, dtype=torch.int64)

    def next(self):
        while len(self.queue) < self.batch:
            self.queue = torch.cat([self.queue, torch.randperm(len(self.y), generator=self.gen)])
        idx, self.queue = self.queue[: self.batch], self.queue[self.batch:]
        x = self.x[idx].float().div(255.0) - self.mean
        if self.augment:
            x = self.crop_and_flip(x)
        return x, self.y[idx]

    def crop_and_flip(self, x):
        b, _, h, w = x.shape
        padded = F.pad(x, (PAD, PAD, PAD, PAD))
        oy = torch.randint(0, 2 * PAD + 1, (b,), generator=self.gen).tolist()
        ox = torch.randint(0, 2 * PAD + 1, (b,), generator=self.gen).tolist()
        flip = (torch.rand(b, generator=self.gen) < 0.5).tolist()
        out = torch.empty_like(x)
        for i in range(b):
            crop = padded[i, :, oy[i]: oy[i] + h, ox[i]: ox[i] + w]
            out[i] = crop.flip(2) if flip[i] else crop
        return out


# ----------------------------------------------------------------------------------------------
# Training


def lr_at(rec: Recipe, it: int, warming: bool) -> float:
    """The learning rate of 0-based iteration `it`."""
    if warming:
        return rec.warmup.lr
    return rec.lr * rec.gamma ** sum(1 for m in rec.milestones if m <= it)


@torch.inference_mode()
def evaluate(model, images: Images, mean, batch, layout):
    model.eval()
    loss_sum, hits, n = 0.0, 0, len(images.test_y)
    for s in range(0, n, batch):
        x = (images.test_x[s: s + batch].float().div(255.0) - mean).contiguous(memory_format=layout)
        y = images.test_y[s: s + batch]
        out = model(x)
        loss_sum += F.cross_entropy(out, y, reduction="sum").item()
        hits += (out.argmax(1) == y).sum().item()
    model.train()
    return loss_sum / n, 100.0 * (n - hits) / n


def fmt(v) -> str:
    """A float as Rust's `{}` writes it would parse back the same (shortest round trip)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return repr(v)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(d: dict, prefix: str = "") -> str:
    """A nested dict of scalars, lists and tables as TOML (what tomllib gave, written back)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + ("\n" if lines else "")
    for k, v in d.items():
        if isinstance(v, dict):
            name = f"{prefix}{k}"
            text += f"\n[{name}]\n" + to_toml(v, name + ".")
    return text


def resolved_config(rec: Recipe, world_size: int = 1) -> str:
    """The config as run (flags applied), in our schema so `resnet` tools read it."""
    raw = json.loads(json.dumps(rec.raw))
    raw["name"] = rec.name
    raw.setdefault("data", {})["path"] = rec.data_path
    sch = raw.setdefault("schedule", {})
    sch["iterations"], sch["milestones"] = rec.iterations, rec.milestones
    run = raw.setdefault("run", {})
    run["seed"], run["out_dir"], run["threads"] = rec.seed, str(rec.out()), rec.threads
    if world_size > 1:
        run["world_size"] = world_size
    return "# Resolved config of a run of scripts/reference/train.py (the PyTorch reference).\n" + to_toml(raw)


def machine() -> str:
    """The CPU model (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def prepare_out(out: Path, force: bool):
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"{out} already holds files; pass --force to replace the run there, or --out DIR")
        for name in ("curves.csv", "summary.csv", "config.toml", "trainer.toml"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def write_atomic(path: Path, text: str):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class Replica:
    """This process's place in a torchrun job: rank 0 of 1 when WORLD_SIZE is unset or 1."""
    rank: int = 0
    world: int = 1

    @staticmethod
    def join(rec: Recipe) -> "Replica":
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError:
            raise ConfigError(f"WORLD_SIZE = {os.environ['WORLD_SIZE']!r}: not a number")
        if world <= 1:
            return Replica()
        if rec.batch_size % world:
            raise ConfigError(f"optimizer.batch_size = {rec.batch_size} does not divide by WORLD_SIZE = {world}")
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=300))
        return Replica(dist.get_rank(), world)

    @property
    def writes(self) -> bool:
        """Rank 0 alone evaluates and writes the run folder."""
        return self.rank == 0

    def part(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of the global batch."""
        n = len(t) // self.world
        return t[self.rank * n: (self.rank + 1) * n]

    def wrap(self, model: nn.Module) -> nn.Module:
        return model if self.world == 1 else DistributedDataParallel(model, broadcast_buffers=True)

    def sums(self, *values: float) -> list:
        """The values summed over the ranks (the curves' training counts)."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def leave(self):
        if self.world > 1:
            dist.destroy_process_group()


def trainer_toml(rec: Recipe, rep: Replica) -> str:
    return (
        f'impl = "{IMPL}"\nscript = "scripts/reference/train.py"\ntorch = "{torch.__version__}"\n'
        f'python = "{platform.python_version()}"\nthreads = {torch.get_num_threads()}\n'
        f'memory_format = "{rec.memory_format}"\nworld_size = {rep.world}\n'
        f'machine = {json.dumps(machine())}\ncpus = {os.cpu_count()}\n'
    )


class Counts:
    """Training loss and errors since the last curves row (and since the last warm-up check)."""

    def __init__(self):
        self.loss_sum, self.errors, self.seen, self.steps = 0.0, 0, 0, 0
        self.warm_errors, self.warm_seen, self.images = 0, 0, 0

    def add(self, loss: float, wrong: int, n: int, world: int):
        self.loss_sum, self.errors, self.seen, self.steps = (
            self.loss_sum + loss, self.errors + wrong, self.seen + n, self.steps + 1)
        self.warm_errors, self.warm_seen, self.images = self.warm_errors + wrong, self.warm_seen + n, self.images + n * world

    def take_warm(self, rep: Replica) -> float:
        """The training error since the last check, over all ranks."""
        e, n = rep.sums(self.warm_errors, self.warm_seen)
        self.warm_errors, self.warm_seen = 0, 0
        return e / max(n, 1)

    def take_row(self, rep: Replica):
        """(mean loss, training error %) since the last row, over all ranks."""
        loss_sum, errors, seen, steps = rep.sums(self.loss_sum, self.errors, self.seen, self.steps)
        self.loss_sum, self.errors, self.seen, self.steps = 0.0, 0, 0, 0
        return loss_sum / max(steps, 1), 100.0 * errors / max(seen, 1)


def train(rec: Recipe, force: bool = False, progress: bool = True) -> dict:
    """Trains `rec` into its run folder; returns the summary fields (rank 0's, under torchrun)."""
    out = rec.out()
    images = load_images(rec)  # validate (data readable) before touching the run folder
    if len(images.classes) != rec.classes:
        raise ConfigError(f"model.classes = {rec.classes} but the data has {len(images.classes)} classes")
    rep = Replica.join(rec)
    progress = progress and rep.writes
    if rep.writes:
        prepare_out(out, force)
    if rec.threads > 0:
        torch.set_num_threads(rec.threads)
    torch.manual_seed(rec.seed)
    layout = torch.channels_last if rec.memory_format == "nhwc" else torch.contiguous_format
    model = ResNetCifar(rec.depth, rec.classes, rec.kind == "residual").to(memory_format=layout)
    params = sum(p.numel() for p in model.parameters())
    net = rep.wrap(model)
    opt = torch.optim.SGD(model.parameters(), lr=rec.lr, momentum=rec.momentum,
                          weight_decay=rec.weight_decay, nesterov=rec.nesterov)
    mean = images.train_x.float().div(255.0).mean(0)
    gen = torch.Generator().manual_seed(rec.seed)
    batches = TrainBatches(images, mean, rec.batch_size, rec.augment == "cifar", gen)
    n_train = len(images.train_y)

    curves = None
    if rep.writes:
        write_atomic(out / "config.toml", resolved_config(rec, rep.world))
        write_atomic(out / "trainer.toml", trainer_toml(rec, rep))
        curves = open(out / "curves.csv", "w")
        curves.write(CURVES_HEADER + "\n")
        curves.flush()
    if progress:
        ranks = f", {rep.world} ranks (DDP, gloo)" if rep.world > 1 else ""
        print(f"{rec.name}: {rec.model_name()} ({params} parameters), PyTorch {torch.__version__} on the CPU "
              f"({torch.get_num_threads()} threads, {rec.memory_format}{ranks}), seed {rec.seed}, "
              f"{rec.iterations} iterations into {out}", file=sys.stderr)

    warming = rec.warmup is not None
    warmup_end = None
    counts = Counts()
    best, best_it, last_test, last_train = math.nan, 0, math.nan, math.nan
    start = time.perf_counter()
    t_row = start
    model.train()
    for it in range(rec.iterations):
        lr = lr_at(rec, it, warming)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batches.next()
        x, y = rep.part(x).contiguous(memory_format=layout), rep.part(y)
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = loss.item()
        if not math.isfinite(lv):
            raise RuntimeError(f"the training loss became {lv} at iteration {it + 1} (lr {lr})")
        counts.add(lv, (logits.argmax(1) != y).sum().item(), len(y), rep.world)
        done = it + 1
        if warming and (done % rec.warmup.check_every == 0 or done >= rec.warmup.max_iterations):
            err = counts.take_warm(rep)
            if err < rec.warmup.until_train_error or done >= rec.warmup.max_iterations:
                warming, warmup_end = False, done
                if progress:
                    print(f"  warm-up ended at iteration {done} (training error {100 * err:.1f}%)", file=sys.stderr)
        if done % rec.log_every == 0 or done == rec.iterations:
            secs = time.perf_counter() - t_row
            mean_loss, last_train = counts.take_row(rep)
            row = [str(done), fmt(done * rec.batch_size / n_train), fmt(lr), fmt(mean_loss),
                   fmt(last_train), "", "", f"{counts.images / max(secs, 1e-9):.1f}", ""]
            counts.images = 0
            if rep.writes and (done % rec.eval_every == 0 or done == rec.iterations):
                test_loss, last_test = evaluate(model, images, mean, rec.eval_batch_size, layout)
                row[5], row[6] = fmt(test_loss), fmt(last_test)
                if math.isnan(best) or last_test < best:
                    best, best_it = last_test, done
            row[8] = f"{time.perf_counter() - start:.3f}"
            if curves is not None:
                curves.write(",".join(row) + "\n")
                curves.flush()
            if progress:
                test = f"  test err {last_test:.2f}%" if row[6] else ""
                print(f"  it {done}/{rec.iterations}  lr {lr:g}  loss {mean_loss:.4f}  train err "
                      f"{last_train:.2f}%{test}  {row[7]} img/s", file=sys.stderr)
            t_row = time.perf_counter()
    wall = time.perf_counter() - start
    rep.leave()
    summary = {
        "name": rec.name, "model": rec.model_name(), "family": "cifar", "kind": rec.kind, "shortcut": "A",
        "depth": rec.depth, "params": params, "iterations": rec.iterations, "final_train_error": last_train,
        "final_test_error": last_test, "best_test_error": best, "best_iteration": best_it,
        "eval_split": images.eval_split, "warmup_end": "" if warmup_end is None else warmup_end,
        "wall_s": f"{wall:.3f}",
    }
    if curves is not None:
        curves.close()
        values = [fmt(v) if isinstance(v, float) else str(v) for v in summary.values()]
        write_atomic(out / "summary.csv", SUMMARY_HEADER + "\n" + ",".join(values) + "\n")
    if progress:
        print(f"{rec.name}: final test error {last_test:.2f}% (best {best:.2f}% at {best_it}), {wall:.0f} s; "
              f"{out}/summary.csv", file=sys.stderr)
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="scripts/reference/train.py",
        description="Trains the §4.2 recipe of a `resnet` TOML config with plain PyTorch into a run folder "
                    "(curves.csv, summary.csv, config.toml, trainer.toml) that `resnet report` reads.",
    )
    p.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", required=True, type=Path, help="our TOML config (e.g. configs/cifar10_png_3k_resnet20.toml)")
    p.add_argument("--seed", type=int, help="overrides run.seed")
    p.add_argument("--data", help="overrides data.path")
    p.add_argument("--out", help="run folder (overrides run.out_dir; default runs/<name>)")
    p.add_argument("--iterations", type=int, help="overrides schedule.iterations (drops later milestones)")
    p.add_argument("--threads", type=int, help="overrides run.threads (0: torch's default)")
    p.add_argument("--force", action="store_true", help="replace the run in a folder that holds one")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    try:
        rec = load_recipe(a.config, a)
        train(rec, force=a.force, progress=not a.quiet)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
