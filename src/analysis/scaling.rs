//! `resnet bench --nproc N`: the data-parallel training step of §3.4 (the paper trained ImageNet
//! on 8 GPUs, CIFAR-10 on 2), here N worker processes on c10d, timed whole, and its one gradient
//! all-reduce timed alone, so that the all-reduce's time and its share of a step are measured,
//! not assumed.
//!
//! Each worker is one rank of `resnet train`'s data parallelism (src/train/dist.rs): the same
//! [`Trainer`] joined to the process group, each step training on its slice of the global batch
//! with the flat gradient averaged over the ranks, then the one-value stop agreement that
//! `resnet train` makes after every step. Rank 0's clock is the group's (every step ends in a
//! collective, so no rank runs ahead by more than a step). The all-reduce alone is the same call
//! on the same flat gradient buffer, repeated. Images/s count the global batch.
use super::throughput::{self, BenchOptions, BenchRecord};
use crate::config::Config;
use crate::sys::device;
use crate::sys::dist::Group;
use crate::train::{dist as replica, Trainer};
use anyhow::{bail, Result};
use std::time::Instant;

/// What rank 0 measured.
#[derive(Debug, Clone)]
pub struct ScalingOutcome {
    /// The row for the benchmark CSV: `impl` is the label with `+Nranks`, `threads` those of
    /// one rank; evaluation and the data share are not measured here (NaN).
    pub record: BenchRecord,
    pub world_size: usize,
    /// Milliseconds of one whole step (data, forward, backward, all-reduce, SGD, stop check).
    pub step_ms: f64,
    /// Milliseconds of one all-reduce (mean) of the flat gradient alone.
    pub all_reduce_ms: f64,
    /// Bytes of that gradient (fp32).
    pub grad_bytes: usize,
}

impl ScalingOutcome {
    /// The all-reduce's share of a step (0-1).
    pub fn all_reduce_share(&self) -> f64 {
        (self.all_reduce_ms / self.step_ms).min(1.0)
    }

    pub fn to_text(&self) -> String {
        let r = &self.record;
        format!(
            "{}: {} on {}, {} ranks x {} threads, {}/{}, global batch {}: train {:.1} images/s \
             over {} iterations; a step takes {:.2} ms, the gradient all-reduce ({:.2} MiB) \
             alone {:.2} ms: {:.1}% of the step",
            r.implementation,
            r.model,
            r.device,
            self.world_size,
            r.threads,
            r.precision,
            r.memory_format,
            r.batch,
            r.train_images_per_s,
            r.iters,
            self.step_ms,
            self.grad_bytes as f64 / (1024.0 * 1024.0),
            self.all_reduce_ms,
            100.0 * self.all_reduce_share()
        )
    }
}

/// Times `opts.iters` data-parallel steps of `cfg` in the group `g` (after `opts.warmup`
/// untimed ones), then as many all-reduces of the gradient alone. Every rank calls it; each
/// returns its own clock's figures (rank 0's are the ones to report).
pub fn run(cfg: &Config, opts: &BenchOptions, g: Group) -> Result<ScalingOutcome> {
    throughput::validate(cfg, opts)?;
    if cfg.run.cuda_graph {
        bail!("run.cuda_graph = true with --nproc: data-parallel steps are not captured");
    }
    let dev = device::select(&cfg.run)?;
    crate::run::budget::check(cfg, dev)?;
    let mut tr = Trainer::new(cfg, dev)?;
    replica::broadcast_params(&g, &tr.opt)?;
    let world_size = g.world_size();
    tr.join(g);
    throughput::warm_up(&mut tr, cfg, opts.warmup, dev)?;
    let step_s = throughput::time_train_steps(&mut tr, opts.warmup..opts.warmup + opts.iters, dev)?;
    let all_reduce_s = time_all_reduce(&tr, opts.iters, dev)?;
    let bs = cfg.optimizer.batch_size;
    let mut record = throughput::record_of(cfg, &opts.label, opts.iters, dev);
    record.implementation = format!("{}+{world_size}ranks", opts.label);
    record.train_images_per_s = opts.iters as f64 * bs as f64 / step_s;
    record.data_wait_frac = f64::NAN;
    record.eval_images_per_s = f64::NAN;
    Ok(ScalingOutcome {
        record,
        world_size,
        step_ms: 1e3 * step_s / opts.iters as f64,
        all_reduce_ms: 1e3 * all_reduce_s / opts.iters as f64,
        grad_bytes: tr.opt.flat_grads().numel() * 4,
    })
}

/// Seconds for `n` all-reduces (mean) of the flat gradient buffer alone.
fn time_all_reduce(tr: &Trainer, n: u64, dev: tch::Device) -> Result<f64> {
    let Some(g) = tr.group() else {
        bail!("the all-reduce needs a process group");
    };
    replica::any_rank(g, false)?; // start together
    let t0 = Instant::now();
    for _ in 0..n {
        replica::all_reduce_grads(g, &tr.opt)?;
    }
    device::synchronize(dev);
    Ok(t0.elapsed().as_secs_f64())
}
