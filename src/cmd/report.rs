//! `resnet report`: finished runs gathered into Tables 2, 3, 4 and 6 beside the paper.
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Folder holding one folder per run.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Where to write table6_cifar10.*, runs_cifar10.*, tables2_3_imagenet.*,
    /// table4_imagenet.*, seeds_imagenet.*, runs_imagenet.*, curves_cifar10.*, curves_imagenet.*
    /// and report.md (default: the --runs folder, so the repository's results/ is only written
    /// when asked, e.g. --out results).
    #[arg(long, visible_alias = "results", value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn exec(a: Args) -> Result<()> {
    let out = a.out.unwrap_or_else(|| a.runs.clone());
    let r = resnet::analysis::report_writer::report(&a.runs, &out)?;
    resnet::outln!("{} finished runs under {}\n", r.runs, a.runs.display());
    resnet::outln!("Table 6: CIFAR-10 test error (%)\n{}", r.cifar.to_text());
    resnet::outln!("CIFAR-10 runs, per seed\n{}", r.cifar_runs.to_text());
    resnet::outln!(
        "Tables 2 and 3: ImageNet validation error (%)\n{}",
        r.imagenet.to_text()
    );
    resnet::outln!(
        "Table 4: ImageNet validation error (%), multi-scale testing\n{}",
        r.table4.to_text()
    );
    resnet::outln!(
        "ImageNet-family runs, mean±std over seeds (%)\n{}",
        r.imagenet_seeds.to_text()
    );
    resnet::outln!(
        "ImageNet-family runs, per seed (%)\n{}",
        r.imagenet_runs.to_text()
    );
    for f in &r.files {
        resnet::outln!("wrote {}", f.display());
    }
    Ok(())
}
