//! §3.4's data parallelism ("a mini-batch size of 256" over 8 GPUs) as PyTorch's
//! DistributedDataParallel does it, over the c10d group of [`crate::sys::dist`]: the global batch
//! of iteration t is the single-process one and rank r trains on its slice; initial weights come
//! from rank 0; one all-reduce (mean) a step over [`FlatSgd`]'s flat gradient buffer; BN
//! statistics are per replica while training, and the running statistics are rank 0's before an
//! evaluation or a checkpoint (DDP's `broadcast_buffers`), so every rank sees the same numbers.
//! Evaluation is sharded ([`eval_share`]: contiguous shares, sums all-reduced, nothing padded).
//! A stop (Ctrl-C, SIGTERM, SIGHUP on any rank) is agreed by [`any_rank`] after every step: one
//! one-value all-reduce, which on NCCL also waits for the step's work (a host sync a step).
use crate::config::Config;
use crate::sys::dist::{Backend, Env, Group, GroupOptions};
use crate::train::optim::FlatSgd;
use anyhow::{bail, Context, Result};
use std::time::Duration;
use tch::{nn, Tensor};

/// Each rank's share of `batch_size` (the global batch), or one line when it does not divide.
pub fn per_rank_batch(batch_size: usize, world_size: usize) -> Result<usize> {
    if world_size == 0 || !batch_size.is_multiple_of(world_size) {
        bail!(
            "optimizer.batch_size = {batch_size} (the global batch) does not divide by the world \
             size {world_size}"
        );
    }
    Ok(batch_size / world_size)
}

/// Rank `rank`'s slice (along dim 0) of the global batch `t`.
pub fn rank_slice(t: &Tensor, rank: usize, world_size: usize) -> Result<Tensor> {
    let n = per_rank_batch(t.size()[0] as usize, world_size)?;
    Ok(t.narrow(0, (rank * n) as i64, n as i64))
}

/// Every rank's parameters ← rank 0's (one broadcast of the flat parameter buffer).
pub fn broadcast_params(g: &Group, opt: &FlatSgd) -> Result<()> {
    let mut p = opt.flat_params().shallow_clone();
    tch::no_grad(|| g.broadcast(&mut p, 0))
}

/// The flat gradient buffer ← its mean over ranks (the one all-reduce of a step).
pub fn all_reduce_grads(g: &Group, opt: &FlatSgd) -> Result<()> {
    let mut grads = opt.flat_grads().shallow_clone();
    tch::no_grad(|| g.all_reduce_mean(&mut grads))
}

/// Every non-trainable variable of `vs` (BN running mean, variance, batch count) ← rank 0's,
/// in name order (the same on every rank).
pub fn broadcast_buffers(g: &Group, vs: &nn::VarStore) -> Result<()> {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars
        .iter()
        .filter(|(_, t)| !t.requires_grad())
        .map(|(n, _)| n)
        .collect();
    names.sort();
    tch::no_grad(|| {
        for name in names {
            let mut t = vars[name].shallow_clone();
            g.broadcast(&mut t, 0)?;
        }
        Ok(())
    })
}

/// Joins the process group torchrun's environment `env` describes (the rendezvous of
/// `init_process_group("env://")`): the backend follows the device (NCCL on CUDA at
/// cuda:LOCAL_RANK, Gloo on the CPU) unless `run.dist_backend` names one, every wait is bounded
/// by `run.dist_timeout_s`, and the ranks' configs are compared before anything else.
pub fn join(env: &Env, cfg: &Config) -> Result<Group> {
    let device = crate::sys::device::select(&cfg.run)?;
    let backend = match cfg.run.dist_backend.as_str() {
        "auto" => Backend::for_device(device),
        b => Backend::parse(b)?,
    };
    match (backend, device.is_cuda()) {
        (Backend::Gloo, true) => bail!(
            "run.dist_backend = \"gloo\" with training on CUDA: this build reduces CUDA \
             gradients with nccl only; use run.dist_backend = \"nccl\" (or \"auto\")"
        ),
        (Backend::Nccl, false) if tch::Cuda::device_count() > 0 => bail!(
            "run.dist_backend = \"nccl\" but the run trains on the CPU (run.device); use gloo \
             (or \"auto\")"
        ),
        _ => {}
    }
    let mut opts = GroupOptions::new(backend);
    opts.timeout = Duration::from_secs(cfg.run.dist_timeout_s);
    let g = Group::init(env, &opts)?;
    check_same_config(&g, cfg)?;
    Ok(g)
}

/// Every rank's rendering of the resolved config through the store, compared with rank 0's:
/// ranks started with different configs are refused (on every rank) with one line naming the
/// ranks and the differing keys, before anything is trained or written.
pub fn check_same_config(g: &Group, cfg: &Config) -> Result<()> {
    let mine = cfg.to_toml()?;
    let all = g.gather_bytes("resnet/config", mine.as_bytes())?;
    let first = Config::from_toml(&String::from_utf8_lossy(&all[0]))
        .context("rank 0's config as received through the store")?;
    let mut bad = Vec::new();
    for (r, bytes) in all.iter().enumerate().skip(1) {
        if bytes == &all[0] {
            continue;
        }
        let other = Config::from_toml(&String::from_utf8_lossy(bytes))
            .with_context(|| format!("rank {r}'s config as received through the store"))?;
        let keys = first.differing_keys(&other);
        bad.push(format!(
            "rank {r} differs from rank 0 in {}",
            keys.join(", ")
        ));
    }
    if !bad.is_empty() {
        bail!(
            "rank {} of {}: the ranks were started with different configs ({}); start every rank \
             with the same config and options",
            g.rank(),
            g.world_size(),
            bad.join("; ")
        );
    }
    Ok(())
}

