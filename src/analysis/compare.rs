//! `resnet compare`: the plain-versus-residual experiment of §4.2 (Figure 6, Table 6) — one
//! recipe trained over the grid {plain, residual} × depths, finished runs reused, interrupted
//! ones resumed, then a results table and the Figure 6 plot.
//!
//! Training itself is a parameter (`Runner`), so the grid logic is tested with a fake runner;
//! the binary passes `train::run`. With `--jobs N` ([`train_parallel`]) the cells that need
//! training run first as up to N concurrent `resnet train` child processes (small nets alone do
//! not fill a GPU; processes keep each run's device state, streams and Ctrl-C apart), after which
//! [`compare`] finds every cell finished and only reuses.
use crate::config::{Config, NetKind};
use crate::present::plot::{self, Figure, Panel, Series};
use crate::present::table::{write_atomic, Table};
use crate::run::records::{read_curves, read_summary, CurveRow, Summary};
use crate::train::{RunOutcome, TrainOptions};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Trains one config (the binary passes `train::run`).
pub type Runner<'a> = dyn FnMut(&Config, &TrainOptions) -> Result<RunOutcome> + 'a;

/// Everything `compare` needs.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    /// The recipe (optimizer, schedule, data, run settings) with the command-line overrides
    /// applied (`train::Overrides`, as for `resnet train`); model.kind and model.depth are
    /// replaced per grid cell.
    pub recipe: Config,
    pub kinds: Vec<NetKind>,
    pub depths: Vec<usize>,
    /// Seeds (`run.seed`) to train every network with; empty: the recipe's one seed. With more
    /// than one, run folders get a `-s<seed>` suffix.
    pub seeds: Vec<u64>,
    /// Folder receiving one run folder per grid cell.
    pub runs_dir: PathBuf,
    /// Folder receiving `compare-<recipe>.csv/.svg/.png`.
    pub results_dir: PathBuf,
    /// Retrain every cell from scratch, even finished ones.
    pub force: bool,
    pub progress: bool,
}

impl CompareSpec {
    /// The grid's run configs ([`expand_grid`] of this spec).
    pub fn cells(&self) -> Result<Vec<Config>> {
        expand_grid(
            &self.recipe,
            &self.kinds,
            &self.depths,
            &self.seeds,
            &self.runs_dir,
        )
    }
}

/// `plain` or `resnet`/`residual`, as typed on the command line.
pub fn parse_kind(s: &str) -> Result<NetKind> {
    match s.to_ascii_lowercase().as_str() {
        "plain" => Ok(NetKind::Plain),
        "resnet" | "residual" => Ok(NetKind::Residual),
        _ => bail!("network kind `{s}`: allowed are `plain` and `resnet` (or `residual`)"),
    }
}

/// The recipe's label in run names: the config name with a trailing model name removed
/// (`cifar_resnet20` → `cifar`), since the model is set per cell.
pub fn recipe_label(recipe: &Config) -> String {
    let name = recipe.name.as_str();
    let model = recipe.model.display_name();
    for sep in ['_', '-'] {
        if let Some(stem) = name.strip_suffix(&format!("{sep}{model}")) {
            if !stem.is_empty() {
                return stem.to_string();
            }
        }
    }
    if name.is_empty() {
        "recipe".into()
    } else {
        name.to_string()
    }
}

/// `compare-<recipe>-<model>`, e.g. `compare-cifar-plain20`; with `seeded`,
/// `compare-<recipe>-<model>-s<seed>` (one folder per seed of a multi-seed compare).
pub fn run_name(label: &str, cfg: &Config, seeded: bool) -> String {
    let base = format!("compare-{label}-{}", cfg.model.display_name());
    if seeded {
        format!("{base}-s{}", cfg.run.seed)
    } else {
        base
    }
}

/// One validated config per grid cell (kind × depth × seed), kinds outermost, in the order
/// given (duplicates dropped). No seeds: the recipe's seed; one seed: that seed, under the
/// single-seed run names; several: a folder per seed.
pub fn expand_grid(
    recipe: &Config,
    kinds: &[NetKind],
    depths: &[usize],
    seeds: &[u64],
    runs_dir: &Path,
) -> Result<Vec<Config>> {
    if kinds.is_empty() || depths.is_empty() {
        bail!("compare needs at least one network kind and one depth");
    }
    let label = recipe_label(recipe);
    let mut distinct: Vec<u64> = Vec::new();
    for &s in seeds {
        if !distinct.contains(&s) {
            distinct.push(s);
        }
    }
    let seeded = distinct.len() > 1;
    if distinct.is_empty() {
        distinct.push(recipe.run.seed);
    }
    let mut cells: Vec<Config> = Vec::new();
    for &kind in kinds {
        for &depth in depths {
            for &seed in &distinct {
                let mut c = recipe.clone();
                c.model.kind = kind;
                c.model.depth = depth;
                c.run.seed = seed;
                c.name = run_name(&label, &c, seeded);
                c.run.out_dir = runs_dir.join(&c.name);
                c.validate()
                    .with_context(|| format!("grid cell {} (--depths {depth})", c.name))?;
                if !cells.iter().any(|o| o.name == c.name) {
                    cells.push(c);
                }
            }
        }
    }
    Ok(cells)
}

