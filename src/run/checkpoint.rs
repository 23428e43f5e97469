//! The checkpoint of a run (§4.2's 64k-iteration runs must survive a kill): one safetensors file
//! with the model's tensors under their torchvision names (parameters and BN running statistics,
//! plain contiguous float32), the SGD momentum buffers under
//! `optimizer.momentum_buffer.<parameter name>`, the small training state as JSON in the
//! `__metadata__` entry `train_state`, and the run's resolved config (its recipe) as TOML in the
//! entry `config`, so that a checkpoint alone says what it is. Checkpoints written before the
//! config was embedded (same format version 1) still load; their recipe is the `config.toml`
//! beside them. A checkpoint is written to a temporary file, synced and renamed, so a kill at
//! any moment leaves the previous checkpoint (or the new one) whole.
use crate::config::{Config, Family, ModelConfig, NetKind, Shortcut};
use crate::run::state::TrainState;
use crate::sys::console::shown;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

pub use crate::run::state::FORMAT_VERSION;
/// Metadata entry holding the run's resolved config (TOML).
pub const CONFIG_KEY: &str = "config";
/// Name prefix of the momentum buffers in a checkpoint.
pub const MOMENTUM_PREFIX: &str = "optimizer.momentum_buffer.";

/// A tensor ready for safetensors: CPU bytes.
pub(crate) struct Raw {
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

pub(crate) fn to_raw(name: &str, t: &Tensor) -> Result<Raw> {
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

/// Writes a checkpoint atomically: temp file in the same folder, fsync, rename
/// ([`crate::sys::atomic`]). `config` is the run's resolved config, embedded as its recipe (`None`
/// writes a checkpoint as versions before the embedding did, which are still read).
pub fn save_checkpoint(
    path: &Path,
    tensors: &[(String, Tensor)],
    state: &TrainState,
    config: Option<&Config>,
) -> Result<()> {
    let raws: BTreeMap<String, Raw> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), to_raw(n, t)?)))
        .collect::<Result<_>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT_VERSION.to_string());
    meta.insert("train_state".to_string(), serde_json::to_string(state)?);
    if let Some(cfg) = config {
        meta.insert(CONFIG_KEY.to_string(), cfg.to_toml()?);
    }
    let tensors_sum = tensors_digest(
        raws.iter()
            .map(|(n, r)| (n.as_str(), r.dtype, &r.shape[..], &r.bytes[..])),
    );
    meta.insert(STATE_SUM_KEY.to_string(), metadata_digest(&meta));
    meta.insert(TENSORS_SUM_KEY.to_string(), tensors_sum);
    let bytes = safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), &Some(meta))
        .context("serializing checkpoint")?;
    crate::sys::atomic::write(path, &bytes)
}

/// Metadata keys of the checksums (MD5, hex): of the other metadata entries (state, recipe,
/// format), and of every tensor's name, dtype, shape and bytes. Checkpoints written before them
/// carry neither and still load.
pub const STATE_SUM_KEY: &str = "checksum_state";
pub const TENSORS_SUM_KEY: &str = "checksum_tensors";

