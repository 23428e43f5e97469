//! Test-set evaluation: top-1 and top-5 error (paper §4.2's CIFAR-10 test error, Tables 2-4's
//! top-1/top-5 errors) under §3.4's testing protocols (one crop; Table 3's 10-crop; Table 4's
//! fully-convolutional multi-scale testing), and `resnet eval --checkpoint`, which rebuilds the
//! network from the recipe embedded in the checkpoint (or, for an older checkpoint, the run's
//! `config.toml`) and appends to the run's `eval.csv`. [`detection`] scores object detections
//! (Tables 7 and 8: VOC and COCO AP) and is `resnet eval --detections`.
use crate::config::{Config, DeviceChoice, Precision};
use crate::data::scales::ScaledBatch;
use crate::data::{self, DataSource};
use crate::net::forward::ForwardMode;
use crate::net::model::ResNet;
use crate::run::checkpoint::{self, describe_model};
use crate::run::dir::RunDir;
use crate::run::records::{self, EvalRow};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

pub mod detection;

/// The paper's multi-scale test: shorter sides {224, 256, 384, 480, 640} (§3.4).
pub const PAPER_SCALES: [u32; 5] = crate::paper::MULTI_SCALE_SIDES;

/// The largest shorter side `--multi-scale` takes: a 4096-pixel view is already 200 MB as floats
/// per image; what a batch of them needs is checked against the memory budget.
pub const MAX_SCALE: u32 = 4096;

/// How the test images are presented to the network (§3.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Protocol {
    /// One view per image: the image itself (CIFAR, §4.2), or the centre 224×224 crop of the
    /// image resized to shorter side 256 (ImageNet).
    #[default]
    SingleCrop,
    /// The standard 10-crop testing of the comparison studies (Tables 2 and 3): four corners and
    /// the centre of the 256-resized image, and their flips.
    TenCrop,
    /// The fully-convolutional form (Table 4): the whole image resized to each shorter side, and
    /// its flip (2 views per scale).
    MultiScale(Vec<u32>),
}

/// `--multi-scale` without a list: the sides of the recipe's `data.imagenet.multi_scale`,
/// resolved by [`measure`] (an empty [`Protocol::MultiScale`] until then).
pub const CONFIG_SIDES: &str = "config";

impl Protocol {
    /// A multi-scale protocol from `config` (the recipe's sides), or from `224,256,384` or
    /// `[224,256,384]`: distinct sides in 1..=[`MAX_SCALE`].
    pub fn multi_scale(list: &str) -> Result<Protocol> {
        if list.trim() == CONFIG_SIDES {
            return Ok(Protocol::MultiScale(Vec::new()));
        }
        let inner = list.trim().trim_start_matches('[').trim_end_matches(']');
        let mut scales: Vec<u32> = Vec::new();
        for part in inner.split(',') {
            let s: u32 = part
                .trim()
                .parse()
                .ok()
                .filter(|&s| s > 0)
                .with_context(|| {
                    format!(
                        "--multi-scale {list}: `{}` is not a positive shorter side in pixels \
                     (e.g. --multi-scale 224,256,384,480,640)",
                        part.trim()
                    )
                })?;
            if s > MAX_SCALE {
                anyhow::bail!(
                    "--multi-scale {list}: shorter side {s} is past the largest this build \
                     evaluates, {MAX_SCALE} pixels (the paper's largest is 640)"
                );
            }
            if scales.contains(&s) {
                anyhow::bail!("--multi-scale {list}: scale {s} is listed twice");
            }
            scales.push(s);
        }
        Ok(Protocol::MultiScale(scales))
    }

    /// The protocol column of `eval.csv`: `1-crop`, `10-crop`, `multi-scale 224/256/384/480/640`.
    pub fn name(&self) -> String {
        match self {
            Protocol::SingleCrop => "1-crop".into(),
            Protocol::TenCrop => "10-crop".into(),
            Protocol::MultiScale(s) => format!(
                "multi-scale {}",
                s.iter().map(u32::to_string).collect::<Vec<_>>().join("/")
            ),
        }
    }

