//! `report` measures a run by its own records only: the `eval.csv` rows of the run's own
//! checkpoint at the summary's iteration (not weights from elsewhere evaluated inside the folder,
//! not an earlier checkpoint), weights-only evaluations are written beside the weights, and a run
//! that changed its world size during training is not averaged with one-process seeds.
use crate::support;
use resnet::analysis::report;
use resnet::config::RecipeChange;
use resnet::run::records::{append_changes, append_eval, write_summary, EvalRow, Summary};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

fn summary(name: &str, family: &str, depth: usize, iterations: u64, err: f64) -> Summary {
    Summary {
        name: name.into(),
        model: format!("resnet{depth}"),
        family: family.parse().unwrap(),
        kind: "residual".parse().unwrap(),
        shortcut: "A".parse().unwrap(),
        depth,
        params: 1000,
        iterations,
        final_train_error: err,
        final_test_error: err,
        best_test_error: err,
        best_iteration: iterations,
        eval_split: "test".into(),
        warmup_end: None,
        wall_s: 1.0,
    }
}

/// A finished run folder `root/name` with its summary and a config of `config` lines.
fn run_dir(root: &Path, s: &Summary, config: &str) -> PathBuf {
    let dir = root.join(&s.name);
    std::fs::create_dir_all(&dir).unwrap();
    write_summary(&dir.join("summary.csv"), s).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("name = \"{}\"\n{config}", s.name),
    )
    .unwrap();
    dir
}

fn row(checkpoint: &Path, iteration: u64, top1: f64) -> EvalRow {
    EvalRow {
        checkpoint: checkpoint.display().to_string(),
        iteration,
        split: "val".into(),
        protocol: "10-crop".into(),
        crops: 10,
        images: 500,
        loss: 1.0,
        top1_error: top1,
        top5_error: top1 / 3.0,
    }
}

/// The report took a run's result from any 10-crop row of its eval.csv (the latest): here other
/// weights evaluated from inside the folder, and an earlier checkpoint of the run. Only the row of
/// its own checkpoint at the summary's iteration counts.
#[test]
fn report_takes_only_the_runs_own_checkpoint_at_its_final_iteration() {
    let tmp = tempfile::tempdir().unwrap();
    let s = summary("r34", "imagenet", 34, 600, 30.0);
    let dir = run_dir(tmp.path(), &s, "[data]\ndataset = \"image_folder\"\n");
    let csv = dir.join("eval.csv");
    let own = dir.join("last.safetensors");
    append_eval(&csv, &row(&own, 600, 26.0)).unwrap();
    append_eval(&csv, &row(&dir.join("torchvision.safetensors"), 0, 5.0)).unwrap();
    append_eval(&csv, &row(&own, 300, 40.0)).unwrap();
    let runs = report::gather(tmp.path()).unwrap();
    let e = runs[0].eval.as_ref().expect("the run's own row");
    assert_eq!((e.iteration, e.top1_error), (600, 26.0), "{e:?}");
    // Without a row of its own, the run has no eval result (the summary stands for it).
    std::fs::remove_file(&csv).unwrap();
    append_eval(&csv, &row(&dir.join("torchvision.safetensors"), 600, 5.0)).unwrap();
    assert_eq!(report::gather(tmp.path()).unwrap()[0].eval, None);
}

/// A run that trained on 2 ranks and was resumed on 1 (`--change run.world_size`) was averaged
/// with the one-process seeds; it is a group of its own, named by its world sizes.
#[test]
fn a_run_that_changed_world_size_is_not_averaged_with_one_process_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, seed) in [("s0", 0), ("s1", 1), ("s2", 2)] {
        let s = summary(name, "cifar", 20, 64_000, 8.0 + seed as f64);
        let dir = run_dir(
            tmp.path(),
            &s,
            &format!("[data]\ndataset = \"cifar10\"\n[run]\nseed = {seed}\nworld_size = 1\n"),
        );
        if name == "s2" {
            let change = RecipeChange {
                key: "run.world_size".into(),
                old: "2".into(),
                new: "1".into(),
            };
            append_changes(&dir.join("changes.csv"), 32_000, &[change]).unwrap();
        }
    }
    let runs = report::gather(tmp.path()).unwrap();
    let groups = report::cifar_groups(&runs);
    let sizes: Vec<usize> = groups.iter().map(|g| g.runs.len()).collect();
    assert_eq!(sizes, vec![2, 1], "groups: {groups:?}");
    let changed = &groups[1].runs[0];
    assert!(changed.dir.ends_with("s2"), "{:?}", changed.dir);
    assert!(
        changed.meta.trainer.contains("ranks 2→1"),
        "{}",
        changed.meta.trainer
    );
}

/// `eval --config` of weights from elsewhere lying in a run folder appended its row to the run's
/// eval.csv, where the report took it for the run's result; by default the row goes beside the
/// weights (`W.eval.csv`), and the run's eval.csv is not created.
#[test]
fn weights_only_evaluations_are_written_beside_the_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let run = support::trained(tmp.path(), "run", 20, "");
    let w = tmp.path().join("w.safetensors");
    let o = support::resnet(&[
        OsStr::new("export"),
        OsStr::new("--checkpoint"),
        run.join("last.safetensors").as_os_str(),
        OsStr::new("--out"),
        w.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let inside = run.join("other.safetensors");
    std::fs::copy(&w, &inside).unwrap();
    let o = support::resnet(&[
        OsStr::new("eval"),
        OsStr::new("--checkpoint"),
        inside.as_os_str(),
        OsStr::new("--config"),
        tmp.path().join("run.toml").as_os_str(),
    ]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    assert!(
        !run.join("eval.csv").exists(),
        "written into the run's eval.csv"
    );
    let rows = resnet::run::records::read_eval(&run.join("other.eval.csv")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].iteration, 0);
}
