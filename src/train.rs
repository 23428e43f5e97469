//! Training as in paper §3.4 (ImageNet) and §4.2 (CIFAR-10): SGD with momentum and weight decay
//! on mini-batches, the learning rate lowered at fixed iterations or on a plateau, ResNet-110's
//! warm-up, everything counted in iterations (epochs shown alongside).
//!
//! [`Trainer`] is one run's model, optimizer and data with a sync-free [`Trainer::step`] (also
//! what the benchmark times); [`run`] is the whole run in two stages. [`plan`] validates
//! everything without touching the run folder (config, options, the folder's lock, device, data,
//! model, and for a resume the checkpoint, its recipe and the curves) and returns a [`Plan`];
//! [`Plan::begin`] is the first step that writes, and the [`Session`] it returns runs the loop
//! (curve rows, evaluations, checkpoints, Ctrl-C/SIGTERM/SIGHUP and NaN handling) and the summary.
//!
//! Per-step statistics never leave the device inside a step: each step writes its loss and error
//! count into slot `k` of two small device buffers; the host reads them (one sync) every
//! `run.log_every` iterations, and every `schedule.warmup.check_every` during warm-up.
//!
//! With `run.cuda_graph` (CUDA only) [`Trainer::step`] is the same step captured once as a CUDA
//! graph and replayed (src/graph.rs): a few eager steps on the graph's side stream first (cuDNN
//! autotuning, workspaces, the momentum buffer's first step), then one capture of batch assembly,
//! forward, backward, SGD update and slot writes. What changes per step is written outside the
//! graph before each replay: the batch's indices, crops and flips (drawn on the host from
//! (seed, iteration) as in eager mode, copied asynchronously from page-locked memory into one
//! static device tensor, which also carries the slot index) and the learning rate (the
//! optimizer's 0-d device tensor, refilled when the schedule changes it: milestones, warm-up,
//! plateaus). Evaluation, checkpoints and restores stay eager; they read and write the same
//! tensors in place, so the graph stays valid.
use crate::config::{Config, DeviceChoice, Precision, RecipeChange};
use crate::data::Batch;
use crate::data::{self, DataSource};
use crate::eval::{self, ForwardMode};
use crate::graph::CudaGraph;
use crate::model::ResNet;
use crate::optim::FlatSgd;
use crate::progress::Progress;
use crate::records::{self, CurveRow, CurvesWriter, ResumedCurves, Summary};
use crate::rundir::{
    self, describe_model, Accumulators, Checkpoint, RunDir, RunLock, TrainState, CHANGES_FILE,
    MOMENTUM_PREFIX,
};
use crate::schedule::Schedule;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// How `run` treats the run folder and the terminal.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in `cfg.out_dir()` from its checkpoint.
    pub resume: bool,
    /// Start over in a folder that holds another run (deleting its files once the new run has
    /// been checked).
    pub force: bool,
    /// Show a progress bar (terminal) or progress lines.
    pub progress: bool,
    /// Recipe keys a resume may change deliberately (`--change KEY`, only
    /// [`CHANGEABLE_ON_RESUME`]); each change is recorded in the run's `changes.csv`.
    pub changes: Vec<String>,
}

/// What a finished (or interrupted) run leaves.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub summary: Summary,
    /// Stopped by Ctrl-C (checkpoint saved) before the last iteration.
    pub interrupted: bool,
}

/// Command-line overrides of a config (`resnet train` flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub iterations: Option<u64>,
    pub device: Option<DeviceChoice>,
    pub out: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub seed: Option<u64>,
    /// `run.cuda_graph` (e.g. to resume an eager run's checkpoint with the graph, or back).
    pub cuda_graph: Option<bool>,
}

impl Overrides {
    /// Applies the flags, then validates the config again. `--iterations N` also drops the
    /// milestones after N (they would never be reached).
    pub fn apply(&self, cfg: &mut Config) -> Result<()> {
        if let Some(n) = self.iterations {
            cfg.schedule.iterations = n;
            cfg.schedule.milestones.retain(|&m| m <= n);
        }
        if let Some(d) = self.device {
            cfg.run.device = d;
        }
        if let Some(o) = &self.out {
            cfg.run.out_dir = o.clone();
        }
        if let Some(p) = &self.data {
            cfg.data.path = p.clone();
        }
        if let Some(s) = self.seed {
            cfg.run.seed = s;
        }
        if let Some(g) = self.cuda_graph {
            cfg.run.cuda_graph = g;
        }
        cfg.validate()
            .context("after applying the command-line flags")
    }
}

/// Parses a `--device` value.
pub fn parse_device(s: &str) -> Result<DeviceChoice> {
    match s {
        "auto" => Ok(DeviceChoice::Auto),
        "cpu" => Ok(DeviceChoice::Cpu),
        "cuda" => Ok(DeviceChoice::Cuda),
        other => bail!("--device {other:?}: allowed values are auto, cpu, cuda"),
    }
}

