//! COCO's detection results format, the file `resnet eval --detections` scores and part 2's
//! detector writes: a JSON list of `{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`
//! (other keys are allowed and skipped), read into the contract's [`Detection`]s
//! (`[x, y, x + w, y + h]`, the class from the split's `category_ids`) and written from them.
//!
//! Stricter than pycocotools' `loadRes`, which asserts only that image ids exist: an unknown
//! `category_id` (pycocotools drops it silently), a non-finite number or a negative width or
//! height is an error naming the file and the entry; an empty list is zero detections.
use super::image_index;
use crate::data::detection::{Detection, DetectionSplit};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// The largest results file read (2 GiB: ~20 million detections; COCO test-dev at 100 per image
/// is ~2 million).
pub const MAX_RESULTS_BYTES: u64 = 2 << 30;

#[derive(Deserialize, Serialize)]
struct Entry {
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    score: f64,
}

/// Reads `path` (at most [`MAX_RESULTS_BYTES`]) into detections of `split`'s images and classes.
pub fn read(path: &Path, split: &DetectionSplit) -> Result<Vec<Detection>> {
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_RESULTS_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > MAX_RESULTS_BYTES {
        bail!(
            "{}: larger than {} bytes, the most a detections file may have",
            path.display(),
            MAX_RESULTS_BYTES
        );
    }
    let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a COCO results file (a JSON list of {{\"image_id\", \"category_id\", \"bbox\": [x, y, w, h], \"score\"}}): {e}",
            path.display()
        )
    })?;
    drop(bytes);
    convert(&entries, split).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The entries as detections, each checked.
fn convert(entries: &[Entry], split: &DetectionSplit) -> Result<Vec<Detection>> {
    let images = image_index(split);
    let classes: HashMap<u64, usize> = split
        .category_ids
        .iter()
        .enumerate()
        .map(|(c, &id)| (id, c))
        .collect();
    entries
        .iter()
        .enumerate()
        .map(|(n, e)| {
            if !images.contains_key(&e.image_id) {
                bail!(
                    "entry {n}: image_id {} is not an image of the ground truth",
                    e.image_id
                );
            }
            let Some(&class) = classes.get(&e.category_id) else {
                bail!(
                    "entry {n}: category_id {} is not a category of the ground truth ({:?})",
                    e.category_id,
                    split.category_ids
                );
            };
            let [x, y, w, h] = e.bbox;
            if !(e.score.is_finite() && e.bbox.iter().all(|v| v.is_finite())) {
                bail!(
                    "entry {n}: a non-finite number in bbox {:?} or score {}",
                    e.bbox,
                    e.score
                );
            }
            if w < 0.0 || h < 0.0 {
                bail!(
                    "entry {n}: bbox {:?} has a negative width or height",
                    e.bbox
                );
            }
            Ok(Detection {
                image_id: e.image_id,
                class,
                bbox: [x, y, x + w, y + h],
                score: e.score,
            })
        })
        .collect()
}

/// Writes `dets` (classes of `split`) to `path` in COCO's results format, atomically.
pub fn write(path: &Path, split: &DetectionSplit, dets: &[Detection]) -> Result<()> {
    let entries = dets
        .iter()
        .map(|d| {
            let category_id = *split.category_ids.get(d.class).with_context(|| {
                format!(
                    "{}: detection of class {} outside the split's classes",
                    path.display(),
                    d.class
                )
            })?;
            let [x1, y1, x2, y2] = d.bbox;
            Ok(Entry {
                image_id: d.image_id,
                category_id,
                bbox: [x1, y1, x2 - x1, y2 - y1],
                score: d.score,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = serde_json::to_vec(&entries).context("serializing detections")?;
    crate::present::table::write_atomic(path, &bytes)
}
