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
//! tensor ops on the device. Large images (ImageNet) are streamed by [`stream::Streaming`].
//!
//! Sources ([`open`]): the official CIFAR-10 binary archive ([`cifar`], downloaded and verified by
//! [`fetch`]), image folders in the ImageNet layout ([`folder`], a folder or a `.tar.gz` extracted
//! safely by [`archive`]), and seeded synthetic images ([`synthetic`]). Every source also gives
//! the whole-image views of §3.4's multi-scale testing ([`scales`]).
pub mod archive;
pub mod cifar;
pub mod detection;
pub mod fetch;
pub mod folder;
pub mod image;
pub mod imagenet;
pub mod loader_bench;
pub mod matfile;
pub mod rng;
pub mod scales;
pub mod split;
pub mod stream;
pub mod synthetic;

use crate::config::{Augment, Config, Dataset};
use crate::present::table::Table;
use anyhow::{bail, Context, Result};
use rng::SplitMix64;
use std::path::Path;
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
    /// What the images and labels are, as a key (32 hex digits) that changes when they do: a
    /// run's checkpoint records it, and a resume on data with another key is a recipe change
    /// (`--change data.content`). Empty for a source built without one (tests, benchmarks).
    fn content_key(&self) -> &str;
    /// The augmented training batch of iteration `iteration` (0-based). Deterministic in
    /// (seed, iteration, batch_size): positions `[it*B, (it+1)*B)` of the endless stream of
    /// per-epoch permutations.
    fn train_batch(&mut self, iteration: u64, batch_size: usize) -> Result<Batch>;
    /// Data parallelism: from now on [`DataSource::train_batch`]`(it, B)` yields only rank
    /// `rank`'s slice of the global batch (B / `world_size` images: the same images, crops,
    /// flips and colour shifts as those positions of the unsharded batch), so a rank decodes only
    /// its share. False (the default) when the source cannot: the caller slices the whole batch.
    fn shard_train(&mut self, _rank: usize, _world_size: usize) -> bool {
        false
    }
    /// For `run.cuda_graph`: the host-drawn description of the batch of `iteration` (int64
    /// values) that [`DataSource::assemble_batch`] turns into that batch with device work only
    /// (capturable). `None` for sources that cannot (streamed images).
    fn batch_params(&mut self, _iteration: u64, _batch_size: usize) -> Option<Vec<i64>> {
        None
    }
    /// The batch described by `params` (the values of [`DataSource::batch_params`] as a 1-d
    /// tensor on the device), built without host work or syncs, so it can be captured.
    fn assemble_batch(&self, _params: &Tensor) -> Result<Batch> {
        bail!("this data source cannot build batches from device-side parameters (run.cuda_graph needs a dataset held in memory)")
    }
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
    /// Multi-scale testing (§3.4, Table 4): the evaluation split in order, every image resized
    /// whole to each shorter side of `scales`, views grouped by size ([`scales`]).
    fn eval_multi_scale(
        &mut self,
        scales: &[u32],
        batch_size: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<scales::ScaledBatch>> + '_>>;
}

/// Opens the data source the config describes, on `device`, and prints per-class image counts:
/// `cifar10` (downloaded first when missing), `image_folder` (a folder or a `.tar.gz` of one;
/// small images in memory, large ones streamed) or `synthetic`.
pub fn open(cfg: &Config, device: Device) -> Result<Box<dyn DataSource>> {
    let (source, counts) = open_quiet(cfg, device, true)?;
    crate::out!("{}", counts.to_text());
    Ok(source)
}

/// A source with its per-class count table.
type Opened = (Box<dyn DataSource>, Table);