/// What to do with one grid cell's run folder.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Finished with the same iteration count: reuse its records.
    Reuse(Box<Summary>),
    /// A checkpoint without a summary: an interrupted run, continue it.
    Resume,
    /// Train from scratch; `force` when the folder exists (nothing resumable in it, or `--force`).
    Start { force: bool },
}

/// Decides from the files in `cfg.out_dir()`. A finished or interrupted run is reused or resumed
/// only when the recipe its folder records (`config.toml`) is the cell's; otherwise the error
/// lists the differing keys.
pub fn decide(cfg: &Config, force: bool) -> Result<Decision> {
    let dir = cfg.out_dir();
    let exists = dir.is_dir()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list run folder {}", dir.display()))?
            .next()
            .is_some();
    if force {
        return Ok(Decision::Start { force: exists });
    }
    let summary = dir.join("summary.csv");
    let finished = summary.is_file();
    if finished || dir.join("last.safetensors").is_file() {
        check_recorded_recipe(cfg, &dir)?;
    }
    if finished {
        return Ok(Decision::Reuse(Box::new(read_summary(&summary)?)));
    }
    if dir.join("last.safetensors").is_file() {
        return Ok(Decision::Resume);
    }
    Ok(Decision::Start { force: exists })
}

/// Refuses a run folder whose recorded recipe differs from the cell's.
fn check_recorded_recipe(cfg: &Config, dir: &Path) -> Result<()> {
    let path = dir.join("config.toml");
    let recorded = Config::load(&path)
        .with_context(|| format!("{} holds a run whose recipe cannot be read", dir.display()))?;
    let diff = recorded.recipe_diff(cfg);
    if !diff.is_empty() {
        bail!(
            "{} holds a run of another recipe than this compare asks for ({}); pass --out to \
             use another folder, or --force to retrain it",
            dir.display(),
            diff.join("; ")
        );
    }
    Ok(())
}

/// One trained (or reused) network of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareRow {
    pub summary: Summary,
    /// `run.seed` of the cell.
    pub seed: u64,
    pub dir: PathBuf,
    pub curves: Vec<CurveRow>,
}

/// Trains or reuses every cell in order; `note` receives one line per cell. Stops with an error
/// when a run was interrupted (the same command resumes it).
pub fn run_grid(
    cells: &[Config],
    force: bool,
    progress: bool,
    runner: &mut Runner,
    note: &mut dyn FnMut(String),
) -> Result<Vec<CompareRow>> {
    let mut rows = Vec::new();
    for (i, cfg) in cells.iter().enumerate() {
        let dir = cfg.out_dir();
        let at = format!("[{}/{}] {}", i + 1, cells.len(), dir.display());
        let summary = match decide(cfg, force)? {
            Decision::Reuse(s) => {
                note(format!(
                    "{at}: finished ({} iterations), reused",
                    s.iterations
                ));
                *s
            }
            d => {
                let resume = d == Decision::Resume;
                let force = matches!(d, Decision::Start { force: true });
                note(format!(
                    "{at}: {}",
                    if resume { "resuming" } else { "training" }
                ));
                let opts = TrainOptions {
                    resume,
                    force,
                    progress,
                    ..Default::default()
                };
                let out = runner(cfg, &opts).with_context(|| format!("training {}", cfg.name))?;
                if out.interrupted {
                    bail!(
                        "interrupted while training {}; run the same command again to resume it",
                        cfg.name
                    );
                }
                out.summary
            }
        };
        let curves = read_curves(&dir.join("curves.csv"))?;
        rows.push(CompareRow {
            summary,
            seed: cfg.run.seed,
            dir,
            curves,
        });
    }
    Ok(rows)
}

/// One grid cell to train in a child process ([`train_parallel`]).
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The cell's resolved config, written for the child to read with `--config`.
    pub config_file: PathBuf,
    pub opts: TrainOptions,
    /// The child's standard output and error.
    pub log: PathBuf,
}

