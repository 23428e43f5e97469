//! The detector's region operations (paper appendix "Object Detection Baselines": RoI features
//! before conv5_1, NMS of proposals and detections) against torchvision 0.26.0 itself: our
//! RoIAlign (`net::detection::roi_align`, built from tch ops) gives torchvision's `roi_align` outputs and
//! feature gradients, our `nms` / `batched_nms` (`net::detection::nms`) keep torchvision's boxes
//! and our box coding (`net::detection::box_coding`) equals its `BoxCoder`, on
//! random maps, boxes partly or wholly outside the map, tiny and huge boxes, several images and
//! classes. torchvision's side: scripts/reference/vision_ops.py, run from .venv.
use crate::support;

use resnet::net::detection::box_coding::{decode, encode};
use resnet::net::detection::nms::{batched_nms, nms};
use resnet::net::detection::roi_align::RoiAlign;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use tch::{Device, Kind, Tensor};

const NEEDS: &str =
    ".venv/bin/python importing torchvision and safetensors (scripts/setup-reference.sh)";

/// (output size, spatial scale, sampling ratio, aligned): Detectron's C4 (14, 1/16, 0 or 2,
/// not aligned), torchvision's (7, ..., 2), Detectron2's aligned, a single sample.
const CONFIGS: [[f32; 4]; 4] = [
    [14.0, 0.25, 0.0, 0.0],
    [7.0, 0.25, 2.0, 0.0],
    [5.0, 0.25, 0.0, 1.0],
    [3.0, 0.25, 1.0, 1.0],
];

/// Regions over a 2-image batch of 52x68-pixel images (13x17 feature maps at scale 1/4): random
/// boxes, some reaching outside the image or wholly outside, tiny ones and the whole image.
fn rois() -> Tensor {
    tch::manual_seed(3);
    let k = 48;
    let b = Tensor::randint(2, [k, 1], (Kind::Float, Device::Cpu));
    let xy = Tensor::rand([k, 2], (Kind::Float, Device::Cpu)) * 90.0 - 20.0;
    let wh = Tensor::rand([k, 2], (Kind::Float, Device::Cpu)).pow_tensor_scalar(3) * 70.0;
    let mut r = Tensor::cat(&[b, xy.shallow_clone(), &xy + wh], 1);
    let fixed = Tensor::from_slice(&[
        0f32, 0., 0., 68., 52., 1., 10., 10., 10.5, 10.2, 1., -40., -40., -30., -30., 0., 60., 45.,
        200., 200.,
    ])
    .view([4, 5]);
    r = Tensor::cat(&[r, fixed], 0);
    r
}

/// Clustered boxes of 4 classes with distinct scores (ties would make the order unspecified).
fn nms_inputs() -> (Tensor, Tensor, Tensor) {
    tch::manual_seed(5);
    let n = 300;
    let centres = (Tensor::rand([8, 2], (Kind::Float, Device::Cpu)) * 200.0).repeat([n / 8 + 1, 1]);
    let centres = centres.narrow(0, 0, n);
    let jitter = Tensor::randn([n, 2], (Kind::Float, Device::Cpu)) * 6.0;
    let half = Tensor::rand([n, 2], (Kind::Float, Device::Cpu)) * 30.0 + 2.0;
    let c = centres + jitter;
    let boxes = Tensor::cat(&[&c - &half, &c + &half], 1);
    let scores = Tensor::randperm(n, (Kind::Float, Device::Cpu)) / n as f64;
    let idxs = Tensor::randint(4, [n], (Kind::Int64, Device::Cpu));
    (boxes, scores, idxs)
}

