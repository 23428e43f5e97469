//! Training as in paper §3.4 (ImageNet) and §4.2 (CIFAR-10): SGD with momentum and weight decay
//! on mini-batches, the learning rate lowered at fixed iterations or on a plateau, ResNet-110's
//! warm-up, everything counted in iterations (epochs shown alongside).
//!
//! [`Trainer`] is one run's model, optimizer and data with a sync-free [`Trainer::step`] (also
//! what the benchmark times); [`run`] is the whole run in two stages. [`prepare`] validates
//! everything without touching the run folder (config, options, the folder's lock, device, data,
//! model, and for a resume the checkpoint, its recipe and the curves) and returns a [`Prepared`];
//! [`Prepared::begin`] is the first step that writes, and the [`Session`] it returns runs the loop
//! (curve rows, evaluations, checkpoints, Ctrl-C/SIGTERM/SIGHUP and NaN handling) and the summary.
//!
//! Per-step statistics never leave the device inside a step: each step writes its loss and error
//! count into slot `k` of two small device buffers; the host reads them (one sync) every
//! `run.log_every` iterations, and every `schedule.warmup.check_every` during warm-up.
//!
//! With `run.cuda_graph` (CUDA only) [`Trainer::step`] is the same step captured once as a CUDA
//! graph and replayed (src/graph.rs): a few eager steps on the graph's side stream first (cuDNN
//! autotuning, workspaces, the momentum buffer's first step), then one capture of batch assembly,
//! forward, backward, SGD update and slot writes. What changes per step is written outside the
//! graph before each replay: the batch's indices, crops and flips (drawn on the host from
//! (seed, iteration) as in eager mode, copied asynchronously from page-locked memory into one
//! static device tensor, which also carries the slot index) and the learning rate (the
//! optimizer's 0-d device tensor, refilled when the schedule changes it: milestones, warm-up,
//! plateaus). Evaluation, checkpoints and restores stay eager; they read and write the same
//! tensors in place, so the graph stays valid.
//!
//! Data parallelism ([`dist`], [`run_with`]): each rank's [`Trainer`] trains on its slice of the
//! global batch and averages the flat gradient over the ranks; rank 0 alone writes the run
//! folder (the other ranks' [`Session`]s hold no lock and write nothing).
pub mod dist;
mod graph_step;
pub mod optim;
mod prepare;
pub mod progress;
mod resume;
pub mod schedule;
mod session;
mod trainer;

pub use prepare::{prepare, prepare_with, Prepared};
pub use resume::CHANGEABLE_ON_RESUME;
pub use session::{catch_stop_signals, request_stop, stop_requested, Session};
pub use trainer::{seeded, Trainer, GRAPH_WARMUP_STEPS};

use crate::config::Config;
use crate::run::records::Summary;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// How `run` treats the run folder and the terminal.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in `cfg.out_dir()` from its checkpoint.
    pub resume: bool,
    /// Start over in a folder that holds another run (deleting its files once the new run has
    /// been checked).
    pub force: bool,
    /// Show a progress bar (terminal) or progress lines.
    pub progress: bool,
    /// Recipe keys a resume may change deliberately (`--change KEY`, only
    /// [`CHANGEABLE_ON_RESUME`]); each change is recorded in the run's `changes.csv`.
    pub changes: Vec<String>,
}

/// What a finished (or interrupted) run leaves.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub summary: Summary,
    /// Stopped by Ctrl-C (checkpoint saved) before the last iteration.
    pub interrupted: bool,
}

fn model_summary(cfg: &Config, params: u64) -> Summary {
    let m = &cfg.model;
    Summary::unfinished(
        &cfg.name,
        &m.display_name(),
        m.family,
        m.kind,
        m.shortcut(),
        m.depth,
        params,
    )
}

/// The command that resumes the run in `dir`.
pub fn resume_command(dir: &Path) -> String {
    format!("resnet train --resume {}", dir.display())
}

/// Trains the run `cfg` describes into its run folder (see the module doc, and
/// [`crate::run::dir`] for the files). With `opts.resume` it continues from the folder's checkpoint exactly.
///
/// [`prepare`] checks everything first without changing the folder; only then does
/// [`Prepared::begin`] write to it, so a refused or failed start leaves the folder as it was.
pub fn run(cfg: &Config, opts: &TrainOptions) -> Result<RunOutcome> {
    run_with(cfg, opts, None)
}

/// [`run`] as one rank of a data-parallel run over `group` (None: one process); see
/// src/train/dist.rs for the semantics. Rank 0 alone writes the run folder.
pub fn run_with(
    cfg: &Config,
    opts: &TrainOptions,
    group: Option<crate::sys::dist::Group>,
) -> Result<RunOutcome> {
    let mut session = prepare_with(cfg, opts, group)?.begin(opts.progress)?;
    let (done, interrupted) = session.train()?;
    session.finish(done, interrupted)
}
