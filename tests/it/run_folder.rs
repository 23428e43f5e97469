//! A run folder is never damaged, mixed or silently changed (the §4.2 runs are long and get
//! resumed): refused starts and resumes leave every file byte-identical, a resume must keep the
//! checkpoint's recipe (deliberate changes are flagged and recorded), one process writes a folder
//! at a time, curve rows are never dropped silently, and `resnet eval` prints what it measured
//! even when it cannot record it. Tiny synthetic runs (tests/support: `Tiny`).
use crate::support;
use resnet::config::{Config, DeviceChoice};
use resnet::run::checkpoint;
use resnet::run::dir;
use resnet::run::records;
use resnet::train::{self, TrainOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::write_config;

/// The tiny recipe (tests/support) training `iterations` into `out` with `milestones`.
fn config_text(out: &Path, iterations: u64, milestones: &[u64]) -> String {
    support::tiny()
        .iterations(iterations)
        .milestones(milestones)
        .out(out)
        .text()
}

fn load(path: &Path) -> Config {
    Config::load(path).unwrap()
}

fn resnet(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_resnet"));
    c.args(args).args(paths);
    c.output().unwrap()
}

/// The run's files and their bytes (the lock file aside: it only names the last holder).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != dir::LOCK_FILE)
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A refusal: exit 1, one `error:` line on stderr containing every `wanted` text, no panic.
fn assert_refused(o: &Output, wanted: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    for w in wanted {
        assert!(err.contains(w), "missing {w:?} in: {err}");
    }
    err
}

/// The curves without the two timing columns.
fn curves_sans_timing(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    text.lines()
        .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
        .collect()
}

/// The 40-iteration run (milestone at 30) the resume tests start from, in `root/run`, and its
/// config text (also `root/run.toml`).
fn run40(root: &Path) -> (PathBuf, String) {
    let out = root.join("run");
    let text = config_text(&out, 40, &[30]);
    let cfg = write_config(root, "run", &text);
    train::run(&load(&cfg), &TrainOptions::default()).unwrap();
    (out, text)
}

/// A resume with fewer iterations, another seed or another depth is refused in one line naming
/// the differing keys, and leaves every file byte-identical.
#[test]
fn resumes_with_fewer_iterations_another_seed_or_depth_are_refused_changing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, text) = run40(tmp.path());
    let before = snapshot(&out);
    let dir = out.as_path();

    let o = resnet(&["train", "--iterations", "20", "--resume"], &[dir]);
    assert_refused(&o, &["at iteration 40", "schedule.iterations = 20"]);
    assert_eq!(snapshot(&out), before, "after --iterations 20");
    let o = resnet(&["train", "--seed", "9", "--resume"], &[dir]);
    assert_refused(&o, &["seed 5", "--seed 5"]);
    assert_eq!(snapshot(&out), before, "after --seed 9");
    let deeper = write_config(
        tmp.path(),
        "deeper",
        &text.replace("depth = 8", "depth = 14"),
    );
    let o = resnet(&["train", "--resume", "--config"], &[&deeper]);
    assert_refused(
        &o,
        &[
            "model.depth: 8 -> 14",
            "checkpoint is resnet8, config is resnet14",
            "--force",
        ],
    );
    assert_eq!(snapshot(&out), before, "after another depth");
}

/// Another kind (plain and residual nets have the same tensors: only the recipe tells them
/// apart) is refused the same way.
#[test]
fn a_resume_as_another_kind_is_refused_changing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, text) = run40(tmp.path());
    let before = snapshot(&out);
    // Plain and residual nets have the same tensors: only the recipe tells them apart.
    let plain = write_config(
        tmp.path(),
        "plain",
        &text.replace("depth = 8", "depth = 8\nkind = \"plain\""),
    );
    let o = resnet(&["train", "--resume", "--config"], &[&plain]);
    assert_refused(
        &o,
        &[
            "model.kind: \"residual\" -> \"plain\"",
            "checkpoint is resnet8, config is plain8",
        ],
    );
    assert_eq!(snapshot(&out), before, "after another kind");
}

