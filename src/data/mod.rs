//! Data for §4.2 (CIFAR-10) and §3.4 (ImageNet): one batch interface over every source.
//!
//! The training loop sees only [`DataSource`]: `train_batch(iteration)` gives an augmented,
//! normalized batch on the training device, deterministic in (seed, iteration) so that a resumed
//! run sees exactly the batches an uninterrupted one would; `eval_batches` gives the single
//! original view of the test (or validation) split in order.
//!
//! Small images (CIFAR, synthetic) live in [`InMemory`]: one `u8` tensor on the device; the batch
//! index, crop offsets and flips are drawn on the host from a counter-based RNG and sent as one
//! small tensor; gathering, mean subtraction, padding, cropping and flipping are a handful of
//! tensor ops on the device.
pub mod rng;
pub mod synthetic;

use crate::config::{Augment, Config, Dataset};
use anyhow::{bail, Result};
use rng::SplitMix64;
use tch::{Device, Kind, Tensor};

/// One mini-batch on the training device.
pub struct Batch {
    /// [B, 3, H, W] float32, mean-subtracted (values in [0, 1] minus the per-pixel mean).
    pub images: Tensor,
    /// [B] int64 class indices.
    pub labels: Tensor,
}

/// Everything the training and evaluation loops need from a dataset.
pub trait DataSource {
    fn class_names(&self) -> &[String];
    fn num_classes(&self) -> usize {
        self.class_names().len()
    }
    /// Number of training images (after any validation hold-out).
    fn train_len(&self) -> usize;
    /// Number of images `eval_batches` yields.
    fn eval_len(&self) -> usize;
    /// Name of the evaluated split ("test" or "validation").
    fn eval_split(&self) -> &str;
    /// The augmented training batch of iteration `iteration` (0-based). Deterministic in
    /// (seed, iteration, batch_size): positions `[it*B, (it+1)*B)` of the endless stream of
    /// per-epoch permutations.
    fn train_batch(&mut self, iteration: u64, batch_size: usize) -> Result<Batch>;
    /// The evaluation split, single original view, in order.
    fn eval_batches(
        &mut self,
        batch_size: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>>;
    /// Ten-crop evaluation (Table 3): images [B, 10, 3, S, S]. Only ImageNet-style sources have it.
    fn eval_ten_crop(
        &mut self,
        _batch_size: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        bail!("ten-crop evaluation needs an ImageNet-style image folder (data.augment = \"imagenet\")")
    }
}

/// Opens the data source the config describes, on `device`.
pub fn open(cfg: &Config, device: Device) -> Result<Box<dyn DataSource>> {
    match cfg.data.dataset {
        Dataset::Synthetic => {
            let s = &cfg.data.synthetic;
            let data = synthetic::generate(
                cfg.model.classes(),
                s.train,
                s.test,
                s.image_size,
                cfg.run.seed,
            );
            Ok(Box::new(InMemory::new(
                data,
                cfg.data.augment,
                cfg.data.validation,
                cfg.run.seed,
                device,
            )?))
        }
        other => bail!("data.dataset = {other:?} is not available in this build yet"),
    }
}

/// Decoded images of a small-image dataset, on the host.
pub struct ImageSet {
    pub class_names: Vec<String>,
    /// [N, 3, H, W] uint8.
    pub train_images: Tensor,
    /// [N] int64.
    pub train_labels: Tensor,
    pub test_images: Tensor,
    pub test_labels: Tensor,
}

/// A dataset held whole on the device as `u8`, augmented there (§4.2).
pub struct InMemory {
    class_names: Vec<String>,
    train_images: Tensor,
    train_labels: Tensor,
    eval_images: Tensor,
    eval_labels: Tensor,
    eval_split: String,
    /// [3, H, W] float32 per-pixel mean of the training images, in [0, 1].
    mean: Tensor,
    augment: Augment,
    seed: u64,
    device: Device,
    /// (epoch, permutation) cache for `train_batch`.
    perm: Option<(u64, Vec<i64>)>,
}

impl InMemory {
    /// Moves `set` to `device`, holding out `validation` training images (a seeded random choice)
    /// as the evaluation split when it is non-zero.
    pub fn new(
        set: ImageSet,
        augment: Augment,
        validation: usize,
        seed: u64,
        device: Device,
    ) -> Result<Self> {
        let n = set.train_images.size()[0] as usize;
        if validation >= n {
            bail!("data.validation = {validation}: must be smaller than the {n} training images");
        }
        let (train_images, train_labels, eval_images, eval_labels, split) = if validation > 0 {
            let mut idx: Vec<i64> = (0..n as i64).collect();
            SplitMix64::new(seed ^ 0x005e_ed0f_5917).shuffle(&mut idx);
            let (val, train) = idx.split_at(validation);
            let val = Tensor::from_slice(val);
            let train = Tensor::from_slice(train);
            (
                set.train_images.index_select(0, &train),
                set.train_labels.index_select(0, &train),
                set.train_images.index_select(0, &val),
                set.train_labels.index_select(0, &val),
                "validation",
            )
        } else {
            (
                set.train_images,
                set.train_labels,
                set.test_images,
                set.test_labels,
                "test",
            )
        };
        let mean = train_images
            .to_kind(Kind::Float)
            .mean_dim(0, false, Kind::Float)
            / 255.0;
        Ok(InMemory {
            class_names: set.class_names,
            train_images: train_images.to_device(device),
            train_labels: train_labels.to_device(device),
            eval_images: eval_images.to_device(device),
            eval_labels: eval_labels.to_device(device),
            eval_split: split.to_string(),
            mean: mean.to_device(device),
            augment,
            seed,
            device,
            perm: None,
        })
    }

