//! Detection scoring for the paper's Tables 7 and 8 (appendix "Object Detection Baselines"):
//! PASCAL VOC's per-class AP ([`voc`], the VOC devkit's algorithm) and COCO's AP/AR
//! ([`coco`], pycocotools' `COCOeval` for boxes), on a split's ground truth and a list of
//! [`Detection`]s, which [`results`] reads from (and writes to) COCO's results format; [`report`]
//! is `resnet eval --detections`.
//!
//! Both scorers take the contract's boxes (`[x1, y1, x2, y2]`, continuous pixels, see
//! [`crate::data::detection`]) and convert them as their reference does, each saying how.
use crate::data::detection::{Detection, DetectionSplit};
use anyhow::{bail, Result};
use std::collections::HashMap;

pub mod coco;
mod coco_match;
pub mod report;
pub mod results;
pub mod voc;

/// The position of each image id in `split.images`.
pub(crate) fn image_index(split: &DetectionSplit) -> HashMap<u64, usize> {
    split
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.id, i))
        .collect()
}

/// Checks what both scorers assume of `dets`: an image of the split, a class of its list,
/// finite numbers, `x1 <= x2`, `y1 <= y2`. The error names the detection's position.
pub fn check_detections(split: &DetectionSplit, dets: &[Detection]) -> Result<()> {
    let index = image_index(split);
    for (n, d) in dets.iter().enumerate() {
        if !index.contains_key(&d.image_id) {
            bail!(
                "detection {n}: image_id {} is not an image of the ground truth",
                d.image_id
            );
        }
        if d.class >= split.classes.len() {
            bail!(
                "detection {n}: class {} is not one of the {} classes",
                d.class,
                split.classes.len()
            );
        }
        let [x1, y1, x2, y2] = d.bbox;
        if !(d.score.is_finite() && d.bbox.iter().all(|v| v.is_finite())) {
            bail!(
                "detection {n}: a non-finite number in bbox {:?} or score {}",
                d.bbox,
                d.score
            );
        }
        if x2 < x1 || y2 < y1 {
            bail!("detection {n}: bbox {:?} has x2 < x1 or y2 < y1", d.bbox);
        }
    }
    Ok(())
}

/// The indices of `dets` in descending score, ties in their order in `dets` (a stable sort:
/// the order MATLAB's `sort` gives the VOC devkit and `np.argsort(kind='mergesort')` gives
/// pycocotools).
pub(crate) fn by_descending_score(dets: &[Detection], idx: &mut [usize]) {
    // partial_cmp, not total_cmp: -0.0 and 0.0 tie, as in numpy (scores are finite).
    idx.sort_by(|&a, &b| {
        let (sa, sb) = (dets[a].score, dets[b].score);
        sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal)
    });
}
