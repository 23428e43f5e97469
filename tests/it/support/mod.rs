//! Shared helpers of the integration tests (cargo's tests/testsuite style: one test binary,
//! `tests/it`, a module per subject, each saying `use crate::support;`): the tiny recipe every end-to-end test trains ([`Tiny`]: a ResNet-8 on
//! 16×16 synthetic images, seconds on a CPU), the real binary, the one-line error contract,
//! bounded waits, and how a test that cannot run here says so ([`skip`], [`shared_data`],
//! [`require_cuda`]).
//!
//! # Skips that count as skips
//! A test whose requirement is missing never passes silently. Two kinds:
//! - Tests that cannot run on the CI machine at all (CUDA) or are benchmarks are
//!   `#[ignore = "needs ..."]`. Run them on purpose with `scripts/test --test it SUBJECT:: -- --ignored`
//!   (scripts/device_check.sh runs the CUDA binaries with `--include-ignored` on the GPU
//!   machine). Run on purpose where the requirement is missing, they fail ([`require_cuda`],
//!   [`shared_data`]`.expect(..)`): an ignored test is never a pass without its requirement.
//! - Tests that do run on CI when their requirement is there (the `../shared/data` archives
//!   beside the clone, the Python reference that scripts/setup-reference.sh installs) call
//!   [`skip`] and return when it is missing. `skip` prints `SKIPPED <subject>::<test>: needs ...`
//!   to stderr and appends that line to the file named by `RESNET_SKIP_LOG` (cargo captures a
//!   passing test's output, so stderr alone would be lost). `.ci/run` sets the variable and
//!   counts those lines as skipped, not passed, in its closing line.
#![allow(dead_code)]
pub mod imagenet_mini;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The variable naming the file that [`skip`] appends its lines to (set by `.ci/run`).
pub const SKIP_LOG: &str = "RESNET_SKIP_LOG";

/// Records that `test` (its function name) did not run because it `needs` something absent:
/// one line on stderr and in `$RESNET_SKIP_LOG` (see the module docs). The caller returns.
pub fn skip(test: &str, needs: &str) {
    // libtest runs each test on a thread named by its path (`subject::test`); the subject is
    // the module, as the test binary is the one `it`.
    let thread = std::thread::current();
    let name = thread.name().filter(|n| n.ends_with(test)).unwrap_or(test);
    let line = format!("SKIPPED {name}: needs {needs}\n");
    eprint!("{line}");
    if let Some(log) = std::env::var_os(SKIP_LOG) {
        // One O_APPEND write per line: lines of parallel tests do not interleave.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("{SKIP_LOG}={}: {e}", Path::new(&log).display()));
        f.write_all(line.as_bytes()).unwrap();
    }
}

/// The project's `.venv/bin/python` when it imports every module of `modules` (a Python import
/// list such as `"torch, numpy, PIL"`): the Python references' requirement, for [`skip`].
pub fn venv_python(modules: &str) -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

/// `file` of the shared data folder (`../shared/data` beside the checkout, or the folder
/// `RESNET_SHARED_DATA` names), when it is there.
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("RESNET_SHARED_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        PathBuf::from,
    );
    Some(dir.join(file)).filter(|p| p.is_file())
}

/// The first CUDA device, for an `#[ignore = "needs CUDA"]` test run on purpose: without one the
/// test fails rather than passing untested.
pub fn require_cuda() -> tch::Device {
    assert!(
        tch::Cuda::is_available(),
        "needs CUDA: this ignored test was run on purpose on a machine without a CUDA device \
         (scripts/device_check.sh runs it on the GPU machine)"
    );
    tch::Device::Cuda(0)
}

/// The tiny recipe of the end-to-end tests as a builder over its TOML text: a ResNet-8 (CIFAR
/// family) on 16×16 synthetic images (256 train, 64 test), batch 32, seed 5, one thread on the
/// CPU, no milestones; rows every 10 iterations, evaluations and checkpoints every 20. Each test
/// states only what differs. The text keeps one `key = value` per line (tests edit it with
/// `str::replace`, e.g. `depth = 8` or `batch_size = 32`).
#[derive(Clone, Debug)]
pub struct Tiny {
    name: Option<String>,
    depth: u32,
    model: String,
    synthetic: (u64, u64, u64),
    batch: u64,
    optimizer: String,
    /// `None`: no `[schedule]` section (the default schedule).
    schedule: Option<(u64, Vec<u64>)>,
    schedule_extra: String,
    seed: Option<u64>,
    threads: Option<u32>,
    device: String,
    every: (u64, u64, u64),
    eval_batch: u64,
    out: Option<PathBuf>,
    extra: String,
}

