//! End-to-end `resnet compare` (paper §4.2, Figure 6) with the real trainer on a tiny synthetic
//! recipe: the grid trains, a second compare reuses every run, a run without its summary is
//! resumed, and the binary writes the results table and the figure.
use resnet::analysis::compare::{compare, CompareSpec};
use resnet::config::{Config, NetKind};
use resnet::train::{self, RunOutcome, TrainOptions};
use std::path::Path;
use std::process::Command;

/// Plain/residual nets of depth 8 and 14 on 16×16 synthetic images, 30 iterations each.
const RECIPE: &str = r#"
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
iterations = 30
milestones = [20]
[run]
seed = 3
threads = 1
device = "cpu"
log_every = 10
eval_every = 10
checkpoint_every = 10
eval_batch_size = 64
"#;

fn spec(root: &Path) -> CompareSpec {
    let path = root.join("tiny_resnet8.toml");
    std::fs::write(&path, RECIPE).unwrap();
    CompareSpec {
        recipe: Config::load(&path).unwrap(),
        kinds: vec![NetKind::Plain, NetKind::Residual],
        depths: vec![8, 14],
        seeds: vec![],
        runs_dir: root.join("runs"),
        results_dir: root.join("results"),
        force: false,
        progress: false,
    }
}

#[test]
fn compare_trains_reuses_resumes_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(tmp.path());
    let mut calls: Vec<(String, bool)> = Vec::new();
    let mut runner = |c: &Config, o: &TrainOptions| -> anyhow::Result<RunOutcome> {
        calls.push((c.name.clone(), o.resume));
        train::run(c, o)
    };
    let first = compare(&spec, &mut runner, &mut |_| {}).unwrap();
    let csv = std::fs::read_to_string(&first.csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[1].starts_with("plain8,plain,8,"), "{csv}");
    assert!(lines[4].starts_with("resnet14,residual,14,"), "{csv}");
    assert!(first.csv.ends_with("results/compare-tiny.csv"));
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        let test_error: f64 = f[5].parse().unwrap();
        assert!((0.0..=100.0).contains(&test_error), "{l}");
    }

    // Finished runs are reused; one whose summary is gone is resumed from its checkpoint.
    let cell = tmp.path().join("runs/compare-tiny-resnet8");
    assert!(cell.join("last.safetensors").is_file());
    std::fs::remove_file(cell.join("summary.csv")).unwrap();
    let second = compare(&spec, &mut runner, &mut |_| {}).unwrap();
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert_eq!(calls[4], ("compare-tiny-resnet8".to_string(), true));
    assert_eq!(std::fs::read_to_string(&second.csv).unwrap(), csv);

    // The binary reuses all four runs and writes the table and the figure.
    let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args([
            "compare", "plain", "resnet", "--depths", "8,14", "--quiet", "--config",
        ])
        .arg(tmp.path().join("tiny_resnet8.toml"))
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .arg("--results")
        .arg(tmp.path().join("results"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("reused").count(), 4, "{stdout}");
    let svg = std::fs::read_to_string(tmp.path().join("results/compare-tiny.svg")).unwrap();
    assert_eq!(svg.matches(r#"<g class="panel">"#).count(), 2);
    assert_eq!(svg.matches(r#"class="train""#).count(), 4);
    let png = std::fs::read(tmp.path().join("results/compare-tiny.png")).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert!(img.width() > 1000 && img.height() > 500);

    // Without --results, compare and report write into the runs folder: a results/ folder in the
    // working directory (the repository's committed one) is left as it was unless named.
    std::fs::write(tmp.path().join("results/compare-tiny.csv"), "committed\n").unwrap();
    let resnet = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
            .current_dir(tmp.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    resnet(
        &["compare", "plain", "resnet", "--depths", "8,14", "--quiet"]
            .into_iter()
            .chain(["--config", "tiny_resnet8.toml", "--out", "runs"])
            .collect::<Vec<_>>(),
    );
    let committed = |f: &str| std::fs::read_to_string(tmp.path().join("results").join(f));
    assert_eq!(committed("compare-tiny.csv").unwrap(), "committed\n");
    let in_runs = std::fs::read_to_string(tmp.path().join("runs/compare-tiny.csv")).unwrap();
    assert_eq!(in_runs.lines().next(), csv.lines().next());
    assert_eq!(in_runs.lines().count(), 5);
    resnet(&["report", "--runs", "runs"]);
    assert!(committed("table6_cifar10.csv").is_err());
    assert!(tmp.path().join("runs/table6_cifar10.csv").is_file());
    assert!(tmp.path().join("runs/curves_cifar10.svg").is_file());
    resnet(&["report", "--runs", "runs", "--out", "results"]);
    assert!(committed("table6_cifar10.csv").unwrap().contains(",ours,"));

    // A different iteration count does not silently reuse or overwrite the finished runs.
    let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args([
            "compare",
            "plain",
            "--depths",
            "8",
            "--iterations",
            "20",
            "--config",
        ])
        .arg(tmp.path().join("tiny_resnet8.toml"))
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with("error: ") && stderr.contains("schedule.iterations: 30 -> 20"),
        "{stderr}"
    );
    // Nor does another seed or learning rate: the recorded recipe must be the requested one.
    let lr = tmp.path().join("tiny_resnet8.toml");
    let other_lr = RECIPE.replace("[optimizer]\n", "[optimizer]\nlr = 0.05\n");
    std::fs::write(&lr, other_lr).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args([
            "compare", "plain", "--depths", "8", "--seed", "4", "--config",
        ])
        .arg(&lr)
        .arg("--out")
        .arg(tmp.path().join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.lines().count() == 1
            && stderr.contains("optimizer.lr: 0.1 -> 0.05; run.seed: 3 -> 4"),
        "{stderr}"
    );
}

/// The curves without the two timing columns (images_per_s, elapsed_s).
fn curves_sans_timing(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("curves.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
        .collect()
}

/// `compare --jobs 2` trains the grid cells as two concurrent `resnet train` children and gives
/// exactly the runs of `--jobs 1` (one thread per run on the CPU: deterministic), reports the
/// aggregate throughput, and the child processes leave their logs beside the run folders.
#[test]
fn compare_jobs_2_trains_the_same_runs_as_jobs_1() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tmp.path().join("tiny_resnet8.toml");
    std::fs::write(&recipe, RECIPE).unwrap();
    let compare_with = |jobs: &str, runs: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
            .args(["compare", "plain", "resnet", "--depths", "8", "--quiet"])
            .args(["--jobs", jobs, "--config"])
            .arg(&recipe)
            .arg("--out")
            .arg(tmp.path().join(runs))
            .arg("--results")
            .arg(tmp.path().join(format!("results-{runs}")))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let one = compare_with("1", "one");
    let two = compare_with("2", "two");
    assert!(two.contains("in a child process"), "{two}");
    assert!(
        two.contains("2 runs trained with --jobs 2") && two.contains("training images/s together"),
        "{two}"
    );
    assert_eq!(two.matches("finished in").count(), 2, "{two}");
    assert!(!one.contains("child process"), "{one}");
    for cell in ["compare-tiny-plain8", "compare-tiny-resnet8"] {
        let a = curves_sans_timing(&tmp.path().join("one").join(cell));
        let b = curves_sans_timing(&tmp.path().join("two").join(cell));
        assert_eq!(a.len(), 4, "{cell}");
        assert_eq!(a, b, "{cell}");
        assert!(tmp
            .path()
            .join("two/.jobs")
            .join(format!("{cell}.log"))
            .is_file());
    }
    let table = |runs: &str| {
        std::fs::read_to_string(tmp.path().join(format!("results-{runs}/compare-tiny.csv")))
            .unwrap()
            .replace(&tmp.path().join(runs).display().to_string(), "RUNS")
    };
    assert_eq!(table("one"), table("two"));
    // A second call finds every cell finished: nothing to spawn.
    let again = compare_with("2", "two");
    assert!(
        !again.contains("child process") && again.matches("reused").count() == 2,
        "{again}"
    );
}

/// A failing child is reported with its own error line, and the other cells still finish.
#[test]
fn compare_jobs_reports_a_failing_child() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tmp.path().join("tiny_resnet8.toml");
    // The plain net's run folder is taken by a file: its child fails, the residual one trains.
    std::fs::write(&recipe, RECIPE).unwrap();
    let runs = tmp.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("compare-tiny-plain8"), "not a folder").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args([
            "compare", "plain", "resnet", "--depths", "8", "--quiet", "--jobs", "2",
        ])
        .arg("--config")
        .arg(&recipe)
        .arg("--out")
        .arg(&runs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.starts_with("error: 1 of 2 runs failed: compare-tiny-plain8: error: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        runs.join("compare-tiny-resnet8/summary.csv").is_file(),
        "{stdout}"
    );
}
