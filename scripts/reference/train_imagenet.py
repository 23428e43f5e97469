#!/usr/bin/env python3
"""An independent PyTorch trainer for the ImageNet recipe of He et al. 2015, §3.4 (Tables 2-3, Figure 4).

The yardstick for `resnet train` on ``model.family = "imagenet"``, the sibling of train.py (the
CIFAR recipe of §4.2; this file reuses its config reader helpers, its record writers and its
training counters, nothing of our Rust code). It reads the same TOML config and the same image
folder, trains with torchvision's networks, transforms and ``DataLoader``, and writes a run folder
that `resnet report` reads beside ours (``impl = "pytorch-reference"`` in ``trainer.toml``).
Run it as ``scripts/reference/train_imagenet.py --config FILE [--seed N] [--data PATH] [--out DIR]``.
Needs torch, torchvision, numpy and pillow.

The recipe, as §3.3/§3.4 state it and as our config spells it:

* Network: torchvision's ``resnet18/34/50/101/152`` (``weights=None``, ``num_classes =
  model.classes``): that is option B (projection shortcuts, a 1x1 conv and BN, where the
  dimensions grow; identity elsewhere), and its parameter names are the ones `resnet export`
  writes. Option A replaces each projection by the parameter-free zero-padding shortcut (the input
  subsampled by the stride, the extra channels zero, half before and half after); option C adds a
  projection to every block; ``model.kind = "plain"`` drops every shortcut (Figure 4, left). For
  the bottleneck nets ``model.stride_in_1x1 = true`` (the default, the paper's and
  fb.resnet.torch's) moves the stride of each first block from the 3x3 conv to the first 1x1 conv.
  Initialization as torchvision's: He normal (fan-out) convolutions, BN weight 1 and bias 0,
  PyTorch's default for the classifier; the same for the projections option C adds.
* Statistics: the per-pixel mean image and the RGB covariance are those of the training images at
  the test view (shorter side ``test_resize``, centre ``crop``), every training image, pixels
  scaled to [0, 1]. The colour augmentation of AlexNet [21] uses the eigenvectors p_i and
  eigenvalues l_i of that covariance: every training image gets ``[p1 p2 p3][a1 l1, a2 l2, a3
  l3]^T`` added to all its pixels, a_i ~ N(0, 0.1) drawn per image.
* Training view: the image resized (bilinear, antialiased) with its shorter side drawn uniformly
  in [``scale_min``, ``scale_max``] (256..480 in the paper), a random ``crop`` x ``crop`` crop
  (224), mirrored with probability 1/2, scaled to [0, 1], the mean image subtracted, the colour
  shift added. Test view: shorter side ``test_resize`` (256), the centre ``crop``, the mean
  subtracted. 10-crop testing (Table 3): torchvision's ``TenCrop`` of the test-resized image (4
  corners and the centre, and the same of the mirror image), softmax averaged over the ten.
* Batches: ``optimizer.batch_size`` images drawn without replacement from an endless series of
  epochs, each a fresh ``torch.randperm`` seeded with ``run.seed``; a batch that runs past an
  epoch's end continues into the next. Decoding and augmentation run in a ``DataLoader`` with
  ``data.workers`` worker processes (0: one per CPU, as our decoding threads), each image's random
  draws from torch's generator of its worker (seeded from ``run.seed`` by the DataLoader).
* SGD as §3.4: momentum, weight decay on every parameter, ``optimizer.lr`` divided by ``gamma`` at
  ``schedule.milestones``; the paper's "divide by 10 when the error plateaus" is not implemented
  here (``schedule.mode = "milestones"`` only).
* Records as train.py's: ``curves.csv`` every ``run.log_every`` iterations (training loss and
  error since the last row, on the augmented batches in training mode) with the 1-crop
  validation loss and error every ``run.eval_every`` iterations and at the end; ``summary.csv``;
  ``config.toml``; ``trainer.toml``; then the 10-crop evaluation of the final weights appended to
  ``eval.csv`` (our format, ``checkpoint`` naming ``last.pt``, torchvision's state dict).

Relative paths follow `resnet train`'s rule (src/config.rs). A ``.tar.gz`` data path is extracted
once under ``data.cache_dir/reference/``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import train as base  # scripts/reference/train.py: config helpers, record formats, counters
from train import ConfigError, _get, fmt, write_atomic

try:
    import torchvision
    from torchvision import transforms as T
    from torchvision.transforms import functional as TF
    from torchvision.models import resnet as tv
except ImportError:  # pragma: no cover
    raise SystemExit("reference trainer: needs torchvision (scripts/setup-reference.sh)")

EVAL_HEADER = "checkpoint,iteration,split,protocol,crops,images,test_loss,top1_error,top5_error"
DEPTHS = {18: "resnet18", 34: "resnet34", 50: "resnet50", 101: "resnet101", 152: "resnet152"}


# ----------------------------------------------------------------------------------------------
# The config


@dataclass
class Recipe(base.Recipe):
    shortcut: str = "B"
    stride_in_1x1: bool = True
    workers: int = 0
    scale_min: int = 256
    scale_max: int = 480
    crop: int = 224
    test_resize: int = 256

    def model_name(self) -> str:
        if self.kind == "plain":
            return f"plain{self.depth}"
        return f"resnet{self.depth}" + ("" if self.shortcut == "B" else f"-{self.shortcut}")


def load_recipe(path: Path, args) -> Recipe:
    """Reads our TOML config for an ImageNet net, applies the flags as `resnet train` does;
    every error names the file, the key and the value."""
    try:
        raw = base.tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"cannot read config file {path}")
    except base.tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})")
    f = str(path)
    m, d, o = raw.get("model", {}), raw.get("data", {}), raw.get("optimizer", {})
    s, r, t = raw.get("schedule", {}), raw.get("run", {}), raw.get("data", {}).get("imagenet", {})
    if m.get("family") != "imagenet":
        raise ConfigError(f"{f}: model.family = {m.get('family')!r}: this trainer implements the ImageNet nets "
                          "(scripts/reference/train.py trains the CIFAR ones)")
    rec = Recipe(name=raw.get("name") or path.stem, depth=_get(m, "depth", int, 0, f"{f}: model"), raw=raw)
    if rec.depth not in DEPTHS:
        raise ConfigError(f"{f}: model.depth = {rec.depth}: allowed are 18, 34, 50, 101, 152 (Table 1)")
    rec.kind = _get(m, "kind", str, "residual", f"{f}: model")
    if rec.kind not in ("residual", "plain"):
        raise ConfigError(f"{f}: model.kind = {rec.kind!r}: allowed are \"residual\" and \"plain\"")
    rec.shortcut = _get(m, "shortcut", str, "B", f"{f}: model")
    if rec.shortcut not in ("A", "B", "C"):
        raise ConfigError(f"{f}: model.shortcut = {rec.shortcut!r}: allowed are \"A\", \"B\" and \"C\"")
    rec.classes = _get(m, "classes", int, 1000, f"{f}: model")
    rec.stride_in_1x1 = _get(m, "stride_in_1x1", bool, True, f"{f}: model")
    rec.dataset = _get(d, "dataset", str, "image_folder", f"{f}: data")
    if rec.dataset != "image_folder":
        raise ConfigError(f"{f}: data.dataset = {rec.dataset!r}: the ImageNet reference reads \"image_folder\" only")
    here = path.resolve().parent
    rec.data_path = _get(d, "path", str, "data/imagenet", f"{f}: data")
    if "path" in d:
        rec.data_path = str(here / rec.data_path)
    rec.augment = _get(d, "augment", str, "imagenet", f"{f}: data")
    if rec.augment not in ("imagenet", "none"):
        raise ConfigError(f"{f}: data.augment = {rec.augment!r}: allowed here are \"imagenet\" and \"none\"")
    if _get(d, "validation", int, 0, f"{f}: data") != 0:
        raise ConfigError(f"{f}: data.validation = {d['validation']}: the reference evaluates on val/ (or test/) only")
    rec.cache_dir = _get(d, "cache_dir", str, ".cache", f"{f}: data")
    if "cache_dir" in d:
        rec.cache_dir = str(here / rec.cache_dir)
    rec.workers = _get(d, "workers", int, 0, f"{f}: data")
    where = f"{f}: data.imagenet"
    rec.scale_min = _get(t, "scale_min", int, 256, where)
    rec.scale_max = _get(t, "scale_max", int, 480, where)
    rec.crop = _get(t, "crop", int, 224, where)
    rec.test_resize = _get(t, "test_resize", int, 256, where)
    if not (0 < rec.crop <= rec.scale_min <= rec.scale_max and rec.crop <= rec.test_resize):
        raise ConfigError(f"{where}: crop {rec.crop}, scale_min {rec.scale_min}, scale_max {rec.scale_max}, "
                          f"test_resize {rec.test_resize}: need 0 < crop <= scale_min <= scale_max and crop <= test_resize")
    rec.lr = _get(o, "lr", float, 0.1, f"{f}: optimizer")
    rec.momentum = _get(o, "momentum", float, 0.9, f"{f}: optimizer")
    rec.weight_decay = _get(o, "weight_decay", float, 1e-4, f"{f}: optimizer")
    rec.batch_size = _get(o, "batch_size", int, 256, f"{f}: optimizer")
    rec.nesterov = _get(o, "nesterov", bool, False, f"{f}: optimizer")
    if s.get("mode", "milestones") != "milestones":
        raise ConfigError(f"{f}: schedule.mode = {s['mode']!r}: the reference implements \"milestones\" only")
    if "warmup" in s:
        raise ConfigError(f"{f}: schedule.warmup: the ImageNet reference has no warm-up (§3.4 uses none)")
    rec.milestones = list(_get(s, "milestones", list, [], f"{f}: schedule"))
    rec.gamma = _get(s, "gamma", float, 0.1, f"{f}: schedule")
    rec.iterations = _get(s, "iterations", int, 600_000, f"{f}: schedule")
    rec.seed = _get(r, "seed", int, 0, f"{f}: run")
    rec.out_dir = _get(r, "out_dir", str, "", f"{f}: run")
    rec.log_every = _get(r, "log_every", int, 100, f"{f}: run")
    rec.eval_every = _get(r, "eval_every", int, 1000, f"{f}: run")
    rec.threads = _get(r, "threads", int, 0, f"{f}: run")
    rec.memory_format = _get(r, "memory_format", str, "nchw", f"{f}: run")
    rec.eval_batch_size = _get(r, "eval_batch_size", int, 100, f"{f}: run")
    if r.get("precision", "fp32") != "fp32":
        raise ConfigError(f"{f}: run.precision = {r['precision']!r}: the reference trains in fp32 only")
    if r.get("device", "cpu") not in ("cpu", "auto"):
        raise ConfigError(f"{f}: run.device = {r['device']!r}: the ImageNet reference trains on the CPU only")
    apply_flags(rec, args, f)
    return rec


def apply_flags(rec: Recipe, args, f: str):
    if args.iterations is not None:
        rec.iterations = args.iterations
        rec.milestones = [x for x in rec.milestones if x <= args.iterations]
    for flag, attr in (("seed", "seed"), ("data", "data_path"), ("out", "out_dir"), ("threads", "threads"),
                       ("workers", "workers")):
        if getattr(args, flag) is not None:
            setattr(rec, attr, getattr(args, flag))
    for key, v in (("schedule.iterations", rec.iterations), ("run.log_every", rec.log_every),
                   ("run.eval_every", rec.eval_every), ("optimizer.batch_size", rec.batch_size),
                   ("run.eval_batch_size", rec.eval_batch_size)):
        if v < 1:
            raise ConfigError(f"{f}: {key} = {v}: must be at least 1")
    if rec.workers < 0:
        raise ConfigError(f"{f}: data.workers = {rec.workers}: must be 0 (one per CPU) or more")
    if rec.memory_format not in ("nchw", "nhwc"):
        raise ConfigError(f"{f}: run.memory_format = {rec.memory_format!r}: allowed are \"nchw\" and \"nhwc\"")


# ----------------------------------------------------------------------------------------------
# The networks: torchvision's, with the shortcut options of §3.3


class ZeroPadShortcut(nn.Module):
    """Option A: the input subsampled by `stride`, `before` zero channels ahead and `after` behind."""

    def __init__(self, stride: int, before: int, after: int):
        super().__init__()
        self.stride, self.before, self.after = stride, before, after

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


class PlainBasicBlock(tv.BasicBlock):
    """torchvision's basic block without the shortcut (the plain nets of Figure 4)."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