    /// Views whose scores are averaged per image (the `crops` column of `eval.csv`).
    pub fn views(&self) -> u32 {
        match self {
            Protocol::SingleCrop => 1,
            Protocol::TenCrop => crate::paper::TEN_CROP_VIEWS,
            Protocol::MultiScale(s) => 2 * s.len() as u32,
        }
    }
}

/// What one evaluation pass measures (errors in percent); `resnet eval` records it as an
/// [`EvalRow`] with its checkpoint, split and protocol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub images: u64,
    pub loss: f64,
    pub top1_error: f64,
    pub top5_error: f64,
}

/// Loss and top-1/top-5 hit sums over batches, kept on the device (one read at the end).
#[derive(Default)]
struct Sums {
    sums: Option<Tensor>,
    images: u64,
}

impl Sums {
    /// Adds a batch of [B, C] log-probabilities with its [B] labels.
    fn add(&mut self, log_probs: &Tensor, labels: &Tensor) {
        let n = labels.size()[0];
        self.images += n as u64;
        let loss = log_probs.nll_loss(labels).to_kind(Kind::Double) * n as f64;
        let k = log_probs.size()[1].min(5);
        let (_, top) = log_probs.topk(k, 1, true, true);
        let hit = top.eq_tensor(&labels.unsqueeze(1));
        let top1 = hit.narrow(1, 0, 1).sum(Kind::Double);
        let top5 = hit.any_dim(1, false).sum(Kind::Double);
        let batch_sums = Tensor::stack(&[loss, top1, top5], 0);
        self.sums = Some(match self.sums.take() {
            Some(s) => s + batch_sums,
            None => batch_sums,
        });
    }

    fn finish(self) -> Result<Measurement> {
        let sums = self.sums.context("the evaluation split is empty")?;
        let v: Vec<f64> = Vec::try_from(sums.to_device(Device::Cpu))?;
        let n = self.images as f64;
        Ok(Measurement {
            images: self.images,
            loss: v[0] / n,
            // Count the misses first: 100 * (n - hits) / n prints as 8.08, not 8.079999999999998.
            top1_error: 100.0 * (n - v[1]) / n,
            top5_error: 100.0 * (n - v[2]) / n,
        })
    }
}

/// Float32 logits of `model` (eval mode) on `x`, in the configured memory format and precision.
fn forward_logits(model: &ResNet, mode: ForwardMode, x: Tensor) -> Tensor {
    let x = mode.prepare(x);
    mode.run(|| model.forward_t(&x, false)).to_kind(Kind::Float)
}

/// Log of the softmax averaged over the ten crops of [B, 10, 3, S, S] images.
fn ten_crop_log_probs(model: &ResNet, mode: ForwardMode, images: Tensor) -> Tensor {
    let s = images.size();
    let (n, crops) = (s[0], s[1]);
    let logits = forward_logits(model, mode, images.reshape([n * crops, s[2], s[3], s[4]]));
    let c = logits.size()[1];
    let probs = logits
        .softmax(-1, Kind::Float)
        .view([n, crops, c])
        .mean_dim(1, false, Kind::Float);
    probs.clamp_min(1e-12).log()
}

/// Log of the softmax averaged over every view of each image of a multi-scale batch: each group
/// of same-size views and its mirror image, in forward passes of at most `pixel_budget` input
/// pixels per image plane (at least one view).
fn multi_scale_log_probs(
    model: &ResNet,
    mode: ForwardMode,
    batch: &ScaledBatch,
    pixel_budget: i64,
) -> Tensor {
    let n = batch.labels.size()[0];
    let device = batch.labels.device();
    let mut sum: Option<Tensor> = None;
    let mut count = Tensor::zeros([n], (Kind::Float, device));
    for g in &batch.groups {
        let s = g.images.size();
        let (k, h, w) = (s[0], s[2], s[3]);
        let chunk = (pixel_budget / (h * w)).max(1);
        for start in (0..k).step_by(chunk as usize) {
            let len = chunk.min(k - start);
            let x = g.images.narrow(0, start, len);
            let owners = g.owners.narrow(0, start, len);
            for view in [x.shallow_clone(), x.flip([3])] {
                let probs = forward_logits(model, mode, view).softmax(-1, Kind::Float);
                let acc = sum.get_or_insert_with(|| {
                    Tensor::zeros([n, probs.size()[1]], (Kind::Float, device))
                });
                let _ = acc.index_add_(0, &owners, &probs);
                let _ = count.index_add_(0, &owners, &Tensor::ones([len], (Kind::Float, device)));
            }
        }
    }
    let sum = sum.unwrap_or_else(|| Tensor::zeros([n, 1], (Kind::Float, device)));
    (sum / count.unsqueeze(1)).clamp_min(1e-12).log()
}

