//! RoIAlign (Mask R-CNN's region feature extraction, as torchvision's `roi_align` and Detectron's
//! `RoIAlign` compute it) for the Faster R-CNN head of the paper's appendix "Object Detection
//! Baselines", where region features are pooled from the conv4_x map before conv5_1.
//!
//! Built from tch ops, not by calling torchvision's kernel: torchvision's `_C.so` links
//! `libtorch_python.so`, which needs the Python interpreter's shared library loaded first, so
//! a Python-free binary can only reach it by finding and loading `libpython` itself (it works on
//! this machine's pyenv Python, not on a statically linked one): too fragile for a user's
//! machine. Equality with torchvision's outputs and gradients is tested instead
//! (`tests/it/vision_ops.rs`).
//!
//! The computation: each output bin is the mean of `gh × gw` bilinear samples, and bilinear
//! interpolation is separable, with torchvision's border rules per axis (a sample below -1 or
//! above the size is zero; one in [-1, 0] is clamped to 0; at or past the last row or column
//! both taps are that row or column). So a region's output is `Ay · F · Axᵀ` per channel, with
//! `Ay` (`[PH, H]`) and `Ax` (`[PW, W]`) the summed sampling weights of each bin, built on the host
//! from the boxes (no gradient flows to the boxes, as in torchvision). Two batched matmuls per
//! image: exact, differentiable through autograd, and dense (the first costs K·C·H·W·PW
//! multiply-adds, a few per cent of the conv5_x head that follows).
use anyhow::{ensure, Result};
use tch::{Device, Kind, Tensor};

/// How regions are sampled: torchvision's `roi_align` arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiAlign {
    /// Output bins (PH, PW).
    pub output: (i64, i64),
    /// Feature-map pixels per image pixel (1/16 for the conv4_x map).
    pub spatial_scale: f64,
    /// Samples per bin along each axis; 0: `ceil(roi size / bins)` per region (adaptive).
    pub sampling_ratio: i64,
    /// Shift the boxes by -0.5 pixel (Detectron2's `aligned=True`); false: Detectron's and the
    /// original RoIAlign's convention.
    pub aligned: bool,
}

/// Upper bound of the dense intermediate of one chunk of regions, in elements.
const CHUNK_ELEMENTS: i64 = 1 << 26;

impl RoiAlign {
    /// Region features `[K, C, PH, PW]` of `features` `[N, C, H, W]` for `rois` `[K, 5]`
    /// (batch index, x1, y1, x2, y2 in image pixels), on the features' device and kind.
    pub fn forward(&self, features: &Tensor, rois: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = features.size4()?;
        let k = rois.size2()?.0;
        ensure!(
            rois.size2()?.1 == 5,
            "rois must be [K, 5], got {:?}",
            rois.size()
        );
        let (ph, pw) = self.output;
        ensure!(
            ph > 0 && pw > 0,
            "RoIAlign output must be positive, got {ph}x{pw}"
        );
        let host: Vec<f32> = Vec::try_from(
            rois.to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .reshape([-1]),
        )?;
        let (dev, kind) = (features.device(), features.kind());
        let mut out = Tensor::zeros([k, c, ph, pw], (kind, dev));
        for b in 0..n {
            let idx: Vec<i64> = (0..k)
                .filter(|&i| host[i as usize * 5] as i64 == b)
                .collect();
            if idx.is_empty() {
                continue;
            }
            let fb = features.get(b);
            let per = (c * h.max(w) * ph.max(pw)).max(1);
            for part in idx.chunks((CHUNK_ELEMENTS / per).max(1) as usize) {
                let boxes: Vec<[f32; 4]> = part
                    .iter()
                    .map(|&i| {
                        let r = &host[i as usize * 5..i as usize * 5 + 5];
                        [r[1], r[2], r[3], r[4]]
                    })
                    .collect();
                let (ay, ax) = self.weights(&boxes, h, w);
                let kk = part.len() as i64;
                let ay = Tensor::from_slice(&ay)
                    .view([kk, 1, ph, h])
                    .to_device(dev)
                    .to_kind(kind);
                let ax = Tensor::from_slice(&ax)
                    .view([kk, 1, pw, w])
                    .to_device(dev)
                    .to_kind(kind);
                // [K, C, PH, W] = Ay [K, 1, PH, H] @ F [C, H, W]; then @ Axᵀ [K, 1, W, PW].
                let rows = ay.matmul(&fb.unsqueeze(0));
                let pooled = rows.matmul(&ax.transpose(-1, -2));
                let at = Tensor::from_slice(part).to_device(dev);
                out = out.index_copy(0, &at, &pooled);
            }
        }
        Ok(out)
    }