/// MD5 of the metadata entries other than the checksums, in key order.
fn metadata_digest(md: &HashMap<String, String>) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    let mut keys: Vec<&String> = md
        .keys()
        .filter(|k| *k != STATE_SUM_KEY && *k != TENSORS_SUM_KEY)
        .collect();
    keys.sort();
    for k in keys {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(md[k].as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

/// MD5 of tensors (name, dtype, shape, bytes) taken in name order.
fn tensors_digest<'a>(
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    use md5::{Digest, Md5};
    let mut all: Vec<_> = tensors.collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Md5::new();
    for (name, dtype, shape, bytes) in all {
        h.update(format!("{name}\0{dtype:?}\0{shape:?}\0{}\0", bytes.len()));
        h.update(bytes);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses a checkpoint whose `what` checksum (stored under `key`) is not `actual`.
fn verify_sum(
    path: &Path,
    md: &HashMap<String, String>,
    key: &str,
    what: &str,
    actual: impl FnOnce() -> String,
) -> Result<()> {
    match md.get(key) {
        None => Ok(()),
        Some(want) if *want == actual() => Ok(()),
        Some(_) => Err(corrupt(
            path,
            format!("the checksum of its {what} does not match"),
        )),
    }
}

/// A checkpoint read back: tensors on the CPU, and the training state.
pub struct Checkpoint {
    pub path: PathBuf,
    pub tensors: HashMap<String, Tensor>,
    pub state: TrainState,
    /// The run's resolved config; `None` in checkpoints written before it was embedded.
    pub config: Option<Config>,
}

/// What a checkpoint's header says: its training state and embedded recipe, read without the
/// tensors (so a run's recipe can be checked, e.g. against the memory budget, before gigabytes of
/// weights are loaded).
pub struct CheckpointHeader {
    pub path: PathBuf,
    pub state: TrainState,
    /// The run's resolved config; `None` in checkpoints written before it was embedded.
    pub config: Option<Config>,
}

/// The largest safetensors header this build reads (ours are a few hundred KiB).
const MAX_HEADER_BYTES: u64 = 64 << 20;

/// How a reader names a file whose layout is broken: [`corrupt`] for checkpoints,
/// [`corrupt_weights`] for plain state dicts.
pub(crate) type Bad = fn(&Path, String) -> anyhow::Error;

/// A plain state dict (weights from elsewhere) that is truncated or not what its header says.
pub(crate) fn corrupt_weights(path: &Path, what: String) -> anyhow::Error {
    anyhow::anyhow!(
        "weights {} are truncated or corrupt ({what})",
        path.display()
    )
}

fn corrupt(path: &Path, what: String) -> anyhow::Error {
    anyhow::anyhow!(
        "checkpoint {} is truncated or corrupt ({what}); its run can only restart \
         (resnet train --force) or resume from an intact copy",
        path.display()
    )
}

/// Opens a checkpoint for reading: a regular file (or a link to one). A FIFO, device or folder
/// is refused at once (opened without blocking, so a FIFO with no writer cannot hang the open).
pub(crate) fn open_checkpoint(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("checkpoint {} does not exist", path.display())
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read checkpoint {}", path.display()))
        }
    };
    let meta = f
        .metadata()
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "checkpoint {} is not a regular file ({}); name a .safetensors file",
            path.display(),
            crate::sys::atomic::file_kind(&meta.file_type())
        );
    }
    Ok(f)
}

/// The size the header of the open checkpoint `f` describes (8 + header + the end of the last
/// tensor's data), checked against the file's size before any tensor is read; `f` is left at
/// its start.
pub(crate) fn described_len(path: &Path, f: &mut std::fs::File, bad: Bad) -> Result<u64> {
    use std::io::Seek;
    let actual = f
        .metadata()
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?
        .len();
    let (n, json) = header_json(path, f, Some(actual), bad)?;
    let end = json
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let want = 8 + n + end;
    if want != actual {
        return Err(bad(
            path,
            format!("the file has {actual} bytes but its header describes {want} bytes"),
        ));
    }
    f.rewind()
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    Ok(want)
}

/// The safetensors header at the position of `f` (its start): the header's length in bytes and
/// its JSON. A length over [`MAX_HEADER_BYTES`], or past `file_len` when given, is corrupt.
fn header_json(
    path: &Path,
    f: &mut std::fs::File,
    file_len: Option<u64>,
    bad: Bad,
) -> Result<(u64, serde_json::Value)> {
    use std::io::Read;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| bad(path, format!("no header: {e}")))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES || file_len.is_some_and(|actual| 8 + n > actual) {
        return Err(bad(path, format!("a header of {n} bytes")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| bad(path, format!("header cut short: {e}")))?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| bad(path, format!("header: {e}")))?;
    Ok((n, json))
}

/// Reads only the header of a checkpoint: its state and recipe. A missing, truncated or corrupt
/// file is an error naming it.
pub fn read_header(path: &Path) -> Result<CheckpointHeader> {
    let mut f = open_checkpoint(path)?;
    let (_, json) = header_json(path, &mut f, None, corrupt)?;
    let md: HashMap<String, String> = json
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    parse_metadata(path, &md)
}

