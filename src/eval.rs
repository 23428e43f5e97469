//! Test-set evaluation: top-1 and top-5 error (paper §4.2's CIFAR-10 test error, Tables 2-4's
//! top-1/top-5 errors, and Table 3's 10-crop testing), and `resnet eval --checkpoint`, which
//! rebuilds the network from the recipe embedded in the checkpoint (or, for an older checkpoint,
//! the run's `config.toml`) and appends to the run's `eval.csv`.
use crate::config::{Config, DeviceChoice, Precision};
use crate::data::{self, DataSource};
use crate::model::ResNet;
use crate::records::{self, EvalRow};
use crate::rundir::{self, describe_model, RunDir};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// How inputs reach the network: memory format and autocast (shared with training).
#[derive(Debug, Clone, Copy)]
pub struct ForwardMode {
    pub channels_last: bool,
    pub bf16_autocast: bool,
}

impl ForwardMode {
    pub fn of(cfg: &Config) -> ForwardMode {
        ForwardMode {
            channels_last: cfg.run.memory_format == crate::config::MemoryFormat::Nhwc,
            bf16_autocast: cfg.run.precision == Precision::Bf16,
        }
    }

    /// Puts a [N, C, H, W] batch in the configured memory format: channels-last strides for
    /// "nhwc" (tch has no memory-format API: permute to NHWC, make that contiguous, permute back
    /// to an NCHW-shaped view; free when the loader already produced NHWC memory, as the §4.2
    /// crop does), plain contiguous for "nchw" (otherwise an NHWC-strided batch would silently
    /// switch every convolution to channels-last with NCHW weights, converted at each call).
    pub fn prepare(&self, x: Tensor) -> Tensor {
        if x.dim() != 4 {
            x
        } else if self.channels_last {
            x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
        } else {
            x.contiguous()
        }
    }

    /// Runs `f` under bfloat16 CUDA autocast when `run.precision = "bf16"`.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.bf16_autocast {
            tch::autocast(true, f)
        } else {
            f()
        }
    }
}

/// Evaluation result; errors in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalResult {
    pub images: u64,
    pub loss: f64,
    pub top1_error: f64,
    pub top5_error: f64,
}

