//! Detection data for the paper's appendix "Object Detection Baselines" (Tables 7–8): the
//! ground-truth boxes of one split, read from the PASCAL VOC or the COCO layout, and the
//! detections a detector outputs or a results file holds.
//!
//! One box convention everywhere inside `resnet`: `bbox = [x1, y1, x2, y2]` in continuous pixel
//! coordinates of the original image, `0 <= x1 <= x2 <= width` (COCO's `[x, y, w, h]` is
//! `[x, y, x + w, y + h]`; torchvision and Detectron use the same). The layouts' own conventions
//! (VOC's 1-based inclusive corners and `+1` widths) are converted by their readers and by the
//! scorers that need them, each saying how.

use std::path::PathBuf;

/// One annotated object of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct GtObject {
    /// Contiguous class index, 0-based, into [`DetectionSplit::classes`].
    pub class: usize,
    /// `[x1, y1, x2, y2]`, the convention of the module doc.
    pub bbox: [f64; 4],
    /// The area COCO's area ranges use: the annotation's own `area` in the COCO layout (for real
    /// COCO, the segment's area, not the box's), the box's area otherwise.
    pub area: f64,
    /// COCO's `iscrowd`: never a training target; matched but neither true nor false positive
    /// in COCO's scoring.
    pub crowd: bool,
    /// VOC's `difficult`: left out of training (py-faster-rcnn); neither true nor false positive
    /// in VOC's scoring.
    pub difficult: bool,
}

/// One image with its objects (possibly none).
#[derive(Debug, Clone, PartialEq)]
pub struct GtImage {
    /// The image id detections refer to (COCO's `image_id`).
    pub id: u64,
    /// The layout's name for the image (COCO's `file_name`, VOC's `<id>` without extension).
    pub name: String,
    /// Where the image file is.
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub objects: Vec<GtObject>,
}

/// The ground truth of one split (train, trainval, test, val) of a detection dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionSplit {
    /// Class names, index = contiguous class.
    pub classes: Vec<String>,
    /// COCO's `category_id` of each contiguous class (VOC: 1-based class index), for reading and
    /// writing results files.
    pub category_ids: Vec<u64>,
    pub images: Vec<GtImage>,
}

/// One scored detection, as a detector outputs it and a COCO results file holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub image_id: u64,
    /// Contiguous class index, as [`GtObject::class`].
    pub class: usize,
    /// `[x1, y1, x2, y2]`, the convention of the module doc.
    pub bbox: [f64; 4],
    pub score: f64,
}

pub mod coco;
pub mod draw;
pub mod loader;
pub mod transforms;
pub mod validate;
pub mod voc;

use crate::config::{Config, Dataset};
use crate::present::table::Table;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Why a detection config cannot train, bench or evaluate a classifier (one line).
pub const NOT_A_CLASSIFIER: &str = "data.dataset = \"voc\" / \"coco\" is detection data (boxes): \
    training, benchmarking and evaluating a detector is issue 25 (Faster R-CNN), not built yet; \
    `resnet data show --config FILE` reads it, and `resnet eval --detections FILE --config FILE` \
    scores a detections file against it";

/// Refuses a detection config where a classifier is trained, benchmarked or evaluated (`what`
/// names the command), before anything else is done.
pub fn refuse_for_classifier(cfg: &Config, what: &str) -> Result<()> {
    if cfg.data.dataset.is_detection() {
        bail!("{what} {}: {NOT_A_CLASSIFIER}", cfg.name);
    }
    Ok(())
}

/// Which split of a detection config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKind {
    /// `voc_train` / `coco_train`: what a detector trains on.
    Train,
    /// `voc_test` / `coco_test`: what it is scored on.
    Test,
}

impl SplitKind {
    pub fn name(self) -> &'static str {
        match self {
            SplitKind::Train => "train",
            SplitKind::Test => "test",
        }
    }
}

impl DetectionSplit {
    /// Per class: images holding at least one object of it, and its objects (all of them,
    /// difficult and crowd ones included).
    pub fn class_counts(&self) -> Vec<(usize, usize)> {
        let mut counts = vec![(0usize, 0usize); self.classes.len()];
        let mut seen = vec![false; self.classes.len()];
        for img in &self.images {
            seen.iter_mut().for_each(|s| *s = false);
            for o in &img.objects {
                counts[o.class].1 += 1;
                if !seen[o.class] {
                    seen[o.class] = true;
                    counts[o.class].0 += 1;
                }
            }
        }
        counts
    }

