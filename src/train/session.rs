//! A run in progress: the training loop of §4.2 (curve rows, evaluations, checkpoints, warm-up
//! checks, NaN stops) and its stop on Ctrl-C, SIGTERM or SIGHUP (checkpoint saved first).
use super::trainer::*;
use super::*;
use crate::config::Config;
use crate::run::checkpoint::{self};
use crate::run::dir::{RunDir, RunLock};
use crate::run::records::{self, CurveRow, CurvesWriter, Summary};
use crate::run::state::TrainState;
use crate::train::progress::Progress;
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

pub(super) static STOP: AtomicBool = AtomicBool::new(false);

pub(super) static PRESSES: AtomicUsize = AtomicUsize::new(0);

/// Ctrl-C, SIGTERM and SIGHUP (a timeout, Slurm, systemd, a closed terminal) ask the loop to
/// finish the step and save a checkpoint; a second one exits at once (the last checkpoint is
/// intact either way, as it is replaced atomically). That exit is `_exit`: it runs no atexit
/// handler or destructor from this (the handler's) thread while libtorch runs on the main one
/// (`exit` there segfaulted about one time in seven). A SIGHUP ignored at start (`nohup`) stays
/// ignored.
///
/// A worker of `--nproc` learns of its launcher's death by `PR_SET_PDEATHSIG`, which the kernel
/// sends once per exiting thread of the launcher: the SIGTERMs that arrive within
/// [`PARENT_DEATH_BURST_MS`] of the first, once the launcher is gone, are that one request.
pub(super) fn install_signal_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hup_ignored = crate::sys::launch::signal_ignored(libc::SIGHUP);
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() };
        let launched = std::env::var_os(crate::sys::launch::NPROC_VAR).is_some();
        let first = std::sync::OnceLock::<Instant>::new();
        let _ = ctrlc::set_handler(move || {
            let at = *first.get_or_init(Instant::now);
            // SAFETY: getppid has no preconditions.
            let orphaned = unsafe { libc::getppid() } != parent;
            if launched
                && orphaned
                && PRESSES.load(Ordering::SeqCst) >= 1
                && at.elapsed().as_millis() < PARENT_DEATH_BURST_MS
            {
                return;
            }
            if PRESSES.fetch_add(1, Ordering::SeqCst) >= 1 {
                crate::errln!(
                    "\nsecond interrupt: exiting without saving (the last checkpoint is intact)"
                );
                // SAFETY: _exit ends the process at once; nothing of this process runs after it.
                unsafe { libc::_exit(130) };
            }
            STOP.store(true, Ordering::SeqCst);
        });
        if hup_ignored {
            // SAFETY: setting a signal's disposition to SIG_IGN installs no code.
            unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
        }
    });
}

/// How long after a worker's first stop signal, its launcher dead, further signals are taken for
/// the same parent death (the kernel sends them back to back, one per exiting thread).
const PARENT_DEATH_BURST_MS: u128 = 2000;

/// For a process that supervises runs (`compare --jobs`): Ctrl-C, SIGTERM and SIGHUP set the
/// flag that [`stop_requested`] reads (a second one exits at once), as in a training run.
pub fn catch_stop_signals() {
    install_signal_handler();
}

/// Whether Ctrl-C, SIGTERM or SIGHUP (or [`request_stop`]) asked this process to stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Asks a running [`run`] to stop after its current step and checkpoint (what Ctrl-C does).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Wall-clock bookkeeping of a session: training seconds over all sessions, and the current
/// curve interval's start and images.
pub(super) struct Clock {
    pub(super) session: Instant,
    pub(super) base_s: f64,
    pub(super) interval: Instant,
    pub(super) interval_images: u64,
}

impl Clock {
    pub(super) fn new(base_s: f64) -> Clock {
        Clock {
            session: Instant::now(),
            base_s,
            interval: Instant::now(),
            interval_images: 0,
        }
    }

    /// Training seconds of the run so far (earlier sessions included).
    fn elapsed_s(&self) -> f64 {
        self.base_s + self.session.elapsed().as_secs_f64()
    }

    fn restart_interval(&mut self) {
        self.interval = Instant::now();
        self.interval_images = 0;
    }
}