class PlainBottleneck(tv.Bottleneck):
    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)))


def projection(cin: int, cout: int, stride: int) -> nn.Sequential:
    p = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
    nn.init.kaiming_normal_(p[0].weight, mode="fan_out", nonlinearity="relu")
    return p


def build_model(rec: Recipe) -> nn.Module:
    """torchvision's ResNet of `model.depth`, turned into option A/C or the plain net in place."""
    net = getattr(torchvision.models, DEPTHS[rec.depth])(weights=None, num_classes=rec.classes)
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            bottleneck = isinstance(block, tv.Bottleneck)
            first = block.conv1
            cin = first.in_channels
            cout = block.conv3.out_channels if bottleneck else block.conv2.out_channels
            stride = block.stride
            if bottleneck and rec.stride_in_1x1 and stride > 1:
                block.conv1.stride, block.conv2.stride = (stride, stride), (1, 1)
            if rec.kind == "plain":
                block.__class__ = PlainBottleneck if bottleneck else PlainBasicBlock
                block.downsample = None
            elif rec.shortcut == "A" and block.downsample is not None:
                extra = cout - cin
                block.downsample = ZeroPadShortcut(stride, extra // 2, extra - extra // 2)
            elif rec.shortcut == "C" and block.downsample is None:
                block.downsample = projection(cin, cout, stride)
    return net


# ----------------------------------------------------------------------------------------------
# Data


def data_root(rec: Recipe) -> Path:
    """The folder holding train/ and val/ (or test/): data.path itself, or its .tar.gz extracted
    once under data.cache_dir/reference/."""
    path = Path(rec.data_path)
    if not path.exists():
        raise ConfigError(f"data.path = {path}: no such file or folder")
    if path.is_file():
        st = path.stat()
        key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
        dest = Path(rec.cache_dir) / "reference" / f"{path.name.split('.')[0]}-{key}"
        if not (dest / ".done").exists():
            tmp = dest.with_name(dest.name + ".tmp")
            for stale in (tmp, dest):  # an extraction cut short earlier
                shutil.rmtree(stale, ignore_errors=True)
            with tarfile.open(path, "r:*") as t:
                t.extractall(tmp, filter="data")
            (tmp / ".done").write_text("")
            os.replace(tmp, dest)
        path = dest
    for root in [path] + sorted(p for p in path.rglob("*") if p.is_dir()):
        if (root / "train").is_dir() and ((root / "val").is_dir() or (root / "test").is_dir()):
            return root
    raise ConfigError(f"data.path = {rec.data_path}: no train/<class>/<image> with val/ or test/ beside it")


class RandomShorterSide:
    """Scale augmentation (§3.4): the shorter side resized to a side drawn in [lo, hi]."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def __call__(self, img):
        side = int(torch.randint(self.lo, self.hi + 1, ()).item())
        return TF.resize(img, side, T.InterpolationMode.BILINEAR, antialias=True)


class SubtractMean:
    def __init__(self, mean: torch.Tensor):
        self.mean = mean

    def __call__(self, x):
        return x - self.mean


class Lighting:
    """AlexNet's colour augmentation: eigvec @ (alpha * eigval) added to every pixel."""

    def __init__(self, std: float, eigval: torch.Tensor, eigvec: torch.Tensor):
        self.std, self.eigval, self.eigvec = std, eigval, eigvec

    def __call__(self, x):
        alpha = torch.randn(3) * self.std
        return x + (self.eigvec @ (alpha * self.eigval)).view(3, 1, 1)


class TenViews:
    """The ten crops of an image as one [10, 3, crop, crop] tensor, mean subtracted."""

    def __init__(self, crop: int, mean: torch.Tensor):
        self.ten, self.mean = T.TenCrop(crop), mean

    def __call__(self, img):
        return torch.stack([TF.to_tensor(c) - self.mean for c in self.ten(img)])


# AlexNet's std of the colour coefficients (the paper's [21]).
PCA_STD = 0.1


def test_view(rec: Recipe):
    return [T.Resize(rec.test_resize, T.InterpolationMode.BILINEAR, antialias=True), T.CenterCrop(rec.crop)]


def statistics(root: Path, rec: Recipe, workers: int):
    """Mean image [3, crop, crop] and RGB covariance eigen-pairs over every training image at the
    test view."""
    ds = torchvision.datasets.ImageFolder(root / "train", T.Compose(test_view(rec) + [T.ToTensor()]))
    total = torch.zeros(3, rec.crop, rec.crop, dtype=torch.float64)
    outer = torch.zeros(3, 3, dtype=torch.float64)
    rgb_sum = torch.zeros(3, dtype=torch.float64)
    n = 0
    for x, _ in torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers):
        x = x.double()
        total += x.sum(0)
        px = x.permute(1, 0, 2, 3).reshape(3, -1)
        outer += px @ px.T
        rgb_sum += px.sum(1)
        n += len(x)
    mean = (total / n).float()
    m = n * rec.crop * rec.crop
    cov = (outer - torch.outer(rgb_sum, rgb_sum) / m) / (m - 1)
    eigval, eigvec = torch.linalg.eigh(cov)
    return mean, eigval.clamp_min(0).float(), eigvec.float()


