//! ImageNet-style training data as §3.4 prepares it, for large images that do not fit in memory.
//!
//! Training: "the image is resized with its shorter side randomly sampled in [256, 480] for scale
//! augmentation. A 224×224 crop is randomly sampled from an image or its horizontal flip, with the
//! per-pixel mean subtracted. The standard color augmentation in [AlexNet] is used."
//! Evaluation: shorter side resized to 256 and the centre 224×224 crop; or the standard 10-crop
//! (4 corners and centre, and their flips) of Table 3.
//!
//! Work split: decoding, the random resize and cutting out the crop window (a copy of the window,
//! since resized images differ in size and cannot share a tensor) run on CPU worker threads that
//! fill a bounded queue (`sync_channel`) ahead of the training loop; the flip, the float
//! conversion, the mean subtraction and the PCA colour shift run on the whole batch as tensor ops
//! on the training device. Every random choice comes from (seed, iteration, position in the batch),
//! so a batch is a pure function of its iteration whatever the number of threads.
use super::folder::{self, FolderIndex};
use super::rng::{mix, SplitMix64};
use super::{Batch, DataSource, EpochOrder};
use crate::config::Augment;
use anyhow::{anyhow, bail, Result};
use image::imageops::FilterType;
use image::RgbImage;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Crop side (§3.4).
pub const CROP: u32 = 224;
/// Shorter-side range of the scale augmentation (§3.4).
pub const SCALE_MIN: u32 = 256;
pub const SCALE_MAX: u32 = 480;
/// Shorter side for evaluation (centre crop and 10-crop).
pub const EVAL_SCALE: u32 = 256;
/// Standard deviation of AlexNet's PCA colour coefficients.
pub const PCA_STD: f64 = 0.1;
/// Training images (a seeded sample) over which the per-pixel mean image and the RGB covariance
/// for the PCA colour augmentation are computed, each at 224×224 (eval transform). The paper
/// subtracts the mean over the whole training set; a sample of this size gives the mean to well
/// under one grey level on ImageNet without a full pass over 1.28M images.
pub const STATS_SAMPLE: usize = 1000;
/// Batches decoded ahead of the training loop.
pub const PREFETCH: usize = 3;

/// Resizes so that the shorter side is `s` (bilinear, aspect kept).
pub fn resize_shorter(img: &RgbImage, s: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = if w <= h {
        (s, ((h as u64 * s as u64 + w as u64 / 2) / w as u64) as u32)
    } else {
        (((w as u64 * s as u64 + h as u64 / 2) / h as u64) as u32, s)
    };
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    image::imageops::resize(img, nw, nh, FilterType::Triangle)
}

/// Copies the `size`×`size` window at (`y`, `x`) into `out` as [3, size, size] planes.
pub fn crop_chw(img: &RgbImage, y: u32, x: u32, size: u32, out: &mut [u8]) {
    let plane = (size * size) as usize;
    let raw = img.as_raw();
    let w = img.width() as usize;
    for r in 0..size as usize {
        let row = ((y as usize + r) * w + x as usize) * 3;
        for c in 0..size as usize {
            let p = row + 3 * c;
            let o = r * size as usize + c;
            out[o] = raw[p];
            out[plane + o] = raw[p + 1];
            out[2 * plane + o] = raw[p + 2];
        }
    }
}

/// The eval view: shorter side 256, then the centre crop.
fn centre_view(img: &RgbImage, out: &mut [u8]) {
    let r = resize_shorter(img, EVAL_SCALE);
    let (w, h) = r.dimensions();
    crop_chw(&r, (h - CROP) / 2, (w - CROP) / 2, CROP, out);
}

