//! End-to-end training on synthetic data (paper §4.2's recipe on a tiny net): the loss falls, the
//! run folder holds exactly the shared files, resume after `kill -9` or Ctrl-C is exact, NaN
//! stops the run, and `resnet eval` reproduces the run's final test error. The tests that only
//! read a finished run share one (`run120`, trained once per binary); those that change a run
//! change a copy of it.
use crate::support;
use resnet::config::Config;
use resnet::eval::Protocol;
use resnet::run::checkpoint;
use resnet::run::records::{self, CURVES_HEADER, SUMMARY_HEADER};
use resnet::train::{self, TrainOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tiny recipe (tests/support) on 512 training and 128 test images, evaluations every 50
/// iterations, a milestone at 3/4 of the run; `schedule` goes into `[schedule]`.
fn config_text(out: &Path, iterations: u64, schedule: &str) -> String {
    support::tiny()
        .synthetic(512, 128, 16)
        .iterations(iterations)
        .milestones(&[iterations * 3 / 4])
        .schedule(schedule)
        .every(10, 50, 20)
        .out(out)
        .text()
}

fn config(out: &Path, iterations: u64) -> Config {
    let c = Config::from_toml(&config_text(out, iterations, "")).unwrap();
    c.validate().unwrap();
    c
}

fn quiet() -> TrainOptions {
    TrainOptions::default()
}

/// The curves without the two timing columns.
fn curves_sans_timing(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    text.lines()
        .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
        .collect()
}

/// Writes the checkpoint `path` again with `config` embedded (`None`: as older versions wrote
/// it) and, optionally, an extra tensor `extra`.
fn resave(path: &Path, config: Option<&Config>, extra: Option<&str>) {
    let mut ck = checkpoint::load_checkpoint(path).unwrap();
    if let Some(name) = extra {
        ck.tensors.insert(
            name.into(),
            tch::Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu)),
        );
    }
    let mut named: Vec<(String, tch::Tensor)> = ck
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    checkpoint::save_checkpoint(path, &named, &ck.state, config).unwrap();
}

/// The one-line error of `resnet eval` on `dir/last.safetensors` (which must fail).
fn eval_error(dir: &Path) -> String {
    let r = resnet::eval::run(&dir.join("last.safetensors"), &Protocol::SingleCrop, None);
    format!("{:#}", r.err().expect("eval should fail"))
}

/// The 120-iteration run every read-only test below looks at: its folder (never changed after
/// the run), its config and summary.
struct Run120 {
    _tmp: tempfile::TempDir,
    out: PathBuf,
    cfg: Config,
    summary: records::Summary,
}

fn run120() -> &'static Run120 {
    static RUN: OnceLock<Run120> = OnceLock::new();
    RUN.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        let cfg = config(&out, 120);
        let o = train::run(&cfg, &quiet()).unwrap();
        assert!(!o.interrupted);
        Run120 {
            _tmp: tmp,
            out,
            cfg,
            summary: o.summary,
        }
    })
}

/// A copy of run120's folder in `dir` (for tests that write into it, `resnet eval` included).
fn copy_of_run120(dir: &Path) -> PathBuf {
    let copy = dir.join("copy");
    support::copy_dir(&run120().out, &copy);
    copy
}

/// run120's resolved config.toml.
fn run120_config_text() -> String {
    std::fs::read_to_string(run120().out.join("config.toml")).unwrap()
}

#[test]
fn a_run_writes_its_resolved_config_and_the_exact_headers() {
    let r = run120();
    let cfg_text = run120_config_text();
    let resolved = Config::from_toml(&cfg_text).unwrap();
    assert_eq!(resolved.model.display_name(), r.cfg.model.display_name());
    assert_eq!(resolved.optimizer, r.cfg.optimizer);
    assert!(cfg_text.contains("shortcut = \"A\"") && cfg_text.contains("classes = 10"));
    let curves_text = std::fs::read_to_string(r.out.join("curves.csv")).unwrap();
    assert_eq!(curves_text.lines().next().unwrap(), CURVES_HEADER);
    let summary_text = std::fs::read_to_string(r.out.join("summary.csv")).unwrap();
    assert_eq!(summary_text.lines().next().unwrap(), SUMMARY_HEADER);
}

