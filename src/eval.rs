//! Test-set evaluation: top-1 and top-5 error (paper §4.2's CIFAR-10 test error, Tables 2-4's
//! top-1/top-5 errors, and Table 3's 10-crop testing), and `resnet eval --checkpoint`, which
//! rebuilds the network from the run's own `config.toml` and appends to its `eval.csv`.
use crate::config::{Config, Precision};
use crate::data::{self, DataSource};
use crate::model::ResNet;
use crate::records::{self, EvalRow};
use crate::rundir::{self, RunDir};
use anyhow::{Context, Result};
use std::path::Path;
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

/// `resnet eval`: what it measured and where it wrote it.
pub struct EvalOutcome {
    pub row: EvalRow,
    pub csv: std::path::PathBuf,
}

/// Evaluates a checkpoint with the network of the `config.toml` beside it (never from flags),
/// appending the result to `csv` (default: the run folder's `eval.csv`).
pub fn run(checkpoint: &Path, ten_crop: bool, csv: Option<&Path>) -> Result<EvalOutcome> {
    let folder = checkpoint
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = RunDir::new(folder);
    let cfg_path = dir.config();
    let cfg = Config::load(&cfg_path).with_context(|| {
        format!(
            "the checkpoint's run config {} is needed to rebuild its network",
            cfg_path.display()
        )
    })?;
    let device = crate::device::select(&cfg.run)?;
    crate::budget::check(&cfg, device)?;
    let ckpt = rundir::load_checkpoint(checkpoint)?;
    if cfg.run.precision == Precision::Bf16 {
        crate::device::use_bf16_autocast();
    }
    let vs = nn::VarStore::new(device);
    let model = ResNet::new(&vs.root(), &cfg.model);
    ckpt.restore_model(&vs, &cfg_path)?;
    let (mut data, _) = data::open_quiet(&cfg, device, false)?;
    let mode = ForwardMode::of(&cfg);
    let r = evaluate(
        &model,
        data.as_mut(),
        cfg.run.eval_batch_size,
        mode,
        ten_crop,
    )?;
    let row = EvalRow {
        checkpoint: checkpoint.display().to_string(),
        iteration: ckpt.state.iteration,
        split: data.eval_split().to_string(),
        crops: if ten_crop { 10 } else { 1 },
        images: r.images,
        loss: r.loss,
        top1_error: r.top1_error,
        top5_error: r.top5_error,
    };
    let csv = csv.map(Path::to_path_buf).unwrap_or_else(|| dir.eval_csv());
    records::append_eval(&csv, &row)?;
    Ok(EvalOutcome { row, csv })
}
