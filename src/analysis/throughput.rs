//! `resnet bench`: training and evaluation throughput of the §4.2 CIFAR-10 recipe (batch 128,
//! SGD), for comparing our libtorch training loop with PyTorch scripts on the same machine.
//!
//! One measurement is a [`BenchRecord`], printed as a readable line and as one CSV row whose
//! format `scripts/reference/bench.py` shares ([`CSV_HEADER`]). [`summarize`] reads such rows back
//! (from `scripts/bench_compare.sh`, which runs ours and the references alternately) and makes
//! the table of medians and of the ratios ours/typical and ours/careful.
//!
//! [`run`] measures the real training step ([`Trainer::step`]: data, forward, loss, backward,
//! flat SGD, device-side loss/error slots) exactly as `resnet train` runs it, with the config's
//! `run.device`, `run.precision`, `run.memory_format`, `run.threads` and `run.cuda_graph`. Our
//! batches are produced inline by the step (no loader thread to wait on), so the data share is
//! the time to produce the same batches alone (eagerly) over the time of the steps.
//!
//! On CUDA `resnet bench` times both steps by default ([`StepMode`], [`variants`]): the eager one
//! (`impl` = `ours`) and the CUDA-graph one (`ours+graph`), each in its own trainer.
use crate::config::{Config, DeviceChoice, MemoryFormat, Precision};
use crate::present::csvline;
use crate::present::table::Table;
use crate::sys::device;
use crate::train::Trainer;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use tch::nn::ModuleT;
use tch::{Device, Kind};

/// Column names of one benchmark row, shared with `scripts/reference/bench.py`.
pub const CSV_HEADER: &str = "impl,model,device,threads,precision,memory_format,batch,iters,\
train_images_per_s,data_wait_frac,eval_images_per_s";

/// Which of our training steps `resnet bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepMode {
    /// Eager tensor work (`run.cuda_graph = false`).
    Eager,
    /// The step as one CUDA graph (`run.cuda_graph = true`).
    Graph,
    /// Eager, then graph, each in its own trainer.
    Both,
}

impl StepMode {
    /// `--graph` values: `off`, `on`, `both`, or `auto` (both where the config runs on CUDA,
    /// eager elsewhere).
    pub fn parse(s: &str, cfg: &Config) -> Result<StepMode> {
        Ok(match s {
            "off" => StepMode::Eager,
            "on" => StepMode::Graph,
            "both" => StepMode::Both,
            "auto" => {
                let cuda =
                    cfg.run.device != crate::config::DeviceChoice::Cpu && tch::Cuda::is_available();
                if cfg.run.cuda_graph {
                    StepMode::Graph
                } else if cuda {
                    StepMode::Both
                } else {
                    StepMode::Eager
                }
            }
            other => bail!("--graph {other}: allowed values are auto, off, on, both"),
        })
    }
}

/// The configs `mode` times, each with its `impl` label: `label` for the eager step,
/// `label+graph` for the CUDA-graph step.
pub fn variants(cfg: &Config, mode: StepMode, label: &str) -> Vec<(Config, String)> {
    let with = |graph: bool| {
        let mut c = cfg.clone();
        c.run.cuda_graph = graph;
        let l = if graph {
            format!("{label}+graph")
        } else {
            label.to_string()
        };
        (c, l)
    };
    match mode {
        StepMode::Eager => vec![with(false)],
        StepMode::Graph => vec![with(true)],
        StepMode::Both => vec![with(false), with(true)],
    }
}

/// One benchmark measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRecord {
    /// Which implementation: `ours`, `typical`, `careful` (optionally with `+option` suffixes).
    pub implementation: String,
    /// `ModelConfig::display_name()`, e.g. `resnet20`.
    pub model: String,
    /// `cpu` or `cuda`.
    pub device: String,
    /// Intra-op CPU threads.
    pub threads: usize,
    /// `fp32` or `bf16`.
    pub precision: String,
    /// `nchw` or `nhwc`.
    pub memory_format: String,
    pub batch: usize,
    /// Timed training iterations (after the warm-up).
    pub iters: u64,
    /// Steady-state training throughput.
    pub train_images_per_s: f64,
    /// Share of the training time spent producing or waiting for the next batch (0-1).
    pub data_wait_frac: f64,
    /// Evaluation (inference) throughput; NaN when not measured.
    pub eval_images_per_s: f64,
}

