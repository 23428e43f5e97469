//! `resnet report`: finished runs gathered into the paper's Table 6 (CIFAR-10 test error),
//! Tables 2 and 3 (ImageNet validation top-1/top-5 error, 10-crop testing) and Table 4 (single
//! models, multi-scale fully-convolutional testing), with the paper's numbers in a column beside
//! ours and the difference; each paper number beside our result of the protocol that produced it.
use crate::eval::{Protocol, PAPER_SCALES};
use crate::records::{protocol_of_crops, read_summary, Summary, EVAL_HEADER};
use crate::table::{write_atomic, Table};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// One evaluation `resnet eval` appended to a run's `eval.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub split: String,
    /// `1-crop`, `10-crop` or `multi-scale 224/...` (from `crops` in files without the column).
    pub protocol: String,
    pub crops: u32,
    pub top1_error: f64,
    pub top5_error: f64,
}

/// One finished run (a folder with `summary.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub dir: PathBuf,
    pub summary: Summary,
    /// The crop-testing row with the most crops (Tables 2 and 3).
    pub eval: Option<EvalResult>,
    /// The multi-scale row (Table 4): the paper's scales if measured, else the latest.
    pub multi_scale: Option<EvalResult>,
    /// `data.dataset` of the run's `config.toml` (`None` when the folder has none).
    pub dataset: Option<String>,
}

impl RunRecord {
    /// Whether the run's data is the paper's: CIFAR-10 for CIFAR nets, an image folder (ImageNet)
    /// for ImageNet nets. Differences to the paper are only shown for these.
    pub fn comparable(&self) -> bool {
        matches!(
            (self.summary.family.as_str(), self.dataset.as_deref()),
            ("cifar", Some("cifar10")) | ("imagenet", Some("image_folder"))
        )
    }
}

/// `data.dataset` from a run's resolved `config.toml` (read as plain TOML so that a folder from
/// an older or newer config schema still reports).
pub fn read_dataset(path: &Path) -> Result<Option<String>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: toml::Value =
        toml::from_str(&text).with_context(|| format!("{}: not valid TOML", path.display()))?;
    Ok(Some(
        v.get("data")
            .and_then(|d| d.get("dataset"))
            .and_then(|d| d.as_str())
            .unwrap_or("cifar10")
            .to_string(),
    ))
}

/// Every `<runs_dir>/*/summary.csv`, sorted by folder name, with its `eval.csv` if present.
pub fn gather(runs_dir: &Path) -> Result<Vec<RunRecord>> {
    let entries = std::fs::read_dir(runs_dir)
        .with_context(|| format!("cannot list the runs folder {}", runs_dir.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("summary.csv").is_file())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let summary = read_summary(&dir.join("summary.csv"))?;
            let rows = read_eval_rows(&dir.join("eval.csv"))?;
            let dataset = read_dataset(&dir.join("config.toml"))?;
            Ok(RunRecord {
                dir,
                summary,
                eval: best_crop_row(&rows),
                multi_scale: multi_scale_row(&rows),
                dataset,
            })
        })
        .collect()
}

/// Reads `eval.csv` (header [`EVAL_HEADER`]) and keeps the crop-testing row with the most crops
/// (Tables 2 and 3 use 10-crop testing), the latest among equals. `None` when the file does not
/// exist.
pub fn read_eval(path: &Path) -> Result<Option<EvalResult>> {
    Ok(best_crop_row(&read_eval_rows(path)?))
}

fn is_multi_scale(e: &EvalResult) -> bool {
    e.protocol.starts_with("multi-scale")
}

/// The crop-testing row with the most crops, the latest among equals.
fn best_crop_row(rows: &[EvalResult]) -> Option<EvalResult> {
    let mut best: Option<&EvalResult> = None;
    for e in rows.iter().filter(|e| !is_multi_scale(e)) {
        if best.is_none_or(|b| e.crops >= b.crops) {
            best = Some(e);
        }
    }
    best.cloned()
}

