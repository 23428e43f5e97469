//! ImageNet-style training data as §3.4 prepares it, for large images that do not fit in memory.
//!
//! Training: "the image is resized with its shorter side randomly sampled in [256, 480] for scale
//! augmentation. A 224×224 crop is randomly sampled from an image or its horizontal flip, with the
//! per-pixel mean subtracted. The standard color augmentation in [AlexNet] is used."
//! Evaluation: shorter side resized to 256 and the centre 224×224 crop; or the standard 10-crop
//! (4 corners and centre, and their flips) of Table 3; or the whole image at several scales
//! (Table 4, [`super::scales`]).
//!
//! Work split: decoding, the random resize of the crop window (the window alone is resized) and
//! the flip of the u8 crop run on CPU worker threads that fill a bounded queue (`sync_channel`)
//! ahead of the training loop; the float conversion, the mean subtraction and the PCA colour
//! shift run on the whole batch as in-place tensor ops on the training device (one batch-sized
//! float tensor a step: each fresh one costs its page faults on the CPU). Every random choice
//! comes from (seed, iteration, position in the batch), so a batch is a pure function of its
//! iteration whatever the number of threads.
use super::folder::{self, FolderIndex};
use super::image::{
    crop_chw, decode_streamable, mirror_chw, resize_shorter, resized_dims, scaled_crop,
};
use super::rng::{mix, SplitMix64};
use super::scales::{self, HostGroup, ScaledBatch};
use super::{Batch, DataSource, EpochOrder};
use crate::config::{Augment, ImagenetTransform};
use anyhow::{anyhow, bail, Result};
use image::RgbImage;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Standard deviation of AlexNet's PCA colour coefficients.
pub const PCA_STD: f64 = 0.1;
/// Training images (a seeded sample) over which the per-pixel mean image and the RGB covariance
/// for the PCA colour augmentation are computed, each at 224×224 (eval transform). The paper
/// subtracts the mean over the whole training set; a sample of this size gives the mean to well
/// under one grey level on ImageNet without a full pass over 1.28M images.
pub const STATS_SAMPLE: usize = 1000;
/// Batches decoded ahead of the training loop.
pub const PREFETCH: usize = 3;

/// The eval view: shorter side 256, then the centre crop.
fn centre_view(img: &RgbImage, t: &ImagenetTransform, out: &mut [u8]) {
    let (crop, r) = (t.crop, resize_shorter(img, t.test_resize));
    let (w, h) = r.dimensions();
    crop_chw(&r, (h - crop) / 2, (w - crop) / 2, crop, out);
}

/// Everything the worker threads need, shared by the producer threads.
struct Shared {
    class_names: Vec<String>,
    train: Vec<(PathBuf, i64)>,
    eval: Vec<(PathBuf, i64)>,
    eval_split: String,
    seed: u64,
    augment: Augment,
    /// The sizes of the views (`[data.imagenet]`).
    t: ImagenetTransform,
    skip_corrupt: bool,
    pool: rayon::ThreadPool,
}

impl Shared {
    /// Decodes the image at `idx` of `list`; with `skip_corrupt`, an unreadable one is replaced by
    /// the next readable image in the list (with a warning), so batches keep their size.
    fn decode(&self, list: &[(PathBuf, i64)], idx: usize) -> Result<(RgbImage, i64)> {
        let mut first_err = None;
        for k in 0..list.len().min(16) {
            let (path, label) = &list[(idx + k) % list.len()];
            match decode_streamable(path) {
                Ok(img) if img.width() >= 1 && img.height() >= 1 => return Ok((img, *label)),
                Ok(_) => {
                    first_err.get_or_insert_with(|| anyhow!("{}: empty image", path.display()));
                }
                Err(e) => {
                    if !self.skip_corrupt {
                        bail!("{e:#} (set data.skip_corrupt = true to skip such files)");
                    }
                    crate::errln!("warning: skipping {e:#}");
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| anyhow!("no readable image")))
    }
}

/// A prepared batch on the host: u8 crops (training crops already mirrored where drawn) plus
/// the per-image colour shifts.
struct HostBatch {
    /// [B, V, 3, 224, 224] with V = 1 (train/eval) or 5 (ten-crop before flipping).
    pixels: Vec<u8>,
    labels: Vec<i64>,
    /// Per image: AlexNet's three N(0, 0.1) PCA coefficients.
    alphas: Vec<f32>,
}

/// Prepared batches, tagged with their iteration (or batch number).
type Queue = Receiver<(u64, Result<HostBatch>)>;

/// A producer thread computing `make(i)` for i in `range` into a queue of `depth`; it stops when the
/// receiver is dropped.
fn spawn_producer<T: Send + 'static>(
    range: std::ops::Range<u64>,
    depth: usize,
    mut make: impl FnMut(u64) -> Result<T> + Send + 'static,
) -> Receiver<(u64, Result<T>)> {
    let (tx, rx) = sync_channel(depth);
    std::thread::Builder::new()
        .name("resnet-prefetch".into())
        .spawn(move || {
            for i in range {
                let r = make(i);
                let failed = r.is_err();
                if tx.send((i, r)).is_err() || failed {
                    break;
                }
            }
        })
        .expect("spawning the prefetch thread");
    rx
}

