//! Batches of detection images for Faster R-CNN (the paper's appendix; Tables 7–8), deterministic
//! in (seed, iteration) like the classification loader ([`crate::data::EpochOrder`]), so a resumed
//! run sees the same images and flips.
//!
//! Training: the images holding at least one training target (an object neither difficult nor
//! crowd, with a positive area) in per-epoch permutations; torchvision's reference drops images
//! without annotations the same way, py-faster-rcnn's `filter_roidb` those without usable RoIs.
//! Difficult and crowd objects stay in the split for scoring but are never targets (py-faster-
//! rcnn's `use_diff = False`; torchvision's `iscrowd` filter). Each image is resized by
//! [`transforms`](super::transforms) and flipped with probability 1/2 (`data.detection.flip`).
//!
//! A batch holds images of different sizes: zero-padded at the bottom and right to the largest,
//! then to a multiple of `data.detection.size_divisor`, after normalization (so padding is the
//! mean colour, as py-faster-rcnn's `im_list_to_blob` and torchvision's `batch_images` pad);
//! each image's resized size, original size and flip are kept for the inverse mapping.
use super::transforms::{flip_box, pad_to, resize_box, target_size};
use super::{DetectionSplit, GtImage};
use crate::config::DetectionConfig;
use crate::data::rng::{mix, SplitMix64};
use crate::data::EpochOrder;
use anyhow::{bail, Result};
use image::RgbImage;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

/// Per-channel normalization in [0, 1] units: `(pixel / 255 - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// py-faster-rcnn's `PIXEL_MEANS` (no std), in [0, 1] units. A detector on one of our
    /// backbones passes that backbone's own per-channel mean instead (`data::scales`' rule).
    pub fn faster_rcnn() -> Self {
        let m = crate::paper::FASTER_RCNN_PIXEL_MEANS_RGB;
        Normalization {
            mean: m.map(|v| (v / 255.0) as f32),
            std: [1.0; 3],
        }
    }

    /// The classification loader's rule for whole images of any size (`data::scales`): values
    /// in [0, 1] minus the per-channel mean of a backbone's [3, H, W] training mean image, no std.
    pub fn from_mean_image(mean_image: &Tensor) -> Result<Self> {
        let m = Vec::<f32>::try_from(crate::data::scales::channel_mean(mean_image))?;
        if m.len() != 3 {
            bail!("a mean image has 3 channels, this one {}", m.len());
        }
        Ok(Normalization {
            mean: [m[0], m[1], m[2]],
            std: [1.0; 3],
        })
    }
}

/// The sizes of the transform (from `[data.detection]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub shorter: u32,
    pub max_side: u32,
    pub divisor: u32,
    pub flip: bool,
}

impl Sizes {
    pub fn of(d: &DetectionConfig) -> Self {
        Sizes {
            shorter: d.shorter_side,
            max_side: d.max_side,
            divisor: d.size_divisor,
            flip: d.flip,
        }
    }
}

/// One image's training targets, in the resized (and flipped) image.
pub struct Target {
    /// [n, 4] float32 `[x1, y1, x2, y2]`.
    pub boxes: Tensor,
    /// [n] int64 contiguous classes.
    pub classes: Tensor,
}

/// A batch of images of different sizes.
pub struct DetectionBatch {
    /// [B, 3, H, W] float32, normalized, zero-padded bottom/right.
    pub images: Tensor,
    /// Positions in the split's `images`.
    pub indices: Vec<usize>,
    pub image_ids: Vec<u64>,
    /// `(w, h)` as annotated.
    pub original_sizes: Vec<(u32, u32)>,
    /// `(w, h)` after resizing, before padding.
    pub sizes: Vec<(u32, u32)>,
    pub flipped: Vec<bool>,
    pub targets: Vec<Target>,
}

