//! `resnet bench`: training and evaluation throughput of a config's run (the §4.2 step and the
//! §3.4 one), beside PyTorch references collected into one CSV (`--summarize`).
use super::{parse_device, positive_usize, thread_count};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The experiment config (TOML): model, data, run.device/precision/memory_format/threads.
    #[arg(long, required_unless_present = "summarize")]
    pub config: Option<PathBuf>,
    /// Timed training iterations.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub iters: u64,
    /// Untimed iterations before the timing.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub warmup: u64,
    /// Test images to time the evaluation on (at least 1).
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = positive_usize)]
    pub eval_images: usize,
    /// Also time data, forward, backward and optimizer separately (a sync after each).
    #[arg(long)]
    pub profile: bool,
    /// Override run.device: auto, cpu or cuda.
    #[arg(long)]
    pub device: Option<String>,
    /// Override run.threads (intra-op CPU threads; 0 = all cores).
    #[arg(long, value_parser = thread_count)]
    pub threads: Option<usize>,
    /// Name in the `impl` column (`+graph` is appended for the CUDA-graph step).
    #[arg(long, default_value = "ours")]
    pub label: String,
    /// Which step to time: `off` (eager), `on` (run.cuda_graph), `both`, or `auto` (both on
    /// CUDA, eager on the CPU; the config's run.cuda_graph = true means `on`).
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub graph: String,
    /// Also append the CSV row to this file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Data parallelism: time the step of N worker processes of this command on c10d (as
    /// `resnet train --nproc N`: Gloo on the CPU, NCCL on CUDA, one intra-op thread a worker
    /// unless --threads says otherwise), and the gradient all-reduce alone; `--nproc 1` times
    /// the data-parallel step at world size 1 against the plain one. Under torchrun leave it out.
    #[arg(long, value_name = "N", value_parser = positive_usize, conflicts_with = "summarize")]
    pub nproc: Option<usize>,
    /// Print medians and ratios (ours/typical, ours/careful) of the rows in this CSV file
    /// (as scripts/bench_compare.sh collects them) instead of measuring.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub summarize: Option<PathBuf>,
}

pub fn exec(a: Args) -> Result<()> {
    use resnet::analysis::throughput as bench;
    if let Some(path) = &a.summarize {
        let t = bench::summarize(&bench::read_csv(path)?);
        resnet::out!("{}", t.to_text());
        resnet::outln!(
            "ratios are our fastest variant / that one (above 1: ours is faster); medians over runs"
        );
        return Ok(());
    }
    let path = a.config.as_deref().expect("clap requires --config");
    let mut cfg = bench::load_config(
        path,
        a.device.as_deref().map(parse_device).transpose()?,
        a.threads,
    )?;
    resnet::data::detection::refuse_for_classifier(&cfg, "bench")?;
    let env = resnet::sys::dist::Env::from_process()?;
    if let Some(n) = a.nproc {
        return super::train::launch_local(n, env.is_some(), cfg);
    }
    // A worker of `--nproc N` joins its group even for N = 1 (the data-parallel step against
    // the plain one: NCCL or Gloo at world size 1); under torchrun, from world size 2.
    let launched = std::env::var_os(resnet::sys::launch::NPROC_VAR).is_some();
    if let Some(e) = env.filter(|e| e.world_size > 1 || launched) {
        cfg.run.world_size = e.world_size;
        return replica(&a, &cfg, &e);
    }
    let mode = bench::StepMode::parse(&a.graph, &cfg)?;
    let mut records = Vec::new();
    for (cfg, label) in bench::variants(&cfg, mode, &a.label) {
        let opts = bench::BenchOptions {
            iters: a.iters,
            warmup: a.warmup,
            eval_images: a.eval_images,
            profile: a.profile,
            label,
        };
        let out = bench::run(&cfg, &opts)?;
        if let Some(p) = &out.profile {
            resnet::errln!("{} (eager phases)", p.to_text());
        }
        resnet::outln!("{}", out.bound_text());
        resnet::outln!(
            "{} [{}, {} data, {} warm-up iterations]",
            out.record.to_text(),
            out.device,
            out.data,
            a.warmup
        );
        if let Some(csv) = &a.csv {
            bench::append_csv(csv, &out.record)?;
        }
        records.push(out.record);
    }
    if let [eager, graph] = records.as_slice() {
        resnet::outln!(
            "graph / eager: {:.2}x training images/s",
            bench::ratio(graph.train_images_per_s, eager.train_images_per_s)
        );
    }
    resnet::outln!("{}", bench::CSV_HEADER);
    for r in &records {
        resnet::outln!("{}", r.to_csv_line());
    }
    Ok(())
}

/// One worker of `--nproc N` (or of torchrun): joins the group, times the data-parallel step;
/// rank 0 prints and records.
fn replica(a: &Args, cfg: &resnet::config::Config, env: &resnet::sys::dist::Env) -> Result<()> {
    use resnet::analysis::scaling;
    cfg.validate()?;
    let g = resnet::train::dist::join(env, cfg)?;
    let opts = resnet::analysis::throughput::BenchOptions {
        iters: a.iters,
        warmup: a.warmup,
        eval_images: a.eval_images,
        profile: false,
        label: a.label.clone(),
    };
    let out = scaling::run(cfg, &opts, g)?;
    if env.rank > 0 {
        return Ok(());
    }
    resnet::outln!("{}", out.to_text());
    if let Some(csv) = &a.csv {
        resnet::analysis::throughput::append_csv(csv, &out.record)?;
    }
    resnet::outln!("{}", resnet::analysis::throughput::CSV_HEADER);
    resnet::outln!("{}", out.record.to_csv_line());
    Ok(())
}
