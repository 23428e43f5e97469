//! The independent PyTorch trainer (scripts/reference/train.py, the yardstick for Table 6
//! and Figure 6 of §4.2) against ours on one tiny PNG archive and one config: both run folders
//! parse with our readers, count the same parameters, follow the same iteration schedule (rows,
//! epochs, learning rates through warm-up and milestones, evaluation points), and `resnet
//! report` shows them as two rows of one network. Both trainers run once (a `OnceLock` fixture,
//! read-only afterwards) for the three tests. Where the project's .venv lacks torch, numpy or
//! pillow (scripts/setup-reference.sh installs them; scripts/test calls it) each test is a
//! visible skip (tests/support: `skip`), counted as skipped by .ci/run.
use crate::support;
use resnet::config::Config;
use resnet::run::records::{read_curves, read_summary, CurveRow};
use resnet::train::{self, TrainOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const NEEDS: &str =
    ".venv/bin/python importing torch, numpy and pillow (scripts/setup-reference.sh)";

/// Two classes of 16×16 noise images with random labels (no signal, so the training error stays
/// near 50 % and the warm-up runs to its max_iterations in both trainers), as a .tar.gz of
/// `set/{train,test}/<class>/*.png`.
fn png_archive(dir: &Path) -> PathBuf {
    let tree = dir.join("tree/set");
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    for (split, n) in [("train", 20), ("test", 6)] {
        for class in ["bird", "frog"] {
            let d = tree.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let img =
                    image::RgbImage::from_fn(16, 16, |_, _| image::Rgb([next(), next(), next()]));
                img.save(d.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
    let ar = dir.join("set.tar.gz");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&ar).unwrap(),
        flate2::Compression::fast(),
    ));
    b.append_dir_all("set", &tree).unwrap();
    b.into_inner().unwrap().finish().unwrap();
    ar
}

/// The tiny recipe (tests/support) with 2 classes on the PNG archive: batch 8, a warm-up at
/// 0.01 that runs to its max (4), milestones at 8 and 10.
fn config_text(archive: &Path, cache: &Path) -> String {
    let data = format!("dataset = \"image_folder\"\npath = {archive:?}\ncache_dir = {cache:?}\n");
    support::tiny()
        .name(Some("tiny_png"))
        .model("classes = 2\n")
        .batch(8)
        .iterations(12)
        .milestones(&[8, 10])
        .schedule(
            "[schedule.warmup]\ncheck_every = 2\nuntil_train_error = 0.001\nmax_iterations = 4\n",
        )
        .seed(None)
        .every(2, 4, 12)
        .eval_batch(5)
        .text()
        .replace("dataset = \"synthetic\"\n", &data)
        .replace(
            "[data.synthetic]\ntrain = 256\ntest = 64\nimage_size = 16\n",
            "",
        )
}

/// Both trainers' run folders under `runs/` (ours, ref) and `resnet report`'s output over them.
struct Runs {
    _tmp: tempfile::TempDir,
    runs: PathBuf,
    report: Output,
}

/// Trains ours and the reference once per test binary (`None` without the Python reference).
fn runs() -> Option<&'static Runs> {
    static RUNS: OnceLock<Option<Runs>> = OnceLock::new();
    RUNS.get_or_init(|| support::venv_python("torch, numpy, PIL").map(|py| train_both(&py)))
        .as_ref()
}

