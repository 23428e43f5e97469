//! Shared helpers of the reliability suites (issue 19): a tiny synthetic run (ResNet-8 on 16×16
//! images, seconds on a CPU), the real binary, the one-line error contract and bounded waits.
#![allow(dead_code)]
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A ResNet-8 on 16×16 synthetic images, batch 32, one thread; rows every 10 iterations,
/// evaluations and checkpoints every 20; `extra` is appended (inside `[run]` unless it opens a
/// section).
pub fn config_text(out: &Path, iterations: u64, extra: &str) -> String {
    format!(
        r#"name = "tiny"
[model]
family = "cifar"
depth = 8
[data]
dataset = "synthetic"
[data.synthetic]
train = 256
test = 64
image_size = 16
[optimizer]
batch_size = 32
[schedule]
iterations = {iterations}
milestones = []
[run]
seed = 5
threads = 1
device = "cpu"
log_every = 10
eval_every = 20
checkpoint_every = 20
eval_batch_size = 64
out_dir = "{out}"
{extra}"#,
        out = out.display()
    )
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
