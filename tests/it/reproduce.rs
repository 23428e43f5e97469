//! `resnet reproduce` through the real binary on a tiny grid (Figure 1's plain-20 and plain-56 on
//! a tiny synthetic recipe, 2 iterations): it trains, says it is not a reproduction, a second call
//! reuses the cells, `--dry-run` prints the exact `resnet train` lines, bad requests are refused
//! before anything is written; and the paper's numbers that `info` prints come from paper.rs.
use crate::support;
use resnet::analysis::reproduce::ReproduceSpec;
use resnet::config::{Config, NetKind};
use resnet::paper::{self, Experiment, Net};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The tiny recipe (tests/support) with 4 classes, 128 training images, batch 16, no seed (the
/// grid sets it), the §4.2 schedule shape (milestones at 1/2 and 3/4), a row every iteration.
fn recipe() -> String {
    support::tiny()
        .model("classes = 4\n")
        .synthetic(128, 32, 16)
        .batch(16)
        .iterations(200)
        .milestones(&[100, 150])
        .seed(None)
        .every(1, 100, 100)
        .eval_batch(32)
        .text()
}

fn resnet(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const GRID: [&str; 9] = [
    "reproduce",
    "figure1",
    "--recipe",
    "tiny.toml",
    "--iterations",
    "2",
    "--out",
    "runs",
    "--quiet",
];

/// A folder holding `tiny.toml` and the trained grid under `runs/`, with the first call's output.
fn trained() -> &'static (tempfile::TempDir, String) {
    static T: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    T.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("tiny.toml"), recipe()).unwrap();
        let out = resnet(&GRID, tmp.path());
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        (tmp, stdout)
    })
}

#[test]
fn a_tiny_grid_trains_and_every_output_says_it_is_not_a_reproduction() {
    let (tmp, stdout) = trained();
    let first = stdout.lines().next().unwrap();
    assert!(first.starts_with("NOT a reproduction: schedule compressed to 2 iterations"));
    assert!(stdout.contains("tiny-it2-plain20-s0: training"), "{stdout}");
    assert!(stdout.contains("tiny-it2-plain56-s0: training"), "{stdout}");
    let results = tmp.path().join("runs/figure1-tiny-it2");
    let md = std::fs::read_to_string(results.join("figure1.md")).unwrap();
    assert!(md.starts_with("NOT a reproduction"), "{md}");
    for f in ["figure1.csv", "figure1.svg", "figure1.png"] {
        assert!(results.join(f).is_file(), "{f}");
    }
    let svg = std::fs::read_to_string(results.join("figure1.svg")).unwrap();
    assert!(svg.contains("NOT a reproduction"));
    assert!(svg.contains(">plain-20</text>") && svg.contains(">plain-56</text>"));
}

#[test]
fn a_second_call_reuses_the_finished_cells() {
    let (tmp, _) = trained();
    let out = resnet(&GRID, tmp.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.matches("finished (2 iterations), reused").count(), 2);
    assert!(!stdout.contains(": training"), "{stdout}");
}

#[test]
fn dry_run_prints_one_train_line_per_cell_with_its_whole_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("tiny.toml"), recipe()).unwrap();
    let mut args = GRID.to_vec();
    args.extend(["--seeds", "3,4", "--dry-run"]);
    let out = resnet(&args, tmp.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let names = [
        "tiny-it2-plain20-s3",
        "tiny-it2-plain20-s4",
        "tiny-it2-plain56-s3",
        "tiny-it2-plain56-s4",
    ];
    assert_eq!(lines.len(), names.len(), "{stdout}");
    for (line, name) in lines.iter().zip(names) {
        assert_eq!(
            *line,
            format!("resnet train --config runs/.jobs/{name}.toml")
        );
        let cfg = Config::load(&tmp.path().join(format!("runs/.jobs/{name}.toml"))).unwrap();
        assert_eq!(cfg.name, name);
        assert_eq!(cfg.model.kind, NetKind::Plain);
        assert_eq!(
            (cfg.schedule.iterations, cfg.schedule.milestones),
            (2, vec![1])
        );
        assert_eq!(cfg.run.out_dir, Path::new("runs").join(name));
    }
    // Nothing was trained.
    assert!(!tmp.path().join(format!("runs/{}", names[0])).exists());
}