fn train_both(py: &Path) -> Runs {
    let tmp = tempfile::tempdir().unwrap();
    let archive = png_archive(tmp.path());
    let config = tmp.path().join("tiny_png.toml");
    std::fs::write(&config, config_text(&archive, &tmp.path().join("cache"))).unwrap();
    let runs = tmp.path().join("runs");
    let mut cfg = Config::load(&config).unwrap();
    cfg.run.out_dir = runs.join("ours");
    train::run(&cfg, &TrainOptions::default()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference/train.py");
    let out = Command::new(py)
        .arg(&script)
        .args(["--quiet", "--seed", "1", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(runs.join("ref"))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .arg("report")
        .arg("--runs")
        .arg(&runs)
        .output()
        .unwrap();
    Runs {
        _tmp: tmp,
        runs,
        report,
    }
}

fn curves(r: &Runs, who: &str) -> Vec<CurveRow> {
    read_curves(&r.runs.join(who).join("curves.csv")).unwrap()
}

/// Same rows, epochs, learning rates (warm-up at 0.01 to its max, 4, then 0.1, ÷10 at 8 and 10)
/// and evaluation points as ours.
#[test]
fn reference_trainer_follows_our_iteration_schedule() {
    let Some(r) = runs() else {
        return support::skip("reference_trainer_follows_our_iteration_schedule", NEEDS);
    };
    let (ours, theirs) = (curves(r, "ours"), curves(r, "ref"));
    assert_eq!(ours.len(), 6);
    assert_eq!(theirs.len(), ours.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a.iteration, b.iteration);
        assert!((a.epoch - b.epoch).abs() < 1e-12, "{a:?} {b:?}");
        assert!((a.lr - b.lr).abs() < 1e-12, "{a:?} {b:?}");
        assert_eq!(
            a.test_error.is_some(),
            b.test_error.is_some(),
            "{a:?} {b:?}"
        );
        assert!((0.0..=100.0).contains(&b.train_error) && b.train_loss.is_finite());
    }
    let lrs: Vec<f64> = theirs.iter().map(|r| r.lr).collect();
    for (got, want) in lrs.iter().zip([0.01, 0.01, 0.1, 0.1, 0.01, 0.001]) {
        assert!((got - want).abs() < 1e-12, "{lrs:?}");
    }
    let evals: Vec<u64> = theirs
        .iter()
        .filter(|r| r.test_error.is_some())
        .map(|r| r.iteration)
        .collect();
    assert_eq!(evals, [4, 8, 12]);
}

/// Its summary names the same network, parameter count, iterations and warm-up end as ours, and
/// its config.toml is one of ours (the resolved recipe, the seed flag applied).
#[test]
fn reference_trainer_writes_our_summary_and_config() {
    let Some(r) = runs() else {
        return support::skip("reference_trainer_writes_our_summary_and_config", NEEDS);
    };
    let so = read_summary(&r.runs.join("ours/summary.csv")).unwrap();
    let sr = read_summary(&r.runs.join("ref/summary.csv")).unwrap();
    assert_eq!(
        (&sr.model, sr.params, sr.iterations, sr.warmup_end),
        (&so.model, so.params, so.iterations, so.warmup_end)
    );
    assert_eq!(sr.warmup_end, Some(4));
    let theirs = curves(r, "ref");
    assert_eq!(
        sr.final_test_error,
        theirs.last().unwrap().test_error.unwrap()
    );
    let back = Config::load(&r.runs.join("ref/config.toml")).unwrap();
    assert_eq!((back.run.seed, back.schedule.iterations), (1, 12));
}

/// `resnet report` shows both trainers' runs as rows of the same network.
#[test]
fn report_shows_both_trainers_as_rows_of_one_network() {
    let Some(r) = runs() else {
        return support::skip("report_shows_both_trainers_as_rows_of_one_network", NEEDS);
    };
    let stdout = String::from_utf8_lossy(&r.report.stdout);
    assert!(
        r.report.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&r.report.stderr)
    );
    let table = std::fs::read_to_string(r.runs.join("table6_cifar10.csv")).unwrap();
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("ResNet,8,"))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].contains(",ours,") && rows[1].contains(",pytorch-reference,"),
        "{table}"
    );
    assert!(
        rows.iter()
            .all(|r| r.contains("NOT a Table 6 reproduction")),
        "{table}"
    );
    assert!(r.runs.join("curves_cifar10.png").is_file());
}

/// PyTorch's own DistributedDataParallel (the reference under `torchrun --nproc-per-node 2`,
/// gloo): one run folder, written by rank 0 alone, whose config records the world size, with
/// the one-process run's schedule; `resnet report` gives it its own row, `(2 ranks)`.
#[test]
fn reference_under_torchrun_is_one_run_with_its_world_size() {
    const TEST: &str = "reference_under_torchrun_is_one_run_with_its_world_size";
    let (Some(r), Some(py)) = (runs(), support::venv_python("torch, numpy, PIL")) else {
        return support::skip(TEST, NEEDS);
    };
    let torchrun = py.with_file_name("torchrun");
    if !torchrun.is_file() {
        return support::skip(TEST, ".venv/bin/torchrun (scripts/setup-libtorch.sh)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let archive = png_archive(tmp.path());
    let config = tmp.path().join("tiny_png.toml");
    std::fs::write(&config, config_text(&archive, &tmp.path().join("cache"))).unwrap();
    let dir = tmp.path().join("runs/ref2");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference/train.py");
    let out = Command::new(&torchrun)
        .args(["--standalone", "--nproc-per-node", "2"])
        .arg(&script)
        .args(["--quiet", "--seed", "1", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&dir)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    let back = Config::load(&dir.join("config.toml")).unwrap();
    assert_eq!((back.run.world_size, back.run.seed), (2, 1));
    let trainer = std::fs::read_to_string(dir.join("trainer.toml")).unwrap();
    assert!(trainer.contains("world_size = 2"), "{trainer}");
    let (one, two) = (
        curves(r, "ref"),
        read_curves(&dir.join("curves.csv")).unwrap(),
    );
    let schedule = |c: &[CurveRow]| -> Vec<(u64, String, bool)> {
        c.iter()
            .map(|r| (r.iteration, format!("{:e}", r.lr), r.test_error.is_some()))
            .collect()
    };
    assert_eq!(schedule(&two), schedule(&one));
    let s = read_summary(&dir.join("summary.csv")).unwrap();
    assert_eq!((s.iterations, s.warmup_end), (12, Some(4)));
    let runs = dir.parent().unwrap();
    let report = support::bin()
        .args(["report", "--runs"])
        .arg(runs)
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", support::stderr(&report));
    let table = std::fs::read_to_string(runs.join("table6_cifar10.csv")).unwrap();
    assert!(table.contains(",pytorch-reference (2 ranks),"), "{table}");
}
