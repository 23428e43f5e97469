//! `compare --jobs N` under signals and concurrency (issue 19): a SIGTERM to the parent reaches
//! its children, which save their checkpoints before it exits, and one compare holds its `--out`
//! at a time. Real processes, real signals, the tiny synthetic recipe.
use crate::support;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::*;

/// The two grid cells of `compare plain resnet --depths 8` on the tiny recipe.
const CELLS: [&str; 2] = ["compare-tiny-plain8", "compare-tiny-resnet8"];

/// The tiny recipe, 600 iterations (tens of seconds per child here), no periodic checkpoint: a
/// checkpoint after an interruption is the one the signal made the child save.
fn recipe(root: &Path) -> PathBuf {
    let text = config_text(&root.join("unused"), 600, "")
        .replace("eval_every = 20", "eval_every = 200")
        .replace("checkpoint_every = 20", "checkpoint_every = 100000");
    write_config(root, "recipe", &text)
}

/// `resnet compare plain resnet --depths 8 --jobs 2` of `recipe` into `runs`.
fn compare(recipe: &Path, runs: &Path) -> Command {
    let mut c = bin();
    c.args(["compare", "plain", "resnet", "--depths", "8", "--quiet"])
        .args(["--jobs", "2", "--config"])
        .arg(recipe)
        .arg("--out")
        .arg(runs)
        .arg("--results")
        .arg(runs.join("results"));
    c
}

/// Waits until both cells have written a curve row (their children are in the training loop).
fn wait_for_children(runs: &Path, parent: &mut Child) {
    let t0 = Instant::now();
    while !CELLS.iter().all(|c| curve_rows(&runs.join(c)) >= 1) {
        assert!(parent.try_wait().unwrap().is_none(), "compare ended first");
        assert!(t0.elapsed() < Duration::from_secs(120), "no rows in 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The child PIDs a compare printed (`... in a child process (pid N, log ...)`).
fn child_pids(stdout: &str) -> Vec<u32> {
    stdout
        .split("(pid ")
        .skip(1)
        .filter_map(|s| s.split(',').next()?.parse().ok())
        .collect()
}

/// SIGTERM to `compare --jobs 2` killed the parent at once and left its children training,
/// orphaned, holding their locks. Now the signal is forwarded: each child saves its checkpoint
/// and exits, the parent exits non-zero with a line saying how to continue, no child is left,
/// the locks are free, and the same command resumes both runs to their end.
#[test]
fn sigterm_to_compare_jobs_stops_its_children_with_their_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let (recipe, runs) = (recipe(tmp.path()), tmp.path().join("runs"));
    let mut parent = compare(&recipe, &runs).spawn().unwrap();
    wait_for_children(&runs, &mut parent);
    signal(parent.id(), "TERM");
    let o = wait_bounded(parent, Duration::from_secs(120), "compare after SIGTERM");
    let (out, e) = (String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o));
    assert!(
        o.status.code().is_some_and(|c| c != 0),
        "{:?}: {e}",
        o.status
    );
    let last = e.trim_end().lines().last().unwrap_or_default();
    assert!(last.contains("resume") && last.contains("compare"), "{e}");
    let pids = child_pids(&out);
    assert_eq!(pids.len(), 2, "{out}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} is still running"
        );
    }
    for cell in CELLS {
        let dir = runs.join(cell);
        drop(resnet::run::dir::RunLock::acquire(&dir).expect("the child's lock is released"));
        let h = resnet::run::checkpoint::read_header(&dir.join("last.safetensors")).unwrap();
        assert!(h.state.iteration > 0 && h.state.iteration < 600, "{cell}");
    }
    let o = compare(&recipe, &runs).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(
        out.matches("resuming in a child process").count(),
        2,
        "{out}"
    );
    for cell in CELLS {
        assert_eq!(curve_rows(&runs.join(cell)), 60, "{cell}");
    }
}

/// Two `compare --jobs` on one `--out` truncated and shared the same child logs, and a refused
/// child was reported with the other child's progress line. One compare holds its `--out`: a
/// second one is refused in one line naming the holder's PID, and the first goes on.
#[test]
fn a_second_compare_on_the_same_out_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (recipe, runs) = (recipe(tmp.path()), tmp.path().join("runs"));
    let mut first = compare(&recipe, &runs).spawn().unwrap();
    wait_for_children(&runs, &mut first);
    let o = compare(&recipe, &runs).output().unwrap();
    let holder = format!("process {}", first.id());
    refused(&o, &[&holder, &runs.display().to_string()]);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first compare ended"
    );
    signal(first.id(), "TERM");
    let o = wait_bounded(first, Duration::from_secs(120), "the first compare");
    assert!(o.status.code().is_some(), "{:?}", o.status);
}
