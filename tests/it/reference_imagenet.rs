//! The independent PyTorch trainer of §3.4 (scripts/reference/train_imagenet.py, the yardstick for
//! Tables 2-3 and Figure 4) against ours on one tiny folder of generated photographs-to-be and one
//! config: both run folders parse with our readers and follow the same schedule, `resnet report`
//! puts them in one experiment table side by side (`impl`), and the reference's networks
//! (torchvision's, turned into option A/C and the plain nets) hold exactly our parameters, name
//! for name and shape for shape. Both trainers run once per test binary (a `OnceLock` fixture).
//! Where .venv lacks torch, torchvision, numpy or pillow each test is a visible skip
//! (tests/support: `skip`).
use crate::support;
use resnet::config::{Config, ModelConfig, NetKind, Shortcut};
use resnet::net::model::ResNet;
use resnet::run::records::{read_curves, read_eval, read_summary};
use resnet::train::{self, TrainOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const NEEDS: &str = ".venv/bin/python importing torch, torchvision, numpy and pillow \
(`.venv/bin/python -m pip install torchvision==0.26.0`)";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Three classes of noisy, class-tinted photographs of 72–100 pixels a side (over the 64 pixels
/// below which our loader keeps images in memory, so ours streams them as ImageNet's), 8 per
/// class in train/ and 3 in val/, half PNG and half JPEG.
fn image_tree(dir: &Path) -> PathBuf {
    let top = dir.join("woof");
    let mut state = 2029u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    for (split, n) in [("train", 8), ("val", 3)] {
        for (c, class) in ["n01", "n02", "n03"].iter().enumerate() {
            let d = top.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                let (w, h) = (72 + next() % 29, 72 + next() % 29);
                let tint = [(c == 0) as u32, (c == 1) as u32, (c == 2) as u32];
                let img = image::RgbImage::from_fn(w, h, |x, _| {
                    let mut px = |k: usize| (next() % 96 + tint[k] * 120 + x % 32) as u8;
                    image::Rgb([px(0), px(1), px(2)])
                });
                let ext = if i % 2 == 0 { "png" } else { "jpg" };
                img.save(d.join(format!("{i:02}.{ext}"))).unwrap();
            }
        }
    }
    top
}

/// A ResNet-18 with option B at a seventh of the paper's sizes (shorter side 40–56, crop 32,
/// test resize 40), batch 8, 6 iterations with a milestone at 4; rows every 2, tests at 4 and 6.
fn config_text(data: &Path, cache: &Path) -> String {
    format!(
        r#"name = "tiny_woof"
[model]
family = "imagenet"
depth = 18
kind = "residual"
shortcut = "B"
classes = 3
[data]
dataset = "image_folder"
path = {data:?}
augment = "imagenet"
cache_dir = {cache:?}
workers = 1
[data.imagenet]
scale_min = 40
scale_max = 56
crop = 32
test_resize = 40
multi_scale = [32, 40]
[optimizer]
lr = 0.025
momentum = 0.9
weight_decay = 0.0001
batch_size = 8
[schedule]
mode = "milestones"
milestones = [4]
gamma = 0.1
iterations = 6
[run]
seed = 3
device = "cpu"
threads = 1
log_every = 2
eval_every = 4
checkpoint_every = 6
eval_batch_size = 4
"#
    )
}

/// Both trainers' run folders under `runs/` (ours, ref), ours exported as torchvision's state
/// dict, and `resnet report`'s output over them.
struct Runs {
    _tmp: tempfile::TempDir,
    runs: PathBuf,
    export: PathBuf,
    report: Output,
}

fn runs() -> Option<&'static Runs> {
    static RUNS: OnceLock<Option<Runs>> = OnceLock::new();
    RUNS.get_or_init(|| {
        support::venv_python("torch, torchvision, numpy, PIL").map(|py| train_both(&py))
    })
    .as_ref()
}

fn checked(o: Output, what: &str) -> Output {
    assert!(o.status.success(), "{what}: {}", support::stderr(&o));
    o
}

