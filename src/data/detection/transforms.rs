//! Faster R-CNN's box-aware image transform (the paper's appendix after Faster R-CNN [32]):
//! each image is resized whole, aspect kept, so that its shorter side is `S` unless its longer
//! side would then pass `L` (then the longer side is `L`); training images are flipped
//! horizontally with their boxes; predicted boxes are mapped back to the original image.
//!
//! As py-faster-rcnn's `utils/blob.py::prep_im_for_blob` computes the scale:
//! `scale = S / min(w, h)`, and `scale = L / max(w, h)` when `round(scale * max(w, h)) > L`;
//! the resized size is `round(w * scale) x round(h * scale)`. Boxes are mapped with the ratios of
//! the actual sizes per axis (`w' / w`, `h' / h`, as torchvision's `resize_boxes`), so the
//! image's own extent `[0, 0, w, h]` maps exactly onto `[0, 0, w', h']` and the inverse mapping is
//! the exact reverse. The flip in continuous coordinates is `x -> w - x` (py-faster-rcnn's
//! `w - x - 1` is the same for its inclusive pixel indices).
//!
//! The pixels are resized by [`crate::data::image::resize_to`], the classification loader's
//! bilinear filter, antialiased when shrinking (py-faster-rcnn's `cv2.INTER_LINEAR` and
//! torchvision's `interpolate(mode="bilinear")` are not): the same image when enlarging, as at
//! the paper's 600 px, a slightly smoother one when shrinking.

/// The resized size of a `w`×`h` image: shorter side `shorter`, longer side at most `max_side`.
pub fn target_size((w, h): (u32, u32), shorter: u32, max_side: u32) -> (u32, u32) {
    let (lo, hi) = (w.min(h) as f64, w.max(h) as f64);
    let mut scale = shorter as f64 / lo;
    if (scale * hi).round() > max_side as f64 {
        scale = max_side as f64 / hi;
    }
    let side = |v: u32| ((v as f64 * scale).round() as u32).max(1);
    (side(w), side(h))
}

/// `b` of an image of size `from` in the same image resized to `to` (both `(w, h)`).
pub fn resize_box(b: [f64; 4], from: (u32, u32), to: (u32, u32)) -> [f64; 4] {
    let (rx, ry) = (to.0 as f64 / from.0 as f64, to.1 as f64 / from.1 as f64);
    [b[0] * rx, b[1] * ry, b[2] * rx, b[3] * ry]
}

/// `b` mirrored left to right in an image `width` wide.
pub fn flip_box(b: [f64; 4], width: u32) -> [f64; 4] {
    let w = width as f64;
    [w - b[2], b[1], w - b[0], b[3]]
}

/// A box predicted on the resized (and possibly flipped) image of size `resized`, in the
/// original image of size `original`, clipped to it.
pub fn to_original(
    b: [f64; 4],
    resized: (u32, u32),
    original: (u32, u32),
    flipped: bool,
) -> [f64; 4] {
    let b = if flipped { flip_box(b, resized.0) } else { b };
    let o = resize_box(b, resized, original);
    let (w, h) = (original.0 as f64, original.1 as f64);
    [
        o[0].clamp(0.0, w),
        o[1].clamp(0.0, h),
        o[2].clamp(0.0, w),
        o[3].clamp(0.0, h),
    ]
}

/// `v` rounded up to a multiple of `divisor` (1: unchanged).
pub fn pad_to(v: u32, divisor: u32) -> u32 {
    v.div_ceil(divisor) * divisor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_side_then_longer_cap() {
        // 500x375 VOC image at 600/1000: scale 1.6, 800x600.
        assert_eq!(target_size((500, 375), 600, 1000), (800, 600));
        // 1000x200 panorama: 600 would make 3000 > 1000, so the longer side is 1000.
        assert_eq!(target_size((1000, 200), 600, 1000), (1000, 200));
        // Portrait.
        assert_eq!(target_size((320, 480), 320, 800), (320, 480));
        assert_eq!(target_size((333, 500), 600, 1000), (600, 901));
    }

    #[test]
    fn the_image_extent_maps_exactly() {
        let from = (333, 500);
        let to = target_size(from, 600, 1000);
        let full = [0.0, 0.0, from.0 as f64, from.1 as f64];
        assert_eq!(
            resize_box(full, from, to),
            [0.0, 0.0, to.0 as f64, to.1 as f64]
        );
    }

    #[test]
    fn flip_twice_is_the_identity_and_round_trip_inverts() {
        let b = [3.0, 4.0, 100.5, 77.25];
        assert_eq!(flip_box(flip_box(b, 320), 320), b);
        let (orig, rs) = ((427, 320), (800, 600));
        let there = flip_box(resize_box(b, orig, rs), rs.0);
        let back = to_original(there, rs, orig, true);
        for k in 0..4 {
            assert!((back[k] - b[k]).abs() < 1e-9, "{back:?} vs {b:?}");
        }
    }

    #[test]
    fn inverse_mapping_clips() {
        let b = to_original([-5.0, -1.0, 900.0, 700.0], (800, 600), (400, 300), false);
        assert_eq!(b, [0.0, 0.0, 400.0, 300.0]);
    }

    #[test]
    fn padding_rounds_up() {
        assert_eq!(pad_to(600, 32), 608);
        assert_eq!(pad_to(608, 32), 608);
        assert_eq!(pad_to(601, 1), 601);
    }
}
