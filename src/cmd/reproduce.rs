//! `resnet reproduce RESULT`: one command per table or figure of the paper (the grids of
//! `paper.rs`), see the library's `reproduce` module.
use anyhow::{Context, Result};
use resnet::analysis::reproduce::{self, ReproduceSpec};
use resnet::config::Config;
use resnet::paper::Experiment;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// table6 (ResNet-20…1202), figure1 (plain-20/56), figure6 (plain and residual
    /// 20/32/44/56/110), figure7 (figure6's nets and their layer responses), table2 and figure4
    /// (plain/ResNet-18/34), table3 (ResNet-34 A/B/C, 50/101/152, plain-34), table4 (multi-scale).
    #[arg(value_parser = result_arg)]
    result: Experiment,
    /// Seeds, comma separated: one run folder per net and seed (Table 6 gives ResNet-110 as
    /// the best (mean±std) of 5 runs: --seeds 0,1,2,3,4).
    #[arg(long, value_delimiter = ',', value_name = "SEEDS", default_value = "0")]
    seeds: Vec<u64>,
    /// Train up to N cells at once as child `resnet train` processes.
    #[arg(long, default_value_t = 1, value_name = "N")]
    jobs: usize,
    /// Compress the schedule to N iterations (milestones at the paper's 50 %/75 %): NOT a
    /// reproduction, and every output says so.
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// The data: CIFAR-10 (the official binary, default data/cifar10, or a .tar.gz / folder of
    /// PNGs) or ImageNet (ROOT/train, ROOT/val or a .tar.gz; default data/imagenet).
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// Another recipe (data, optimizer, schedule, run settings) from a config file; the grid sets
    /// the model. NOT a reproduction (e.g. configs/tiny_synthetic.toml to try the command).
    #[arg(long, value_name = "FILE")]
    recipe: Option<PathBuf>,
    /// Override run.device: auto, cpu or cuda.
    #[arg(long)]
    device: Option<String>,
    /// Folder of the run folders (<label>-<model>-s<seed>) and of the results folder
    /// (<result>/, or <result>-<label>/ when not a reproduction).
    #[arg(long, default_value = "runs", value_name = "DIR")]
    out: PathBuf,
    /// Print one `resnet train` line per cell to train (its config written to OUT/.jobs/),
    /// for a cluster scheduler; trains nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn result_arg(s: &str) -> Result<Experiment, String> {
    Experiment::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Experiment::ALL.iter().map(|r| r.name()).collect();
        format!("`{s}` is not a result; allowed: {}", names.join(", "))
    })
}

pub fn exec(a: Args) -> Result<()> {
    let spec = ReproduceSpec {
        result: a.result,
        seeds: a.seeds,
        iterations: a.iterations,
        data: a.data,
        recipe: a.recipe.as_deref().map(Config::load).transpose()?,
        device: a.device.as_deref().map(super::parse_device).transpose()?,
        out: a.out,
        jobs: a.jobs,
        progress: !a.quiet,
    };
    let cells = spec.cells()?;
    if a.dry_run {
        for line in reproduce::dry_run(&cells)? {
            println!("{line}");
        }
        return Ok(());
    }
    if let Some(c) = spec.caveat() {
        println!("{c}");
    }
    let exe = std::env::current_exe().context("cannot locate the resnet executable")?;
    let command = |job: &resnet::analysis::compare::TrainJob| {
        let mut c = std::process::Command::new(&exe);
        c.args(job.args());
        c
    };
    let out = reproduce::reproduce(&spec, &cells, &mut resnet::train::run, &command, &mut |n| {
        println!("{n}")
    })?;
    for (title, t) in &out.tables {
        print!("\n{title}\n{}", t.to_text());
    }
    for f in &out.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}