class EpochBatches(torch.utils.data.Sampler):
    """Endless batches: a fresh seeded permutation every epoch, batches crossing epoch ends."""

    def __init__(self, n: int, batch: int, seed: int):
        self.n, self.batch, self.seed = n, batch, seed

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed)
        queue = torch.empty(0, dtype=torch.int64)
        while True:
            while len(queue) < self.batch:
                queue = torch.cat([queue, torch.randperm(self.n, generator=gen)])
            idx, queue = queue[: self.batch], queue[self.batch:]
            yield idx.tolist()


@dataclass
class Data:
    classes: list
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    ten: torch.utils.data.Dataset
    eval_split: str


def load_data(rec: Recipe, workers: int) -> Data:
    root = data_root(rec)
    split = "val" if (root / "val").is_dir() else "test"
    t0 = time.perf_counter()
    mean, eigval, eigvec = statistics(root, rec, workers)
    if rec.augment == "imagenet":
        train_tf = [RandomShorterSide(rec.scale_min, rec.scale_max), T.RandomCrop(rec.crop),
                    T.RandomHorizontalFlip(), T.ToTensor(), SubtractMean(mean), Lighting(PCA_STD, eigval, eigvec)]
    else:
        train_tf = test_view(rec) + [T.ToTensor(), SubtractMean(mean)]
    train = torchvision.datasets.ImageFolder(root / "train", T.Compose(train_tf))
    val = torchvision.datasets.ImageFolder(root / split, T.Compose(test_view(rec) + [T.ToTensor(), SubtractMean(mean)]))
    ten = torchvision.datasets.ImageFolder(
        root / split, T.Compose([T.Resize(rec.test_resize, T.InterpolationMode.BILINEAR, antialias=True),
                                 TenViews(rec.crop, mean)]))
    if val.classes != train.classes:
        raise ConfigError(f"data.path = {rec.data_path}: {split}/ has classes {val.classes}, train/ has {train.classes}")
    print(f"reference: {len(train)} training / {len(val)} {split} images of {len(train.classes)} classes; "
          f"mean image and colour PCA in {time.perf_counter() - t0:.1f} s (eigenvalues {eigval.tolist()})",
          file=sys.stderr)
    return Data(train.classes, train, val, ten, "validation" if split == "val" else "test")