/// A run in progress (after [`Prepared::begin`]): it holds the folder's lock until it is dropped.
pub struct Session {
    pub(super) cfg: Config,
    pub(super) dir: RunDir,
    /// The folder's lock; None on the ranks of a data-parallel run that write nothing (all but 0).
    pub(super) lock: Option<RunLock>,
    pub(super) tr: Trainer,
    pub(super) state: TrainState,
    pub(super) curves: Option<CurvesWriter>,
    pub(super) progress: Progress,
    pub(super) clock: Clock,
    pub(super) last_ckpt: Option<u64>,
    pub(super) last_row: Option<CurveRow>,
}

impl Session {
    /// The training loop: steps until `schedule.iterations`, a curve row every `run.log_every`
    /// (with an evaluation every `run.eval_every`), a checkpoint every `run.checkpoint_every`
    /// and at the end, warm-up checks, and a stop (checkpoint saved) on Ctrl-C, SIGTERM or
    /// SIGHUP. Returns the iterations done and whether it was interrupted.
    pub fn train(&mut self) -> Result<(u64, bool)> {
        install_signal_handler();
        STOP.store(false, Ordering::SeqCst);
        PRESSES.store(0, Ordering::SeqCst);
        let total = self.cfg.schedule.iterations;
        let bs = self.cfg.optimizer.batch_size as u64;
        let mut it = self.state.iteration;
        while it < total {
            self.tr.step(it)?;
            it += 1;
            let done = it;
            self.clock.interval_images += bs;
            self.progress.step(done);
            let is_row = done.is_multiple_of(self.cfg.run.log_every) || done == total;
            let is_warm = self.tr.schedule.is_warmup_check(done);
            let mut stop = STOP.load(Ordering::SeqCst);
            if let Some(g) = &self.tr.group {
                // A signal on any rank stops every rank after the same iteration (one small
                // all-reduce a step); rank 0 then checkpoints.
                stop = crate::train::dist::any_rank(g, stop)?;
            }
            if !(is_row || is_warm || stop) {
                continue;
            }
            // The rate the interval's last step used (before a warm-up switch at `done`).
            let row_lr = self.tr.opt.lr();
            self.tr.drain()?;
            self.check_loss()?;
            if is_warm {
                self.warmup_check(done);
            }
            if is_row {
                self.record_row(done, row_lr)?;
            }
            if done.is_multiple_of(self.cfg.run.checkpoint_every) || done == total || stop {
                self.checkpoint(done)?;
            }
            if stop && done < total {
                self.progress.note(&format!(
                    "interrupted: checkpoint saved at iteration {done}"
                ));
                return Ok((done, true));
            }
            if is_row {
                self.clock.restart_interval();
            }
        }
        Ok((it, false))
    }

    /// Stops the run when a step's loss was NaN or infinite, naming the last good checkpoint.
    fn check_loss(&self) -> Result<()> {
        let Some(bad) = self.tr.first_nonfinite else {
            return Ok(());
        };
        let kept = match self.last_ckpt {
            Some(c) => format!(
                "the last good checkpoint (iteration {c}) stays in {}",
                self.dir.checkpoint().display()
            ),
            None => "no checkpoint was written yet".into(),
        };
        bail!(
            "the training loss became NaN or infinite at iteration {} (lr {}); stopping: \
             {kept}. A lower optimizer.lr (or schedule.warmup) usually helps",
            bad + 1,
            self.tr.schedule.lr(bad)
        );
    }

    /// §4.2's warm-up rule on the training error of the last check window.
    fn warmup_check(&mut self, done: u64) {
        let a = &mut self.tr.acc;
        let err = a.warm_errors as f64 / a.warm_images.max(1) as f64;
        a.warm_errors = 0;
        a.warm_images = 0;
        if self.tr.schedule.warmup_check(done, err) {
            let until = self
                .cfg
                .schedule
                .warmup
                .as_ref()
                .map_or(0.0, |w| w.until_train_error);
            self.progress.note(&format!(
                "warm-up ended at iteration {done} (training error {:.1}% < {:.0}%); lr {}",
                100.0 * err,
                100.0 * until,
                self.tr.schedule.lr(done)
            ));
        }
    }