/// Everything the worker threads need, shared by the producer threads.
struct Shared {
    class_names: Vec<String>,
    train: Vec<(PathBuf, i64)>,
    eval: Vec<(PathBuf, i64)>,
    eval_split: String,
    seed: u64,
    augment: Augment,
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
            match folder::decode_rgb(path) {
                Ok(img) if img.width() >= 1 && img.height() >= 1 => return Ok((img, *label)),
                Ok(_) => {
                    first_err.get_or_insert_with(|| anyhow!("{}: empty image", path.display()));
                }
                Err(e) => {
                    if !self.skip_corrupt {
                        return Err(e.context("set data.skip_corrupt = true to skip such files"));
                    }
                    eprintln!("warning: skipping {e:#}");
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| anyhow!("no readable image")))
    }
}

/// A prepared batch on the host: u8 crops plus the per-image random choices.
struct HostBatch {
    /// [B, V, 3, 224, 224] with V = 1 (train/eval) or 5 (ten-crop before flipping).
    pixels: Vec<u8>,
    labels: Vec<i64>,
    /// Per image: mirror or not.
    flips: Vec<i64>,
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
}

fn make_train_batch(
    sh: &Shared,
    order: &mut EpochOrder,
    iteration: u64,
    batch_size: usize,
) -> Result<HostBatch> {
    let idx = order.indices(iteration, batch_size);
    let per = (3 * CROP * CROP) as usize;
    let mut pixels = vec![0u8; batch_size * per];
    let mut r = SplitMix64::new(mix(sh.seed, iteration));
    let flips: Vec<i64> = (0..batch_size).map(|_| r.below(2) as i64).collect();
    let alphas: Vec<f32> = (0..3 * batch_size)
        .map(|_| (r.normal() * PCA_STD) as f32)
        .collect();
    let augment = sh.augment;
    let labels: Vec<Result<i64>> = sh.pool.install(|| {
        pixels
            .par_chunks_mut(per)
            .zip(idx.par_iter())
            .enumerate()
            .map(|(k, (out, &i))| {
                let (img, label) = sh.decode(&sh.train, i as usize)?;
                if augment == Augment::Imagenet {
                    let mut rk = SplitMix64::new(mix(mix(sh.seed, iteration), k as u64 + 1));
                    let s = SCALE_MIN + rk.below((SCALE_MAX - SCALE_MIN + 1) as u64) as u32;
                    let img = resize_shorter(&img, s);
                    let (w, h) = img.dimensions();
                    let y = rk.below((h - CROP + 1) as u64) as u32;
                    let x = rk.below((w - CROP + 1) as u64) as u32;
                    crop_chw(&img, y, x, CROP, out);
                } else {
                    centre_view(&img, out);
                }
                Ok(label)
            })
            .collect()
    });
    Ok(HostBatch {
        pixels,
        labels: labels.into_iter().collect::<Result<_>>()?,
        flips,
        alphas,
    })
}

