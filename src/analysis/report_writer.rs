//! `resnet report`: gathers the run folders ([`super::report`]) and writes every table and figure
//! of the paper it can fill (Table 6, Tables 2-4, the ImageNet-family runs per trainer of
//! [`super::imagenet_runs`], the curves) beside the paper's numbers, as CSV, Markdown and PNG.
use super::imagenet_runs;
use super::report::{
    cifar_figure, cifar_runs_table, gather, table4_imagenet, table6, table_imagenet, RunRecord,
};
use crate::paper;
use crate::present::plot;
use crate::present::table::{write_atomic, Table};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The two tables and the files they were written to.
#[derive(Debug, Clone)]
pub struct Report {
    pub runs: usize,
    pub cifar: Table,
    pub cifar_runs: Table,
    pub imagenet: Table,
    pub table4: Table,
    /// ImageNet-family experiments, mean±std over seeds per trainer.
    pub imagenet_seeds: Table,
    /// Every ImageNet-family run, one per seed.
    pub imagenet_runs: Table,
    pub files: Vec<PathBuf>,
}

const CIFAR_NOTE: &str = "Errors in %: the final CIFAR-10 error on `split` (the paper's Table 6 \
is the test set, 10k images). One row per network, trainer (`impl`: `ours` is `resnet train`, \
`pytorch-reference` is scripts/reference/train.py), data and schedule; `runs` runs (seeds) \
in it. `error`: best (mean±std) over the runs as the paper gives ResNet-110, std the sample standard \
deviation (n−1); one run: its error alone. `paper_error`: Table 6 (ResNet-110: best of 5 runs, \
mean±std in brackets); `akamaster_error`: akamaster/pytorch_resnet_cifar10's widely used PyTorch \
reproduction (its README; its trainer.py runs 200 epochs, about 78k iterations, lr÷10 at epochs 100 \
and 150, per-channel normalization, and keeps the checkpoint with the best test accuracy). `diff` = our mean − the paper's (its mean for ResNet-110), only for runs with the \
paper's data (CIFAR-10, or a lossless PNG copy) and its 64k-iteration schedule; `note` says why \
any other row is not a Table 6 reproduction. Plain nets appear only in Figure 6.";

const IMAGENET_SEEDS_NOTE: &str = "Errors in %: one row per network, trainer (`impl`: `ours` is \
`resnet train`, `pytorch-reference` is scripts/reference/train_imagenet.py), data and schedule. \
`final_1crop_error`: the training-time evaluation at the last iteration (centre crop); \
`top1_error`/`top5_error`: the `eval.csv` row with the most crops (`resnet eval --ten-crop`, or \
the reference's own 10-crop test); each the mean±std (sample std, n−1) over the `runs` seeds.";

const IMAGENET_RUNS_NOTE: &str = "Every ImageNet-family run, one per seed; errors in %, wall \
time of the training in seconds.";

const RUNS_NOTE: &str = "Every CIFAR-10 run behind Table 6's rows, one per seed; errors in %, \
wall time in seconds.";

const IMAGENET_NOTE: &str = "Errors in %, ImageNet validation. Paper: Table 2 (top-1, 10-crop, \
option A ResNets) and Table 3 (top-1/top-5, 10-crop; ResNet-50/101/152 with option B). \
`diff` = ours − paper, only for runs on an image folder (ImageNet); compare like with like via `measured_by` (10-crop rows come from `resnet eval --ten-crop`; multi-scale rows go to Table 4).";

/// The note under Table 4, naming §3.4's scales ([`paper::MULTI_SCALE_SIDES`]).
fn table4_note() -> String {
    let sides: Vec<String> = paper::MULTI_SCALE_SIDES
        .iter()
        .map(|s| s.to_string())
        .collect();
    format!(
        "Errors in %, ImageNet validation, single models. Paper: Table 4 \
(fully-convolutional testing, scores averaged over the shorter sides {{{}}} \
and their flips). Ours: the multi-scale row of `eval.csv` (`resnet eval --multi-scale`) only; \
`diff` = ours − paper, only for runs on an image folder (ImageNet). Table 5's ensembles are not \
single models and are not listed.",
        sides.join(", ")
    )
}

