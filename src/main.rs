//! The `resnet` command line: parses arguments and dispatches, one small function per subcommand.
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use resnet::config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "resnet",
    version,
    about = "Reproduce the experiments of Deep Residual Learning for Image Recognition (He et al., 2015)",
    long_about = "Reproduce the experiments of Deep Residual Learning for Image Recognition \
(He, Zhang, Ren, Sun, 2015): plain vs residual nets on CIFAR-10 (depth 20-1202) and ImageNet \
(18-152), shortcut options A/B/C, error curves and the paper's tables.\n\n\
Every run is described by one TOML config (see configs/); flags only override it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print (and write as CSV) layers, parameters and multiply-adds per model, beside the
    /// paper's Table 1 / Table 6 figures.
    Info(InfoArgs),
    /// Gather finished runs (every RUNS/*/summary.csv) into the paper's Table 6 (CIFAR-10) and
    /// Tables 2 and 3 (ImageNet top-1/top-5), ours beside the paper's numbers, as CSV and Markdown.
    Report(ReportArgs),
}

#[derive(clap::Args)]
struct InfoArgs {
    /// Only the model of this config (default: every model of the paper).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where to write the CSV.
    #[arg(long, default_value = "results/info.csv")]
    csv: PathBuf,
}

fn info(a: InfoArgs) -> Result<()> {
    let models = match &a.config {
        Some(p) => vec![Config::load(p)?.model],
        None => resnet::info::paper_models(),
    };
    let t = resnet::info::table(&models);
    print!("{}", t.to_text());
    println!("\n{}", resnet::info::COUNTING_NOTE);
    t.write_csv(&a.csv)
        .with_context(|| format!("writing {}", a.csv.display()))?;
    println!("wrote {}", a.csv.display());
    Ok(())
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Folder holding one folder per run.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Where to write table6_cifar10.*, tables2_3_imagenet.* and report.md.
    #[arg(long, default_value = "results")]
    results: PathBuf,
}

fn report(a: ReportArgs) -> Result<()> {
    let r = resnet::report::report(&a.runs, &a.results)?;
    println!("{} finished runs under {}\n", r.runs, a.runs.display());
    println!("Table 6: CIFAR-10 test error (%)\n{}", r.cifar.to_text());
    println!(
        "Tables 2 and 3: ImageNet validation error (%)\n{}",
        r.imagenet.to_text()
    );
    for f in &r.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info(a),
        Command::Report(a) => report(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