/// The latest multi-scale row at the paper's scales, else the latest multi-scale row.
fn multi_scale_row(rows: &[EvalResult]) -> Option<EvalResult> {
    let paper = Protocol::MultiScale(PAPER_SCALES.to_vec()).name();
    let latest = |f: &dyn Fn(&EvalResult) -> bool| rows.iter().rev().find(|e| f(e)).cloned();
    latest(&|e| e.protocol == paper).or_else(|| latest(&is_multi_scale))
}

/// Every row of `eval.csv`, in file order (empty when the file does not exist). Files written
/// before the `protocol` column get the protocol from `crops`.
pub fn read_eval_rows(path: &Path) -> Result<Vec<EvalResult>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header: Vec<String> = r
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .iter()
        .map(String::from)
        .collect();
    let col = |name: &str| -> Result<usize> {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column `{name}` (header {:?}, expected {EVAL_HEADER:?})",
                path.display(),
                header.join(",")
            )
        })
    };
    let (c_split, c_crops, c_top1, c_top5) = (
        col("split")?,
        col("crops")?,
        col("top1_error")?,
        col("top5_error")?,
    );
    let c_protocol = header.iter().position(|h| h == "protocol");
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", path.display(), i + 2))?;
        let field = |c: usize| rec.get(c).unwrap_or("").trim();
        let num = |c: usize| -> Result<f64> {
            field(c).parse().with_context(|| {
                format!(
                    "{} line {}: {} = {:?} is not a number",
                    path.display(),
                    i + 2,
                    header[c],
                    field(c)
                )
            })
        };
        let crops = num(c_crops)? as u32;
        rows.push(EvalResult {
            split: field(c_split).to_string(),
            protocol: match c_protocol {
                Some(c) => field(c).to_string(),
                None => protocol_of_crops(crops),
            },
            crops,
            top1_error: num(c_top1)?,
            top5_error: num(c_top5)?,
        });
    }
    Ok(rows)
}

/// A CIFAR-10 entry of the paper's Table 6 (test error %, the paper's best of 5 runs for
/// ResNet-110, whose mean±std it gives beside).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperCifar {
    pub error: f64,
    /// As printed in the table.
    pub shown: &'static str,
    pub params: &'static str,
}

/// Table 6 of the paper ("Classification error on the CIFAR-10 test set"): ResNets with option A
/// shortcuts. Plain nets appear only in Figure 6, with no number in any table.
pub fn paper_table6(s: &Summary) -> Option<PaperCifar> {
    if s.family != "cifar" || s.kind != "residual" || s.shortcut != "A" {
        return None;
    }
    let (error, shown, params) = match s.depth {
        20 => (8.75, "8.75", "0.27M"),
        32 => (7.51, "7.51", "0.46M"),
        44 => (7.17, "7.17", "0.66M"),
        56 => (6.97, "6.97", "0.85M"),
        110 => (6.43, "6.43 (6.61±0.16)", "1.7M"),
        1202 => (7.93, "7.93", "19.4M"),
        _ => return None,
    };
    Some(PaperCifar {
        error,
        shown,
        params,
    })
}

/// An ImageNet entry of Tables 2 and 3 (validation error %, 10-crop testing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperImagenet {
    pub top1: f64,
    pub top5: Option<f64>,
    pub source: &'static str,
}

/// Table 2 (top-1, 10-crop, val; its ResNets use option A) and Table 3 (top-1/top-5, 10-crop,
/// val; ResNet-50/101/152 use option B). plain-34's top-5 (10.02) is Table 3's plain-34 row;
/// Table 2 gives no top-5 for the 18-layer nets.
pub fn paper_imagenet(s: &Summary) -> Option<PaperImagenet> {
    if s.family != "imagenet" {
        return None;
    }
    let p = |top1, top5, source| Some(PaperImagenet { top1, top5, source });
    match (s.kind.as_str(), s.depth, s.shortcut.as_str()) {
        ("plain", 18, _) => p(27.94, None, "Table 2"),
        ("plain", 34, _) => p(28.54, Some(10.02), "Tables 2, 3"),
        ("residual", 18, "A") => p(27.88, None, "Table 2"),
        ("residual", 34, "A") => p(25.03, Some(7.76), "Tables 2, 3"),
        ("residual", 34, "B") => p(24.52, Some(7.46), "Table 3"),
        ("residual", 34, "C") => p(24.19, Some(7.40), "Table 3"),
        ("residual", 50, "B") => p(22.85, Some(6.71), "Table 3"),
        ("residual", 101, "B") => p(21.75, Some(6.05), "Table 3"),
        ("residual", 152, "B") => p(21.43, Some(5.71), "Table 3"),
        _ => None,
    }
}

