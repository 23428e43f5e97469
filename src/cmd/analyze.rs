//! `resnet analyze`: analyses of trained runs, today §4.2's Figure 7 (layer responses).
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Command {
    /// Figure 7 (§4.2): the std of every 3×3 layer's response (after BN, before the ReLU and the
    /// shortcut addition) over the evaluation split, with eval-mode BN. Writes responses.csv
    /// into each run folder and figure7_responses.{csv,svg,png} (all runs, in layer order and
    /// sorted) into --results.
    Responses(ResponsesArgs),
}

#[derive(clap::Args)]
pub struct ResponsesArgs {
    /// Checkpoints (RUN/last.safetensors) of CIFAR runs, each rebuilt from the recipe it
    /// carries; several are plotted together (`--checkpoint A B` or repeated).
    #[arg(long, required = true, num_args = 1.., action = clap::ArgAction::Append)]
    pub checkpoint: Vec<PathBuf>,
    /// Where to write figure7_responses.csv, .svg and .png (default: the folder holding the
    /// first checkpoint's run folder, e.g. runs/, so the repository's results/ is only written
    /// when asked, e.g. --results results).
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,
}

fn responses(a: ResponsesArgs) -> Result<()> {
    use resnet::analysis::responses;
    let results = a
        .results
        .unwrap_or_else(|| runs_folder_of(&a.checkpoint[0]));
    let out = responses::analyze(&a.checkpoint, &results, &mut |r| {
        println!(
            "{} ({}): {} {} images, {} 3x3 layers, mean std {:.4}",
            r.dir.display(),
            r.label,
            r.images,
            r.split,
            r.layers.len(),
            r.mean_std()
        )
    })?;
    print!("\n{}", responses::summary_table(&out.runs).to_text());
    for f in &out.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// The folder holding a checkpoint's run folder (`runs/` for `runs/x/last.safetensors`; `.`
/// when the path has no such parent).
fn runs_folder_of(checkpoint: &std::path::Path) -> PathBuf {
    checkpoint
        .parent()
        .and_then(|run| run.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf()
}

/// Runs an `analyze` subcommand.
pub fn exec(c: Command) -> Result<()> {
    match c {
        Command::Responses(a) => responses(a),
    }
}