impl DetectionBatch {
    /// A box predicted on image `k` of the batch, in its original image (clipped).
    pub fn to_original(&self, k: usize, b: [f64; 4]) -> [f64; 4] {
        super::transforms::to_original(b, self.sizes[k], self.original_sizes[k], self.flipped[k])
    }
}

/// Refuses a photograph whose decoded size differs from its annotation's.
pub fn check_decoded_size(img: &GtImage, photo: &RgbImage) -> Result<()> {
    if photo.dimensions() != (img.width, img.height) {
        bail!(
            "{}: the image is {}x{} pixels but its annotation says {}x{} (image {}, id {})",
            img.path.display(),
            photo.width(),
            photo.height(),
            img.width,
            img.height,
            img.name,
            img.id
        );
    }
    Ok(())
}

/// The training and test batches of one detection split.
pub struct DetectionLoader {
    split: DetectionSplit,
    /// Positions of the images with at least one training target.
    trainable: Vec<usize>,
    order: EpochOrder,
    seed: u64,
    sizes: Sizes,
    norm: Normalization,
    pool: rayon::ThreadPool,
    device: Device,
}

/// An image prepared on the host: resized, flipped, with its targets.
struct Prepared {
    pixels: RgbImage,
    boxes: Vec<[f64; 4]>,
    classes: Vec<i64>,
}

impl DetectionLoader {
    /// `workers` decoding threads (0 = one per core).
    pub fn new(
        split: DetectionSplit,
        sizes: Sizes,
        norm: Normalization,
        seed: u64,
        workers: usize,
        device: Device,
    ) -> Result<Self> {
        let trainable: Vec<usize> = (0..split.images.len())
            .filter(|&i| split.images[i].objects.iter().any(is_target))
            .collect();
        Ok(DetectionLoader {
            order: EpochOrder::new(seed, trainable.len()),
            split,
            trainable,
            seed,
            sizes,
            norm,
            pool: crate::data::folder::pool(workers)?,
            device,
        })
    }

    pub fn split(&self) -> &DetectionSplit {
        &self.split
    }

    /// Images a training epoch visits.
    pub fn train_len(&self) -> usize {
        self.trainable.len()
    }

    /// The training batch of iteration `iteration`: positions `[it*B, (it+1)*B)` of the endless
    /// per-epoch permutations of the trainable images, each flipped by a coin drawn from
    /// (seed, iteration, position).
    pub fn train_batch(&mut self, iteration: u64, batch_size: usize) -> Result<DetectionBatch> {
        if self.trainable.is_empty() {
            bail!(
                "the training split has no image with a training target (an object neither \
                 difficult nor crowd, of positive area) among its {} images",
                self.split.images.len()
            );
        }
        let idx: Vec<usize> = self
            .order
            .indices(iteration, batch_size)
            .into_iter()
            .map(|i| self.trainable[i as usize])
            .collect();
        let mut r = SplitMix64::new(mix(self.seed, iteration ^ 0xf11b));
        let flips: Vec<bool> = (0..batch_size)
            .map(|_| r.below(2) == 1 && self.sizes.flip)
            .collect();
        self.batch(&idx, &flips)
    }

    /// The split's images in order, `batch_size` at a time, unflipped.
    pub fn test_batches(
        &self,
        batch_size: usize,
    ) -> impl Iterator<Item = Result<DetectionBatch>> + '_ {
        let n = self.split.images.len();
        (0..n).step_by(batch_size.max(1)).map(move |lo| {
            let idx: Vec<usize> = (lo..(lo + batch_size).min(n)).collect();
            self.batch(&idx, &vec![false; idx.len()])
        })
    }

    fn batch(&self, idx: &[usize], flips: &[bool]) -> Result<DetectionBatch> {
        let prepared: Vec<Prepared> = self.pool.install(|| {
            idx.par_iter()
                .zip(flips)
                .map(|(&i, &f)| prepare(&self.split.images[i], self.sizes, f))
                .collect::<Result<_>>()
        })?;
        let images = pack(&prepared, self.sizes.divisor, &self.norm).to_device(self.device);
        let targets = prepared
            .iter()
            .map(|p| {
                let flat: Vec<f32> = p.boxes.iter().flatten().map(|&v| v as f32).collect();
                Target {
                    boxes: Tensor::from_slice(&flat)
                        .view([p.boxes.len() as i64, 4])
                        .to_device(self.device),
                    classes: Tensor::from_slice(&p.classes).to_device(self.device),
                }
            })
            .collect();
        let im = |i: usize| &self.split.images[i];
        Ok(DetectionBatch {
            images,
            indices: idx.to_vec(),
            image_ids: idx.iter().map(|&i| im(i).id).collect(),
            original_sizes: idx.iter().map(|&i| (im(i).width, im(i).height)).collect(),
            sizes: prepared.iter().map(|p| p.pixels.dimensions()).collect(),
            flipped: flips.to_vec(),
            targets,
        })
    }
}