/// Table 4 ("Error rates (%) of single-model results on the ImageNet validation set"): the
/// ResNets' top-1/top-5 errors with multi-scale fully-convolutional testing (§3.4).
pub fn paper_table4(s: &Summary) -> Option<PaperImagenet> {
    if s.family != "imagenet" || s.kind != "residual" {
        return None;
    }
    let p = |top1, top5| {
        Some(PaperImagenet {
            top1,
            top5: Some(top5),
            source: "Table 4",
        })
    };
    match (s.depth, s.shortcut.as_str()) {
        (34, "B") => p(21.84, 5.71),
        (34, "C") => p(21.53, 5.60),
        (50, "B") => p(20.74, 5.25),
        (101, "B") => p(19.87, 4.60),
        (152, "B") => p(19.38, 4.49),
        _ => None,
    }
}

/// Summaries of the networks the paper reports, for rows we have no run of.
fn paper_only(family: &str) -> Vec<Summary> {
    let entry = |kind: &str, depth: usize, shortcut: &str| {
        Summary::unfinished("", "", family, kind, shortcut, depth, 0)
    };
    if family == "cifar" {
        [20, 32, 44, 56, 110, 1202]
            .iter()
            .map(|&d| entry("residual", d, "A"))
            .collect()
    } else {
        vec![
            entry("plain", 18, "A"),
            entry("plain", 34, "A"),
            entry("residual", 18, "A"),
            entry("residual", 34, "A"),
            entry("residual", 34, "B"),
            entry("residual", 34, "C"),
            entry("residual", 50, "B"),
            entry("residual", 101, "B"),
            entry("residual", 152, "B"),
        ]
    }
}

/// Our runs of `family`, plus one empty row for each paper entry without a run, ordered as the
/// paper orders them (plain before residual, then depth, then shortcut option).
fn rows_of<'a>(runs: &'a [RunRecord], family: &str) -> Vec<(Summary, Option<&'a RunRecord>)> {
    let mut rows: Vec<(Summary, Option<&RunRecord>)> = runs
        .iter()
        .filter(|r| r.summary.family == family)
        .map(|r| (r.summary.clone(), Some(r)))
        .collect();
    for p in paper_only(family) {
        let same = |s: &Summary| s.kind == p.kind && s.depth == p.depth && s.shortcut == p.shortcut;
        if !rows.iter().any(|(s, _)| same(s)) {
            rows.push((p, None));
        }
    }
    rows.sort_by(|(a, ra), (b, rb)| {
        let key = |s: &Summary| (s.kind != "plain", s.depth, s.shortcut.clone());
        key(a)
            .cmp(&key(b))
            .then_with(|| ra.map(|r| r.dir.clone()).cmp(&rb.map(|r| r.dir.clone())))
    });
    rows
}

fn pct(v: f64) -> String {
    format!("{v:.2}")
}

fn diff(ours: Option<f64>, paper: Option<f64>) -> String {
    match (ours, paper) {
        (Some(o), Some(p)) => format!("{:+.2}", o - p),
        _ => String::new(),
    }
}

fn dataset(run: Option<&RunRecord>) -> String {
    match run {
        Some(r) => r.dataset.clone().unwrap_or_else(|| "unknown".into()),
        None => String::new(),
    }
}

fn millions(params: u64) -> String {
    let m = params as f64 / 1e6;
    if m < 10.0 {
        format!("{m:.2}M")
    } else {
        format!("{m:.1}M")
    }
}