/// [`open`] without printing: the source and its per-class count table.
pub fn open_quiet(cfg: &Config, device: Device, progress: bool) -> Result<Opened> {
    let d = &cfg.data;
    match d.dataset {
        Dataset::Synthetic => {
            let s = &d.synthetic;
            crate::sys::memory::host_fits(synthetic::host_bytes(&cfg.data.synthetic), || {
                format!(
                    "data.synthetic.train = {}, test = {}, image_size = {}",
                    s.train, s.test, s.image_size
                )
            })?;
            let set = synthetic::generate(
                cfg.model.classes(),
                s.train,
                s.test,
                s.image_size,
                cfg.run.seed,
            );
            let key = synthetic::content_key(cfg.model.classes(), s, cfg.run.seed);
            in_memory(cfg, set, key, device)
        }
        Dataset::Cifar10 => {
            let set = cifar::load(&d.path, progress)
                .with_context(|| format!("data.path = {} (cifar10)", d.path.display()))?;
            let key = cifar::content_key(&d.path, &d.cache_dir)?;
            in_memory(cfg, set, key, device)
        }
        Dataset::ImageFolder => open_image_folder(cfg, device, progress),
        Dataset::Voc | Dataset::Coco => bail!("{}", detection::NOT_A_CLASSIFIER),
    }
}

/// An image set held in memory (CIFAR-10, synthetic, small-image folders) with its content key,
/// class count checked.
fn in_memory(cfg: &Config, set: ImageSet, key: String, device: Device) -> Result<Opened> {
    let d = &cfg.data;
    if set.class_names.len() != cfg.model.classes() {
        bail!(
            "model.classes = {} but the data has {} classes ({})",
            cfg.model.classes(),
            set.class_names.len(),
            set.class_names.join(", ")
        );
    }
    let table = count_table(
        &set.class_names,
        &label_counts(&set.train_labels, set.class_names.len()),
        "test",
        &label_counts(&set.test_labels, set.class_names.len()),
    );
    let src = InMemory::new(set, d.augment, d.validation, cfg.run.seed, device)?;
    Ok((Box::new(src.with_content_key(key)), table))
}

/// An image folder: small images decoded into memory (through the cache), large ones streamed.
fn open_image_folder(cfg: &Config, device: Device, progress: bool) -> Result<Opened> {
    let d = &cfg.data;
    let root = folder::resolve_root(&d.path, &d.cache_dir)?;
    let index = folder::scan(&root)
        .with_context(|| format!("data.path = {} (image_folder)", d.path.display()))?;
    let size = folder::first_size(&index.train, d.skip_corrupt)?;
    if size.0 > folder::SMALL_MAX || size.1 > folder::SMALL_MAX {
        return streaming(cfg, index, &root, device);
    }
    if d.augment == Augment::Imagenet {
        bail!(
            "data.augment = \"imagenet\" crops 224x224, but {} holds {}x{} images; \
             use \"cifar\" or \"none\"",
            root.display(),
            size.0,
            size.1
        );
    }
    let t = std::time::Instant::now();
    let (set, skipped, hit, key) =
        folder::decode_small_keyed(&index, d.skip_corrupt, d.workers, &d.cache_dir)?;
    if progress {
        crate::errln!(
            "{} {} images of {}x{} in {:.1} s",
            if hit { "read cached" } else { "decoded" },
            set.train_labels.size()[0] + set.test_labels.size()[0],
            size.0,
            size.1,
            t.elapsed().as_secs_f64()
        );
    }
    if !skipped.is_empty() {
        crate::errln!(
            "warning: skipped {} unreadable files (data.skip_corrupt = true), e.g. {}",
            skipped.len(),
            skipped[0].1
        );
    }
    in_memory(cfg, set, key, device)
}

/// A folder of large images streamed through §3.4's transform.
fn streaming(
    cfg: &Config,
    index: folder::FolderIndex,
    root: &Path,
    device: Device,
) -> Result<Opened> {
    let d = &cfg.data;
    let classes = index.class_names.len();
    if classes != cfg.model.classes() {
        bail!(
            "model.classes = {} but {} has {classes} class folders",
            cfg.model.classes(),
            root.display()
        );
    }
    let table = count_table(
        &index.class_names,
        &index.train.counts(classes),
        &index.eval.name,
        &index.eval.counts(classes),
    );
    let key = folder::manifest_key(&index);
    let src = stream::Streaming::with_transform(
        index,
        d.augment,
        d.validation,
        cfg.run.seed,
        d.workers,
        d.skip_corrupt,
        device,
        d.imagenet.clone(),
    )?;
    Ok((Box::new(src.with_content_key(key)), table))
}