/// The state and recipe in a checkpoint's metadata, checking its format version.
fn parse_metadata(path: &Path, md: &HashMap<String, String>) -> Result<CheckpointHeader> {
    verify_sum(path, md, STATE_SUM_KEY, "training state and recipe", || {
        metadata_digest(md)
    })?;
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
    let config = md
        .get(CONFIG_KEY)
        .map(|text| -> Result<Config> {
            let cfg = Config::from_toml(text)?;
            cfg.validate()?;
            Ok(cfg)
        })
        .transpose()
        .with_context(|| format!("checkpoint {}: unreadable embedded config", path.display()))?;
    Ok(CheckpointHeader {
        path: path.to_path_buf(),
        state,
        config,
    })
}

/// Reads a checkpoint; a missing, truncated or corrupt file is an error naming it.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    use std::io::Read;
    let mut f = open_checkpoint(path)?;
    let want = described_len(path, &mut f, corrupt)?;
    let mut bytes = Vec::new();
    f.take(want)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| corrupt(path, format!("{e:?}")))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("checkpoint {}: bad header ({e:?})", path.display()))?;
    let md = meta.metadata().clone().unwrap_or_default();
    let CheckpointHeader { state, config, .. } = parse_metadata(path, &md)?;
    verify_sum(path, &md, TENSORS_SUM_KEY, "tensors", || {
        let views = st.tensors();
        tensors_digest(
            views
                .iter()
                .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
        )
    })?;
    Ok(Checkpoint {
        path: path.to_path_buf(),
        tensors: tensors_of(path, &st)?,
        state,
        config,
    })
}

/// The tensors of a safetensors file (F32 or I64), by name. A float tensor holding NaN or an
/// infinity is refused naming it: such weights give no meaningful error, and training never saves
/// them. Tensor names are file-derived: messages show them with control characters replaced.
pub(crate) fn tensors_of(
    path: &Path,
    st: &safetensors::SafeTensors<'_>,
) -> Result<HashMap<String, Tensor>> {
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let shown = shown(&name);
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::I64 => Kind::Int64,
            other => bail!(
                "checkpoint {}: tensor {shown} has dtype {other:?}; expected F32 or I64",
                path.display()
            ),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .with_context(|| format!("checkpoint {}: tensor {shown}", path.display()))?;
        if kind == Kind::Float && t.isfinite().all().int64_value(&[]) == 0 {
            bail!(
                "checkpoint {}: tensor {shown} holds NaN or infinite values; refusing weights \
                 that are not finite",
                path.display()
            );
        }
        tensors.insert(name, t);
    }
    Ok(tensors)
}

impl Checkpoint {
    /// Its state and recipe, as [`read_header`] gives them (from this same read of the file).
    pub fn header(&self) -> CheckpointHeader {
        CheckpointHeader {
            path: self.path.clone(),
            state: self.state.clone(),
            config: self.config.clone(),
        }
    }