/// Eval batch `b`: centre crops (`ten = false`) or the five 224 crops of the 256-resized image
/// (corners then centre, torchvision's TenCrop order; the flips are added on the device).
fn make_eval_batch(sh: &Shared, b: u64, batch_size: usize, ten: bool) -> Result<HostBatch> {
    let n = sh.eval.len();
    let start = b as usize * batch_size;
    let len = batch_size.min(n - start);
    let views = if ten { 5 } else { 1 };
    let per = views * (3 * CROP * CROP) as usize;
    let mut pixels = vec![0u8; len * per];
    let labels: Vec<Result<i64>> = sh.pool.install(|| {
        pixels
            .par_chunks_mut(per)
            .enumerate()
            .map(|(k, out)| {
                let (path, label) = &sh.eval[start + k];
                let img = folder::decode_rgb(path)?;
                if ten {
                    let r = resize_shorter(&img, EVAL_SCALE);
                    let (w, h) = r.dimensions();
                    let one = (3 * CROP * CROP) as usize;
                    let spots = [
                        (0, 0),
                        (0, w - CROP),
                        (h - CROP, 0),
                        (h - CROP, w - CROP),
                        ((h - CROP) / 2, (w - CROP) / 2),
                    ];
                    for (v, (y, x)) in spots.into_iter().enumerate() {
                        crop_chw(&r, y, x, CROP, &mut out[v * one..(v + 1) * one]);
                    }
                } else {
                    centre_view(&img, out);
                }
                Ok(*label)
            })
            .collect()
    });
    Ok(HostBatch {
        pixels,
        labels: labels.into_iter().collect::<Result<_>>()?,
        flips: vec![],
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
            if validation >= train.len() {
                bail!(
                    "data.validation = {validation}: must be smaller than the {} training images",
                    train.len()
                );
            }
            let mut idx: Vec<usize> = (0..train.len()).collect();
            SplitMix64::new(seed ^ 0x005e_ed0f_5917).shuffle(&mut idx);
            let mut is_val = vec![false; train.len()];
            for &i in &idx[..validation] {
                is_val[i] = true;
            }
            let val: Vec<_> = idx[..validation]
                .iter()
                .map(|&i| train[i].clone())
                .collect();
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
        })
    }

    /// The per-pixel mean image [3, 224, 224] (in [0, 1]).
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// Eigenvalues [3] of the RGB covariance used by the colour augmentation.
    pub fn eigenvalues(&self) -> &Tensor {
        &self.eigval
    }

    fn upload(&self, pixels: &[u8], shape: &[i64]) -> Tensor {
        Tensor::from_slice(pixels)
            .view(shape)
            .to_device_(self.device, Kind::Uint8, true, false)
            .to_kind(Kind::Float)
            / 255.0
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
            let s = CROP as i64;
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

/// Mean image [3, 224, 224] and RGB covariance [3, 3] (float64) over a seeded sample of up to
/// [`STATS_SAMPLE`] training images at the eval view.
fn statistics(sh: &Shared) -> Result<(Tensor, Tensor)> {
    let n = sh.train.len();
    let mut idx: Vec<usize> = (0..n).collect();
    SplitMix64::new(mix(sh.seed, 0x57a7)).shuffle(&mut idx);
    idx.truncate(STATS_SAMPLE.min(n));
    let per = (3 * CROP * CROP) as usize;
    let mut pixels = vec![0u8; idx.len() * per];
    let res: Vec<Result<()>> = sh.pool.install(|| {
        pixels
            .par_chunks_mut(per)
            .zip(idx.par_iter())
            .map(|(out, &i)| {
                let (img, _) = sh.decode(&sh.train, i)?;
                centre_view(&img, out);
                Ok(())
            })
            .collect()
    });
    res.into_iter().collect::<Result<Vec<()>>>()?;
    let s = CROP as i64;
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

impl DataSource for Streaming {
    fn class_names(&self) -> &[String] {
        &self.shared.class_names
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
            let rx = spawn_producer(iteration..u64::MAX, PREFETCH, move |it| {
                make_train_batch(&sh, &mut order, it, batch_size)
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
        let b = batch_size as i64;
        let s = CROP as i64;
        let x = self.upload(&hb.pixels, &[b, 3, s, s]);
        let labels = Tensor::from_slice(&hb.labels).to_device(self.device);
        let images = if self.shared.augment == Augment::Imagenet {
            let flip = Tensor::from_slice(&hb.flips)
                .to_device(self.device)
                .to_kind(Kind::Bool)
                .view([b, 1, 1, 1]);
            let x = x.flip([3]).where_self(&flip, &x);
            // AlexNet colour augmentation: add eigvec · (alpha ∘ eigval) to every pixel.
            let alpha = Tensor::from_slice(&hb.alphas)
                .view([b, 3])
                .to_device(self.device);
            let shift = (alpha * &self.eigval).matmul(&self.eigvec.tr()); // [B, 3]
            x - &self.mean + shift.view([b, 3, 1, 1])
        } else {
            x - &self.mean
        };
        Ok(Batch { images, labels })
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
}