/// Images per class of a label tensor.
pub fn label_counts(labels: &Tensor, classes: usize) -> Vec<usize> {
    let c = labels.bincount(None::<Tensor>, classes as i64);
    Vec::<i64>::try_from(&c)
        .unwrap_or_default()
        .into_iter()
        .map(|v| v as usize)
        .collect()
}

/// The per-class count table (class, train, `eval_name`) of the splits as found on disk (before
/// any validation hold-out), with a total row.
pub fn count_table(names: &[String], train: &[usize], eval_name: &str, eval: &[usize]) -> Table {
    let mut t = Table::new(["class", "train", eval_name]);
    for (i, n) in names.iter().enumerate() {
        t.push(vec![
            n.clone(),
            train.get(i).copied().unwrap_or(0).to_string(),
            eval.get(i).copied().unwrap_or(0).to_string(),
        ]);
    }
    t.push(vec![
        "total".into(),
        train.iter().sum::<usize>().to_string(),
        eval.iter().sum::<usize>().to_string(),
    ]);
    t
}

/// Which training image each position of the endless stream of per-epoch permutations holds.
/// Epoch `e` is a shuffle seeded by (seed, e); the last permutation is cached.
pub struct EpochOrder {
    seed: u64,
    n: usize,
    perm: Option<(u64, Vec<i64>)>,
}

impl EpochOrder {
    pub fn new(seed: u64, n: usize) -> Self {
        EpochOrder {
            seed,
            n,
            perm: None,
        }
    }

    /// The permutation of epoch `epoch`.
    pub fn epoch(&mut self, epoch: u64) -> &[i64] {
        if self.perm.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut p: Vec<i64> = (0..self.n as i64).collect();
            SplitMix64::new(rng::mix(self.seed, epoch ^ 0xe90c)).shuffle(&mut p);
            self.perm = Some((epoch, p));
        }
        &self.perm.as_ref().expect("just set").1
    }

    /// Image indices of positions `[it*B, (it+1)*B)`.
    pub fn indices(&mut self, iteration: u64, batch_size: usize) -> Vec<i64> {
        let n = self.n as u64;
        let start = iteration * batch_size as u64;
        (0..batch_size as u64)
            .map(|k| {
                let pos = start + k;
                self.epoch(pos / n)[(pos % n) as usize]
            })
            .collect()
    }
}

/// Decoded images of a small-image dataset, on the host.
#[derive(Debug)]
pub struct ImageSet {
    pub class_names: Vec<String>,
    /// [N, 3, H, W] uint8.
    pub train_images: Tensor,
    /// [N] int64.
    pub train_labels: Tensor,
    pub test_images: Tensor,
    pub test_labels: Tensor,
}