fn fmt_f(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        "nan".into()
    } else {
        format!("{x:.decimals$}")
    }
}

impl BenchRecord {
    /// The CSV row (no header, no newline), in [`CSV_HEADER`]'s order.
    pub fn to_csv_line(&self) -> String {
        csvline::write([
            self.implementation.clone(),
            self.model.clone(),
            self.device.clone(),
            self.threads.to_string(),
            self.precision.clone(),
            self.memory_format.clone(),
            self.batch.to_string(),
            self.iters.to_string(),
            fmt_f(self.train_images_per_s, 2),
            fmt_f(self.data_wait_frac, 4),
            fmt_f(self.eval_images_per_s, 2),
        ])
    }

    /// Parses a row written by [`BenchRecord::to_csv_line`] or by the Python reference.
    pub fn parse_csv_line(line: &str) -> Result<BenchRecord> {
        let row = line.trim();
        let f = csvline::read(row).with_context(|| format!("benchmark row `{row}`"))?;
        let names = csvline::read(CSV_HEADER)?;
        if f.len() != names.len() {
            bail!(
                "benchmark row `{row}` has {} fields; expected {}: {CSV_HEADER}",
                f.len(),
                names.len()
            );
        }
        let bad = |i: usize, what: &str| {
            format!(
                "benchmark row `{row}`: {} = `{}` is not {what}",
                names[i], f[i]
            )
        };
        let num =
            |i: usize| -> Result<f64> { f[i].parse::<f64>().with_context(|| bad(i, "a number")) };
        let int = |i: usize| -> Result<u64> {
            f[i].parse::<u64>()
                .with_context(|| bad(i, "a whole number"))
        };
        Ok(BenchRecord {
            implementation: f[0].clone(),
            model: f[1].clone(),
            device: f[2].clone(),
            threads: int(3)? as usize,
            precision: f[4].clone(),
            memory_format: f[5].clone(),
            batch: int(6)? as usize,
            iters: int(7)?,
            train_images_per_s: num(8)?,
            data_wait_frac: num(9)?,
            eval_images_per_s: num(10)?,
        })
    }

    /// One readable line for the terminal.
    pub fn to_text(&self) -> String {
        format!(
            "{}: {} on {} ({} threads), {}/{}, batch {}: train {} images/s over {} iterations \
             ({}% waiting for data), eval {} images/s",
            self.implementation,
            self.model,
            self.device,
            self.threads,
            self.precision,
            self.memory_format,
            self.batch,
            fmt_f(self.train_images_per_s, 1),
            self.iters,
            fmt_f(100.0 * self.data_wait_frac, 1),
            fmt_f(self.eval_images_per_s, 1),
        )
    }
}

/// Reads benchmark rows from CSV text: header lines (starting with `impl,`) and blank lines are
/// skipped; any other line must be a row. Errors name the line number.
pub fn parse_rows(text: &str) -> Result<Vec<BenchRecord>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with("impl,"))
        .map(|(i, l)| BenchRecord::parse_csv_line(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// Median of the finite values (mean of the middle two for an even count); NaN if none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// `a / b`, NaN when either is missing or `b` is not positive.
pub fn ratio(a: f64, b: f64) -> f64 {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// Medians of one implementation on one setup.
#[derive(Debug, Clone, PartialEq)]
pub struct Medians {
    pub runs: usize,
    pub train_images_per_s: f64,
    pub data_wait_frac: f64,
    pub eval_images_per_s: f64,
}

/// The comparison setup a row belongs to: model, device, threads, batch.
pub type SetupKey = (String, String, usize, usize);

/// An implementation in one variant: (implementation, precision, memory_format).
pub type VariantKey = (String, String, String);

/// Groups rows by setup and implementation variant and takes the medians of each group.
pub fn medians(rows: &[BenchRecord]) -> BTreeMap<SetupKey, BTreeMap<VariantKey, Medians>> {
    let mut groups: BTreeMap<SetupKey, BTreeMap<VariantKey, Vec<&BenchRecord>>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.model.clone(), r.device.clone(), r.threads, r.batch))
            .or_default()
            .entry((
                r.implementation.clone(),
                r.precision.clone(),
                r.memory_format.clone(),
            ))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|(k, by_impl)| {
            let m = by_impl
                .into_iter()
                .map(|(name, rs)| {
                    let col = |f: fn(&BenchRecord) -> f64| {
                        median(&rs.iter().map(|r| f(r)).collect::<Vec<_>>())
                    };
                    let med = Medians {
                        runs: rs.len(),
                        train_images_per_s: col(|r| r.train_images_per_s),
                        data_wait_frac: col(|r| r.data_wait_frac),
                        eval_images_per_s: col(|r| r.eval_images_per_s),
                    };
                    (name, med)
                })
                .collect();
            (k, m)
        })
        .collect()
}

