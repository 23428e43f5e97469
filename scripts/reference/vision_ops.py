#!/usr/bin/env python3
"""torchvision's own region operations on inputs written by tests/it/vision_ops.rs: the yardstick
for our RoIAlign (src/net/roi_align.rs) and NMS (src/net/nms.rs), built from tch ops.

    vision_ops.py IN.safetensors OUT.safetensors

IN holds `features` [N, C, H, W], `rois` [K, 5], `grad_w` (the weights of the loss whose
gradient is compared), `configs` [M, 4] (output size, spatial scale, sampling ratio, aligned) and
`boxes` [B, 4], `scores` [B], `idxs` [B] for NMS, `coding_ref`, `coding_tgt`, `coding_deltas`
[N, 4] for box coding. OUT gets, per config m, `align_m` (the output) and `grad_m` (d
sum(align_m * grad_w[..]) / d features), `nms_50`, `nms_70`, `batched_50`, and BoxCoder's
`encode_1`/`decode_1` (weights 1) and `encode_w`/`decode_w` (10, 10, 5, 5).
"""
import sys

import torch
from safetensors.torch import load_file, save_file
import math

from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import batched_nms, nms, roi_align


def main(src, dst):
    t = load_file(src)
    out = {}
    for m, (size, scale, ratio, aligned) in enumerate(t["configs"].tolist()):
        size = int(size)
        f = t["features"].clone().requires_grad_(True)
        a = roi_align(f, t["rois"], (size, size), spatial_scale=scale,
                      sampling_ratio=int(ratio), aligned=bool(aligned))
        w = t["grad_w"][:, :, :size, :size]
        (a * w).sum().backward()
        out[f"align_{m}"] = a.detach().contiguous()
        out[f"grad_{m}"] = f.grad.contiguous()
    out["nms_50"] = nms(t["boxes"], t["scores"], 0.5)
    out["nms_70"] = nms(t["boxes"], t["scores"], 0.7)
    out["batched_50"] = batched_nms(t["boxes"], t["scores"], t["idxs"], 0.5)
    for name, w in [("1", (1.0, 1.0, 1.0, 1.0)), ("w", (10.0, 10.0, 5.0, 5.0))]:
        coder = BoxCoder(w, bbox_xform_clip=math.log(1000.0 / 16))
        out[f"encode_{name}"] = coder.encode_single(t["coding_tgt"], t["coding_ref"])
        out[f"decode_{name}"] = coder.decode_single(t["coding_deltas"], t["coding_ref"])
    save_file(out, dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