/// Table 6: method, #layers, #params (ours and the paper's), our CIFAR-10 test error (final,
/// from `summary.csv`) beside the paper's, and ours − paper.
pub fn table6(runs: &[RunRecord]) -> Table {
    let mut t = Table::new([
        "method",
        "layers",
        "params",
        "paper_params",
        "dataset",
        "split",
        "error",
        "paper_error",
        "diff",
        "run",
    ]);
    for (s, run) in rows_of(runs, "cifar") {
        let paper = paper_table6(&s);
        let method = match (s.kind.as_str(), s.shortcut.as_str()) {
            ("plain", _) => "plain".to_string(),
            (_, "A") => "ResNet".to_string(),
            (_, sc) => format!("ResNet ({sc})"),
        };
        let ours = run.map(|r| r.summary.final_test_error);
        t.push(vec![
            method,
            s.depth.to_string(),
            run.map(|r| millions(r.summary.params)).unwrap_or_default(),
            paper.map(|p| p.params.to_string()).unwrap_or_default(),
            dataset(run),
            s.eval_split.clone(),
            ours.map(pct).unwrap_or_default(),
            paper.map(|p| p.shown.to_string()).unwrap_or_default(),
            diff(
                ours.filter(|_| run.is_some_and(RunRecord::comparable)),
                paper.map(|p| p.error),
            ),
            run.map(|r| r.dir.display().to_string()).unwrap_or_default(),
        ]);
    }
    t
}

/// An ImageNet model's name as the paper's tables print it.
fn imagenet_model(s: &Summary) -> String {
    match (s.kind.as_str(), s.depth, s.shortcut.as_str()) {
        ("plain", d, _) => format!("plain-{d}"),
        (_, d, sc) if d <= 34 || sc != "B" => format!("ResNet-{d} {sc}"),
        (_, d, _) => format!("ResNet-{d}"),
    }
}

/// Table 4: top-1 and top-5 validation error with multi-scale testing, ours from the run's
/// multi-scale `eval.csv` row only (never from another protocol), for the paper's Table 4 nets
/// and any ImageNet run evaluated that way.
pub fn table4_imagenet(runs: &[RunRecord]) -> Table {
    let mut t = Table::new([
        "model",
        "layers",
        "params",
        "top1_error",
        "paper_top1",
        "diff_top1",
        "top5_error",
        "paper_top5",
        "diff_top5",
        "dataset",
        "measured_by",
        "run",
    ]);
    for (s, run) in rows_of(runs, "imagenet") {
        let paper = paper_table4(&s);
        let ours = run.and_then(|r| r.multi_scale.as_ref());
        if paper.is_none() && ours.is_none() {
            continue;
        }
        let top1 = ours.map(|e| e.top1_error);
        let top5 = ours.map(|e| e.top5_error);
        let same_data = run.is_some_and(RunRecord::comparable);
        let p1 = paper.map(|p| p.top1);
        let p5 = paper.and_then(|p| p.top5);
        t.push(vec![
            imagenet_model(&s),
            s.depth.to_string(),
            run.map(|r| millions(r.summary.params)).unwrap_or_default(),
            top1.map(pct).unwrap_or_default(),
            p1.map(pct).unwrap_or_default(),
            diff(top1.filter(|_| same_data), p1),
            top5.map(pct).unwrap_or_default(),
            p5.map(pct).unwrap_or_default(),
            diff(top5.filter(|_| same_data), p5),
            dataset(run),
            ours.map(|e| format!("eval.csv: {} {}", e.protocol, e.split))
                .unwrap_or_default(),
            run.map(|r| r.dir.display().to_string()).unwrap_or_default(),
        ]);
    }
    t
}