/// Gathers `runs_dir` and writes `table6_cifar10.{csv,md}`, `runs_cifar10.{csv,md}`,
/// `tables2_3_imagenet.{csv,md}`, `table4_imagenet.{csv,md}`, `seeds_imagenet.{csv,md}`,
/// `runs_imagenet.{csv,md}`, `report.md` and, when CIFAR or ImageNet-family runs have curves,
/// `curves_cifar10.{svg,png}` and `curves_imagenet.{svg,png}` under `results_dir`.
pub fn report(runs_dir: &Path, results_dir: &Path) -> Result<Report> {
    let runs = gather(runs_dir)?;
    let cifar = table6(&runs);
    let cifar_runs = cifar_runs_table(&runs);
    let imagenet = table_imagenet(&runs);
    let table4 = table4_imagenet(&runs);
    let imagenet_seeds = imagenet_runs::imagenet_seeds_table(&runs);
    let imagenet_runs = imagenet_runs::imagenet_runs_table(&runs);
    let mut files = Vec::new();
    let mut md = format!(
        "# Results beside the paper\n\n{} finished runs under `{}`.\n",
        runs.len(),
        runs_dir.display()
    );
    for (stem, title, note, t) in [
        ("table6_cifar10", "Table 6: CIFAR-10", CIFAR_NOTE, &cifar),
        (
            "runs_cifar10",
            "CIFAR-10 runs, per seed",
            RUNS_NOTE,
            &cifar_runs,
        ),
        (
            "tables2_3_imagenet",
            "Tables 2 and 3: ImageNet",
            IMAGENET_NOTE,
            &imagenet,
        ),
        (
            "table4_imagenet",
            "Table 4: ImageNet, multi-scale testing",
            &table4_note(),
            &table4,
        ),
        (
            "seeds_imagenet",
            "ImageNet-family runs, mean±std over seeds",
            IMAGENET_SEEDS_NOTE,
            &imagenet_seeds,
        ),
        (
            "runs_imagenet",
            "ImageNet-family runs, per seed",
            IMAGENET_RUNS_NOTE,
            &imagenet_runs,
        ),
    ] {
        let csv = results_dir.join(format!("{stem}.csv"));
        t.write_csv(&csv)
            .with_context(|| format!("writing {}", csv.display()))?;
        let section = format!("## {title}\n\n{note}\n\n{}", t.to_markdown());
        let mdp = results_dir.join(format!("{stem}.md"));
        write_atomic(&mdp, section.as_bytes())?;
        md += &format!("\n{section}");
        files.extend([csv, mdp]);
    }
    md += &write_figures(&runs, results_dir, &mut files)?;
    let all = results_dir.join("report.md");
    write_atomic(&all, md.as_bytes())?;
    files.push(all);
    Ok(Report {
        runs: runs.len(),
        cifar,
        cifar_runs,
        imagenet,
        table4,
        imagenet_seeds,
        imagenet_runs,
        files,
    })
}

/// The curves of the CIFAR-10 and the ImageNet-family runs, as SVG and PNG under `results_dir`
/// (added to `files`); the Markdown that shows them.
fn write_figures(
    runs: &[RunRecord],
    results_dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<String> {
    let mut md = String::new();
    let figures = [
        (
            "curves_cifar10",
            "CIFAR-10",
            cifar_figure(runs, "CIFAR-10 runs: error (%) against iterations as in Figure 6")?,
        ),
        (
            "curves_imagenet",
            "ImageNet-family",
            imagenet_runs::imagenet_figure(
                runs,
                "ImageNet-family runs: training (dashed) and 1-crop validation error (%) as in Figure 4",
            )?,
        ),
    ];
    for (stem, what, fig) in figures {
        let Some(fig) = fig else { continue };
        let svg_text = plot::to_svg(&fig);
        let svg = results_dir.join(format!("{stem}.svg"));
        write_atomic(&svg, svg_text.as_bytes())?;
        let png = results_dir.join(format!("{stem}.png"));
        write_atomic(&png, &plot::svg_to_png(&svg_text, 2.0)?)?;
        md += &format!("\n## Curves, {what}\n\n![{what} curves]({stem}.png)\n");
        files.extend([svg, png]);
    }
    Ok(md)
}
