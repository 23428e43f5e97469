//! PASCAL VOC detection AP (Table 7's mAP), as the VOC devkit's `VOCevaldet.m` and
//! py-faster-rcnn's `voc_eval` compute it, per class:
//!
//! - boxes on VOC's 1-based inclusive pixel grid: the contract's `[x1, y1, x2, y2]` becomes
//!   `xmin = x1 + 1, ymin = y1 + 1, xmax = x2, ymax = y2` (the inverse of the readers'), and
//!   widths and heights are `xmax - xmin + 1` (VOC's `+1` areas);
//! - detections in descending score, ties in the order of the detections list (the devkit's
//!   stable MATLAB `sort`; py-faster-rcnn's `np.argsort` is an unstable quicksort, so its order
//!   among ties is arbitrary: we, and `scripts/reference/voc_eval.py`, pin the stable one);
//! - each detection goes to the ground truth of its image with the highest overlap (already
//!   matched or not); overlap >= 0.5 (the devkit's `>=`; py-faster-rcnn writes `>`, which
//!   differs only at exactly 0.5): a `difficult` box makes it neither true nor false positive,
//!   an unmatched one a true positive, a matched one a false positive (a duplicate); below 0.5
//!   a false positive;
//! - `npos` counts the non-difficult boxes; COCO's crowd boxes count as difficult here;
//! - AP: VOC2007's 11-point interpolated AP (`use_07_metric`, recall thresholds `i * 0.1` as
//!   `np.arange(0., 1.1, 0.1)`), and VOC2010+'s area under the monotone precision envelope.
//!
//! A class without non-difficult ground truth has no AP (`None`: the references divide by zero)
//! and is left out of the mean.
use super::{by_descending_score, check_detections, image_index};
use crate::data::detection::{Detection, DetectionSplit};
use crate::paper::{VOC07_RECALL_POINTS, VOC_MIN_OVERLAP};
use anyhow::Result;
use rayon::prelude::*;

/// One class's VOC scores.
#[derive(Debug, Clone, PartialEq)]
pub struct VocClassAp {
    /// VOC2007's 11-point AP; `None` without non-difficult ground truth.
    pub ap07: Option<f64>,
    /// VOC2010+'s AP (area under the precision envelope); `None` as `ap07`.
    pub ap: Option<f64>,
    /// Non-difficult ground-truth boxes.
    pub npos: usize,
    /// Detections of the class.
    pub detections: usize,
}

/// A box on VOC's pixel grid: `[xmin, ymin, xmax, ymax]`.
fn voc_box(b: &[f64; 4]) -> [f64; 4] {
    [b[0] + 1.0, b[1] + 1.0, b[2], b[3]]
}

/// The devkit's overlap of two VOC boxes (`-inf` when they do not intersect), with the
/// devkit's order of operations.
fn overlap(bb: &[f64; 4], gt: &[f64; 4]) -> f64 {
    let iw = bb[2].min(gt[2]) - bb[0].max(gt[0]) + 1.0;
    let ih = bb[3].min(gt[3]) - bb[1].max(gt[1]) + 1.0;
    if iw > 0.0 && ih > 0.0 {
        let ua = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
            + (gt[2] - gt[0] + 1.0) * (gt[3] - gt[1] + 1.0)
            - iw * ih;
        iw * ih / ua
    } else {
        f64::NEG_INFINITY
    }
}

/// Per-class VOC AP of `dets` against `split` (checked first: see [`check_detections`]).
pub fn evaluate(split: &DetectionSplit, dets: &[Detection]) -> Result<Vec<VocClassAp>> {
    check_detections(split, dets)?;
    let index = image_index(split);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); split.classes.len()];
    for (n, d) in dets.iter().enumerate() {
        by_class[d.class].push(n);
    }
    Ok(by_class
        .into_par_iter()
        .enumerate()
        .map(|(c, mut idx)| {
            by_descending_score(dets, &mut idx);
            class_ap(split, &index, c, dets, &idx)
        })
        .collect())
}

