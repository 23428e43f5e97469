//! `resnet eval --checkpoint`: a checkpoint (or a plain state dict with a recipe) opened with the
//! network of the recipe it carries (older checkpoints: the run's `config.toml`), measured under
//! one of §3.4's protocols ([`super::protocols`]) and recorded in `eval.csv`.
use super::protocols::{evaluate, Protocol};
use crate::config::{Config, DeviceChoice, Precision};
use crate::data;
use crate::net::forward::ForwardMode;
use crate::net::model::ResNet;
use crate::run::checkpoint::{self, describe_model};
use crate::run::dir::RunDir;
use crate::run::records::{self, EvalRow};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::nn;
use tch::Device;

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
    use tch::Tensor;

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
