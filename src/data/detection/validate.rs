//! Checks shared by the VOC and COCO readers (Tables 7–8's ground truth): annotation files read
//! under a size bound, boxes checked against their image, paths kept inside their folder. Every
//! error is one line naming the file and the image or object.
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest VOC annotation XML read (real ones are under 10 kB).
pub const MAX_XML_BYTES: u64 = 1 << 20;
/// Largest image-set list read (VOC 07+12's largest has 11,540 lines, 150 kB).
pub const MAX_LIST_BYTES: u64 = 64 << 20;
/// Largest COCO `instances_*.json` read (COCO 2017 train's is 448 MB).
pub const MAX_JSON_BYTES: u64 = 4 << 30;
/// How far (pixels) a box may reach past its image and still be accepted, clipped to it: COCO's
/// boxes come from polygons and some pass the border by a fraction of a pixel; VOC's 1-based
/// corners converted to continuous ones put a box written from `xmin = 0` at -1. torchvision's
/// reference and Detectron clip such boxes too; a box further out is an error.
pub const BOX_SLACK: f64 = 1.0;

/// The bytes of `path`, refused unread when larger than `max` (what `what` names).
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let cannot = || format!("cannot read {what} {}", path.display());
    let f = std::fs::File::open(path).with_context(cannot)?;
    let len = f.metadata().with_context(cannot)?.len();
    if len > max {
        bail!(
            "{what} {}: {len} bytes, larger than any accepted ({max} bytes)",
            path.display()
        );
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(cannot)?;
    if bytes.len() as u64 > max {
        bail!(
            "{what} {}: larger than any accepted ({max} bytes)",
            path.display()
        );
    }
    Ok(bytes)
}

/// `rel` under `base` when it is a plain relative path (no `..`, not absolute): a name from an
/// annotation file never points outside its folder.
pub fn inside(base: &Path, rel: &str, file: &Path, what: &str) -> Result<PathBuf> {
    match crate::data::archive::safe_member_path(Path::new(rel)) {
        Some(p) if !p.as_os_str().is_empty() => Ok(base.join(p)),
        _ => bail!(
            "{}: {what} {rel:?} is not a relative path inside {}",
            file.display(),
            base.display()
        ),
    }
}

/// The box `[x1, y1, x2, y2]` of an object of a `w`×`h` image checked: finite, `x1 <= x2`,
/// `y1 <= y2`, inside the image up to [`BOX_SLACK`] (then clipped to it). `at` names the
/// file, image and object for the message.
pub fn check_box(b: [f64; 4], w: u32, h: u32, at: &dyn Fn() -> String) -> Result<[f64; 4]> {
    if b.iter().any(|v| !v.is_finite()) {
        bail!("{}: box {b:?} is not finite", at());
    }
    if b[2] < b[0] || b[3] < b[1] {
        bail!("{}: box {b:?} has x2 < x1 or y2 < y1", at());
    }
    let (w, h) = (w as f64, h as f64);
    let out =
        b[0] < -BOX_SLACK || b[1] < -BOX_SLACK || b[2] > w + BOX_SLACK || b[3] > h + BOX_SLACK;
    if out {
        bail!(
            "{}: box {b:?} ([x1, y1, x2, y2]) is outside the {w}x{h} image",
            at()
        );
    }
    Ok([
        b[0].clamp(0.0, w),
        b[1].clamp(0.0, h),
        b[2].clamp(0.0, w),
        b[3].clamp(0.0, h),
    ])
}

/// Image sizes from an annotation: 1..=`MAX_SIDE` each, as decoding accepts.
pub fn check_size(w: u64, h: u64, at: &dyn Fn() -> String) -> Result<(u32, u32)> {
    let max = crate::data::image::MAX_SIDE as u64;
    if !(1..=max).contains(&w) || !(1..=max).contains(&h) {
        bail!(
            "{}: image size {w}x{h} is outside 1..={max} pixels a side",
            at()
        );
    }
    Ok((w as u32, h as u32))
}

/// Refuses a missing image file.
pub fn check_image_file(path: &Path, at: &dyn Fn() -> String) -> Result<()> {
    if !path.is_file() {
        bail!("{}: image file {} is missing", at(), path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> String {
        "f.xml, image a".into()
    }

    #[test]
    fn boxes_inside_pass_and_slack_is_clipped() {
        assert_eq!(
            check_box([0.0, 1.0, 10.0, 5.0], 10, 5, &at).unwrap(),
            [0.0, 1.0, 10.0, 5.0]
        );
        assert_eq!(
            check_box([-1.0, -0.5, 10.5, 5.0], 10, 5, &at).unwrap(),
            [0.0, 0.0, 10.0, 5.0]
        );
    }

    #[test]
    fn bad_boxes_are_one_line_errors() {
        for b in [
            [5.0, 0.0, 4.0, 3.0],
            [0.0, 3.0, 4.0, 2.0],
            [0.0, 0.0, 12.0, 3.0],
            [-2.0, 0.0, 4.0, 3.0],
            [0.0, f64::NAN, 4.0, 3.0],
        ] {
            let e = format!("{:#}", check_box(b, 10, 5, &at).unwrap_err());
            assert!(e.starts_with("f.xml, image a: box"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn names_stay_inside_their_folder() {
        let f = Path::new("x.json");
        assert!(inside(Path::new("/d"), "a/b.jpg", f, "file_name").is_ok());
        for bad in ["../b.jpg", "/etc/passwd", ""] {
            assert!(
                inside(Path::new("/d"), bad, f, "file_name").is_err(),
                "{bad}"
            );
        }
    }
}
