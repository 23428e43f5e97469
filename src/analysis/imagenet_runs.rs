//! The ImageNet-family runs of Tables 2 and 3 per trainer and seed, and their mean±std over the
//! seeds of one experiment (issue 29: ours beside the PyTorch reference,
//! scripts/reference/train_imagenet.py, on the same config), with their curves.
use super::report::{curves_figure, paper_order, pct, RunRecord, SeedStats, OURS};
use crate::config::Family;
use crate::present::plot::Figure;
use crate::present::table::Table;
use anyhow::Result;

/// The runs of one experiment: one network, trainer, data, schedule and split, any number of
/// seeds (sorted by seed).
pub fn imagenet_groups(runs: &[RunRecord]) -> Vec<Vec<&RunRecord>> {
    let key = |r: &RunRecord| {
        let (residual, depth, shortcut) = paper_order(&r.summary);
        let t = &r.meta.trainer;
        (
            residual,
            depth,
            shortcut,
            t != OURS,
            t.clone(),
            r.data_label(),
            r.schedule_label(),
            r.summary.eval_split.clone(),
        )
    };
    let mut nets: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.summary.family == Family::Imagenet)
        .collect();
    nets.sort_by_key(|r| (key(r), r.meta.seed, r.dir.clone()));
    let mut groups: Vec<Vec<&RunRecord>> = Vec::new();
    for r in nets {
        match groups.last_mut() {
            Some(g) if key(g[0]) == key(r) => g.push(r),
            _ => groups.push(vec![r]),
        }
    }
    groups
}

/// `mean±std` (sample std, n − 1) of `values`; one value alone; empty for none.
fn mean_std(values: &[f64]) -> String {
    match SeedStats::of(values) {
        Some(SeedStats {
            mean,
            std: Some(sd),
            ..
        }) => format!("{mean:.2}±{sd:.2}"),
        Some(s) => pct(s.mean),
        None => String::new(),
    }
}

/// The 10-crop (or most-crop) `eval.csv` row's top-1 and top-5 errors of a run, if evaluated so.
fn crop_errors(r: &RunRecord) -> Option<(u32, f64, f64)> {
    r.eval
        .as_ref()
        .map(|e| (e.crops, e.top1_error, e.top5_error))
}

/// One row per experiment: the final 1-crop validation error of the training-time evaluation
/// and the `eval.csv` crop-testing errors, each as mean±std over the seeds.
pub fn imagenet_seeds_table(runs: &[RunRecord]) -> Table {
    let mut t = Table::new([
        "model",
        "impl",
        "dataset",
        "schedule",
        "runs",
        "seeds",
        "final_1crop_error",
        "crops",
        "top1_error",
        "top5_error",
        "runs_dirs",
    ]);
    for g in imagenet_groups(runs) {
        let one: Vec<f64> = g.iter().map(|r| r.summary.final_test_error).collect();
        let crop: Vec<(u32, f64, f64)> = g.iter().filter_map(|r| crop_errors(r)).collect();
        let crops: Vec<String> = crop.iter().map(|c| c.0.to_string()).collect();
        let mut crops_col = crops.first().cloned().unwrap_or_default();
        if !crop.is_empty() && (crops.iter().any(|c| c != &crops_col) || crop.len() != g.len()) {
            crops_col = format!("mixed ({} of {} runs evaluated)", crop.len(), g.len());
        }
        let r = g[0];
        t.push(vec![
            r.summary.model.clone(),
            r.meta.trainer.clone(),
            r.data_label(),
            r.schedule_label(),
            g.len().to_string(),
            g.iter()
                .map(|r| r.meta.seed.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            mean_std(&one),
            crops_col,
            mean_std(&crop.iter().map(|c| c.1).collect::<Vec<_>>()),
            mean_std(&crop.iter().map(|c| c.2).collect::<Vec<_>>()),
            g.iter()
                .map(|r| r.dir.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    t
}

/// Every ImageNet-family run on its own row, grouped as [`imagenet_seeds_table`] groups them.
pub fn imagenet_runs_table(runs: &[RunRecord]) -> Table {
    let mut t = Table::new([
        "model",
        "impl",
        "dataset",
        "schedule",
        "seed",
        "final_train_error",
        "final_1crop_error",
        "best_1crop_error",
        "crops",
        "top1_error",
        "top5_error",
        "wall_s",
        "run",
    ]);
    for r in imagenet_groups(runs).into_iter().flatten() {
        let s = &r.summary;
        let crop = crop_errors(r);
        t.push(vec![
            s.model.clone(),
            r.meta.trainer.clone(),
            r.data_label(),
            r.schedule_label(),
            r.meta.seed.to_string(),
            pct(s.final_train_error),
            pct(s.final_test_error),
            pct(s.best_test_error),
            crop.map(|c| c.0.to_string()).unwrap_or_default(),
            crop.map(|c| pct(c.1)).unwrap_or_default(),
            crop.map(|c| pct(c.2)).unwrap_or_default(),
            format!("{:.0}", s.wall_s),
            r.dir.display().to_string(),
        ]);
    }
    t
}

/// Figure 4's curves of the ImageNet-family runs: one panel per trainer, one line per run.
pub fn imagenet_figure(runs: &[RunRecord], title: &str) -> Result<Option<Figure>> {
    let groups = imagenet_groups(runs);
    curves_figure(groups.iter().flatten().copied(), title)
}