/// Whether an `impl` name is one of our variants (`ours`, `ours+graph`, ...).
pub fn is_ours(implementation: &str) -> bool {
    implementation == "ours" || implementation.starts_with("ours+")
}

/// The comparison table: one row per setup and implementation variant with its medians, and for
/// every variant but the base the ratios base/that (training and evaluation images/s) on the
/// same setup (model, device, threads, batch). The base is our fastest variant there (by median
/// training images/s: `ours+graph` when it was measured and is faster than `ours`); ratios above
/// 1 mean ours is faster. Our variants come first, then the references in name order.
pub fn summarize(rows: &[BenchRecord]) -> Table {
    let mut t = Table::new([
        "model",
        "device",
        "threads",
        "impl",
        "precision",
        "runs",
        "train_img_s",
        "data_wait_%",
        "eval_img_s",
        "ours/this_train",
        "ours/this_eval",
    ]);
    for ((model, device, threads, _batch), by_impl) in medians(rows) {
        let base = by_impl
            .iter()
            .filter(|(k, _)| is_ours(&k.0))
            .max_by(|a, b| a.1.train_images_per_s.total_cmp(&b.1.train_images_per_s))
            .map(|(k, m)| (k.clone(), m));
        let mut keys: Vec<&VariantKey> = by_impl.keys().collect();
        keys.sort_by_key(|k| (!is_ours(&k.0), (*k).clone()));
        for key in keys {
            let m = &by_impl[key];
            let (rt, re) = match &base {
                Some((bk, o)) if bk != key => (
                    fmt_f(ratio(o.train_images_per_s, m.train_images_per_s), 2),
                    fmt_f(ratio(o.eval_images_per_s, m.eval_images_per_s), 2),
                ),
                _ => (String::new(), String::new()),
            };
            t.push(vec![
                model.clone(),
                device.clone(),
                threads.to_string(),
                key.0.clone(),
                format!("{}/{}", key.1, key.2),
                m.runs.to_string(),
                fmt_f(m.train_images_per_s, 1),
                fmt_f(100.0 * m.data_wait_frac, 1),
                fmt_f(m.eval_images_per_s, 1),
                rt,
                re,
            ]);
        }
    }
    t
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Timed training iterations.
    pub iters: u64,
    /// Untimed iterations first (allocator, cuDNN autotuning, caches).
    pub warmup: u64,
    /// Test images to time the evaluation on (whole batches of `run.eval_batch_size`, at most
    /// the split); at least 1.
    pub eval_images: usize,
    /// Also time the phases of a step separately ([`PhaseTimes`]).
    pub profile: bool,
    /// `impl` column of the row.
    pub label: String,
}

/// Milliseconds per step of each phase, each phase ended by a device sync (so on CUDA the sum
/// exceeds a normal step, which never syncs).
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseTimes {
    pub data_ms: f64,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
}

impl PhaseTimes {
    pub fn total_ms(&self) -> f64 {
        self.data_ms + self.forward_ms + self.backward_ms + self.optimizer_ms
    }

    pub fn to_text(&self) -> String {
        format!(
            "profile (ms/step): data {:.1}, forward {:.1}, backward {:.1}, optimizer {:.1}, total {:.1}",
            self.data_ms,
            self.forward_ms,
            self.backward_ms,
            self.optimizer_ms,
            self.total_ms()
        )
    }
}

/// A measurement and where it ran.
#[derive(Debug, Clone)]
pub struct BenchOutcome {
    pub record: BenchRecord,
    /// e.g. `cpu (2 threads)`, `cuda:0`.
    pub device: String,
    /// Name of the data the batches came from (`data.dataset`).
    pub data: String,
    pub profile: Option<PhaseTimes>,
    /// Host time to submit one step (no sync; over a few steps right after a drain) and the
    /// wall time of a step in the timed loop: host ≈ wall means the host (launches) bounds the
    /// step, host ≪ wall means the device does.
    pub host_ms_per_step: f64,
    pub wall_ms_per_step: f64,
}