/// §4.2's zero padding before the 32×32 crop, in pixels.
const PAD: i64 = 4;

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
    order: EpochOrder,
    /// [`DataSource::content_key`].
    content_key: String,
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
        if augment == Augment::Imagenet {
            bail!(
                "data.augment = \"imagenet\" crops 224x224 from large images; these are {}x{}, \
                 use \"cifar\" or \"none\"",
                set.train_images.size()[3],
                set.train_images.size()[2]
            );
        }
        let (train_images, train_labels, eval_images, eval_labels, split) = if validation > 0 {
            let h = split::holdout(n, validation, seed)?;
            let index =
                |v: &[usize]| Tensor::from_slice(&v.iter().map(|&i| i as i64).collect::<Vec<_>>());
            let (val, train) = (index(&h.held), index(&h.rest));
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
            order: EpochOrder::new(seed, n - validation),
            content_key: String::new(),
        })
    }

    /// The source with its [`DataSource::content_key`].
    pub fn with_content_key(mut self, key: String) -> Self {
        self.content_key = key;
        self
    }

    /// The per-pixel mean image [3, H, W] (in [0, 1]) that is subtracted from every input.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// The batch of `iteration` as drawn on the host from (seed, iteration): the image indices,
    /// then the crop rows, crop columns and flips (§4.2), `batch_size` values each.
    fn draw(&mut self, iteration: u64, batch_size: usize) -> Vec<i64> {
        let mut host = Vec::with_capacity(4 * batch_size);
        host.extend(self.order.indices(iteration, batch_size));
        let mut r = SplitMix64::new(rng::mix(self.seed, iteration));
        for _ in 0..batch_size {
            host.push(r.below(2 * PAD as u64 + 1) as i64);
        }
        for _ in 0..batch_size {
            host.push(r.below(2 * PAD as u64 + 1) as i64);
        }
        for _ in 0..batch_size {
            host.push(r.below(2) as i64);
        }
        host
    }

    fn normalize(&self, u8_images: &Tensor) -> Tensor {
        u8_images.to_kind(Kind::Float) / 255.0 - &self.mean
    }

    #[cfg(test)]
    fn epoch_perm(&mut self, epoch: u64) -> &[i64] {
        self.order.epoch(epoch)
    }
}

/// §4.2's augmentation of a normalized batch: zero-pad by `pad`, take the crop at (`oy`, `ox`)
/// of each image, mirrored where `flip` is 1. `x`: [B, C, H, W]; `params`: [3, B] int64 rows
/// (oy, ox, flip) on x's device. One `gather` kernel after the pad, on a flat per-image index
/// (measured 6x faster on the CPU than advanced indexing with broadcast row/column indices:
/// 0.36 vs 2.9 ms for 128 CIFAR images on one core); the result is contiguous NCHW.
pub fn pad_crop_flip(x: &Tensor, params: &Tensor, pad: i64) -> Tensor {
    let (b, c, h, w) = x.size4().expect("4-d batch");
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
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
    let flat = (rows * wp + cols)
        .view([b, 1, h * w])
        .expand([b, c, h * w], false);
    padded
        .view([b, c, hp * wp])
        .gather(2, &flat, false)
        .view([b, c, h, w])
}

impl DataSource for InMemory {
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn content_key(&self) -> &str {
        &self.content_key
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
        let host = self.draw(iteration, batch_size);
        // One small host-to-device copy, asynchronous on CUDA.
        let params = Tensor::from_slice(&host).to_device_(self.device, Kind::Int64, true, false);
        self.assemble_batch(&params)
    }

    fn batch_params(&mut self, iteration: u64, batch_size: usize) -> Option<Vec<i64>> {
        Some(self.draw(iteration, batch_size))
    }