#[test]
fn dry_run_after_training_lists_the_finished_cells_as_reused() {
    let (tmp, _) = trained();
    let mut args = GRID.to_vec();
    args.push("--dry-run");
    let (stdout, _) = text(&resnet(&args, tmp.path()));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "# runs/tiny-it2-plain20-s0: finished, reused",
            "# runs/tiny-it2-plain56-s0: finished, reused"
        ]
    );
}

#[test]
fn bad_requests_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["reproduce", "table5"], "allowed: table6, figure1"),
        (&["reproduce", "table6", "--seeds", "0,x"], "--seeds"),
        (
            &["reproduce", "table6", "--seeds", "1,2,1"],
            "seed 1 is listed twice",
        ),
        (&["reproduce", "table2"], "trains on ImageNet"),
        (
            &["reproduce", "table6", "--iterations", "0"],
            "--iterations 0",
        ),
        (
            &["reproduce", "figure6", "--data", "nowhere.tar.gz"],
            "no such file",
        ),
    ];
    for (args, needle) in cases {
        let mut a = args.to_vec();
        a.extend(["--out", "runs"]);
        let out = resnet(&a, tmp.path());
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"));
    }
    assert!(!tmp.path().join("runs").exists());
}

/// The cells of Table 6 and Figure 6 with the paper's schedule are the recipes of configs/
/// (cifar_resnet*.toml, cifar_plain*.toml): the paper's grid and the configs tell one story.
#[test]
fn the_papers_cells_are_the_recipes_of_configs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for result in [Experiment::Table6, Experiment::Figure6] {
        let spec = ReproduceSpec {
            result,
            seeds: vec![0],
            iterations: None,
            data: None,
            recipe: None,
            device: None,
            out: PathBuf::from("runs"),
            jobs: 1,
            progress: false,
        };
        for cell in spec.cells().unwrap() {
            let net = Net::of(&cell.model);
            let stem = match net.kind {
                NetKind::Plain => format!("cifar_plain{}", net.depth),
                NetKind::Residual => format!("cifar_resnet{}", net.depth),
            };
            let file = Config::load(&repo.join(format!("configs/{stem}.toml"))).unwrap();
            assert_eq!(file.recipe_diff(&cell), Vec::<String>::new(), "{stem}");
        }
    }
}

/// `resnet info` prints Table 1's FLOPs and Table 6's parameter counts as paper.rs holds them.
#[test]
fn info_prints_the_published_counts_from_paper_rs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = resnet(&["info", "--csv", "info.csv"], tmp.path());
    assert!(out.status.success());
    let csv = std::fs::read_to_string(tmp.path().join("info.csv")).unwrap();
    let row = |model: &str| -> Vec<String> {
        let line = csv
            .lines()
            .find(|l| l.starts_with(&format!("{model},")))
            .unwrap_or_else(|| panic!("no {model} in {csv}"));
        line.split(',').map(String::from).collect()
    };
    for r in paper::TABLE6 {
        let cells = row(&format!("resnet{}", r.depth));
        assert_eq!(cells[5], r.params_millions.to_string(), "{cells:?}");
    }
    for (depth, gflops) in paper::TABLE1_GFLOPS {
        let cells = row(&format!("resnet{depth}"));
        assert_eq!(cells[10], gflops.to_string(), "{cells:?}");
    }
    for (depth, params) in paper::TORCHVISION_PARAMS {
        assert_eq!(row(&format!("resnet{depth}"))[6], params.to_string());
    }
}