    /// The sampling-weight matrices of `boxes`: `Ay` `[K, PH, H]` and `Ax` `[K, PW, W]`, row-major,
    /// each divided by its axis' sample count (their product divides by gh·gw).
    fn weights(&self, boxes: &[[f32; 4]], h: i64, w: i64) -> (Vec<f32>, Vec<f32>) {
        let (ph, pw) = self.output;
        let mut ay = vec![0f32; boxes.len() * (ph * h) as usize];
        let mut ax = vec![0f32; boxes.len() * (pw * w) as usize];
        let scale = self.spatial_scale as f32;
        let offset = if self.aligned { 0.5f32 } else { 0.0 };
        for (k, b) in boxes.iter().enumerate() {
            let (x1, y1) = (b[0] * scale - offset, b[1] * scale - offset);
            let (x2, y2) = (b[2] * scale - offset, b[3] * scale - offset);
            let (mut rw, mut rh) = (x2 - x1, y2 - y1);
            if !self.aligned {
                rw = rw.max(1.0);
                rh = rh.max(1.0);
            }
            let ky = &mut ay[k * (ph * h) as usize..(k + 1) * (ph * h) as usize];
            self.axis(ky, y1, rh, ph, h);
            let kx = &mut ax[k * (pw * w) as usize..(k + 1) * (pw * w) as usize];
            self.axis(kx, x1, rw, pw, w);
        }
        (ay, ax)
    }

    /// One region's weights along one axis (`start`, `size` in feature pixels, `bins` bins over
    /// `len` pixels) into `m` (`[bins, len]`), as torchvision's bilinear sampling per axis.
    fn axis(&self, m: &mut [f32], start: f32, size: f32, bins: i64, len: i64) {
        let bin = size / bins as f32;
        let grid = if self.sampling_ratio > 0 {
            self.sampling_ratio
        } else {
            (size / bins as f32).ceil() as i64
        };
        for p in 0..bins {
            for i in 0..grid {
                let mut y = start + p as f32 * bin + (i as f32 + 0.5) * bin / grid as f32;
                if y < -1.0 || y > len as f32 {
                    continue;
                }
                if y <= 0.0 {
                    y = 0.0;
                }
                let mut lo = y as i64;
                let hi;
                if lo >= len - 1 {
                    lo = len - 1;
                    hi = len - 1;
                    y = lo as f32;
                } else {
                    hi = lo + 1;
                }
                let l = y - lo as f32;
                let row = &mut m[(p * len) as usize..((p + 1) * len) as usize];
                row[lo as usize] += (1.0 - l) / grid as f32;
                row[hi as usize] += l / grid as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn align(out: i64, scale: f64, ratio: i64, aligned: bool) -> RoiAlign {
        RoiAlign {
            output: (out, out),
            spatial_scale: scale,
            sampling_ratio: ratio,
            aligned,
        }
    }

    #[test]
    fn a_box_on_whole_pixels_with_one_sample_reads_the_pixels() {
        // aligned: box [0, 0, 4, 4] at scale 1, 4x4 bins, 1 sample each: samples at 0.5 - 0.5 =
        // pixel centres 0, 1, 2, 3 exactly, so the output is the map itself.
        let f = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]);
        let rois = Tensor::from_slice(&[0f32, 0., 0., 4., 4.]).view([1, 5]);
        let o = align(4, 1.0, 1, true).forward(&f, &rois).unwrap();
        assert_eq!(o.view([4, 4]), f.view([4, 4]));
    }

    #[test]
    fn a_bin_is_the_mean_of_bilinear_samples() {
        // One bin over [0, 2] x [0, 2] (not aligned), 2x2 samples at 0.5 and 1.5: the mean of
        // the map interpolated there = the map's value at (1, 1) for a linear map.
        let f =
            Tensor::from_slice(&[0f32, 1., 2., 10., 11., 12., 20., 21., 22.]).view([1, 1, 3, 3]);
        let rois = Tensor::from_slice(&[0f32, 0., 0., 2., 2.]).view([1, 5]);
        let o = align(1, 1.0, 2, false).forward(&f, &rois).unwrap();
        assert!((o.double_value(&[0, 0, 0, 0]) - 11.0).abs() < 1e-6);
    }

    #[test]
    fn samples_outside_the_map_are_zero_and_regions_follow_their_image() {
        let f = Tensor::ones([2, 1, 4, 4], (Kind::Float, Device::Cpu));
        let f = f.shallow_clone() * Tensor::from_slice(&[1f32, 2.]).view([2, 1, 1, 1]);
        // Far outside the map: every sample below -1, so zero; inside image 1: twos.
        let rois =
            Tensor::from_slice(&[0f32, -20., -20., -10., -10., 1., 0., 0., 4., 4.]).view([2, 5]);
        let o = align(2, 1.0, 2, false).forward(&f, &rois).unwrap();
        assert_eq!(o.get(0).sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(
            o.get(1),
            Tensor::full([1, 2, 2], 2.0, (Kind::Float, Device::Cpu))
        );
    }

    #[test]
    fn gradients_reach_the_features_only() {
        let f = Tensor::rand([1, 2, 6, 6], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let rois = Tensor::from_slice(&[0f32, 1., 1., 5., 4.]).view([1, 5]);
        let o = align(2, 1.0, 0, false).forward(&f, &rois).unwrap();
        o.sum(Kind::Float).backward();
        // Each output is a convex combination: gradients sum to the number of outputs.
        let g = f.grad().sum(Kind::Float).double_value(&[]);
        assert!((g - 8.0).abs() < 1e-4, "{g}");
    }
}
