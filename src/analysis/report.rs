//! `resnet report`: finished runs gathered into the paper's Table 6 (CIFAR-10 test error),
//! Tables 2 and 3 (ImageNet validation top-1/top-5 error, 10-crop testing) and Table 4 (single
//! models, multi-scale fully-convolutional testing), with the paper's numbers in a column beside
//! ours and the difference; each paper number beside our result of the protocol that produced it.
use crate::config::{Family, NetKind, Shortcut};
use crate::eval::{Protocol, PAPER_SCALES};
use crate::paper::{self, Net};
use crate::present::plot::{Figure, Panel, Series, PALETTE};
use crate::present::table::Table;
use crate::run::records::{
    read_curves, read_eval as read_eval_rows, read_summary, EvalRow, Summary,
};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// One finished run (a folder with `summary.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub dir: PathBuf,
    pub summary: Summary,
    /// The crop-testing row with the most crops (Tables 2 and 3).
    pub eval: Option<EvalRow>,
    /// The multi-scale row (Table 4): the paper's scales if measured, else the latest.
    pub multi_scale: Option<EvalRow>,
    /// `data.dataset` of the run's `config.toml` (`None` when the folder has none).
    pub dataset: Option<String>,
    /// What else the run's `config.toml` and `trainer.toml` say (defaults when absent).
    pub meta: RunMeta,
}

/// The trainer of runs without a `trainer.toml` (our `resnet train`).
pub const OURS: &str = "ours";

/// The paper's CIFAR-10 schedule (§4.2): 64k iterations, lr divided by 10 at 32k and 48k.
pub const PAPER_CIFAR_ITERATIONS: u64 = paper::CIFAR_ITERATIONS;
pub const PAPER_CIFAR_MILESTONES: [u64; 2] = paper::CIFAR_MILESTONES;

/// A run's recipe facts that decide whether it can stand for a Table 6 entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMeta {
    /// `impl` of the run's `trainer.toml` (`pytorch-reference` for
    /// scripts/reference/train.py), [`OURS`] without one; with `run.world_size` N > 1 in its
    /// config, followed by ` (N ranks)`: a data-parallel run (BN over N smaller batches) is its
    /// own group, never averaged with one-process seeds.
    pub trainer: String,
    /// `run.seed` (0, the default, when absent).
    pub seed: u64,
    /// `data.path` as written in the config.
    pub data_path: String,
    /// `schedule.milestones` (the paper's when absent, as in our config defaults).
    pub milestones: Vec<u64>,
    /// `model.classes` (the family's: 10 for CIFAR-10, 1000 for ImageNet, when absent).
    pub classes: u64,
}

/// ImageNet's classes: an image folder of fewer (Imagewoof's 10) is not the paper's data.
const IMAGENET_CLASSES: u64 = 1000;

impl Default for RunMeta {
    fn default() -> Self {
        RunMeta {
            trainer: OURS.into(),
            seed: 0,
            data_path: String::new(),
            milestones: PAPER_CIFAR_MILESTONES.to_vec(),
            classes: 0,
        }
    }
}

impl RunRecord {
    /// Whether the run's data is the paper's: CIFAR-10 for CIFAR nets (the official binary
    /// archive or a lossless PNG copy, see [`RunRecord::data_label`]), an image folder
    /// (ImageNet) for ImageNet nets. Differences to the paper are only shown for these.
    pub fn comparable(&self) -> bool {
        match self.summary.family {
            Family::Cifar => matches!(
                self.data_label().as_str(),
                "CIFAR-10" | "CIFAR-10 PNG (lossless)"
            ),
            Family::Imagenet => self.data_label() == "ImageNet",
        }
    }

    /// The data in words. CIFAR nets: `CIFAR-10` for the official archive,
    /// `CIFAR-10 PNG (lossless)` for an image folder whose path names CIFAR-10 in PNG (the same
    /// pixels, so the paper's data too),
    /// `CIFAR-10 JPEG (lossy)` for a JPEG copy. ImageNet nets: `ImageNet` for an image folder of
    /// 1000 classes, `Imagewoof (10 ImageNet classes)` for the Imagewoof subset (not the paper's
    /// data: no difference to the paper is shown), `image_folder (N classes)` otherwise. Else the
    /// dataset kind (`synthetic`). The folder's format is judged from its path, as our data sets
    /// are named.
    pub fn data_label(&self) -> String {
        let Some(ds) = self.dataset.as_deref() else {
            return "unknown".into();
        };
        let path = self.meta.data_path.to_ascii_lowercase();
        match (self.summary.family, ds) {
            (Family::Cifar, "cifar10") => "CIFAR-10".into(),
            (Family::Cifar, "image_folder") if path.contains("cifar") && path.contains("png") => {
                "CIFAR-10 PNG (lossless)".into()
            }
            (Family::Cifar, "image_folder")
                if path.contains("cifar") && (path.contains("jpeg") || path.contains("jpg")) =>
            {
                "CIFAR-10 JPEG (lossy)".into()
            }
            (Family::Imagenet, "image_folder") if path.contains("imagewoof") => {
                format!("Imagewoof ({} ImageNet classes)", self.meta.classes)
            }
            (Family::Imagenet, "image_folder") if self.meta.classes == IMAGENET_CLASSES => {
                "ImageNet".into()
            }
            (Family::Imagenet, "image_folder") => {
                format!("image_folder ({} classes)", self.meta.classes)
            }
            _ => ds.to_string(),
        }
    }

    /// Whether a CIFAR run followed the paper's 64k-iteration schedule (32k/48k milestones).
    pub fn paper_schedule(&self) -> bool {
        self.summary.iterations == PAPER_CIFAR_ITERATIONS
            && self.meta.milestones == PAPER_CIFAR_MILESTONES
    }