    /// Copies the model tensors into `vs` (built from `model`, the model of the config file
    /// `config`), requiring exactly the same names and shapes. When they differ, the error says
    /// which network the checkpoint holds (read from its tensors) and which one the config
    /// describes, or else names the first missing, extra or mis-shaped tensor.
    pub fn restore_model(
        &self,
        vs: &tch::nn::VarStore,
        model: &ModelConfig,
        config: &Path,
    ) -> Result<()> {
        if let Some(what) = self.check_tensors(vs) {
            let held = self.infer_model(model.kind);
            if let Some(held) = held.filter(|h| describe_model(h) != describe_model(model)) {
                bail!(
                    "checkpoint {} is {}, config {} is {} ({what})",
                    self.path.display(),
                    describe_model(&held),
                    config.display(),
                    describe_model(model)
                );
            }
            bail!(
                "checkpoint {} does not match the model of {}: {what}",
                self.path.display(),
                config.display()
            );
        }
        let vars = vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, v) in &vars {
                let mut v = v.shallow_clone();
                v.f_copy_(&self.tensors[name].to_device(v.device()))
                    .with_context(|| format!("restoring {name}"))?;
            }
            Ok(())
        })
    }

    /// The first difference between the model tensors and the variables of `vs`, if any.
    fn check_tensors(&self, vs: &tch::nn::VarStore) -> Option<String> {
        let vars = vs.variables();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in &names {
            let Some(t) = self.tensors.get(*name) else {
                return Some(format!("tensor {} is missing", shown(name)));
            };
            if t.size() != vars[*name].size() {
                return Some(format!(
                    "tensor {} has shape {:?}, the model expects {:?}",
                    shown(name),
                    t.size(),
                    vars[*name].size()
                ));
            }
        }
        let mut extra: Vec<&String> = self
            .tensors
            .keys()
            .filter(|n| !n.starts_with(MOMENTUM_PREFIX) && !vars.contains_key(*n))
            .collect();
        extra.sort();
        extra
            .first()
            .map(|n| format!("tensor {} is not part of the model", shown(n)))
    }

    /// The network these tensors belong to, read from their names and shapes: family (stem
    /// kernel), blocks per stage, bottlenecks, projection shortcuts and classes. A plain and a
    /// residual net have the same tensors, so `kind` is taken as given. `None` when the tensors
    /// fit no network of the paper.
    pub fn infer_model(&self, kind: NetKind) -> Option<ModelConfig> {
        let shape = |n: &str| self.tensors.get(n).map(|t| t.size());
        let stem = shape("conv1.weight")?;
        let classes = *shape("fc.weight")?.first()? as usize;
        let family = match stem.get(2)? {
            3 => Family::Cifar,
            7 => Family::Imagenet,
            _ => return None,
        };
        let stages = if family == Family::Cifar { 3 } else { 4 };
        let blocks: Vec<usize> = (1..=stages)
            .map(|s| {
                (0..)
                    .take_while(|b| {
                        self.tensors
                            .contains_key(&format!("layer{s}.{b}.conv1.weight"))
                    })
                    .count()
            })
            .collect();
        let bottleneck = self.tensors.contains_key("layer1.0.conv3.weight");
        let depth = match family {
            Family::Cifar => (blocks.iter().all(|&b| b == blocks[0]) && !bottleneck)
                .then(|| 6 * blocks[0] + 2)?,
            Family::Imagenet => crate::config::IMAGENET_DEPTHS.into_iter().find(|&d| {
                crate::net::arch::imagenet_blocks(d)
                    .is_some_and(|(b, bn)| b == blocks.as_slice() && bn == bottleneck)
            })?,
        };
        let projections = self
            .tensors
            .keys()
            .filter(|n| n.ends_with(".downsample.0.weight"))
            .count();
        let shortcut = if projections == 0 {
            match (kind, family) {
                (NetKind::Residual, _) | (NetKind::Plain, Family::Cifar) => Shortcut::A,
                (NetKind::Plain, Family::Imagenet) => Shortcut::B,
            }
        } else if projections == blocks.iter().sum::<usize>() {
            Shortcut::C
        } else {
            Shortcut::B
        };
        let m = ModelConfig {
            family,
            depth,
            kind,
            shortcut: Some(shortcut),
            classes: Some(classes),
            stride_in_1x1: true,
        };
        m.validate().is_ok().then_some(m)
    }
}