/// The config of `resnet train`: `--config FILE`, or the `config.toml` of the run folder given
/// to `--resume DIR` (whose folder then is the run folder), with the flags applied.
pub fn resolve_config(
    config: Option<&Path>,
    resume_dir: Option<&Path>,
    overrides: &Overrides,
) -> Result<Config> {
    let mut cfg = match (config, resume_dir) {
        (Some(_), Some(d)) => bail!(
            "give either --config FILE (with --resume to continue its run) or --resume {} \
             (which reads that run's config.toml), not both",
            d.display()
        ),
        (Some(c), None) => Config::load(c)?,
        (None, Some(d)) => {
            let mut cfg = Config::load(&RunDir::new(d).config())
                .with_context(|| format!("{} is not a run folder to resume", d.display()))?;
            cfg.run.out_dir = d.to_path_buf();
            cfg
        }
        (None, None) => bail!("resnet train needs --config FILE or --resume RUN_FOLDER"),
    };
    overrides.apply(&mut cfg)?;
    Ok(cfg)
}

/// Runs `f` (a network's initialization) right after `tch::manual_seed(seed)`, holding a
/// process-wide lock: libtorch's default generator is global, so two runs initializing in parallel
/// threads would otherwise interleave their draws and lose repeatability.
pub fn seeded<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _lock = INIT.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed as i64);
    f()
}

/// One run's network, optimizer, data and schedule on one device.
pub struct Trainer {
    pub cfg: Config,
    pub device: Device,
    pub vs: nn::VarStore,
    pub model: ResNet,
    pub opt: FlatSgd,
    pub data: Box<dyn DataSource>,
    /// Images per class of the data (printed at the start of a run).
    pub class_counts: crate::table::Table,
    pub schedule: Schedule,
    pub mode: ForwardMode,
    /// Host-side sums of what has been read from the device.
    pub acc: Accumulators,
    /// Per-step loss (f32) and error count (i64) slots, read by [`Trainer::drain`].
    loss_slots: Tensor,
    err_slots: Tensor,
    pending: usize,
    pending_start: u64,
    /// First iteration (0-based) whose loss was NaN or infinite.
    pub first_nonfinite: Option<u64>,
    /// `run.cuda_graph`: the captured step and its static inputs (None: eager steps).
    graphed: Option<GraphedStep>,
}

/// Eager steps run on the graph's side stream before the capture (PyTorch's recipe warms up
/// three iterations): cuDNN's benchmark picks its algorithms and lazily created workspaces and
/// buffers exist before the capture, which must not allocate outside its pool or synchronize.
pub const GRAPH_WARMUP_STEPS: u32 = 3;

/// The captured training step of `run.cuda_graph` (see the module doc).
struct GraphedStep {
    graph: CudaGraph,
    /// Eager warm-up steps still to run before the capture.
    warmup_left: u32,
    /// int64 on the device: the batch's parameters ([`DataSource::batch_params`]), then the
    /// metric slot index. Rewritten before every replay; the graph reads it.
    inputs: Tensor,
}

impl GraphedStep {
    fn new(device: Device, batch_size: usize, data: &mut dyn DataSource) -> Result<GraphedStep> {
        if !device.is_cuda() {
            bail!(
                "run.cuda_graph = true needs a CUDA device, this run is on {device:?}; set \
                 run.cuda_graph = false"
            );
        }
        let Some(params) = data.batch_params(0, batch_size) else {
            bail!(
                "run.cuda_graph = true needs a dataset held in device memory (cifar10, synthetic, \
                 small-image folders); this one is streamed from disk: set run.cuda_graph = false"
            );
        };
        Ok(GraphedStep {
            graph: CudaGraph::new(device)?,
            warmup_left: GRAPH_WARMUP_STEPS,
            inputs: Tensor::zeros([params.len() as i64 + 1], (Kind::Int64, device)),
        })
    }
}