impl Default for Tiny {
    fn default() -> Self {
        Tiny {
            name: Some("tiny".into()),
            depth: 8,
            model: String::new(),
            synthetic: (256, 64, 16),
            batch: 32,
            optimizer: String::new(),
            schedule: Some((20, vec![])),
            schedule_extra: String::new(),
            seed: Some(5),
            threads: Some(1),
            device: "cpu".into(),
            every: (10, 20, 20),
            eval_batch: 64,
            out: None,
            extra: String::new(),
        }
    }
}

/// The tiny recipe with its defaults (see [`Tiny`]).
pub fn tiny() -> Tiny {
    Tiny::default()
}

impl Tiny {
    /// The run's `name` (`None`: no key, the name comes from the file).
    pub fn name(mut self, name: Option<&str>) -> Self {
        self.name = name.map(str::to_string);
        self
    }
    pub fn depth(mut self, depth: u32) -> Self {
        self.depth = depth;
        self
    }
    /// More `[model]` lines (`kind = "plain"`, `classes = 6`).
    pub fn model(mut self, lines: &str) -> Self {
        self.model += lines;
        self
    }
    /// `[data.synthetic]`: train and test images, image size.
    pub fn synthetic(mut self, train: u64, test: u64, image_size: u64) -> Self {
        self.synthetic = (train, test, image_size);
        self
    }
    pub fn batch(mut self, batch: u64) -> Self {
        self.batch = batch;
        self
    }
    /// More `[optimizer]` lines (`lr = 0.05`).
    pub fn optimizer(mut self, lines: &str) -> Self {
        self.optimizer += lines;
        self
    }
    /// `schedule.iterations`.
    pub fn iterations(mut self, n: u64) -> Self {
        let m = self.schedule.take().map(|s| s.1).unwrap_or_default();
        self.schedule = Some((n, m));
        self
    }
    /// `schedule.milestones`.
    pub fn milestones(mut self, m: &[u64]) -> Self {
        let n = self.schedule.take().map_or(20, |s| s.0);
        self.schedule = Some((n, m.to_vec()));
        self
    }
    /// No `[schedule]` section at all.
    pub fn default_schedule(mut self) -> Self {
        self.schedule = None;
        self
    }
    /// Text after the milestones, before `[run]` (`mode = "plateau"`, `[schedule.warmup]`...).
    pub fn schedule(mut self, text: &str) -> Self {
        self.schedule_extra += text;
        self
    }
    /// `run.seed` (`None`: no key, the default seed).
    pub fn seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }
    /// `run.threads` (`None`: no key, all cores).
    pub fn threads(mut self, threads: Option<u32>) -> Self {
        self.threads = threads;
        self
    }
    pub fn device(mut self, device: &str) -> Self {
        self.device = device.into();
        self
    }
    /// `run.log_every`, `run.eval_every`, `run.checkpoint_every`.
    pub fn every(mut self, log: u64, eval: u64, checkpoint: u64) -> Self {
        self.every = (log, eval, checkpoint);
        self
    }
    pub fn eval_batch(mut self, n: u64) -> Self {
        self.eval_batch = n;
        self
    }
    /// `run.out_dir` (`None` by default: `runs/<name>`).
    pub fn out(mut self, out: &Path) -> Self {
        self.out = Some(out.to_path_buf());
        self
    }
    /// Text appended at the end (inside `[run]` unless it opens a section).
    pub fn extra(mut self, text: &str) -> Self {
        self.extra += text;
        self
    }

    /// The TOML text.
    pub fn text(&self) -> String {
        let mut t = String::new();
        if let Some(n) = &self.name {
            t += &format!("name = \"{n}\"\n");
        }
        let (train, test, size) = self.synthetic;
        t += &format!(
            "[model]\nfamily = \"cifar\"\ndepth = {}\n{}[data]\ndataset = \"synthetic\"\n\
             [data.synthetic]\ntrain = {train}\ntest = {test}\nimage_size = {size}\n\
             [optimizer]\nbatch_size = {}\n{}",
            self.depth, self.model, self.batch, self.optimizer
        );
        if let Some((n, m)) = &self.schedule {
            let m: Vec<String> = m.iter().map(u64::to_string).collect();
            t += &format!(
                "[schedule]\niterations = {n}\nmilestones = [{}]\n",
                m.join(", ")
            );
        }
        t += &self.schedule_extra;
        t += "[run]\n";
        if let Some(s) = self.seed {
            t += &format!("seed = {s}\n");
        }
        if let Some(n) = self.threads {
            t += &format!("threads = {n}\n");
        }
        let (log, eval, ck) = self.every;
        t += &format!(
            "device = \"{}\"\nlog_every = {log}\neval_every = {eval}\ncheckpoint_every = {ck}\n\
             eval_batch_size = {}\n",
            self.device, self.eval_batch
        );
        if let Some(o) = &self.out {
            t += &format!("out_dir = \"{}\"\n", o.display());
        }
        t + &self.extra
    }

    /// The parsed and validated config.
    pub fn config(&self) -> resnet::config::Config {
        let c = resnet::config::Config::from_toml(&self.text()).unwrap();
        c.validate().unwrap();
        c
    }

    /// Writes `dir/name.toml` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        write_config(dir, name, &self.text())
    }
}