    /// The per-pixel mean image [3, H, W] (in [0, 1]) that is subtracted from every input.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    fn normalize(&self, u8_images: &Tensor) -> Tensor {
        u8_images.to_kind(Kind::Float) / 255.0 - &self.mean
    }

    fn epoch_perm(&mut self, epoch: u64) -> &[i64] {
        let n = self.train_len();
        if self.perm.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut p: Vec<i64> = (0..n as i64).collect();
            SplitMix64::new(rng::mix(self.seed, epoch ^ 0xe90c)).shuffle(&mut p);
            self.perm = Some((epoch, p));
        }
        &self.perm.as_ref().expect("just set").1
    }
}

/// §4.2's augmentation of a normalized batch: zero-pad by `pad`, take the crop at (`oy`, `ox`)
/// of each image, mirrored where `flip` is 1. `x`: [B, C, H, W]; `params`: [3, B] int64 rows
/// (oy, ox, flip) on x's device. One gather kernel after the pad.
pub fn pad_crop_flip(x: &Tensor, params: &Tensor, pad: i64) -> Tensor {
    let (b, _c, h, w) = x.size4().expect("4-d batch");
    let dev = x.device();
    let padded = x.constant_pad_nd([pad, pad, pad, pad]);
    let oy = params.get(0).unsqueeze(1);
    let ox = params.get(1).unsqueeze(1);
    let flip = params.get(2).unsqueeze(1).to_kind(Kind::Bool);
    let ar_h = Tensor::arange(h, (Kind::Int64, dev)).unsqueeze(0);
    let ar_w = Tensor::arange(w, (Kind::Int64, dev)).unsqueeze(0);
    let rows = (&oy + &ar_h).view([b, h, 1]);
    let cols =
        (&ox + ar_w.where_self(&flip.logical_not(), &(ar_w.neg() + (w - 1)))).view([b, 1, w]);
    let bi = Tensor::arange(b, (Kind::Int64, dev)).view([b, 1, 1]);
    // Advanced indices around a full slice: result [B, H, W, C], i.e. NHWC memory; the permute
    // gives the NCHW view of it (channels-last strides).
    padded
        .index(&[Some(bi), None, Some(rows), Some(cols)])
        .permute([0, 3, 1, 2])
}

impl DataSource for InMemory {
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn train_len(&self) -> usize {
        self.train_images.size()[0] as usize
    }
    fn eval_len(&self) -> usize {
        self.eval_images.size()[0] as usize
    }
    fn eval_split(&self) -> &str {
        &self.eval_split
    }

