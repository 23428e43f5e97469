//! The two analyses end to end through the binary, on tiny runs trained on synthetic data:
//! `resnet analyze responses` (Figure 7) and `resnet eval --multi-scale` (§3.4, Table 4).
use crate::support;
use resnet::config::Config;
use resnet::eval::Protocol;
use resnet::train::{self, TrainOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Trains the tiny recipe (tests/support) as a `kind` net with 6 classes for 30 iterations
/// (milestone at 20, seed 2, 40 test images) into `out`.
fn tiny_run(out: &Path, kind: &str) -> PathBuf {
    let text = support::tiny()
        .name(Some(&format!("tiny-{kind}")))
        .model(&format!("kind = \"{kind}\"\nclasses = 6\n"))
        .synthetic(256, 40, 16)
        .iterations(30)
        .milestones(&[20])
        .seed(Some(2))
        .every(10, 30, 30)
        .eval_batch(16)
        .out(out)
        .text();
    let cfg = Config::from_toml(&text).unwrap();
    cfg.validate().unwrap();
    train::run(&cfg, &TrainOptions::default()).unwrap();
    out.join("last.safetensors")
}

fn resnet(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn analyze_responses_writes_each_runs_csv_and_one_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tiny_run(&tmp.path().join("plain8"), "plain");
    let res = tiny_run(&tmp.path().join("resnet8"), "residual");
    let results = tmp.path().join("results");
    let (ok, out, err) = resnet(&[
        "analyze",
        "responses",
        "--checkpoint",
        s(&res),
        s(&plain),
        "--results",
        s(&results),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("(ResNet-8): 40 test images, 7 3x3 layers, mean std"),
        "{out}"
    );
    for (dir, run) in [("plain8", "plain8"), ("resnet8", "resnet8")] {
        let csv = std::fs::read_to_string(tmp.path().join(dir).join("responses.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "run,layer,name,std");
        assert_eq!(lines.len(), 1 + 7, "{csv}");
        assert!(lines[1].starts_with(&format!("{run},1,conv1,")));
        assert!(lines[7].starts_with(&format!("{run},7,layer3.0.conv2,")));
        for l in &lines[1..] {
            let std: f64 = l.rsplit(',').next().unwrap().parse().unwrap();
            assert!(std.is_finite() && std > 0.0, "{l}");
        }
    }
    let all = std::fs::read_to_string(results.join("figure7_responses.csv")).unwrap();
    assert_eq!(all.lines().count(), 1 + 14);
    let svg = std::fs::read_to_string(results.join("figure7_responses.svg")).unwrap();
    assert_eq!(svg.matches(r#"class="line""#).count(), 2 * 2);
    assert!(svg.contains(">plain-8</text>") && svg.contains(">ResNet-8</text>"));
    let png = std::fs::read(results.join("figure7_responses.png")).unwrap();
    assert!(image::load_from_memory(&png).is_ok());

    // A missing checkpoint is one line and nothing is written.
    std::fs::remove_dir_all(&results).unwrap();
    let (ok, _, err) = resnet(&[
        "analyze",
        "responses",
        "--checkpoint",
        s(&res),
        "--checkpoint",
        s(&tmp.path().join("nope/last.safetensors")),
        "--results",
        s(&results),
    ]);
    assert!(
        !ok && err.starts_with("error: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(
        err.contains("nope/last.safetensors does not exist"),
        "{err}"
    );
    assert!(!results.exists());

    // Without --results the figure goes beside the run folders (never into a results/ of the
    // current directory).
    let (ok, _, err) = resnet(&["analyze", "responses", "--checkpoint", s(&res)]);
    assert!(ok, "{err}");
    assert!(tmp.path().join("figure7_responses.csv").is_file());
    assert!(!results.exists());
}

#[test]
fn eval_multi_scale_appends_a_protocol_row() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tiny_run(&tmp.path().join("r"), "residual");
    let (ok, out, err) = resnet(&["eval", "--checkpoint", s(&ck)]);
    assert!(ok, "{err}");
    assert!(out.contains("1-crop (1 views per image)"), "{out}");
    let (ok, out, err) = resnet(&[
        "eval",
        "--checkpoint",
        s(&ck),
        "--multi-scale",
        "[16,24,12]",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("multi-scale 16/24/12 (6 views per image)"),
        "{out}"
    );
    let csv = std::fs::read_to_string(tmp.path().join("r/eval.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], resnet::run::records::EVAL_HEADER);
    assert_eq!(lines.len(), 3);
    assert!(lines[1].contains(",test,1-crop,1,40,"), "{csv}");
    assert!(
        lines[2].contains(",test,multi-scale 16/24/12,6,40,"),
        "{csv}"
    );
    // The row is what the library computes for the same protocol.
    let lib = resnet::eval::run(
        &ck,
        &Protocol::multi_scale("16,24,12").unwrap(),
        Some(&tmp.path().join("other.csv")),
    )
    .unwrap();
    assert!(lines[2].ends_with(&format!(
        ",{},{},{}",
        lib.row.loss, lib.row.top1_error, lib.row.top5_error
    )));
    // Flag errors are one line.
    let (ok, _, err) = resnet(&["eval", "--checkpoint", s(&ck), "--multi-scale", "16,0"]);
    assert!(
        !ok && err.contains("`0` is not a positive shorter side"),
        "{err}"
    );
    let (ok, _, err) = resnet(&[
        "eval",
        "--checkpoint",
        s(&ck),
        "--multi-scale",
        "--ten-crop",
    ]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}