    /// The schedule in short: `64k` (the paper's) or e.g. `3k (lr÷10 at 1.5k, 2.25k)`.
    pub fn schedule_label(&self) -> String {
        let k = |n: u64| {
            if n.is_multiple_of(1000) {
                format!("{}k", n / 1000)
            } else if n >= 1000 {
                format!("{}k", n as f64 / 1000.0)
            } else {
                n.to_string()
            }
        };
        let mut s = k(self.summary.iterations);
        if !self.paper_schedule() {
            let m: Vec<String> = self.meta.milestones.iter().map(|&m| k(m)).collect();
            s += &format!(
                " (lr÷10 at {})",
                if m.is_empty() {
                    "-".into()
                } else {
                    m.join(", ")
                }
            );
        }
        s
    }
}

/// `data.dataset` from a run's resolved `config.toml` (read as plain TOML so that a folder from
/// an older or newer config schema still reports).
pub fn read_dataset(path: &Path) -> Result<Option<String>> {
    Ok(read_toml(path)?.map(|v| {
        v.get("data")
            .and_then(|d| d.get("dataset"))
            .and_then(|d| d.as_str())
            .unwrap_or("cifar10")
            .to_string()
    }))
}

fn read_toml(path: &Path) -> Result<Option<toml::Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: toml::Value =
        toml::from_str(&text).with_context(|| format!("{}: not valid TOML", path.display()))?;
    Ok(Some(v))
}

/// The [`RunMeta`] of the run folder `dir`, from its `config.toml` and `trainer.toml`.
pub fn read_meta(dir: &Path) -> Result<RunMeta> {
    let mut m = RunMeta::default();
    let mut world_size = 1;
    if let Some(v) = read_toml(&dir.join("config.toml"))? {
        let at = |a: &str, b: &str| v.get(a).and_then(|t| t.get(b)).cloned();
        if let Some(w) = at("run", "world_size").and_then(|w| w.as_integer()) {
            world_size = w;
        }
        if let Some(s) = at("run", "seed").and_then(|s| s.as_integer()) {
            m.seed = s.max(0) as u64;
        }
        if let Some(p) = at("data", "path").and_then(|p| p.as_str().map(String::from)) {
            m.data_path = p;
        }
        if let Some(c) = at("model", "classes").and_then(|c| c.as_integer()) {
            m.classes = c.max(0) as u64;
        }
        if let Some(ms) = at("schedule", "milestones").and_then(|a| a.as_array().cloned()) {
            m.milestones = ms
                .iter()
                .filter_map(|x| x.as_integer())
                .map(|x| x.max(0) as u64)
                .collect();
        }
    }
    if let Some(t) = read_toml(&dir.join("trainer.toml"))? {
        if let Some(i) = t.get("impl").and_then(|i| i.as_str()) {
            m.trainer = i.to_string();
        }
    }
    let sizes = world_sizes_trained(&dir.join(crate::run::dir::CHANGES_FILE))?;
    if sizes.len() > 1 {
        // Trained partly on other world sizes: its own group, never averaged with runs that
        // kept one world size throughout.
        m.trainer = format!("{} (ranks {})", m.trainer, sizes.join("→"));
    } else if world_size > 1 {
        m.trainer = format!("{} ({world_size} ranks)", m.trainer);
    }
    Ok(m)
}

/// The world sizes a run trained with, in order, from its `changes.csv` (`run.world_size` rows:
/// the first old value, then each new one); empty when the world size never changed.
fn world_sizes_trained(changes: &Path) -> Result<Vec<String>> {
    if !changes.exists() {
        return Ok(Vec::new());
    }
    let mut r = csv::Reader::from_path(changes)
        .with_context(|| format!("cannot read {}", changes.display()))?;
    let mut sizes: Vec<String> = Vec::new();
    for row in r.records() {
        let row = row.with_context(|| format!("{}: unreadable row", changes.display()))?;
        if row.get(1) != Some("run.world_size") {
            continue;
        }
        let (old, new) = (row.get(2).unwrap_or("?"), row.get(3).unwrap_or("?"));
        if sizes.is_empty() {
            sizes.push(crate::sys::console::shown(old));
        }
        sizes.push(crate::sys::console::shown(new));
    }
    Ok(sizes)
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
            let rows = own_rows(&dir, &summary, read_eval_rows(&dir.join("eval.csv"))?);
            let dataset = read_dataset(&dir.join("config.toml"))?;
            let mut meta = read_meta(&dir)?;
            if meta.classes == 0 {
                meta.classes = match summary.family {
                    Family::Cifar => 10,
                    Family::Imagenet => IMAGENET_CLASSES,
                };
            }
            Ok(RunRecord {
                dir,
                summary,
                eval: best_crop_row(&rows),
                multi_scale: multi_scale_row(&rows),
                dataset,
                meta,
            })
        })
        .collect()
}

/// The rows of a run's `eval.csv` that measure the run's own result: its own checkpoint at the
/// summary's iteration, named by any path: `last.safetensors` of this folder (`resnet train`), or
/// `last.pt` (the reference trainers' torchvision state dict, whose 10-crop test they record
/// themselves). Rows of other weights evaluated from inside the folder, or of an earlier
/// checkpoint, are left out.
fn own_rows(dir: &Path, s: &Summary, rows: Vec<EvalRow>) -> Vec<EvalRow> {
    use crate::run::dir::CHECKPOINT_FILE;
    const REFERENCE_CHECKPOINT_FILE: &str = "last.pt";
    rows.into_iter()
        .filter(|e| {
            let p = Path::new(&e.checkpoint);
            let ours = [CHECKPOINT_FILE, REFERENCE_CHECKPOINT_FILE]
                .into_iter()
                .find(|name| p.file_name() == Some(name.as_ref()))
                .is_some_and(|name| match p.parent().and_then(Path::file_name) {
                    None => true,
                    Some(folder) => {
                        Some(folder) == dir.file_name() || {
                            let own = dir.join(name).canonicalize().ok();
                            own.is_some() && p.canonicalize().ok() == own
                        }
                    }
                });
            ours && e.iteration == s.iterations
        })
        .collect()
}

/// Reads `eval.csv` (header [`EVAL_HEADER`]) and keeps the crop-testing row with the most crops
/// (Tables 2 and 3 use 10-crop testing), the latest among equals. `None` when the file does not
/// exist.
pub fn read_eval(path: &Path) -> Result<Option<EvalRow>> {
    Ok(best_crop_row(&read_eval_rows(path)?))
}