impl TrainJob {
    /// The `resnet train` arguments of this job (after the binary).
    pub fn args(&self) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![
            "train".into(),
            "--config".into(),
            self.config_file.clone().into(),
        ];
        if self.opts.resume {
            a.push("--resume".into());
        }
        if self.opts.force {
            a.push("--force".into());
        }
        a
    }
}

/// What [`train_parallel`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelReport {
    /// Cells trained (or resumed) by a child process.
    pub trained: usize,
    /// Training images processed by those children together (iterations × batch size).
    pub images: u64,
    /// Wall-clock seconds from the first start to the last exit.
    pub wall_s: f64,
}

impl ParallelReport {
    /// Aggregate training throughput of the concurrent runs.
    pub fn images_per_s(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.images as f64 / self.wall_s
        } else {
            f64::NAN
        }
    }
}

/// The last non-empty line of a child's log (its `error: ...` line when it failed).
fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(empty log)")
        .to_string()
}

/// Trains every cell of `cells` that is not finished ([`decide`]: start or resume) as up to
/// `jobs` concurrent child processes, `command(job)` giving each child's command line (the
/// binary passes `resnet train` of its own executable). Each child's output goes to
/// `<runs dir>/.jobs/<name>.log`, its config to `.jobs/<name>.toml`. Waits for every child; fails
/// afterwards, naming each failed cell with its log's last line, if any child failed.
///
/// Ctrl-C, SIGTERM or SIGHUP to this process is forwarded to the children (as SIGTERM: each
/// saves its checkpoint and exits); no new child starts, and once every child has exited this
/// fails with a line saying that the same command resumes them.
pub fn train_parallel(
    cells: &[Config],
    force: bool,
    jobs: usize,
    command: &dyn Fn(&TrainJob) -> Command,
    note: &mut dyn FnMut(String),
) -> Result<ParallelReport> {
    if jobs == 0 {
        bail!("--jobs 0: need at least one concurrent run");
    }
    // Validate and plan every cell before starting any child.
    let queue = plan_jobs(cells, force)?;
    write_job_configs(&queue)?;
    let total = queue.len();
    crate::train::catch_stop_signals();
    let t0 = Instant::now();
    let mut waiting = queue.into_iter();
    let mut running: Vec<Running> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut stopped: Vec<String> = Vec::new();
    let mut stopping = false;
    let mut images = 0u64;
    loop {
        if !stopping && crate::train::stop_requested() {
            stopping = true;
            forward_stop(&running, note);
        }
        while !stopping && running.len() < jobs {
            let Some(p) = waiting.next() else {
                break;
            };
            running.push(spawn_job(p, cells.len(), command, note)?);
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        for done in reap_finished(&mut running)? {
            // A child stopped by the forwarded signal exits 130 once its checkpoint is saved.
            if stopping && done.status.code() == Some(130) {
                note(format!(
                    "{}: stopped, checkpoint saved",
                    cell_label(&done.planned, cells.len())
                ));
                stopped.push(done.planned.cfg.name.clone());
                continue;
            }
            match finish_job(&done, cells.len(), note) {
                Ok(n) => images += n,
                Err(why) => failed.push(why),
            }
        }
    }
    check_all_finished(stopping, &stopped, &failed, total)?;
    Ok(ParallelReport {
        trained: total,
        images,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

/// Writes each planned child's config to its `.jobs/<name>.toml` (before any child starts).
fn write_job_configs(queue: &[PlannedJob]) -> Result<()> {
    for p in queue {
        let dir = p.job.config_file.parent().expect("has a folder");
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
        crate::present::table::write_atomic(&p.job.config_file, p.cfg.to_toml()?.as_bytes())?;
    }
    Ok(())
}

/// After every child has exited: an error naming the runs `stopped` by a forwarded signal
/// (when `stopping`) and those that `failed`, or Ok when all `total` finished.
fn check_all_finished(
    stopping: bool,
    stopped: &[String],
    failed: &[String],
    total: usize,
) -> Result<()> {
    if stopping {
        let failures = if failed.is_empty() {
            String::new()
        } else {
            format!("; {} failed: {}", failed.len(), failed.join("; "))
        };
        bail!(
            "interrupted: {} of {total} runs stopped with their checkpoints saved ({}){failures}; \
             the same compare command resumes them",
            stopped.len(),
            stopped.join(", ")
        );
    }
    if !failed.is_empty() {
        bail!(
            "{} of {total} runs failed: {}; the same command resumes or retries them",
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

/// A grid cell that `train_parallel` will train: its place in the grid, its config, the child's
/// job and the iteration it starts from (non-zero when resuming).
struct PlannedJob<'a> {
    index: usize,
    cfg: &'a Config,
    job: TrainJob,
    start: u64,
}

/// A child process training one [`PlannedJob`].
struct Running<'a> {
    planned: PlannedJob<'a>,
    child: Child,
    began: Instant,
}

/// A child that has exited, with its status and running time.
struct Finished<'a> {
    planned: PlannedJob<'a>,
    status: std::process::ExitStatus,
    secs: f64,
}

/// Decides every cell ([`decide`]: refuses a recipe clash before anything starts) and plans a job
/// for each one that is not reused; job files go to `.jobs/` beside the run folders.
fn plan_jobs(cells: &[Config], force: bool) -> Result<Vec<PlannedJob<'_>>> {
    let mut queue = Vec::new();
    for (index, cfg) in cells.iter().enumerate() {
        let d = decide(cfg, force)?;
        if let Decision::Reuse(_) = d {
            continue;
        }
        let resume = d == Decision::Resume;
        let start = if resume {
            crate::run::checkpoint::load_checkpoint(
                &cfg.out_dir().join(crate::run::dir::CHECKPOINT_FILE),
            )?
            .state
            .iteration
        } else {
            0
        };
        let jobs_dir = cfg
            .out_dir()
            .parent()
            .map(|p| p.join(".jobs"))
            .unwrap_or_else(|| PathBuf::from(".jobs"));
        let job = TrainJob {
            config_file: jobs_dir.join(format!("{}.toml", cfg.name)),
            opts: TrainOptions {
                resume,
                force: matches!(d, Decision::Start { force: true }),
                progress: false,
                ..Default::default()
            },
            log: jobs_dir.join(format!("{}.log", cfg.name)),
        };
        queue.push(PlannedJob {
            index,
            cfg,
            job,
            start,
        });
    }
    Ok(queue)
}

/// `[i/n] run-folder`, the prefix of every line about a cell.
fn cell_label(p: &PlannedJob, n: usize) -> String {
    format!("[{}/{n}] {}", p.index + 1, p.cfg.out_dir().display())
}

/// Starts the child of `p` with its output going to the job's log.
fn spawn_job<'a>(
    p: PlannedJob<'a>,
    n: usize,
    command: &dyn Fn(&TrainJob) -> Command,
    note: &mut dyn FnMut(String),
) -> Result<Running<'a>> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(&p.job.log)
        .with_context(|| format!("cannot create {}", p.job.log.display()))?;
    let mut cmd = command(&p.job);
    // Its own process group: a Ctrl-C at the terminal reaches the child once, forwarded by this
    // process, not also directly (two interrupts would make it exit without saving).
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe. If this process dies without forwarding (kill -9), the child gets
    // SIGTERM: it saves its checkpoint and stops instead of training on, orphaned.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start the training of {}", p.cfg.name))?;
    let what = if p.job.opts.resume {
        "resuming"
    } else {
        "training"
    };
    note(format!(
        "{}: {what} in a child process (pid {}, log {})",
        cell_label(&p, n),
        child.id(),
        p.job.log.display()
    ));
    Ok(Running {
        planned: p,
        child,
        began: Instant::now(),
    })
}

/// Forwards a stop asked of this process to every running child as SIGTERM (each saves its
/// checkpoint and exits 130).
fn forward_stop(running: &[Running], note: &mut dyn FnMut(String)) {
    for r in running {
        // SAFETY: kill only sends a signal; the PID is our child's, not reaped yet, so it cannot
        // have been reused.
        unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM) };
    }
    note(format!(
        "stopping: asked {} child processes to save their checkpoints; waiting for them",
        running.len()
    ));
}

