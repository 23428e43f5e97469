//! Weights in torchvision's own format (§3.3's ResNet-18…152 as `torchvision.models.resnet*`
//! builds them, Table 1): a plain state dict in safetensors, no metadata of ours. `export` writes
//! one from a checkpoint (what `model.load_state_dict(load_file(path), strict=True)` accepts),
//! `read_state_dict` reads one (a torchvision model saved with `safetensors.torch.save_file`), so
//! that torchvision's pretrained weights can be measured under the paper's testing protocols.
use super::checkpoint::{
    corrupt_weights, described_len, load_checkpoint, open_checkpoint, tensors_of, to_raw, Raw,
    MOMENTUM_PREFIX,
};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::Tensor;

/// torchvision's BatchNorm2d buffer counting training-mode forward passes; ours are one a step.
const BATCHES_TRACKED: &str = "num_batches_tracked";
/// The suffix that marks a BN layer among the tensors.
const RUNNING_MEAN: &str = "running_mean";

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub tensors: usize,
    pub iteration: u64,
}

/// The state dict torchvision's model of the same net holds: the checkpoint's model tensors
/// (momentum buffers left out) and, for every BN layer, `num_batches_tracked` = the iterations
/// trained (PyTorch counts one per training-mode forward, which is one per step).
pub fn state_dict(tensors: &HashMap<String, Tensor>, iteration: u64) -> BTreeMap<String, Tensor> {
    let mut out: BTreeMap<String, Tensor> = tensors
        .iter()
        .filter(|(n, _)| !n.starts_with(MOMENTUM_PREFIX))
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let bn: Vec<String> = out
        .keys()
        .filter_map(|n| n.strip_suffix(RUNNING_MEAN))
        .map(|prefix| format!("{prefix}{BATCHES_TRACKED}"))
        .collect();
    for name in bn {
        out.insert(name, Tensor::from(iteration as i64));
    }
    out
}

/// Writes the checkpoint's network as a torchvision state dict to `out` (atomically), after
/// [`check_out`], before reading anything.
pub fn export(checkpoint: &Path, out: &Path, force: bool) -> Result<Exported> {
    check_out(checkpoint, out, force)?;
    let ck = load_checkpoint(checkpoint)?;
    let dict = state_dict(&ck.tensors, ck.state.iteration);
    let raws: BTreeMap<&str, Raw> = dict
        .iter()
        .map(|(n, t)| Ok((n.as_str(), to_raw(n, t)?)))
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(raws.iter().map(|(n, r)| (*n, r)), &None)
        .context("serializing the state dict")?;
    crate::sys::atomic::write(out, &bytes)?;
    Ok(Exported {
        tensors: dict.len(),
        iteration: ck.state.iteration,
    })
}

/// Where `export` may write: never over the checkpoint itself (by any name: a symbolic or hard
/// link), never into a folder that holds a run (its checkpoint, config or records, whose run
/// could then only restart), and over an existing file only when `force` says so. A device or
/// FIFO (`/dev/stdout`) is written in place, never replaced.
fn check_out(checkpoint: &Path, out: &Path, force: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let o = out.display();
    let same =
        |a: &std::fs::Metadata, b: &std::fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
    if out == checkpoint
        || matches!((std::fs::metadata(out), std::fs::metadata(checkpoint)), (Ok(a), Ok(b)) if same(&a, &b))
    {
        bail!("--out {o} is the checkpoint itself; name another file");
    }
    let target = match crate::sys::atomic::resolve(out)? {
        crate::sys::atomic::Target::Regular(p) => p,
        crate::sys::atomic::Target::Special(_) => return Ok(()),
    };
    let folder = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let run = crate::run::dir::RunDir::new(folder).existing_run_files();
    if !run.is_empty() {
        bail!(
            "--out {o}: the folder {} holds a run ({}); write the state dict outside run folders",
            folder.display(),
            run.join(", ")
        );
    }
    if target.exists() && !force {
        bail!("--out {o} already exists; pass --force to replace it, or name another file");
    }
    Ok(())
}

/// Reads a plain state dict (torchvision's names; F32 weights, I64 counters), dropping the BN
/// counters `num_batches_tracked`, which our nets do not hold (eval mode never reads them). A
/// checkpoint of ours is refused: its own recipe says which network it is.
pub fn read_state_dict(path: &Path) -> Result<HashMap<String, Tensor>> {
    use std::io::Read;
    // The header's own account of the size is checked against the file before the data are
    // read: a valid dict followed by gigabytes costs nothing.
    let mut f = open_checkpoint(path)?;
    let want = described_len(path, &mut f, corrupt_weights)?;
    let mut bytes = Vec::new();
    f.take(want)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read weights {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e:?})", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: bad safetensors header ({e:?})", path.display()))?;
    if meta
        .metadata()
        .as_ref()
        .is_some_and(|m| m.contains_key("train_state"))
    {
        bail!(
            "{} is a checkpoint of resnet train, which carries its own recipe: evaluate it \
             without --config",
            path.display()
        );
    }
    let mut tensors = tensors_of(path, &st)?;
    tensors.retain(|n, _| !n.ends_with(BATCHES_TRACKED));
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dict_drops_momentum_and_counts_batches_per_bn() {
        let mut t = HashMap::new();
        for n in [
            "conv1.weight",
            "bn1.weight",
            "bn1.running_mean",
            "bn1.running_var",
        ] {
            t.insert(n.to_string(), Tensor::zeros([2], tch::kind::FLOAT_CPU));
        }
        t.insert(
            format!("{MOMENTUM_PREFIX}conv1.weight"),
            Tensor::zeros([2], tch::kind::FLOAT_CPU),
        );
        let d = state_dict(&t, 42);
        let names: Vec<&str> = d.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "bn1.num_batches_tracked",
                "bn1.running_mean",
                "bn1.running_var",
                "bn1.weight",
                "conv1.weight"
            ]
        );
        assert_eq!(d["bn1.num_batches_tracked"].int64_value(&[]), 42);
        assert_eq!(d["bn1.num_batches_tracked"].kind(), tch::Kind::Int64);
    }
}
