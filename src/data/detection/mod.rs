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
