//! `resnet info`: Table 1's layers and FLOPs and Table 6's parameter counts, from the code.
use anyhow::{Context, Result};
use resnet::config::Config;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Only the model of this config (default: every model of the paper).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also write the table as CSV to this file (nothing is written without it).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

pub fn exec(a: Args) -> Result<()> {
    let models = match &a.config {
        Some(p) => vec![Config::load(p)?.model],
        None => resnet::analysis::info::paper_models(),
    };
    let t = resnet::analysis::info::table(&models);
    print!("{}", t.to_text());
    println!("\n{}", resnet::analysis::info::COUNTING_NOTE);
    if let Some(csv) = &a.csv {
        t.write_csv(csv)
            .with_context(|| format!("writing {}", csv.display()))?;
        println!("wrote {}", csv.display());
    }
    Ok(())
}
