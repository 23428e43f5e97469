//! The scripts of the GPU check (the CUDA-graph training step) on the CPU: `scripts/device_check.sh`,
//! `device_prepare.sh` and `bench_compare.sh` parse (`bash -n`), and `scripts/device_tools.py`
//! judges graph-vs-eager curves as intended (equal lr columns, losses within the tolerance that
//! the eager-vs-eager noise sets) and sums concurrent runs' throughput. The scripts' whole
//! plumbing runs with `scripts/device_check.sh --cpu-dry-run` (minutes; not part of the suite).
//! Without python3 the tool tests are visible skips (tests/support: `skip`).
use crate::support;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn device_scripts_parse() {
    for s in ["device_check.sh", "device_prepare.sh", "bench_compare.sh"] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(root().join("scripts").join(s))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{s}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // --help prints the usage without running anything.
    let out = Command::new("bash")
        .arg(root().join("scripts/device_check.sh"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && help.contains("--cpu-dry-run"),
        "{help}"
    );
}

fn python() -> Option<&'static str> {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some("python3")
}

/// A curves.csv with the given (lr, train_loss, test_error) rows at iterations 10, 20, ...
fn write_run(dir: &Path, rows: &[(f64, f64, Option<f64>)]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::from(
        "iteration,epoch,lr,train_loss,train_error,test_loss,test_error,images_per_s,elapsed_s\n",
    );
    for (i, (lr, loss, test)) in rows.iter().enumerate() {
        let t = test.map_or(",".into(), |e| format!("1.0,{e}"));
        text += &format!(
            "{},0.1,{lr},{loss},50,{t},{},1\n",
            10 * (i + 1),
            1000 + 100 * i
        );
    }
    std::fs::write(dir.join("curves.csv"), text).unwrap();
}

/// Three eval rows: lr 0.1, 0.1, 0.01; losses 2.0, 1.5, 1.2; test errors -, 60, 50.
const BASE: [(f64, f64, Option<f64>); 3] = [
    (0.1, 2.0, None),
    (0.1, 1.5, Some(60.0)),
    (0.01, 1.2, Some(50.0)),
];

#[test]
fn device_tools_judge_graph_curves_against_eager_noise() {
    let Some(py) = python() else {
        return support::skip(
            "device_tools_judge_graph_curves_against_eager_noise",
            "python3",
        );
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    write_run(&t.join("a"), &BASE);
    write_run(
        &t.join("close"),
        &[
            (0.1, 2.001, None),
            (0.1, 1.51, Some(60.5)),
            (0.01, 1.205, Some(50.2)),
        ],
    );
    write_run(
        &t.join("far"),
        &[
            (0.1, 2.0, None),
            (0.1, 1.9, Some(70.0)),
            (0.01, 1.2, Some(50.0)),
        ],
    );
    write_run(
        &t.join("lr"),
        &[
            (0.1, 2.0, None),
            (0.1, 1.5, Some(60.0)),
            (0.1, 1.2, Some(50.0)),
        ],
    );
    let csv = t.join("eq.csv");
    let judge = |name: &str, noise: &str, noise_test: &str| {
        Command::new(py)
            .arg(root().join("scripts/device_tools.py"))
            .args(["curves"])
            .arg(&csv)
            .arg(name)
            .arg(t.join("a"))
            .arg(t.join(name))
            .args(["--noise-rel", noise, "--noise-test", noise_test])
            .env("DC_CARD", "test card")
            .env("DC_COMMIT", "abc123")
            .output()
            .unwrap()
    };
    assert!(judge("close", "0", "0").status.success());
    assert!(
        !judge("far", "0", "0").status.success(),
        "a 27% loss gap fails"
    );
    // ... unless two eager runs differ by as much (3x the noise is tolerated).
    assert!(judge("far", "0.1", "4").status.success());
    assert!(
        !judge("lr", "0.5", "9").status.success(),
        "a different lr column always fails"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("pair,rows,") && lines[0].ends_with(",card,commit,command"));
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[1].starts_with("close,3/3,True,True,")
            && lines[1].contains(",pass,test card,abc123,")
    );
    assert!(
        lines[2].contains(",FAIL,") && lines[4].contains(",False,"),
        "{text}"
    );
}

/// Two concurrent runs of 10 iterations x 128 images in 2 s: 1280 images/s by the wall clock;
/// the steady rate sums each run's median interval rate (rows after the first).
#[test]
fn device_tools_sum_the_throughput_of_concurrent_runs() {
    let Some(py) = python() else {
        return support::skip(
            "device_tools_sum_the_throughput_of_concurrent_runs",
            "python3",
        );
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for r in ["r1", "r2"] {
        write_run(&t.join(r), &BASE);
        std::fs::write(t.join(r).join("summary.csv"), "x\n").unwrap();
    }
    let conc = t.join("conc.csv");
    let out = Command::new(py)
        .arg(root().join("scripts/device_tools.py"))
        .arg("concurrency")
        .arg(&conc)
        .args(["graph", "2", "10", "2"])
        .arg(t.join("r1"))
        .arg(t.join("r2"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = std::fs::read_to_string(&conc).unwrap();
    let row = row.lines().nth(1).unwrap().to_string();
    // medians of 1100, 1200 -> 1150 per run; 2300 together.
    assert!(
        row.starts_with("graph,2,10,2,2,1280,2300,1150 1150,"),
        "{row}"
    );
}