/// Large-image folder source (§3.4): streams decoded, resized crops through a bounded queue.
pub struct Streaming {
    shared: Arc<Shared>,
    /// [3, 224, 224] float32 per-pixel mean in [0, 1], on the device.
    mean: Tensor,
    /// [3, 3] eigenvectors (columns) and [3] eigenvalues of the RGB covariance, on the device.
    eigvec: Tensor,
    eigval: Tensor,
    device: Device,
    /// The running training prefetch: (next iteration, batch size, queue).
    pending: Option<(u64, usize, Queue)>,
    /// [`DataSource::content_key`].
    content_key: String,
    /// (rank, world size): training batches are this rank's slice of the global batch.
    shard: (usize, usize),
}

fn make_train_batch(
    sh: &Shared,
    order: &mut EpochOrder,
    iteration: u64,
    batch_size: usize,
    (rank, world): (usize, usize),
) -> Result<HostBatch> {
    let idx = order.indices(iteration, batch_size);
    let t = &sh.t;
    let per = (3 * t.crop * t.crop) as usize;
    let mut r = SplitMix64::new(mix(sh.seed, iteration));
    let flips: Vec<i64> = (0..batch_size).map(|_| r.below(2) as i64).collect();
    let alphas: Vec<f32> = (0..3 * batch_size)
        .map(|_| (r.normal() * PCA_STD) as f32)
        .collect();
    // A data-parallel rank decodes only its slice: the same images, crops, flips and colour
    // shifts as those positions of the global batch.
    let n = batch_size / world;
    let lo = rank * n;
    let (idx, flips, alphas) = (
        &idx[lo..lo + n],
        &flips[lo..lo + n],
        alphas[3 * lo..3 * (lo + n)].to_vec(),
    );
    let augment = sh.augment;
    let (pixels, labels) = decode_into(sh, &sh.train, idx, per, |k, img, out| {
        let flip = flips[k] == 1;
        let k = k + lo;
        if augment == Augment::Imagenet {
            let mut rk = SplitMix64::new(mix(mix(sh.seed, iteration), k as u64 + 1));
            let s = t.scale_min + rk.below((t.scale_max - t.scale_min + 1) as u64) as u32;
            let (w, h) = resized_dims(img.dimensions(), s);
            let y = rk.below((h - t.crop + 1) as u64) as u32;
            let x = rk.below((w - t.crop + 1) as u64) as u32;
            let crop = scaled_crop(img, s, y, x, t.crop);
            crop_chw(&crop, 0, 0, t.crop, out);
            // Mirrored here, in the decoding workers, rather than as two whole-batch tensor
            // passes on the training thread (the same pixels either way).
            if flip {
                mirror_chw(out, t.crop as usize);
            }
        } else {
            centre_view(img, t, out);
        }
    })?;
    Ok(HostBatch {
        pixels,
        labels,
        alphas,
    })
}