/// Evaluates `model` (eval mode: BN running statistics) on the data source's test/validation
/// split with `protocol`; with several views per image the softmax is averaged over them (the
/// paper's score averaging). Sums stay on the device; one read at the end.
pub fn evaluate(
    model: &ResNet,
    data: &mut dyn DataSource,
    batch_size: usize,
    mode: ForwardMode,
    protocol: &Protocol,
) -> Result<Measurement> {
    let _guard = tch::no_grad_guard();
    let mut sums = Sums::default();
    match protocol {
        Protocol::SingleCrop => {
            for b in data.eval_batches(batch_size)? {
                let b = b?;
                let lp = forward_logits(model, mode, b.images).log_softmax(-1, Kind::Float);
                sums.add(&lp, &b.labels);
            }
        }
        Protocol::TenCrop => {
            for b in data.eval_ten_crop(batch_size)? {
                let b = b?;
                sums.add(&ten_crop_log_probs(model, mode, b.images), &b.labels);
            }
        }
        Protocol::MultiScale(scales) => {
            // A forward pass holds about `batch_size` images at the smallest scale.
            let side = *scales.iter().min().context("--multi-scale needs a scale")? as i64;
            let budget = batch_size as i64 * side * side;
            for b in data.eval_multi_scale(scales, batch_size)? {
                let b = b?;
                sums.add(&multi_scale_log_probs(model, mode, &b, budget), &b.labels);
            }
        }
    }
    sums.finish()
}

/// Single-crop sums (loss, top-1 hits, top-5 hits, images) over the images `[start, end)` of
/// the evaluation split, in order: one data-parallel rank's share, whose sums over ranks give
/// the exact totals (no image padded or counted twice). Batches outside the share are skipped
/// after loading (a streamed source still decodes them).
pub fn single_crop_sums(
    model: &ResNet,
    data: &mut dyn DataSource,
    batch_size: usize,
    mode: ForwardMode,
    (start, end): (usize, usize),
) -> Result<[f64; 4]> {
    let _guard = tch::no_grad_guard();
    let mut sums = Sums::default();
    let mut at = 0usize;
    for b in data.eval_batches(batch_size)? {
        if at >= end {
            break;
        }
        let b = b?;
        let n = b.labels.size()[0] as usize;
        let (lo, hi) = (start.max(at), end.min(at + n));
        at += n;
        if lo >= hi {
            continue;
        }
        let (off, len) = ((lo + n - at) as i64, (hi - lo) as i64);
        let lp =
            forward_logits(model, mode, b.images.narrow(0, off, len)).log_softmax(-1, Kind::Float);
        sums.add(&lp, &b.labels.narrow(0, off, len));
    }
    let v: Vec<f64> = match &sums.sums {
        Some(t) => Vec::try_from(t.to_device(Device::Cpu))?,
        None => vec![0.0; 3],
    };
    Ok([v[0], v[1], v[2], sums.images as f64])
}

/// The result of [`single_crop_sums`] totals (summed over every share).
pub fn result_of_sums(v: [f64; 4]) -> Result<Measurement> {
    let n = v[3];
    if n <= 0.0 {
        bail!("the evaluation split is empty");
    }
    Ok(Measurement {
        images: n as u64,
        loss: v[0] / n,
        top1_error: 100.0 * (n - v[1]) / n,
        top5_error: 100.0 * (n - v[2]) / n,
    })
}