/// Another lr, batch, augmentation, validation split or milestones, an unflagged extension and
/// a `--change` of anything but the schedule are refused, leaving every file byte-identical
/// (so a later extension still has the run's milestones).
#[test]
fn resumes_of_another_recipe_or_an_unflagged_extension_are_refused_changing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, text) = run40(tmp.path());
    let before = snapshot(&out);
    let dir = out.as_path();
    let recipe = text
        .replace("batch_size = 32", "batch_size = 16\nlr = 0.05")
        .replace(
            "[data.synthetic]",
            "augment = \"none\"\nvalidation = 32\n[data.synthetic]",
        )
        .replace("milestones = [30]", "milestones = [35]");
    let recipe = write_config(tmp.path(), "recipe", &recipe);
    let o = resnet(&["train", "--resume", "--config"], &[&recipe]);
    assert_refused(
        &o,
        &[
            "data.augment: \"cifar\" -> \"none\"; data.validation: 0 -> 32; \
             optimizer.batch_size: 32 -> 16; optimizer.lr: 0.1 -> 0.05; \
             schedule.milestones: [30] -> [35]",
        ],
    );
    assert_eq!(snapshot(&out), before, "after another recipe");
    // Extending the run is a recipe change too: refused without the flag, naming it.
    let o = resnet(&["train", "--iterations", "80", "--resume"], &[dir]);
    assert_refused(
        &o,
        &[
            "schedule.iterations: 40 -> 80",
            "--change schedule.iterations",
        ],
    );
    assert_eq!(snapshot(&out), before, "after an unflagged extension");
    // Only the schedule can change on resume, even with the flag.
    let o = resnet(
        &["train", "--change", "optimizer.lr", "--resume", "--config"],
        &[&recipe],
    );
    assert_refused(&o, &["--change optimizer.lr", "schedule.iterations"]);
    assert_eq!(snapshot(&out), before, "after --change optimizer.lr");
}

/// The deliberate extension (`--change schedule.iterations`) is recorded in changes.csv and
/// trains exactly what an uninterrupted longer run trains.
#[test]
fn a_deliberate_extension_is_recorded_and_trains_what_a_longer_run_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = run40(tmp.path());
    let dir = out.as_path();
    // The deliberate extension: the milestone at 30 is still there (config.toml was never
    // rewritten by the refusals), the change is recorded with the iteration it applies from,
    // and the curves are those of an uninterrupted 80-iteration run.
    let o = resnet(
        &[
            "train",
            "--iterations",
            "80",
            "--change",
            "schedule.iterations",
            "--resume",
        ],
        &[dir],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("from iteration 40: schedule.iterations: 40 -> 80"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("changes.csv")).unwrap(),
        "iteration,key,old,new\n40,schedule.iterations,40,80\n"
    );
    let ck = checkpoint::load_checkpoint(&out.join("last.safetensors")).unwrap();
    let embedded = ck.config.expect("the checkpoint carries its recipe");
    assert_eq!(
        (embedded.schedule.iterations, embedded.schedule.milestones),
        (80, vec![30])
    );
    let straight = tmp.path().join("straight");
    let longer = write_config(tmp.path(), "straight", &config_text(&straight, 80, &[30]));
    train::run(&load(&longer), &TrainOptions::default()).unwrap();
    assert_eq!(curves_sans_timing(&out), curves_sans_timing(&straight));
    let lr: Vec<(u64, f64)> = records::read_curves(&out.join("curves.csv"))
        .unwrap()
        .iter()
        .map(|r| (r.iteration, r.lr))
        .collect();
    assert_eq!(lr.last(), Some(&(80, 0.1 * 0.1)));
    let s = records::read_summary(&out.join("summary.csv")).unwrap();
    assert_eq!(s.iterations, 80);
}

