//! `run.cuda_graph`: the §4.2 training step replayed as one CUDA graph must train exactly what
//! the eager step trains. Without CUDA (the CPU dev machine) only the refusals are checked: one
//! clear error line, never a crash. With CUDA (the device script runs this test binary) a graphed
//! and an eager trainer from the same weights take the same steps, the learning rate changes at
//! a milestone inside the graph, checkpoints resume across modes, and bf16/channels-last capture.
//! Those are `#[ignore = "needs CUDA"]`: scripts/device_check.sh runs this binary with
//! `--include-ignored` on the GPU machine.
use crate::support;
use resnet::config::{Config, MemoryFormat, Precision};
use resnet::run::checkpoint;
use resnet::run::records;
use resnet::run::state::TrainState;
use resnet::train::{self, TrainOptions, Trainer, GRAPH_WARMUP_STEPS};
use std::path::Path;
use tch::{Device, Kind};

/// The tiny recipe (tests/support) on 512 training images, a milestone at 20, on `device`.
fn config(out: &Path, device: &str, iterations: u64, graph: bool) -> Config {
    let text = support::tiny()
        .name(Some("graph"))
        .synthetic(512, 128, 16)
        .iterations(iterations)
        .milestones(&[20])
        .threads(None)
        .device(device)
        .every(10, 20, 10)
        .out(out)
        .extra(&format!("cuda_graph = {graph}\n"))
        .text();
    Config::from_toml(&text).unwrap()
}

#[test]
fn cuda_graph_without_cuda_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    // run.device = "cpu": refused by validation, before anything is written.
    let cfg = config(&tmp.path().join("cpu"), "cpu", 30, true);
    let e = format!("{:#}", cfg.validate().unwrap_err());
    assert!(
        e.contains("run.cuda_graph = true needs a CUDA device")
            && e.contains("run.device = \"cpu\""),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let e = format!(
        "{:#}",
        train::run(&cfg, &TrainOptions::default()).unwrap_err()
    );
    assert!(e.contains("run.cuda_graph = true"), "{e}");
    assert!(!tmp.path().join("cpu").exists(), "nothing written");
    // A trainer built directly on the CPU refuses too.
    let mut c = config(&tmp.path().join("t"), "auto", 30, true);
    c.run.device = resnet::config::DeviceChoice::Auto;
    let e = Trainer::new(&c, Device::Cpu).err().expect("refused");
    assert!(format!("{e:#}").contains("needs a CUDA device"), "{e:#}");
    if tch::Cuda::is_available() {
        return;
    }
    // run.device = "auto" on a machine without CUDA: device selection refuses it; the binary
    // prints one `error:` line and exits non-zero.
    let auto = tmp.path().join("auto.toml");
    std::fs::write(
        &auto,
        config(&tmp.path().join("auto"), "auto", 30, true)
            .to_toml()
            .unwrap(),
    )
    .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_resnet"));
    if !bin.exists() {
        return;
    }
    let out = std::process::Command::new(bin)
        .args(["train", "--config"])
        .arg(&auto)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("run.cuda_graph = true needs a CUDA device")
            && errors[0].contains("run.cuda_graph = false"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !tmp.path().join("auto").exists(),
        "no run folder for a run that cannot start"
    );
}

/// Largest absolute difference between the two trainers' variables (parameters and BN stats).
fn max_diff(a: &Trainer, b: &Trainer) -> f64 {
    let (va, vb) = (a.vs.variables(), b.vs.variables());
    va.iter()
        .map(|(n, t)| {
            (t.to_kind(Kind::Double) - vb[n].to_kind(Kind::Double))
                .abs()
                .max()
                .double_value(&[])
        })
        .fold(0.0, f64::max)
}

