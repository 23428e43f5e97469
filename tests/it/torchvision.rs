//! Table 1's nets under torchvision's own names, both ways: a checkpoint trained here loads into
//! `torchvision.models.resnet18` with `strict=True` (after `resnet export`) and gives our logits
//! on a real Imagewoof photograph, and torchvision's weights (a plain state dict, saved by
//! torchvision's side) are tested by `resnet eval --config` with torchvision's logits.
//! The torchvision side is scripts/reference/torchvision_logits.py, run from .venv.
use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::nn::ModuleT;
use tch::Tensor;

const NEEDS: &str = "needs torchvision + safetensors in .venv (scripts/setup-bench.sh) and \
../shared/data/imagewoof2-320-sub116x60.tar.gz; run with `scripts/test --test it torchvision:: -- --ignored`";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn imagewoof() -> PathBuf {
    let p = support::shared_data("imagewoof2-320-sub116x60.tar.gz")
        .unwrap_or_else(|| panic!("{NEEDS}: the Imagewoof archive is missing"));
    p.canonicalize().unwrap()
}

/// The binary run to its end, which must succeed.
fn resnet(args: &[&str]) -> Output {
    let o = support::resnet(args);
    assert!(
        o.status.success(),
        "resnet {args:?}: {}",
        support::stderr(&o)
    );
    o
}