    fn assemble_batch(&self, params: &Tensor) -> Result<Batch> {
        let n = params.size()[0];
        if n % 4 != 0 {
            bail!("batch parameters: {n} values, expected 4 per image");
        }
        let params = params.view([4, n / 4]);
        let idx = params.get(0);
        let images = self.normalize(&self.train_images.index_select(0, &idx));
        let labels = self.train_labels.index_select(0, &idx);
        let images = match self.augment {
            Augment::Cifar => pad_crop_flip(&images, &params.narrow(0, 1, 3), PAD),
            Augment::None => images,
            Augment::Imagenet => unreachable!("refused by InMemory::new"),
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

    fn eval_multi_scale(
        &mut self,
        scales: &[u32],
        batch_size: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<scales::ScaledBatch>> + '_>> {
        let n = self.eval_len() as i64;
        let bs = batch_size as i64;
        let mean = scales::channel_mean(&self.mean);
        let scales = scales.to_vec();
        let this = &*self;
        Ok(Box::new((0..n).step_by(batch_size).map(move |start| {
            let len = bs.min(n - start);
            let images = image::to_rgb_images(&this.eval_images.narrow(0, start, len));
            let labels = Vec::<i64>::try_from(
                this.eval_labels
                    .narrow(0, start, len)
                    .to_device(Device::Cpu),
            )?;
            let groups = scales::group_views(&images, &scales);
            Ok(scales::upload(groups, &labels, &mean, this.device))
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
    fn pad_crop_flip_matches_a_per_image_reference() {
        tch::manual_seed(0);
        let x = Tensor::randn([6, 3, 5, 7], (Kind::Float, Device::Cpu));
        let host: Vec<i64> = vec![0, 4, 2, 1, 3, 4, 4, 0, 1, 2, 3, 0, 1, 0, 1, 1, 0, 0];
        let p = Tensor::from_slice(&host).view([3, 6]);
        let y = pad_crop_flip(&x, &p, 2);
        for i in 0..6usize {
            let padded = x.get(i as i64).constant_pad_nd([2, 2, 2, 2]);
            let mut want = padded.narrow(1, host[i], 5).narrow(2, host[6 + i], 7);
            if host[12 + i] == 1 {
                want = want.flip([2]);
            }
            assert!(y.get(i as i64).equal(&want), "image {i}");
        }
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

    fn cfg(extra: &str) -> Config {
        let mut c = Config::from_toml(&format!(
            "[model]\nfamily = \"cifar\"\ndepth = 8\nclasses = 2\n[data]\n{extra}"
        ))
        .unwrap();
        c.name = "t".into();
        c
    }

    #[test]
    fn open_synthetic_reports_counts() {
        let c = cfg(
            "dataset = \"synthetic\"\n[data.synthetic]\ntrain = 40\ntest = 10\nimage_size = 8\n",
        );
        let (src, t) = open_quiet(&c, Device::Cpu, false).unwrap();
        assert_eq!((src.train_len(), src.eval_len()), (40, 10));
        assert_eq!(t.headers, vec!["class", "train", "test"]);
        assert_eq!(t.rows.last().unwrap(), &vec!["total", "40", "10"]);
    }

    #[test]
    fn open_small_image_folder_from_an_archive() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree/set");
        folder::tests::write_tree(&tree, &[("train", 3), ("test", 2)], &["x", "y"], 8, 8);
        let ar = d.path().join("set.tar.gz");
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(&ar).unwrap(),
            flate2::Compression::fast(),
        ));
        b.append_dir_all("set", &tree).unwrap();
        b.into_inner().unwrap().finish().unwrap();
        let c = cfg(&format!(
            "dataset = \"image_folder\"\npath = {:?}\ncache_dir = {:?}\n",
            ar,
            d.path().join("cache")
        ));
        let (mut src, t) = open_quiet(&c, Device::Cpu, false).unwrap();
        assert_eq!(src.class_names(), ["x", "y"]);
        assert_eq!(t.rows[0], vec!["x", "3", "2"]);
        assert_eq!(
            src.train_batch(0, 4).unwrap().images.size(),
            vec![4, 3, 8, 8]
        );
        // The wrong class count is named.
        let mut c3 = c.clone();
        c3.model.classes = Some(3);
        let e = open_quiet(&c3, Device::Cpu, false).err().unwrap();
        assert!(format!("{e:#}").contains("model.classes = 3 but the data has 2 classes"));
    }

    #[test]
    fn open_large_image_folder_streams_224_crops() {
        let d = tempfile::tempdir().unwrap();
        folder::tests::write_tree(d.path(), &[("train", 2), ("val", 1)], &["p", "q"], 260, 300);
        let mut c = Config::from_toml(&format!(
            "[model]\nfamily = \"imagenet\"\ndepth = 18\nclasses = 2\n[data]\n\
             dataset = \"image_folder\"\naugment = \"imagenet\"\npath = {:?}\n",
            d.path()
        ))
        .unwrap();
        c.name = "t".into();
        let (mut src, t) = open_quiet(&c, Device::Cpu, false).unwrap();
        assert_eq!(t.headers, vec!["class", "train", "val"]);
        assert_eq!(
            src.train_batch(0, 2).unwrap().images.size(),
            vec![2, 3, 224, 224]
        );
        assert_eq!(src.eval_split(), "validation");
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