/// Decodes `list[idx[k]]` for every k in parallel on the worker pool, each into its own `per`
/// bytes of one pixel buffer through `fill(k, image, slot)`; returns the pixels and the labels.
fn decode_into(
    sh: &Shared,
    list: &[(PathBuf, i64)],
    idx: &[i64],
    per: usize,
    fill: impl Fn(usize, &RgbImage, &mut [u8]) + Sync,
) -> Result<(Vec<u8>, Vec<i64>)> {
    let mut pixels = vec![0u8; idx.len() * per];
    let labels: Vec<Result<i64>> = sh.pool.install(|| {
        pixels
            .par_chunks_mut(per)
            .zip(idx.par_iter())
            .enumerate()
            .map(|(k, (out, &i))| {
                let (img, label) = sh.decode(list, i as usize)?;
                fill(k, &img, out);
                Ok(label)
            })
            .collect()
    });
    Ok((pixels, labels.into_iter().collect::<Result<_>>()?))
}

/// Eval batch `b`: centre crops (`ten = false`) or the five 224 crops of the 256-resized image
/// (corners then centre, torchvision's TenCrop order; the flips are added on the device).
fn make_eval_batch(sh: &Shared, b: u64, batch_size: usize, ten: bool) -> Result<HostBatch> {
    let n = sh.eval.len();
    let start = b as usize * batch_size;
    let len = batch_size.min(n - start);
    let views = if ten { 5 } else { 1 };
    let (t, c) = (&sh.t, sh.t.crop);
    let per = views * (3 * c * c) as usize;
    let idx: Vec<i64> = (start as i64..(start + len) as i64).collect();
    let (pixels, labels) = decode_into(sh, &sh.eval, &idx, per, |_, img, out| {
        if ten {
            let r = resize_shorter(img, t.test_resize);
            let (w, h) = r.dimensions();
            let one = (3 * c * c) as usize;
            let spots = [
                (0, 0),
                (0, w - c),
                (h - c, 0),
                (h - c, w - c),
                ((h - c) / 2, (w - c) / 2),
            ];
            for (v, (y, x)) in spots.into_iter().enumerate() {
                crop_chw(&r, y, x, c, &mut out[v * one..(v + 1) * one]);
            }
        } else {
            centre_view(img, t, out);
        }
    })?;
    Ok(HostBatch {
        pixels,
        labels,
        alphas: vec![],
    })
}

impl Streaming {
    /// Indexes the folder, holds out `validation` training images (seeded, as [`super::InMemory`]
    /// does) when non-zero, and computes the mean image and colour PCA over a training sample.
    pub fn new(
        index: FolderIndex,
        augment: Augment,
        validation: usize,
        seed: u64,
        workers: usize,
        skip_corrupt: bool,
        device: Device,
    ) -> Result<Self> {
        let t = ImagenetTransform::default();
        Self::with_transform(
            index,
            augment,
            validation,
            seed,
            workers,
            skip_corrupt,
            device,
            t,
        )
    }

    /// [`Streaming::new`] with the view sizes of `t` (`[data.imagenet]`, validated) instead of
    /// the paper's.
    #[allow(clippy::too_many_arguments)]
    pub fn with_transform(
        index: FolderIndex,
        augment: Augment,
        validation: usize,
        seed: u64,
        workers: usize,
        skip_corrupt: bool,
        device: Device,
        t: ImagenetTransform,
    ) -> Result<Self> {
        t.validate()?;
        if augment == Augment::Cifar {
            bail!(
                "data.augment = \"cifar\" pads and crops 32x32 images, but {} holds large images \
                 (over {}x{}); use data.augment = \"imagenet\" or \"none\"",
                index.root.display(),
                folder::SMALL_MAX,
                folder::SMALL_MAX
            );
        }
        let mut train: Vec<(PathBuf, i64)> = index
            .train
            .files
            .into_iter()
            .zip(index.train.labels)
            .collect();
        let (eval, eval_split) = if validation > 0 {
            let h = super::split::holdout(train.len(), validation, seed)?;
            let is_val = h.mask(train.len());
            let val: Vec<_> = h.held.iter().map(|&i| train[i].clone()).collect();
            let mut k = 0;
            train.retain(|_| {
                k += 1;
                !is_val[k - 1]
            });
            (val, "validation".to_string())
        } else {
            let name = if index.eval.name == "val" {
                "validation"
            } else {
                "test"
            };
            (
                index
                    .eval
                    .files
                    .into_iter()
                    .zip(index.eval.labels)
                    .collect(),
                name.to_string(),
            )
        };
        let shared = Arc::new(Shared {
            class_names: index.class_names,
            train,
            eval,
            eval_split,
            seed,
            augment,
            t,
            skip_corrupt,
            pool: folder::pool(workers)?,
        });
        let (mean, cov) = statistics(&shared)?;
        let (eigval, eigvec) = cov.linalg_eigh("L");
        Ok(Streaming {
            shared,
            mean: mean.to_device(device),
            eigvec: eigvec.to_kind(Kind::Float).to_device(device),
            eigval: eigval.clamp_min(0.0).to_kind(Kind::Float).to_device(device),
            device,
            pending: None,
            content_key: String::new(),
            shard: (0, 1),
        })
    }