/// Evaluates `model` (eval mode: BN running statistics) on the data source's test/validation
/// split, single view or ten crops (softmax averaged over the crops). Sums stay on the device;
/// one read at the end.
pub fn evaluate(
    model: &ResNet,
    data: &mut dyn DataSource,
    batch_size: usize,
    mode: ForwardMode,
    ten_crop: bool,
) -> Result<EvalResult> {
    let _guard = tch::no_grad_guard();
    let mut sums: Option<Tensor> = None;
    let mut images = 0u64;
    let batches = if ten_crop {
        data.eval_ten_crop(batch_size)?
    } else {
        data.eval_batches(batch_size)?
    };
    for b in batches {
        let b = b?;
        let n = b.labels.size()[0];
        images += n as u64;
        let (log_probs, classes) = if ten_crop {
            let s = b.images.size();
            let crops = s[1];
            let x = mode.prepare(b.images.reshape([n * crops, s[2], s[3], s[4]]));
            let logits = mode.run(|| model.forward_t(&x, false)).to_kind(Kind::Float);
            let c = logits.size()[1];
            let probs = logits
                .softmax(-1, Kind::Float)
                .view([n, crops, c])
                .mean_dim(1, false, Kind::Float);
            (probs.clamp_min(1e-12).log(), c)
        } else {
            let x = mode.prepare(b.images);
            let logits = mode.run(|| model.forward_t(&x, false)).to_kind(Kind::Float);
            let c = logits.size()[1];
            (logits.log_softmax(-1, Kind::Float), c)
        };
        let loss = log_probs.nll_loss(&b.labels).to_kind(Kind::Double) * n as f64;
        let k = classes.min(5);
        let (_, top) = log_probs.topk(k, 1, true, true);
        let hit = top.eq_tensor(&b.labels.unsqueeze(1));
        let top1 = hit.narrow(1, 0, 1).sum(Kind::Double);
        let top5 = hit.any_dim(1, false).sum(Kind::Double);
        let batch_sums = Tensor::stack(&[loss, top1, top5], 0);
        sums = Some(match sums {
            Some(s) => s + batch_sums,
            None => batch_sums,
        });
    }
    let sums = sums.context("the evaluation split is empty")?;
    let v: Vec<f64> = Vec::try_from(sums.to_device(Device::Cpu))?;
    let n = images as f64;
    Ok(EvalResult {
        images,
        loss: v[0] / n,
        // Count the misses first: 100 * (n - hits) / n prints as 8.08, not 8.079999999999998.
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
    /// Ten-crop testing (Table 3).
    pub ten_crop: bool,
    /// Where [`record`] appends the row (default: the checkpoint folder's `eval.csv`).
    pub csv: Option<PathBuf>,
    /// Overrides the recipe's `run.device`.
    pub device: Option<DeviceChoice>,
}

/// Evaluates a checkpoint and appends the result ([`measure`], then [`record`]).
pub fn run(checkpoint: &Path, ten_crop: bool, csv: Option<&Path>) -> Result<EvalOutcome> {
    let opts = EvalOptions {
        ten_crop,
        csv: csv.map(Path::to_path_buf),
        device: None,
    };
    let out = measure(checkpoint, &opts)?;
    record(&out)?;
    Ok(out)
}

/// Appends the measured row to its `eval.csv`.
pub fn record(out: &EvalOutcome) -> Result<()> {
    records::append_eval(&out.csv, &out.row)
}

/// Evaluates a checkpoint with the network of its own recipe: the config embedded in it, which
/// a `config.toml` beside it must agree with; for a checkpoint written before configs were
/// embedded, that `config.toml` (with a note saying so). Writes nothing.
pub fn measure(checkpoint: &Path, opts: &EvalOptions) -> Result<EvalOutcome> {
    let folder = checkpoint
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = RunDir::new(folder);
    // The recipe and the memory budget are checked from the header, before the tensors load.
    let header = rundir::read_header(checkpoint)?;
    let mut notes = Vec::new();
    let mut cfg = checkpoint_recipe(&header, &dir.config(), &mut notes)?;
    if let Some(d) = opts.device {
        cfg.run.device = d;
    }
    let device = crate::device::select(&cfg.run)?;
    crate::budget::check(&cfg, device)?;
    let ckpt = rundir::load_checkpoint(checkpoint)?;
    if cfg.run.precision == Precision::Bf16 {
        crate::device::use_bf16_autocast();
    }
    let vs = nn::VarStore::new(device);
    let model = ResNet::new(&vs.root(), &cfg.model);
    let source = match ckpt.config {
        Some(_) => checkpoint.to_path_buf(),
        None => dir.config(),
    };
    ckpt.restore_model(&vs, &cfg.model, &source)?;
    let (mut data, _) = data::open_quiet(&cfg, device, false)?;
    let mode = ForwardMode::of(&cfg);
    let r = evaluate(
        &model,
        data.as_mut(),
        cfg.run.eval_batch_size,
        mode,
        opts.ten_crop,
    )?;
    let row = EvalRow {
        checkpoint: checkpoint.display().to_string(),
        iteration: ckpt.state.iteration,
        split: data.eval_split().to_string(),
        crops: if opts.ten_crop { 10 } else { 1 },
        images: r.images,
        loss: r.loss,
        top1_error: r.top1_error,
        top5_error: r.top5_error,
    };
    let csv = opts.csv.clone().unwrap_or_else(|| dir.eval_csv());
    Ok(EvalOutcome { row, csv, notes })
}

/// The recipe a checkpoint was trained with: its embedded config, refusing a `config.toml`
/// beside it (`beside`) that disagrees; or, for an older checkpoint, that `config.toml`.
fn checkpoint_recipe(
    ckpt: &rundir::CheckpointHeader,
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