impl BenchOutcome {
    /// One line on what bounds the step (see `host_ms_per_step`).
    pub fn bound_text(&self) -> String {
        let bound = if self.record.device == "cpu" {
            "on the CPU the host computes everything"
        } else if self.host_ms_per_step >= 0.8 * self.wall_ms_per_step {
            "the host (launching) bounds the step"
        } else {
            "the device bounds the step"
        };
        format!(
            "{}: host submits a step in {:.3} ms, a step takes {:.3} ms: {bound}",
            self.record.implementation, self.host_ms_per_step, self.wall_ms_per_step
        )
    }
}

/// Measures training and evaluation throughput of the run `cfg` describes (no run folder is
/// written). See the module doc for what is timed.
pub fn run(cfg: &Config, opts: &BenchOptions) -> Result<BenchOutcome> {
    validate(cfg, opts)?;
    let dev = device::select(&cfg.run)?;
    crate::run::budget::check(cfg, dev)?;
    let mut tr = Trainer::new(cfg, dev)?;
    let bs = cfg.optimizer.batch_size;
    warm_up(&mut tr, cfg, opts.warmup, dev)?;
    let (first, end) = (opts.warmup, opts.warmup + opts.iters);
    let train_s = time_train_steps(&mut tr, first..end, dev)?;
    let data_s = time_data_alone(&mut tr, first..end, bs, dev)?;
    let host_ms_per_step = host_submission_ms(&mut tr, end, dev)?;
    let eval_images_per_s = eval_throughput(&mut tr, opts.eval_images, dev)?;
    let profile = if opts.profile {
        Some(profile_phases(&mut tr, end..end + opts.iters, dev)?)
    } else {
        None
    };
    let record = BenchRecord {
        train_images_per_s: (opts.iters as f64 * bs as f64) / train_s,
        data_wait_frac: (data_s / train_s).min(1.0),
        eval_images_per_s,
        ..record_of(cfg, &opts.label, opts.iters, dev)
    };
    Ok(BenchOutcome {
        record,
        device: device::describe(dev),
        data: format!("{:?}", cfg.data.dataset).to_lowercase(),
        profile,
        host_ms_per_step,
        wall_ms_per_step: 1e3 * train_s / opts.iters as f64,
    })
}