/// The tiny recipe (see [`Tiny`]) training `iterations` into `out`; `extra` is appended (inside
/// `[run]` unless it opens a section).
pub fn config_text(out: &Path, iterations: u64, extra: &str) -> String {
    tiny().iterations(iterations).out(out).extra(extra).text()
}

/// Copies the folder `from` (files and subfolders) to `to`: a test that changes a shared
/// fixture's run changes its own copy.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A `w`×`h` PNG whose pixels depend on `seed` (distinct images for distinct seeds).
pub fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([seed, (x * 7) as u8, (y * 3) as u8])
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

/// Writes `root/name.toml` and returns its path.
pub fn write_config(root: &Path, name: &str, text: &str) -> PathBuf {
    let p = root.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// The binary with piped output.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_resnet"));
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs the binary to its end.
pub fn resnet<S: AsRef<OsStr>>(args: &[S]) -> Output {
    bin().args(args).output().unwrap()
}

/// Trains `root/name` (`iterations`, the tiny recipe) to its end and returns the run folder.
pub fn trained(root: &Path, name: &str, iterations: u64, extra: &str) -> PathBuf {
    let out = root.join(name);
    let cfg = write_config(root, name, &config_text(&out, iterations, extra));
    let o = resnet(&[OsStr::new("train"), OsStr::new("--config"), cfg.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Text of stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A refusal: exit 1, no panic or abort, one `error:` line (the last of stderr) containing every
/// `wanted` text. Returns that line.
pub fn refused(o: &Output, wanted: &[&str]) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {e}");
    for bad in [
        "panicked",
        "memory allocation",
        "RUST_BACKTRACE",
        "core dumped",
    ] {
        assert!(!e.contains(bad), "{bad}: {e}");
    }
    let lines: Vec<&str> = e.trim_end().lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error")).count(),
        1,
        "one error line: {e}"
    );
    let last = lines.last().copied().unwrap_or_default();
    assert!(last.starts_with("error: "), "{e}");
    for w in wanted {
        assert!(last.contains(w), "missing {w:?} in: {last}");
    }
    last.to_string()
}

/// Waits for `child` at most `limit`; kills it and fails the test when it is still running.
pub fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Curve rows (header excluded) written so far.
pub fn curve_rows(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("curves.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Waits until the run has a checkpoint and `rows` curve rows; fails when it ends first.
pub fn wait_for_rows(dir: &Path, child: &mut Child, rows: usize) {
    let t0 = Instant::now();
    while !(dir.join("last.safetensors").exists() && curve_rows(dir) >= rows) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before {rows} rows"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no {rows} rows in 120 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends SIG`name` (`TERM`, `HUP`, ...) to `pid` with kill(1).
pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid}");
}
