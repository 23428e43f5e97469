//! End-to-end `resnet compare` (paper §4.2, Figure 6) with the real trainer on a tiny synthetic
//! recipe: the grid trains, a second compare reuses every run, a run without its summary is
//! resumed, and the binary writes the results table and the figure. The grid is trained once per
//! binary (`grid`); tests that compare again work on a copy of it.
use crate::support;
use resnet::analysis::compare::{compare, CompareSpec};
use resnet::config::{Config, NetKind};
use resnet::train::{self, RunOutcome, TrainOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The tiny recipe (tests/support) without a name (compare names the grid after the file:
/// `tiny`), 30 iterations, a milestone at 20, seed 3, evaluations and checkpoints every 10;
/// the grid trains plain/residual nets of depth 8 and 14 from it.
fn recipe_text() -> String {
    support::tiny()
        .name(None)
        .iterations(30)
        .milestones(&[20])
        .seed(Some(3))
        .every(10, 10, 10)
        .text()
}

fn spec(root: &Path) -> CompareSpec {
    let path = root.join("tiny_resnet8.toml");
    std::fs::write(&path, recipe_text()).unwrap();
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

/// A compare whose runner records (run name, resumed) for each cell it trains.
fn compare_counting(spec: &CompareSpec) -> (PathBuf, Vec<(String, bool)>) {
    let mut calls: Vec<(String, bool)> = Vec::new();
    let mut runner = |c: &Config, o: &TrainOptions| -> anyhow::Result<RunOutcome> {
        calls.push((c.name.clone(), o.resume));
        train::run(c, o)
    };
    let done = compare(spec, &mut runner, &mut |_| {}).unwrap();
    (done.csv, calls)
}

/// The grid trained once (read-only afterwards): its folder, the results CSV and the cells the
/// runner trained.
struct Grid {
    tmp: tempfile::TempDir,
    csv_path: PathBuf,
    calls: Vec<(String, bool)>,
}

fn grid() -> &'static Grid {
    static GRID: OnceLock<Grid> = OnceLock::new();
    GRID.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (csv_path, calls) = compare_counting(&spec(tmp.path()));
        Grid {
            tmp,
            csv_path,
            calls,
        }
    })
}

/// The grid's results CSV with its folder written as `root` (the CSV names the run folders).
fn grid_csv(root: &Path) -> String {
    std::fs::read_to_string(&grid().csv_path).unwrap().replace(
        &grid().tmp.path().display().to_string(),
        &root.display().to_string(),
    )
}

/// A copy of the grid's folder (recipe, runs, results) to change.
fn grid_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    support::copy_dir(grid().tmp.path(), tmp.path());
    tmp
}

/// The binary with `args`, run in `dir`.
fn resnet_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnet"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn assert_ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn compare_trains_every_cell_and_writes_the_results_table() {
    let g = grid();
    let names: Vec<&str> = g.calls.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(g.calls.iter().all(|(_, resumed)| !resumed), "{:?}", g.calls);
    let csv = std::fs::read_to_string(&g.csv_path).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[1].starts_with("plain8,plain,8,"), "{csv}");
    assert!(lines[4].starts_with("resnet14,residual,14,"), "{csv}");
    assert!(g.csv_path.ends_with("results/compare-tiny.csv"));
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        let test_error: f64 = f[5].parse().unwrap();
        assert!((0.0..=100.0).contains(&test_error), "{l}");
    }
}

/// Finished runs are reused; one whose summary is gone is resumed from its checkpoint.
#[test]
fn a_second_compare_reuses_finished_runs_and_resumes_one_without_its_summary() {
    let tmp = grid_copy();
    let cell = tmp.path().join("runs/compare-tiny-resnet8");
    assert!(cell.join("last.safetensors").is_file());
    std::fs::remove_file(cell.join("summary.csv")).unwrap();
    let (csv, calls) = compare_counting(&spec(tmp.path()));
    assert_eq!(calls, [("compare-tiny-resnet8".to_string(), true)]);
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), grid_csv(tmp.path()));
}

/// The binary reuses all four runs and writes the table and the figure.
#[test]
fn the_binary_reuses_every_run_and_draws_the_figure() {
    let tmp = grid_copy();
    let t = tmp.path();
    let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args([
            "compare", "plain", "resnet", "--depths", "8,14", "--quiet", "--config",
        ])
        .arg(t.join("tiny_resnet8.toml"))
        .arg("--out")
        .arg(t.join("runs"))
        .arg("--results")
        .arg(t.join("results"))
        .output()
        .unwrap();
    let stdout = assert_ok(&out);
    assert_eq!(stdout.matches("reused").count(), 4, "{stdout}");
    let svg = std::fs::read_to_string(t.join("results/compare-tiny.svg")).unwrap();
    assert_eq!(svg.matches(r#"<g class="panel">"#).count(), 2);
    assert_eq!(svg.matches(r#"class="train""#).count(), 4);
    let png = std::fs::read(t.join("results/compare-tiny.png")).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert!(img.width() > 1000 && img.height() > 500);
}
/// Without --results, compare and report write into the runs folder: a results/ folder in the
/// working directory (the repository's committed one) is left as it was unless named.
#[test]
fn without_results_compare_and_report_write_into_the_runs_folder() {
    let tmp = grid_copy();
    let t = tmp.path();
    std::fs::write(t.join("results/compare-tiny.csv"), "committed\n").unwrap();
    assert_ok(&resnet_in(
        t,
        &[
            "compare",
            "plain",
            "resnet",
            "--depths",
            "8,14",
            "--quiet",
            "--config",
            "tiny_resnet8.toml",
            "--out",
            "runs",
        ],
    ));
    let committed = |f: &str| std::fs::read_to_string(t.join("results").join(f));
    assert_eq!(committed("compare-tiny.csv").unwrap(), "committed\n");
    let in_runs = std::fs::read_to_string(t.join("runs/compare-tiny.csv")).unwrap();
    assert_eq!(in_runs.lines().next(), grid_csv(t).lines().next());
    assert_eq!(in_runs.lines().count(), 5);
    assert_ok(&resnet_in(t, &["report", "--runs", "runs"]));
    assert!(committed("table6_cifar10.csv").is_err());
    assert!(t.join("runs/table6_cifar10.csv").is_file());
    assert!(t.join("runs/curves_cifar10.svg").is_file());
    assert_ok(&resnet_in(
        t,
        &["report", "--runs", "runs", "--out", "results"],
    ));
    assert!(committed("table6_cifar10.csv").unwrap().contains(",ours,"));
}

/// A different iteration count, seed or learning rate does not silently reuse or overwrite the
/// finished runs: the recorded recipe must be the requested one.
#[test]
fn another_iteration_count_seed_or_lr_is_refused_not_reused() {
    let tmp = grid_copy();
    let t = tmp.path();
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
        .arg(t.join("tiny_resnet8.toml"))
        .arg("--out")
        .arg(t.join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with("error: ") && stderr.contains("schedule.iterations: 30 -> 20"),
        "{stderr}"
    );
    let lr = t.join("tiny_resnet8.toml");
    let other_lr = recipe_text().replace("[optimizer]\n", "[optimizer]\nlr = 0.05\n");
    std::fs::write(&lr, other_lr).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args([
            "compare", "plain", "--depths", "8", "--seed", "4", "--config",
        ])
        .arg(&lr)
        .arg("--out")
        .arg(t.join("runs"))
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
    std::fs::write(&recipe, recipe_text()).unwrap();
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
    std::fs::write(&recipe, recipe_text()).unwrap();
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
