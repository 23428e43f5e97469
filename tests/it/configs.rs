//! Every experiment config of the paper in configs/ loads and validates, and bad configs fail with
//! one clear message (file, key, allowed values) and a non-zero exit, never a panic.
use resnet::config::{Config, Family, NetKind};
use resnet::net::arch::Plan;
use resnet::paper;
use std::path::{Path, PathBuf};
use std::process::Command;

fn configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_config_loads_and_validates() {
    let all = configs();
    assert!(all.len() >= 23, "{all:?}");
    for p in &all {
        let cfg = Config::load(p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        assert_eq!(
            cfg.name,
            p.file_stem().unwrap().to_string_lossy(),
            "name = file stem"
        );
        let back = Config::from_toml(&cfg.to_toml().unwrap()).unwrap();
        back.validate().unwrap();
        assert_eq!(Plan::new(&back.model).depth(), cfg.model.depth);
    }
}

#[test]
fn the_papers_experiments_are_all_there() {
    let names: Vec<String> = configs()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into())
        .collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    for d in [20, 32, 44, 56, 110] {
        assert!(
            has(&format!("cifar_plain{d}")) && has(&format!("cifar_resnet{d}")),
            "{d}"
        );
    }
    assert!(has("cifar_resnet1202"));
    for n in [
        "imagenet_plain18",
        "imagenet_plain34",
        "imagenet_resnet50",
        "imagenet_resnet101",
        "imagenet_resnet152",
    ] {
        assert!(has(n), "{n}");
    }
    for d in [18, 34] {
        for sc in ["A", "B", "C"] {
            assert!(has(&format!("imagenet_resnet{d}_{sc}")), "{d}{sc}");
        }
    }
    let r110 = Config::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/cifar_resnet110.toml")
            .as_path(),
    )
    .unwrap();
    let w = r110.schedule.warmup.expect("ResNet-110 warms up (§4.2)");
    assert_eq!(
        (w.lr, w.until_train_error),
        (paper::WARMUP_LR, paper::WARMUP_UNTIL_TRAIN_ERROR)
    );
    let p34 = Config::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/imagenet_plain34.toml")
            .as_path(),
    )
    .unwrap();
    assert_eq!(
        (p34.model.family, p34.model.kind, p34.optimizer.batch_size),
        (Family::Imagenet, NetKind::Plain, 256)
    );
}

/// Paths in configs/ are relative to configs/ (`../data/...` is the repository's data folder),
/// so the configs work from any directory; from the repository's root they name what
/// `resnet data fetch cifar10` fills by default, and the README's first command finds the shared
/// data beside the repository.
#[test]
fn config_paths_are_relative_to_the_configs_folder() {
    use resnet::config::{Dataset, DEFAULT_CIFAR10_DIR};
    let repo = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).unwrap();
    let shared = repo.parent().unwrap().join("shared/data");
    for p in configs() {
        let cfg = Config::load(&p).unwrap();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        match cfg.data.dataset {
            Dataset::Synthetic => continue,
            Dataset::Cifar10 => assert_eq!(cfg.data.path, repo.join(DEFAULT_CIFAR10_DIR), "{stem}"),
            Dataset::ImageFolder if stem.starts_with("imagenet") => {
                assert_eq!(cfg.data.path, repo.join("data/imagenet"), "{stem}")
            }
            Dataset::ImageFolder | Dataset::Voc | Dataset::Coco => {
                assert!(cfg.data.path.starts_with(&shared), "{stem}")
            }
        }
    }
    let readme = Config::load(&repo.join("configs/cifar10_jpeg_resnet20_400.toml")).unwrap();
    assert_eq!(readme.data.path, shared.join("cifar10-jpeg.tar.gz"));
    // The default cache stays in the current directory (the repository's ignored .cache/).
    assert_eq!(readme.data.cache_dir, Path::new(".cache"));
}

/// Runs `resnet info --config <bad>` and returns (exit code, stderr).
fn run_bad(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_resnet"))
        .args(["info", "--csv"])
        .arg(dir.path().join("info.csv"))
        .arg("--config")
        .arg(&p)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("bad.toml"), "names the file: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    (out.status.code().unwrap(), err)
}

#[test]
fn bad_configs_give_one_clear_message() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[model]\nfamily = \"cifar\"\ndepth = 20\n[optimizer]\nlrr = 0.1\n",
            &["[optimizer]", "unknown field `lrr`", "`lr`"],
        ),
        (
            "[model]\nfamily = \"cifar\"\ndepth = 21\n",
            &["model.depth = 21", "6n+2"],
        ),
        (
            "[model]\nfamily = \"imagenet\"\ndepth = 20\n",
            &["model.depth = 20", "18, 34, 50, 101 or 152"],
        ),
        (
            "[model]\nfamily = \"cifar\"\ndepth = 20\nshortcut = \"D\"\n",
            &["shortcut", "expected one of `A`, `B`, `C`"],
        ),
        (
            "[model]\nfamily = \"cifar\"\ndepth = 20\nkind = \"highway\"\n",
            &["kind", "`residual` or `plain`"],
        ),
        (
            "[model]\nfamily = \"cifar\"\ndepth = 20\n[run]\ndevice = \"tpu\"\n",
            &["device", "expected one of `auto`, `cpu`, `cuda`"],
        ),
        (
            "[model]\nfamily = \"cifar\"\ndepth = 20\n[schedule]\nmilestones = [48000, 32000]\n",
            &["schedule.milestones", "increasing"],
        ),
        (
            "[model]\nfamily = \"cifar\"\ndepth = 20\n[data]\ndataset = \"mnist\"\n",
            &[
                "dataset",
                "expected one of `cifar10`, `image_folder`, `synthetic`",
            ],
        ),
        ("[model]\ndepth = 20\n", &["missing field `family`"]),
    ];
    for (text, needles) in cases {
        let (code, err) = run_bad(text);
        assert_eq!(code, 1, "{err}");
        for n in *needles {
            assert!(err.contains(n), "expected {n:?} in: {err}");
        }
    }
}

/// The config defaults are §4.2's recipe as paper.rs holds it (config.rs cannot read paper.rs,
/// which builds on config's enums, so its defaults are checked here).
#[test]
fn config_defaults_are_the_papers_cifar_recipe() {
    let c = Config::from_toml("[model]\nfamily = \"cifar\"\ndepth = 20\n").unwrap();
    let (o, s) = (&c.optimizer, &c.schedule);
    assert_eq!(
        (o.lr, o.momentum, o.weight_decay, o.batch_size),
        (
            paper::CIFAR_LR,
            paper::MOMENTUM,
            paper::WEIGHT_DECAY,
            paper::CIFAR_BATCH
        )
    );
    assert_eq!(
        (s.iterations, s.milestones.as_slice(), s.gamma),
        (
            paper::CIFAR_ITERATIONS,
            &paper::CIFAR_MILESTONES[..],
            paper::LR_DIVISOR_GAMMA
        )
    );
    let w: resnet::config::WarmupConfig = toml::from_str("").unwrap();
    assert_eq!(
        (w.lr, w.until_train_error),
        (paper::WARMUP_LR, paper::WARMUP_UNTIL_TRAIN_ERROR)
    );
}