#[test]
fn the_loss_falls_and_the_summary_matches_the_curves() {
    let r = run120();
    let curves = records::read_curves(&r.out.join("curves.csv")).unwrap();
    assert_eq!(curves.len(), 12);
    assert_eq!(curves.last().unwrap().iteration, 120);
    // Evaluations at 50, 100 and the end only.
    let evals: Vec<u64> = curves
        .iter()
        .filter(|r| r.test_error.is_some())
        .map(|r| r.iteration)
        .collect();
    assert_eq!(evals, vec![50, 100, 120]);
    // The loss falls: last interval well under the first (ln 10 = 2.3 at chance).
    let (first, last) = (curves[0].train_loss, curves.last().unwrap().train_loss);
    assert!(last < 0.5 * first, "first {first}, last {last}");
    assert!((curves[0].epoch - 10.0 * 32.0 / 512.0).abs() < 1e-12);
    let s = records::read_summary(&r.out.join("summary.csv")).unwrap();
    assert_eq!(s, r.summary);
    assert_eq!(
        (s.model.as_str(), s.iterations, s.params),
        ("resnet8", 120, 75_290)
    );
    assert_eq!(
        s.final_test_error,
        curves.last().unwrap().test_error.unwrap()
    );
    assert_eq!(s.warmup_end, None);
}

/// `resnet eval` on the checkpoint: same network, same split, same error and loss.
#[test]
fn eval_reproduces_the_runs_final_test_error_and_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let out = copy_of_run120(tmp.path());
    let s = &run120().summary;
    let curves = records::read_curves(&out.join("curves.csv")).unwrap();
    let e = resnet::eval::run(&out.join("last.safetensors"), &Protocol::SingleCrop, None).unwrap();
    assert_eq!(e.row.iteration, 120);
    assert_eq!(e.row.images, 128);
    assert!(
        (e.row.top1_error - s.final_test_error).abs() < 1e-9,
        "eval {} vs run {}",
        e.row.top1_error,
        s.final_test_error
    );
    // The loss too (the synthetic test error may well be 0).
    let run_loss = curves.last().unwrap().test_loss.unwrap();
    assert!(
        (e.row.loss - run_loss).abs() < 1e-9,
        "eval {} vs run {run_loss}",
        e.row.loss
    );
    assert!(e.row.top5_error <= e.row.top1_error);
    let eval_csv = std::fs::read_to_string(out.join("eval.csv")).unwrap();
    assert_eq!(eval_csv.lines().count(), 2);
}

#[test]
fn a_second_run_into_the_same_folder_is_refused_naming_the_way_out() {
    let r = run120();
    let err = format!("{:#}", train::run(&r.cfg, &quiet()).unwrap_err());
    assert!(
        err.contains("already holds a run") && err.contains("--resume") && err.contains("--force"),
        "{err}"
    );
}

/// Ten-crop needs an ImageNet-style source: a clear error, not a crash.
#[test]
fn ten_crop_on_cifar_images_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = copy_of_run120(tmp.path());
    let err = format!(
        "{:#}",
        resnet::eval::run(&out.join("last.safetensors"), &Protocol::TenCrop, None)
            .err()
            .unwrap()
    );
    assert!(err.contains("ten-crop"), "{err}");
}

/// The checkpoint alone (and config.toml texts of another network: shortcut B, 7 classes) in
/// `dir/other`, with the single-crop result of the run's own folder.
fn checkpoint_alone(dir: &Path) -> (PathBuf, resnet::eval::EvalOutcome, String, String) {
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        run120().out.join("last.safetensors"),
        other.join("last.safetensors"),
    )
    .unwrap();
    let cfg_text = run120_config_text();
    let b = cfg_text.replace("shortcut = \"A\"", "shortcut = \"B\"");
    assert_ne!(b, cfg_text);
    let c = cfg_text.replace("classes = 10", "classes = 7");
    assert_ne!(c, cfg_text);
    let own = copy_of_run120(dir);
    let e = resnet::eval::run(&own.join("last.safetensors"), &Protocol::SingleCrop, None).unwrap();
    (other, e, b, c)
}

