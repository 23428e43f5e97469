//! Box regression targets (Faster R-CNN's parameterization, R-CNN's eq. 1–4: centre offsets in
//! units of the reference box's size, log size ratios), encoded and decoded as torchvision's
//! `BoxCoder` does, in the continuous box convention of `data::detection`.
//!
//! py-faster-rcnn and Detectron work on 1-pixel-inclusive boxes with `+1` widths; in continuous
//! coordinates (`x2 = x2_inclusive + 1`) their widths and centres are exactly these, so one
//! formula serves both. Their normalization of the head's targets by standard deviations
//! (0.1, 0.1, 0.2, 0.2) is `weights` (10, 10, 5, 5); the RPN's are (1, 1, 1, 1). Decoded sizes
//! are clamped at `log(1000 / 16)` as Detectron and torchvision clamp them.
use tch::{Kind, Tensor};

/// The largest log size ratio a decoded box may take (Detectron's `BBOX_XFORM_CLIP`).
pub fn size_clip() -> f64 {
    (1000.0f64 / 16.0).ln()
}

/// Regression targets `[N, 4]` (dx, dy, dw, dh) that move `reference` boxes onto `target` boxes,
/// both `[N, 4]`, times `weights`.
pub fn encode(reference: &Tensor, target: &Tensor, weights: [f64; 4]) -> Tensor {
    let (rx, ry, rw, rh) = centres(reference);
    let (tx, ty, tw, th) = centres(target);
    let dx = (tx - &rx) / &rw * weights[0];
    let dy = (ty - &ry) / &rh * weights[1];
    let dw = (tw / rw).log() * weights[2];
    let dh = (th / rh).log() * weights[3];
    Tensor::stack(&[dx, dy, dw, dh], 1)
}

/// The boxes `[N, 4]` that `deltas` `[N, 4]` (divided by `weights`) make of `reference`.
pub fn decode(reference: &Tensor, deltas: &Tensor, weights: [f64; 4]) -> Tensor {
    let (cx, cy, w, h) = centres(&reference.to_kind(deltas.kind()));
    let d = |i: i64, wt: f64| deltas.select(1, i) / wt;
    let clip = size_clip();
    let px = d(0, weights[0]) * &w + cx;
    let py = d(1, weights[1]) * &h + cy;
    let pw = d(2, weights[2]).clamp_max(clip).exp() * w;
    let ph = d(3, weights[3]).clamp_max(clip).exp() * h;
    let (hw, hh) = (&pw * 0.5, &ph * 0.5);
    Tensor::stack(&[&px - &hw, &py - &hh, px + hw, py + hh], 1)
}

/// Centre x, centre y, width, height of boxes `[N, 4]`.
fn centres(b: &Tensor) -> (Tensor, Tensor, Tensor, Tensor) {
    let b = b.to_kind(if b.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    });
    let w = b.select(1, 2) - b.select(1, 0);
    let h = b.select(1, 3) - b.select(1, 1);
    let cx = b.select(1, 0) + &w * 0.5;
    let cy = b.select(1, 1) + &h * 0.5;
    (cx, cy, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_the_encoding_gives_the_target_back() {
        let r = Tensor::from_slice(&[0f32, 0., 16., 16., 10., 20., 50., 30.]).view([2, 4]);
        let t = Tensor::from_slice(&[2f32, -3., 20., 10., 0., 0., 100., 90.]).view([2, 4]);
        for w in [[1.0; 4], [10.0, 10.0, 5.0, 5.0]] {
            let back = decode(&r, &encode(&r, &t, w), w);
            assert!((back - &t).abs().max().double_value(&[]) < 1e-4);
        }
    }

    #[test]
    fn a_box_onto_itself_is_zero_and_shifts_are_in_box_units() {
        let r = Tensor::from_slice(&[0f32, 0., 16., 8.]).view([1, 4]);
        let t = Tensor::from_slice(&[8f32, 4., 24., 12.]).view([1, 4]);
        assert_eq!(
            encode(&r, &r, [1.0; 4])
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        let d = Vec::<f32>::try_from(encode(&r, &t, [10.0, 10.0, 5.0, 5.0]).reshape([-1])).unwrap();
        assert_eq!(d, vec![5.0, 5.0, 0.0, 0.0]);
    }

    #[test]
    fn huge_size_deltas_are_clamped() {
        let r = Tensor::from_slice(&[0f32, 0., 16., 16.]).view([1, 4]);
        let d = Tensor::from_slice(&[0f32, 0., 50., 50.]).view([1, 4]);
        let b = decode(&r, &d, [1.0; 4]);
        let w = b.double_value(&[0, 2]) - b.double_value(&[0, 0]);
        assert!((w - 1000.0).abs() < 1e-2, "{w}");
    }
}
