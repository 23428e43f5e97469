//! The run folder of a training run (§4.2's 64k-iteration runs take hours: they must survive a
//! kill): `config.toml`, `curves.csv`, `summary.csv`, and the checkpoint `last.safetensors`.
//!
//! The checkpoint is one safetensors file: the model's tensors under their torchvision names
//! (parameters and BN running statistics, plain contiguous float32), the SGD momentum buffers
//! under `optimizer.momentum_buffer.<parameter name>`, and the small training state as JSON in
//! the `__metadata__` entry `train_state`. It is written to a temporary file, synced and renamed,
//! so a kill at any moment leaves the previous checkpoint (or the new one) whole.
use crate::config::Config;
use crate::schedule::ScheduleState;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, View};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Checkpoint format version (metadata `format`).
pub const FORMAT_VERSION: u32 = 1;
/// Name prefix of the momentum buffers in a checkpoint.
pub const MOMENTUM_PREFIX: &str = "optimizer.momentum_buffer.";
/// File names inside a run folder.
pub const CONFIG_FILE: &str = "config.toml";
pub const CURVES_FILE: &str = "curves.csv";
pub const SUMMARY_FILE: &str = "summary.csv";
pub const CHECKPOINT_FILE: &str = "last.safetensors";
pub const EVAL_FILE: &str = "eval.csv";

/// Host-side metric sums of the current curve interval and warm-up window (so that a checkpoint
/// taken mid-interval, e.g. on Ctrl-C, resumes with the same row values).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accumulators {
    pub loss_sum: f64,
    pub errors: u64,
    pub images: u64,
    pub steps: u64,
    pub warm_errors: u64,
    pub warm_images: u64,
}

/// The training state besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub format: u32,
    /// Iterations completed.
    pub iteration: u64,
    pub seed: u64,
    pub schedule: ScheduleState,
    /// Whether the momentum buffers hold values (false before the first step).
    pub momentum_started: bool,
    pub acc: Accumulators,
    /// Best evaluated error (percent) and its iteration.
    pub best_test_error: Option<f64>,
    pub best_iteration: u64,
    pub last_test_error: Option<f64>,
    pub last_train_error: Option<f64>,
    /// Training seconds so far (over all sessions of the run).
    pub elapsed_s: f64,
}

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }
    pub fn curves(&self) -> PathBuf {
        self.path.join(CURVES_FILE)
    }
    pub fn summary(&self) -> PathBuf {
        self.path.join(SUMMARY_FILE)
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.path.join(CHECKPOINT_FILE)
    }
    pub fn eval_csv(&self) -> PathBuf {
        self.path.join(EVAL_FILE)
    }

    /// The run files present in the folder (what makes it "hold a run").
    pub fn existing_run_files(&self) -> Vec<&'static str> {
        [CONFIG_FILE, CURVES_FILE, SUMMARY_FILE, CHECKPOINT_FILE]
            .into_iter()
            .filter(|f| self.path.join(f).exists())
            .collect()
    }

    /// Makes the folder ready for a new run (`force`: deleting an old run's files) or checks that
    /// a resumed one is there, then writes the resolved config first.
    pub fn prepare(&self, cfg: &Config, resume: bool, force: bool) -> Result<()> {
        let existing = self.existing_run_files();
        if !resume && !existing.is_empty() {
            if !force {
                bail!(
                    "run folder {} already holds a run ({}); pass --resume to continue it or \
                     --force to start over (deletes its checkpoint and curves), or choose another \
                     folder with --out",
                    self.path.display(),
                    existing.join(", ")
                );
            }
            for f in [CURVES_FILE, SUMMARY_FILE, CHECKPOINT_FILE, EVAL_FILE] {
                let p = self.path.join(f);
                if p.exists() {
                    std::fs::remove_file(&p)
                        .with_context(|| format!("cannot remove {}", p.display()))?;
                }
            }
        }
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("cannot create run folder {}", self.path.display()))?;
        crate::table::write_atomic(&self.config(), cfg.to_toml()?.as_bytes())
    }
}

/// A tensor ready for safetensors: CPU bytes.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn to_raw(name: &str, t: &Tensor) -> Result<Raw> {
    let t = t.to_device(tch::Device::Cpu).contiguous();
    let (dtype, kind) = match t.kind() {
        Kind::Float => (Dtype::F32, Kind::Float),
        Kind::Int64 => (Dtype::I64, Kind::Int64),
        other => bail!("tensor {name}: dtype {other:?} cannot be checkpointed"),
    };
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * kind.elt_size_in_bytes()];
    t.f_copy_data_u8(&mut bytes, numel)
        .with_context(|| format!("copying tensor {name} to the host"))?;
    Ok(Raw {
        dtype,
        shape: t.size().iter().map(|&d| d as usize).collect(),
        bytes,
    })
}

