#!/usr/bin/env python3
"""COCO's official box evaluator on (ground-truth json, results json): the reference for
`resnet eval --detections` (src/eval/detection/coco.rs) and its speed benchmark.

Runs pycocotools' ``COCOeval`` (iouType ``bbox``; ``evaluate``, ``accumulate``, ``summarize``), or
with ``--impl faster`` faster-coco-eval's ``COCOeval_faster`` (a C++ COCOeval on PyPI), and prints
one JSON object on stdout:

* ``stats``: the 12 summary numbers in ``summarize``'s order;
* ``summary``: the 12 lines ``summarize`` prints;
* ``per_class``: per category id, ``ap`` (mean of ``precision[:, :, k, area all, maxDets 100]``
  over its entries > -1, as Detectron prints it) and ``ap50`` (the same at IoU 0.5), null where
  the category has no valid entry;
* ``seconds``: the wall time from loading the files to the end of ``summarize``.

Everything pycocotools prints goes to stderr. Usage:
``coco_eval.py --gt instances.json --results detections.json [--impl pycocotools|faster]``.
Needs numpy and pycocotools (faster-coco-eval for ``--impl faster``): scripts/setup-reference.sh.
"""
import argparse
import contextlib
import io
import json
import sys
import time

import numpy as np


def per_class(ev, cat_ids):
    """Detectron's per-class AP and AP50 from ``ev.eval['precision']`` [T, R, K, A, M]."""
    prec = np.asarray(ev.eval["precision"])
    out = {}
    for k, cat in enumerate(cat_ids):
        p = prec[:, :, k, 0, -1]
        v = p[p > -1]
        p50 = prec[0, :, k, 0, -1]
        v50 = p50[p50 > -1]
        out[str(cat)] = {
            "ap": float(np.mean(v)) if v.size else None,
            "ap50": float(np.mean(v50)) if v50.size else None,
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gt", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--impl", choices=["pycocotools", "faster"], default="pycocotools")
    a = ap.parse_args()
    if a.impl == "faster":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    printed = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        gt = COCO(a.gt)
        dt = gt.loadRes(a.results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        with contextlib.redirect_stdout(printed):
            ev.summarize()
    seconds = time.perf_counter() - t0
    summary = [l for l in printed.getvalue().splitlines() if "@[" in l]
    sys.stderr.write(printed.getvalue())
    cat_ids = list(ev.params.catIds)
    json.dump(
        {
            "stats": [float(x) for x in ev.stats[:12]],
            "summary": summary,
            "per_class": per_class(ev, cat_ids),
            "seconds": seconds,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