/// A training target: neither difficult nor crowd, positive area.
fn is_target(o: &super::GtObject) -> bool {
    !o.difficult && !o.crowd && o.bbox[2] > o.bbox[0] && o.bbox[3] > o.bbox[1]
}

/// Decodes, resizes and (when `flip`) mirrors one image with its targets.
fn prepare(img: &GtImage, s: Sizes, flip: bool) -> Result<Prepared> {
    let photo = crate::data::image::decode_rgb(&img.path)?;
    check_decoded_size(img, &photo)?;
    let from = photo.dimensions();
    let to = target_size(from, s.shorter, s.max_side);
    let mut pixels = crate::data::image::resize_to(&photo, to);
    if flip {
        image::imageops::flip_horizontal_in_place(&mut pixels);
    }
    let (mut boxes, mut classes) = (Vec::new(), Vec::new());
    for o in img.objects.iter().filter(|o| is_target(o)) {
        let b = resize_box(o.bbox, from, to);
        boxes.push(if flip { flip_box(b, to.0) } else { b });
        classes.push(o.class as i64);
    }
    Ok(Prepared {
        pixels,
        boxes,
        classes,
    })
}

/// [B, 3, H, W] float32: each image normalized into the top-left corner of a zero canvas as
/// large as the largest image, rounded up to `divisor`.
fn pack(images: &[Prepared], divisor: u32, n: &Normalization) -> Tensor {
    let hh = pad_to(
        images.iter().map(|p| p.pixels.height()).max().unwrap_or(1),
        divisor,
    );
    let ww = pad_to(
        images.iter().map(|p| p.pixels.width()).max().unwrap_or(1),
        divisor,
    );
    let (hh, ww) = (hh as usize, ww as usize);
    let plane = hh * ww;
    let mut buf = vec![0f32; images.len() * 3 * plane];
    for (k, p) in images.iter().enumerate() {
        let w = p.pixels.width() as usize;
        let out = &mut buf[k * 3 * plane..(k + 1) * 3 * plane];
        for (i, px) in p.pixels.pixels().enumerate() {
            let (y, x) = (i / w, i % w);
            for c in 0..3 {
                out[c * plane + y * ww + x] = (px[c] as f32 / 255.0 - n.mean[c]) / n.std[c];
            }
        }
    }
    Tensor::from_slice(&buf)
        .view([images.len() as i64, 3, hh as i64, ww as i64])
        .to_kind(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mean_image_gives_its_channel_means() {
        let img = Tensor::from_slice(&[
            0.1f32, 0.3, 0.2, 0.2, 0.5, 0.5, 0.5, 0.5, 0.9, 0.7, 0.8, 0.8,
        ])
        .view([3, 2, 2]);
        let n = Normalization::from_mean_image(&img).unwrap();
        for (a, b) in n.mean.iter().zip([0.2f32, 0.5, 0.8]) {
            assert!((a - b).abs() < 1e-6, "{:?}", n.mean);
        }
        assert_eq!(n.std, [1.0; 3]);
    }
}
