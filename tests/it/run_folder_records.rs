//! What a run folder holds can be changed between runs, and nothing of it may be lost, mixed or
//! trusted wrongly (issue 19): the lock file, leftover temporaries, `eval --csv` targets and
//! checkpoints that are padded or corrupt. Tiny synthetic runs through the real binary.
use crate::support;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;
use support::*;

fn resume(dir: &Path) -> std::process::Output {
    resnet(&[OsStr::new("train"), OsStr::new("--resume"), dir.as_os_str()])
}

fn eval(ck: &Path, extra: &[&OsStr]) -> std::process::Output {
    let mut args = vec![
        OsStr::new("eval"),
        OsStr::new("--checkpoint"),
        ck.as_os_str(),
    ];
    args.extend_from_slice(extra);
    resnet(&args)
}

/// A `.lock` that is a symbolic link was written through: taking the lock truncated the link's
/// target and wrote the PID into it. The lock is opened without following links: the resume is
/// refused in one line naming the lock, and the target keeps its bytes.
#[test]
fn a_lock_that_is_a_symbolic_link_is_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 20, "");
    let victim = tmp.path().join("precious.txt");
    std::fs::write(&victim, "do not touch\n").unwrap();
    std::fs::remove_file(run.join(".lock")).unwrap();
    std::os::unix::fs::symlink(&victim, run.join(".lock")).unwrap();
    let o = resume(&run);
    refused(&o, &[".lock", "symbolic link"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "do not touch\n");
}

/// Temporaries of killed writes (`.last.safetensors.tmp-PID-N`, a checkpoint's size each) were
/// never removed: taking the lock removes those of dead processes and keeps a live one's.
#[test]
fn temporaries_of_dead_processes_are_removed_when_the_lock_is_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 20, "");
    // 4194304 is past Linux's largest PID: that process cannot exist.
    let dead = run.join(".last.safetensors.tmp-4194999-0");
    let alive = run.join(format!(".curves.csv.tmp-{}-3", std::process::id()));
    let other = run.join(".notes.txt");
    for p in [&dead, &alive, &other] {
        std::fs::write(p, vec![7u8; 4096]).unwrap();
    }
    let o = resume(&run);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dead.exists(), "a dead process's temporary is left");
    assert!(alive.exists(), "a live process's temporary was removed");
    assert!(other.exists(), "a file that is no temporary was removed");
}

/// `eval --csv FILE` appended to any file: pointed at `curves.csv` or `config.toml` it broke the
/// run. It appends only to a new or empty file or an eval table; others are refused, unchanged.
#[test]
fn eval_csv_appends_only_to_an_empty_file_or_an_eval_table() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 20, "");
    let ck = run.join("last.safetensors");
    for name in ["curves.csv", "config.toml"] {
        let target = run.join(name);
        let before = std::fs::read(&target).unwrap();
        let o = eval(&ck, &[OsStr::new("--csv"), target.as_os_str()]);
        refused(&o, &[&target.display().to_string(), "eval"]);
        assert_eq!(std::fs::read(&target).unwrap(), before, "{name} changed");
    }
    let empty = tmp.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    for _ in 0..2 {
        let o = eval(&ck, &[OsStr::new("--csv"), empty.as_os_str()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let text = std::fs::read_to_string(&empty).unwrap();
    assert_eq!(text.lines().count(), 3, "header and two rows: {text}");
    assert!(text.starts_with("checkpoint,iteration,"), "{text}");
}

/// `eval --csv` on a FIFO read it whole first (and blocked): a non-regular target is written in
/// place without reading; the reader at the other end gets the header and the row.
#[test]
fn eval_csv_into_a_fifo_is_written_without_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 20, "");
    let fifo = tmp.path().join("rows");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let f = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read_to_string(f).unwrap());
    let child = bin()
        .args([OsStr::new("eval"), OsStr::new("--checkpoint")])
        .arg(run.join("last.safetensors"))
        .args([OsStr::new("--csv"), fifo.as_os_str()])
        .spawn()
        .unwrap();
    let o = wait_bounded(child, Duration::from_secs(30), "eval --csv FIFO");
    assert!(o.status.success(), "{}", stderr(&o));
    let got = reader.join().unwrap();
    assert_eq!(got.lines().count(), 2, "{got}");
    assert!(got.starts_with("checkpoint,iteration,"), "{got}");
}