/// Tables 2 and 3: top-1 and top-5 validation error. Ours come from `eval.csv` (the crop-testing
/// row with the most crops; multi-scale rows belong to Table 4) when present, else top-1 from
/// `summary.csv` (the training-time evaluation).
pub fn table_imagenet(runs: &[RunRecord]) -> Table {
    let mut t = Table::new([
        "model",
        "layers",
        "params",
        "top1_error",
        "paper_top1",
        "diff_top1",
        "top5_error",
        "paper_top5",
        "diff_top5",
        "dataset",
        "measured_by",
        "paper_source",
        "run",
    ]);
    for (s, run) in rows_of(runs, "imagenet") {
        let paper = paper_imagenet(&s);
        let model = imagenet_model(&s);
        let (top1, top5, by) = match run {
            None => (None, None, String::new()),
            Some(r) => match &r.eval {
                Some(e) => (
                    Some(e.top1_error),
                    Some(e.top5_error),
                    format!("eval.csv: {}-crop {}", e.crops, e.split),
                ),
                None => (
                    Some(r.summary.final_test_error),
                    None,
                    format!("summary.csv: training-time {}", r.summary.eval_split),
                ),
            },
        };
        let p1 = paper.map(|p| p.top1);
        let p5 = paper.and_then(|p| p.top5);
        let same_data = run.is_some_and(RunRecord::comparable);
        t.push(vec![
            model,
            s.depth.to_string(),
            run.map(|r| millions(r.summary.params)).unwrap_or_default(),
            top1.map(pct).unwrap_or_default(),
            p1.map(pct).unwrap_or_default(),
            diff(top1.filter(|_| same_data), p1),
            top5.map(pct).unwrap_or_default(),
            p5.map(pct).unwrap_or_default(),
            diff(top5.filter(|_| same_data), p5),
            dataset(run),
            by,
            paper.map(|p| p.source.to_string()).unwrap_or_default(),
            run.map(|r| r.dir.display().to_string()).unwrap_or_default(),
        ]);
    }
    t
}

/// The two tables and the files they were written to.
#[derive(Debug, Clone)]
pub struct Report {
    pub runs: usize,
    pub cifar: Table,
    pub imagenet: Table,
    pub table4: Table,
    pub files: Vec<PathBuf>,
}

const CIFAR_NOTE: &str = "Errors in %. `error`: our final CIFAR-10 error on `split` (the paper's \
Table 6 is the test set, 10k images); `paper_error`: Table 6 (ResNet-110: best of 5 runs, \
mean±std in brackets); `diff` = ours − paper, only for runs on CIFAR-10 itself. Plain nets appear only in Figure 6.";

const IMAGENET_NOTE: &str = "Errors in %, ImageNet validation. Paper: Table 2 (top-1, 10-crop, \
option A ResNets) and Table 3 (top-1/top-5, 10-crop; ResNet-50/101/152 with option B). \
`diff` = ours − paper, only for runs on an image folder (ImageNet); compare like with like via `measured_by` (10-crop rows come from `resnet eval --ten-crop`; multi-scale rows go to Table 4).";

const TABLE4_NOTE: &str = "Errors in %, ImageNet validation, single models. Paper: Table 4 \
(fully-convolutional testing, scores averaged over the shorter sides {224, 256, 384, 480, 640} \
and their flips). Ours: the multi-scale row of `eval.csv` (`resnet eval --multi-scale`) only; \
`diff` = ours − paper, only for runs on an image folder (ImageNet). Table 5's ensembles are not \
single models and are not listed.";

