//! `resnet reproduce`: one command per table or figure of the paper (Tables 2, 3, 4, 6 and
//! Figures 1, 4, 6, 7). The grid comes from [`crate::paper`], each cell is trained, resumed or
//! reused through `compare`'s machinery (a cell's folder is reused only when its recorded recipe
//! is the cell's), and the result ends as that table or figure with the paper's numbers beside
//! ours (`report`'s tables, `compare`'s Figure 6 plot, `analyze responses` for Figure 7).
//!
//! A compressed schedule (`--iterations N`: §4.2's milestones scaled to 50 %/75 % of N) or another
//! recipe (`--recipe FILE`) is not a reproduction: its run folders and its results folder are
//! named after it (`cifar-it2000-resnet20-s0`, `figure6-it2000/`) and every table it prints or
//! writes opens with a `NOT a reproduction` line.
use crate::analysis::compare::{self, decide, CompareRow, Decision, Runner, TrainJob};
use crate::analysis::report::{self, RunRecord};
use crate::config::{Config, DeviceChoice, Family, WarmupConfig};
use crate::eval::Protocol;
use crate::paper::{self, Experiment, Net};
use crate::present::plot;
use crate::present::table::{write_atomic, Table};
use crate::run::records;
use crate::train::TrainOptions;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything `resnet reproduce` was asked.
#[derive(Debug, Clone)]
pub struct ReproduceSpec {
    pub result: Experiment,
    /// `run.seed` of every net (one run folder per seed); at least one, no duplicates.
    pub seeds: Vec<u64>,
    /// Compress the schedule to this many iterations (milestones scaled).
    pub iterations: Option<u64>,
    /// `data.path`; for CIFAR a `.tar.gz` or a folder with `train/` is an image folder (the
    /// lossless PNGs), anything else the official binary CIFAR-10.
    pub data: Option<PathBuf>,
    /// The recipe (data, optimizer, schedule, run settings) instead of the paper's; the grid
    /// sets the model (and §4.2's warm-up where the paper uses it).
    pub recipe: Option<Config>,
    pub device: Option<DeviceChoice>,
    /// Folder of the run folders, and of the results folder.
    pub out: PathBuf,
    pub jobs: usize,
    pub progress: bool,
}

/// The default data of ImageNet results: `data/imagenet` (what configs/imagenet_*.toml name).
pub const DEFAULT_IMAGENET_DIR: &str = "data/imagenet";

impl ReproduceSpec {
    /// `None` for a reproduction; else why not, in words (the line every output opens with).
    pub fn caveat(&self) -> Option<String> {
        let mut why = Vec::new();
        if let Some(n) = self.iterations {
            why.push(format!(
                "schedule compressed to {n} iterations (the paper: {})",
                self.result.iterations()
            ));
        }
        if let Some(r) = &self.recipe {
            why.push(format!("recipe {} instead of the paper's", r.name));
        }
        (!why.is_empty()).then(|| format!("NOT a reproduction: {}", why.join("; ")))
    }

    /// The label in run names: `cifar`/`imagenet` (the paper's recipe) or the recipe's, with
    /// `-it<N>` for a compressed schedule.
    pub fn label(&self) -> String {
        let base = match &self.recipe {
            Some(r) => compare::recipe_label(r),
            None => self.result.family().to_string(),
        };
        match self.iterations {
            Some(n) => format!("{base}-it{n}"),
            None => base,
        }
    }

    /// The results folder: `<out>/<result>`, `<out>/<result>-<label>` when not a reproduction.
    pub fn results_dir(&self) -> PathBuf {
        let name = self.result.name();
        match self.caveat() {
            None => self.out.join(name),
            Some(_) => self.out.join(format!("{name}-{}", self.label())),
        }
    }