fn train_both(py: &Path) -> Runs {
    let tmp = tempfile::tempdir().unwrap();
    let data = image_tree(tmp.path());
    let config = tmp.path().join("tiny_woof.toml");
    std::fs::write(&config, config_text(&data, &tmp.path().join("cache"))).unwrap();
    let runs = tmp.path().join("runs");
    let mut cfg = Config::load(&config).unwrap();
    cfg.run.out_dir = runs.join("ours");
    train::run(&cfg, &TrainOptions::default()).unwrap();
    let ours = runs.join("ours/last.safetensors");
    checked(
        support::resnet(&["eval", "--checkpoint", ours.to_str().unwrap(), "--ten-crop"]),
        "resnet eval --ten-crop",
    );
    let export = tmp.path().join("tv.safetensors");
    checked(
        support::resnet(&[
            "export",
            "--checkpoint",
            ours.to_str().unwrap(),
            "--out",
            export.to_str().unwrap(),
        ]),
        "resnet export",
    );
    let out = Command::new(py)
        .arg(root().join("scripts/reference/train_imagenet.py"))
        .args(["--quiet", "--seed", "4", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(runs.join("ref"))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    checked(out, "train_imagenet.py");
    let report = support::bin()
        .arg("report")
        .arg("--runs")
        .arg(&runs)
        .output()
        .unwrap();
    Runs {
        _tmp: tmp,
        runs,
        export,
        report,
    }
}

/// Same rows, epochs, learning rates (0.025, ÷10 from iteration 4) and test points as ours; the
/// same network and parameter count in summary.csv; a config.toml our loader reads (the seed
/// flag applied); a 10-crop row in eval.csv over every validation image.
#[test]
fn reference_imagenet_follows_our_schedule_and_records() {
    let Some(r) = runs() else {
        return support::skip("reference_imagenet_follows_our_schedule_and_records", NEEDS);
    };
    let curves = |who: &str| read_curves(&r.runs.join(who).join("curves.csv")).unwrap();
    let (ours, theirs) = (curves("ours"), curves("ref"));
    let schedule = |c: &[resnet::run::records::CurveRow]| -> Vec<(u64, String, String, bool)> {
        c.iter()
            .map(|r| {
                let (e, lr) = (format!("{:.9}", r.epoch), format!("{:.9}", r.lr));
                (r.iteration, e, lr, r.test_error.is_some())
            })
            .collect()
    };
    assert_eq!(schedule(&theirs), schedule(&ours));
    let lrs: Vec<f64> = theirs.iter().map(|c| c.lr).collect();
    for (got, want) in lrs.iter().zip([0.025, 0.025, 0.0025]) {
        assert!((got - want).abs() < 1e-12, "{lrs:?}");
    }
    assert!(theirs
        .iter()
        .all(|c| (0.0..=100.0).contains(&c.train_error) && c.train_loss.is_finite()));
    let so = read_summary(&r.runs.join("ours/summary.csv")).unwrap();
    let sr = read_summary(&r.runs.join("ref/summary.csv")).unwrap();
    let net = |s: &resnet::run::records::Summary| {
        (
            s.model.clone(),
            s.family,
            s.kind,
            s.shortcut,
            s.depth,
            s.params,
            s.iterations,
        )
    };
    assert_eq!(net(&sr), net(&so));
    assert_eq!(sr.eval_split, "validation");
    assert_eq!(Some(sr.final_test_error), theirs.last().unwrap().test_error);
    let back = Config::load(&r.runs.join("ref/config.toml")).unwrap();
    assert_eq!((back.run.seed, back.schedule.iterations), (4, 6));
    let rows = read_eval(&r.runs.join("ref/eval.csv")).unwrap();
    assert_eq!(rows.len(), 1);
    let e = &rows[0];
    assert_eq!(
        (e.protocol.as_str(), e.crops, e.images, e.iteration),
        ("10-crop", 10, 9, 6)
    );
    assert!((0.0..=100.0).contains(&e.top1_error) && e.top5_error <= e.top1_error);
}

/// `resnet report` shows both trainers' runs of the one config as two experiments of one
/// network (ours first), each with its 1-crop and 10-crop errors, and draws their curves.
#[test]
fn report_shows_both_trainers_as_rows_of_one_imagenet_network() {
    let Some(r) = runs() else {
        return support::skip(
            "report_shows_both_trainers_as_rows_of_one_imagenet_network",
            NEEDS,
        );
    };
    let stdout = String::from_utf8_lossy(&r.report.stdout);
    assert!(
        r.report.status.success(),
        "{stdout}{}",
        support::stderr(&r.report)
    );
    let table = std::fs::read_to_string(r.runs.join("seeds_imagenet.csv")).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    let impls: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(impls, ["ours", "pytorch-reference"], "{table}");
    for row in &rows {
        assert_eq!(row[0], "resnet18", "{table}");
        assert_eq!((row[4], row[7]), ("1", "10"), "{table}");
        assert!(
            row[6].parse::<f64>().is_ok() && row[8].parse::<f64>().is_ok(),
            "{table}"
        );
    }
    let per_seed = std::fs::read_to_string(r.runs.join("runs_imagenet.csv")).unwrap();
    assert!(per_seed.contains(",ours,") && per_seed.contains(",pytorch-reference,"));
    assert!(r.runs.join("curves_imagenet.png").is_file());
}

/// Parameter (and BN buffer) names and shapes of a Python state dict, as `name shape...` lines.
fn python_params(py: &Path, code: &str) -> BTreeMap<String, Vec<i64>> {
    let o = Command::new(py)
        .arg("-c")
        .arg(code)
        .current_dir(root().join("scripts/reference"))
        .output()
        .unwrap();
    let o = checked(o, code);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next().unwrap().to_string();
            (name, it.map(|d| d.parse().unwrap()).collect())
        })
        .collect()
}