/// One class: the devkit's matching in score order, then both APs.
fn class_ap(
    split: &DetectionSplit,
    index: &std::collections::HashMap<u64, usize>,
    class: usize,
    dets: &[Detection],
    order: &[usize],
) -> VocClassAp {
    // Per image: (VOC box, difficult, already detected) of this class's ground truth.
    let mut gts: Vec<Vec<([f64; 4], bool, bool)>> = split
        .images
        .iter()
        .map(|im| {
            im.objects
                .iter()
                .filter(|o| o.class == class)
                .map(|o| (voc_box(&o.bbox), o.difficult || o.crowd, false))
                .collect()
        })
        .collect();
    let npos = gts.iter().flatten().filter(|g| !g.1).count();
    let (mut tp, mut fp) = (
        Vec::with_capacity(order.len()),
        Vec::with_capacity(order.len()),
    );
    let (mut ntp, mut nfp) = (0.0f64, 0.0f64);
    for &n in order {
        let bb = voc_box(&dets[n].bbox);
        let objs = &mut gts[index[&dets[n].image_id]];
        let (mut ovmax, mut jmax) = (f64::NEG_INFINITY, 0);
        for (j, g) in objs.iter().enumerate() {
            let ov = overlap(&bb, &g.0);
            if ov > ovmax {
                (ovmax, jmax) = (ov, j);
            }
        }
        if ovmax >= VOC_MIN_OVERLAP {
            let g = &mut objs[jmax];
            if !g.1 {
                if g.2 {
                    nfp += 1.0;
                } else {
                    g.2 = true;
                    ntp += 1.0;
                }
            }
        } else {
            nfp += 1.0;
        }
        tp.push(ntp);
        fp.push(nfp);
    }
    let (ap07, ap) = if npos == 0 {
        (None, None)
    } else {
        let rec: Vec<f64> = tp.iter().map(|t| t / npos as f64).collect();
        let prec: Vec<f64> = tp
            .iter()
            .zip(&fp)
            .map(|(t, f)| t / (t + f).max(f64::EPSILON))
            .collect();
        (Some(ap_11_point(&rec, &prec)), Some(ap_area(&rec, &prec)))
    };
    VocClassAp {
        ap07,
        ap,
        npos,
        detections: order.len(),
    }
}

/// VOC2007's 11-point interpolated AP: the mean over `t = 0, 0.1, ..., 1` of the highest
/// precision at recall >= t (0 when none).
pub fn ap_11_point(rec: &[f64], prec: &[f64]) -> f64 {
    let mut ap = 0.0;
    for i in 0..VOC07_RECALL_POINTS {
        let t = i as f64 * 0.1;
        let p = rec
            .iter()
            .zip(prec)
            .filter(|(r, _)| **r >= t)
            .map(|(_, p)| *p)
            .fold(f64::NEG_INFINITY, f64::max);
        let p = if p == f64::NEG_INFINITY { 0.0 } else { p };
        ap += p / VOC07_RECALL_POINTS as f64;
    }
    ap
}

/// VOC2010+'s AP: the area under the precision envelope (precision made monotone from the
/// right), summed where recall changes, with sentinels (0, 0) and (1, 0).
pub fn ap_area(rec: &[f64], prec: &[f64]) -> f64 {
    let mrec: Vec<f64> = std::iter::once(0.0)
        .chain(rec.iter().copied())
        .chain(std::iter::once(1.0))
        .collect();
    let mut mpre: Vec<f64> = std::iter::once(0.0)
        .chain(prec.iter().copied())
        .chain(std::iter::once(0.0))
        .collect();
    for i in (1..mpre.len()).rev() {
        mpre[i - 1] = mpre[i - 1].max(mpre[i]);
    }
    (0..mrec.len() - 1)
        .filter(|&i| mrec[i + 1] != mrec[i])
        .map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1])
        .sum()
}

/// The mean of the classes' APs that exist (`None` when none does).
pub fn mean(aps: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = aps.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_uses_voc_plus_one_areas() {
        // Two 10x10-pixel boxes (1..=10) overlapping in 5 columns: 50 / (100 + 100 - 50).
        let a = [1.0, 1.0, 10.0, 10.0];
        let b = [6.0, 1.0, 15.0, 10.0];
        assert_eq!(overlap(&a, &b), 50.0 / 150.0);
        assert_eq!(overlap(&a, &[11.0, 1.0, 20.0, 10.0]), f64::NEG_INFINITY);
        assert_eq!(voc_box(&[0.0, 0.0, 10.0, 10.0]), a);
    }

    #[test]
    fn ap_of_a_perfect_and_an_empty_ranking() {
        assert_eq!(ap_area(&[0.5, 1.0], &[1.0, 1.0]), 1.0);
        assert!((ap_11_point(&[0.5, 1.0], &[1.0, 1.0]) - 1.0).abs() < 1e-15);
        assert_eq!(ap_area(&[], &[]), 0.0);
        assert_eq!(ap_11_point(&[], &[]), 0.0);
        // Half the recall at precision 1: the area is 0.5; 11-point: t = 0..0.5 (6 of 11).
        assert_eq!(ap_area(&[0.5], &[1.0]), 0.5);
        assert!((ap_11_point(&[0.5], &[1.0]) - 6.0 / 11.0).abs() < 1e-15);
    }
}