/// Writes a checkpoint atomically: temp file in the same folder, fsync, rename ([`crate::atomic`]).
pub fn save_checkpoint(
    path: &Path,
    tensors: &[(String, Tensor)],
    state: &TrainState,
) -> Result<()> {
    let raws: BTreeMap<String, Raw> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), to_raw(n, t)?)))
        .collect::<Result<_>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT_VERSION.to_string());
    meta.insert("train_state".to_string(), serde_json::to_string(state)?);
    let bytes = safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), &Some(meta))
        .context("serializing checkpoint")?;
    crate::atomic::write(path, &bytes)
}

/// A checkpoint read back: tensors on the CPU, and the training state.
pub struct Checkpoint {
    pub path: PathBuf,
    pub tensors: HashMap<String, Tensor>,
    pub state: TrainState,
}

/// Reads a checkpoint; a truncated or corrupt file is an error naming it.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "checkpoint {} is truncated or corrupt ({e:?}); its run can only restart \
             (resnet train --force) or resume from an intact copy",
            path.display()
        )
    })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("checkpoint {}: bad header ({e:?})", path.display()))?;
    let md = meta.metadata().clone().unwrap_or_default();
    let format: u32 = md
        .get("format")
        .and_then(|v| v.parse().ok())
        .with_context(|| {
            format!(
                "checkpoint {}: no format version in metadata",
                path.display()
            )
        })?;
    if format != FORMAT_VERSION {
        bail!(
            "checkpoint {}: format version {format}, this build reads version {FORMAT_VERSION}",
            path.display()
        );
    }
    let state: TrainState =
        serde_json::from_str(md.get("train_state").with_context(|| {
            format!("checkpoint {}: no train_state in metadata", path.display())
        })?)
        .with_context(|| format!("checkpoint {}: unreadable train_state", path.display()))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::I64 => Kind::Int64,
            other => bail!(
                "checkpoint {}: tensor {name} has dtype {other:?}; expected F32 or I64",
                path.display()
            ),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .with_context(|| format!("checkpoint {}: tensor {name}", path.display()))?;
        tensors.insert(name, t);
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        tensors,
        state,
    })
}

impl Checkpoint {
    /// Copies the model tensors into `vs`, requiring exactly the same names and shapes (errors
    /// name the first missing, extra or mis-shaped tensor and say which config it was checked
    /// against).
    pub fn restore_model(&self, vs: &tch::nn::VarStore, config: &Path) -> Result<()> {
        let vars = vs.variables();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        let ctx = |what: String| {
            anyhow::anyhow!(
                "checkpoint {} does not match the model of {}: {what}",
                self.path.display(),
                config.display()
            )
        };
        for name in &names {
            let Some(t) = self.tensors.get(*name) else {
                return Err(ctx(format!("tensor {name} is missing")));
            };
            if t.size() != vars[*name].size() {
                return Err(ctx(format!(
                    "tensor {name} has shape {:?}, the model expects {:?}",
                    t.size(),
                    vars[*name].size()
                )));
            }
        }
        let mut extra: Vec<&String> = self
            .tensors
            .keys()
            .filter(|n| !n.starts_with(MOMENTUM_PREFIX) && !vars.contains_key(*n))
            .collect();
        extra.sort();
        if let Some(n) = extra.first() {
            return Err(ctx(format!("tensor {n} is not part of the model")));
        }
        tch::no_grad(|| -> Result<()> {
            for name in names {
                let mut v = vars[name].shallow_clone();
                v.f_copy_(&self.tensors[name].to_device(v.device()))
                    .with_context(|| format!("restoring {name}"))?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Schedule;

    fn state() -> TrainState {
        TrainState {
            format: FORMAT_VERSION,
            iteration: 42,
            seed: 3,
            schedule: Schedule::new(&Default::default(), 0.1).state,
            momentum_started: true,
            acc: Accumulators {
                loss_sum: 1.25,
                errors: 3,
                images: 64,
                steps: 2,
                ..Default::default()
            },
            best_test_error: Some(12.5),
            best_iteration: 40,
            last_test_error: Some(13.0),
            last_train_error: None,
            elapsed_s: 9.5,
        }
    }

    #[test]
    fn checkpoint_round_trips_and_truncation_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("last.safetensors");
        let a = Tensor::arange(6, (Kind::Float, tch::Device::Cpu)).view([2, 3]);
        // A non-contiguous view is stored in logical order.
        let b = a.tr();
        save_checkpoint(
            &p,
            &[
                ("a".into(), a.shallow_clone()),
                ("b".into(), b.shallow_clone()),
            ],
            &state(),
        )
        .unwrap();
        let c = load_checkpoint(&p).unwrap();
        assert_eq!(c.state, state());
        assert!(c.tensors["a"].equal(&a));
        assert!(c.tensors["b"].equal(&b.contiguous()));
        assert!(!p.with_extension("safetensors.tmp").exists());
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        let e = format!("{:#}", load_checkpoint(&p).err().unwrap());
        assert!(
            e.contains("truncated or corrupt") && e.contains("last.safetensors"),
            "{e}"
        );
    }
}