impl Trainer {
    /// Builds the network (seeded by `run.seed`), the flat-buffer SGD and the data source.
    pub fn new(cfg: &Config, device: Device) -> Result<Trainer> {
        let mode = ForwardMode::of(cfg);
        if cfg.run.precision == Precision::Bf16 {
            if !device.is_cuda() {
                bail!("run.precision = \"bf16\" needs a CUDA device (autocast); use \"fp32\" on the CPU");
            }
            crate::device::use_bf16_autocast();
        }
        let (vs, model) = seeded(cfg.run.seed, || {
            let vs = nn::VarStore::new(device);
            let model = ResNet::new(&vs.root(), &cfg.model);
            (vs, model)
        });
        let o = &cfg.optimizer;
        // The probe pass creates every .grad: eval mode (BN running stats untouched) on zeros.
        let probe = || {
            let x = mode.prepare(Tensor::zeros([2, 3, 32, 32], (Kind::Float, device)));
            mode.run(|| model.forward_t(&x, false))
                .to_kind(Kind::Float)
                .sum(Kind::Float)
                .backward();
        };
        let opt = FlatSgd::new(
            &vs,
            o.lr,
            o.momentum,
            o.weight_decay,
            o.nesterov,
            mode.channels_last,
            probe,
        )?;
        let (mut data, class_counts) = data::open_quiet(cfg, device, false)?;
        if data.num_classes() != cfg.model.classes() {
            bail!(
                "model.classes = {} but the data at {} has {} classes",
                cfg.model.classes(),
                cfg.data.path.display(),
                data.num_classes()
            );
        }
        let cap = cfg.run.log_every.clamp(1, 4096) as i64;
        let graphed = if cfg.run.cuda_graph {
            Some(GraphedStep::new(device, o.batch_size, data.as_mut())?)
        } else {
            None
        };
        Ok(Trainer {
            cfg: cfg.clone(),
            device,
            schedule: Schedule::new(&cfg.schedule, o.lr),
            vs,
            model,
            opt,
            data,
            class_counts,
            mode,
            acc: Accumulators::default(),
            loss_slots: Tensor::zeros([cap], (Kind::Float, device)),
            err_slots: Tensor::zeros([cap], (Kind::Int64, device)),
            pending: 0,
            pending_start: 0,
            first_nonfinite: None,
            graphed,
        })
    }

    /// One optimizer step on the batch of (0-based) iteration `iteration`: forward, loss,
    /// backward, SGD update, and the step's loss and error count written to a device slot.
    /// No host-device sync (unless the slots are full because nobody called [`Trainer::drain`]
    /// for `run.log_every` steps). With `run.cuda_graph` the same step as a graph replay.
    pub fn step(&mut self, iteration: u64) -> Result<()> {
        if self.pending == self.loss_slots.size()[0] as usize {
            self.drain()?;
        }
        if self.pending == 0 {
            self.pending_start = iteration;
        }
        self.opt.set_lr(self.schedule.lr(iteration));
        match self.graphed.take() {
            None => self.eager_step(iteration)?,
            Some(mut g) => {
                let done = self.graphed_step(&mut g, iteration);
                self.graphed = Some(g);
                done?;
            }
        }
        self.pending += 1;
        Ok(())
    }

    /// Whether `run.cuda_graph` is on and its graph has been captured (steps are replays).
    pub fn graph_captured(&self) -> bool {
        self.graphed.as_ref().is_some_and(|g| g.graph.is_captured())
    }

    /// The step as eager tensor work: batch, [`Trainer::train_on`], slot writes.
    fn eager_step(&mut self, iteration: u64) -> Result<()> {
        let batch = self
            .data
            .train_batch(iteration, self.cfg.optimizer.batch_size)?;
        let (loss, wrong) = self.train_on(batch);
        let _guard = tch::no_grad_guard();
        let k = self.pending as i64;
        self.loss_slots.get(k).copy_(&loss);
        self.err_slots.get(k).copy_(&wrong);
        Ok(())
    }

    /// Forward, loss, backward and SGD update on `batch`; the step's loss and its number of
    /// misclassified images as device scalars. Device work only (the body of the graph too).
    fn train_on(&mut self, batch: Batch) -> (Tensor, Tensor) {
        let x = self.mode.prepare(batch.images);
        let (logits, loss) = self.mode.run(|| {
            let logits = self.model.forward_t(&x, true);
            let loss = logits
                .to_kind(Kind::Float)
                .cross_entropy_for_logits(&batch.labels);
            (logits, loss)
        });
        loss.backward();
        self.opt.step();
        let _guard = tch::no_grad_guard();
        let wrong = logits
            .argmax(1, false)
            .ne_tensor(&batch.labels)
            .sum(Kind::Int64);
        (loss, wrong)
    }

    /// The step of `run.cuda_graph`: eager warm-up steps on the side stream, then (once) the
    /// capture, and every step: this iteration's inputs written, graph replayed.
    fn graphed_step(&mut self, g: &mut GraphedStep, iteration: u64) -> Result<()> {
        if !g.graph.is_captured() && (g.warmup_left > 0 || !self.opt.started()) {
            g.warmup_left = g.warmup_left.saturating_sub(1);
            return g.graph.on_side_stream(|| self.eager_step(iteration));
        }
        let bs = self.cfg.optimizer.batch_size;
        let mut host = self
            .data
            .batch_params(iteration, bs)
            .context("the data source stopped providing batch parameters")?;
        host.push(self.pending as i64);
        crate::graph::copy_to_device_async(&mut g.inputs, &Tensor::from_slice(&host))?;
        if !g.graph.is_captured() {
            let inputs = g.inputs.shallow_clone();
            crate::graph::without_autocast_cache(|| {
                g.graph.capture(|| self.captured_step(&inputs))
            })
            .context("capturing the training step as a CUDA graph (run.cuda_graph)")?;
        }
        // SAFETY: the captured work used only tensors this Trainer owns for its whole life (the
        // VarStore's variables and BN statistics, the optimizer's flat buffers and 0-d scalars,
        // the data source's device tensors, `g.inputs`, the metric slots), or tensors created
        // during the capture, which live in the graph's own pool. Nothing reallocates them:
        // restore, set_lr and the eager paths write into them in place. The graph is dropped
        // with the Trainer.
        unsafe { g.graph.replay() }
    }