/// `resnet20`, or `resnet20 with 7 classes` when the class count is not the family's default.
pub fn describe_model(m: &ModelConfig) -> String {
    let default_classes = match m.family {
        Family::Cifar => 10,
        Family::Imagenet => 1000,
    };
    if m.classes() == default_classes {
        m.display_name()
    } else {
        format!("{} with {} classes", m.display_name(), m.classes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::state::{Accumulators, ScheduleState, TrainState};

    fn state() -> TrainState {
        TrainState {
            format: FORMAT_VERSION,
            iteration: 42,
            seed: 3,
            schedule: ScheduleState::initial(&Default::default()),
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
            last_row: Some(40),
            data_key: Some("0123456789abcdef0123456789abcdef".into()),
        }
    }

    const TINY: &str = "name = \"t\"\n[model]\nfamily = \"cifar\"\ndepth = 8\n";

    /// The recipe travels in the checkpoint; a checkpoint without it (the older form) still
    /// loads, with `config` None; a missing file is named as missing.
    #[test]
    fn checkpoint_carries_its_config_and_older_ones_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("last.safetensors");
        let mut cfg = Config::from_toml(TINY).unwrap();
        cfg.optimizer.lr = 0.05;
        let t = vec![(
            "a".to_string(),
            Tensor::ones([3], (Kind::Float, tch::Device::Cpu)),
        )];
        save_checkpoint(&p, &t, &state(), Some(&cfg)).unwrap();
        let back = load_checkpoint(&p).unwrap().config.unwrap();
        assert!(
            back.recipe_diff(&cfg).is_empty(),
            "{:?}",
            back.recipe_diff(&cfg)
        );
        assert_eq!(back.optimizer.lr, 0.05);
        save_checkpoint(&p, &t, &state(), None).unwrap();
        let old = load_checkpoint(&p).unwrap();
        assert!(old.config.is_none());
        assert_eq!(old.state, state());
        let e = format!(
            "{:#}",
            load_checkpoint(&dir.path().join("x.safetensors"))
                .err()
                .unwrap()
        );
        assert!(e.ends_with("x.safetensors does not exist"), "{e}");
    }

    /// A checkpoint written before the checksums (no checksum keys) still loads, header and all;
    /// the same bytes with a flipped bit in a written one do not.
    #[test]
    fn checkpoints_without_checksums_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.safetensors");
        let raw = to_raw("a", &Tensor::ones([3], (Kind::Float, tch::Device::Cpu))).unwrap();
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT_VERSION.to_string());
        meta.insert(
            "train_state".to_string(),
            serde_json::to_string(&state()).unwrap(),
        );
        let bytes = safetensors::serialize([("a", &raw)], &Some(meta)).unwrap();
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(load_checkpoint(&p).unwrap().state, state());
        assert_eq!(read_header(&p).unwrap().state, state());
        let t = vec![(
            "a".to_string(),
            Tensor::ones([3], (Kind::Float, tch::Device::Cpu)),
        )];
        save_checkpoint(&p, &t, &state(), None).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let e = format!("{:#}", load_checkpoint(&p).err().unwrap());
        assert!(e.contains("checksum of its tensors"), "{e}");
    }

    /// The network is read back from a checkpoint's tensors for every shortcut option and both
    /// families (plain nets have the tensors of option A / B).
    #[test]
    fn the_network_is_read_from_the_tensors() {
        let check = |m: ModelConfig| {
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let _net = crate::net::model::ResNet::new(&vs.root(), &m);
            let ck = Checkpoint {
                path: "x".into(),
                tensors: vs.variables(),
                state: state(),
                config: None,
            };
            let got = ck.infer_model(m.kind).expect("a network of the paper");
            assert_eq!(describe_model(&got), describe_model(&m));
            assert_eq!(got.depth, m.depth);
        };
        check(ModelConfig::cifar(20, NetKind::Residual));
        check(ModelConfig::cifar(14, NetKind::Plain));
        for sc in [Shortcut::A, Shortcut::B, Shortcut::C] {
            let mut m = ModelConfig::cifar(8, NetKind::Residual);
            m.shortcut = Some(sc);
            m.classes = Some(7);
            check(m);
            check(ModelConfig::imagenet(18, NetKind::Residual, sc));
        }
        check(ModelConfig::imagenet(18, NetKind::Plain, Shortcut::B));
        check(ModelConfig::imagenet(50, NetKind::Residual, Shortcut::B));
        assert_eq!(
            describe_model(&ModelConfig::imagenet(34, NetKind::Residual, Shortcut::C)),
            "resnet34-C"
        );
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
            None,
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
