//! `resnet bench` end to end (the throughput benchmark of the §4.2 recipe): a tiny
//! synthetic run must print a readable line and a well-formed CSV row, append it to --csv, and
//! `--summarize` must read the rows back. Kept to a few tiny iterations so the suite stays short.
use crate::support;
use resnet::analysis::throughput::{parse_rows, BenchRecord, CSV_HEADER};
use std::process::Command;

/// The tiny recipe (tests/support) on 32×32 images (the bench's CIFAR shape), 64 training and
/// 40 test images, batch 16, the default schedule.
fn tiny_text() -> String {
    support::tiny()
        .name(Some("bench-smoke"))
        .synthetic(64, 40, 32)
        .batch(16)
        .default_schedule()
        .seed(None)
        .eval_batch(20)
        .text()
}

fn resnet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resnet"))
}

#[test]
fn bench_prints_a_well_formed_csv_row_and_summarizes_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, tiny_text()).unwrap();
    let csv = dir.path().join("rows.csv");
    let out = resnet()
        .args([
            "bench",
            "--config",
            cfg.to_str().unwrap(),
            "--iters",
            "3",
            "--warmup",
            "1",
        ])
        .args([
            "--eval-images",
            "40",
            "--profile",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[lines.len() - 2], CSV_HEADER);
    let r = BenchRecord::parse_csv_line(lines[lines.len() - 1]).unwrap();
    assert_eq!(
        (
            r.implementation.as_str(),
            r.model.as_str(),
            r.device.as_str()
        ),
        ("ours", "resnet8", "cpu")
    );
    assert_eq!((r.threads, r.batch, r.iters), (1, 16, 3));
    assert_eq!(
        (r.precision.as_str(), r.memory_format.as_str()),
        ("fp32", "nchw")
    );
    assert!(r.train_images_per_s > 0.0 && r.train_images_per_s.is_finite());
    assert!(r.eval_images_per_s > 0.0 && r.eval_images_per_s.is_finite());
    assert!((0.0..=1.0).contains(&r.data_wait_frac));
    // The readable line comes right before the header (data loading may print above it).
    assert!(
        lines[lines.len() - 3].starts_with("ours: resnet8 on cpu (1 threads)"),
        "{stdout}"
    );
    assert!(stderr.contains("profile (ms/step): data "), "{stderr}");

    // The appended file holds the header and the same row; a reference row joins it.
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text, format!("{CSV_HEADER}\n{}\n", lines[lines.len() - 1]));
    let reference = BenchRecord {
        implementation: "careful".into(),
        train_images_per_s: r.train_images_per_s / 2.0,
        ..r.clone()
    };
    std::fs::write(&csv, format!("{text}{}\n", reference.to_csv_line())).unwrap();
    assert_eq!(
        parse_rows(&std::fs::read_to_string(&csv).unwrap())
            .unwrap()
            .len(),
        2
    );
    let out = resnet()
        .args(["bench", "--summarize", csv.to_str().unwrap()])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}");
    let careful = s.lines().find(|l| l.contains("careful")).unwrap();
    assert!(
        careful.contains("2.00"),
        "ours is twice the row's speed: {s}"
    );
}

#[test]
fn bench_errors_are_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, tiny_text()).unwrap();
    let out = resnet()
        .args([
            "bench",
            "--config",
            cfg.to_str().unwrap(),
            "--device",
            "gpu",
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.starts_with("error: ") && e.contains("--device \"gpu\""),
        "{e}"
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{CSV_HEADER}\nours,resnet20,cpu,2\n")).unwrap();
    let out = resnet()
        .args(["bench", "--summarize", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("bad.csv") && e.contains("line 2") && e.contains("4 fields"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// `--graph on` (run.cuda_graph) on the CPU is one error line; `--graph` takes only its values.
#[test]
fn bench_graph_needs_cuda_and_a_known_mode() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, tiny_text()).unwrap();
    for (mode, want) in [
        ("on", "run.cuda_graph = true needs a CUDA device"),
        (
            "sometimes",
            "--graph sometimes: allowed values are auto, off, on, both",
        ),
    ] {
        let out = resnet()
            .args(["bench", "--config", cfg.to_str().unwrap(), "--graph", mode])
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(e.starts_with("error: ") && e.contains(want), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

/// `bench --nproc 2`: two Gloo ranks on 127.0.0.1 time the data-parallel step and the gradient
/// all-reduce alone; rank 0 alone prints the line and the row (global batch, per-rank threads).
#[test]
fn bench_nproc_times_the_data_parallel_step_and_its_all_reduce() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, tiny_text()).unwrap();
    let csv = dir.path().join("rows.csv");
    let out = resnet()
        .args(["bench", "--config", cfg.to_str().unwrap(), "--nproc", "2"])
        .args(["--threads", "1", "--iters", "3", "--warmup", "1"])
        .args(["--csv", csv.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", support::stderr(&out));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ours+2ranks: resnet8 on cpu, 2 ranks x 1 threads"))
        .unwrap_or_else(|| panic!("no rank-0 line in {stdout}"));
    assert!(
        line.contains("the gradient all-reduce") && line.contains("% of the step"),
        "{line}"
    );
    assert_eq!(
        stdout.matches(CSV_HEADER).count(),
        1,
        "only rank 0 prints: {stdout}"
    );
    let rows = parse_rows(&std::fs::read_to_string(&csv).unwrap()).unwrap();
    assert_eq!(rows.len(), 1, "only rank 0 appends");
    let r = &rows[0];
    assert_eq!(
        (r.implementation.as_str(), r.threads, r.batch, r.iters),
        ("ours+2ranks", 1, 16, 3)
    );
    assert!(r.train_images_per_s > 0.0 && r.train_images_per_s.is_finite());
    assert!(r.eval_images_per_s.is_nan() && r.data_wait_frac.is_nan());
}

/// A global batch that does not divide by --nproc is one line before any worker starts.
#[test]
fn bench_nproc_refuses_a_batch_that_does_not_divide() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, tiny_text()).unwrap();
    let out = resnet()
        .args(["bench", "--config", cfg.to_str().unwrap(), "--nproc", "3"])
        .output()
        .unwrap();
    support::refused(&out, &["batch_size = 16", "world_size = 3", "--nproc 3"]);
}