/// Takes the children that have exited out of `running`.
fn reap_finished<'a>(running: &mut Vec<Running<'a>>) -> Result<Vec<Finished<'a>>> {
    let mut done = Vec::new();
    let mut k = 0;
    while k < running.len() {
        let Some(status) = running[k].child.try_wait()? else {
            k += 1;
            continue;
        };
        let r = running.swap_remove(k);
        done.push(Finished {
            secs: r.began.elapsed().as_secs_f64(),
            planned: r.planned,
            status,
        });
    }
    Ok(done)
}

/// Reports a finished child: the images it trained on success (its job file removed), else the
/// failure line for the final error (its last log line).
fn finish_job(
    f: &Finished,
    n: usize,
    note: &mut dyn FnMut(String),
) -> std::result::Result<u64, String> {
    let (p, secs) = (&f.planned, f.secs);
    let at = cell_label(p, n);
    if f.status.success() {
        note(format!("{at}: finished in {secs:.1} s"));
        let _ = std::fs::remove_file(&p.job.config_file);
        let done = p.cfg.schedule.iterations.saturating_sub(p.start);
        Ok(done * p.cfg.optimizer.batch_size as u64)
    } else {
        let why = last_line(&p.job.log);
        note(format!(
            "{at}: failed ({}) after {secs:.1} s: {why}",
            f.status
        ));
        Err(format!(
            "{}: {why} (log {})",
            p.cfg.name,
            p.job.log.display()
        ))
    }
}

