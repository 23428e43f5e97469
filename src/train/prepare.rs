//! Validate, then act: [`prepare`] checks everything a run needs (config, options, the folder's
//! lock, device, memory, data, model, and for a resume the checkpoint) without touching the run
//! folder; [`Prepared::begin`] is the first step that writes to it.
use super::resume::*;
use super::session::*;
use super::trainer::*;
use super::*;
use crate::config::{Config, RecipeChange};
use crate::run::checkpoint::{self};
use crate::run::dir::{RunDir, RunLock};
use crate::run::records::{self, CurvesWriter};
use crate::run::state::TrainState;
use crate::sys::dist::Group;
use crate::train::progress::Progress;
use anyhow::{bail, Context, Result};

/// A run checked end to end: config, options, the folder's lock and state, device, data opened,
/// model built and, for a resume, the checkpoint loaded, compared with the recipe, restored and
/// its curves read. Building it ([`prepare`]) changes nothing in the run folder (a folder that did
/// not exist is created, empty but for its lock, once everything else has passed).
pub struct Prepared {
    pub cfg: Config,
    pub dir: RunDir,
    /// The folder's lock: held by the writer (rank 0 of a data-parallel run) alone.
    pub(super) lock: Option<RunLock>,
    pub trainer: Trainer,
    pub(super) start: Start,
    /// One-line notes for the user (where the run resumes, an older checkpoint format).
    pub notes: Vec<String>,
}

/// Validates everything a run needs and returns its [`Prepared`]; the run folder is untouched.
pub fn prepare(cfg: &Config, opts: &TrainOptions) -> Result<Prepared> {
    prepare_with(cfg, opts, None)
}

/// [`prepare`] for one rank of a data-parallel run over `group` (None: one process). Rank 0
/// alone checks and locks the run folder (it alone writes there); every rank builds the same
/// trainer, and for a resume reads the same checkpoint. All ranks agree that every one of them
/// is ready (else each stops with one line), then the weights (and BN buffers) are rank 0's and
/// the starting iteration is checked to be the same everywhere.
pub fn prepare_with(cfg: &Config, opts: &TrainOptions, group: Option<Group>) -> Result<Prepared> {
    let Some(g) = group else {
        return prepare_rank(cfg, opts, None);
    };
    let local = prepare_rank(cfg, opts, Some(&g));
    let mut p = crate::train::dist::agree_ok(&g, local)?;
    let start_at = match &p.start {
        Start::Resume(r) => r.state.iteration,
        Start::Fresh { .. } => 0,
    };
    crate::train::dist::check_same_u64(&g, "starting iteration", start_at)?;
    crate::train::dist::check_same_data(
        &g,
        p.trainer.data.content_key(),
        &p.cfg.data.path.display().to_string(),
    )?;
    crate::train::dist::broadcast_params(&g, &p.trainer.opt)?;
    crate::train::dist::broadcast_buffers(&g, &p.trainer.vs)?;
    p.trainer.join(g);
    Ok(p)
}

/// The checks and the trainer of one process (one rank when `group` is given).
fn prepare_rank(cfg: &Config, opts: &TrainOptions, group: Option<&Group>) -> Result<Prepared> {
    cfg.validate()?;
    check_options(opts)?;
    let writer = group.is_none_or(|g| g.rank() == 0);
    let dir = RunDir::new(cfg.out_dir());
    // One writer per folder: an existing folder is locked before anything in it is looked at.
    let early_lock = if writer && dir.path.is_dir() {
        Some(RunLock::acquire(&dir.path)?)
    } else {
        None
    };
    if writer && !opts.resume {
        dir.check_new_run(opts.force)?;
    }
    let device = match group {
        // NCCL: this rank's GPU, cuda:LOCAL_RANK.
        Some(g) if g.device().is_cuda() => {
            crate::sys::device::select(&cfg.run)?;
            g.device()
        }
        _ => crate::sys::device::select(&cfg.run)?,
    };
    crate::run::budget::check(cfg, device)?;
    let mut trainer = Trainer::new(cfg, device)?;
    let mut notes = Vec::new();
    let start = if opts.resume {
        prepare_resume(cfg, &dir, opts, &mut trainer, &mut notes)?
    } else {
        Start::Fresh { clear: opts.force }
    };
    let lock = match early_lock {
        Some(lock) => Some(lock),
        None if writer => Some(lock_new_folder(&dir)?),
        None => None,
    };
    Ok(Prepared {
        cfg: cfg.clone(),
        dir,
        lock,
        trainer,
        start,
        notes,
    })
}

