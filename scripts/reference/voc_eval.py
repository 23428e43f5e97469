#!/usr/bin/env python3
"""The PASCAL VOC devkit's detection AP (VOCevaldet.m), written from the devkit's description with
numpy: the reference for the VOC half of `resnet eval --detections` (src/eval/detection/voc.rs).

Per class, on VOC's 1-based inclusive pixel grid (a COCO box [x, y, w, h] is xmin = x + 1,
ymin = y + 1, xmax = x + w, ymax = y + h; widths are xmax - xmin + 1):

1. the class's detections sorted by descending score, ties in file order (a stable sort, as the
   devkit's MATLAB ``sort``);
2. each goes to the ground-truth box of its image with the highest overlap
   (intersection / union of the +1 areas); if that overlap is >= 0.5: a difficult box (a COCO
   crowd box counts as difficult) makes it neither true nor false positive, a box not yet
   detected a true positive (and now detected), a detected one a false positive; else a false
   positive;
3. recall = cumulative TP / npos (npos: the non-difficult boxes), precision = TP / max(TP + FP,
   eps); AP07 = mean over t in 0, 0.1, ..., 1 of the largest precision at recall >= t (0 if
   none); AP = area under the precision envelope (with sentinels (0, 0) and (1, 0)).

A class without non-difficult boxes has no AP (null) and is left out of the means.

Ground truth: a COCO instances json (``--gt FILE.json``; an annotation's optional ``difficult``
key, which COCO does not have, marks a VOC difficult box) or a VOC root (``--gt ROOT`` holding
``Annotations/*.xml`` and ``ImageSets/Main/<split>.txt``, with ``--split``, ``--classes`` and, for
files converted from COCO, ``--continuous``; image ids as resnet's VOC reader numbers them: a
name's digits when every name is digits or digits_digits, else 1-based positions; categories
the 1-based class positions).
Detections: a COCO results file. Prints one JSON object:
``{"per_class": {category_id: {"npos", "detections", "ap07", "ap"}}, "map07", "map"}``.
"""
import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET

import numpy as np


def gt_from_coco(path):
    """{(image_id, category_id): [(box, difficult)]} and the sorted category ids."""
    with open(path) as f:
        d = json.load(f)
    cats = sorted(c["id"] for c in d["categories"])
    gt = {}
    for a in d["annotations"]:
        x, y, w, h = a["bbox"]
        box = (x + 1.0, y + 1.0, x + w, y + h)
        hard = bool(a.get("iscrowd", 0)) or bool(a.get("difficult", 0))
        gt.setdefault((a["image_id"], a["category_id"]), []).append((box, hard))
    return gt, cats


def voc_image_ids(names):
    """Image ids as resnet's VOC reader gives them: the digits of names that are all digits or
    digits_digits (000005 -> 5, 2008_000002 -> 2008000002), else 1-based positions."""
    if all(n.replace("_", "", 1).isdigit() and not n.startswith("_") for n in names):
        return [int(n.replace("_", "")) for n in names]
    return list(range(1, len(names) + 1))


def gt_from_voc(root, split, classes, continuous):
    """The same from a VOC layout (1-based classes). ``continuous``: corners written as
    continuous coordinates (x1 = xmin, files converted from COCO), i.e. devkit xmin = xmin + 1."""
    with open(os.path.join(root, "ImageSets", "Main", split + ".txt")) as f:
        names = [l.strip() for l in f if l.strip()]
    gt = {}
    shift = 1.0 if continuous else 0.0
    for image_id, name in zip(voc_image_ids(names), names):
        tree = ET.parse(os.path.join(root, "Annotations", name + ".xml"))
        for obj in tree.findall("object"):
            cat = classes.index(obj.find("name").text.strip()) + 1
            bb = obj.find("bndbox")
            x1, y1, x2, y2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            diff = obj.find("difficult")
            hard = diff is not None and int(diff.text) == 1
            gt.setdefault((image_id, cat), []).append(((x1 + shift, y1 + shift, x2, y2), hard))
    return gt, list(range(1, len(classes) + 1))


