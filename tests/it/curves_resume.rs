//! `curves.csv` on resume (issue 19): rows strictly increase and reach the row the checkpoint
//! has seen (stored in it); a line is dropped only when it is provably half-written. A 40-iteration
//! run (rows every 10, checkpoint at 40) is edited, then extended to 60 iterations.
use crate::support;
use std::ffi::OsStr;
use std::path::Path;
use support::*;

fn extend(dir: &Path) -> std::process::Output {
    resnet(&[
        OsStr::new("train"),
        OsStr::new("--resume"),
        dir.as_os_str(),
        OsStr::new("--iterations"),
        OsStr::new("60"),
        OsStr::new("--change"),
        OsStr::new("schedule.iterations"),
    ])
}

fn iterations(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

/// A complete last row that lacks its newline (an editor, a copy) was dropped as if
/// half-written; the checkpoint has seen it, so it is kept, byte for byte.
#[test]
fn a_complete_last_row_without_its_newline_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 40, "");
    let path = run.join("curves.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.trim_end()).unwrap();
    let o = extend(&run);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(iterations(&run), ["10", "20", "30", "40", "50", "60"]);
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(after.starts_with(&text), "rows up to 40 changed:\n{after}");
}

/// A half-written last line after the checkpoint's row (a kill mid-write) is still dropped.
#[test]
fn a_half_written_line_after_the_checkpoint_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 40, "");
    let path = run.join("curves.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}5")).unwrap();
    let o = extend(&run);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(iterations(&run), ["10", "20", "30", "40", "50", "60"]);
}

/// A duplicated row was kept (the finished curves had 30 twice); rows must strictly increase:
/// the resume is refused naming the file and the line, and changes nothing.
#[test]
fn a_duplicated_curve_row_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 40, "");
    let path = run.join("curves.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let row30 = text.lines().nth(3).unwrap().to_string();
    let edited = text.replace(&format!("{row30}\n"), &format!("{row30}\n{row30}\n"));
    std::fs::write(&path, &edited).unwrap();
    let ck = std::fs::read(run.join("last.safetensors")).unwrap();
    let o = extend(&run);
    refused(&o, &[&path.display().to_string(), "line 5", "iteration 30"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    assert_eq!(std::fs::read(run.join("last.safetensors")).unwrap(), ck);
}

/// Curves that end before the checkpoint's row (rows deleted, or a checkpoint restored from a
/// later backup) resumed silently and the finished run lacked them; the resume is refused.
#[test]
fn curves_that_end_before_the_checkpoint_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 40, "");
    let path = run.join("curves.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let short: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, &short).unwrap();
    let o = extend(&run);
    refused(
        &o,
        &[&path.display().to_string(), "iteration 20", "iteration 40"],
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), short);
}