/// The row of a measurement of `cfg` on `dev` labelled `label`, its figures not yet measured
/// (NaN).
pub(crate) fn record_of(cfg: &Config, label: &str, iters: u64, dev: Device) -> BenchRecord {
    BenchRecord {
        implementation: label.to_string(),
        model: cfg.model.display_name(),
        device: if dev.is_cuda() { "cuda" } else { "cpu" }.into(),
        threads: tch::get_num_threads() as usize,
        precision: match cfg.run.precision {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
        .into(),
        memory_format: match cfg.run.memory_format {
            MemoryFormat::Nchw => "nchw",
            MemoryFormat::Nhwc => "nhwc",
        }
        .into(),
        batch: cfg.optimizer.batch_size,
        iters,
        train_images_per_s: f64::NAN,
        data_wait_frac: f64::NAN,
        eval_images_per_s: f64::NAN,
    }
}

/// The options and config, checked before any model is built.
pub(crate) fn validate(cfg: &Config, opts: &BenchOptions) -> Result<()> {
    if opts.iters == 0 {
        bail!("--iters 0: need at least one timed iteration");
    }
    if opts.eval_images == 0 {
        bail!("--eval-images 0: need at least one test image to time");
    }
    cfg.validate()?;
    let eager_steps = crate::train::GRAPH_WARMUP_STEPS as u64;
    if cfg.run.cuda_graph && opts.warmup <= eager_steps {
        bail!(
            "--warmup {}: with run.cuda_graph the first {eager_steps} steps are eager and the next \
             one is captured; use --warmup {} or more so that only replays are timed",
            opts.warmup,
            eager_steps + 1
        );
    }
    Ok(())
}

/// The untimed steps (with run.cuda_graph: the eager steps and the capture), then a drain.
pub(crate) fn warm_up(tr: &mut Trainer, cfg: &Config, warmup: u64, dev: Device) -> Result<()> {
    for it in 0..warmup {
        tr.step(it)?;
    }
    if cfg.run.cuda_graph && !tr.graph_captured() {
        bail!("run.cuda_graph: the step was not captured during the warm-up");
    }
    tr.drain()?;
    device::synchronize(dev);
    Ok(())
}

/// Seconds for the timed training steps `its`, refusing a run whose loss went non-finite. A
/// data-parallel trainer (`resnet bench --nproc`) also makes `resnet train`'s stop agreement
/// after each step.
pub(crate) fn time_train_steps(
    tr: &mut Trainer,
    its: std::ops::Range<u64>,
    dev: Device,
) -> Result<f64> {
    let t0 = Instant::now();
    for it in its {
        tr.step(it)?;
        if let Some(g) = tr.group() {
            crate::train::dist::any_rank(g, false)?;
        }
    }
    tr.drain()?;
    device::synchronize(dev);
    let train_s = t0.elapsed().as_secs_f64();
    if let Some(it) = tr.first_nonfinite {
        bail!("the training loss became NaN or infinite at iteration {it}: the timing is not of a sane run");
    }
    Ok(train_s)
}

/// Seconds to produce the same batches again alone (no model).
fn time_data_alone(
    tr: &mut Trainer,
    its: std::ops::Range<u64>,
    bs: usize,
    dev: Device,
) -> Result<f64> {
    let t0 = Instant::now();
    for it in its {
        let b = tr.data.train_batch(it, bs)?;
        drop(tr.mode.prepare(b.images));
    }
    device::synchronize(dev);
    Ok(t0.elapsed().as_secs_f64())
}

/// The config of `resnet bench`: the file, with `--device` and `--threads` applied.
pub fn load_config(
    path: &Path,
    device: Option<DeviceChoice>,
    threads: Option<usize>,
) -> Result<Config> {
    let mut cfg = Config::load(path)?;
    if let Some(d) = device {
        cfg.run.device = d;
    }
    if let Some(t) = threads {
        cfg.run.threads = t;
    }
    cfg.validate()
        .context("after applying the command-line flags")?;
    Ok(cfg)
}

/// Appends `record` to the CSV file at `path` (header first when the file is new or empty).
pub fn append_csv(path: &Path, record: &BenchRecord) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    let fresh = std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {} for appending", path.display()))?;
    let mut text = String::new();
    if fresh {
        text += CSV_HEADER;
        text.push('\n');
    }
    text += &record.to_csv_line();
    text.push('\n');
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads the benchmark rows of a CSV file (as [`parse_rows`]).
/// At most 64 MiB are read (`/dev/zero` is refused, not read without end).
pub fn read_csv(path: &Path) -> Result<Vec<BenchRecord>> {
    let text = crate::sys::atomic::read_capped(path, 64 << 20)?;
    let rows = parse_rows(&text).with_context(|| format!("in {}", path.display()))?;
    if rows.is_empty() {
        bail!("{} holds no benchmark rows", path.display());
    }
    Ok(rows)
}

/// Evaluation images/s: the forward pass of `eval::evaluate` (eval mode, no grad, the config's
/// precision and layout) over the first `limit` test images, after one untimed batch.
fn eval_throughput(tr: &mut Trainer, limit: usize, dev: Device) -> Result<f64> {
    let _guard = tch::no_grad_guard();
    let ebs = tr.cfg.run.eval_batch_size;
    let (model, mode) = (&tr.model, tr.mode);
    let mut batches = tr.data.eval_batches(ebs)?;
    if let Some(b) = batches.next() {
        let x = mode.prepare(b?.images);
        drop(mode.run(|| model.forward_t(&x, false)));
    }
    drop(batches);
    device::synchronize(dev);
    let t0 = Instant::now();
    let mut n = 0usize;
    for b in tr.data.eval_batches(ebs)? {
        if n >= limit {
            break;
        }
        let b = b?;
        n += b.labels.size()[0] as usize;
        let x = mode.prepare(b.images);
        let pred = mode
            .run(|| model.forward_t(&x, false))
            .argmax(1, false)
            .ne_tensor(&b.labels)
            .sum(Kind::Int64);
        drop(pred);
    }
    device::synchronize(dev);
    if n == 0 {
        bail!("the evaluation split is empty: nothing to time");
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// Host milliseconds to submit one step: a few steps (fewer than the metric slots, so no drain
/// and no sync among them) right after a sync, timed before the closing sync.
fn host_submission_ms(tr: &mut Trainer, first: u64, dev: Device) -> Result<f64> {
    tr.drain()?;
    device::synchronize(dev);
    let n = (tr.cfg.run.log_every.clamp(1, 4096) - 1).clamp(1, 50);
    let t0 = Instant::now();
    for it in first..first + n {
        tr.step(it)?;
    }
    let host = t0.elapsed().as_secs_f64();
    tr.drain()?;
    device::synchronize(dev);
    Ok(1e3 * host / n as f64)
}

/// The ops of [`Trainer::step`], phase by phase, each phase ended by a sync.
fn profile_phases(tr: &mut Trainer, its: std::ops::Range<u64>, dev: Device) -> Result<PhaseTimes> {
    let bs = tr.cfg.optimizer.batch_size;
    let mut t = [0f64; 4];
    let n = its.end - its.start;
    for it in its {
        let t0 = Instant::now();
        let b = tr.data.train_batch(it, bs)?;
        let x = tr.mode.prepare(b.images);
        device::synchronize(dev);
        let t1 = Instant::now();
        let (model, mode) = (&tr.model, tr.mode);
        let loss = mode.run(|| {
            model
                .forward_t(&x, true)
                .to_kind(Kind::Float)
                .cross_entropy_for_logits(&b.labels)
        });
        device::synchronize(dev);
        let t2 = Instant::now();
        loss.backward();
        device::synchronize(dev);
        let t3 = Instant::now();
        tr.opt.step();
        device::synchronize(dev);
        let t4 = Instant::now();
        for (acc, d) in t.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            *acc += d.as_secs_f64();
        }
    }
    let ms = |s: f64| 1000.0 * s / n as f64;
    Ok(PhaseTimes {
        data_ms: ms(t[0]),
        forward_ms: ms(t[1]),
        backward_ms: ms(t[2]),
        optimizer_ms: ms(t[3]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(implementation: &str, model: &str, train: f64, eval: f64) -> BenchRecord {
        BenchRecord {
            implementation: implementation.into(),
            model: model.into(),
            device: "cpu".into(),
            threads: 2,
            precision: "fp32".into(),
            memory_format: "nchw".into(),
            batch: 128,
            iters: 30,
            train_images_per_s: train,
            data_wait_frac: 0.0125,
            eval_images_per_s: eval,
        }
    }

    #[test]
    fn csv_line_round_trips_and_matches_the_header() {
        let r = rec("ours", "resnet20", 371.256, 1234.5);
        let line = r.to_csv_line();
        assert_eq!(
            line,
            "ours,resnet20,cpu,2,fp32,nchw,128,30,371.26,0.0125,1234.50"
        );
        assert_eq!(
            csvline::read(&line).unwrap().len(),
            csvline::read(CSV_HEADER).unwrap().len()
        );
        let back = BenchRecord::parse_csv_line(&line).unwrap();
        assert_eq!(back.train_images_per_s, 371.26);
        assert_eq!(
            BenchRecord {
                train_images_per_s: 371.256,
                ..back
            },
            r
        );
    }

    #[test]
    fn parses_the_python_references_row_with_nan_eval() {
        // A row as scripts/reference/bench.py prints it with --eval-images 0.
        let r = BenchRecord::parse_csv_line(
            "careful,resnet56,cpu,2,fp32,nchw,128,10,365.06,0.0091,nan\n",
        )
        .unwrap();
        assert_eq!(r.implementation, "careful");
        assert_eq!(r.iters, 10);
        assert!(r.eval_images_per_s.is_nan());
        assert_eq!(
            rec("x", "m", 1.0, f64::NAN)
                .to_csv_line()
                .rsplit(',')
                .next(),
            Some("nan")
        );
    }

    #[test]
    fn bad_rows_name_the_field_and_line() {
        let e = BenchRecord::parse_csv_line("ours,resnet20,cpu").unwrap_err();
        assert!(format!("{e:#}").contains("3 fields; expected 11"), "{e:#}");
        let e = parse_rows(&format!(
            "{CSV_HEADER}\nours,resnet20,cpu,two,fp32,nchw,128,30,1,0,1\n"
        ))
        .unwrap_err();
        let s = format!("{e:#}");
        assert!(s.contains("line 2") && s.contains("threads = `two`"), "{s}");
    }

    #[test]
    fn median_of_odd_even_and_missing() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ratio_guards_missing_values() {
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert!(ratio(1.0, 0.0).is_nan());
        assert!(ratio(f64::NAN, 2.0).is_nan());
    }

    #[test]
    fn summary_takes_medians_per_setup_and_ratios_against_ours() {
        let rows = vec![
            rec("ours", "resnet20", 400.0, 1000.0),
            rec("typical", "resnet20", 300.0, 800.0),
            rec("careful", "resnet20", 380.0, 900.0),
            rec("ours", "resnet20", 420.0, 1100.0),
            rec("typical", "resnet20", 320.0, 700.0),
            rec("careful", "resnet20", 360.0, 1000.0),
            rec("ours", "resnet20", 380.0, 1050.0),
            rec("typical", "resnet20", 200.0, 750.0),
            rec("careful", "resnet20", 400.0, 950.0),
            rec("careful", "resnet56", 100.0, f64::NAN),
        ];
        let t = summarize(&rows);
        let cells: Vec<Vec<&str>> = t
            .rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        // resnet20: ours median 400 / eval 1050; careful 380 / 950; typical 300 / 750.
        assert_eq!(
            cells[0],
            [
                "resnet20",
                "cpu",
                "2",
                "ours",
                "fp32/nchw",
                "3",
                "400.0",
                "1.2",
                "1050.0",
                "",
                ""
            ]
        );
        assert_eq!(
            cells[1],
            [
                "resnet20",
                "cpu",
                "2",
                "careful",
                "fp32/nchw",
                "3",
                "380.0",
                "1.2",
                "950.0",
                "1.05",
                "1.11"
            ]
        );
        assert_eq!(
            cells[2],
            [
                "resnet20",
                "cpu",
                "2",
                "typical",
                "fp32/nchw",
                "3",
                "300.0",
                "1.2",
                "750.0",
                "1.33",
                "1.40"
            ]
        );
        // No `ours` row for resnet56: no ratios.
        assert_eq!(
            cells[3],
            [
                "resnet56",
                "cpu",
                "2",
                "careful",
                "fp32/nchw",
                "1",
                "100.0",
                "1.2",
                "nan",
                "",
                ""
            ]
        );
        assert_eq!(cells.len(), 4);
    }

    /// With `ours` and `ours+graph` on one setup, the faster one is the base of every ratio,
    /// the other variant of ours included.
    #[test]
    fn the_fastest_of_our_variants_is_the_base() {
        let rows = vec![
            rec("ours", "resnet20", 16_000.0, 50_000.0),
            rec("ours+graph", "resnet20", 40_000.0, 50_000.0),
            rec("best", "resnet20", 20_000.0, 40_000.0),
        ];
        let t = summarize(&rows);
        let by_impl = |name: &str| t.rows.iter().find(|r| r[3] == name).unwrap().clone();
        assert_eq!(t.rows[0][3], "ours");
        assert_eq!(t.rows[1][3], "ours+graph");
        assert_eq!(t.rows[2][3], "best");
        assert_eq!(by_impl("ours+graph")[9], "");
        assert_eq!(by_impl("ours")[9], "2.50");
        assert_eq!(by_impl("best")[9], "2.00");
        assert_eq!(by_impl("best")[10], "1.25");
        assert!(is_ours("ours+graph") && !is_ours("oursish") && !is_ours("best"));
    }

    #[test]
    fn step_modes_and_their_variants() {
        let mut cfg = Config::from_toml("[model]\nfamily = \"cifar\"\ndepth = 20\n").unwrap();
        cfg.run.device = crate::config::DeviceChoice::Cpu;
        assert_eq!(StepMode::parse("auto", &cfg).unwrap(), StepMode::Eager);
        assert_eq!(StepMode::parse("both", &cfg).unwrap(), StepMode::Both);
        assert!(format!("{}", StepMode::parse("maybe", &cfg).unwrap_err())
            .contains("auto, off, on, both"));
        let v = variants(&cfg, StepMode::Both, "ours");
        let labels: Vec<&str> = v.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["ours", "ours+graph"]);
        assert!(!v[0].0.run.cuda_graph && v[1].0.run.cuda_graph);
        cfg.run.cuda_graph = true;
        assert_eq!(StepMode::parse("auto", &cfg).unwrap(), StepMode::Graph);
    }
}
