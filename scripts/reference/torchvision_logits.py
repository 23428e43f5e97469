#!/usr/bin/env python3
"""torchvision's side of the weight interchange with `resnet` (Table 1's ResNet-18...152).

Two jobs, both with ``torchvision.models.resnet*`` itself, nothing of ours:

* ``--weights W --input I --out O``: builds torchvision's model (``--arch``, ``--classes``),
  loads the plain state dict ``W`` (safetensors, e.g. written by ``resnet export``) with
  ``load_state_dict(..., strict=True)``, runs it in eval mode on the tensor ``input`` of the
  safetensors file ``I`` and writes its logits as ``logits`` to ``O``.
* ``--save-init W``: writes a freshly initialised torchvision model's state dict (``--seed``) to
  ``W`` with ``safetensors.torch.save_file``, as a user would save torchvision's weights, so that
  ``resnet eval --checkpoint W --config ...`` can be checked on a file of torchvision's making.

Used by tests/it/torchvision.rs; run it from the project's .venv (scripts/setup-bench.sh installs
torchvision 0.26.0 beside torch 2.11.0).
"""
import argparse

import torch
import torchvision
from safetensors.torch import load_file, save_file


def model(arch: str, classes: int) -> torch.nn.Module:
    return getattr(torchvision.models, arch)(weights=None, num_classes=classes).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--weights", required=True)
    p.add_argument("--input")
    p.add_argument("--out")
    p.add_argument("--save-init", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.save_init:
        torch.manual_seed(a.seed)
        m = model(a.arch, a.classes)
        # Non-trivial BN statistics, so that eval mode's use of them is checked too.
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.1, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, a.weights)
        return
    m = model(a.arch, a.classes)
    m.load_state_dict(load_file(a.weights), strict=True)
    x = load_file(a.input)["input"]
    with torch.no_grad():
        logits = m(x)
    save_file({"logits": logits.contiguous()}, a.out)


if __name__ == "__main__":
    main()