/// The checkpoint carries its recipe: eval works from it alone, and refuses a config.toml
/// beside it that disagrees, naming both networks.
#[test]
fn eval_takes_the_recipe_from_the_checkpoint_and_refuses_a_disagreeing_config() {
    let tmp = tempfile::tempdir().unwrap();
    let (other, e, b, c) = checkpoint_alone(tmp.path());
    let alone =
        resnet::eval::run(&other.join("last.safetensors"), &Protocol::SingleCrop, None).unwrap();
    assert_eq!(
        (alone.row.top1_error, alone.row.loss),
        (e.row.top1_error, e.row.loss)
    );
    assert!(alone.notes.is_empty(), "{:?}", alone.notes);
    std::fs::write(other.join("config.toml"), &b).unwrap();
    let err = eval_error(&other);
    assert!(
        err.contains("checkpoint is resnet8, config is resnet8-B")
            && err.contains("model.shortcut: \"A\" -> \"B\""),
        "{err}"
    );
    std::fs::write(other.join("config.toml"), &c).unwrap();
    let err = eval_error(&other);
    assert!(
        err.contains("checkpoint is resnet8, config is resnet8 with 7 classes"),
        "{err}"
    );
}

/// An older checkpoint (no embedded config) takes the config beside it, says so, and a mismatch
/// still names both networks (the checkpoint's read from its tensors).
#[test]
fn an_older_checkpoint_takes_the_config_beside_it_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (other, e, b, c) = checkpoint_alone(tmp.path());
    resave(&other.join("last.safetensors"), None, None);
    std::fs::write(other.join("config.toml"), &b).unwrap();
    let err = eval_error(&other);
    assert!(
        err.contains("is resnet8, config")
            && err.contains("is resnet8-B (tensor layer2.0.downsample.0.weight is missing)"),
        "{err}"
    );
    std::fs::write(other.join("config.toml"), &c).unwrap();
    let err = eval_error(&other);
    assert!(
        err.contains("is resnet8, config")
            && err.contains(
                "is resnet8 with 7 classes (tensor fc.bias has shape [10], the model expects [7])"
            ),
        "{err}"
    );
    std::fs::write(other.join("config.toml"), run120_config_text()).unwrap();
    let old =
        resnet::eval::run(&other.join("last.safetensors"), &Protocol::SingleCrop, None).unwrap();
    assert_eq!(old.row.top1_error, e.row.top1_error);
    assert!(
        old.notes.len() == 1 && old.notes[0].contains("no embedded config"),
        "{:?}",
        old.notes
    );
    std::fs::remove_file(other.join("config.toml")).unwrap();
    let err = eval_error(&other);
    assert!(
        err.contains("no embedded config") && err.contains("config.toml"),
        "{err}"
    );
}

/// A tensor that is no part of the network, a missing and a truncated checkpoint are each
/// named.
#[test]
fn a_foreign_tensor_a_missing_or_a_truncated_checkpoint_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let other = copy_of_run120(tmp.path());
    let resolved = Config::from_toml(&run120_config_text()).unwrap();
    resave(
        &other.join("last.safetensors"),
        Some(&resolved),
        Some("layer9.bogus"),
    );
    let err = eval_error(&other);
    assert!(
        err.contains("layer9.bogus is not part of the model"),
        "{err}"
    );
    let err = eval_error(&tmp.path().join("nowhere"));
    assert!(
        err.contains("checkpoint") && err.contains("nowhere/last.safetensors does not exist"),
        "{err}"
    );
    let bytes = std::fs::read(other.join("last.safetensors")).unwrap();
    std::fs::write(other.join("last.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = eval_error(&other);
    assert!(err.contains("truncated or corrupt"), "{err}");
}

/// --force starts over in the folder: eval.csv and the old checkpoint are gone first.
#[test]
fn force_starts_over_in_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = copy_of_run120(tmp.path());
    resnet::eval::run(&out.join("last.safetensors"), &Protocol::SingleCrop, None).unwrap();
    assert!(out.join("eval.csv").is_file());
    let mut short = run120().cfg.clone();
    short.run.out_dir = out.clone();
    short.schedule.iterations = 20;
    short.schedule.milestones.clear();
    let o = train::run(
        &short,
        &TrainOptions {
            force: true,
            ..quiet()
        },
    )
    .unwrap();
    assert_eq!(o.summary.iterations, 20);
    assert!(!out.join("eval.csv").exists());
    assert_eq!(
        records::read_curves(&out.join("curves.csv")).unwrap().len(),
        2
    );
}