    /// The source with its [`DataSource::content_key`].
    pub fn with_content_key(mut self, key: String) -> Self {
        self.content_key = key;
        self
    }

    /// The per-pixel mean image [3, 224, 224] (in [0, 1]).
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// Eigenvalues [3] of the RGB covariance used by the colour augmentation.
    pub fn eigenvalues(&self) -> &Tensor {
        &self.eigval
    }

    /// The u8 pixels as floats in [0, 1] on the device: one float tensor allocated, the
    /// division in place (each fresh batch-sized tensor costs its page faults on the CPU).
    fn upload(&self, pixels: &[u8], shape: &[i64]) -> Tensor {
        let mut x = Tensor::from_slice(pixels)
            .view(shape)
            .to_device_(self.device, Kind::Uint8, true, false)
            .to_kind(Kind::Float);
        let _ = x.g_div_scalar_(255.0);
        x
    }

    fn eval_iter(
        &mut self,
        batch_size: usize,
        ten: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let n = self.shared.eval.len();
        let nb = n.div_ceil(batch_size) as u64;
        let sh = self.shared.clone();
        let rx = spawn_producer(0..nb, PREFETCH, move |b| {
            make_eval_batch(&sh, b, batch_size, ten)
        });
        let this = &*self;
        Ok(Box::new(rx.into_iter().map(move |(_, hb)| {
            let hb = hb?;
            let b = hb.labels.len() as i64;
            let s = this.shared.t.crop as i64;
            let labels = Tensor::from_slice(&hb.labels).to_device(this.device);
            if ten {
                let x = this.upload(&hb.pixels, &[b, 5, 3, s, s]) - &this.mean;
                let images = Tensor::cat(&[&x, &x.flip([4])], 1);
                Ok(Batch { images, labels })
            } else {
                let images = this.upload(&hb.pixels, &[b, 3, s, s]) - &this.mean;
                Ok(Batch { images, labels })
            }
        })))
    }
}

/// AlexNet's colour augmentation: for coefficients `alpha` [B, 3], the RGB offset
/// `[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T` [B, 3] for eigenvectors p_j (the columns of `eigvec`) and
/// eigenvalues l_j of the RGB covariance.
pub fn pca_shift(alpha: &Tensor, eigval: &Tensor, eigvec: &Tensor) -> Tensor {
    (alpha * eigval).matmul(&eigvec.tr())
}

/// Mean image [3, 224, 224] and RGB covariance [3, 3] (float64) over a seeded sample of up to
/// [`STATS_SAMPLE`] training images at the eval view.
fn statistics(sh: &Shared) -> Result<(Tensor, Tensor)> {
    let n = sh.train.len();
    let mut idx: Vec<usize> = (0..n).collect();
    SplitMix64::new(mix(sh.seed, 0x57a7)).shuffle(&mut idx);
    idx.truncate(STATS_SAMPLE.min(n));
    let per = (3 * sh.t.crop * sh.t.crop) as usize;
    let mut pixels = vec![0u8; idx.len() * per];
    let res: Vec<Result<()>> = sh.pool.install(|| {
        pixels
            .par_chunks_mut(per)
            .zip(idx.par_iter())
            .map(|(out, &i)| {
                let (img, _) = sh.decode(&sh.train, i)?;
                centre_view(&img, &sh.t, out);
                Ok(())
            })
            .collect()
    });
    res.into_iter().collect::<Result<Vec<()>>>()?;
    let s = sh.t.crop as i64;
    let x = Tensor::from_slice(&pixels)
        .view([idx.len() as i64, 3, s, s])
        .to_kind(Kind::Float)
        / 255.0;
    let mean = x.mean_dim(0, false, Kind::Float);
    let rgb = x
        .permute([1, 0, 2, 3])
        .reshape([3, -1])
        .to_kind(Kind::Double);
    let cov = rgb.cov(1, None::<Tensor>, None::<Tensor>);
    Ok((mean, cov))
}