    fn train_batch(&mut self, iteration: u64, batch_size: usize) -> Result<Batch> {
        let n = self.train_len() as u64;
        let start = iteration * batch_size as u64;
        // Host side: indices of the batch, then crop offsets and flips, all from (seed, iteration).
        let mut host = Vec::with_capacity(4 * batch_size);
        for k in 0..batch_size as u64 {
            let pos = start + k;
            host.push(self.epoch_perm(pos / n)[(pos % n) as usize]);
        }
        let mut r = SplitMix64::new(rng::mix(self.seed, iteration));
        let pad = 4;
        for _ in 0..batch_size {
            host.push(r.below(2 * pad as u64 + 1) as i64);
        }
        for _ in 0..batch_size {
            host.push(r.below(2 * pad as u64 + 1) as i64);
        }
        for _ in 0..batch_size {
            host.push(r.below(2) as i64);
        }
        // One small host-to-device copy, asynchronous on CUDA.
        let params = Tensor::from_slice(&host)
            .view([4, batch_size as i64])
            .to_device_(self.device, Kind::Int64, true, false);
        let idx = params.get(0);
        let images = self.normalize(&self.train_images.index_select(0, &idx));
        let labels = self.train_labels.index_select(0, &idx);
        let images = match self.augment {
            Augment::Cifar => pad_crop_flip(&images, &params.narrow(0, 1, 3), pad),
            Augment::None => images,
            Augment::Imagenet => bail!("data.augment = \"imagenet\" needs an image-folder source"),
        };
        Ok(Batch { images, labels })
    }

    fn eval_batches(
        &mut self,
        batch_size: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let n = self.eval_len() as i64;
        let bs = batch_size as i64;
        let this = &*self;
        Ok(Box::new((0..n).step_by(batch_size).map(move |start| {
            let len = bs.min(n - start);
            Ok(Batch {
                images: this.normalize(&this.eval_images.narrow(0, start, len)),
                labels: this.eval_labels.narrow(0, start, len),
            })
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> InMemory {
        let set = synthetic::generate(4, 64, 16, 8, 3);
        InMemory::new(set, Augment::Cifar, 0, 7, Device::Cpu).unwrap()
    }

    #[test]
    fn batches_are_deterministic_in_seed_and_iteration() {
        let mut a = small();
        let mut b = small();
        let x = a.train_batch(5, 16).unwrap();
        let _ = b.train_batch(2, 16).unwrap();
        let y = b.train_batch(5, 16).unwrap();
        assert!(x.images.equal(&y.images) && x.labels.equal(&y.labels));
        let z = a.train_batch(6, 16).unwrap();
        assert!(!x.images.equal(&z.images));
    }

    #[test]
    fn an_epoch_visits_every_image_once() {
        let mut a = small();
        let mut seen: Vec<i64> = Vec::new();
        for it in 0..4 {
            let _ = a.train_batch(it, 16).unwrap();
        }
        // positions 0..64 are exactly epoch 0's permutation
        seen.extend_from_slice(a.epoch_perm(0));
        seen.sort();
        assert_eq!(seen, (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn crop_and_flip_move_pixels_as_specified() {
        // One 1-channel 4x4 image with values 1..=16.
        let x = (Tensor::arange(16, (Kind::Float, Device::Cpu)) + 1.0).view([1, 1, 4, 4]);
        // oy = 0, ox = 2 with pad 1: rows -1..2 of the original, cols 1..4 (col 4 is padding).
        let p = Tensor::from_slice(&[0i64, 2, 0]).view([3, 1]);
        let y = pad_crop_flip(&x, &p, 1);
        let top: Vec<f32> = Vec::try_from(y.get(0).get(0).get(0)).unwrap();
        assert_eq!(top, vec![0.0, 0.0, 0.0, 0.0]);
        let row1: Vec<f32> = Vec::try_from(y.get(0).get(0).get(1)).unwrap();
        assert_eq!(row1, vec![2.0, 3.0, 4.0, 0.0]);
        let pf = Tensor::from_slice(&[1i64, 1, 1]).view([3, 1]);
        let yf = pad_crop_flip(&x, &pf, 1);
        let r: Vec<f32> = Vec::try_from(yf.get(0).get(0).get(0)).unwrap();
        assert_eq!(r, vec![4.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn eval_covers_the_split_in_order() {
        let mut a = small();
        let n: i64 = a
            .eval_batches(5)
            .unwrap()
            .map(|b| b.unwrap().labels.size()[0])
            .sum();
        assert_eq!(n, 16);
    }

    #[test]
    fn validation_split_is_held_out() {
        let set = synthetic::generate(4, 64, 16, 8, 3);
        let a = InMemory::new(set, Augment::Cifar, 10, 7, Device::Cpu).unwrap();
        assert_eq!(
            (a.train_len(), a.eval_len(), a.eval_split()),
            (54, 10, "validation")
        );
    }
}