fn pct(v: f64) -> String {
    format!("{v:.2}")
}

/// The results table: one row per network.
pub fn results_table(rows: &[CompareRow]) -> Table {
    let mut t = Table::new([
        "model",
        "kind",
        "depth",
        "seed",
        "params",
        "final_train_error",
        "final_test_error",
        "best_test_error",
        "run_dir",
    ]);
    for r in rows {
        let s = &r.summary;
        t.push(vec![
            s.model.clone(),
            s.kind.to_string(),
            s.depth.to_string(),
            r.seed.to_string(),
            s.params.to_string(),
            pct(s.final_train_error),
            pct(s.final_test_error),
            pct(s.best_test_error),
            r.dir.display().to_string(),
        ]);
    }
    t
}

/// The paper's legend names: `plain-20`, `ResNet-20`.
pub(crate) fn legend_name(s: &Summary) -> String {
    if s.kind == NetKind::Plain {
        format!("plain-{}", s.depth)
    } else {
        format!("ResNet-{}", s.depth)
    }
}

/// Figure 6: a "plain" panel and a "ResNet" panel (those present), one colour per depth shared
/// by both panels; with several seeds one line per seed, labelled `ResNet-20 s1`, in the colour
/// of its depth.
pub fn figure(rows: &[CompareRow], title: &str) -> Figure {
    let seeded = rows.iter().any(|r| r.seed != rows[0].seed);
    let mut depths: Vec<usize> = rows.iter().map(|r| r.summary.depth).collect();
    depths.sort_unstable();
    depths.dedup();
    let mut panels = Vec::new();
    for (kind, panel_title) in [
        (NetKind::Plain, "plain networks"),
        (NetKind::Residual, "ResNets"),
    ] {
        let mut of_kind: Vec<&CompareRow> =
            rows.iter().filter(|r| r.summary.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        of_kind.sort_by_key(|r| (r.summary.depth, r.seed));
        let series = of_kind
            .iter()
            .map(|r| {
                let k = depths
                    .iter()
                    .position(|&d| d == r.summary.depth)
                    .unwrap_or(0);
                let label = legend_name(&r.summary);
                Series {
                    label: if seeded {
                        format!("{label} s{}", r.seed)
                    } else {
                        label
                    },
                    color: plot::PALETTE[k % plot::PALETTE.len()].to_string(),
                    train: r
                        .curves
                        .iter()
                        .map(|c| (c.iteration as f64, c.train_error))
                        .collect(),
                    test: r
                        .curves
                        .iter()
                        .filter_map(|c| c.test_error.map(|e| (c.iteration as f64, e)))
                        .collect(),
                }
            })
            .collect();
        panels.push(Panel {
            title: panel_title.into(),
            series,
        });
    }
    Figure {
        title: title.into(),
        panels,
    }
}

/// The files `compare` wrote, and its table for the terminal.
#[derive(Debug, Clone)]
pub struct CompareOutput {
    pub table: Table,
    pub csv: PathBuf,
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// Runs the whole comparison: grid, training/reuse, results CSV and Figure 6 (SVG and PNG).
pub fn compare(
    spec: &CompareSpec,
    runner: &mut Runner,
    note: &mut dyn FnMut(String),
) -> Result<CompareOutput> {
    let cells = spec.cells()?;
    let rows = run_grid(&cells, spec.force, spec.progress, runner, note)?;
    let label = recipe_label(&spec.recipe);
    let stem = spec.results_dir.join(format!("compare-{label}"));
    let table = results_table(&rows);
    let csv = stem.with_extension("csv");
    table
        .write_csv(&csv)
        .with_context(|| format!("writing {}", csv.display()))?;
    let title = format!(
        "{} — {} iterations, error (%) as in Figure 6",
        spec.recipe.name, spec.recipe.schedule.iterations
    );
    let svg_text = plot::to_svg(&figure(&rows, &title));
    let svg = stem.with_extension("svg");
    write_atomic(&svg, svg_text.as_bytes())?;
    let png = stem.with_extension("png");
    write_atomic(&png, &plot::svg_to_png(&svg_text, 2.0)?)?;
    Ok(CompareOutput {
        table,
        csv,
        svg,
        png,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Shortcut;

    const RECIPE: &str = "name = \"cifar_resnet20\"\n[model]\nfamily = \"cifar\"\ndepth = 20\n\
                          [schedule]\niterations = 1000\nmilestones = [500, 750]\n";

    fn recipe() -> Config {
        let c = Config::from_toml(RECIPE).unwrap();
        c.validate().unwrap();
        c
    }

    /// Writes synthetic records into `cfg.out_dir()` as a finished (or interrupted) run would:
    /// a curve row every 100 iterations, a test error every 500, errors falling with depth for
    /// residual nets and rising with depth for plain ones (the shape of Figure 6).
    fn write_fake_run(cfg: &Config, upto: u64) -> Summary {
        let dir = cfg.out_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let d = cfg.model.depth as f64;
        let end = if cfg.model.kind == NetKind::Plain {
            8.0 + d / 10.0
        } else {
            10.0 - d / 20.0
        };
        let mut curves = String::from(
            "iteration,epoch,lr,train_loss,train_error,test_loss,test_error,images_per_s,elapsed_s\n",
        );
        let mut last_test = 0.0;
        for it in (100..=upto).step_by(100) {
            let train = end - 2.0 + 80.0 / (it as f64 / 100.0);
            let tested = it % 500 == 0 || it == upto;
            if tested {
                last_test = train + 2.0;
            }
            let row = crate::run::records::CurveRow {
                iteration: it,
                epoch: it as f64 / 390.0,
                lr: 0.1,
                train_loss: 1.0,
                train_error: train,
                test_loss: tested.then_some(0.5),
                test_error: tested.then_some(last_test),
                images_per_s: 1000.0,
                elapsed_s: 1.0,
            };
            curves += &format!("{}\n", row.to_csv());
        }
        std::fs::write(dir.join("curves.csv"), curves).unwrap();
        std::fs::write(dir.join("config.toml"), cfg.to_toml().unwrap()).unwrap();
        std::fs::write(dir.join("last.safetensors"), b"x").unwrap();
        let s = Summary {
            name: cfg.name.clone(),
            model: cfg.model.display_name(),
            family: cfg.model.family,
            kind: cfg.model.kind,
            shortcut: cfg.model.shortcut(),
            depth: cfg.model.depth,
            params: crate::net::arch::Plan::new(&cfg.model).params(),
            iterations: upto,
            final_train_error: end - 2.0 + 80.0 / (upto as f64 / 100.0),
            final_test_error: last_test,
            best_test_error: last_test,
            best_iteration: upto,
            eval_split: "test".into(),
            warmup_end: None,
            wall_s: 1.0,
        };
        if upto == cfg.schedule.iterations {
            crate::run::records::write_summary(&dir.join("summary.csv"), &s).unwrap();
        }
        s
    }

    #[test]
    fn labels_names_and_grid() {
        let r = recipe();
        assert_eq!(recipe_label(&r), "cifar");
        let mut other = r.clone();
        other.name = "my-recipe".into();
        assert_eq!(recipe_label(&other), "my-recipe");
        assert_eq!(parse_kind("resnet").unwrap(), NetKind::Residual);
        assert_eq!(parse_kind("Plain").unwrap(), NetKind::Plain);
        assert!(format!("{}", parse_kind("dense").unwrap_err()).contains("`plain`"));

        let runs = Path::new("runs");
        let cells = expand_grid(
            &r,
            &[NetKind::Plain, NetKind::Residual],
            &[20, 56, 20],
            &[],
            runs,
        )
        .unwrap();
        let names: Vec<&str> = cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "compare-cifar-plain20",
                "compare-cifar-plain56",
                "compare-cifar-resnet20",
                "compare-cifar-resnet56"
            ]
        );
        assert_eq!(cells[1].out_dir(), runs.join("compare-cifar-plain56"));
        assert_eq!(cells[1].model.kind, NetKind::Plain);
        assert_eq!(cells[1].model.shortcut(), Shortcut::A);
        assert_eq!(cells[3].optimizer, r.optimizer);
        let e = expand_grid(&r, &[NetKind::Plain], &[21], &[], runs).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("compare-cifar-plain21") && msg.contains("6n+2"),
            "{msg}"
        );
    }

    #[test]
    fn seeds_grid_one_folder_per_kind_depth_and_seed() {
        let r = recipe();
        let runs = Path::new("runs");
        let cells = expand_grid(
            &r,
            &[NetKind::Plain, NetKind::Residual],
            &[20],
            &[0, 1, 2, 1],
            runs,
        )
        .unwrap();
        let cell: Vec<(&str, u64)> = cells
            .iter()
            .map(|c| (c.name.as_str(), c.run.seed))
            .collect();
        assert_eq!(
            cell,
            [
                ("compare-cifar-plain20-s0", 0),
                ("compare-cifar-plain20-s1", 1),
                ("compare-cifar-plain20-s2", 2),
                ("compare-cifar-resnet20-s0", 0),
                ("compare-cifar-resnet20-s1", 1),
                ("compare-cifar-resnet20-s2", 2),
            ]
        );
        assert_eq!(cells[4].out_dir(), runs.join("compare-cifar-resnet20-s1"));
        // One seed keeps today's names, with that seed; none keeps the recipe's seed.
        let one = expand_grid(&r, &[NetKind::Residual], &[20], &[7], runs).unwrap();
        assert_eq!(
            (one[0].name.as_str(), one[0].run.seed),
            ("compare-cifar-resnet20", 7)
        );
        let none = expand_grid(&r, &[NetKind::Residual], &[20], &[], runs).unwrap();
        assert_eq!(
            (none[0].name.as_str(), none[0].run.seed),
            ("compare-cifar-resnet20", r.run.seed)
        );
    }

    #[test]
    fn seeded_compare_tables_and_plots_every_seed() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = CompareSpec {
            recipe: recipe(),
            kinds: vec![NetKind::Residual],
            depths: vec![20],
            seeds: vec![0, 1],
            runs_dir: tmp.path().join("runs"),
            results_dir: tmp.path().join("runs"),
            force: false,
            progress: false,
        };
        let mut runner = |cfg: &Config, _: &TrainOptions| -> Result<RunOutcome> {
            Ok(RunOutcome {
                dir: cfg.out_dir(),
                summary: write_fake_run(cfg, cfg.schedule.iterations),
                interrupted: false,
            })
        };
        let out = compare(&spec, &mut runner, &mut |_| {}).unwrap();
        let seeds: Vec<&str> = out.table.rows.iter().map(|r| r[3].as_str()).collect();
        assert_eq!(seeds, ["0", "1"]);
        assert!(out.csv.ends_with("runs/compare-cifar.csv"));
        let svg = std::fs::read_to_string(&out.svg).unwrap();
        assert!(svg.contains(">ResNet-20 s0</text>") && svg.contains(">ResNet-20 s1</text>"));
    }

    #[test]
    fn reuse_resume_or_start_from_the_run_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let cells = expand_grid(&recipe(), &[NetKind::Plain], &[20], &[], tmp.path()).unwrap();
        let cfg = &cells[0];
        assert_eq!(
            decide(cfg, false).unwrap(),
            Decision::Start { force: false }
        );
        std::fs::create_dir_all(cfg.out_dir()).unwrap();
        std::fs::write(cfg.out_dir().join("config.toml"), "").unwrap();
        assert_eq!(decide(cfg, false).unwrap(), Decision::Start { force: true });
        write_fake_run(cfg, 600); // checkpoint, no summary
        assert_eq!(decide(cfg, false).unwrap(), Decision::Resume);
        let s = write_fake_run(cfg, 1000);
        assert_eq!(decide(cfg, false).unwrap(), Decision::Reuse(Box::new(s)));
        assert_eq!(decide(cfg, true).unwrap(), Decision::Start { force: true });
        let mut longer = cfg.clone();
        longer.schedule.iterations = 2000;
        let e = format!("{:#}", decide(&longer, false).unwrap_err());
        assert!(e.contains("schedule.iterations: 1000 -> 2000"), "{e}");
        // Another lr or seed is another recipe: neither reused nor resumed, the keys are named.
        let mut other = cfg.clone();
        other.optimizer.lr = 0.05;
        other.run.seed = 7;
        let e = format!("{:#}", decide(&other, false).unwrap_err());
        assert!(
            e.contains("optimizer.lr: 0.1 -> 0.05; run.seed: 0 -> 7") && e.contains("--force"),
            "{e}"
        );
        std::fs::remove_file(cfg.out_dir().join("summary.csv")).unwrap();
        let e = format!("{:#}", decide(&other, false).unwrap_err());
        assert!(e.contains("optimizer.lr: 0.1 -> 0.05"), "{e}");
        assert_eq!(decide(cfg, false).unwrap(), Decision::Resume);
        // Settings that do not change what is trained (device, threads) still reuse.
        let mut elsewhere = cfg.clone();
        elsewhere.run.threads = 1;
        elsewhere.run.device = crate::config::DeviceChoice::Cpu;
        assert_eq!(decide(&elsewhere, false).unwrap(), Decision::Resume);
        assert_eq!(
            decide(&other, true).unwrap(),
            Decision::Start { force: true }
        );
    }

    #[test]
    fn compare_trains_then_reuses_and_resumes_after_an_interruption() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = CompareSpec {
            recipe: recipe(),
            kinds: vec![NetKind::Plain, NetKind::Residual],
            depths: vec![20, 56],
            seeds: vec![],
            runs_dir: tmp.path().join("runs"),
            results_dir: tmp.path().join("results"),
            force: false,
            progress: false,
        };
        // First attempt: the third cell is interrupted after a checkpoint.
        let calls: std::cell::RefCell<Vec<(String, TrainOptions)>> = Default::default();
        let mut runner = |cfg: &Config, o: &TrainOptions| -> Result<RunOutcome> {
            calls.borrow_mut().push((cfg.name.clone(), o.clone()));
            let interrupted = calls.borrow().len() == 3;
            let upto = if interrupted {
                600
            } else {
                cfg.schedule.iterations
            };
            let summary = write_fake_run(cfg, upto);
            Ok(RunOutcome {
                dir: cfg.out_dir(),
                summary,
                interrupted,
            })
        };
        let e = compare(&spec, &mut runner, &mut |_| {}).unwrap_err();
        assert!(format!("{e}").contains("run the same command again"), "{e}");
        // Second attempt: two reused, the interrupted one resumed, the last one started.
        let mut notes = Vec::new();
        let out = compare(&spec, &mut runner, &mut |n| notes.push(n)).unwrap();
        let opts: Vec<(String, bool)> = calls
            .borrow()
            .iter()
            .map(|(n, o)| (n.clone(), o.resume))
            .collect();
        let opts: Vec<(&str, bool)> = opts.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        assert_eq!(
            opts,
            [
                ("compare-cifar-plain20", false),
                ("compare-cifar-plain56", false),
                ("compare-cifar-resnet20", false),
                ("compare-cifar-resnet20", true),
                ("compare-cifar-resnet56", false),
            ]
        );
        assert!(
            notes[0].ends_with("reused") && notes[2].ends_with("resuming"),
            "{notes:?}"
        );
        // Third attempt trains nothing.
        let n = calls.borrow().len();
        compare(&spec, &mut runner, &mut |_| {}).unwrap();
        assert_eq!(calls.borrow().len(), n);

        let csv = std::fs::read_to_string(&out.csv).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "model,kind,depth,seed,params,final_train_error,final_test_error,best_test_error,run_dir"
        );
        assert_eq!(lines.len(), 5);
        assert!(lines[2].starts_with("plain56,plain,56,"), "{}", lines[2]);
        assert!(out.csv.ends_with("results/compare-cifar.csv"));
        let svg = std::fs::read_to_string(&out.svg).unwrap();
        assert_eq!(svg.matches(r#"<g class="panel">"#).count(), 2);
        for label in ["plain-20", "plain-56", "ResNet-20", "ResNet-56"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        let png = std::fs::read(&out.png).unwrap();
        assert!(image::load_from_memory(&png).is_ok());
    }

    /// `--jobs`: finished cells spawn nothing, `--jobs 0` is refused, and a resumed job's child
    /// gets `train --config FILE --resume`.
    #[test]
    fn parallel_training_plans_from_the_run_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let cells = expand_grid(
            &recipe(),
            &[NetKind::Plain, NetKind::Residual],
            &[20],
            &[],
            tmp.path(),
        )
        .unwrap();
        for c in &cells {
            write_fake_run(c, 1000);
        }
        let never = |_: &TrainJob| -> Command { panic!("nothing to train") };
        let r = train_parallel(&cells, false, 2, &never, &mut |_| {}).unwrap();
        assert_eq!((r.trained, r.images), (0, 0));
        let e = train_parallel(&cells, false, 0, &never, &mut |_| {}).unwrap_err();
        assert!(format!("{e}").contains("--jobs 0"), "{e}");
        let job = TrainJob {
            config_file: "c.toml".into(),
            opts: TrainOptions {
                resume: true,
                force: false,
                progress: false,
                ..Default::default()
            },
            log: "c.log".into(),
        };
        let args: Vec<String> = job
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["train", "--config", "c.toml", "--resume"]);
    }
}
