//! `resnet data show --draw N --out DIR` (issue 24's pictures): ground-truth boxes with their
//! class names drawn on photographs of a split; the same labelled boxes serve a detector's
//! predictions ([`prediction_boxes`], drawn beside the ground truth in issue 25).
use super::{Detection, DetectionSplit, GtImage};
use crate::present::boxes::{class_colour, save_png, BoxPainter, LabelledBox};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Most images one `--draw` writes.
pub const MAX_DRAW: usize = 10_000;

/// The labelled boxes of an image's ground truth: class name, dashed (and marked) when the
/// metrics ignore the object (VOC's difficult, COCO's crowd).
pub fn ground_truth_boxes(img: &GtImage, classes: &[String]) -> Vec<LabelledBox> {
    img.objects
        .iter()
        .map(|o| {
            let mut label = classes[o.class].clone();
            if o.difficult {
                label.push_str(" (difficult)");
            }
            if o.crowd {
                label.push_str(" (crowd)");
            }
            LabelledBox {
                bbox: o.bbox,
                label,
                colour: class_colour(o.class),
                dashed: o.difficult || o.crowd,
            }
        })
        .collect()
}

/// The labelled boxes of an image's detections scoring at least `min_score`: class name and
/// score.
pub fn prediction_boxes(
    dets: &[Detection],
    classes: &[String],
    min_score: f64,
) -> Vec<LabelledBox> {
    dets.iter()
        .filter(|d| d.score >= min_score)
        .map(|d| LabelledBox {
            bbox: d.bbox,
            label: format!("{} {:.2}", classes[d.class], d.score),
            colour: class_colour(d.class),
            dashed: false,
        })
        .collect()
}

/// Where the picture of `img` goes in `out`: its name with `/` made `_`, as `.png`.
pub fn picture_path(out: &Path, img: &GtImage) -> PathBuf {
    let stem = Path::new(&img.name)
        .with_extension("")
        .to_string_lossy()
        .replace(['/', '\\'], "_");
    out.join(format!("{stem}.png"))
}

/// Draws the ground truth of the first `n` images of `split` (fewer when it has fewer) into
/// `out` (created), one PNG each, the photograph's size; returns how many were written.
pub fn ground_truth(split: &DetectionSplit, n: usize, out: &Path) -> Result<usize> {
    if n == 0 || n > MAX_DRAW {
        bail!("--draw {n}: must be in 1..={MAX_DRAW}");
    }
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a folder", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let painter = BoxPainter::new();
    let take = &split.images[..n.min(split.images.len())];
    for img in take {
        let photo = crate::data::image::decode_rgb(&img.path)?;
        super::loader::check_decoded_size(img, &photo)?;
        let drawn = painter.draw(&photo, &ground_truth_boxes(img, &split.classes))?;
        save_png(&drawn, &picture_path(out, img))?;
    }
    Ok(take.len())
}
