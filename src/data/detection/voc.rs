//! The PASCAL VOC layout (Table 7's VOC 2007/2012): `ROOT/ImageSets/Main/<set>.txt` lists image
//! ids, `ROOT/Annotations/<id>.xml` holds each image's size and objects (`name`, `difficult`,
//! `bndbox`), `ROOT/JPEGImages/<id>.jpg` the photograph. Several (root, set) pairs make one split
//! (07+12 = VOC2007 trainval + VOC2012 trainval).
//!
//! Pixel convention: the devkit's corners are 1-based pixel indices, both ends inclusive, so the
//! box covers the continuous interval `[xmin - 1, xmax]`: `x1 = xmin - 1, y1 = ymin - 1,
//! x2 = xmax, y2 = ymax`. py-faster-rcnn's `pascal_voc.py` subtracts 1 from all four corners and
//! measures widths as `x2 - x1 + 1`; Detectron's VOC json writes `[xmin - 1, ymin - 1, xmax -
//! xmin + 1, ymax - ymin + 1]`: both the same box as ours. `one_based = false` reads corners as
//! continuous coordinates as written (VOC-style files converted from COCO, as dogs-det's).
//!
//! Image ids (what results files refer to): when every name of the split is digits, or digits
//! `_` digits (VOC2007's `000005`, VOC2012's `2008_000002`), the id is those digits read as one
//! number (`5`, `2008000002`), as Detectron's VOC json numbers them; otherwise the 1-based
//! position of the image in the split's lists, in order. Two images with one id are an error.
use super::validate::{
    check_box, check_image_file, check_size, inside, read_bounded, MAX_LIST_BYTES, MAX_XML_BYTES,
};
use super::{DetectionSplit, GtImage, GtObject};
use crate::config::VocSet;
use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The split made of `sets` (roots relative to `base`), with `classes` (empty: VOC's 20).
pub fn read(
    base: &Path,
    sets: &[VocSet],
    classes: &[String],
    one_based: bool,
) -> Result<DetectionSplit> {
    let classes: Vec<String> = if classes.is_empty() {
        crate::paper::VOC_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        classes.to_vec()
    };
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut listed: Vec<(PathBuf, String, PathBuf)> = Vec::new();
    for s in sets {
        let root = crate::config::resolve_against(base, &s.root);
        let list = root.join("ImageSets/Main").join(format!("{}.txt", s.set));
        for name in read_list(&list)? {
            listed.push((root.clone(), name, list.clone()));
        }
    }
    let ids = image_ids(&listed)?;
    let mut images = Vec::with_capacity(listed.len());
    for ((root, name, list), id) in listed.iter().zip(ids) {
        let xml = inside(
            &root.join("Annotations"),
            &format!("{name}.xml"),
            list,
            "image id",
        )?;
        let jpg = inside(
            &root.join("JPEGImages"),
            &format!("{name}.jpg"),
            list,
            "image id",
        )?;
        let mut img = read_annotation(&xml, &index, one_based)?;
        check_image_file(&jpg, &|| format!("{}, image {name}", list.display()))?;
        img.id = id;
        img.name = name.clone();
        img.path = jpg;
        images.push(img);
    }
    let category_ids = (1..=classes.len() as u64).collect();
    Ok(DetectionSplit {
        classes,
        category_ids,
        images,
    })
}

/// The image names of an image-set file: the first word of each non-empty line (class-specific
/// lists add a flag after it).
fn read_list(path: &Path) -> Result<Vec<String>> {
    let bytes = read_bounded(path, MAX_LIST_BYTES, "image set")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("image set {}: not UTF-8 text", path.display()))?;
    let names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        bail!("image set {}: lists no image", path.display());
    }
    Ok(names)
}

/// The ids of the module doc, one per listed image; an id twice is an error naming both.
fn image_ids(listed: &[(PathBuf, String, PathBuf)]) -> Result<Vec<u64>> {
    let numeric = |n: &str| -> Option<u64> {
        let parts: Vec<&str> = n.split('_').collect();
        let ok = (1..=2).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let digits: String = parts.concat();
        (ok && digits.len() <= 18)
            .then(|| digits.parse().ok())
            .flatten()
    };
    let mut names: HashMap<(&Path, &str), usize> = HashMap::new();
    for (i, (root, name, list)) in listed.iter().enumerate() {
        if let Some(j) = names.insert((root, name), i) {
            bail!(
                "{}: image {name} is listed twice (also in {})",
                list.display(),
                listed[j].2.display()
            );
        }
    }
    let all: Option<Vec<u64>> = listed.iter().map(|(_, n, _)| numeric(n)).collect();
    let ids = all.unwrap_or_else(|| (1..=listed.len() as u64).collect());
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, &id) in ids.iter().enumerate() {
        if let Some(&j) = seen.get(&id) {
            let (a, b) = (&listed[j], &listed[i]);
            bail!(
                "{}: image {} (id {id}) is listed twice (also in {} as {})",
                b.2.display(),
                b.1,
                a.2.display(),
                a.1
            );
        }
        seen.insert(id, i);
    }
    Ok(ids)
}