fn torchvision(py: &Path, dir: &Path, inputs: &[(&str, Tensor)]) -> HashMap<String, Tensor> {
    let src = dir.join("in.safetensors");
    let dst = dir.join("out.safetensors");
    Tensor::write_safetensors(inputs, &src).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference/vision_ops.py");
    let o = Command::new(py)
        .arg(script)
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "vision_ops.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Tensor::read_safetensors(&dst)
        .unwrap()
        .into_iter()
        .collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn roi_align_and_nms_equal_torchvision() {
    let Some(py) = support::venv_python("torchvision, safetensors") else {
        return support::skip("roi_align_and_nms_equal_torchvision", NEEDS);
    };
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(1);
    let features = Tensor::randn([2, 3, 13, 17], (Kind::Float, Device::Cpu));
    let rois = rois();
    let grad_w = Tensor::randn([rois.size()[0], 3, 14, 14], (Kind::Float, Device::Cpu));
    let (boxes, scores, idxs) = nms_inputs();
    let configs = Tensor::from_slice(CONFIGS.as_flattened()).view([4, 4]);
    let coding = coding_inputs();
    let tv = torchvision(
        &py,
        dir.path(),
        &[
            ("features", features.shallow_clone()),
            ("rois", rois.shallow_clone()),
            ("grad_w", grad_w.shallow_clone()),
            ("configs", configs),
            ("boxes", boxes.shallow_clone()),
            ("scores", scores.shallow_clone()),
            ("idxs", idxs.shallow_clone()),
            ("coding_ref", coding.0.shallow_clone()),
            ("coding_tgt", coding.1.shallow_clone()),
            ("coding_deltas", coding.2.shallow_clone()),
        ],
    );
    for (m, c) in CONFIGS.iter().enumerate() {
        let op = RoiAlign {
            output: (c[0] as i64, c[0] as i64),
            spatial_scale: c[1] as f64,
            sampling_ratio: c[2] as i64,
            aligned: c[3] != 0.0,
        };
        let f = features.copy().set_requires_grad(true);
        let ours = op.forward(&f, &rois).unwrap();
        let s = c[0] as i64;
        let w = grad_w.narrow(2, 0, s).narrow(3, 0, s);
        (&ours * w).sum(Kind::Float).backward();
        assert!(
            ours.abs().sum(Kind::Float).double_value(&[]) > 1.0,
            "{c:?}: all zero"
        );
        let d = max_diff(&ours.detach(), &tv[&format!("align_{m}")]);
        assert!(d < 1e-5, "roi_align {c:?}: outputs differ by {d}");
        let g = max_diff(&f.grad(), &tv[&format!("grad_{m}")]);
        assert!(g < 1e-4, "roi_align {c:?}: gradients differ by {g}");
    }
    let keep = |t: Tensor| Vec::<i64>::try_from(t).unwrap();
    for (name, thr) in [("nms_50", 0.5), ("nms_70", 0.7)] {
        let ours = keep(nms(&boxes, &scores, thr).unwrap());
        assert_eq!(ours, keep(tv[name].shallow_clone()), "{name}");
        assert!(
            ours.len() > 10 && ours.len() < 300,
            "{name}: {} kept",
            ours.len()
        );
    }
    let ours = keep(batched_nms(&boxes, &scores, &idxs, 0.5).unwrap());
    assert_eq!(ours, keep(tv["batched_50"].shallow_clone()), "batched_nms");
    for (name, w) in [("1", [1.0; 4]), ("w", [10.0, 10.0, 5.0, 5.0])] {
        let e = max_diff(
            &encode(&coding.0, &coding.1, w),
            &tv[&format!("encode_{name}")],
        );
        assert!(e < 1e-5, "encode {w:?}: {e}");
        let d = max_diff(
            &decode(&coding.0, &coding.2, w),
            &tv[&format!("decode_{name}")],
        );
        assert!(d < 1e-3, "decode {w:?}: {d}");
    }
}

/// Reference boxes (anchors or proposals), targets near them, and deltas up to past the clamp.
fn coding_inputs() -> (Tensor, Tensor, Tensor) {
    tch::manual_seed(7);
    let opts = (Kind::Float, Device::Cpu);
    let xy = Tensor::rand([64, 2], opts) * 500.0;
    let wh = Tensor::rand([64, 2], opts) * 300.0 + 1.0;
    let reference = Tensor::cat(&[xy.shallow_clone(), &xy + &wh], 1);
    let target = &reference + Tensor::randn([64, 4], opts) * 20.0;
    let target = Tensor::cat(
        &[target.narrow(1, 0, 2), target.narrow(1, 0, 2) + wh * 1.3],
        1,
    );
    let deltas = Tensor::randn([64, 4], opts) * 2.0;
    (reference, target, deltas)
}