/// Eval batch `b` for multi-scale testing: the images decoded in parallel, then every view.
fn make_scaled_batch(
    sh: &Shared,
    b: u64,
    batch_size: usize,
    scales: &[u32],
) -> Result<(Vec<HostGroup>, Vec<i64>)> {
    let n = sh.eval.len();
    let start = b as usize * batch_size;
    let len = batch_size.min(n - start);
    let decoded: Vec<Result<(RgbImage, i64)>> = sh.pool.install(|| {
        (start..start + len)
            .into_par_iter()
            .map(|i| sh.decode(&sh.eval, i))
            .collect()
    });
    let (images, labels): (Vec<RgbImage>, Vec<i64>) = decoded
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let groups = sh.pool.install(|| scales::group_views(&images, scales));
    Ok((groups, labels))
}

impl DataSource for Streaming {
    fn class_names(&self) -> &[String] {
        &self.shared.class_names
    }
    fn content_key(&self) -> &str {
        &self.content_key
    }
    fn train_len(&self) -> usize {
        self.shared.train.len()
    }
    fn eval_len(&self) -> usize {
        self.shared.eval.len()
    }
    fn eval_split(&self) -> &str {
        &self.shared.eval_split
    }

    fn train_batch(&mut self, iteration: u64, batch_size: usize) -> Result<Batch> {
        let in_step =
            matches!(&self.pending, Some((next, bs, _)) if *next == iteration && *bs == batch_size);
        if !in_step {
            // Start (or restart, after a jump) the producer at this iteration.
            let sh = self.shared.clone();
            let mut order = EpochOrder::new(sh.seed, sh.train.len());
            let shard = self.shard;
            let rx = spawn_producer(iteration..u64::MAX, PREFETCH, move |it| {
                make_train_batch(&sh, &mut order, it, batch_size, shard)
            });
            self.pending = Some((iteration, batch_size, rx));
        }
        let (next, _, rx) = self.pending.as_mut().expect("just set");
        let (it, hb) = rx
            .recv()
            .map_err(|_| anyhow!("the image-decoding thread stopped"))?;
        debug_assert_eq!(it, iteration);
        *next = iteration + 1;
        let hb = match hb {
            Ok(hb) => hb,
            Err(e) => {
                self.pending = None;
                return Err(e);
            }
        };
        let b = hb.labels.len() as i64;
        let s = self.shared.t.crop as i64;
        let x = self.upload(&hb.pixels, &[b, 3, s, s]);
        let labels = Tensor::from_slice(&hb.labels).to_device(self.device);
        // In place: the batch is the one float tensor the step allocates for it.
        let mut images = x;
        let _ = images.g_sub_(&self.mean);
        if self.shared.augment == Augment::Imagenet {
            // AlexNet colour augmentation: add eigvec · (alpha ∘ eigval) to every pixel.
            let alpha = Tensor::from_slice(&hb.alphas)
                .view([b, 3])
                .to_device(self.device);
            let shift = pca_shift(&alpha, &self.eigval, &self.eigvec);
            let _ = images.g_add_(&shift.view([b, 3, 1, 1]));
        }
        Ok(Batch { images, labels })
    }

    fn shard_train(&mut self, rank: usize, world_size: usize) -> bool {
        self.shard = (rank, world_size);
        self.pending = None;
        true
    }

    fn eval_batches(
        &mut self,
        batch_size: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        self.eval_iter(batch_size, false)
    }

    fn eval_ten_crop(
        &mut self,
        batch_size: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        self.eval_iter(batch_size, true)
    }