    /// What the graph captures: the batch assembled on the device from `inputs`, the step, and
    /// the slot writes at the slot index that `inputs` carries last.
    fn captured_step(&mut self, inputs: &Tensor) -> Result<()> {
        let n = inputs.size()[0];
        let batch = self.data.assemble_batch(&inputs.narrow(0, 0, n - 1))?;
        let (loss, wrong) = self.train_on(batch);
        let _guard = tch::no_grad_guard();
        let k = inputs.narrow(0, n - 1, 1);
        let _ = self.loss_slots.index_copy_(0, &k, &loss.view([1]));
        let _ = self.err_slots.index_copy_(0, &k, &wrong.view([1]));
        Ok(())
    }

    /// Reads the pending per-step slots (one sync) into the host accumulators.
    pub fn drain(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let n = self.pending as i64;
        let losses: Vec<f32> =
            Vec::try_from(self.loss_slots.narrow(0, 0, n).to_device(Device::Cpu))?;
        let errs: Vec<i64> = Vec::try_from(self.err_slots.narrow(0, 0, n).to_device(Device::Cpu))?;
        let bs = self.cfg.optimizer.batch_size as u64;
        for (i, (&l, &e)) in losses.iter().zip(&errs).enumerate() {
            if !l.is_finite() && self.first_nonfinite.is_none() {
                self.first_nonfinite = Some(self.pending_start + i as u64);
            }
            let a = &mut self.acc;
            a.loss_sum += l as f64;
            a.errors += e as u64;
            a.images += bs;
            a.steps += 1;
            a.warm_errors += e as u64;
            a.warm_images += bs;
        }
        self.pending = 0;
        Ok(())
    }

    /// Loss and error (percent) on the test/validation split.
    pub fn evaluate(&mut self) -> Result<(f64, f64)> {
        let r = eval::evaluate(
            &self.model,
            self.data.as_mut(),
            self.cfg.run.eval_batch_size,
            self.mode,
            &eval::Protocol::SingleCrop,
        )?;
        Ok((r.loss, r.top1_error))
    }

    /// Model tensors (torchvision names, BN running stats included) and momentum buffers, as
    /// stored in a checkpoint.
    pub fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        for s in self.opt.slots() {
            v.push((
                format!("{MOMENTUM_PREFIX}{}", s.name),
                self.opt.momentum_view(s),
            ));
        }
        v
    }

    /// Whether every parameter is finite (one sync).
    pub fn params_finite(&self) -> bool {
        self.opt.flat_params().isfinite().all().int64_value(&[]) != 0
    }

    /// Restores model, momentum and schedule from a checkpoint.
    pub fn restore(&mut self, ck: &rundir::Checkpoint, config_path: &Path) -> Result<()> {
        ck.restore_model(&self.vs, &self.cfg.model, config_path)?;
        let started = ck.state.momentum_started;
        self.opt.load_momentum(started, |s| {
            let name = format!("{MOMENTUM_PREFIX}{}", s.name);
            ck.tensors
                .get(&name)
                .map(|t| t.shallow_clone())
                .with_context(|| {
                    format!("checkpoint {}: tensor {name} is missing", ck.path.display())
                })
        })?;
        self.schedule.state = ck.state.schedule.clone();
        self.acc = ck.state.acc.clone();
        Ok(())
    }

    /// Epochs completed after `done` iterations.
    pub fn epoch(&self, done: u64) -> f64 {
        done as f64 * self.cfg.optimizer.batch_size as f64 / self.data.train_len() as f64
    }
}

static STOP: AtomicBool = AtomicBool::new(false);
static PRESSES: AtomicUsize = AtomicUsize::new(0);