pub(super) fn check_options(opts: &TrainOptions) -> Result<()> {
    if opts.resume && opts.force {
        bail!("--resume continues a run and --force starts it over: give one of them");
    }
    if !opts.resume && !opts.changes.is_empty() {
        bail!(
            "--change {} applies to a resumed run: add --resume",
            opts.changes.join(",")
        );
    }
    if let Some(k) = opts
        .changes
        .iter()
        .find(|k| !CHANGEABLE_ON_RESUME.contains(&k.as_str()))
    {
        bail!(
            "--change {k}: a resume can change only {}; another model, data, optimizer or seed \
             is another run (--force, or another folder with --out)",
            CHANGEABLE_ON_RESUME.join(", ")
        );
    }
    Ok(())
}

/// Creates a run folder that did not exist when [`prepare`] began and takes its lock, refusing if
/// another process has started a run in it meanwhile.
pub(super) fn lock_new_folder(dir: &RunDir) -> Result<RunLock> {
    std::fs::create_dir_all(&dir.path)
        .with_context(|| format!("cannot create run folder {}", dir.path.display()))?;
    let lock = RunLock::acquire(&dir.path)?;
    dir.check_new_run(false)?;
    Ok(lock)
}

impl Prepared {
    /// Starts the run: the first step that changes the run folder (deleting an old run's files
    /// for `--force`, recording deliberate changes, writing `config.toml`, opening `curves.csv`).
    pub fn begin(self, progress: bool) -> Result<Session> {
        let Prepared {
            cfg,
            dir,
            lock,
            trainer: tr,
            start,
            notes,
        } = self;
        // Only the writer (rank 0 of a data-parallel run) touches the folder.
        let writer = lock.is_some();
        let (state, curves) = match start {
            Start::Fresh { clear } => {
                let curves = if writer {
                    if clear {
                        dir.clear_old_run()?;
                    }
                    dir.write_config(&cfg)?;
                    Some(CurvesWriter::create(&dir.curves())?)
                } else {
                    None
                };
                let mut state = TrainState::initial(&cfg);
                let key = tr.data.content_key();
                state.data_key = (!key.is_empty()).then(|| key.to_string());
                (state, curves)
            }
            Start::Resume(r) => {
                let Resume {
                    state,
                    curves,
                    changes,
                } = *r;
                let curves = if writer {
                    if !changes.is_empty() {
                        record_changes(&dir, &cfg, &tr, &state, &changes)?;
                    }
                    dir.write_config(&cfg)?;
                    Some(curves.open()?)
                } else {
                    None
                };
                (state, curves)
            }
        };
        let progress = progress && writer;
        let total = cfg.schedule.iterations;
        if progress {
            crate::out!("{}", tr.class_counts.to_text());
            crate::outln!(
                "{}: {} ({} parameters) on {}, batch {}, {} iterations ({:.1} epochs)",
                cfg.name,
                cfg.model.display_name(),
                tr.model.plan.params(),
                crate::sys::device::describe(tr.device),
                cfg.optimizer.batch_size,
                total,
                tr.epoch(total)
            );
        }
        let progress = Progress::new(progress, &cfg.name, state.iteration, total);
        for n in &notes {
            progress.note(n);
        }
        Ok(Session {
            clock: Clock::new(state.elapsed_s),
            last_ckpt: (state.iteration > 0).then_some(state.iteration),
            cfg,
            dir,
            lock,
            tr,
            state,
            curves,
            progress,
            last_row: None,
        })
    }
}

/// Records deliberate recipe changes: the checkpoint is saved again carrying the new recipe
/// (what later resumes and `resnet eval` check against), the changes are appended to
/// `changes.csv` with the iteration they apply from, and a finished run's `summary.csv`, which
/// no longer describes the run, is removed (the run writes a new one when it ends).
pub(super) fn record_changes(
    dir: &RunDir,
    cfg: &Config,
    tr: &Trainer,
    state: &TrainState,
    changes: &[RecipeChange],
) -> Result<()> {
    checkpoint::save_checkpoint(
        &dir.checkpoint(),
        &tr.checkpoint_tensors(),
        state,
        Some(cfg),
    )?;
    records::append_changes(&dir.changes(), state.iteration, changes)?;
    let summary = dir.summary();
    if summary.exists() {
        std::fs::remove_file(&summary)
            .with_context(|| format!("cannot remove {}", summary.display()))?;
    }
    Ok(())
}