fn is_multi_scale(e: &EvalRow) -> bool {
    e.protocol.starts_with("multi-scale")
}

/// The crop-testing row with the most crops, the latest among equals.
fn best_crop_row(rows: &[EvalRow]) -> Option<EvalRow> {
    let mut best: Option<&EvalRow> = None;
    for e in rows.iter().filter(|e| !is_multi_scale(e)) {
        if best.is_none_or(|b| e.crops >= b.crops) {
            best = Some(e);
        }
    }
    best.cloned()
}

/// The latest multi-scale row at the paper's scales, else the latest multi-scale row.
fn multi_scale_row(rows: &[EvalRow]) -> Option<EvalRow> {
    let paper = Protocol::MultiScale(PAPER_SCALES.to_vec()).name();
    let latest = |f: &dyn Fn(&EvalRow) -> bool| rows.iter().rev().find(|e| f(e)).cloned();
    latest(&|e| e.protocol == paper).or_else(|| latest(&is_multi_scale))
}

/// The typed identity of a record's network.
fn net_of(s: &Summary) -> Net {
    Net {
        family: s.family,
        kind: s.kind,
        depth: s.depth,
        shortcut: s.shortcut,
    }
}

/// A CIFAR-10 entry of the paper's Table 6 ([`paper::TABLE6`]).
pub type PaperCifar = paper::Table6Row;

/// Table 6 of the paper ("Classification error on the CIFAR-10 test set"): ResNets with option A
/// shortcuts. Plain nets appear only in Figure 6, with no number in any table.
pub fn paper_table6(s: &Summary) -> Option<PaperCifar> {
    paper::table6(&net_of(s))
}

/// An ImageNet entry of Tables 2, 3 or 4 ([`paper::ImagenetError`]).
pub type PaperImagenet = paper::ImagenetError;

/// Tables 2 and 3 (validation error %, 10-crop testing: [`paper::TABLES_2_3`]).
pub fn paper_imagenet(s: &Summary) -> Option<PaperImagenet> {
    paper::tables_2_3(&net_of(s))
}

/// Table 4 (single models, multi-scale fully-convolutional testing: [`paper::TABLE4`]).
pub fn paper_table4(s: &Summary) -> Option<PaperImagenet> {
    paper::table4(&net_of(s))
}

/// Summaries of the networks the paper reports, for rows we have no run of.
fn paper_only(family: Family) -> Vec<Summary> {
    let entry = |n: &Net| Summary::unfinished("", "", family, n.kind, n.shortcut, n.depth, 0);
    if family == Family::Cifar {
        paper::TABLE6
            .iter()
            .map(|r| entry(&Net::cifar(NetKind::Residual, r.depth)))
            .collect()
    } else {
        paper::TABLES_2_3.iter().map(|e| entry(&e.net)).collect()
    }
}

/// Our runs of `family`, plus one empty row for each paper entry without a run, ordered as the
/// paper orders them (plain before residual, then depth, then shortcut option).
fn rows_of(runs: &[RunRecord], family: Family) -> Vec<(Summary, Option<&RunRecord>)> {
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
        paper_order(a)
            .cmp(&paper_order(b))
            .then_with(|| ra.map(|r| r.dir.clone()).cmp(&rb.map(|r| r.dir.clone())))
    });
    rows
}

/// The order of the paper's tables: plain before residual, then depth, then shortcut option.
pub(crate) fn paper_order(s: &Summary) -> (bool, usize, Shortcut) {
    (s.kind != NetKind::Plain, s.depth, s.shortcut)
}

pub(crate) fn pct(v: f64) -> String {
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
        Some(r) => r.data_label(),
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

/// Best, mean and sample standard deviation (n − 1; `None` for one value) of `values`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedStats {
    pub n: usize,
    pub best: f64,
    pub mean: f64,
    pub std: Option<f64>,
}

impl SeedStats {
    pub fn of(values: &[f64]) -> Option<SeedStats> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        let best = values.iter().copied().fold(f64::INFINITY, f64::min);
        Some(SeedStats { n, best, mean, std })
    }

    /// As the paper prints ResNet-110's entry: `best (mean±std)`; one run: its value alone.
    pub fn shown(&self) -> String {
        match self.std {
            Some(sd) => format!("{:.2} ({:.2}±{:.2})", self.best, self.mean, sd),
            None => pct(self.best),
        }
    }
}

/// The runs of one Table 6 row: one network, trainer, data and schedule, any number of seeds.
#[derive(Debug, Clone)]
pub struct CifarGroup<'a> {
    pub runs: Vec<&'a RunRecord>,
}

impl CifarGroup<'_> {
    fn key(r: &RunRecord) -> (bool, usize, Shortcut, String, String, String, String) {
        let s = &r.summary;
        let (residual, depth, shortcut) = paper_order(s);
        (
            residual,
            depth,
            shortcut,
            r.meta.trainer.clone(),
            r.data_label(),
            r.schedule_label(),
            s.eval_split.clone(),
        )
    }

    /// Final errors of the runs, the statistics Table 6 shows.
    pub fn stats(&self) -> Option<SeedStats> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .map(|r| r.summary.final_test_error)
            .collect();
        SeedStats::of(&v)
    }
}

/// CIFAR runs grouped into Table 6 rows (same network, trainer, data, schedule and split: the
/// seeds of one experiment), in the paper's order (plain first, then depth), ours before other
/// trainers.
pub fn cifar_groups(runs: &[RunRecord]) -> Vec<CifarGroup<'_>> {
    let mut groups: Vec<CifarGroup> = Vec::new();
    let mut cifar: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.summary.family == Family::Cifar)
        .collect();
    cifar.sort_by_key(|r| {
        let (a, b, c, d, e, f, g) = CifarGroup::key(r);
        (a, b, c, d != OURS, d, f, e, g, r.meta.seed, r.dir.clone())
    });
    for r in cifar {
        match groups.last_mut() {
            Some(g) if CifarGroup::key(g.runs[0]) == CifarGroup::key(r) => g.runs.push(r),
            _ => groups.push(CifarGroup { runs: vec![r] }),
        }
    }
    groups
}

