//! The views of §3.4's best testing protocol (Table 4): "we adopt the fully-convolutional form
//! ... and average the scores at multiple scales (images are resized such that the shorter side
//! is in {224, 256, 384, 480, 640})". Each evaluation image is resized whole, aspect kept, to
//! every shorter side of the list (the flips are added by the evaluator). Global average pooling
//! makes the networks take any input size, so no crop is taken; views of the same size (same
//! scale and aspect ratio) are bucketed together to share forward passes.
//!
//! Normalization: values in [0, 1] minus the per-channel mean (the spatial average of the
//! training mean image). The per-pixel mean image has the size of the training crops and cannot
//! be subtracted from a whole image of another size; the training crops come from random places
//! of rescaled images, so their per-pixel mean is close to constant over positions anyway.
use super::image::{chw_planes, resize_shorter};
use image::RgbImage;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

/// One batch of evaluation images with all their multi-scale views, grouped by view size.
pub struct ScaledBatch {
    /// [B] int64 class indices of the images.
    pub labels: Tensor,
    pub groups: Vec<ViewGroup>,
}

/// Same-size views: [k, 3, h, w] float32 normalized images (unflipped) and, for each, the
/// position of its image in the batch.
pub struct ViewGroup {
    pub images: Tensor,
    /// [k] int64 in 0..B.
    pub owners: Tensor,
}

/// A [`ViewGroup`] on the host: `pixels` holds the views as [k, 3, h, w] uint8.
#[derive(Debug, Clone, PartialEq)]
pub struct HostGroup {
    pub h: u32,
    pub w: u32,
    pub pixels: Vec<u8>,
    pub owners: Vec<i64>,
}

/// Every image of `images` resized to every shorter side of `scales` (on the current rayon
/// pool), bucketed by size; groups in order of first appearance, scales outermost, images in
/// order within a group.
pub fn group_views(images: &[RgbImage], scales: &[u32]) -> Vec<HostGroup> {
    let jobs: Vec<(u32, usize)> = scales
        .iter()
        .flat_map(|&s| (0..images.len()).map(move |i| (s, i)))
        .collect();
    let views: Vec<(u32, u32, Vec<u8>)> = jobs
        .par_iter()
        .map(|&(s, i)| {
            let r = resize_shorter(&images[i], s);
            (r.height(), r.width(), chw_planes(&r))
        })
        .collect();
    let mut groups: Vec<HostGroup> = Vec::new();
    for ((h, w, px), &(_, i)) in views.into_iter().zip(&jobs) {
        let at = groups.iter().position(|g| (g.h, g.w) == (h, w));
        let g = match at {
            Some(k) => &mut groups[k],
            None => {
                groups.push(HostGroup {
                    h,
                    w,
                    pixels: Vec::new(),
                    owners: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        g.pixels.extend_from_slice(&px);
        g.owners.push(i as i64);
    }
    groups
}

/// [3] per-channel mean of a [3, H, W] mean image.
pub fn channel_mean(mean_image: &Tensor) -> Tensor {
    mean_image.mean_dim([1i64, 2].as_slice(), false, Kind::Float)
}

/// Sends host groups to `device` as a [`ScaledBatch`], normalized with `channel_mean` ([3], on
/// `device`).
pub fn upload(
    groups: Vec<HostGroup>,
    labels: &[i64],
    channel_mean: &Tensor,
    device: Device,
) -> ScaledBatch {
    let mean = channel_mean.view([1, 3, 1, 1]);
    let groups = groups
        .into_iter()
        .map(|g| {
            let k = g.owners.len() as i64;
            let images = Tensor::from_slice(&g.pixels)
                .view([k, 3, g.h as i64, g.w as i64])
                .to_device_(device, Kind::Uint8, true, false)
                .to_kind(Kind::Float)
                / 255.0
                - &mean;
            ViewGroup {
                images,
                owners: Tensor::from_slice(&g.owners).to_device(device),
            }
        })
        .collect();
    ScaledBatch {
        labels: Tensor::from_slice(labels).to_device(device),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::image::to_rgb_images;

    fn img(w: u32, h: u32, seed: u8) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7) as u8 ^ seed,
                (y * 5) as u8,
                seed.wrapping_add((x + y) as u8),
            ])
        })
    }

    #[test]
    fn every_image_once_per_scale_bucketed_by_size() {
        // Two landscape images of the same size, one portrait, one square.
        let images = vec![
            img(40, 30, 1),
            img(30, 45, 2),
            img(40, 30, 3),
            img(20, 20, 4),
        ];
        let groups = group_views(&images, &[15, 60]);
        let mut per_image = vec![0; images.len()];
        for g in &groups {
            assert_eq!(g.pixels.len(), g.owners.len() * 3 * (g.h * g.w) as usize);
            for &o in &g.owners {
                per_image[o as usize] += 1;
            }
        }
        assert_eq!(per_image, vec![2, 2, 2, 2]);
        let sizes: Vec<(u32, u32, Vec<i64>)> = groups
            .iter()
            .map(|g| (g.h, g.w, g.owners.clone()))
            .collect();
        assert_eq!(
            sizes,
            vec![
                (15, 20, vec![0, 2]),
                (23, 15, vec![1]),
                (15, 15, vec![3]),
                (60, 80, vec![0, 2]),
                (90, 60, vec![1]),
                (60, 60, vec![3]),
            ]
        );
        // The view is resize_shorter's image, as [3, h, w] planes.
        let r = resize_shorter(&images[1], 60);
        let g = &groups[4];
        assert_eq!(g.pixels, chw_planes(&r));
        assert_eq!(g.pixels[(90 * 60) + 60 + 2], r.get_pixel(2, 1).0[1]);
    }

    #[test]
    fn upload_normalizes_with_the_channel_mean_and_round_trips_tensors() {
        let images = vec![img(6, 4, 9), img(6, 4, 10)];
        let t = Tensor::from_slice(&[chw_planes(&images[0]), chw_planes(&images[1])].concat())
            .view([2, 3, 4, 6]);
        assert_eq!(to_rgb_images(&t), images);
        let mean_image = Tensor::rand([3, 5, 5], (Kind::Float, Device::Cpu));
        let cm = channel_mean(&mean_image);
        let b = upload(group_views(&images, &[4]), &[3, 1], &cm, Device::Cpu);
        assert_eq!(b.groups.len(), 1);
        let want = t.to_kind(Kind::Float) / 255.0 - cm.view([1, 3, 1, 1]);
        assert!(b.groups[0].images.allclose(&want, 1e-6, 1e-6, false));
        assert_eq!(Vec::<i64>::try_from(&b.labels).unwrap(), vec![3, 1]);
        let m: Vec<f32> = Vec::try_from(cm).unwrap();
        let direct: f64 = mean_image.get(1).mean(Kind::Double).double_value(&[]);
        assert!((m[1] as f64 - direct).abs() < 1e-6);
    }
}