    /// Checks everything that could refuse the grid before a folder is touched, and returns the
    /// validated cells, nets outermost, then seeds.
    pub fn cells(&self) -> Result<Vec<Config>> {
        if self.seeds.is_empty() {
            bail!("--seeds: give at least one seed (e.g. --seeds 0,1,2,3,4)");
        }
        if let Some(s) = self
            .seeds
            .iter()
            .enumerate()
            .find_map(|(i, s)| self.seeds[..i].contains(s).then_some(s))
        {
            bail!("--seeds: seed {s} is listed twice");
        }
        if self.jobs == 0 {
            bail!("--jobs 0: need at least one concurrent run");
        }
        if self.iterations == Some(0) {
            bail!("--iterations 0: need at least one iteration");
        }
        let base = self.base_recipe()?;
        let label = self.label();
        let mut cells = Vec::new();
        for net in self.result.grid() {
            for &seed in &self.seeds {
                let c = cell(&base, &net, seed, &label, &self.out);
                c.validate()
                    .with_context(|| format!("grid cell {} of {}", c.name, self.result.name()))?;
                cells.push(c);
            }
        }
        Ok(cells)
    }

    /// The recipe of every cell before the model is set: the paper's (§4.2 or §3.4) or
    /// `--recipe`, with `--data`, `--device` and `--iterations` applied.
    fn base_recipe(&self) -> Result<Config> {
        let family = self.result.family();
        let mut r = match &self.recipe {
            Some(r) => {
                if r.model.family != family {
                    bail!(
                        "--recipe {}: model.family = {:?}, but {} is a {family:?} result",
                        r.name,
                        r.model.family,
                        self.result.name()
                    );
                }
                r.clone()
            }
            None => paper_recipe(family)?,
        };
        if let Some(p) = &self.data {
            if !p.exists() {
                bail!("--data {}: no such file or folder", p.display());
            }
            r.data.path = p.clone();
            if family == Family::Cifar && self.recipe.is_none() {
                r.data.dataset = cifar_dataset_of(p);
            }
        } else if family == Family::Imagenet && !r.data.path.exists() {
            bail!(
                "{} trains on ImageNet: {} does not exist; give --data PATH \
                 (ROOT/train/<class>/*, ROOT/val/<class>/*, or a .tar.gz of that tree)",
                self.result.name(),
                r.data.path.display()
            );
        }
        if let Some(d) = self.device {
            r.run.device = d;
        }
        if let Some(n) = self.iterations {
            compress(&mut r, n);
        }
        Ok(r)
    }
}

/// The paper's recipe of a family: §4.2 for CIFAR-10 (the config defaults, official CIFAR-10 in
/// `data/cifar10`), §3.4 for ImageNet (batch 256, lr ÷10 on a plateau, up to 60×10⁴ iterations,
/// scale augmentation, image folder in `data/imagenet`).
pub fn paper_recipe(family: Family) -> Result<Config> {
    let text = match family {
        Family::Cifar => "[model]\nfamily = \"cifar\"\ndepth = 20\n".to_string(),
        Family::Imagenet => format!(
            "[model]\nfamily = \"imagenet\"\ndepth = 18\n\
             [data]\ndataset = \"image_folder\"\npath = \"{DEFAULT_IMAGENET_DIR}\"\naugment = \"imagenet\"\n\
             [optimizer]\nbatch_size = {}\n\
             [schedule]\nmode = \"plateau\"\nmilestones = []\niterations = {}\n",
            paper::IMAGENET_BATCH,
            paper::IMAGENET_ITERATIONS
        ),
    };
    Config::from_toml(&text)
}

/// `image_folder` for a `.tar.gz` or a folder with `train/` (e.g. the lossless CIFAR-10 PNGs),
/// else `cifar10` (the official binary archive, fetched into the folder when missing).
fn cifar_dataset_of(p: &Path) -> crate::config::Dataset {
    let name = p.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") || p.join("train").is_dir() {
        crate::config::Dataset::ImageFolder
    } else {
        crate::config::Dataset::Cifar10
    }
}