/// torchvision's side: `scripts/reference/torchvision_logits.py ARGS`.
fn torchvision(args: &[&str]) {
    let py = root().join(".venv/bin/python");
    let o = Command::new(&py)
        .arg(root().join("scripts/reference/torchvision_logits.py"))
        .args(["--arch", "resnet18", "--classes", "10"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{NEEDS}: {}: {e}", py.display()));
    assert!(
        o.status.success(),
        "{NEEDS}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A ResNet-18 with option-B shortcuts (torchvision's) on Imagewoof at a quarter of the paper's
/// resolution, 4 iterations: a checkpoint trained on real photographs in seconds.
fn config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"name = "tv18"
[model]
family = "imagenet"
depth = 18
kind = "residual"
shortcut = "B"
classes = 10
[data]
dataset = "image_folder"
path = "{data}"
augment = "imagenet"
cache_dir = "{cache}"
[data.imagenet]
scale_min = 64
scale_max = 96
crop = 56
test_resize = 64
multi_scale = [56, 64]
[optimizer]
lr = 0.025
batch_size = 16
[schedule]
mode = "milestones"
milestones = []
iterations = 4
[run]
device = "cpu"
threads = 2
log_every = 2
eval_every = 4
checkpoint_every = 4
eval_batch_size = 100
out_dir = "{out}"
"#,
        data = imagewoof().display(),
        cache = dir.join("cache").display(),
        out = dir.join("run").display()
    );
    let p = dir.join("tv18.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The first validation photograph of the archive, resized (shorter side 128) and centre-cropped
/// to 112, as a [1, 3, 112, 112] float tensor in [-0.45, 0.55].
fn real_image(dir: &Path) -> Tensor {
    use std::io::Read;
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(imagewoof()).unwrap());
    let mut tar = tar::Archive::new(gz);
    let mut entry = tar
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| {
            let p = e.path().unwrap().to_string_lossy().into_owned();
            p.contains("val/") && p.ends_with(".JPEG")
        })
        .expect("a val JPEG in the archive");
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    let path = dir.join("photo.jpg");
    std::fs::write(&path, bytes).unwrap();
    let img = resnet::data::image::decode_rgb(&path).unwrap();
    let img = resnet::data::image::resize_shorter(&img, 128);
    let (y, x) = ((img.height() - 112) / 2, (img.width() - 112) / 2);
    let mut chw = vec![0u8; 3 * 112 * 112];
    resnet::data::image::crop_chw(&img, y, x, 112, &mut chw);
    let t = Tensor::from_slice(&chw).view([1, 3, 112, 112]);
    t.to_kind(tch::Kind::Float) / 255.0 - 0.45
}

/// Our network of an opened checkpoint or weights file, on `input`.
fn our_logits(mut opened: resnet::eval::Opened, input: &Tensor) -> Tensor {
    let (_, _vs, model) = opened.restore(None).unwrap();
    tch::no_grad(|| model.forward_t(input, false))
}

/// torchvision's logits with the weights `w` on `input`.
fn torchvision_logits(dir: &Path, w: &Path, input: &Tensor) -> Tensor {
    let (i, o) = (
        dir.join("input.safetensors"),
        dir.join("logits.safetensors"),
    );
    Tensor::write_safetensors(&[("input", input)], &i).unwrap();
    torchvision(&[
        "--weights",
        w.to_str().unwrap(),
        "--input",
        i.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
    ]);
    let mut t = Tensor::read_safetensors(&o).unwrap();
    t.remove(0).1
}

fn assert_same_logits(ours: &Tensor, theirs: &Tensor) {
    assert_eq!(ours.size(), [1, 10]);
    let diff = (ours - theirs).abs().max().double_value(&[]);
    let scale = theirs.abs().max().double_value(&[]);
    assert!(
        diff <= 1e-4 * (1.0 + scale),
        "logits differ by {diff} (scale {scale}): ours {ours:?} torchvision {theirs:?}"
    );
}

#[test]
#[ignore = "needs torchvision (scripts/setup-bench.sh) and ../shared/data/imagewoof2-320-sub116x60.tar.gz"]
fn a_checkpoint_trained_here_loads_into_torchvision_strictly_with_our_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    resnet(&["train", "--config", cfg.to_str().unwrap()]);
    let ckpt = tmp.path().join("run/last.safetensors");
    let exported = tmp.path().join("tv.safetensors");
    let o = resnet(&[
        "export",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("iteration 4"));
    let input = real_image(tmp.path());
    let ours = our_logits(resnet::eval::open(&ckpt).unwrap(), &input);
    // strict=True inside the script: a missing or extra name fails it.
    assert_same_logits(&ours, &torchvision_logits(tmp.path(), &exported, &input));
}

#[test]
#[ignore = "needs torchvision (scripts/setup-bench.sh) and ../shared/data/imagewoof2-320-sub116x60.tar.gz"]
fn torchvision_weights_are_tested_by_eval_config_with_torchvisions_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let w = tmp.path().join("torchvision_init.safetensors");
    torchvision(&["--weights", w.to_str().unwrap(), "--save-init"]);
    let input = real_image(tmp.path());
    let ours = our_logits(resnet::eval::open_weights(&w, &cfg).unwrap(), &input);
    assert_same_logits(&ours, &torchvision_logits(tmp.path(), &w, &input));
    let csv = tmp.path().join("eval.csv");
    let o = resnet(&[
        "eval",
        "--checkpoint",
        w.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--ten-crop",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("600 images") && text.contains("10-crop"),
        "{text}"
    );
    let rows = resnet::run::records::read_eval(&csv).unwrap();
    assert_eq!((rows.len(), rows[0].iteration, rows[0].images), (1, 0, 600));
}

/// Runs on CI (no torchvision, no data): `export` then `eval --config` of the exported dict
/// measures exactly what `eval` of the checkpoint measures, and `--config` with one of our
/// checkpoints is refused (its own recipe says which network it is).
#[test]
fn exported_weights_evaluate_as_their_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = support::trained(tmp.path(), "tiny", 20, "");
    let cfg = tmp.path().join("tiny.toml");
    let ckpt = run.join("last.safetensors");
    let w = tmp.path().join("w.safetensors");
    let (ck, ws, c) = (
        ckpt.to_str().unwrap(),
        w.to_str().unwrap(),
        cfg.to_str().unwrap(),
    );
    resnet(&["export", "--checkpoint", ck, "--out", ws]);
    let (a, b) = (tmp.path().join("a.csv"), tmp.path().join("b.csv"));
    resnet(&["eval", "--checkpoint", ck, "--csv", a.to_str().unwrap()]);
    resnet(&[
        "eval",
        "--checkpoint",
        ws,
        "--config",
        c,
        "--csv",
        b.to_str().unwrap(),
    ]);
    let (a, b) = (
        resnet::run::records::read_eval(&a).unwrap().remove(0),
        resnet::run::records::read_eval(&b).unwrap().remove(0),
    );
    assert_eq!(
        (a.images, a.loss, a.top1_error, a.top5_error),
        (b.images, b.loss, b.top1_error, b.top5_error)
    );
    assert_eq!((a.iteration, b.iteration), (20, 0));
    let o = support::resnet(&["eval", "--checkpoint", ck, "--config", c]);
    support::refused(&o, &["carries its own recipe"]);
    assert!(std::fs::read(&ckpt).is_ok());
    let o = support::resnet(&["export", "--checkpoint", ck, "--out", ck]);
    support::refused(&o, &["is the checkpoint itself"]);
}
