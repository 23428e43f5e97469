//! What a command is handed (issue 19, "nothing read without a bound, nothing that blocks
//! forever"): odd config numbers, a FIFO for a checkpoint and absurd multi-scale sides are
//! refused in one line, through the real binary, before anything is read or allocated.
use crate::support;
use std::ffi::OsStr;
use std::time::Duration;
use support::*;

/// `schedule.plateau_threshold` NaN, negative or not below 1 and `plateau_patience = 0` used to
/// be accepted and switch the plateau rule off; each is refused naming the key and the value,
/// and no run folder appears.
#[test]
fn plateau_numbers_are_validated_like_every_schedule_number() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "plateau_threshold = nan",
            "schedule.plateau_threshold = NaN",
        ),
        (
            "plateau_threshold = -0.01",
            "schedule.plateau_threshold = -0.01",
        ),
        (
            "plateau_threshold = 1.5",
            "schedule.plateau_threshold = 1.5",
        ),
        ("plateau_patience = 0", "schedule.plateau_patience = 0"),
    ];
    for (i, (line, wanted)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("run{i}"));
        let text = config_text(&out, 40, "").replace(
            "[schedule]\n",
            &format!("[schedule]\nmode = \"plateau\"\n{line}\n"),
        );
        let cfg = write_config(tmp.path(), &format!("c{i}"), &text);
        let o = resnet(&[OsStr::new("train"), OsStr::new("--config"), cfg.as_os_str()]);
        refused(&o, &[wanted]);
        assert!(!out.exists(), "{line}: a run folder appeared");
    }
}

/// `eval --checkpoint` on a FIFO blocked forever in open(); anything that is not a regular file
/// is refused at once, naming it.
#[test]
fn eval_refuses_a_fifo_checkpoint_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("last.safetensors");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let child = bin()
        .args([
            OsStr::new("eval"),
            OsStr::new("--checkpoint"),
            fifo.as_os_str(),
        ])
        .spawn()
        .unwrap();
    let o = wait_bounded(child, Duration::from_secs(30), "eval on a FIFO");
    refused(&o, &[&fifo.display().to_string(), "not a regular file"]);
    // A folder is refused the same way.
    let o = resnet(&[
        OsStr::new("eval"),
        OsStr::new("--checkpoint"),
        tmp.path().as_os_str(),
    ]);
    refused(&o, &["not a regular file"]);
}

/// `eval --multi-scale 100000` aborted on a 30 GB allocation with a backtrace: sides past the
/// bound are refused in one line before the checkpoint is read, and nothing is recorded.
#[test]
fn eval_multi_scale_sides_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 20, "");
    let ck = run.join("last.safetensors");
    let o = resnet(&[
        OsStr::new("eval"),
        OsStr::new("--checkpoint"),
        ck.as_os_str(),
        OsStr::new("--multi-scale"),
        OsStr::new("16,100000"),
    ]);
    refused(&o, &["--multi-scale", "100000", "4096"]);
    assert!(!run.join("eval.csv").exists());
}

/// `bench --summarize /dev/zero` grew memory without bound; what is read is capped and the rest
/// refused in one line naming the file.
#[test]
fn bench_summarize_reads_a_bounded_amount() {
    let child = bin()
        .args(["bench", "--summarize", "/dev/zero"])
        .spawn()
        .unwrap();
    let o = wait_bounded(
        child,
        Duration::from_secs(30),
        "bench --summarize /dev/zero",
    );
    refused(&o, &["/dev/zero", "bytes"]);
}