/// Curve points of a compressed schedule: test error at 8 evenly spaced iterations, training
/// error at 5 per evaluation, so that a short run still draws Figure 6's curves; the recipe's own
/// spacing is kept where it is already denser.
const COMPRESSED_EVALS: u64 = 8;
const LOGS_PER_EVAL: u64 = 5;

/// `--iterations N`: the schedule compressed to N iterations, milestones at the paper's
/// proportions of it (distinct, inside 1..=N), and the curves' spacing scaled down with it.
fn compress(r: &mut Config, n: u64) {
    let full = r.schedule.iterations.max(1);
    let log = n.div_ceil(COMPRESSED_EVALS * LOGS_PER_EVAL).max(1);
    if log * LOGS_PER_EVAL < r.run.eval_every {
        r.run.log_every = log;
        r.run.eval_every = log * LOGS_PER_EVAL;
        r.run.checkpoint_every = r.run.checkpoint_every.div_ceil(log) * log;
    }
    let scaled: Vec<u64> = r
        .schedule
        .milestones
        .iter()
        .map(|&m| (m as u128 * n as u128 / full as u128) as u64)
        .collect();
    r.schedule.iterations = n;
    r.schedule.milestones = Vec::new();
    for m in scaled {
        if m >= 1 && m <= n && !r.schedule.milestones.contains(&m) {
            r.schedule.milestones.push(m);
        }
    }
}

/// One grid cell: the base recipe with the net (the recipe's class count kept), §4.2's warm-up
/// where the paper uses it, the seed, and its run folder `<out>/<label>-<model>-s<seed>`.
fn cell(base: &Config, net: &Net, seed: u64, label: &str, out: &Path) -> Config {
    let mut c = base.clone();
    let classes = base.model.classes;
    c.model = net.model();
    if base.model.family == net.family {
        c.model.classes = classes.or(c.model.classes);
        c.model.stride_in_1x1 = base.model.stride_in_1x1;
    }
    if paper::warms_up(net) && c.schedule.warmup.is_none() {
        let mut w: WarmupConfig = toml::from_str("").expect("every warm-up key has a default");
        w.lr = paper::WARMUP_LR;
        w.until_train_error = paper::WARMUP_UNTIL_TRAIN_ERROR;
        c.schedule.warmup = Some(w);
    } else if !paper::warms_up(net) {
        c.schedule.warmup = None;
    }
    c.run.seed = seed;
    c.name = format!("{label}-{}-s{seed}", c.model.display_name());
    c.run.out_dir = out.join(&c.name);
    c
}

/// The config file a cell's `resnet train` reads: `<out>/.jobs/<name>.toml` (where
/// `compare --jobs` puts its children's).
pub fn job_of(cfg: &Config) -> Result<Option<TrainJob>> {
    let d = decide(cfg, false)?;
    if let Decision::Reuse(_) = d {
        return Ok(None);
    }
    let jobs_dir = cfg
        .out_dir()
        .parent()
        .map(|p| p.join(".jobs"))
        .unwrap_or_else(|| PathBuf::from(".jobs"));
    Ok(Some(TrainJob {
        config_file: jobs_dir.join(format!("{}.toml", cfg.name)),
        opts: TrainOptions {
            resume: d == Decision::Resume,
            force: matches!(d, Decision::Start { force: true }),
            progress: false,
            ..Default::default()
        },
        log: jobs_dir.join(format!("{}.log", cfg.name)),
    }))
}