/// Gathers `runs_dir` and writes `table6_cifar10.{csv,md}`, `tables2_3_imagenet.{csv,md}` and
/// `report.md` under `results_dir`.
pub fn report(runs_dir: &Path, results_dir: &Path) -> Result<Report> {
    let runs = gather(runs_dir)?;
    let cifar = table6(&runs);
    let imagenet = table_imagenet(&runs);
    let table4 = table4_imagenet(&runs);
    let mut files = Vec::new();
    let mut md = format!(
        "# Results beside the paper\n\n{} finished runs under `{}`.\n",
        runs.len(),
        runs_dir.display()
    );
    for (stem, title, note, t) in [
        ("table6_cifar10", "Table 6: CIFAR-10", CIFAR_NOTE, &cifar),
        (
            "tables2_3_imagenet",
            "Tables 2 and 3: ImageNet",
            IMAGENET_NOTE,
            &imagenet,
        ),
        (
            "table4_imagenet",
            "Table 4: ImageNet, multi-scale testing",
            TABLE4_NOTE,
            &table4,
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
    let all = results_dir.join("report.md");
    write_atomic(&all, md.as_bytes())?;
    files.push(all);
    Ok(Report {
        runs: runs.len(),
        cifar,
        imagenet,
        table4,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{append_eval, write_summary, EvalRow};

    fn summary(family: &str, kind: &str, depth: usize, shortcut: &str, err: f64) -> Summary {
        Summary {
            name: format!("{kind}{depth}{shortcut}"),
            model: format!("{kind}{depth}"),
            family: family.into(),
            kind: kind.into(),
            shortcut: shortcut.into(),
            depth,
            params: 269_722,
            iterations: 100,
            final_train_error: err - 5.0,
            final_test_error: err,
            best_test_error: err - 0.5,
            best_iteration: 90,
            eval_split: "test".into(),
            warmup_end: None,
            wall_s: 3.0,
        }
    }

    fn write_run(root: &Path, s: &Summary, dataset: &str) -> PathBuf {
        let dir = root.join(&s.name);
        std::fs::create_dir_all(&dir).unwrap();
        write_summary(&dir.join("summary.csv"), s).unwrap();
        let config = format!("name = \"{}\"\n[data]\ndataset = \"{dataset}\"\n", s.name);
        std::fs::write(dir.join("config.toml"), config).unwrap();
        dir
    }

    fn row<'a>(t: &'a Table, first: &str, layers: &str) -> &'a Vec<String> {
        t.rows
            .iter()
            .find(|r| r[0] == first && r[1] == layers)
            .unwrap_or_else(|| panic!("no row {first} {layers} in {t:?}"))
    }

    #[test]
    fn paper_numbers_are_tables_2_3_and_6() {
        // He et al. 2015, Table 6 (CIFAR-10 test error).
        let r110 = paper_table6(&summary("cifar", "residual", 110, "A", 0.0)).unwrap();
        assert_eq!((r110.error, r110.shown), (6.43, "6.43 (6.61±0.16)"));
        assert_eq!(
            paper_table6(&summary("cifar", "residual", 20, "A", 0.0))
                .unwrap()
                .error,
            8.75
        );
        assert_eq!(paper_table6(&summary("cifar", "plain", 20, "A", 0.0)), None);
        assert_eq!(
            paper_table6(&summary("cifar", "residual", 20, "B", 0.0)),
            None
        );
        // Tables 2 and 3 (ImageNet val, 10-crop).
        let a34 = paper_imagenet(&summary("imagenet", "residual", 34, "A", 0.0)).unwrap();
        assert_eq!((a34.top1, a34.top5), (25.03, Some(7.76)));
        let r152 = paper_imagenet(&summary("imagenet", "residual", 152, "B", 0.0)).unwrap();
        assert_eq!((r152.top1, r152.top5), (21.43, Some(5.71)));
        let p18 = paper_imagenet(&summary("imagenet", "plain", 18, "A", 0.0)).unwrap();
        assert_eq!((p18.top1, p18.top5), (27.94, None));
        assert_eq!(
            paper_imagenet(&summary("imagenet", "residual", 18, "B", 0.0)),
            None
        );
    }

    #[test]
    fn report_puts_ours_beside_the_paper() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        write_run(
            &runs,
            &summary("cifar", "residual", 20, "A", 8.0),
            "cifar10",
        );
        write_run(&runs, &summary("cifar", "plain", 20, "A", 9.5), "cifar10");
        let mut syn = summary("cifar", "residual", 56, "A", 1.0);
        syn.name = "synthetic56".into();
        write_run(&runs, &syn, "synthetic");
        let a34 = write_run(
            &runs,
            &summary("imagenet", "residual", 34, "A", 30.0),
            "image_folder",
        );
        write_run(
            &runs,
            &summary("imagenet", "residual", 50, "B", 24.0),
            "image_folder",
        );
        std::fs::create_dir_all(runs.join("unfinished")).unwrap();
        let eval = |crops, top1, top5| EvalRow {
            checkpoint: "last.safetensors".into(),
            iteration: 100,
            split: "val".into(),
            protocol: format!("{crops}-crop"),
            crops,
            images: 50_000,
            loss: 1.0,
            top1_error: top1,
            top5_error: top5,
        };
        append_eval(&a34.join("eval.csv"), &eval(10, 26.0, 8.0)).unwrap();
        append_eval(&a34.join("eval.csv"), &eval(1, 28.0, 9.5)).unwrap();

        let rep = report(&runs, &tmp.path().join("results")).unwrap();
        assert_eq!(rep.runs, 5);
        let c = &rep.cifar;
        // ResNet-20 on CIFAR-10: 8.00 vs Table 6's 8.75.
        let r20 = row(c, "ResNet", "20");
        assert_eq!(
            (
                &r20[2][..],
                &r20[4][..],
                &r20[6][..],
                &r20[7][..],
                &r20[8][..]
            ),
            ("0.27M", "cifar10", "8.00", "8.75", "-0.75")
        );
        assert!(r20[9].ends_with("residual20A"));
        // A ResNet-56 on synthetic data keeps the paper's number but gets no difference.
        let r56 = row(c, "ResNet", "56");
        assert_eq!(
            (&r56[4][..], &r56[6][..], &r56[7][..], &r56[8][..]),
            ("synthetic", "1.00", "6.97", "")
        );
        // plain-20 has no paper value; ResNet-110 has no run but keeps the paper's number.
        assert_eq!(row(c, "plain", "20")[7], "");
        let r110 = row(c, "ResNet", "110");
        assert_eq!(
            (&r110[6][..], &r110[7][..], &r110[8][..]),
            ("", "6.43 (6.61±0.16)", "")
        );
        assert_eq!(c.rows[0][0], "plain");
        assert_eq!(c.rows.len(), 7);

        let im = &rep.imagenet;
        // ResNet-34 A: the 10-crop row of eval.csv, beside Tables 2/3's 25.03 / 7.76.
        let r = row(im, "ResNet-34 A", "34");
        assert_eq!(
            &r[3..10],
            [
                "26.00",
                "25.03",
                "+0.97",
                "8.00",
                "7.76",
                "+0.24",
                "image_folder"
            ]
        );
        assert_eq!(r[10], "eval.csv: 10-crop val");
        // ResNet-50 without eval.csv: top-1 from the summary, no top-5.
        let r = row(im, "ResNet-50", "50");
        assert_eq!(&r[3..9], ["24.00", "22.85", "+1.15", "", "6.71", ""]);
        assert_eq!(row(im, "plain-18", "18")[4], "27.94");
        assert_eq!(im.rows.len(), 9);

        let md = std::fs::read_to_string(tmp.path().join("results/report.md")).unwrap();
        assert!(
            md.contains("## Table 6: CIFAR-10")
                && md.contains(
                    "| ResNet | 20 | 0.27M | 0.27M | cifar10 | test | 8.00 | 8.75 | -0.75 |"
                )
        );
        let csv = std::fs::read_to_string(tmp.path().join("results/table6_cifar10.csv")).unwrap();
        assert!(csv.starts_with(
            "method,layers,params,paper_params,dataset,split,error,paper_error,diff,"
        ));
        assert_eq!(rep.files.len(), 7);
        // No multi-scale rows: Table 4 lists the paper's five nets, ours empty.
        assert_eq!(rep.table4.rows.len(), 5);
        assert!(rep.table4.rows.iter().all(|r| r[3].is_empty()));
    }

    #[test]
    fn each_paper_number_is_matched_with_its_protocol() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        let r50 = write_run(
            &runs,
            &summary("imagenet", "residual", 50, "B", 24.0),
            "image_folder",
        );
        let r18 = write_run(
            &runs,
            &summary("imagenet", "residual", 18, "B", 33.0),
            "image_folder",
        );
        let row = |protocol: Protocol, top1, top5| EvalRow {
            checkpoint: "last.safetensors".into(),
            iteration: 100,
            split: "validation".into(),
            protocol: protocol.name(),
            crops: protocol.views(),
            images: 50_000,
            loss: 1.0,
            top1_error: top1,
            top5_error: top5,
        };
        let paper = Protocol::MultiScale(PAPER_SCALES.to_vec());
        let other = Protocol::multi_scale("224,256").unwrap();
        // Multi-scale rows have more views than 10-crop: they must still not reach Table 3.
        append_eval(&r50.join("eval.csv"), &row(paper.clone(), 21.0, 5.5)).unwrap();
        append_eval(&r50.join("eval.csv"), &row(Protocol::TenCrop, 23.0, 6.9)).unwrap();
        append_eval(&r50.join("eval.csv"), &row(other.clone(), 22.0, 6.0)).unwrap();
        append_eval(&r18.join("eval.csv"), &row(other, 30.0, 11.0)).unwrap();
        let rep = report(&runs, &tmp.path().join("results")).unwrap();
        // Table 3 (10-crop): ResNet-50's 10-crop row beside 22.85 / 6.71.
        let t3 = row_of(&rep.imagenet, "ResNet-50");
        assert_eq!(
            &t3[3..9],
            ["23.00", "22.85", "+0.15", "6.90", "6.71", "+0.19"]
        );
        assert_eq!(t3[10], "eval.csv: 10-crop validation");
        // Table 4 (multi-scale): the paper's scales are preferred to a later other list.
        let t4 = row_of(&rep.table4, "ResNet-50");
        assert_eq!(
            &t4[3..9],
            ["21.00", "20.74", "+0.26", "5.50", "5.25", "+0.25"]
        );
        assert_eq!(
            t4[10],
            "eval.csv: multi-scale 224/256/384/480/640 validation"
        );
        // ResNet-18 is not in Table 4, but its multi-scale evaluation is listed without a paper
        // number; in Tables 2/3 it has no crop row, so the training-time error stands there.
        let t4 = row_of(&rep.table4, "ResNet-18 B");
        assert_eq!(&t4[3..6], ["30.00", "", ""]);
        let t3 = row_of(&rep.imagenet, "ResNet-18 B");
        assert_eq!(t3[10], "summary.csv: training-time test");
        assert_eq!(rep.table4.rows.len(), 6);
        let md = std::fs::read_to_string(tmp.path().join("results/report.md")).unwrap();
        assert!(md.contains("## Table 4: ImageNet, multi-scale testing"));
        assert!(tmp.path().join("results/table4_imagenet.csv").is_file());
    }

    fn row_of<'a>(t: &'a Table, model: &str) -> &'a Vec<String> {
        t.rows
            .iter()
            .find(|r| r[0] == model && !r[3].is_empty())
            .unwrap_or_else(|| panic!("no measured row {model} in {t:?}"))
    }

    #[test]
    fn old_eval_csv_without_protocol_still_reports() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("eval.csv");
        std::fs::write(
            &p,
            format!(
                "{}\nlast.safetensors,100,val,10,50000,1.0,26.5,8.25\nlast.safetensors,100,val,1,50000,1.1,28,9.5\n",
                crate::records::EVAL_HEADER_V1
            ),
        )
        .unwrap();
        let rows = read_eval_rows(&p).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.protocol.as_str()).collect::<Vec<_>>(),
            ["10-crop", "1-crop"]
        );
        let best = read_eval(&p).unwrap().unwrap();
        assert_eq!(
            (best.crops, best.top1_error, best.top5_error),
            (10, 26.5, 8.25)
        );
        assert_eq!(multi_scale_row(&rows), None);
    }

    #[test]
    fn missing_runs_folder_and_bad_eval_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let e = format!("{:#}", gather(&tmp.path().join("nope")).unwrap_err());
        assert!(e.contains("nope"), "{e}");
        let p = tmp.path().join("eval.csv");
        std::fs::write(&p, "split,crops,top1\nval,10,20\n").unwrap();
        let e = format!("{:#}", read_eval(&p).unwrap_err());
        assert!(e.contains("top1_error") && e.contains("eval.csv"), "{e}");
    }
}
