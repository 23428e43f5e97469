//! The `--nproc N` launcher (`resnet train` and `resnet bench`) as a careless user or a dying
//! terminal meets it: N beyond the machine is refused before any worker starts; a stop while the
//! workers load is reported as a stop (exit 130), not as a failed rank; `nohup` keeps SIGHUP
//! ignored; a launcher killed with -9 is one stop request for its workers, who checkpoint.

use crate::support::*;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const DIST: &str = "dist_timeout_s = 20\n";

/// The launcher's children (its workers), from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// Waits until the launcher `child` has started `n` workers (at most 30 s).
fn wait_for_workers(child: &mut Child, n: usize) {
    let t0 = Instant::now();
    while children(child.id()).len() < n {
        assert!(child.try_wait().unwrap().is_none(), "the launcher ended");
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no {n} workers in 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn nproc(args: &[&OsStr], n: &str) -> std::process::Command {
    let mut c = bin();
    c.args(args).args(["--nproc", n]);
    c
}

/// `--nproc 64` on this machine started worker after worker (with N = 1,048,576 until the OOM
/// killer struck); more ranks than cores is refused before any worker starts, writing nothing.
#[test]
fn more_ranks_than_the_machine_has_are_refused_before_any_worker_starts() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let n = (cores * 4).next_power_of_two();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = tiny().batch(n as u64).out(&out).extra(DIST).text();
    let cfg = write_config(tmp.path(), "run", &text);
    let t0 = Instant::now();
    let o = nproc(
        &[OsStr::new("train"), OsStr::new("--config"), cfg.as_os_str()],
        &n.to_string(),
    )
    .output()
    .unwrap();
    refused(
        &o,
        &[
            &format!("--nproc {n}"),
            &format!("this machine has {cores}"),
        ],
    );
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(!out.exists(), "a refused launch wrote {}", out.display());
}

/// SIGTERM to the launcher while its workers are still loading ended with "rank 0 of 2 failed
/// (signal 15; its own message above says why)" and nothing above; it says it was stopped and
/// exits 130, as a stopped command does; for `train` and for `bench`.
#[test]
fn a_stop_while_the_workers_load_is_reported_as_a_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cfg = write_config(
        tmp.path(),
        "run",
        &tiny().iterations(400).out(&out).extra(DIST).text(),
    );
    for command in ["train", "bench"] {
        let mut child = nproc(
            &[OsStr::new(command), OsStr::new("--config"), cfg.as_os_str()],
            "2",
        )
        .spawn()
        .unwrap();
        wait_for_workers(&mut child, 2);
        signal(child.id(), "TERM");
        let o = wait_bounded(child, Duration::from_secs(60), "the launcher after SIGTERM");
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(130), "{command}: {e}");
        assert!(
            e.contains("stopped by a signal") && !e.contains("failed"),
            "{command}: {e}"
        );
    }
}

/// `nohup resnet train --nproc 2` stopped on the terminal's hangup (the launcher's handler
/// replaced the ignored SIGHUP); the hangup stays ignored and the run trains to its end.
#[test]
fn nohup_keeps_the_hangup_ignored_in_the_launcher_and_its_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cfg = write_config(
        tmp.path(),
        "run",
        &tiny().iterations(200).out(&out).extra(DIST).text(),
    );
    let mut child = std::process::Command::new("nohup")
        .arg(env!("CARGO_BIN_EXE_resnet"))
        .args([OsStr::new("train"), OsStr::new("--config"), cfg.as_os_str()])
        .args(["--nproc", "2"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&out, &mut child, 2);
    signal(child.id(), "HUP");
    for w in children(child.id()) {
        signal(w, "HUP");
    }
    let o = wait_bounded(child, Duration::from_secs(120), "the nohup'ed run");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.join("summary.csv").exists(),
        "the run stopped on SIGHUP: {}",
        stderr(&o)
    );
}

/// kill -9 of the launcher: PR_SET_PDEATHSIG sent each worker SIGTERM once per exiting thread of
/// the launcher, and a worker took the second for "stop now", exiting before its checkpoint. One
/// parent death is one request: no worker exits without saving (three kills).
#[test]
fn a_launcher_killed_with_9_is_one_stop_request_for_its_workers() {
    for k in 0..3 {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let cfg = write_config(
            tmp.path(),
            "run",
            &tiny().iterations(400).out(&out).extra(DIST).text(),
        );
        let mut child = nproc(
            &[OsStr::new("train"), OsStr::new("--config"), cfg.as_os_str()],
            "2",
        )
        .spawn()
        .unwrap();
        wait_for_rows(&out, &mut child, 3);
        signal(child.id(), "KILL");
        // The workers hold the launcher's stderr: reading it to its end waits for them.
        let o = wait_bounded(child, Duration::from_secs(60), "the workers after kill -9");
        let e = stderr(&o);
        assert!(!e.contains("second interrupt"), "kill {k}: {e}");
        assert_checkpoint_after_rows(&out);
    }
}

/// The run's checkpoint is at least as far as its last curve row (the stop saved one).
fn assert_checkpoint_after_rows(out: &Path) {
    let ck = resnet::run::checkpoint::read_header(&out.join("last.safetensors"))
        .unwrap()
        .state
        .iteration;
    let rows = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    let last: u64 = rows
        .lines()
        .last()
        .and_then(|l| l.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(ck >= last, "checkpoint at {ck}, last row at {last}");
}
