//! The `resnet` command line: parses arguments and dispatches to `cmd/`, one file per subcommand.
use clap::{Parser, Subcommand};

mod cmd;

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
    /// Print layers, parameters and multiply-adds per model, beside the paper's Table 1 /
    /// Table 6 figures (and write them as CSV with --csv).
    Info(cmd::info::Args),
    /// Train one network as in §3.4 / §4.2 into its run folder (config.toml, curves.csv,
    /// summary.csv, last.safetensors); resumable exactly after a crash, Ctrl-C, SIGTERM or
    /// SIGHUP (the last three save a checkpoint first). One process at a time per run folder.
    Train(cmd::train::Args),
    /// Evaluate a checkpoint (top-1/top-5 error) with the network of the recipe it carries
    /// (older checkpoints: its run's config.toml), one crop, ten crops or multi-scale (§3.4);
    /// appends to the run's eval.csv. Or score a detections file (COCO results format) against
    /// a detection config's test split: VOC AP and COCO AP/AR as the official evaluators.
    Eval(cmd::eval::Args),
    /// Write a checkpoint's network as torchvision's state dict (safetensors, no optimizer
    /// state), which torchvision's model of the same net loads with strict=True.
    Export(cmd::export::Args),
    /// Training and evaluation images/s of a config's run (steady state after a warm-up), with
    /// the share spent on data; or, with --summarize, the comparison table of collected rows.
    Bench(cmd::bench::Args),
    /// Datasets: download CIFAR-10, check a config's data, measure the loader.
    #[command(subcommand)]
    Data(cmd::data::Command),
    /// Train (or reuse finished runs of) {plain, residual} x depths with one recipe and plot
    /// training/test error against iterations as in the paper's Figure 6.
    Compare(cmd::compare::Args),
    /// Gather finished runs (every RUNS/*/summary.csv) into the paper's Table 6 (CIFAR-10),
    /// Tables 2 and 3 (ImageNet top-1/top-5, 10-crop) and Table 4 (multi-scale testing), ours
    /// beside the paper's numbers, as CSV and Markdown.
    Report(cmd::report::Args),
    /// Run one table or figure of the paper (its grid from paper.rs: train or reuse every
    /// cell), ending with that table or figure beside the paper's numbers.
    Reproduce(cmd::reproduce::Args),
    /// Analyses of trained runs (Figure 7's layer responses).
    #[command(subcommand)]
    Analyze(cmd::analyze::Command),
}

/// Parses the command line; a usage error is printed as one line (clap's message without the
/// usage block) with clap's exit code, `--help` and `--version` as usual.
fn parse_cli() -> Cli {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.to_string();
            let msg: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            resnet::errln!("{}", msg.join(" "));
            std::process::exit(e.exit_code());
        }
    }
}

fn main() {
    let cli = parse_cli();
    let result = match cli.command {
        Command::Info(a) => cmd::info::exec(a),
        Command::Train(a) => cmd::train::exec(a),
        Command::Eval(a) => cmd::eval::exec(a),
        Command::Export(a) => cmd::export::exec(a),
        Command::Compare(a) => cmd::compare::exec(a),
        Command::Report(a) => cmd::report::exec(a),
        Command::Reproduce(a) => cmd::reproduce::exec(a),
        Command::Analyze(c) => cmd::analyze::exec(c),
        Command::Bench(a) => cmd::bench::exec(a),
        Command::Data(c) => cmd::data::exec(c),
    };
    if let Err(e) = result {
        // One line whatever the causes hold (a decoder's or the OS's message may span several).
        let msg = format!("{e:#}").replace(['\n', '\r'], " ");
        resnet::errln!("error: {msg}");
        std::process::exit(1);
    }
}