/// Every rank's content key of its training data (`key`: what the data layer computed from the
/// files it read) compared with rank 0's: ranks that read different data behind the same
/// `data.path` (another copy on another machine, a folder changed between two starts) are
/// refused on every rank, naming the ranks and their keys, before anything is trained.
pub fn check_same_data(g: &Group, key: &str, path: &str) -> Result<()> {
    let all = g.gather_bytes("resnet/data_key", key.as_bytes())?;
    let shown = |b: &[u8]| crate::sys::console::shown(&String::from_utf8_lossy(b));
    let bad: Vec<String> = all
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, b)| *b != &all[0])
        .map(|(r, b)| format!("rank {r}: {}", shown(b)))
        .collect();
    if !bad.is_empty() {
        bail!(
            "rank {} of {}: the ranks read different data behind data.path = {} (content key of \
             rank 0: {}; {}); every rank must see the same files",
            g.rank(),
            g.world_size(),
            crate::sys::console::shown(path),
            shown(&all[0]),
            bad.join("; ")
        );
    }
    Ok(())
}

/// Whether any rank passes `flag` (one small all-reduce: the stop agreement of a step).
pub fn any_rank(g: &Group, flag: bool) -> Result<bool> {
    let mut v = [i64::from(flag)];
    g.all_reduce_counts(&mut v)?;
    Ok(v[0] > 0)
}

/// Every rank's outcome of a local step (preparing the run): this rank's own error, or, when
/// only others failed, one line naming them (their own messages say why), so that no rank goes
/// on alone into a collective that would wait for the timeout.
pub fn agree_ok<T>(g: &Group, local: Result<T>) -> Result<T> {
    let mut failed = vec![0i64; g.world_size()];
    failed[g.rank()] = i64::from(local.is_err());
    g.all_reduce_counts(&mut failed)?;
    let others: Vec<String> = failed
        .iter()
        .enumerate()
        .filter(|(r, f)| **f > 0 && *r != g.rank())
        .map(|(r, _)| r.to_string())
        .collect();
    match local {
        Err(e) => Err(e),
        Ok(_) if !others.is_empty() => bail!(
            "rank {} of {}: rank {} could not start the run (its own message says why); stopping",
            g.rank(),
            g.world_size(),
            others.join(", ")
        ),
        Ok(v) => Ok(v),
    }
}

/// The same `value` (e.g. the iteration a resume starts at) on every rank, or one line naming
/// the first rank that differs.
pub fn check_same_u64(g: &Group, what: &str, value: u64) -> Result<()> {
    let all = g.gather_bytes(&format!("resnet/{what}"), &value.to_le_bytes())?;
    let as_u64 = |b: &[u8]| b.try_into().map(u64::from_le_bytes).unwrap_or(u64::MAX);
    let first = as_u64(&all[0]);
    if let Some((r, v)) = all
        .iter()
        .map(|b| as_u64(b))
        .enumerate()
        .find(|(_, v)| *v != first)
    {
        bail!(
            "rank {} of {}: the {what} differs between ranks (rank 0: {first}, rank {r}: {v}); \
             every rank must see the same run folder (a shared filesystem across machines)",
            g.rank(),
            g.world_size()
        );
    }
    Ok(())
}

/// Rank `rank`'s contiguous share `[start, end)` of `n` evaluation images (sizes differ by at
/// most one; every image is counted once, none is padded or repeated).
pub fn eval_share(n: usize, rank: usize, world_size: usize) -> (usize, usize) {
    (rank * n / world_size, (rank + 1) * n / world_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_that_does_not_divide_is_one_line() {
        assert_eq!(per_rank_batch(128, 2).unwrap(), 64);
        let e = per_rank_batch(126, 4).unwrap_err().to_string();
        assert!(
            e.contains("optimizer.batch_size = 126") && e.contains("world size 4"),
            "{e}"
        );
        let t = Tensor::arange(6, (tch::Kind::Int64, tch::Device::Cpu));
        assert_eq!(
            Vec::<i64>::try_from(&rank_slice(&t, 1, 2).unwrap()).unwrap(),
            [3, 4, 5]
        );
    }

    #[test]
    fn eval_shares_cover_the_split_once() {
        for (n, w) in [(10, 3), (7, 2), (1, 2), (10000, 8)] {
            let mut next = 0;
            for r in 0..w {
                let (a, b) = eval_share(n, r, w);
                assert_eq!(a, next, "n {n} w {w} r {r}");
                assert!(b - a <= n / w + 1);
                next = b;
            }
            assert_eq!(next, n);
        }
    }
}
