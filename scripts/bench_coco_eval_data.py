#!/usr/bin/env python3
"""Generates the COCO-sized scoring benchmark of scripts/bench_coco_eval.sh (not committed data):
``--images`` images (default 5,000) of 640x480 with COCO's 80 category ids (1-90 with COCO's
gaps), a realistic number of ground-truth boxes (Poisson, mean 7.3 per image as COCO val2017,
classes skewed as COCO's: a few frequent, many rare; 1% crowd; sizes from small to large), and
``--dets`` detections per image (default 300, as a two-stage detector's output): 1-3 noisy
copies of each box with high scores, the rest false positives on random classes with low
scores, coordinates rounded to 2 decimals as detectors write them. Writes, into ``--out``:
``instances.json`` (ground truth), ``detections.json`` (COCO results format), an empty
``images/<id>.jpg`` per image (the COCO reader checks that image files exist) and
``bench.toml`` (a config whose test split is that ground truth, for ``resnet eval
--detections``). Deterministic from ``--seed``. Needs numpy.
"""
import argparse
import json
import os

import numpy as np

# COCO's 80 category ids (instances_val2017.json): 1..90 without 12, 26, 29, 30, 45, 66, 68,
# 69, 71, 83.
CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
W, H = 640, 480


def boxes(rng, n):
    """n boxes inside the image: log-uniform sizes from 4 to 600 pixels wide."""
    w = np.exp(rng.uniform(np.log(4), np.log(600), n))
    h = np.clip(w * np.exp(rng.normal(0, 0.4, n)), 2, H)
    w = np.clip(w, 2, W)
    x = rng.uniform(0, 1, n) * (W - w)
    y = rng.uniform(0, 1, n) * (H - h)
    return np.round(np.stack([x, y, w, h], 1), 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    freq = 1.0 / np.arange(1, 81) ** 1.1
    freq /= freq.sum()
    images, anns, dets = [], [], []
    for i in range(a.images):
        image_id = 100000 + 7 * i
        name = f"{image_id}.jpg"
        open(os.path.join(a.out, "images", name), "wb").close()
        images.append({"id": image_id, "width": W, "height": H, "file_name": name})
        n = min(rng.poisson(7.3), a.dets // 2)
        cats = rng.choice(80, n, p=freq)
        for c, b in zip(cats, boxes(rng, n)):
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": CATEGORY_IDS[c],
                         "bbox": b.tolist(), "area": float(round(b[2] * b[3] * 0.8, 2)),
                         "iscrowd": int(rng.uniform() < 0.01)})
            for _ in range(rng.integers(1, 4)):
                if len(dets) - i * a.dets >= a.dets:
                    break
                j = b + rng.normal(0, 0.08, 4) * np.array([b[2], b[3], b[2], b[3]])
                j[2:] = np.maximum(j[2:], 0.5)
                dets.append({"image_id": image_id, "category_id": CATEGORY_IDS[c],
                             "bbox": np.round(j, 2).tolist(), "score": round(float(rng.uniform(0.3, 1.0)), 4)})
        rest = a.dets - (len(dets) - i * a.dets)
        for c, b in zip(rng.choice(80, rest, p=freq), boxes(rng, rest)):
            dets.append({"image_id": image_id, "category_id": CATEGORY_IDS[c], "bbox": b.tolist(),
                         "score": round(float(rng.uniform(0.0, 0.6)), 4)})
    cats = [{"id": c, "name": f"category{c}"} for c in CATEGORY_IDS]
    with open(os.path.join(a.out, "instances.json"), "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    with open(os.path.join(a.out, "detections.json"), "w") as f:
        json.dump(dets, f)
    with open(os.path.join(a.out, "bench.toml"), "w") as f:
        f.write('name = "coco_eval_bench"\n[model]\nfamily = "imagenet"\ndepth = 18\nclasses = 80\n'
                '[data]\ndataset = "coco"\npath = "."\n'
                '[data.detection]\ncoco_test = { annotations = "instances.json", images = "images" }\n'
                'coco_train = { annotations = "instances.json", images = "images" }\n')
    print(f"{len(images)} images, {len(anns)} boxes, {len(dets)} detections -> {a.out}")


if __name__ == "__main__":
    main()