/// `--force` deletes the old run only once the new one can start: a bad data path or an
/// unavailable device leaves the old run whole; `--help` lists what it deletes.
#[test]
fn force_checks_the_new_run_before_deleting_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = config_text(&out, 20, &[]);
    let cfg = write_config(tmp.path(), "run", &text);
    train::run(&load(&cfg), &TrainOptions::default()).unwrap();
    resnet::eval::run(
        &out.join("last.safetensors"),
        &resnet::eval::Protocol::SingleCrop,
        None,
    )
    .unwrap();
    let before = snapshot(&out);
    assert!(before.contains_key("eval.csv"));
    let typo = tmp.path().join("typo_dir");
    let bad_data = text.replace(
        "dataset = \"synthetic\"",
        &format!(
            "dataset = \"image_folder\"\npath = \"{}\"\ncache_dir = \"{}\"",
            typo.display(),
            tmp.path().join("cache").display()
        ),
    );
    let bad_data = write_config(tmp.path(), "bad_data", &bad_data);
    let o = resnet(&["train", "--force", "--config"], &[&bad_data]);
    assert_refused(&o, &["typo_dir"]);
    assert_eq!(snapshot(&out), before, "after --force with a bad data path");
    if !tch::Cuda::is_available() {
        let o = resnet(
            &["train", "--force", "--device", "cuda", "--config"],
            &[&cfg],
        );
        assert_refused(&o, &["no CUDA device"]);
        assert_eq!(snapshot(&out), before, "after --force --device cuda");
    }
    let o = resnet(&["train", "--help"], &[]);
    let help = String::from_utf8_lossy(&o.stdout).replace('\n', " ");
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains(
            "deletes the old run's last.safetensors, curves.csv, summary.csv, eval.csv and \
             changes.csv"
        ),
        "{help}"
    );
}

/// A start that fails before training (a bad data path) leaves nothing that blocks the
/// corrected retry.
#[test]
fn a_failed_start_leaves_no_folder_in_the_way() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = config_text(&out, 20, &[]);
    let bad = text.replace(
        "dataset = \"synthetic\"",
        &format!(
            "dataset = \"image_folder\"\npath = \"{}\"\ncache_dir = \"{}\"",
            tmp.path().join("typo_dir").display(),
            tmp.path().join("cache").display()
        ),
    );
    let bad = write_config(tmp.path(), "bad", &bad);
    let o = resnet(&["train", "--config"], &[&bad]);
    assert_refused(&o, &["typo_dir"]);
    assert!(!out.join("config.toml").exists());
    let good = write_config(tmp.path(), "good", &text);
    let o = resnet(&["train", "--config"], &[&good]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Without its checkpoint, a finished run's records are not wiped by a resume.
    std::fs::remove_file(out.join("last.safetensors")).unwrap();
    let before = snapshot(&out);
    let o = resnet(&["train", "--resume"], &[&out]);
    assert_refused(&o, &["holds summary.csv but no checkpoint", "--force"]);
    assert_eq!(snapshot(&out), before);
}

/// A child process that is killed when the test ends, even by a failed assertion (the run it
/// trains would otherwise go on for hours).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One writer per run folder: while a run trains, a second `train` (plain, `--resume` or
/// `--force`) is refused naming the holder's PID and changes nothing; after `kill -9` the lock is
/// gone with the process (no stale lock) and the run resumes. In one process, a second plan of
/// the same folder is refused too.
#[test]
fn a_run_folder_has_one_writer_and_kill_9_leaves_no_stale_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cfg = write_config(tmp.path(), "run", &config_text(&out, 100_000, &[]));
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_resnet"))
            .args(["train", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let t0 = Instant::now();
    while !out.join("last.safetensors").exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint after 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    let config_before = std::fs::read(out.join("config.toml")).unwrap();
    for args in [
        &["train", "--config"][..],
        &["train", "--resume", "--config"],
        &["train", "--force", "--config"],
    ] {
        let o = resnet(args, &[&cfg]);
        assert_refused(&o, &["is in use by process", &pid]);
    }
    let o = resnet(&["train", "--resume"], &[&out]);
    assert_refused(&o, &[&format!("in use by process {pid}")]);
    assert!(child.try_wait().unwrap().is_none());
    assert_eq!(
        std::fs::read(out.join("config.toml")).unwrap(),
        config_before
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    let plan = train::prepare(&load(&cfg), &resume).expect("no stale lock after kill -9");
    let err = format!("{:#}", train::prepare(&load(&cfg), &resume).err().unwrap());
    assert!(
        err.contains(&format!("in use by process {}", std::process::id())),
        "{err}"
    );
    drop(plan);
    train::prepare(&load(&cfg), &resume).expect("the lock is released with the plan");
}

/// A garbage line in curves.csv stops a resume with the file and line named (rows are never
/// dropped), and the folder is unchanged.
#[test]
fn an_unparsable_curve_row_stops_the_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cfg = write_config(tmp.path(), "run", &config_text(&out, 40, &[]));
    train::run(&load(&cfg), &TrainOptions::default()).unwrap();
    let curves = out.join("curves.csv");
    let text = std::fs::read_to_string(&curves).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "20,0.5,0.1,oops");
    std::fs::write(&curves, lines.join("\n") + "\n").unwrap();
    let before = snapshot(&out);
    let o = resnet(&["train", "--resume"], &[&out]);
    let err = assert_refused(&o, &["curves.csv line 3", "\"20,0.5,0.1,oops\""]);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(snapshot(&out), before);
}