# ----------------------------------------------------------------------------------------------
# Training and testing


@torch.inference_mode()
def evaluate(model, ds, rec: Recipe, workers: int, layout, ten: bool = False):
    """(loss, top-1 %, top-5 %) over `ds`; with `ten`, of the softmax averaged over the crops."""
    model.eval()
    loss_sum, top1, top5, n = 0.0, 0, 0, 0
    for x, y in torch.utils.data.DataLoader(ds, batch_size=rec.eval_batch_size, num_workers=workers):
        if ten:
            b = len(y)
            probs = model(x.flatten(0, 1).contiguous(memory_format=layout)).softmax(-1).view(b, 10, -1).mean(1)
            logp = probs.log()
        else:
            logp = model(x.contiguous(memory_format=layout)).log_softmax(-1)
        loss_sum += F.nll_loss(logp, y, reduction="sum").item()
        k = min(5, logp.shape[1])
        hit = logp.topk(k, 1).indices == y[:, None]
        top1 += hit[:, 0].sum().item()
        top5 += hit.any(1).sum().item()
        n += len(y)
    model.train()
    return loss_sum / n, 100.0 * (n - top1) / n, 100.0 * (n - top5) / n


def trainer_toml(rec: Recipe, workers: int) -> str:
    return (
        f'impl = "{base.IMPL}"\nscript = "scripts/reference/train_imagenet.py"\ntorch = "{torch.__version__}"\n'
        f'torchvision = "{torchvision.__version__}"\npython = "{platform.python_version()}"\n'
        f'threads = {torch.get_num_threads()}\nloader_workers = {workers}\n'
        f'memory_format = "{rec.memory_format}"\nworld_size = 1\n'
        f'machine = {json.dumps(base.machine())}\ncpus = {os.cpu_count()}\n'
    )