    /// Objects in all images.
    pub fn boxes(&self) -> usize {
        self.images.iter().map(|i| i.objects.len()).sum()
    }
}

/// The folder `[data.detection]`'s relative paths start from: `data.path` itself, or for a
/// `.tar.gz`/`.tgz` its extraction in `data.cache_dir` (once, by [`crate::data::archive`]), or
/// that extraction's single top-level folder when it holds nothing else.
pub fn detection_root(cfg: &Config) -> Result<std::path::PathBuf> {
    let d = &cfg.data;
    let name = d.path.to_string_lossy();
    if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        if !d.path.is_dir() {
            bail!(
                "data.path = {}: no such folder (data.dataset = \"{}\")",
                d.path.display(),
                d.dataset.name()
            );
        }
        return Ok(d.path.clone());
    }
    if !d.path.is_file() {
        bail!("data.path = {}: no such archive", d.path.display());
    }
    let root = crate::data::archive::extract_cached(&d.path, &d.cache_dir)
        .with_context(|| format!("extracting data.path = {}", d.path.display()))?;
    let entries: Vec<_> = std::fs::read_dir(&root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    if entries.len() == 1 && entries[0].path().is_dir() {
        return Ok(entries[0].path());
    }
    Ok(root)
}

/// The ground truth of the config's training or test split, read and checked whole (every box,
/// class and image file) before anything uses it. `data.dataset` must be `voc` or `coco`.
pub fn read_split(cfg: &Config, which: SplitKind) -> Result<DetectionSplit> {
    let root = detection_root(cfg)?;
    read_split_at(cfg, &root, which)
}

/// [`read_split`] with the root already resolved ([`detection_root`]): both splits of one
/// config extract the archive once.
pub fn read_split_at(cfg: &Config, root: &Path, which: SplitKind) -> Result<DetectionSplit> {
    let det = &cfg.data.detection;
    match cfg.data.dataset {
        Dataset::Voc => {
            let sets = match which {
                SplitKind::Train => &det.voc_train,
                SplitKind::Test => &det.voc_test,
            };
            voc::read(root, sets, &det.classes, det.voc_one_based)
        }
        Dataset::Coco => {
            let set = match which {
                SplitKind::Train => &det.coco_train,
                SplitKind::Test => &det.coco_test,
            };
            coco::read(root, set, &det.classes)
        }
        other => bail!(
            "data.dataset = \"{}\" is not a detection dataset; allowed here: \"voc\", \"coco\"",
            other.name()
        ),
    }
}

/// Both splits of a detection config, the archive extracted once.
pub fn read_splits(cfg: &Config) -> Result<(DetectionSplit, DetectionSplit)> {
    let root = detection_root(cfg)?;
    let train = read_split_at(cfg, &root, SplitKind::Train)?;
    let test = read_split_at(cfg, &root, SplitKind::Test)?;
    if train.classes != test.classes {
        bail!(
            "data.path = {}: the training split's classes ({}) differ from the test split's ({})",
            cfg.data.path.display(),
            train.classes.join(", "),
            test.classes.join(", ")
        );
    }
    Ok((train, test))
}

/// `resnet data show`'s table for detection: per class, the images holding it and its boxes in
/// both splits, with a total row (images counted once however many classes they hold).
pub fn count_table(train: &DetectionSplit, test: &DetectionSplit) -> Table {
    let mut t = Table::new([
        "class",
        "train images",
        "train boxes",
        "test images",
        "test boxes",
    ]);
    let (a, b) = (train.class_counts(), test.class_counts());
    for (i, name) in train.classes.iter().enumerate() {
        let (x, y) = (a[i], b.get(i).copied().unwrap_or_default());
        t.push(vec![
            name.clone(),
            x.0.to_string(),
            x.1.to_string(),
            y.0.to_string(),
            y.1.to_string(),
        ]);
    }
    t.push(vec![
        "total".into(),
        train.images.len().to_string(),
        train.boxes().to_string(),
        test.images.len().to_string(),
        test.boxes().to_string(),
    ]);
    t
}