/// `--dry-run`: one line per cell, `resnet train --config <out>/.jobs/<name>.toml [--resume |
/// --force]` (that file written, holding the cell's whole recipe), or `# <dir>: finished,
/// reused`; then a comment naming the command that makes the table. Decides every cell first.
pub fn dry_run(cells: &[Config]) -> Result<Vec<String>> {
    let jobs: Vec<Option<TrainJob>> = cells.iter().map(job_of).collect::<Result<_>>()?;
    let mut lines = Vec::new();
    for (cfg, job) in cells.iter().zip(&jobs) {
        let Some(job) = job else {
            lines.push(format!("# {}: finished, reused", cfg.out_dir().display()));
            continue;
        };
        if let Some(dir) = job.config_file.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create folder {}", dir.display()))?;
        }
        write_atomic(&job.config_file, cfg.to_toml()?.as_bytes())?;
        let args: Vec<String> = job
            .args()
            .iter()
            .map(|a| shell_word(&a.to_string_lossy()))
            .collect();
        lines.push(format!("resnet {}", args.join(" ")));
    }
    Ok(lines)
}

/// `s` as one POSIX shell word (quoted when it holds anything but `[A-Za-z0-9_./=:,-]`).
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./=:,-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What `reproduce` made: the tables it printed (first the result's own), the files it wrote.
#[derive(Debug, Clone)]
pub struct ReproduceOutput {
    pub caveat: Option<String>,
    pub tables: Vec<(String, Table)>,
    pub files: Vec<PathBuf>,
}

/// Trains or reuses every cell (`--jobs N`: children made by `command`, then a reusing pass),
/// evaluates ImageNet cells with the result's protocol, and writes the result's table or figure.
pub fn reproduce(
    spec: &ReproduceSpec,
    cells: &[Config],
    runner: &mut Runner,
    command: &dyn Fn(&TrainJob) -> Command,
    note: &mut dyn FnMut(String),
) -> Result<ReproduceOutput> {
    if spec.jobs != 1 {
        let r = compare::train_parallel(cells, false, spec.jobs, command, note)?;
        if r.trained > 0 {
            note(format!(
                "{} runs trained with --jobs {} in {:.1} s: {:.1} training images/s together",
                r.trained,
                spec.jobs,
                r.wall_s,
                r.images_per_s()
            ));
        }
    }
    let rows = compare::run_grid(cells, false, spec.progress, runner, note)?;
    let sides = cells
        .first()
        .map(|c| c.data.imagenet.multi_scale.clone())
        .unwrap_or_default();
    if let Some(p) = eval_protocol(spec.result, &sides) {
        evaluate_cells(&rows, &p, note)?;
    }
    write_result(spec, &rows)
}

/// The testing protocol of an ImageNet table: 10-crop for Tables 2/3 (and Figure 4's nets),
/// multi-scale for Table 4 at the recipe's `data.imagenet.multi_scale` (`sides`: §3.4's
/// 224…640 unless a reduced-resolution recipe scales them); none for CIFAR (Table 6 is the test
/// error itself).
pub fn eval_protocol(result: Experiment, sides: &[u32]) -> Option<Protocol> {
    match result {
        Experiment::Table2 | Experiment::Table3 | Experiment::Figure4 => Some(Protocol::TenCrop),
        Experiment::Table4 => Some(Protocol::MultiScale(sides.to_vec())),
        _ => None,
    }
}

/// Appends one `eval.csv` row of `protocol` to every cell that has none of its last iteration.
fn evaluate_cells(
    rows: &[CompareRow],
    protocol: &Protocol,
    note: &mut dyn FnMut(String),
) -> Result<()> {
    for r in rows {
        let done = records::read_eval(&r.dir.join("eval.csv"))?
            .iter()
            .any(|e| e.protocol == protocol.name() && e.iteration == r.summary.iterations);
        if done {
            continue;
        }
        note(format!(
            "{}: evaluating ({})",
            r.dir.display(),
            protocol.name()
        ));
        let ck = r.dir.join(crate::run::dir::CHECKPOINT_FILE);
        crate::eval::run(&ck, protocol, None)?;
    }
    Ok(())
}

/// The finished runs of the grid, as `report` reads them.
fn records(rows: &[CompareRow], out: &Path) -> Result<Vec<RunRecord>> {
    let dirs: Vec<&PathBuf> = rows.iter().map(|r| &r.dir).collect();
    Ok(report::gather(out)?
        .into_iter()
        .filter(|r| dirs.contains(&&r.dir))
        .collect())
}

/// Writes `<result>.{csv,md}` (the table, the caveat line first in the Markdown) and, for the
/// figures, `<result>.{svg,png}` and Figure 7's responses, into [`ReproduceSpec::results_dir`].
fn write_result(spec: &ReproduceSpec, rows: &[CompareRow]) -> Result<ReproduceOutput> {
    let dir = spec.results_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let recs = records(rows, &spec.out)?;
    let name = spec.result.name();
    let (title, table) = match spec.result {
        Experiment::Table2 | Experiment::Table3 | Experiment::Figure4 => (
            "Tables 2 and 3: ImageNet validation error (%), 10-crop",
            report::table_imagenet(&recs),
        ),
        Experiment::Table4 => (
            "Table 4: ImageNet validation error (%), multi-scale testing",
            report::table4_imagenet(&recs),
        ),
        _ => ("Table 6: CIFAR-10 test error (%)", report::table6(&recs)),
    };
    let title = match spec.caveat() {
        Some(c) => format!("{c}\n{title} beside the paper"),
        None => format!("{title} beside the paper"),
    };
    let mut files = write_table(&dir, name, &title, &table)?;
    let mut tables = vec![(title.clone(), table)];
    if matches!(
        spec.result,
        Experiment::Figure1 | Experiment::Figure4 | Experiment::Figure6 | Experiment::Figure7
    ) {
        let ours = compare::results_table(rows);
        files.extend(write_figure(&dir, name, &title, rows)?);
        tables.push((format!("{name}: the runs of the figure"), ours));
    }
    if spec.result == Experiment::Figure7 {
        let checkpoints: Vec<PathBuf> = rows
            .iter()
            .map(|r| r.dir.join(crate::run::dir::CHECKPOINT_FILE))
            .collect();
        let out = crate::analysis::responses::analyze(&checkpoints, &dir, &mut |_| {})?;
        tables.push((
            format!(
                "Figure 7: std of the layer responses{}",
                caveat_suffix(spec)
            ),
            crate::analysis::responses::summary_table(&out.runs),
        ));
        files.extend(out.files);
    }
    Ok(ReproduceOutput {
        caveat: spec.caveat(),
        tables,
        files,
    })
}

fn caveat_suffix(spec: &ReproduceSpec) -> String {
    spec.caveat().map(|c| format!(" ({c})")).unwrap_or_default()
}

fn write_table(dir: &Path, name: &str, title: &str, t: &Table) -> Result<Vec<PathBuf>> {
    let csv = dir.join(format!("{name}.csv"));
    t.write_csv(&csv)
        .with_context(|| format!("writing {}", csv.display()))?;
    let md = dir.join(format!("{name}.md"));
    let text = format!("{}\n\n{}", title.replace('\n', "\n\n"), t.to_markdown());
    write_atomic(&md, text.as_bytes())?;
    Ok(vec![csv, md])
}

fn write_figure(dir: &Path, name: &str, title: &str, rows: &[CompareRow]) -> Result<Vec<PathBuf>> {
    let heading = title.lines().next().unwrap_or(title);
    let fig_title = if heading.starts_with("NOT") {
        format!("{name} ({heading}): error (%)")
    } else {
        format!("{name}: error (%) against iterations")
    };
    let svg_text = plot::to_svg(&compare::figure(rows, &fig_title));
    let png_bytes = plot::svg_to_png(&svg_text, 2.0)?;
    let svg = dir.join(format!("{name}.svg"));
    write_atomic(&svg, svg_text.as_bytes())?;
    let png = dir.join(format!("{name}.png"));
    write_atomic(&png, &png_bytes)?;
    Ok(vec![svg, png])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetKind;

    fn spec(result: Experiment) -> ReproduceSpec {
        ReproduceSpec {
            result,
            seeds: vec![0],
            iterations: None,
            data: None,
            recipe: None,
            device: None,
            out: PathBuf::from("runs"),
            jobs: 1,
            progress: false,
        }
    }

    #[test]
    fn table6_cells_are_the_papers_recipe_with_the_warm_up_for_110_and_1202() {
        let cells = spec(Experiment::Table6).cells().unwrap();
        let names: Vec<&str> = cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[0], "cifar-resnet20-s0");
        assert_eq!(names.len(), 6);
        for c in &cells {
            assert_eq!(c.schedule.iterations, paper::CIFAR_ITERATIONS);
            assert_eq!(c.schedule.milestones, paper::CIFAR_MILESTONES);
            let warm = paper::warms_up(&Net::of(&c.model));
            assert_eq!(c.schedule.warmup.is_some(), warm, "{}", c.name);
        }
        assert!(cells[4].schedule.warmup.is_some() && cells[4].model.depth == 110);
    }

    #[test]
    fn iterations_compress_the_schedule_and_say_so() {
        let mut s = spec(Experiment::Figure1);
        s.iterations = Some(2000);
        s.seeds = vec![0, 1];
        let cells = s.cells().unwrap();
        assert_eq!(cells.len(), 4);
        assert_eq!(cells[0].schedule.milestones, [1000, 1500]);
        assert_eq!(cells[1].name, "cifar-it2000-plain20-s1");
        assert_eq!(cells[2].model.kind, NetKind::Plain);
        assert!(s.caveat().unwrap().starts_with("NOT a reproduction"));
        assert_eq!(s.results_dir(), Path::new("runs/figure1-cifar-it2000"));
        assert_eq!(
            spec(Experiment::Figure1).results_dir(),
            Path::new("runs/figure1")
        );
        assert_eq!(
            (cells[0].run.log_every, cells[0].run.eval_every),
            (50, 250),
            "8 test-error points and 40 training-error points over the compressed run"
        );
        s.iterations = Some(2);
        assert_eq!(s.cells().unwrap()[0].schedule.milestones, [1]);
        assert_eq!((s.cells().unwrap()[0].run.eval_every), 5);
    }

    #[test]
    fn table4_tests_at_the_recipes_sides() {
        let half = [112, 128, 192, 240, 320];
        assert_eq!(
            eval_protocol(Experiment::Table4, &half),
            Some(Protocol::MultiScale(half.to_vec()))
        );
        assert_eq!(
            eval_protocol(Experiment::Figure4, &half),
            Some(Protocol::TenCrop)
        );
        assert_eq!(eval_protocol(Experiment::Table6, &half), None);
    }

    #[test]
    fn bad_requests_are_refused_before_anything() {
        let mut s = spec(Experiment::Table6);
        s.seeds = vec![1, 2, 1];
        assert!(format!("{:#}", s.cells().unwrap_err()).contains("seed 1 is listed twice"));
        s.seeds = vec![];
        assert!(format!("{:#}", s.cells().unwrap_err()).contains("--seeds"));
        let mut im = spec(Experiment::Table2);
        im.data = Some(PathBuf::from("/nonexistent/imagenet"));
        assert!(format!("{:#}", im.cells().unwrap_err()).contains("no such file"));
        im.data = None;
        let mut r = paper_recipe(Family::Imagenet).unwrap();
        r.data.path = PathBuf::from("/nonexistent/imagenet");
        im.recipe = Some(r);
        let e = format!("{:#}", im.cells().unwrap_err());
        assert!(
            e.contains("trains on ImageNet") && e.contains("--data"),
            "{e}"
        );
        assert!(format!("{:#}", s.cells().unwrap_err()).contains("--seeds"));
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("runs/.jobs/a-b_c.toml"), "runs/.jobs/a-b_c.toml");
        assert_eq!(shell_word("my runs/x"), "'my runs/x'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
