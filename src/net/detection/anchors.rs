//! The RPN's anchors (Faster R-CNN §3.1, as py-faster-rcnn's `generate_anchors` and Detectron
//! build them for the paper's detectors): at each position of the stride-16 conv4_x map, one box
//! per (scale, aspect ratio), centred on the position's 16×16 cell.
//!
//! py-faster-rcnn's construction, kept to the pixel because the published models and numbers
//! depend on it: a base box of `stride`×`stride` pixels; for each ratio r = h/w, width
//! `round(sqrt(area / r))` and height `round(width · r)` (numpy's round: halves to even); each
//! scaled by every scale; boxes centred at the base box's centre. py-faster-rcnn's boxes are
//! 1-pixel inclusive (`x2 = x1 + w - 1`); here they are in the continuous convention of
//! `data::detection` (`x2 = x1 + w`), the same pixels.
use tch::{Device, Kind, Tensor};

/// `stride`'s cell anchors `[A, 4]` (A = ratios × scales, ratio-major as py-faster-rcnn orders
/// them), continuous coordinates relative to the cell's top-left corner.
pub fn cell_anchors(stride: f64, ratios: &[f64], scales: &[f64]) -> Vec<[f64; 4]> {
    let centre = 0.5 * (stride - 1.0);
    let mut out = Vec::with_capacity(ratios.len() * scales.len());
    for &r in ratios {
        let w = round_half_even((stride * stride / r).sqrt());
        let h = round_half_even(w * r);
        for &s in scales {
            let (sw, sh) = (w * s, h * s);
            out.push([
                centre - 0.5 * (sw - 1.0),
                centre - 0.5 * (sh - 1.0),
                centre + 0.5 * (sw - 1.0) + 1.0,
                centre + 0.5 * (sh - 1.0) + 1.0,
            ]);
        }
    }
    out
}

/// numpy's `round`: to the nearest integer, halves to the even one.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// Every anchor of an `h`×`w` feature map `[h · w · A, 4]` (position-major, then the cell
/// anchors' order, as the RPN's outputs are laid out), float32 on `device`.
pub fn grid_anchors(cell: &[[f64; 4]], stride: f64, h: i64, w: i64, device: Device) -> Tensor {
    let a = cell.len() as i64;
    let flat: Vec<f32> = cell.iter().flat_map(|b| b.map(|v| v as f32)).collect();
    let cell = Tensor::from_slice(&flat).view([1, a, 4]).to_device(device);
    let opts = (Kind::Float, device);
    let ys = Tensor::arange(h, opts) * stride;
    let xs = Tensor::arange(w, opts) * stride;
    let grid = Tensor::meshgrid_indexing(&[&ys, &xs], "ij");
    let (y, x) = (grid[0].reshape([-1]), grid[1].reshape([-1]));
    let shifts = Tensor::stack(&[&x, &y, &x, &y], 1).view([-1, 1, 4]);
    (shifts + cell).view([-1, 4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_anchors_are_py_faster_rcnns_to_the_pixel() {
        // py-faster-rcnn's generate_anchors() (base 16, ratios 0.5/1/2, scales 8/16/32), as
        // numpy prints it, in its inclusive convention (x2 + 1 here).
        let want = [
            [-84., -40., 99., 55.],
            [-176., -88., 191., 103.],
            [-360., -184., 375., 199.],
            [-56., -56., 71., 71.],
            [-120., -120., 135., 135.],
            [-248., -248., 263., 263.],
            [-36., -80., 51., 95.],
            [-80., -168., 95., 183.],
            [-168., -344., 183., 359.],
        ];
        let got = cell_anchors(16.0, &[0.5, 1.0, 2.0], &[8.0, 16.0, 32.0]);
        for (g, w) in got.iter().zip(want) {
            assert_eq!(*g, [w[0], w[1], w[2] + 1.0, w[3] + 1.0]);
        }
    }

    #[test]
    fn halves_round_to_even_as_numpy() {
        assert_eq!(round_half_even(11.5), 12.0);
        assert_eq!(round_half_even(12.5), 12.0);
        assert_eq!(round_half_even(22.627), 23.0);
        assert_eq!(round_half_even(-0.5), -0.0);
    }

    #[test]
    fn the_grid_shifts_each_cell_by_the_stride_position_major() {
        let cell = [[0.0, 0.0, 16.0, 16.0], [-8.0, -8.0, 24.0, 24.0]];
        let g = grid_anchors(&cell, 16.0, 2, 3, Device::Cpu);
        assert_eq!(g.size(), [12, 4]);
        // Position (row 1, column 2), second anchor: shifted by (32, 16).
        let v = Vec::<f32>::try_from(g.get(11)).unwrap();
        assert_eq!(v, vec![24.0, 8.0, 56.0, 40.0]);
    }
}
