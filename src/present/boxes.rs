//! Pictures of detections (the paper's appendix, Tables 7–8; Faster R-CNN's Figure 5 style):
//! boxes with a label drawn onto a photograph, for ground truth (`resnet data show --draw`) and
//! for a detector's predictions beside it (issue 25).
//!
//! The boxes and labels are an SVG overlay that `resvg` renders straight onto the photograph's own
//! pixels (no raster image is embedded, so resvg's `raster-images` feature is not needed); the
//! result has the photograph's size. Labels use the system fonts, as Figure 6 does; without fonts
//! the boxes still render and only the text is lost.
use anyhow::{Context, Result};
use image::RgbImage;
use resvg::{tiny_skia, usvg};
use std::fmt::Write as _;
use std::path::Path;

/// One box to draw: `[x1, y1, x2, y2]` in the image's continuous pixel coordinates, its label
/// (class name, score, ...), its colour; dashed for objects the metrics ignore (difficult,
/// crowd) or for a second set drawn beside the first.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledBox {
    pub bbox: [f64; 4],
    pub label: String,
    pub colour: [u8; 3],
    pub dashed: bool,
}

/// Ten distinguishable colours (matplotlib's `tab10`), one per class index, cycling.
pub fn class_colour(class: usize) -> [u8; 3] {
    const TAB10: [[u8; 3]; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    TAB10[class % TAB10.len()]
}

/// Draws boxes onto photographs; holds the fonts, loaded once.
pub struct BoxPainter {
    opt: usvg::Options<'static>,
}

impl Default for BoxPainter {
    fn default() -> Self {
        Self::new()
    }
}

impl BoxPainter {
    pub fn new() -> Self {
        let mut opt = usvg::Options::default();
        opt.fontdb_mut().load_system_fonts();
        BoxPainter { opt }
    }

    /// `img` with `boxes` drawn on it (same size).
    pub fn draw(&self, img: &RgbImage, boxes: &[LabelledBox]) -> Result<RgbImage> {
        let (w, h) = img.dimensions();
        let svg = overlay(w, h, boxes);
        let tree = usvg::Tree::from_str(&svg, &self.opt).context("parsing the boxes' SVG")?;
        let rgba: Vec<u8> = img.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        let size = tiny_skia::IntSize::from_wh(w, h).context("an empty image")?;
        let mut pixmap = tiny_skia::Pixmap::from_vec(rgba, size).context("image buffer size")?;
        resvg::render(
            &tree,
            tiny_skia::Transform::identity(),
            &mut pixmap.as_mut(),
        );
        // Opaque below, so premultiplied = straight: drop alpha.
        let rgb: Vec<u8> = pixmap
            .data()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        RgbImage::from_raw(w, h, rgb).context("image buffer size")
    }
}

/// Writes an RGB image as PNG, atomically.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .with_context(|| format!("encoding {} as PNG", path.display()))?;
    crate::sys::atomic::write(path, &bytes)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG overlay: each box a 2-px outline, its label in white on the box's colour above the
/// box's top-left corner (inside it when the box touches the top of the image).
fn overlay(w: u32, h: u32, boxes: &[LabelledBox]) -> String {
    let font = (h.min(w) as f64 / 28.0).clamp(9.0, 18.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\">\n"
    );
    for b in boxes {
        let [x1, y1, x2, y2] = b.bbox;
        let c = format!("rgb({},{},{})", b.colour[0], b.colour[1], b.colour[2]);
        let dash = if b.dashed {
            " stroke-dasharray=\"6,4\""
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "<rect x=\"{x1:.2}\" y=\"{y1:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"none\" \
             stroke=\"{c}\" stroke-width=\"2\"{dash}/>",
            (x2 - x1).max(0.0),
            (y2 - y1).max(0.0)
        );
        if b.label.is_empty() {
            continue;
        }
        let tw = font * 0.6 * b.label.chars().count() as f64 + 4.0;
        let th = font + 4.0;
        let ty = if y1 >= th { y1 - th } else { y1 };
        let _ = writeln!(
            s,
            "<rect x=\"{x1:.2}\" y=\"{ty:.2}\" width=\"{tw:.2}\" height=\"{th:.2}\" fill=\"{c}\" \
             fill-opacity=\"0.85\"/>\n<text x=\"{:.2}\" y=\"{:.2}\" font-family=\"DejaVu Sans, \
             sans-serif\" font-size=\"{font:.1}\" fill=\"white\">{}</text>",
            x1 + 2.0,
            ty + font,
            esc(&b.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_changes_its_outline_pixels_only_and_keeps_the_size() {
        let img = RgbImage::from_pixel(60, 40, image::Rgb([10, 20, 30]));
        let b = LabelledBox {
            bbox: [10.0, 10.0, 50.0, 30.0],
            label: String::new(),
            colour: [255, 0, 0],
            dashed: false,
        };
        let out = BoxPainter::new().draw(&img, &[b]).unwrap();
        assert_eq!(out.dimensions(), (60, 40));
        // On the outline: red; far from it: untouched.
        assert_eq!(out.get_pixel(30, 10)[0], 255);
        assert_eq!(out.get_pixel(30, 20), img.get_pixel(30, 20));
        assert_eq!(out.get_pixel(2, 2), img.get_pixel(2, 2));
    }

    #[test]
    fn labels_are_escaped() {
        let b = LabelledBox {
            bbox: [0.0, 0.0, 5.0, 5.0],
            label: "<a&b>".into(),
            colour: [0, 0, 0],
            dashed: true,
        };
        let svg = overlay(10, 10, &[b]);
        assert!(svg.contains("&lt;a&amp;b&gt;") && svg.contains("stroke-dasharray"));
    }
}
