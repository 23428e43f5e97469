//! `resnet compare`: §4.2's plain-versus-residual grid (Figure 6) with one recipe.
use super::{parse_device, Overrides};
use anyhow::{Context, Result};
use resnet::config::{Config, NetKind};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Network kinds: `plain`, `resnet` (or `residual`).
    #[arg(required = true, value_parser = kind_arg)]
    pub kinds: Vec<NetKind>,
    /// Depths, comma separated (6n+2 for CIFAR, 18/34/50/101/152 for ImageNet).
    #[arg(long, value_delimiter = ',', default_value = "20,32,44,56")]
    pub depths: Vec<usize>,
    /// The recipe; its model.kind and model.depth are replaced per grid cell.
    #[arg(long, default_value = "configs/cifar_resnet20.toml")]
    pub config: PathBuf,
    /// Override schedule.iterations (milestones after it are dropped).
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
    /// Override data.path.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Override run.device: auto, cpu or cuda.
    #[arg(long)]
    pub device: Option<String>,
    /// Override run.seed.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Train every network once per seed, comma separated (e.g. 0,1,2): one run folder per
    /// seed (compare-<recipe>-<model>-s<seed>); `resnet report` gives best (mean±std) over them.
    #[arg(long, value_delimiter = ',', value_name = "SEEDS")]
    pub seeds: Vec<u64>,
    /// Folder receiving one run folder per network (compare-<recipe>-<model>).
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Where to write compare-<recipe>.csv, .svg and .png (default: the --out folder, so the
    /// repository's results/ is only written when asked, e.g. --results results).
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
    /// Retrain every network, even finished ones.
    #[arg(long)]
    pub force: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Train up to N grid cells at once, as child `resnet train` processes (their output in
    /// OUT/.jobs/<name>.log); prints the aggregate training images/s. 1: one after another here.
    /// Ctrl-C, SIGTERM or SIGHUP is forwarded to the children, which save their checkpoints; the
    /// same command resumes them. One compare per --out at a time (OUT/.compare.lock).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// Override run.cuda_graph (replay each training step as one CUDA graph; CUDA only).
    #[arg(long, value_name = "BOOL")]
    pub cuda_graph: Option<bool>,
}

fn kind_arg(s: &str) -> Result<NetKind, String> {
    resnet::analysis::compare::parse_kind(s).map_err(|e| e.to_string())
}

pub fn exec(a: Args) -> Result<()> {
    use resnet::train;
    let mut recipe = Config::load(&a.config)?;
    let overrides = Overrides {
        iterations: a.iterations,
        device: a.device.as_deref().map(parse_device).transpose()?,
        out: None,
        data: a.data,
        seed: a.seed,
        cuda_graph: a.cuda_graph,
    };
    overrides.apply(&mut recipe)?;
    // One compare per --out at a time (held to the end: the grid pass reads what children wrote).
    let _lock = resnet::run::dir::RunLock::acquire_runs(&a.out)?;
    let mut spec = resnet::analysis::compare::CompareSpec {
        recipe,
        kinds: a.kinds,
        depths: a.depths,
        seeds: a.seeds,
        results_dir: a.results.unwrap_or_else(|| a.out.clone()),
        runs_dir: a.out,
        force: a.force,
        progress: !a.quiet,
    };
    if a.jobs != 1 {
        compare_jobs(&spec, a.jobs)?;
        // Every cell is finished now: the grid pass below reuses them all.
        spec.force = false;
    }
    let out =
        resnet::analysis::compare::compare(&spec, &mut train::run, &mut |n| resnet::outln!("{n}"))?;
    resnet::out!("\n{}", out.table.to_text());
    for f in [&out.csv, &out.svg, &out.png] {
        resnet::outln!("wrote {}", f.display());
    }
    Ok(())
}

/// `compare --jobs N`: trains the unfinished grid cells as up to N concurrent child processes
/// of this executable (`resnet train --config ...`), then prints their aggregate throughput.
fn compare_jobs(spec: &resnet::analysis::compare::CompareSpec, jobs: usize) -> Result<()> {
    use resnet::analysis::compare;
    let cells = spec.cells()?;
    let exe = std::env::current_exe().context("cannot locate the resnet executable")?;
    let command = |job: &compare::TrainJob| {
        let mut c = std::process::Command::new(&exe);
        c.args(job.args());
        c
    };
    let r = compare::train_parallel(&cells, spec.force, jobs, &command, &mut |n| {
        resnet::outln!("{n}")
    })?;
    if r.trained > 0 {
        resnet::outln!(
            "{} runs trained with --jobs {jobs} in {:.1} s: {:.1} training images/s together",
            r.trained,
            r.wall_s,
            r.images_per_s()
        );
    }
    Ok(())
}
