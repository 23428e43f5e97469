//! `resnet train`: one run of §3.4 / §4.2 into its run folder, or its exact resume.
use super::{parse_device, resolve_config, Overrides};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The experiment config (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run from its checkpoint: alone with --config, or given the run folder
    /// (`--resume runs/NAME`, which reads that folder's config.toml). The recipe (model, data,
    /// optimizer, schedule, seed) must be the one the checkpoint was trained with (see --change).
    #[arg(long, num_args = 0..=1, value_name = "RUN_FOLDER")]
    pub resume: Option<Option<PathBuf>>,
    /// Start over in a run folder that holds another run: once the new run has been checked
    /// (config, device, data, model; nothing is deleted if any check fails), deletes the old
    /// run's last.safetensors, curves.csv, summary.csv, eval.csv and changes.csv, and replaces
    /// its config.toml.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// With --resume: let the resume change these recipe keys deliberately (comma separated:
    /// schedule.iterations, schedule.milestones, schedule.gamma, schedule.plateau_patience,
    /// schedule.plateau_threshold, run.eval_every, data.path, data.content: the training data's
    /// images and labels, whose key the checkpoint records, run.world_size), e.g. `--resume runs/NAME --iterations 96000
    /// --change schedule.iterations`. Each change is recorded in the run's changes.csv with the
    /// iteration it applies from; without it, a resume whose recipe differs from the
    /// checkpoint's is refused.
    #[arg(long, value_delimiter = ',', value_name = "KEY", requires = "resume")]
    pub change: Vec<String>,
    /// Override schedule.iterations (milestones after it are dropped).
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
    /// Override run.device: auto, cpu or cuda.
    #[arg(long)]
    pub device: Option<String>,
    /// Override run.out_dir (the run folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Override data.path.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Override run.seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override run.cuda_graph (true: replay the training step as one CUDA graph; CUDA only).
    /// Switching it on --resume continues the same run exactly.
    #[arg(long, value_name = "BOOL")]
    pub cuda_graph: Option<bool>,
    /// Data parallelism on this machine: start N worker processes of this command with
    /// torchrun's environment (rank 0 hosts the store; Gloo on the CPU, NCCL on CUDA, one GPU a
    /// rank). optimizer.batch_size stays the global batch and must divide by N. Under torchrun
    /// (RANK/WORLD_SIZE set) leave it out.
    #[arg(long, value_name = "N")]
    pub nproc: Option<usize>,
}

pub fn exec(a: Args) -> Result<()> {
    use resnet::train;
    let overrides = Overrides {
        iterations: a.iterations,
        device: a.device.as_deref().map(parse_device).transpose()?,
        out: a.out,
        data: a.data,
        seed: a.seed,
        cuda_graph: a.cuda_graph,
    };
    let resume_dir = a.resume.clone().flatten();
    let mut cfg = resolve_config(a.config.as_deref(), resume_dir.as_deref(), &overrides)?;
    resnet::data::detection::refuse_for_classifier(&cfg, "train")?;
    let env = resnet::sys::dist::Env::from_process()?;
    if let Some(n) = a.nproc {
        return launch_local(n, env.is_some(), cfg);
    }
    // The world size is the environment's (part of the recipe: a resume with another one
    // needs --change run.world_size).
    cfg.run.world_size = env.as_ref().map_or(1, |e| e.world_size);
    cfg.validate()?;
    let rank = env.as_ref().map_or(0, |e| e.rank);
    let group = match &env {
        Some(e) if e.world_size > 1 => {
            Some(train::dist::join(e, &cfg).map_err(|err| with_rank(err, e.rank, e.world_size))?)
        }
        _ => None,
    };
    let world = group.as_ref().map_or(1, |g| g.world_size());
    // Workers restarted by `torchrun --max-restarts K` continue from the last checkpoint (a
    // first attempt's --force is not repeated).
    let restarted = env.as_ref().is_some_and(|e| e.restart_count > 0);
    let opts = train::TrainOptions {
        resume: a.resume.is_some() || restarted,
        force: a.force && !restarted,
        progress: true,
        changes: a.change,
    };
    let out = train::run_with(&cfg, &opts, group).map_err(|err| with_rank(err, rank, world))?;
    report(&out, rank, world)
}

/// `--nproc N`: the config checked once with world size N (e.g. a batch that does not divide,
/// rather than by every worker), then N workers of this command.
pub(super) fn launch_local(
    n: usize,
    under_torchrun: bool,
    mut cfg: resnet::config::Config,
) -> Result<()> {
    if under_torchrun {
        bail!("--nproc {n} starts its own workers: leave it out under torchrun (RANK/WORLD_SIZE are set)");
    }
    cfg.run.world_size = n;
    cfg.validate()
        .with_context(|| format!("with --nproc {n}"))?;
    // N ranks' cores (or GPUs) and memory, before any worker starts.
    let device = resnet::sys::device::select(&cfg.run)?;
    resnet::run::budget::check_ranks(&cfg, device, n)?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match resnet::sys::launch::launch(n, &resnet::sys::launch::without_nproc(&args))? {
        resnet::sys::launch::Launched::Finished => Ok(()),
        resnet::sys::launch::Launched::Stopped => {
            resnet::errln!(
                "stopped by a signal while the ranks were starting (before training); run the \
                 same command again to start"
            );
            std::process::exit(130);
        }
    }
}

/// What rank 0 (or the one process) says at the end: the resume command of an interrupted run
/// (exit 0 for a data-parallel run, whose ranks stopped together; 130 for one process), or the
/// summary.
fn report(out: &resnet::train::RunOutcome, rank: usize, world: usize) -> Result<()> {
    use resnet::train;
    if rank > 0 {
        // Rank 0 reports (and wrote) the run.
        return Ok(());
    }
    if out.interrupted && world > 1 {
        // Every rank stopped after the same iteration and rank 0 saved it: a clean stop.
        resnet::outln!("resume with: {}", dist_resume_command(&out.dir, world));
        return Ok(());
    }
    if out.interrupted {
        // After SIGHUP the terminal may be gone: a failed print must not turn the saved,
        // interrupted run into a panic.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout(),
            "resume with: {}",
            train::resume_command(&out.dir)
        );
        std::process::exit(130);
    }
    let s = &out.summary;
    resnet::outln!(
        "{}: {} iterations, final train error {:.2}%, final {} error {:.2}% (best {:.2}% at {}), {:.1} s; wrote {}",
        s.name,
        s.iterations,
        s.final_train_error,
        s.eval_split,
        s.final_test_error,
        s.best_test_error,
        s.best_iteration,
        s.wall_s,
        out.dir.display()
    );
    Ok(())
}

/// `err` with the rank it happened on, unless the message already names it.
fn with_rank(err: anyhow::Error, rank: usize, world: usize) -> anyhow::Error {
    if world > 1 && !format!("{err:#}").starts_with("rank ") {
        err.context(format!("rank {rank} of {world}"))
    } else {
        err
    }
}

/// The resume command of a data-parallel run: with `--nproc N` when this launcher started it,
/// else under the same torchrun line.
fn dist_resume_command(dir: &std::path::Path, world: usize) -> String {
    let base = resnet::train::resume_command(dir);
    match std::env::var(resnet::sys::launch::NPROC_VAR) {
        Ok(n) => format!("{base} --nproc {n}"),
        Err(_) => format!("{base} (under torchrun with {world} workers, as before)"),
    }
}