def overlaps(bb, boxes):
    """Intersection over union of the +1 areas of one box and each of ``boxes`` (-inf if apart)."""
    ixmin = np.maximum(boxes[:, 0], bb[0])
    iymin = np.maximum(boxes[:, 1], bb[1])
    ixmax = np.minimum(boxes[:, 2], bb[2])
    iymax = np.minimum(boxes[:, 3], bb[3])
    iw = ixmax - ixmin + 1.0
    ih = iymax - iymin + 1.0
    union = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) + (boxes[:, 2] - boxes[:, 0] + 1.0) * (
        boxes[:, 3] - boxes[:, 1] + 1.0
    ) - iw * ih
    ov = iw * ih / union
    return np.where((iw > 0) & (ih > 0), ov, -np.inf)


def ap07(rec, prec):
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        p = prec[rec >= t]
        ap = ap + (np.max(p) if p.size else 0.0) / 11.0
    return ap


def ap_area(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def class_ap(gt, cat, dets):
    """(npos, ap07, ap) of one category; ``dets``: [(image_id, score, box)] in file order."""
    recs = {}
    for (img, c), objs in gt.items():
        if c == cat:
            recs[img] = {
                "boxes": np.array([o[0] for o in objs], dtype=float).reshape(-1, 4),
                "difficult": [o[1] for o in objs],
                "detected": [False] * len(objs),
            }
    npos = sum(not d for r in recs.values() for d in r["difficult"])
    order = np.argsort(-np.array([d[1] for d in dets], dtype=float), kind="stable")
    tp = np.zeros(len(dets))
    fp = np.zeros(len(dets))
    for n, i in enumerate(order):
        img, _, box = dets[i]
        r = recs.get(img)
        ovmax, jmax = -np.inf, -1
        if r is not None and len(r["boxes"]):
            ov = overlaps(np.array(box), r["boxes"])
            jmax = int(np.argmax(ov))
            ovmax = ov[jmax]
        if ovmax >= 0.5:
            if r["difficult"][jmax]:
                pass
            elif not r["detected"][jmax]:
                tp[n] = 1.0
                r["detected"][jmax] = True
            else:
                fp[n] = 1.0
        else:
            fp[n] = 1.0
    if npos == 0:
        return npos, None, None
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return npos, float(ap07(rec, prec)), ap_area(rec, prec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gt", required=True, help="a COCO instances json or a VOC root folder")
    ap.add_argument("--results", required=True, help="a COCO results json")
    ap.add_argument("--split", default="test", help="VOC root: ImageSets/Main/<split>.txt")
    ap.add_argument("--classes", help="VOC root: the class names, comma-separated, in order")
    ap.add_argument("--continuous", action="store_true",
                    help="VOC root: corners are continuous coordinates (resnet's voc_one_based = false)")
    a = ap.parse_args()
    if os.path.isdir(a.gt):
        if not a.classes:
            sys.exit("voc_eval.py: --classes is needed with a VOC root")
        gt, cats = gt_from_voc(a.gt, a.split, a.classes.split(","), a.continuous)
    else:
        gt, cats = gt_from_coco(a.gt)
    with open(a.results) as f:
        results = json.load(f)
    dets = {c: [] for c in cats}
    for r in results:
        x, y, w, h = r["bbox"]
        dets[r["category_id"]].append((r["image_id"], r["score"], (x + 1.0, y + 1.0, x + w, y + h)))
    out = {}
    for c in cats:
        npos, a07, aa = class_ap(gt, c, dets[c])
        out[str(c)] = {"npos": npos, "detections": len(dets[c]), "ap07": a07, "ap": aa}
    v07 = [v["ap07"] for v in out.values() if v["ap07"] is not None]
    va = [v["ap"] for v in out.values() if v["ap"] is not None]
    json.dump(
        {
            "per_class": out,
            "map07": float(np.mean(v07)) if v07 else None,
            "map": float(np.mean(va)) if va else None,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