/// Ctrl-C, SIGTERM and SIGHUP (a timeout, Slurm, systemd, a closed terminal) ask the loop to
/// finish the step and save a checkpoint; a second one exits at once (the last checkpoint is
/// intact either way, as it is replaced atomically). That exit is `_exit`: it runs no atexit
/// handler or destructor from this (the handler's) thread while libtorch runs on the main one
/// (`exit` there segfaulted about one time in seven). A SIGHUP ignored at start (`nohup`) stays
/// ignored.
fn install_signal_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hup_ignored = signal_ignored(libc::SIGHUP);
        let _ = ctrlc::set_handler(|| {
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

/// Whether `signal` is ignored (SIG_IGN), as `nohup` leaves SIGHUP for the program it starts.
fn signal_ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Asks a running [`run`] to stop after its current step and checkpoint (what Ctrl-C does).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

fn model_summary(cfg: &Config, params: u64) -> Summary {
    let m = &cfg.model;
    Summary::unfinished(
        &cfg.name,
        &m.display_name(),
        &format!("{:?}", m.family).to_lowercase(),
        &format!("{:?}", m.kind).to_lowercase(),
        &format!("{:?}", m.shortcut()),
        m.depth,
        params,
    )
}

/// The command that resumes the run in `dir`.
pub fn resume_command(dir: &Path) -> String {
    format!("resnet train --resume {}", dir.display())
}

/// Trains the run `cfg` describes into its run folder (see the module doc and notes/common.md
/// for the files). With `opts.resume` it continues from the folder's checkpoint exactly.
///
/// [`plan`] checks everything first without changing the folder; only then does
/// [`Plan::begin`] write to it, so a refused or failed start leaves the folder as it was.
pub fn run(cfg: &Config, opts: &TrainOptions) -> Result<RunOutcome> {
    let mut session = plan(cfg, opts)?.begin(opts.progress)?;
    let (done, interrupted) = session.train()?;
    session.finish(done, interrupted)
}

/// How a planned run starts.
enum Start {
    /// From iteration 0; `clear`: delete an old run's files first (`--force`, or a resume that
    /// found no checkpoint).
    Fresh { clear: bool },
    /// From the checkpoint, already restored into the trainer.
    Resume(Box<Resume>),
}

struct Resume {
    state: TrainState,
    curves: ResumedCurves,
    /// Deliberate recipe changes (`--change`), applying from `state.iteration` on.
    changes: Vec<RecipeChange>,
}

/// A run checked end to end: config, options, the folder's lock and state, device, data opened,
/// model built and, for a resume, the checkpoint loaded, compared with the recipe, restored and
/// its curves read. Building it ([`plan`]) changes nothing in the run folder (a folder that did
/// not exist is created, empty but for its lock, once everything else has passed).
pub struct Plan {
    pub cfg: Config,
    pub dir: RunDir,
    lock: RunLock,
    pub trainer: Trainer,
    start: Start,
    /// One-line notes for the user (where the run resumes, an older checkpoint format).
    pub notes: Vec<String>,
}

/// Recipe keys that `--change KEY` lets a resume alter (the run's length and learning-rate
/// schedule, and where the same data now lives); a change of anything else in the recipe makes
/// another run.
pub const CHANGEABLE_ON_RESUME: [&str; 7] = [
    "data.path",
    "schedule.iterations",
    "schedule.milestones",
    "schedule.gamma",
    "schedule.plateau_patience",
    "schedule.plateau_threshold",
    "run.eval_every",
];

/// Validates everything a run needs and returns its [`Plan`]; the run folder is untouched.
pub fn plan(cfg: &Config, opts: &TrainOptions) -> Result<Plan> {
    cfg.validate()?;
    check_options(opts)?;
    let dir = RunDir::new(cfg.out_dir());
    // One writer per folder: an existing folder is locked before anything in it is looked at.
    let early_lock = if dir.path.is_dir() {
        Some(RunLock::acquire(&dir.path)?)
    } else {
        None
    };
    if !opts.resume {
        dir.check_new_run(opts.force)?;
    }
    let device = crate::device::select(&cfg.run)?;
    crate::budget::check(cfg, device)?;
    let mut trainer = Trainer::new(cfg, device)?;
    let mut notes = Vec::new();
    let start = if opts.resume {
        plan_resume(cfg, &dir, opts, &mut trainer, &mut notes)?
    } else {
        Start::Fresh { clear: opts.force }
    };
    let lock = match early_lock {
        Some(lock) => lock,
        None => lock_new_folder(&dir)?,
    };
    Ok(Plan {
        cfg: cfg.clone(),
        dir,
        lock,
        trainer,
        start,
        notes,
    })
}

fn check_options(opts: &TrainOptions) -> Result<()> {
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

/// Creates a run folder that did not exist when [`plan`] began and takes its lock, refusing if
/// another process has started a run in it meanwhile.
fn lock_new_folder(dir: &RunDir) -> Result<RunLock> {
    std::fs::create_dir_all(&dir.path)
        .with_context(|| format!("cannot create run folder {}", dir.path.display()))?;
    let lock = RunLock::acquire(&dir.path)?;
    dir.check_new_run(false)?;
    Ok(lock)
}

/// The resume half of [`plan`]: the checkpoint is loaded, its recipe compared with `cfg`,
/// its tensors restored into `tr`, and the curves read up to its iteration.
fn plan_resume(
    cfg: &Config,
    dir: &RunDir,
    opts: &TrainOptions,
    tr: &mut Trainer,
    notes: &mut Vec<String>,
) -> Result<Start> {
    if !dir.checkpoint().exists() {
        // Rows before a first checkpoint are recomputed identically; finished records are not.
        let records: Vec<&str> = [rundir::SUMMARY_FILE, rundir::EVAL_FILE, CHANGES_FILE]
            .into_iter()
            .filter(|f| dir.path.join(f).exists())
            .collect();
        if !records.is_empty() {
            bail!(
                "cannot resume {}: it holds {} but no checkpoint {} to continue from; start over \
                 with --force (deletes them) or choose another folder with --out",
                dir.path.display(),
                records.join(", "),
                rundir::CHECKPOINT_FILE
            );
        }
        notes.push(format!(
            "no checkpoint in {} yet: starting from iteration 0",
            dir.path.display()
        ));
        return Ok(Start::Fresh { clear: true });
    }
    let ck = rundir::load_checkpoint(&dir.checkpoint())?;
    let recorded = recorded_recipe(&ck, dir, notes)?;
    check_seed(cfg, &ck)?;
    check_length(cfg, &ck)?;
    let changes = recorded.recipe_changes(cfg);
    check_changes(&changes, opts, &recorded, cfg, &ck)?;
    tr.restore(&ck, &dir.config())?;
    let curves =
        CurvesWriter::check_resume_at(&dir.curves(), ck.state.iteration, ck.state.last_row)?;
    notes.push(format!(
        "resuming {} at iteration {}",
        dir.path.display(),
        ck.state.iteration
    ));
    for c in &changes {
        notes.push(format!(
            "from iteration {}: {c} (recorded in {})",
            ck.state.iteration,
            dir.changes().display()
        ));
    }
    Ok(Start::Resume(Box::new(Resume {
        state: ck.state,
        curves,
        changes,
    })))
}

/// The recipe the checkpoint was trained with: its embedded config, or for a checkpoint written
/// before configs were embedded, the `config.toml` beside it (with a note saying so).
fn recorded_recipe(ck: &Checkpoint, dir: &RunDir, notes: &mut Vec<String>) -> Result<Config> {
    if let Some(c) = &ck.config {
        return Ok(c.clone());
    }
    let c = Config::load(&dir.config()).with_context(|| {
        format!(
            "checkpoint {} has no embedded config (an older checkpoint) and the run's config \
             cannot be read",
            ck.path.display()
        )
    })?;
    notes.push(format!(
        "note: checkpoint {} has no embedded config (written by an earlier version); its recipe \
         is taken from {} (the next checkpoint embeds it)",
        ck.path.display(),
        dir.config().display()
    ));
    Ok(c)
}

fn check_seed(cfg: &Config, ck: &Checkpoint) -> Result<()> {
    if ck.state.seed != cfg.run.seed {
        bail!(
            "run.seed = {} but the checkpoint {} was trained with seed {}; resume with \
             --seed {} (or start over with --force)",
            cfg.run.seed,
            ck.path.display(),
            ck.state.seed,
            ck.state.seed
        );
    }
    Ok(())
}

fn check_length(cfg: &Config, ck: &Checkpoint) -> Result<()> {
    if ck.state.iteration > cfg.schedule.iterations {
        bail!(
            "the checkpoint {} is at iteration {} but schedule.iterations = {}: a run cannot \
             end before its checkpoint (to train further: --iterations N with N >= {} and \
             --change schedule.iterations)",
            ck.path.display(),
            ck.state.iteration,
            cfg.schedule.iterations,
            ck.state.iteration
        );
    }
    Ok(())
}

/// Refuses recipe changes that `opts.changes` does not name, in one line listing every
/// differing key and the way out.
fn check_changes(
    changes: &[RecipeChange],
    opts: &TrainOptions,
    recorded: &Config,
    cfg: &Config,
    ck: &Checkpoint,
) -> Result<()> {
    let refused: Vec<&RecipeChange> = changes
        .iter()
        .filter(|c| !opts.changes.contains(&c.key))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let list = refused
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let (was, is) = (describe_model(&recorded.model), describe_model(&cfg.model));
    let models = if was == is {
        String::new()
    } else {
        format!(" (checkpoint is {was}, config is {is})")
    };
    let it = ck.state.iteration;
    let way = if refused
        .iter()
        .all(|c| CHANGEABLE_ON_RESUME.contains(&c.key.as_str()))
    {
        let keys: Vec<&str> = refused.iter().map(|c| c.key.as_str()).collect();
        format!(
            "to make {} deliberately from iteration {it} on, add --change {} (recorded in {})",
            if keys.len() == 1 {
                "this change"
            } else {
                "these changes"
            },
            keys.join(","),
            CHANGES_FILE
        )
    } else {
        "another recipe is another run: start over with --force or choose another folder \
         with --out"
            .to_string()
    };
    bail!(
        "cannot resume {}: its checkpoint (iteration {it}) was trained with another recipe: \
         {list}{models}; {way}",
        ck.path.parent().unwrap_or(Path::new(".")).display()
    )
}

impl Plan {
    /// Starts the run: the first step that changes the run folder (deleting an old run's files
    /// for `--force`, recording deliberate changes, writing `config.toml`, opening `curves.csv`).
    pub fn begin(self, progress: bool) -> Result<Session> {
        let Plan {
            cfg,
            dir,
            lock,
            trainer: tr,
            start,
            notes,
        } = self;
        let (state, curves) = match start {
            Start::Fresh { clear } => {
                if clear {
                    dir.clear_old_run()?;
                }
                dir.write_config(&cfg)?;
                (
                    TrainState::initial(&cfg),
                    CurvesWriter::create(&dir.curves())?,
                )
            }
            Start::Resume(r) => {
                let Resume {
                    state,
                    curves,
                    changes,
                } = *r;
                if !changes.is_empty() {
                    record_changes(&dir, &cfg, &tr, &state, &changes)?;
                }
                dir.write_config(&cfg)?;
                (state, curves.open()?)
            }
        };
        let total = cfg.schedule.iterations;
        if progress {
            crate::out!("{}", tr.class_counts.to_text());
            crate::outln!(
                "{}: {} ({} parameters) on {}, batch {}, {} iterations ({:.1} epochs)",
                cfg.name,
                cfg.model.display_name(),
                tr.model.plan.params(),
                crate::device::describe(tr.device),
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
            _lock: lock,
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
fn record_changes(
    dir: &RunDir,
    cfg: &Config,
    tr: &Trainer,
    state: &TrainState,
    changes: &[RecipeChange],
) -> Result<()> {
    rundir::save_checkpoint(
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

/// Wall-clock bookkeeping of a session: training seconds over all sessions, and the current
/// curve interval's start and images.
struct Clock {
    session: Instant,
    base_s: f64,
    interval: Instant,
    interval_images: u64,
}

impl Clock {
    fn new(base_s: f64) -> Clock {
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

/// A run in progress (after [`Plan::begin`]): it holds the folder's lock until it is dropped.
pub struct Session {
    cfg: Config,
    dir: RunDir,
    _lock: RunLock,
    tr: Trainer,
    state: TrainState,
    curves: CurvesWriter,
    progress: Progress,
    clock: Clock,
    last_ckpt: Option<u64>,
    last_row: Option<CurveRow>,
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
            let stop = STOP.load(Ordering::SeqCst);
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
        self.curves.append(&row)?;
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
        rundir::save_checkpoint(
            &self.dir.checkpoint(),
            &self.tr.checkpoint_tensors(),
            &self.state,
            Some(&self.cfg),
        )?;
        self.last_ckpt = Some(done);
        Ok(())
    }

    /// The run's summary after `done` iterations, written to `summary.csv` unless the run was
    /// interrupted; releases the folder's lock.
    pub fn finish(self, done: u64, interrupted: bool) -> Result<RunOutcome> {
        self.progress.finish();
        let summary = self.summary(done);
        if !interrupted {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemoryFormat;

    fn tiny() -> Config {
        let mut c = Config::from_toml(
            "name = \"t\"\n[model]\nfamily = \"cifar\"\ndepth = 8\n[data]\ndataset = \"synthetic\"\n\
             [data.synthetic]\ntrain = 64\ntest = 32\nimage_size = 16\n[optimizer]\nbatch_size = 16\n\
             [run]\ndevice = \"cpu\"\nseed = 2\n",
        )
        .unwrap();
        c.schedule.iterations = 100;
        c.schedule.milestones = vec![50, 80];
        c
    }

    #[test]
    fn overrides_apply_and_revalidate() {
        let mut c = tiny();
        let o = Overrides {
            iterations: Some(60),
            seed: Some(9),
            out: Some("elsewhere".into()),
            device: Some(DeviceChoice::Cpu),
            data: Some("d".into()),
            cuda_graph: Some(false),
        };
        o.apply(&mut c).unwrap();
        assert_eq!(c.schedule.iterations, 60);
        assert_eq!(c.schedule.milestones, vec![50]);
        assert_eq!((c.run.seed, c.out_dir()), (9, PathBuf::from("elsewhere")));
        assert_eq!(c.data.path, PathBuf::from("d"));
        let e = Overrides {
            iterations: Some(0),
            ..Default::default()
        }
        .apply(&mut c)
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("schedule.iterations = 0"),
            "{e:#}"
        );
        assert!(parse_device("tpu").is_err());
        let e = resolve_config(
            Some(Path::new("a.toml")),
            Some(Path::new("runs/a")),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{e}").contains("not both"));
    }

    #[test]
    fn bf16_needs_cuda() {
        let mut c = tiny();
        c.run.precision = Precision::Bf16;
        let e = Trainer::new(&c, Device::Cpu).err().unwrap();
        assert!(format!("{e}").contains("run.precision = \"bf16\""), "{e}");
    }

    /// Channels-last (weights as strided views of the flat buffer, inputs permuted) computes the
    /// same training steps as NCHW, up to float rounding.
    #[test]
    fn channels_last_trains_like_nchw() {
        let mut a = Trainer::new(&tiny(), Device::Cpu).unwrap();
        let mut c = tiny();
        c.run.memory_format = MemoryFormat::Nhwc;
        let mut b = Trainer::new(&c, Device::Cpu).unwrap();
        // Same start whatever other threads drew from the global generator meanwhile.
        b.vs.copy(&a.vs).unwrap();
        let w = &b.vs.variables()["layer1.0.conv1.weight"];
        assert_eq!(w.stride()[1], 1, "nhwc weight strides {:?}", w.stride());
        for it in 0..3 {
            a.step(it).unwrap();
            b.step(it).unwrap();
        }
        a.drain().unwrap();
        b.drain().unwrap();
        assert_eq!(a.acc.steps, 3);
        assert!(
            (a.acc.loss_sum - b.acc.loss_sum).abs() < 1e-4 * a.acc.loss_sum.abs(),
            "{} vs {}",
            a.acc.loss_sum,
            b.acc.loss_sum
        );
        // Other kernels (and, with tests in parallel, other thread partitions) round differently;
        // three BN training steps amplify that to ~2e-4. A layout bug is far larger.
        let (va, vb) = (a.vs.variables(), b.vs.variables());
        for (n, t) in &va {
            let d = (t - &vb[n]).abs().max().double_value(&[]);
            assert!(d < 1e-3, "{n}: {d}");
        }
        let (la, ea) = a.evaluate().unwrap();
        let (lb, eb) = b.evaluate().unwrap();
        assert!(
            (la - lb).abs() < 1e-4 && (ea - eb).abs() <= 100.0 / 32.0,
            "{la} {lb} {ea} {eb}"
        );
    }

    /// A checkpoint restores parameters, BN statistics and momentum exactly, also across memory
    /// formats (NCHW checkpoint into an NHWC trainer): the next step is the same.
    #[test]
    fn checkpoint_restore_continues_identically_across_memory_formats() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Trainer::new(&tiny(), Device::Cpu).unwrap();
        for it in 0..2 {
            a.step(it).unwrap();
        }
        a.drain().unwrap();
        let state = TrainState {
            format: rundir::FORMAT_VERSION,
            iteration: 2,
            seed: 2,
            schedule: a.schedule.state.clone(),
            momentum_started: a.opt.started(),
            acc: a.acc.clone(),
            best_test_error: None,
            best_iteration: 0,
            last_test_error: None,
            last_train_error: None,
            elapsed_s: 0.0,
            last_row: None,
        };
        let path = dir.path().join("last.safetensors");
        rundir::save_checkpoint(&path, &a.checkpoint_tensors(), &state, Some(&a.cfg)).unwrap();
        let mut c = tiny();
        c.run.memory_format = MemoryFormat::Nhwc;
        let mut b = Trainer::new(&c, Device::Cpu).unwrap();
        let ck = rundir::load_checkpoint(&path).unwrap();
        b.restore(&ck, Path::new("config.toml")).unwrap();
        assert_eq!(b.acc, a.acc);
        let (va, vb) = (a.vs.variables(), b.vs.variables());
        for (n, t) in &va {
            assert!(t.equal(&vb[n]), "{n}");
        }
        a.step(2).unwrap();
        b.step(2).unwrap();
        let (va, vb) = (a.vs.variables(), b.vs.variables());
        for (n, t) in &va {
            let d = (t - &vb[n]).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{n}: {d}");
        }
        // Momentum came back too: without it the step would differ by far more.
        let m = &ck.tensors["optimizer.momentum_buffer.fc.weight"];
        assert!(m.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    #[test]
    fn step_without_drain_wraps_through_the_slots() {
        let mut c = tiny();
        c.run.log_every = 2;
        c.run.eval_every = 2;
        c.run.checkpoint_every = 2;
        let mut t = Trainer::new(&c, Device::Cpu).unwrap();
        for it in 0..5 {
            t.step(it).unwrap();
        }
        t.drain().unwrap();
        assert_eq!((t.acc.steps, t.acc.images), (5, 80));
        assert!(t.params_finite() && t.first_nonfinite.is_none());
    }
}
