//! §3.4's data parallelism ("a mini-batch size of 256" over 8 GPUs) as PyTorch's
//! DistributedDataParallel does it, over the c10d group of [`crate::sys::dist`]: the global batch
//! of iteration t is the single-process one and rank r trains on its slice; initial weights come
//! from rank 0; one all-reduce (mean) a step over [`FlatSgd`]'s flat gradient buffer; BN
//! statistics are per replica while training, and the running statistics are rank 0's before an
//! evaluation or a checkpoint (DDP's `broadcast_buffers`), so every rank sees the same numbers.
use crate::sys::dist::Group;
use crate::train::optim::FlatSgd;
use anyhow::{bail, Result};
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
}