#[test]
#[ignore = "needs CUDA"]
fn graph_steps_equal_eager_steps_and_resume_across_modes() {
    let gpu = support::require_cuda();
    let tmp = tempfile::tempdir().unwrap();
    for (precision, format, tol) in [
        (Precision::Fp32, MemoryFormat::Nchw, 1e-4),
        (Precision::Bf16, MemoryFormat::Nhwc, 5e-2),
    ] {
        let mut ce = config(&tmp.path().join("e"), "cuda", 40, false);
        ce.schedule.milestones = vec![8];
        ce.run.precision = precision;
        ce.run.memory_format = format;
        let mut cg = ce.clone();
        cg.run.cuda_graph = true;
        let mut eager = Trainer::new(&ce, gpu).unwrap();
        let mut graph = Trainer::new(&cg, gpu).unwrap();
        graph.vs.copy(&eager.vs).unwrap();
        // Steps 0..12: the milestone at 8 refills the lr scalar between replays; at 10 the
        // metric slots are full and drained, so the slot index in the inputs starts over.
        for it in 0..12u64 {
            eager.step(it).unwrap();
            graph.step(it).unwrap();
            assert_eq!(
                graph.graph_captured(),
                it >= GRAPH_WARMUP_STEPS as u64,
                "iteration {it}"
            );
        }
        eager.drain().unwrap();
        graph.drain().unwrap();
        let d = max_diff(&eager, &graph);
        assert!(d < tol, "{precision:?}/{format:?}: variables differ by {d}");
        let (le, lg) = (eager.acc.loss_sum, graph.acc.loss_sum);
        assert!(
            (le - lg).abs() < tol * 10.0 * le.abs().max(1.0),
            "loss sums {le} vs {lg}"
        );
        assert_eq!(graph.acc.steps, 12);
        assert_eq!(graph.opt.lr(), 0.1 * 0.1);
        // The slot index rides in the static inputs: 12 slots, each one step's values.
        assert_eq!(graph.acc.images, 12 * 32);

        // A checkpoint of the graphed trainer restores into an eager one (and back) exactly.
        let state = TrainState {
            format: checkpoint::FORMAT_VERSION,
            iteration: 12,
            seed: 5,
            schedule: graph.schedule.state.clone(),
            momentum_started: graph.opt.started(),
            acc: graph.acc.clone(),
            best_test_error: None,
            best_iteration: 0,
            last_test_error: None,
            last_train_error: None,
            elapsed_s: 0.0,
            last_row: None,
            data_key: None,
        };
        let path = tmp.path().join("ck.safetensors");
        checkpoint::save_checkpoint(&path, &graph.checkpoint_tensors(), &state, Some(&graph.cfg))
            .unwrap();
        let ck = checkpoint::load_checkpoint(&path).unwrap();
        let mut eager2 = Trainer::new(&ce, gpu).unwrap();
        eager2.restore(&ck, Path::new("config.toml")).unwrap();
        assert_eq!(max_diff(&graph, &eager2), 0.0);
        // Restoring INTO a captured graph's trainer writes in place: the graph stays valid.
        graph.restore(&ck, Path::new("config.toml")).unwrap();
        for it in 12..15u64 {
            graph.step(it).unwrap();
            eager2.step(it).unwrap();
        }
        let d = max_diff(&graph, &eager2);
        assert!(d < tol, "after resume: {d}");
        // Evaluation between replays is eager and leaves the graph usable.
        let (_, e1) = graph.evaluate().unwrap();
        graph.step(15).unwrap();
        graph.drain().unwrap();
        assert!(graph.params_finite() && (0.0..=100.0).contains(&e1));
    }
}

/// Whole runs: the graphed run's curves match the eager run's (lr column exactly, losses within
/// float tolerance), and a graphed run resumed eagerly (and vice versa) continues the same run.
#[test]
#[ignore = "needs CUDA"]
fn graphed_runs_match_eager_runs_and_resume_across_modes() {
    support::require_cuda();
    let tmp = tempfile::tempdir().unwrap();
    let quiet = TrainOptions::default();
    let run = |name: &str, its: u64, graph: bool, resume: bool| {
        let cfg = config(&tmp.path().join(name), "cuda", its, graph);
        // A resume that trains further says so (the checkpoint's recipe had fewer iterations).
        let changes = if resume {
            vec!["schedule.iterations".to_string()]
        } else {
            vec![]
        };
        let opts = TrainOptions {
            resume,
            changes,
            ..quiet.clone()
        };
        train::run(&cfg, &opts).unwrap();
        records::read_curves(&tmp.path().join(name).join("curves.csv")).unwrap()
    };
    let eager = run("eager", 40, false, false);
    let graph = run("graph", 40, true, false);
    run("g_then_e", 20, true, false);
    let g_then_e = run("g_then_e", 40, false, true);
    run("e_then_g", 20, false, false);
    let e_then_g = run("e_then_g", 40, true, true);
    for other in [&graph, &g_then_e, &e_then_g] {
        assert_eq!(other.len(), eager.len());
        for (a, b) in eager.iter().zip(other.iter()) {
            assert_eq!((a.iteration, a.lr), (b.iteration, b.lr));
            // 1 % of the loss (at least of 0.1: near-zero losses differ more in relative terms).
            let gap = (a.train_loss - b.train_loss).abs();
            assert!(
                gap <= 1e-2 * a.train_loss.abs().max(0.1),
                "iteration {}: {} vs {}",
                a.iteration,
                a.train_loss,
                b.train_loss
            );
            if let (Some(x), Some(y)) = (a.test_loss, b.test_loss) {
                assert!(
                    (x - y).abs() < 1e-2 * x.abs().max(1.0),
                    "test loss {x} vs {y}"
                );
            }
        }
    }
    // The schedule's milestone (20) lowered the rate in every run.
    assert!(graph.last().unwrap().lr < graph[0].lr);
}