def train(rec: Recipe, force: bool = False, progress: bool = True) -> dict:
    """Trains `rec` into its run folder, then tests it with 10 crops; returns the summary fields."""
    out = rec.out()
    workers = rec.workers or os.cpu_count() or 1
    if rec.threads > 0:
        torch.set_num_threads(rec.threads)
    data = load_data(rec, workers)  # validate (data readable) before touching the run folder
    if len(data.classes) != rec.classes:
        raise ConfigError(f"model.classes = {rec.classes} but the data has {len(data.classes)} classes")
    base.prepare_out(out, force)
    (out / "eval.csv").unlink(missing_ok=True)
    torch.manual_seed(rec.seed)
    layout = torch.channels_last if rec.memory_format == "nhwc" else torch.contiguous_format
    model = build_model(rec).to(memory_format=layout)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=rec.lr, momentum=rec.momentum,
                          weight_decay=rec.weight_decay, nesterov=rec.nesterov)
    loader = torch.utils.data.DataLoader(
        data.train, batch_sampler=EpochBatches(len(data.train), rec.batch_size, rec.seed), num_workers=workers,
        generator=torch.Generator().manual_seed(rec.seed), persistent_workers=workers > 0)
    batches = iter(loader)
    n_train = len(data.train)
    write_atomic(out / "config.toml", base.resolved_config(rec).replace("train.py", "train_imagenet.py", 1))
    write_atomic(out / "trainer.toml", trainer_toml(rec, workers))
    curves = open(out / "curves.csv", "w")
    curves.write(base.CURVES_HEADER + "\n")
    curves.flush()
    if progress:
        print(f"{rec.name}: {rec.model_name()} ({params} parameters), PyTorch {torch.__version__} on the CPU "
              f"({torch.get_num_threads()} threads, {workers} loader workers, {rec.memory_format}), seed {rec.seed}, "
              f"{rec.iterations} iterations into {out}", file=sys.stderr)
    rep, counts = base.Replica(), base.Counts()
    best, best_it, last_test, last_train = math.nan, 0, math.nan, math.nan
    start = time.perf_counter()
    t_row = start
    model.train()
    for it in range(rec.iterations):
        lr = base.lr_at(rec, it, False)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = next(batches)
        logits = model(x.contiguous(memory_format=layout))
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = loss.item()
        if not math.isfinite(lv):
            raise RuntimeError(f"the training loss became {lv} at iteration {it + 1} (lr {lr})")
        counts.add(lv, (logits.argmax(1) != y).sum().item(), len(y), 1)
        done = it + 1
        if done % rec.log_every == 0 or done == rec.iterations:
            secs = time.perf_counter() - t_row
            mean_loss, last_train = counts.take_row(rep)
            row = [str(done), fmt(done * rec.batch_size / n_train), fmt(lr), fmt(mean_loss),
                   fmt(last_train), "", "", f"{counts.images / max(secs, 1e-9):.1f}", ""]
            counts.images = 0
            if done % rec.eval_every == 0 or done == rec.iterations:
                test_loss, last_test, _ = evaluate(model, data.val, rec, workers, layout)
                row[5], row[6] = fmt(test_loss), fmt(last_test)
                if math.isnan(best) or last_test < best:
                    best, best_it = last_test, done
            row[8] = f"{time.perf_counter() - start:.3f}"
            curves.write(",".join(row) + "\n")
            curves.flush()
            if progress:
                test = f"  val err {last_test:.2f}%" if row[6] else ""
                print(f"  it {done}/{rec.iterations}  lr {lr:g}  loss {mean_loss:.4f}  train err "
                      f"{last_train:.2f}%{test}  {row[7]} img/s", file=sys.stderr, flush=True)
            t_row = time.perf_counter()
    wall = time.perf_counter() - start
    curves.close()
    del batches, loader
    summary = {
        "name": rec.name, "model": rec.model_name(), "family": "imagenet", "kind": rec.kind,
        "shortcut": rec.shortcut, "depth": rec.depth, "params": params, "iterations": rec.iterations,
        "final_train_error": last_train, "final_test_error": last_test, "best_test_error": best,
        "best_iteration": best_it, "eval_split": data.eval_split, "warmup_end": "", "wall_s": f"{wall:.3f}",
    }
    values = [fmt(v) if isinstance(v, float) else str(v) for v in summary.values()]
    write_atomic(out / "summary.csv", base.SUMMARY_HEADER + "\n" + ",".join(values) + "\n")
    torch.save(model.state_dict(), out / "last.pt")
    ten_loss, ten1, ten5 = evaluate(model, data.ten, rec, workers, layout, ten=True)
    row = [str(out / "last.pt"), str(rec.iterations), data.eval_split, "10-crop", "10", str(len(data.ten)),
           fmt(ten_loss), fmt(ten1), fmt(ten5)]
    write_atomic(out / "eval.csv", EVAL_HEADER + "\n" + ",".join(row) + "\n")
    if progress:
        print(f"{rec.name}: final 1-crop {data.eval_split} error {last_test:.2f}% (best {best:.2f}% at {best_it}), "
              f"10-crop top-1 {ten1:.2f}% top-5 {ten5:.2f}%, {wall:.0f} s of training; {out}/summary.csv",
              file=sys.stderr)
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="scripts/reference/train_imagenet.py",
        description="Trains the §3.4 recipe of a `resnet` TOML config (model.family = \"imagenet\") with "
                    "torchvision into a run folder (curves.csv, summary.csv, eval.csv, config.toml, "
                    "trainer.toml) that `resnet report` reads.",
    )
    p.add_argument("--config", required=True, type=Path, help="our TOML config (e.g. configs/imagewoof_resnet18_B.toml)")
    p.add_argument("--seed", type=int, help="overrides run.seed")
    p.add_argument("--data", help="overrides data.path")
    p.add_argument("--out", help="run folder (overrides run.out_dir; default runs/<name>)")
    p.add_argument("--iterations", type=int, help="overrides schedule.iterations (drops later milestones)")
    p.add_argument("--threads", type=int, help="overrides run.threads (0: torch's default)")
    p.add_argument("--workers", type=int, help="overrides data.workers (DataLoader worker processes; 0: one per CPU)")
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