/// `resnet eval --device` overrides the recipe's device (a GPU run evaluated on a CPU), and eval
/// prints its numbers even when eval.csv cannot be written (then the error, exit 1).
#[test]
fn eval_takes_a_device_and_prints_before_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cfg = write_config(tmp.path(), "run", &config_text(&out, 20, &[]));
    train::run(&load(&cfg), &TrainOptions::default()).unwrap();
    let ckpt = out.join("last.safetensors");
    // A folder where a file is: eval.csv cannot be created.
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let o = resnet(
        &["eval", "--device", "cpu", "--checkpoint"],
        &[&ckpt, Path::new("--csv"), &blocker.join("eval.csv")],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("(iteration 20): test split, 64 images") && stdout.contains("top-1 error"),
        "{stdout}"
    );
    assert_refused(&o, &["blocker"]);
    let o = resnet(&["eval", "--device", "tpu", "--checkpoint"], &[&ckpt]);
    assert_refused(&o, &["allowed values are auto, cpu, cuda"]);
    // A checkpoint whose recipe says CUDA, on a machine without one.
    if !tch::Cuda::is_available() {
        let gpu = tmp.path().join("gpu");
        std::fs::create_dir_all(&gpu).unwrap();
        let mut ck = checkpoint::load_checkpoint(&ckpt).unwrap();
        let mut recipe = ck.config.take().unwrap();
        recipe.run.device = DeviceChoice::Cuda;
        let mut named: Vec<(String, tch::Tensor)> = ck.tensors.into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let path = gpu.join("last.safetensors");
        checkpoint::save_checkpoint(&path, &named, &ck.state, Some(&recipe)).unwrap();
        let o = resnet(&["eval", "--checkpoint"], &[&path]);
        assert_refused(&o, &["run.device = \"cuda\""]);
        let o = resnet(&["eval", "--device", "cpu", "--checkpoint"], &[&path]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(gpu.join("eval.csv").is_file());
    }
}

/// A checkpoint written before configs were embedded still resumes, with its recipe from the
/// config.toml beside it (one note says so), and the next checkpoint embeds it; a different
/// model is still refused by name.
#[test]
fn an_older_checkpoint_without_its_config_still_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = config_text(&out, 40, &[]);
    let cfg = write_config(tmp.path(), "run", &text);
    train::run(&load(&cfg), &TrainOptions::default()).unwrap();
    let path = out.join("last.safetensors");
    let ck = checkpoint::load_checkpoint(&path).unwrap();
    let mut named: Vec<(String, tch::Tensor)> = ck.tensors.into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    checkpoint::save_checkpoint(&path, &named, &ck.state, None).unwrap();
    assert!(checkpoint::load_checkpoint(&path).unwrap().config.is_none());
    let deeper = write_config(
        tmp.path(),
        "deeper",
        &text.replace("depth = 8", "depth = 14"),
    );
    let o = resnet(&["train", "--resume", "--config"], &[&deeper]);
    assert_refused(&o, &["checkpoint is resnet8, config is resnet14"]);
    let o = resnet(
        &[
            "train",
            "--iterations",
            "60",
            "--change",
            "schedule.iterations",
            "--resume",
        ],
        &[&out],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.matches("no embedded config").count(), 1, "{stdout}");
    let ck = checkpoint::load_checkpoint(&path).unwrap();
    assert_eq!(ck.state.iteration, 60);
    assert_eq!(ck.config.unwrap().schedule.iterations, 60);
}