/// What keeps a group from standing for a Table 6 entry, in words (empty when nothing does).
fn caveat(r: &RunRecord) -> String {
    let mut why = Vec::new();
    if !r.paper_schedule() {
        why.push(format!(
            "{} iterations, not the paper's {}k",
            r.summary.iterations,
            paper::CIFAR_ITERATIONS / 1000
        ));
    }
    if !r.comparable() {
        why.push(format!("data {}, not CIFAR-10", r.data_label()));
    }
    if why.is_empty() {
        String::new()
    } else {
        format!("NOT a Table 6 reproduction: {}", why.join("; "))
    }
}

/// Table 6: method, #layers, #params (ours and the paper's), who trained it (`impl`), data,
/// schedule, number of runs, the final CIFAR-10 test error as the paper gives it for ResNet-110
/// (best (mean±std) over seeds), the paper's and akamaster's PyTorch numbers, and our mean − the
/// paper's (only for runs with the paper's data and 64k schedule; the others say why not).
pub fn table6(runs: &[RunRecord]) -> Table {
    let mut t = Table::new([
        "method",
        "layers",
        "params",
        "paper_params",
        "impl",
        "dataset",
        "schedule",
        "split",
        "runs",
        "error",
        "paper_error",
        "akamaster_error",
        "diff",
        "note",
        "run",
    ]);
    let groups = cifar_groups(runs);
    let mut rows: Vec<(Summary, Option<&CifarGroup>)> = groups
        .iter()
        .map(|g| (g.runs[0].summary.clone(), Some(g)))
        .collect();
    for p in paper_only(Family::Cifar) {
        let same = |s: &Summary| s.kind == p.kind && s.depth == p.depth && s.shortcut == p.shortcut;
        if !rows.iter().any(|(s, _)| same(s)) {
            rows.push((p, None));
        }
    }
    // Stable: groups keep their order within one network.
    rows.sort_by_key(|(s, _)| paper_order(s));
    for (s, group) in rows {
        let paper = paper_table6(&s);
        let method = match (s.kind, s.shortcut) {
            (NetKind::Plain, _) => "plain".to_string(),
            (_, Shortcut::A) => "ResNet".to_string(),
            (_, sc) => format!("ResNet ({sc})"),
        };
        let first = group.map(|g| g.runs[0]);
        let stats = group.and_then(CifarGroup::stats);
        let note = first.map(caveat).unwrap_or_default();
        // The paper's own mean where it gives one (ResNet-110), else its single number.
        let paper_mean = paper.map(|p| p.mean());
        let akamaster = paper::akamaster_error(&net_of(&s));
        t.push(vec![
            method,
            s.depth.to_string(),
            first
                .map(|r| millions(r.summary.params))
                .unwrap_or_default(),
            paper.map(|p| p.params_shown()).unwrap_or_default(),
            first.map(|r| r.meta.trainer.clone()).unwrap_or_default(),
            first.map(RunRecord::data_label).unwrap_or_default(),
            first.map(RunRecord::schedule_label).unwrap_or_default(),
            s.eval_split.clone(),
            stats.map(|st| st.n.to_string()).unwrap_or_default(),
            stats.map(|st| st.shown()).unwrap_or_default(),
            paper.map(|p| p.shown()).unwrap_or_default(),
            akamaster.map(pct).unwrap_or_default(),
            diff(
                stats.map(|st| st.mean).filter(|_| note.is_empty()),
                paper_mean,
            ),
            note,
            group
                .map(|g| {
                    g.runs
                        .iter()
                        .map(|r| r.dir.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
        ]);
    }
    t
}

/// Every CIFAR run on its own row (the seeds behind Table 6's best (mean±std)), grouped as
/// Table 6 groups them.
pub fn cifar_runs_table(runs: &[RunRecord]) -> Table {
    let mut t = Table::new([
        "model",
        "impl",
        "dataset",
        "schedule",
        "seed",
        "final_train_error",
        "final_test_error",
        "best_test_error",
        "best_iteration",
        "wall_s",
        "run",
    ]);
    for g in cifar_groups(runs) {
        for r in &g.runs {
            let s = &r.summary;
            t.push(vec![
                s.model.clone(),
                r.meta.trainer.clone(),
                r.data_label(),
                r.schedule_label(),
                r.meta.seed.to_string(),
                pct(s.final_train_error),
                pct(s.final_test_error),
                pct(s.best_test_error),
                s.best_iteration.to_string(),
                format!("{:.0}", s.wall_s),
                r.dir.display().to_string(),
            ]);
        }
    }
    t
}

/// An ImageNet model's name as the paper's tables print it.
fn imagenet_model(s: &Summary) -> String {
    match (s.kind, s.depth, s.shortcut) {
        (NetKind::Plain, d, _) => format!("plain-{d}"),
        (_, d, sc) if d <= 34 || sc != Shortcut::B => format!("ResNet-{d} {sc}"),
        (_, d, _) => format!("ResNet-{d}"),
    }
}

/// Table 4: top-1 and top-5 validation error with multi-scale testing, ours from the run's
/// multi-scale `eval.csv` row only (never from another protocol), for the paper's Table 4 nets
/// and any ImageNet run evaluated that way.
pub fn table4_imagenet(runs: &[RunRecord]) -> Table {
    let mut t = Table::new(IMAGENET_COLUMNS.into_iter().chain(["run"]));
    for (s, run) in rows_of(runs, Family::Imagenet) {
        let paper = paper_table4(&s);
        let ours = run.and_then(|r| r.multi_scale.as_ref());
        if paper.is_none() && ours.is_none() {
            continue;
        }
        let measured = Measured {
            top1: ours.map(|e| e.top1_error),
            top5: ours.map(|e| e.top5_error),
            by: ours
                .map(|e| format!("eval.csv: {} {}", e.protocol, e.split))
                .unwrap_or_default(),
        };
        let mut row = imagenet_cells(&s, run, paper, measured);
        row.push(run_dir(run));
        t.push(row);
    }
    t
}

/// The columns Tables 2/3 and 4 share (each table adds its own after them).
const IMAGENET_COLUMNS: [&str; 11] = [
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
];

/// Our top-1 and top-5 errors of one ImageNet row and the file (and protocol) they come from.
struct Measured {
    top1: Option<f64>,
    top5: Option<f64>,
    by: String,
}

/// The [`IMAGENET_COLUMNS`] cells of one row: ours beside the paper's, with differences only
/// where our run used the paper's data.
fn imagenet_cells(
    s: &Summary,
    run: Option<&RunRecord>,
    paper: Option<PaperImagenet>,
    ours: Measured,
) -> Vec<String> {
    let same_data = run.is_some_and(RunRecord::comparable);
    let p1 = paper.map(|p| p.top1);
    let p5 = paper.and_then(|p| p.top5);
    vec![
        imagenet_model(s),
        s.depth.to_string(),
        run.map(|r| millions(r.summary.params)).unwrap_or_default(),
        ours.top1.map(pct).unwrap_or_default(),
        p1.map(pct).unwrap_or_default(),
        diff(ours.top1.filter(|_| same_data), p1),
        ours.top5.map(pct).unwrap_or_default(),
        p5.map(pct).unwrap_or_default(),
        diff(ours.top5.filter(|_| same_data), p5),
        dataset(run),
        ours.by,
    ]
}

fn run_dir(run: Option<&RunRecord>) -> String {
    run.map(|r| r.dir.display().to_string()).unwrap_or_default()
}

/// Figure 6's layout for the CIFAR runs that have curves: one panel per trainer (ours first),
/// one line per run (training error dashed, test error bold), labelled with the network, the
/// seed and the schedule.
pub fn cifar_figure(runs: &[RunRecord], title: &str) -> Result<Option<Figure>> {
    let groups = cifar_groups(runs);
    curves_figure(groups.iter().flat_map(|g| g.runs.iter().copied()), title)
}

/// Figure 6's layout for `runs` (in the order given) that have curves: one panel per trainer,
/// one line per run, labelled with the network and the seed.
pub(crate) fn curves_figure<'a>(
    runs: impl IntoIterator<Item = &'a RunRecord>,
    title: &str,
) -> Result<Option<Figure>> {
    let mut panels: Vec<Panel> = Vec::new();
    for r in runs {
        let curves_path = r.dir.join("curves.csv");
        if !curves_path.is_file() {
            continue;
        }
        let curves = read_curves(&curves_path)?;
        let trainer = &r.meta.trainer;
        let idx = match panels.iter().position(|p| &p.title == trainer) {
            Some(i) => i,
            None => {
                panels.push(Panel {
                    title: trainer.clone(),
                    series: Vec::new(),
                });
                panels.len() - 1
            }
        };
        let panel = &mut panels[idx];
        let name = super::compare::legend_name(&r.summary);
        panel.series.push(Series {
            label: format!("{name} s{}", r.meta.seed),
            color: PALETTE[panel.series.len() % PALETTE.len()].to_string(),
            train: curves
                .iter()
                .map(|c| (c.iteration as f64, c.train_error))
                .collect(),
            test: curves
                .iter()
                .filter_map(|c| c.test_error.map(|e| (c.iteration as f64, e)))
                .collect(),
        });
    }
    if panels.is_empty() {
        return Ok(None);
    }
    Ok(Some(Figure {
        title: title.into(),
        panels,
    }))
}

/// Tables 2 and 3: top-1 and top-5 validation error. Ours come from `eval.csv` (the crop-testing
/// row with the most crops; multi-scale rows belong to Table 4) when present, else top-1 from
/// `summary.csv` (the training-time evaluation).
pub fn table_imagenet(runs: &[RunRecord]) -> Table {
    let mut t = Table::new(IMAGENET_COLUMNS.into_iter().chain(["paper_source", "run"]));
    for (s, run) in rows_of(runs, Family::Imagenet) {
        let paper = paper_imagenet(&s);
        let measured = match run {
            None => Measured {
                top1: None,
                top5: None,
                by: String::new(),
            },
            Some(r) => match &r.eval {
                Some(e) => Measured {
                    top1: Some(e.top1_error),
                    top5: Some(e.top5_error),
                    by: format!("eval.csv: {}-crop {}", e.crops, e.split),
                },
                None => Measured {
                    top1: Some(r.summary.final_test_error),
                    top5: None,
                    by: format!("summary.csv: training-time {}", r.summary.eval_split),
                },
            },
        };
        let mut row = imagenet_cells(&s, run, paper, measured);
        row.push(paper.map(|p| p.source.to_string()).unwrap_or_default());
        row.push(run_dir(run));
        t.push(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report_writer::{report, Report};
    use crate::run::records::{append_eval, write_summary, EvalRow};

    fn summary(family: &str, kind: &str, depth: usize, shortcut: &str, err: f64) -> Summary {
        Summary {
            name: format!("{kind}{depth}{shortcut}"),
            model: format!("{kind}{depth}"),
            family: family.parse().unwrap(),
            kind: kind.parse().unwrap(),
            shortcut: shortcut.parse().unwrap(),
            depth,
            params: 269_722,
            iterations: paper::CIFAR_ITERATIONS,
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

    fn cell<'a>(t: &Table, r: &'a [String], name: &str) -> &'a str {
        let i = t.headers.iter().position(|h| h == name).unwrap();
        &r[i]
    }

    fn cells<'a>(t: &Table, r: &'a [String], names: &[&str]) -> Vec<&'a str> {
        names.iter().map(|n| cell(t, r, n)).collect()
    }

    fn row<'a>(t: &'a Table, first: &str, layers: &str) -> &'a Vec<String> {
        t.rows
            .iter()
            .find(|r| r[0] == first && r[1] == layers)
            .unwrap_or_else(|| panic!("no row {first} {layers} in {t:?}"))
    }

    /// A data-parallel run is its own trainer group: its world size follows the impl.
    #[test]
    fn world_size_names_the_trainer() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |name: &str, run: &str, trainer: Option<&str>| {
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("config.toml"), format!("[run]\nseed = 1\n{run}")).unwrap();
            if let Some(t) = trainer {
                std::fs::write(dir.join("trainer.toml"), format!("impl = \"{t}\"\n")).unwrap();
            }
            read_meta(&dir).unwrap().trainer
        };
        assert_eq!(write("a", "", None), "ours");
        assert_eq!(write("b", "world_size = 1\n", None), "ours");
        assert_eq!(write("c", "world_size = 2\n", None), "ours (2 ranks)");
        assert_eq!(
            write("d", "world_size = 2\n", Some("pytorch-reference")),
            "pytorch-reference (2 ranks)"
        );
    }

    /// The records' strings find the paper's typed entries (values in `paper.rs`).
    #[test]
    fn paper_numbers_are_tables_2_3_and_6() {
        use crate::config::{NetKind, Shortcut};
        let r110 = paper_table6(&summary("cifar", "residual", 110, "A", 0.0)).unwrap();
        assert_eq!(r110, paper::TABLE6[4]);
        assert_eq!(r110.depth, 110);
        assert_eq!(paper_table6(&summary("cifar", "plain", 20, "A", 0.0)), None);
        assert_eq!(
            paper_table6(&summary("cifar", "residual", 20, "B", 0.0)),
            None
        );
        let a34 = paper_imagenet(&summary("imagenet", "residual", 34, "A", 0.0)).unwrap();
        assert_eq!(a34.net, Net::imagenet(NetKind::Residual, 34, Shortcut::A));
        let p18 = paper_imagenet(&summary("imagenet", "plain", 18, "A", 0.0)).unwrap();
        assert_eq!((p18.net.kind, p18.top5), (NetKind::Plain, None));
        assert_eq!(
            paper_imagenet(&summary("imagenet", "residual", 18, "B", 0.0)),
            None
        );
        let b50 = paper_table4(&summary("imagenet", "residual", 50, "B", 0.0)).unwrap();
        assert_eq!(b50.source, "Table 4");
    }

    /// Five runs (CIFAR ResNet-20 and plain-20, a ResNet-56 on synthetic data, ImageNet
    /// ResNet-34 A with 10-crop and 1-crop eval rows, ResNet-50 without) and an unfinished folder,
    /// reported into `results/` beside them.
    fn report_of_five_runs() -> (tempfile::TempDir, Report) {
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
            iteration: paper::CIFAR_ITERATIONS,
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
        (tmp, rep)
    }

    fn t6(depth: usize) -> paper::Table6Row {
        *paper::TABLE6.iter().find(|r| r.depth == depth).unwrap()
    }

    fn aka(depth: usize) -> Option<f64> {
        paper::akamaster_error(&Net::cifar(crate::config::NetKind::Residual, depth))
    }

    fn p2(v: f64) -> String {
        format!("{v:.2}")
    }

    #[test]
    fn table6_puts_our_cifar_runs_beside_the_paper() {
        let (_tmp, rep) = report_of_five_runs();
        assert_eq!(rep.runs, 5);
        let c = &rep.cifar;
        // ResNet-20 on CIFAR-10 with the 64k schedule: 8.00 vs Table 6's and akamaster's.
        let r20 = row(c, "ResNet", "20");
        assert_eq!(
            cells(
                c,
                r20,
                &["params", "impl", "dataset", "schedule", "runs", "error"]
            ),
            ["0.27M", "ours", "CIFAR-10", "64k", "1", "8.00"]
        );
        assert_eq!(
            cells(c, r20, &["paper_error", "akamaster_error", "diff", "note"]),
            [
                t6(20).shown(),
                p2(aka(20).unwrap()),
                format!("{:+.2}", 8.0 - t6(20).error),
                String::new()
            ]
        );
        assert!(cell(c, r20, "run").ends_with("residual20A"));
        // A ResNet-56 on synthetic data keeps the paper's number but gets no difference.
        let r56 = row(c, "ResNet", "56");
        assert_eq!(
            cells(c, r56, &["dataset", "error", "paper_error", "diff"]),
            ["synthetic", "1.00", &t6(56).shown(), ""]
        );
        assert!(cell(c, r56, "note").contains("data synthetic, not CIFAR-10"));
        // plain-20 has no paper value; ResNet-110 has no run but keeps the paper's numbers.
        assert_eq!(cell(c, row(c, "plain", "20"), "paper_error"), "");
        let r110 = row(c, "ResNet", "110");
        assert_eq!(
            cells(
                c,
                r110,
                &["error", "paper_error", "akamaster_error", "diff"]
            ),
            ["", &t6(110).shown(), &p2(aka(110).unwrap()), ""]
        );
        assert_eq!(c.rows[0][0], "plain");
        assert_eq!(c.rows.len(), 7);
    }

    #[test]
    fn tables_2_3_take_the_most_crops_else_the_summary() {
        let (_tmp, rep) = report_of_five_runs();
        let im = &rep.imagenet;
        // ResNet-34 A: the 10-crop row of eval.csv, beside Tables 2/3's.
        let paper_of = |k, d, sc| paper::tables_2_3(&Net::imagenet(k, d, sc)).unwrap();
        use crate::config::{NetKind::Plain, NetKind::Residual, Shortcut::A, Shortcut::B};
        let a34 = paper_of(Residual, 34, A);
        let r = row(im, "ResNet-34 A", "34");
        assert_eq!(
            &r[3..10],
            [
                "26.00".to_string(),
                p2(a34.top1),
                format!("{:+.2}", 26.0 - a34.top1),
                "8.00".to_string(),
                p2(a34.top5.unwrap()),
                format!("{:+.2}", 8.0 - a34.top5.unwrap()),
                "ImageNet".to_string()
            ]
        );
        assert_eq!(r[10], "eval.csv: 10-crop val");
        // ResNet-50 without eval.csv: top-1 from the summary, no top-5.
        let r = row(im, "ResNet-50", "50");
        let b50 = paper_of(Residual, 50, B);
        let (t1, t5) = (p2(b50.top1), p2(b50.top5.unwrap()));
        let d1 = format!("{:+.2}", 24.0 - b50.top1);
        assert_eq!(&r[3..9], ["24.00", &t1, &d1, "", &t5, ""]);
        assert_eq!(
            row(im, "plain-18", "18")[4],
            p2(paper_of(Plain, 18, A).top1)
        );
        assert_eq!(im.rows.len(), 9);
    }

    #[test]
    fn report_writes_markdown_csv_and_an_empty_table4() {
        let (tmp, rep) = report_of_five_runs();
        let md = std::fs::read_to_string(tmp.path().join("results/report.md")).unwrap();
        assert!(
            md.contains("## Table 6: CIFAR-10")
                && md.contains(&format!(
                    "| ResNet | 20 | 0.27M | {} | ours | CIFAR-10 | 64k | test | 1 | 8.00 | {} | {} | {:+.2} |",
                    t6(20).params_shown(),
                    t6(20).shown(),
                    p2(aka(20).unwrap()),
                    8.0 - t6(20).error
                )),
            "{md}"
        );
        let csv = std::fs::read_to_string(tmp.path().join("results/table6_cifar10.csv")).unwrap();
        assert!(csv.starts_with(
            "method,layers,params,paper_params,impl,dataset,schedule,split,runs,error,paper_error,\
             akamaster_error,diff,note,run\n"
        ));
        // No curves in these runs: six tables (csv + md) and report.md only.
        assert_eq!(rep.files.len(), 13);
        // No multi-scale rows: Table 4 lists the paper's five nets, ours empty.
        assert_eq!(rep.table4.rows.len(), 5);
        assert!(rep.table4.rows.iter().all(|r| r[3].is_empty()));
    }

    /// A CIFAR ResNet-20 run folder as `resnet train` (no trainer.toml) or the reference
    /// (trainer.toml) leaves it: config.toml with seed, data path and schedule, a summary with
    /// final test error `err`, and a curves.csv.
    fn write_seed_run(
        root: &Path,
        name: &str,
        trainer: Option<&str>,
        seed: u64,
        data: &str,
        iterations: u64,
        err: f64,
    ) {
        let mut s = summary("cifar", "residual", 20, "A", err);
        s.name = name.into();
        s.iterations = iterations;
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        write_summary(&dir.join("summary.csv"), &s).unwrap();
        let m = format!("{:?}", paper::scaled_milestones(iterations));
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "name = \"x\"\n[data]\ndataset = \"image_folder\"\npath = \"{data}\"\n\
                 [schedule]\niterations = {iterations}\nmilestones = {m}\n[run]\nseed = {seed}\n"
            ),
        )
        .unwrap();
        if let Some(t) = trainer {
            std::fs::write(dir.join("trainer.toml"), format!("impl = \"{t}\"\n")).unwrap();
        }
        let mut curves = format!("{}\n", crate::run::records::CURVES_HEADER);
        for it in [500, 1000] {
            let row = crate::run::records::CurveRow {
                iteration: it,
                epoch: 1.0,
                lr: 0.1,
                train_loss: 1.0,
                train_error: err - 3.0,
                test_loss: Some(0.9),
                test_error: Some(err),
                images_per_s: 500.0,
                elapsed_s: 10.0,
            };
            curves += &format!("{}\n", row.to_csv());
        }
        std::fs::write(dir.join("curves.csv"), curves).unwrap();
    }

    /// Seven ResNet-20 runs: ours (3 seeds) and the reference (2) with the paper's schedule on
    /// the PNGs, a 3k-iteration run and a JPEG run, reported into `out/`.
    fn report_of_seed_runs() -> (tempfile::TempDir, Report) {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        let png = "../shared/data/cifar10-png.tar.gz";
        // Ours, the paper's schedule on lossless data: three seeds.
        for (seed, err) in [(0, 8.0), (1, 9.0), (2, 8.5)] {
            write_seed_run(
                &runs,
                &format!("ours64k-s{seed}"),
                None,
                seed,
                png,
                paper::CIFAR_ITERATIONS,
                err,
            );
        }
        // The reference on the same: two seeds, its own row.
        for (seed, err) in [(0, 8.2), (1, 8.4)] {
            let name = format!("ref64k-s{seed}");
            write_seed_run(
                &runs,
                &name,
                Some("pytorch-reference"),
                seed,
                png,
                paper::CIFAR_ITERATIONS,
                err,
            );
        }
        // A 3k-iteration CPU run and a JPEG run: marked, no difference to the paper.
        write_seed_run(&runs, "ours3k-s0", None, 0, png, 3_000, 16.0);
        write_seed_run(
            &runs,
            "jpeg-s0",
            None,
            0,
            "../shared/data/cifar10-jpeg.tar.gz",
            paper::CIFAR_ITERATIONS,
            12.4,
        );

        let rep = report(&runs, &tmp.path().join("out")).unwrap();
        (tmp, rep)
    }

    #[test]
    fn seeds_give_best_mean_and_sample_std_per_trainer_with_caveats() {
        let (_tmp, rep) = report_of_seed_runs();
        let c = &rep.cifar;
        let rows: Vec<&Vec<String>> = c.rows.iter().filter(|r| r[1] == "20").collect();
        let col = |r: &Vec<String>, n: &str| cell(c, r, n).to_string();
        let find = |imp: &str, sched: &str, data: &str| {
            *rows
                .iter()
                .find(|r| {
                    col(r, "impl") == imp
                        && col(r, "schedule").starts_with(sched)
                        && col(r, "dataset") == data
                })
                .unwrap_or_else(|| panic!("no row {imp} {sched} {data} in {c:?}"))
        };
        assert_eq!(rows.len(), 4, "{c:?}");
        // 8.0, 9.0, 8.5: best 8.00, mean 8.50, sample std 0.50 (n−1); diff = mean − Table 6's.
        let r20 = paper::TABLE6[0];
        assert_eq!(r20.depth, 20);
        let ours = find("ours", "64k", "CIFAR-10 PNG (lossless)");
        assert_eq!(
            cells(c, ours, &["runs", "error", "diff", "note"]),
            [
                "3".to_string(),
                "8.00 (8.50±0.50)".to_string(),
                format!("{:+.2}", 8.5 - r20.error),
                String::new()
            ]
        );
        assert_eq!(col(ours, "run").split(' ').count(), 3);
        // 8.2, 8.4: mean 8.30, std sqrt(0.02) = 0.14.
        let reference = find("pytorch-reference", "64k", "CIFAR-10 PNG (lossless)");
        assert_eq!(
            cells(c, reference, &["runs", "error", "diff"]),
            [
                "2".to_string(),
                "8.20 (8.30±0.14)".to_string(),
                format!("{:+.2}", 8.3 - r20.error)
            ]
        );
        let short = find("ours", "3k", "CIFAR-10 PNG (lossless)");
        assert_eq!(col(short, "schedule"), "3k (lr÷10 at 1.5k, 2.25k)");
        assert_eq!(col(short, "diff"), "");
        assert!(col(short, "note").starts_with("NOT a Table 6 reproduction: 3000 iterations"));
        let jpeg = find("ours", "64k", "CIFAR-10 JPEG (lossy)");
        assert_eq!(
            (col(jpeg, "error"), col(jpeg, "diff")),
            ("12.40".into(), "".into())
        );
        assert!(col(jpeg, "note").contains("data CIFAR-10 JPEG (lossy), not CIFAR-10"));
        // Ours before the reference within one network.
        let pos = |r: &Vec<String>| c.rows.iter().position(|x| x == r).unwrap();
        assert!(pos(ours) < pos(reference));
    }

    #[test]
    fn seed_table_lists_every_run_and_the_figure_has_a_panel_per_trainer() {
        let (tmp, rep) = report_of_seed_runs();
        // The per-seed table lists every run with its seed; the figure has a panel per trainer.
        let t = &rep.cifar_runs;
        assert_eq!(t.rows.len(), 7);
        let seeds: Vec<(&str, &str, &str)> = t
            .rows
            .iter()
            .filter(|r| r[3] == "64k" && r[2].contains("PNG"))
            .map(|r| (r[1].as_str(), r[4].as_str(), r[6].as_str()))
            .collect();
        assert_eq!(
            seeds,
            [
                ("ours", "0", "8.00"),
                ("ours", "1", "9.00"),
                ("ours", "2", "8.50"),
                ("pytorch-reference", "0", "8.20"),
                ("pytorch-reference", "1", "8.40")
            ]
        );
        let svg = std::fs::read_to_string(tmp.path().join("out/curves_cifar10.svg")).unwrap();
        assert_eq!(svg.matches(r#"<g class="panel">"#).count(), 2);
        assert!(svg.contains(">pytorch-reference</text>") && svg.contains(">ResNet-20 s2</text>"));
        assert_eq!(svg.matches(r#"class="test""#).count(), 7);
        assert!(tmp.path().join("out/curves_cifar10.png").is_file());
    }

    #[test]
    fn seed_stats_follow_the_papers_form() {
        let one = SeedStats::of(&[7.5]).unwrap();
        assert_eq!((one.n, one.std, one.shown()), (1, None, "7.50".to_string()));
        let two = SeedStats::of(&[6.0, 7.0]).unwrap();
        // Sample std of {6, 7}: sqrt(0.5) = 0.707.
        assert!((two.std.unwrap() - 0.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(two.shown(), "6.00 (6.50±0.71)");
        assert_eq!(SeedStats::of(&[]), None);
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
            iteration: paper::CIFAR_ITERATIONS,
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
        // Table 3 (10-crop): ResNet-50's 10-crop row beside Table 3's; Table 4's multi-scale.
        use crate::config::{NetKind, Shortcut};
        let net = Net::imagenet(NetKind::Residual, 50, Shortcut::B);
        let beside = |p: paper::ImagenetError, top1: f64, top5: f64| {
            let p5 = p.top5.unwrap();
            [
                format!("{top1:.2}"),
                format!("{:.2}", p.top1),
                format!("{:+.2}", top1 - p.top1),
                format!("{top5:.2}"),
                format!("{p5:.2}"),
                format!("{:+.2}", top5 - p5),
            ]
        };
        let t3 = row_of(&rep.imagenet, "ResNet-50");
        assert_eq!(
            &t3[3..9],
            beside(paper::tables_2_3(&net).unwrap(), 23.0, 6.9)
        );
        assert_eq!(t3[10], "eval.csv: 10-crop validation");
        // Table 4 (multi-scale): the paper's scales are preferred to a later other list.
        let t4 = row_of(&rep.table4, "ResNet-50");
        assert_eq!(&t4[3..9], beside(paper::table4(&net).unwrap(), 21.0, 5.5));
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
    fn imagewoof_is_named_and_never_differenced_against_imagenet() {
        let record = |path: &str, classes: u64| RunRecord {
            dir: PathBuf::from("runs/x"),
            summary: summary("imagenet", "residual", 18, "A", 40.0),
            eval: None,
            multi_scale: None,
            dataset: Some("image_folder".into()),
            meta: RunMeta {
                data_path: path.into(),
                classes,
                ..RunMeta::default()
            },
        };
        let woof = record("../shared/data/imagewoof2-320-sub116x60.tar.gz", 10);
        assert_eq!(woof.data_label(), "Imagewoof (10 ImageNet classes)");
        assert!(!woof.comparable());
        let full = record("/data/imagenet", 1000);
        assert_eq!(
            (full.data_label().as_str(), full.comparable()),
            ("ImageNet", true)
        );
        let other = record("/data/pets", 37);
        assert_eq!(other.data_label(), "image_folder (37 classes)");
        assert!(!other.comparable());
        let t = table_imagenet(&[woof]);
        let r = row(&t, "ResNet-18 A", "18");
        assert_eq!((r[3].as_str(), r[5].as_str()), ("40.00", ""), "{r:?}");
    }

    #[test]
    fn old_eval_csv_without_protocol_still_reports() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("eval.csv");
        std::fs::write(
            &p,
            format!(
                "{}\nlast.safetensors,100,val,10,50000,1.0,26.5,8.25\nlast.safetensors,100,val,1,50000,1.1,28,9.5\n",
                crate::run::records::EVAL_HEADER_V1
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