/// `resnet eval`: what it measured and where it goes.
pub struct EvalOutcome {
    pub row: EvalRow,
    pub csv: std::path::PathBuf,
    /// One-line notes for the user (an older checkpoint without its config).
    pub notes: Vec<String>,
}

/// How `resnet eval` evaluates a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// The testing protocol (one crop, Table 3's ten crops, Table 4's multi-scale).
    pub protocol: Protocol,
    /// Where [`record`] appends the row (default: the checkpoint folder's `eval.csv`; for
    /// weights-only files, `W.eval.csv` beside the weights `W.safetensors`).
    pub csv: Option<PathBuf>,
    /// Overrides the recipe's `run.device`.
    pub device: Option<DeviceChoice>,
    /// The recipe of a weights-only file ([`open_weights`]); `None` for our checkpoints.
    pub config: Option<PathBuf>,
}

/// Evaluates a checkpoint and appends the result ([`measure`], then [`record`]).
pub fn run(checkpoint: &Path, protocol: &Protocol, csv: Option<&Path>) -> Result<EvalOutcome> {
    let opts = EvalOptions {
        protocol: protocol.clone(),
        csv: csv.map(Path::to_path_buf),
        device: None,
        config: None,
    };
    let out = measure(checkpoint, &opts)?;
    record(&out)?;
    Ok(out)
}

/// Appends the measured row to its `eval.csv`.
pub fn record(out: &EvalOutcome) -> Result<()> {
    records::append_eval(&out.csv, &out.row)
}

/// A checkpoint with the recipe it was trained with ([`open`]), before its network is built.
pub struct Opened {
    pub checkpoint: PathBuf,
    /// The checkpoint's folder.
    pub dir: RunDir,
    /// Its training state and embedded config: those of `tensors` (one read of the file).
    pub header: checkpoint::CheckpointHeader,
    pub cfg: Config,
    /// One-line notes for the user (an older checkpoint without its config).
    pub notes: Vec<String>,
    /// The file the recipe came from, named when the weights do not fit its network: the
    /// checkpoint itself (its embedded config), the `config.toml` beside an older one, or the
    /// `--config` of weights from elsewhere.
    recipe: PathBuf,
    /// The checkpoint as read (tensors on the CPU), restored by [`Opened::restore`].
    tensors: checkpoint::Checkpoint,
}