const PRINT: &str = "\nfor k, v in sd.items(): print(k, *v.shape)";

/// Our trained ResNet-18 (option B), exported as torchvision's state dict, has exactly the
/// reference's parameters and buffers (`num_batches_tracked` included), name for name and shape
/// for shape.
#[test]
fn reference_resnet18_b_has_our_exported_parameters() {
    let (Some(r), Some(py)) = (
        runs(),
        support::venv_python("torch, torchvision, numpy, PIL"),
    ) else {
        return support::skip("reference_resnet18_b_has_our_exported_parameters", NEEDS);
    };
    let pt = r.runs.join("ref/last.pt");
    let theirs = python_params(
        &py,
        &format!(
            "import torch\nsd = torch.load({:?}){PRINT}",
            pt.to_str().unwrap()
        ),
    );
    let ours: BTreeMap<String, Vec<i64>> = tch::Tensor::read_safetensors(&r.export)
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.size()))
        .collect();
    assert_eq!(ours.len(), 122, "{:?}", ours.keys());
    assert_eq!(theirs, ours);
}

/// Every shortcut option and the plain nets, basic (18) and bottleneck (50) blocks: the
/// reference's network holds our net's parameters and BN statistics under the same names and
/// shapes (torchvision's BN batch counters aside, which ours does not keep).
#[test]
fn reference_nets_hold_our_parameters_for_every_option() {
    let Some(py) = support::venv_python("torch, torchvision, numpy, PIL") else {
        return support::skip("reference_nets_hold_our_parameters_for_every_option", NEEDS);
    };
    let residual = NetKind::Residual;
    for (depth, kind, sc) in [
        (18, residual, Shortcut::A),
        (18, residual, Shortcut::B),
        (18, residual, Shortcut::C),
        (18, NetKind::Plain, Shortcut::A),
        (50, residual, Shortcut::A),
        (50, residual, Shortcut::B),
        (50, residual, Shortcut::C),
        (50, NetKind::Plain, Shortcut::B),
    ] {
        let mut cfg = ModelConfig::imagenet(depth, kind, sc);
        cfg.classes = Some(7);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = ResNet::new(&vs.root(), &cfg);
        let ours: BTreeMap<String, Vec<i64>> = vs
            .variables()
            .into_iter()
            .map(|(k, t)| (k, t.size()))
            .collect();
        let kind_s = if kind == NetKind::Plain {
            "plain"
        } else {
            "residual"
        };
        let code = format!(
            "import train_imagenet as t\nrec = t.Recipe(name='x', depth={depth}, kind='{kind_s}', \
             shortcut='{sc}', classes=7)\nsd = {{k: v for k, v in t.build_model(rec).state_dict().items() \
             if not k.endswith('num_batches_tracked')}}{PRINT}"
        );
        let theirs = python_params(&py, &code);
        assert_eq!(theirs, ours, "depth {depth} {kind_s} option {sc}");
    }
}

/// A config the reference does not implement is refused in one line naming the key and value.
#[test]
fn reference_imagenet_refuses_what_it_does_not_implement() {
    let Some(py) = support::venv_python("torch, torchvision, numpy, PIL") else {
        return support::skip(
            "reference_imagenet_refuses_what_it_does_not_implement",
            NEEDS,
        );
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = config_text(Path::new("data"), Path::new("cache"));
    for (from, to, want) in [
        (
            "shortcut = \"B\"",
            "shortcut = \"D\"",
            "model.shortcut = 'D'",
        ),
        ("depth = 18", "depth = 20", "model.depth = 20"),
        (
            "family = \"imagenet\"",
            "family = \"cifar\"",
            "model.family = 'cifar'",
        ),
        (
            "mode = \"milestones\"",
            "mode = \"plateau\"",
            "schedule.mode = 'plateau'",
        ),
    ] {
        let config = tmp.path().join("bad.toml");
        std::fs::write(&config, base.replace(from, to)).unwrap();
        let o = Command::new(&py)
            .arg(root().join("scripts/reference/train_imagenet.py"))
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let err = support::stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(
            err.trim().lines().count() == 1 && err.contains(want),
            "{to}: {err}"
        );
    }
}