    /// One curve row: the interval's training loss and error, and the test error when an
    /// evaluation is due (which may lower the lr in plateau mode); appended to `curves.csv`.
    fn record_row(&mut self, done: u64, lr: f64) -> Result<()> {
        let secs = self.clock.interval.elapsed().as_secs_f64();
        let a = std::mem::take(&mut self.tr.acc);
        // The warm-up window runs across rows.
        self.tr.acc.warm_errors = a.warm_errors;
        self.tr.acc.warm_images = a.warm_images;
        let train_error = 100.0 * a.errors as f64 / a.images.max(1) as f64;
        let mut row = CurveRow {
            iteration: done,
            epoch: self.tr.epoch(done),
            lr,
            train_loss: a.loss_sum / a.steps.max(1) as f64,
            train_error,
            test_loss: None,
            test_error: None,
            images_per_s: self.clock.interval_images as f64 / secs.max(1e-9),
            elapsed_s: 0.0,
        };
        self.state.last_train_error = Some(train_error);
        if done.is_multiple_of(self.cfg.run.eval_every) || done == self.cfg.schedule.iterations {
            let (loss, error) = self.evaluate(done)?;
            row.test_loss = Some(loss);
            row.test_error = Some(error);
        }
        row.elapsed_s = self.clock.elapsed_s();
        if let Some(c) = &mut self.curves {
            c.append(&row)?;
        }
        self.state.last_row = Some(done);
        self.progress.row(
            &row,
            self.cfg.optimizer.batch_size,
            self.state.last_test_error,
        );
        self.last_row = Some(row);
        Ok(())
    }

    /// Test (or validation) loss and error after `done` iterations, kept as the last and
    /// possibly best error, and given to the plateau rule.
    fn evaluate(&mut self, done: u64) -> Result<(f64, f64)> {
        let (loss, error) = self.tr.evaluate()?;
        let s = &mut self.state;
        s.last_test_error = Some(error);
        if s.best_test_error.is_none_or(|b| error < b) {
            s.best_test_error = Some(error);
            s.best_iteration = done;
        }
        if self.tr.schedule.on_eval(error / 100.0) {
            self.progress.note(&format!(
                "{} error has not improved for {} evaluations: lr lowered to {}",
                self.tr.data.eval_split(),
                self.cfg.schedule.plateau_patience,
                self.tr.schedule.lr(done)
            ));
        }
        Ok((loss, error))
    }

    /// Saves model, momentum, run state and recipe after `done` iterations (atomically), unless
    /// the parameters are no longer finite.
    fn checkpoint(&mut self, done: u64) -> Result<()> {
        if !self.tr.params_finite() {
            bail!(
                "parameters became NaN or infinite by iteration {done}; not saving them \
                 (the last good checkpoint stays in {})",
                self.dir.checkpoint().display()
            );
        }
        let s = &mut self.state;
        s.iteration = done;
        s.schedule = self.tr.schedule.state.clone();
        s.momentum_started = self.tr.opt.started();
        s.acc = self.tr.acc.clone();
        s.elapsed_s = self.clock.elapsed_s();
        if let Some(g) = &self.tr.group {
            // DDP's broadcast_buffers: the checkpoint holds rank 0's BN running statistics,
            // which every rank then trains on, as after a resume.
            crate::train::dist::broadcast_buffers(g, &self.tr.vs)?;
        }
        if self.lock.is_some() {
            checkpoint::save_checkpoint(
                &self.dir.checkpoint(),
                &self.tr.checkpoint_tensors(),
                &self.state,
                Some(&self.cfg),
            )?;
        }
        self.last_ckpt = Some(done);
        Ok(())
    }

    /// The run's summary after `done` iterations, written to `summary.csv` unless the run was
    /// interrupted; releases the folder's lock.
    pub fn finish(self, done: u64, interrupted: bool) -> Result<RunOutcome> {
        self.progress.finish();
        let summary = self.summary(done);
        if !interrupted && self.lock.is_some() {
            records::write_summary(&self.dir.summary(), &summary)?;
        }
        Ok(RunOutcome {
            dir: self.dir.path.clone(),
            summary,
            interrupted,
        })
    }

    fn summary(&self, done: u64) -> Summary {
        let mut s = model_summary(&self.cfg, self.tr.model.plan.params());
        s.iterations = done;
        s.final_train_error = self
            .last_row
            .as_ref()
            .map(|r| r.train_error)
            .or(self.state.last_train_error)
            .unwrap_or(f64::NAN);
        s.final_test_error = self.state.last_test_error.unwrap_or(f64::NAN);
        s.best_test_error = self.state.best_test_error.unwrap_or(f64::NAN);
        s.best_iteration = self.state.best_iteration;
        s.eval_split = self.tr.data.eval_split().to_string();
        s.warmup_end = self.tr.schedule.state.warmup_end;
        // Milliseconds, as summary.csv stores it.
        s.wall_s = (self.clock.elapsed_s() * 1e3).round() / 1e3;
        s
    }
}