    fn eval_multi_scale(
        &mut self,
        scales: &[u32],
        batch_size: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<ScaledBatch>> + '_>> {
        let nb = self.shared.eval.len().div_ceil(batch_size) as u64;
        let sh = self.shared.clone();
        let list = scales.to_vec();
        // Whole large images at up to 640 pixels: one batch ahead is enough to hide decoding.
        let rx = spawn_producer(0..nb, 1, move |b| {
            make_scaled_batch(&sh, b, batch_size, &list)
        });
        let mean = scales::channel_mean(&self.mean);
        let device = self.device;
        Ok(Box::new(rx.into_iter().map(move |(_, r)| {
            let (groups, labels) = r?;
            Ok(scales::upload(groups, &labels, &mean, device))
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::folder::tests::write_tree;
    use crate::paper::CROP;

    fn source(root: &std::path::Path, augment: Augment, skip: bool) -> Result<Streaming> {
        let index = folder::scan(root)?;
        Streaming::new(index, augment, 0, 5, 2, skip, Device::Cpu)
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write_tree(d.path(), &[("train", 3), ("val", 2)], &["a", "b"], 300, 260);
        d
    }

    #[test]
    fn resize_keeps_aspect_and_crop_copies_the_window() {
        let img = RgbImage::from_fn(300, 260, |x, y| image::Rgb([x as u8, y as u8, 7]));
        assert_eq!(resize_shorter(&img, 256).dimensions(), (295, 256));
        assert_eq!(resize_shorter(&img, 480).dimensions(), (554, 480));
        let mut out = vec![0u8; 3 * 4];
        crop_chw(&img, 10, 20, 2, &mut out);
        assert_eq!(out, vec![20, 21, 20, 21, 10, 10, 11, 11, 7, 7, 7, 7]);
    }

    #[test]
    fn mirror_reverses_every_row_of_every_plane() {
        let mut planes: Vec<u8> = (0..2 * 2 * 3).collect();
        mirror_chw(&mut planes, 2);
        assert_eq!(planes, [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]);
    }

    #[test]
    fn scaled_crop_matches_resize_then_crop() {
        // A smooth image: the window rounding shifts the view by under one source pixel.
        let img = RgbImage::from_fn(500, 375, |x, y| {
            let v = |f: f64| (128.0 + 100.0 * f.sin()) as u8;
            image::Rgb([
                v(x as f64 * 0.02),
                v(y as f64 * 0.03),
                v((x + y) as f64 * 0.01),
            ])
        });
        for (s, y, x) in [(256, 10, 50), (480, 200, 300), (333, 0, 0)] {
            let full = resize_shorter(&img, s);
            let mut a = vec![0u8; (3 * CROP * CROP) as usize];
            crop_chw(&full, y, x, CROP, &mut a);
            let mut b = a.clone();
            crop_chw(&scaled_crop(&img, s, y, x, CROP), 0, 0, CROP, &mut b);
            let mad = a
                .iter()
                .zip(&b)
                .map(|(&p, &q)| (p as f64 - q as f64).abs())
                .sum::<f64>()
                / a.len() as f64;
            assert!(mad < 2.0, "s = {s}: mean abs difference {mad}");
        }
    }

    #[test]
    fn train_batches_are_deterministic_and_survive_a_jump() {
        let d = tree();
        let mut a = source(d.path(), Augment::Imagenet, false).unwrap();
        let mut b = source(d.path(), Augment::Imagenet, false).unwrap();
        let a0 = a.train_batch(0, 4).unwrap();
        let a1 = a.train_batch(1, 4).unwrap();
        assert_eq!(a0.images.size(), vec![4, 3, 224, 224]);
        // b starts at iteration 1 directly (as a resumed run would).
        let b1 = b.train_batch(1, 4).unwrap();
        assert!(a1.images.equal(&b1.images) && a1.labels.equal(&b1.labels));
        assert!(!a0.images.equal(&a1.images));
        // Positions 0..6 are one epoch: every training image once.
        let mut order = EpochOrder::new(5, 6);
        let mut seen = order.indices(0, 6);
        seen.sort();
        assert_eq!(seen, (0..6).collect::<Vec<_>>());
    }

    /// A data-parallel rank's batches are its slice of the global batch, decoded alone.
    #[test]
    fn a_sharded_source_yields_the_ranks_slice_of_the_global_batch() {
        let d = tree();
        let mut whole = source(d.path(), Augment::Imagenet, false).unwrap();
        let mut rank1 = source(d.path(), Augment::Imagenet, false).unwrap();
        assert!(rank1.shard_train(1, 2));
        for it in [0, 1] {
            let w = whole.train_batch(it, 4).unwrap();
            let r = rank1.train_batch(it, 4).unwrap();
            assert_eq!(r.images.size(), vec![2, 3, 224, 224]);
            assert!(r.labels.equal(&w.labels.narrow(0, 2, 2)));
            let diff = (&r.images - w.images.narrow(0, 2, 2)).abs().max();
            assert!(diff.double_value(&[]) < 1e-6, "iteration {it}");
        }
    }

    #[test]
    fn eval_is_the_centre_crop_and_ten_crop_adds_the_flips() {
        let d = tree();
        let mut s = source(d.path(), Augment::Imagenet, false).unwrap();
        assert_eq!(
            (s.train_len(), s.eval_len(), s.eval_split()),
            (6, 4, "validation")
        );
        assert_eq!(s.mean().size(), vec![3, 224, 224]);
        let ev: Vec<Batch> = s.eval_batches(3).unwrap().map(|b| b.unwrap()).collect();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].images.size(), vec![1, 3, 224, 224]);
        let ten: Vec<Batch> = s.eval_ten_crop(3).unwrap().map(|b| b.unwrap()).collect();
        let t0 = &ten[0].images;
        assert_eq!(t0.size(), vec![3, 10, 3, 224, 224]);
        // View 4 is the centre crop; views 5..10 mirror views 0..5.
        assert!(t0.select(1, 4).equal(&ev[0].images));
        for v in 0..5 {
            assert!(t0.select(1, v + 5).equal(&t0.select(1, v).flip([3])));
        }
        assert!(ten[0].labels.equal(&ev[0].labels));
    }

    #[test]
    fn pca_shift_sums_eigenvectors_weighted_by_alpha_times_eigenvalue() {
        // Columns p0 = (0,0,1), p1 = (1,0,0), p2 = (0,1,0); alpha = 1, eigenvalues (1,2,3):
        // 1*p0 + 2*p1 + 3*p2 = (2, 3, 1).
        let eigvec = Tensor::from_slice(&[0f32, 1., 0., 0., 0., 1., 1., 0., 0.]).view([3, 3]);
        let eigval = Tensor::from_slice(&[1f32, 2., 3.]);
        let alpha = Tensor::from_slice(&[1f32, 1., 1., 0., 0., 0.5]).view([2, 3]);
        let s: Vec<f32> = Vec::try_from(pca_shift(&alpha, &eigval, &eigvec).view([-1])).unwrap();
        assert_eq!(s, vec![2., 3., 1., 0., 1.5, 0.]);
    }

    #[test]
    fn augment_none_trains_on_the_mean_subtracted_eval_view() {
        let d = tree();
        let s = source(d.path(), Augment::Imagenet, false).unwrap();
        let ev = s.eigenvalues();
        assert!(ev.min().double_value(&[]) >= 0.0 && ev.max().double_value(&[]) > 0.0);
        // With augment = none the training view is the eval view of the same images.
        let mut n = source(d.path(), Augment::None, false).unwrap();
        let b = n.train_batch(0, 6).unwrap();
        let mut order = EpochOrder::new(5, 6);
        let idx = order.indices(0, 6);
        let x = &b.images;
        let img = crate::data::image::decode_rgb(&n.shared.train[idx[0] as usize].0).unwrap();
        let mut want = vec![0u8; (3 * CROP * CROP) as usize];
        centre_view(&img, &ImagenetTransform::default(), &mut want);
        let want = Tensor::from_slice(&want)
            .view([3, 224, 224])
            .to_kind(Kind::Float)
            / 255.0
            - n.mean();
        assert!(x.get(0).allclose(&want, 1e-6, 1e-6, false));
    }

    #[test]
    fn corrupt_large_image_is_named_or_skipped() {
        let d = tree();
        std::fs::write(d.path().join("train/a/001.jpg"), b"\xff\xd8garbage").unwrap();
        let e = source(d.path(), Augment::Imagenet, false)
            .and_then(|mut s| (0..3).try_for_each(|i| s.train_batch(i, 2).map(|_| ())));
        let msg = format!("{:#}", e.unwrap_err());
        assert!(msg.contains("train/a/001.jpg"), "{msg}");
        let mut s = source(d.path(), Augment::Imagenet, true).unwrap();
        for i in 0..3 {
            assert_eq!(s.train_batch(i, 2).unwrap().images.size()[0], 2);
        }
    }

    #[test]
    fn cifar_augmentation_on_large_images_is_refused() {
        let d = tree();
        let e = source(d.path(), Augment::Cifar, false).err().unwrap();
        assert!(format!("{e:#}").contains("data.augment = \"cifar\""));
    }
}