/// One annotation file: size and objects (id, name and path are the caller's).
fn read_annotation(
    path: &Path,
    classes: &HashMap<&str, usize>,
    one_based: bool,
) -> Result<GtImage> {
    let at = || path.display().to_string();
    let bytes = read_bounded(path, MAX_XML_BYTES, "annotation")?;
    let text = String::from_utf8(bytes).map_err(|_| anyhow!("{}: not UTF-8 XML", at()))?;
    let doc =
        roxmltree::Document::parse(&text).map_err(|e| anyhow!("{}: malformed XML ({e})", at()))?;
    let ann = doc.root_element();
    if !ann.has_tag_name("annotation") {
        bail!("{}: the root element is not <annotation>", at());
    }
    let size = child(ann, "size").ok_or_else(|| anyhow!("{}: no <size>", at()))?;
    let (w, h) = check_size(
        number(size, "width", &at)? as u64,
        number(size, "height", &at)? as u64,
        &|| at(),
    )?;
    let mut objects = Vec::new();
    for (k, obj) in ann
        .children()
        .filter(|n| n.has_tag_name("object"))
        .enumerate()
    {
        let here = || format!("{}, object {}", at(), k + 1);
        let name = text_of(obj, "name").ok_or_else(|| anyhow!("{}: no <name>", here()))?;
        let class = *classes.get(name).ok_or_else(|| {
            anyhow!(
                "{}: unknown class name {name:?} (data.detection.classes has {} names)",
                here(),
                classes.len()
            )
        })?;
        let difficult = match text_of(obj, "difficult") {
            None => false,
            Some(t) => {
                t.parse::<u8>()
                    .map_err(|_| anyhow!("{}: <difficult> is {t:?}, not 0 or 1", here()))?
                    != 0
            }
        };
        let bb = child(obj, "bndbox").ok_or_else(|| anyhow!("{}: no <bndbox>", here()))?;
        let mut b = [0.0; 4];
        for (v, key) in b.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
            *v = number(bb, key, &here)?;
        }
        if one_based {
            b[0] -= 1.0;
            b[1] -= 1.0;
        }
        let bbox = check_box(b, w, h, &here)?;
        objects.push(GtObject {
            class,
            bbox,
            area: (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]),
            crowd: false,
            difficult,
        });
    }
    Ok(GtImage {
        id: 0,
        name: String::new(),
        path: PathBuf::new(),
        width: w,
        height: h,
        objects,
    })
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

fn text_of<'a>(n: roxmltree::Node<'a, '_>, tag: &str) -> Option<&'a str> {
    child(n, tag).and_then(|c| c.text()).map(str::trim)
}

/// The number in `<tag>` under `n` (VOC writes integers; some files have decimals).
fn number(n: roxmltree::Node, tag: &str, at: &dyn Fn() -> String) -> Result<f64> {
    let t = text_of(n, tag).ok_or_else(|| anyhow!("{}: no <{tag}>", at()))?;
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && v.abs() < 1e9)
        .ok_or_else(|| anyhow!("{}: <{tag}> is {t:?}, not a number", at()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(names: &[&str]) -> Vec<(PathBuf, String, PathBuf)> {
        names
            .iter()
            .map(|n| (PathBuf::from("r"), n.to_string(), PathBuf::from("l.txt")))
            .collect()
    }

    #[test]
    fn numeric_names_are_their_digits() {
        let ids = image_ids(&listed(&["000005", "2008_000002"])).unwrap();
        assert_eq!(ids, vec![5, 2008000002]);
    }

    #[test]
    fn other_names_are_positions() {
        let ids = image_ids(&listed(&["000005", "n02086240_1011", "b"])).unwrap();
        assert_eq!(ids, vec![1, 2, 3]);
    }

    #[test]
    fn an_image_listed_twice_is_an_error() {
        for names in [
            &["000005", "000007", "000005"][..],
            &["a", "b", "a"],
            &["5", "05"],
        ] {
            let e = image_ids(&listed(names)).unwrap_err();
            assert!(format!("{e:#}").contains("listed twice"), "{e:#}");
        }
    }
}
