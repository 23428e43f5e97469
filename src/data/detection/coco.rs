//! The COCO layout (Table 8's COCO, and any dataset in its form): one `instances_<set>.json`
//! (`images`, `annotations`, `categories`; `info` and `licenses` optional, `segmentation` and
//! other keys ignored) and a folder holding each image's `file_name` — 2017's `000000000139.jpg`
//! and 2014's `COCO_val2014_000000000042.jpg` alike, as written in the file.
//!
//! As pycocotools and torchvision read it: categories sorted by id become the contiguous classes
//! 0..K (`category_ids` keeps the ids for results files); `bbox = [x, y, w, h]` becomes
//! `[x, y, x + w, y + h]`; `iscrowd` boxes are kept, flagged (never training targets; matched
//! but neither true nor false positives in scoring); `area` is the file's own (the segment's
//! area on real COCO), the box's when absent; images without annotations stay in the split
//! (torchvision's detection reference drops them from training only, in
//! `_coco_remove_images_without_annotations`; the trainer may do the same).
use super::validate::MAX_JSON_BYTES;
use super::validate::{check_box, check_image_file, check_size, inside, read_bounded};
use super::{DetectionSplit, GtImage, GtObject};
use crate::config::CocoSet;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Deserialize)]
struct Instances {
    images: Vec<Image>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    categories: Vec<Category>,
}

#[derive(Deserialize)]
struct Image {
    id: u64,
    file_name: String,
    width: u64,
    height: u64,
}

#[derive(Deserialize)]
struct Annotation {
    #[serde(default)]
    id: Option<u64>,
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    #[serde(default)]
    area: Option<f64>,
    #[serde(default)]
    iscrowd: u8,
}

#[derive(Deserialize)]
struct Category {
    id: u64,
    name: String,
}

/// The split of `set` (paths relative to `base`); `classes`, when given, must be the category
/// names in id order.
pub fn read(base: &Path, set: &CocoSet, classes: &[String]) -> Result<DetectionSplit> {
    let json = crate::config::resolve_against(base, &set.annotations);
    let folder = crate::config::resolve_against(base, &set.images);
    let bytes = read_bounded(&json, MAX_JSON_BYTES, "annotation file")?;
    let file: Instances = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{}: malformed COCO instances JSON ({e})", json.display()))?;
    drop(bytes);
    let at = json.display().to_string();
    let (names, category_ids, class_of) = categories(&file.categories, classes, &at)?;
    let mut images = Vec::with_capacity(file.images.len());
    let mut index: HashMap<u64, usize> = HashMap::with_capacity(file.images.len());
    for im in &file.images {
        let here = || format!("{at}, image id {}", im.id);
        if index.insert(im.id, images.len()).is_some() {
            bail!("{}: the image id is listed twice in \"images\"", here());
        }
        let (w, h) = check_size(im.width, im.height, &here)?;
        let path = inside(&folder, &im.file_name, &json, "file_name")?;
        check_image_file(&path, &here)?;
        let name = im.file_name.clone();
        images.push(GtImage {
            id: im.id,
            name,
            path,
            width: w,
            height: h,
            objects: Vec::new(),
        });
    }
    let mut ann_ids: HashMap<u64, usize> = HashMap::new();
    for (k, a) in file.annotations.iter().enumerate() {
        let here = || match a.id {
            Some(id) => format!("{at}, annotation id {id} (image id {})", a.image_id),
            None => format!("{at}, annotation {} (image id {})", k + 1, a.image_id),
        };
        if let Some(id) = a.id {
            if ann_ids.insert(id, k).is_some() {
                bail!("{}: the annotation id is listed twice", here());
            }
        }
        let &i = index
            .get(&a.image_id)
            .ok_or_else(|| anyhow!("{}: no image has this image_id", here()))?;
        let &class = class_of
            .get(&a.category_id)
            .ok_or_else(|| anyhow!("{}: unknown category_id {}", here(), a.category_id))?;
        let [x, y, bw, bh] = a.bbox;
        let img = &mut images[i];
        let bbox = check_box([x, y, x + bw, y + bh], img.width, img.height, &here)?;
        let area = match a.area {
            Some(v) if v.is_finite() && v >= 0.0 => v,
            Some(v) => bail!("{}: area {v} is not a non-negative number", here()),
            None => (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]),
        };
        if a.iscrowd > 1 {
            bail!("{}: iscrowd = {}, not 0 or 1", here(), a.iscrowd);
        }
        img.objects.push(GtObject {
            class,
            bbox,
            area,
            crowd: a.iscrowd == 1,
            difficult: false,
        });
    }
    Ok(DetectionSplit {
        classes: names,
        category_ids,
        images,
    })
}

type Categories = (Vec<String>, Vec<u64>, HashMap<u64, usize>);

/// Class names and ids sorted by id, and each id's contiguous class; checked against the
/// configured `classes` when given.
fn categories(cats: &[Category], classes: &[String], at: &str) -> Result<Categories> {
    let mut sorted: Vec<&Category> = cats.iter().collect();
    sorted.sort_by_key(|c| c.id);
    if sorted.is_empty() {
        bail!("{at}: \"categories\" is empty");
    }
    for w in sorted.windows(2) {
        if w[0].id == w[1].id {
            bail!("{at}: category id {} is listed twice", w[0].id);
        }
    }
    let names: Vec<String> = sorted.iter().map(|c| c.name.clone()).collect();
    if !classes.is_empty() && classes != names.as_slice() {
        bail!(
            "{at}: the categories sorted by id are [{}], not data.detection.classes = [{}]",
            names.join(", "),
            classes.join(", ")
        );
    }
    let ids: Vec<u64> = sorted.iter().map(|c| c.id).collect();
    let class_of = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    Ok((names, ids, class_of))
}