/// The folder a checkpoint or weights file lies in (`.` for a bare file name): where its
/// `eval.csv` goes by default.
fn folder_of(file: &Path) -> RunDir {
    RunDir::new(
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
}

/// Reads a checkpoint and its recipe: the config embedded in it, which a `config.toml` beside it
/// must agree with; for a checkpoint written before configs were embedded, that `config.toml`
/// (with a note saying so). The file is read once: header and tensors come from the same bytes,
/// verified by their checksums, so a checkpoint replaced meanwhile (a run saving its next one)
/// cannot pair one checkpoint's iteration with another's weights.
pub fn open(checkpoint: &Path) -> Result<Opened> {
    let dir = folder_of(checkpoint);
    let tensors = checkpoint::load_checkpoint(checkpoint)?;
    let header = tensors.header();
    let mut notes = Vec::new();
    let cfg = checkpoint_recipe(&header, &dir.config(), &mut notes)?;
    let recipe = match &header.config {
        Some(_) => checkpoint.to_path_buf(),
        None => dir.config(),
    };
    Ok(Opened {
        recipe,
        checkpoint: checkpoint.to_path_buf(),
        dir,
        header,
        cfg,
        notes,
        tensors,
    })
}

/// Weights without a recipe of ours (a plain torchvision state dict: torchvision's pretrained
/// ResNet-50 saved with `safetensors.torch.save_file`, or `resnet export`'s output) with the
/// network, data and testing settings of `config`. The row's iteration is 0: the file does not
/// say how long it was trained.
pub fn open_weights(weights: &Path, config: &Path) -> Result<Opened> {
    let cfg = Config::load(config)?;
    let tensors = crate::run::torchvision::read_state_dict(weights)?;
    let ckpt = checkpoint::Checkpoint {
        path: weights.to_path_buf(),
        tensors,
        state: crate::run::state::TrainState::initial(&cfg),
        config: Some(cfg.clone()),
    };
    Ok(Opened {
        recipe: config.to_path_buf(),
        checkpoint: weights.to_path_buf(),
        dir: folder_of(weights),
        header: ckpt.header(),
        notes: vec![format!(
            "note: {} holds weights only; testing them with the network and data of {}",
            weights.display(),
            config.display()
        )],
        cfg,
        tensors: ckpt,
    })
}

impl Opened {
    /// Builds the recipe's network on its device (or `device`, overriding `run.device`), checks
    /// the memory budget, and only then copies the opened checkpoint's weights into it (the file
    /// is not read again).
    pub fn restore(
        &mut self,
        device: Option<DeviceChoice>,
    ) -> Result<(Device, nn::VarStore, ResNet)> {
        self.restore_for(device, &Protocol::SingleCrop)
    }

    /// [`Opened::restore`] for testing with `protocol`, whose largest batch (multi-scale: every
    /// side of a batch at once) the memory budget counts.
    pub fn restore_for(
        &mut self,
        device: Option<DeviceChoice>,
        protocol: &Protocol,
    ) -> Result<(Device, nn::VarStore, ResNet)> {
        if let Some(d) = device {
            self.cfg.run.device = d;
        }
        let dev = crate::sys::device::select(&self.cfg.run)?;
        match protocol {
            Protocol::MultiScale(sides) => {
                crate::run::budget::check_multi_scale(&self.cfg, dev, sides)?
            }
            _ => crate::run::budget::check(&self.cfg, dev)?,
        };
        let ckpt = &self.tensors;
        if self.cfg.run.precision == Precision::Bf16 {
            crate::sys::device::use_bf16_autocast();
        }
        let vs = nn::VarStore::new(dev);
        let model = ResNet::new(&vs.root(), &self.cfg.model);
        ckpt.restore_model(&vs, &self.cfg.model, &self.recipe)?;
        Ok((dev, vs, model))
    }
}

/// Evaluates a checkpoint with the network of its own recipe ([`open`]), or weights with that of
/// `opts.config` ([`open_weights`]). Writes nothing.
pub fn measure(checkpoint: &Path, opts: &EvalOptions) -> Result<EvalOutcome> {
    if let Some(c) = &opts.config {
        data::detection::refuse_for_classifier(&Config::load(c)?, "eval --config")?;
    }
    let mut opened = match &opts.config {
        Some(config) => open_weights(checkpoint, config)?,
        None => open(checkpoint)?,
    };
    let (device, _vs, model) = opened.restore_for(opts.device, &opts.protocol)?;
    let Opened {
        dir,
        header,
        cfg,
        notes,
        ..
    } = opened;
    let (mut data, _) = data::open_quiet(&cfg, device, false)?;
    let mode = ForwardMode::of(&cfg);
    // `--multi-scale` alone: the recipe's data.imagenet.multi_scale (the paper's by default).
    let protocol = match &opts.protocol {
        Protocol::MultiScale(s) if s.is_empty() => {
            Protocol::MultiScale(cfg.data.imagenet.multi_scale.clone())
        }
        p => p.clone(),
    };
    let r = evaluate(
        &model,
        data.as_mut(),
        cfg.run.eval_batch_size,
        mode,
        &protocol,
    )?;
    let row = EvalRow {
        checkpoint: checkpoint.display().to_string(),
        iteration: header.state.iteration,
        split: data.eval_split().to_string(),
        protocol: protocol.name(),
        crops: protocol.views(),
        images: r.images,
        loss: r.loss,
        top1_error: r.top1_error,
        top5_error: r.top5_error,
    };
    // Weights from elsewhere are not the run's own result: their rows never go into a run
    // folder's eval.csv unless --csv says so, but beside the weights (`W.eval.csv`).
    let csv = opts.csv.clone().unwrap_or_else(|| match &opts.config {
        Some(_) => checkpoint.with_extension("eval.csv"),
        None => dir.eval_csv(),
    });
    Ok(EvalOutcome { row, csv, notes })
}

/// The recipe a checkpoint was trained with: its embedded config, refusing a `config.toml`
/// beside it (`beside`) that disagrees; or, for an older checkpoint, that `config.toml`.
fn checkpoint_recipe(
    ckpt: &checkpoint::CheckpointHeader,
    beside: &Path,
    notes: &mut Vec<String>,
) -> Result<Config> {
    let Some(own) = &ckpt.config else {
        let cfg = Config::load(beside).with_context(|| {
            format!(
                "checkpoint {} has no embedded config (written by an earlier version), so the \
                 run config {} is needed to rebuild its network",
                ckpt.path.display(),
                beside.display()
            )
        })?;
        notes.push(format!(
            "note: checkpoint {} has no embedded config (written by an earlier version); \
             using {}",
            ckpt.path.display(),
            beside.display()
        ));
        return Ok(cfg);
    };
    if beside.exists() {
        let other = Config::load(beside)?;
        let diff = own.recipe_diff(&other);
        if !diff.is_empty() {
            let (a, b) = (describe_model(&own.model), describe_model(&other.model));
            let models = if a != b {
                format!("checkpoint is {a}, config is {b}")
            } else {
                format!("both are {a}, but their recipes differ")
            };
            bail!(
                "checkpoint {} does not belong with {} beside it: {models} ({}); move the \
                 checkpoint or the config so that each run folder holds one run",
                ckpt.path.display(),
                beside.display(),
                diff.join("; ")
            );
        }
    }
    Ok(own.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Augment, ModelConfig, NetKind};
    use crate::data::image::{decode_rgb, resize_shorter};
    use crate::data::scales::channel_mean;
    use crate::data::stream::Streaming;
    use crate::data::{folder, synthetic, InMemory};
    use image::RgbImage;

    const NCHW: ForwardMode = ForwardMode {
        channels_last: false,
        bf16_autocast: false,
    };

    #[test]
    fn protocols_parse_and_name_themselves() {
        let p = Protocol::multi_scale("[224,256,384,480,640]").unwrap();
        assert_eq!(p, Protocol::MultiScale(PAPER_SCALES.to_vec()));
        assert_eq!(
            (p.name().as_str(), p.views()),
            ("multi-scale 224/256/384/480/640", 10)
        );
        assert_eq!(
            Protocol::multi_scale(" 32, 48 ").unwrap(),
            Protocol::MultiScale(vec![32, 48])
        );
        assert_eq!(
            (Protocol::TenCrop.name().as_str(), Protocol::TenCrop.views()),
            ("10-crop", 10)
        );
        assert_eq!(Protocol::SingleCrop.name(), "1-crop");
        for (bad, says) in [
            ("224,,256", "`` is not a positive"),
            ("0", "`0` is not a positive"),
            ("224,big", "`big`"),
            ("256,224,256", "256 is listed twice"),
        ] {
            let e = format!("{:#}", Protocol::multi_scale(bad).unwrap_err());
            assert!(
                e.contains(says) && e.contains("--multi-scale"),
                "{bad}: {e}"
            );
        }
    }

    /// A CIFAR-style net of `classes` outputs with BN statistics away from 0/1.
    fn net(classes: usize) -> (nn::VarStore, ResNet) {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut cfg = ModelConfig::cifar(8, NetKind::Residual);
        cfg.classes = Some(classes);
        let model = ResNet::new(&vs.root(), &cfg);
        let _g = tch::no_grad_guard();
        for (name, mut v) in vs.variables() {
            if name.contains("bn") {
                let shift = if name.ends_with("var") || name.ends_with("weight") {
                    0.5
                } else {
                    -0.5
                };
                v.copy_(&(Tensor::rand_like(&v) + shift));
            }
        }
        (vs, model)
    }

    /// Directly, image by image: every scale and its flip, one forward pass each, softmax
    /// averaged, log. [N, C].
    fn per_image(model: &ResNet, images: &[RgbImage], scales: &[u32], mean: &Tensor) -> Tensor {
        let _g = tch::no_grad_guard();
        let rows: Vec<Tensor> = images
            .iter()
            .map(|img| {
                let mut probs = Vec::new();
                for &s in scales {
                    let r = resize_shorter(img, s);
                    let (w, h) = r.dimensions();
                    let x = Tensor::from_slice(r.as_raw())
                        .view([h as i64, w as i64, 3])
                        .permute([2, 0, 1])
                        .to_kind(Kind::Float)
                        / 255.0
                        - mean.view([3, 1, 1]);
                    for v in [x.shallow_clone(), x.flip([2])] {
                        let logits = model.forward_t(&v.unsqueeze(0), false);
                        probs.push(logits.softmax(-1, Kind::Float).squeeze_dim(0));
                    }
                }
                Tensor::stack(&probs, 0)
                    .mean_dim(0, false, Kind::Float)
                    .log()
            })
            .collect();
        Tensor::stack(&rows, 0)
    }

    /// Loss, top-1 and top-5 error (%) of [N, C] log-probabilities.
    fn scores(log_probs: &Tensor, labels: &[i64]) -> (f64, f64, f64) {
        let y = Tensor::from_slice(labels);
        let loss = log_probs.nll_loss(&y).double_value(&[]);
        let (_, top) = log_probs.topk(5, 1, true, true);
        let hit = top.eq_tensor(&y.unsqueeze(1));
        let n = labels.len() as f64;
        let h1 = hit.narrow(1, 0, 1).sum(Kind::Double).double_value(&[]);
        let h5 = hit.any_dim(1, false).sum(Kind::Double).double_value(&[]);
        (loss, 100.0 * (n - h1) / n, 100.0 * (n - h5) / n)
    }

    fn assert_matches(r: &Measurement, want: (f64, f64, f64), n: u64) {
        assert_eq!(r.images, n);
        assert!(
            (r.loss - want.0).abs() < 1e-5,
            "loss {} vs {}",
            r.loss,
            want.0
        );
        assert_eq!((r.top1_error, r.top5_error), (want.1, want.2));
    }

    /// ROOT/{train,val}/c{k}/{i}.png, the validation images in several sizes and aspect ratios.
    fn mixed_tree(root: &std::path::Path, classes: usize) -> Vec<(u32, u32)> {
        let sizes = [(96, 72), (72, 96), (80, 80), (100, 70), (66, 90), (96, 72)];
        let mut val_sizes = Vec::new();
        for (split, per) in [("train", 1), ("val", 2)] {
            for c in 0..classes {
                let dir = root.join(split).join(format!("c{c}"));
                std::fs::create_dir_all(&dir).unwrap();
                for i in 0..per {
                    let (w, h) = sizes[(c * 2 + i) % sizes.len()];
                    let img = RgbImage::from_fn(w, h, |x, y| {
                        image::Rgb([
                            (x * 3 + 40 * c as u32) as u8,
                            (y * 2 + 17 * i as u32) as u8,
                            ((x * y) % 251) as u8,
                        ])
                    });
                    img.save(dir.join(format!("{i}.png"))).unwrap();
                    if split == "val" {
                        val_sizes.push((w, h));
                    }
                }
            }
        }
        val_sizes
    }

    #[test]
    fn multi_scale_on_images_of_several_sizes_equals_a_per_image_computation() {
        let d = tempfile::tempdir().unwrap();
        let sizes = mixed_tree(d.path(), 6);
        let index = folder::scan(d.path()).unwrap();
        let files = index.eval.files.clone();
        let labels = index.eval.labels.clone();
        let mut data = Streaming::new(index, Augment::None, 0, 3, 2, false, Device::Cpu).unwrap();
        let images: Vec<RgbImage> = files.iter().map(|f| decode_rgb(f).unwrap()).collect();
        let mut dims: Vec<(u32, u32)> = images.iter().map(|i| i.dimensions()).collect();
        dims.sort();
        dims.dedup();
        assert!(dims.len() >= 4, "{sizes:?}");
        let (_vs, model) = net(6);
        let scales = [48, 64, 100];
        let mean = channel_mean(data.mean());
        let want = per_image(&model, &images, &scales, &mean);
        // Batch by batch: 5 images per batch, each group forwarded in chunks of at most
        // 5 * 48 * 48 pixels (one view at a time at scale 100).
        let mut got = Vec::new();
        let _g = tch::no_grad_guard();
        for b in data.eval_multi_scale(&scales, 5).unwrap() {
            let b = b.unwrap();
            assert!(b.groups.len() > scales.len(), "several sizes per scale");
            got.push(multi_scale_log_probs(&model, NCHW, &b, 5 * 48 * 48));
        }
        let got = Tensor::cat(&got, 0);
        assert!(got.allclose(&want, 1e-5, 1e-5, false), "{got} vs {want}");
        let p = Protocol::MultiScale(scales.to_vec());
        let r = evaluate(&model, &mut data, 5, NCHW, &p).unwrap();
        assert_matches(&r, scores(&want, &labels), 12);
    }

    #[test]
    fn multi_scale_on_synthetic_in_memory_data_equals_a_per_image_computation() {
        let set = synthetic::generate(7, 40, 23, 16, 5);
        let test_images = set.test_images.shallow_clone();
        let labels: Vec<i64> = Vec::try_from(&set.test_labels).unwrap();
        let mut data = InMemory::new(set, Augment::Cifar, 0, 5, Device::Cpu).unwrap();
        let (_vs, model) = net(7);
        let images = crate::data::image::to_rgb_images(&test_images);
        let mean = channel_mean(data.mean());
        // Native size, larger and smaller.
        let scales = [16, 24, 12];
        let want = per_image(&model, &images, &scales, &mean);
        let p = Protocol::MultiScale(scales.to_vec());
        let r = evaluate(&model, &mut data, 10, NCHW, &p).unwrap();
        assert_matches(&r, scores(&want, &labels), 23);
        // Single-crop stays what it was: the native image, per-pixel mean.
        let one = evaluate(&model, &mut data, 10, NCHW, &Protocol::SingleCrop).unwrap();
        let x = test_images.to_kind(Kind::Float) / 255.0 - data.mean();
        let lp = {
            let _g = tch::no_grad_guard();
            model.forward_t(&x, false).log_softmax(-1, Kind::Float)
        };
        assert_matches(&one, scores(&lp, &labels), 23);
    }

    /// [`open`] then [`Opened::restore`] read the checkpoint once: one replaced between them (a
    /// run saving its next checkpoint) cannot give one checkpoint's iteration with the other's
    /// weights.
    #[test]
    fn a_checkpoint_replaced_after_open_restores_the_opened_weights() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::from_toml(
            "name = \"t\"\n[model]\nfamily = \"cifar\"\ndepth = 8\n[data]\n\
             dataset = \"synthetic\"\n[run]\ndevice = \"cpu\"\n",
        )
        .unwrap();
        let path = dir.path().join("last.safetensors");
        let save = |seed: i64, iteration: u64| {
            tch::manual_seed(seed);
            let vs = nn::VarStore::new(Device::Cpu);
            let _model = ResNet::new(&vs.root(), &cfg.model);
            let mut state = crate::run::state::TrainState::initial(&cfg);
            state.iteration = iteration;
            let tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            checkpoint::save_checkpoint(&path, &tensors, &state, Some(&cfg)).unwrap();
            vs
        };
        let first = save(1, 20);
        let mut opened = open(&path).unwrap();
        let _second = save(2, 40);
        let (_, vs, _) = opened.restore(Some(DeviceChoice::Cpu)).unwrap();
        assert_eq!(opened.header.state.iteration, 20);
        let restored = vs.variables();
        for (name, t) in first.variables() {
            assert!(
                t.equal(&restored[&name]),
                "{name} is not the opened checkpoint's"
            );
        }
    }
}