#[test]
fn nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // 40 iterations of warm-up at lr 0.01 (checkpoint at 20 and 40), then lr 1e12.
    let text = config_text(
        &out,
        100,
        "[schedule.warmup]\nlr = 0.01\nuntil_train_error = 0.0001\ncheck_every = 10\nmax_iterations = 40\n",
    )
    .replace("[optimizer]\n", "[optimizer]\nlr = 1e12\n");
    let cfg = Config::from_toml(&text).unwrap();
    cfg.validate().unwrap();
    let err = format!("{:#}", train::run(&cfg, &quiet()).unwrap_err());
    assert!(
        err.contains("NaN or infinite at iteration 4") && err.contains("iteration 40"),
        "{err}"
    );
    let ck = checkpoint::load_checkpoint(&out.join("last.safetensors")).unwrap();
    assert_eq!(ck.state.iteration, 40);
    assert_eq!(ck.state.schedule.warmup_end, Some(40));
    for (name, t) in &ck.tensors {
        assert!(
            t.isfinite().all().int64_value(&[]) == 1,
            "{name} is not finite"
        );
    }
}

fn resnet_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_resnet"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Waits until the run has a checkpoint and at least `rows` curve rows (so that a kill lands
/// at a random point mid-run whatever the machine's speed).
fn wait_for_progress(dir: &Path, child: &mut std::process::Child, rows: usize) {
    let t0 = Instant::now();
    loop {
        let written = std::fs::read_to_string(dir.join("curves.csv"))
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0);
        if dir.join("last.safetensors").exists() && written >= rows {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before {rows} curve rows"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "not {rows} curve rows after 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A few milliseconds of "random" delay from the clock (no RNG crate needed).
fn random_ms(max: u64) -> u64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    n % max
}

/// Kill -9 at a random moment after the first checkpoint, resume, and compare every curve column
/// but the timings with an uninterrupted run; then the same with Ctrl-C (SIGINT), SIGTERM (a
/// timeout, Slurm, systemd) and SIGHUP (a closed terminal), each of which saves a checkpoint.
#[test]
fn resume_after_kill_or_ctrl_c_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let iterations = 160;
    let signals = ["INT", "TERM", "HUP"];
    let mut runs = Vec::new();
    for name in ["reference", "killed"].into_iter().chain(signals) {
        let out = tmp.path().join(name);
        let cfg = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, config_text(&out, iterations, "")).unwrap();
        runs.push((out, cfg));
    }
    let reference = resnet_bin()
        .args(["train", "--config"])
        .arg(&runs[0].1)
        .spawn()
        .unwrap();

    // kill -9
    let (out, cfg) = &runs[1];
    let mut child = resnet_bin()
        .args(["train", "--config"])
        .arg(cfg)
        .spawn()
        .unwrap();
    // 16 rows in all, the first checkpoint at row 2: kill between rows 2 and 12, plus jitter.
    wait_for_progress(out, &mut child, 2 + random_ms(11) as usize);
    std::thread::sleep(Duration::from_millis(random_ms(40)));
    assert!(
        child.try_wait().unwrap().is_none(),
        "run finished before the kill"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let ck = checkpoint::load_checkpoint(&out.join("last.safetensors")).unwrap();
    assert!(ck.state.iteration < iterations);
    // Plain `--config --resume` must refuse nothing and continue.
    let o = resnet_bin()
        .args(["train", "--resume", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    for (signal, (out, cfg)) in signals.iter().zip(&runs[2..]) {
        interrupt_and_resume(signal, out, cfg, iterations);
    }

    let r = reference.wait_with_output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let want = curves_sans_timing(&runs[0].0);
    assert_eq!(want.len(), 1 + (iterations / 10) as usize);
    assert_eq!(curves_sans_timing(&runs[1].0), want, "kill -9 + resume");
    for (signal, (out, _)) in signals.iter().zip(&runs[2..]) {
        assert_eq!(curves_sans_timing(out), want, "SIG{signal} + resume");
    }
    let a = records::read_summary(&runs[0].0.join("summary.csv")).unwrap();
    let b = records::read_summary(&runs[1].0.join("summary.csv")).unwrap();
    assert_eq!(
        (a.final_test_error, a.best_iteration),
        (b.final_test_error, b.best_iteration)
    );
}

/// Sends SIG`signal` to a run at a random moment after its first checkpoint: it finishes the
/// step, saves, prints the resume command and exits 130; then resumes it by folder, as printed.
fn interrupt_and_resume(signal: &str, out: &Path, cfg: &Path, iterations: u64) {
    let mut child = resnet_bin()
        .args(["train", "--config"])
        .arg(cfg)
        .spawn()
        .unwrap();
    wait_for_progress(out, &mut child, 2 + random_ms(11) as usize);
    std::thread::sleep(Duration::from_millis(random_ms(40)));
    let pid = child.id().to_string();
    let sent = Command::new("kill")
        .args([format!("-{signal}").as_str(), &pid])
        .status()
        .unwrap()
        .success();
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    if sent && o.status.code() == Some(130) {
        let resume = format!("resnet train --resume {}", out.display());
        assert!(stdout.contains(&resume), "SIG{signal}: {stdout}");
        let ck = checkpoint::load_checkpoint(&out.join("last.safetensors")).unwrap();
        assert!(ck.state.iteration < iterations);
        assert!(!out.join("summary.csv").exists());
        let o = resnet_bin()
            .args(["train", "--resume"])
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        // The run had already finished when the signal came.
        assert!(
            o.status.success(),
            "SIG{signal}: {:?} {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn cli_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let o = resnet_bin()
        .args(["train", "--resume"])
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("is not a run folder to resume"),
        "{err}"
    );
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, config_text(&tmp.path().join("r"), 100, "")).unwrap();
    let o = resnet_bin()
        .args(["train", "--config"])
        .arg(&cfg)
        .args(["--device", "tpu"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("allowed values are auto, cpu, cuda"), "{err}");
}

/// The lr column of a run's curves.csv, by iteration.
fn lr_by_iteration(dir: &Path) -> Vec<(u64, f64)> {
    records::read_curves(&dir.join("curves.csv"))
        .unwrap()
        .iter()
        .map(|r| (r.iteration, r.lr))
        .collect()
}

/// §4.2's warm-up end to end: lr 0.01 until the training error falls below the threshold, then
/// back to 0.1 (and the milestone still divides it by 10); the switch is in summary.csv.
#[test]
fn warmup_runs_at_its_lr_until_the_error_threshold_then_returns_to_the_base_lr() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("warm");
    let extra = "[schedule.warmup]\nlr = 0.01\nuntil_train_error = 0.85\ncheck_every = 10\n";
    let cfg = Config::from_toml(&config_text(&out, 120, extra)).unwrap();
    cfg.validate().unwrap();
    let o = train::run(&cfg, &quiet()).unwrap();
    let end = o
        .summary
        .warmup_end
        .expect("the training error fell below 85 %");
    assert!(
        (10..90).contains(&end) && end.is_multiple_of(10),
        "warm-up ended at {end}"
    );
    assert_eq!(
        records::read_summary(&out.join("summary.csv"))
            .unwrap()
            .warmup_end,
        Some(end)
    );
    for (it, lr) in lr_by_iteration(&out) {
        // The row's lr is the rate of the interval's last step (iteration `it - 1`).
        let want = if it <= end {
            0.01
        } else if it <= 90 {
            0.1
        } else {
            0.1 * 0.1
        };
        assert!(
            (lr - want).abs() < 1e-12,
            "iteration {it}: lr {lr}, expected {want}"
        );
    }
}

/// §3.4's divide-on-plateau end to end: an evaluation that does not improve by the threshold
/// divides the lr by 10 from the next iteration on.
#[test]
fn plateau_mode_divides_the_lr_when_the_error_stops_improving() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("plateau");
    // Threshold 0.5 (50 points of error): the evaluation at 100 can never improve that much on
    // the one at 50, so with patience 1 the lr drops there.
    let extra = "mode = \"plateau\"\nplateau_patience = 1\nplateau_threshold = 0.5\n";
    let cfg = Config::from_toml(&config_text(&out, 120, extra)).unwrap();
    cfg.validate().unwrap();
    train::run(&cfg, &quiet()).unwrap();
    for (it, lr) in lr_by_iteration(&out) {
        let want = if it <= 100 { 0.1 } else { 0.01 };
        assert!(
            (lr - want).abs() < 1e-12,
            "iteration {it}: lr {lr}, expected {want}"
        );
    }
}
