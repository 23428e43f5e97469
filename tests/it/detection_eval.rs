//! Detection scoring against the official evaluators themselves (issue 24): every COCO number
//! of `resnet::eval::detection` equals pycocotools' `COCOeval` (scripts/reference/coco_eval.py)
//! and every VOC number the VOC devkit's algorithm (scripts/reference/voc_eval.py), to 1e-6, on
//! many generated detection files over generated ground truth: perturbed ground truth,
//! duplicates, false positives, a class without ground truth, a class without detections,
//! images without detections, ties in score, tiny, empty and huge boxes, crowd and difficult
//! boxes, more than 100 detections per image and category. Coordinates are multiples of 1/16,
//! so both sides compute the same IoUs to the last bit. Plus the results reader's refusals.
//! Skips visibly (support's `skip`) when .venv's python lacks numpy or pycocotools
//! (scripts/setup-reference.sh installs them).
use crate::support;

use resnet::config::Config;
use resnet::data::detection::{self, Detection, DetectionSplit, GtImage, GtObject, SplitKind};
use resnet::eval::detection::{coco, report, results, voc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A splitmix64 stream: the generated data are a pure function of the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    /// A multiple of 1/16 in [lo, hi].
    fn q(&mut self, lo: f64, hi: f64) -> f64 {
        let lo = (lo * 16.0).ceil() / 16.0;
        let steps = ((hi - lo) * 16.0).floor().max(0.0) as u64;
        lo + self.below(steps + 1) as f64 / 16.0
    }
}

const CLASSES: usize = 6;
/// Category ids out of order and with gaps; the last class never has ground truth.
const CATEGORY_IDS: [u64; CLASSES] = [3, 1, 8, 12, 20, 7];

/// Generated ground truth: 40 images (ids descending, with gaps), 0-6 objects each of classes
/// 0-4, tiny, huge and ordinary boxes, crowd and difficult ones, COCO areas that are not the box's.
fn ground_truth(seed: u64) -> DetectionSplit {
    let mut r = Rng(seed);
    let images = (0..40)
        .map(|i| {
            let (w, h) = (200 + r.below(440) as u32, 150 + r.below(330) as u32);
            let n = r.below(7);
            let objects = (0..n)
                .map(|_| gt_object(&mut r, w as f64, h as f64))
                .collect();
            GtImage {
                id: 1000 - 7 * i,
                name: format!("im{i}"),
                path: PathBuf::from(format!("im{i}.jpg")),
                width: w,
                height: h,
                objects,
            }
        })
        .collect();
    DetectionSplit {
        classes: (0..CLASSES).map(|c| format!("c{c}")).collect(),
        category_ids: CATEGORY_IDS.to_vec(),
        images,
    }
}

fn gt_object(r: &mut Rng, w: f64, h: f64) -> GtObject {
    let (bw, bh) = match r.below(10) {
        0 | 1 => (r.q(0.5, 8.0), r.q(0.5, 8.0)),
        2 => (r.q(w * 0.8, w), r.q(h * 0.8, h)),
        _ => (r.q(8.0, w / 2.0), r.q(8.0, h / 2.0)),
    };
    let (x, y) = (r.q(0.0, w - bw), r.q(0.0, h - bh));
    let area = if r.chance(0.3) {
        bw * bh * 0.75
    } else {
        bw * bh
    };
    GtObject {
        class: r.below(CLASSES as u64 - 1) as usize,
        bbox: [x, y, x + bw, y + bh],
        area,
        crowd: r.chance(0.08),
        difficult: r.chance(0.1),
    }
}

/// A box near `b`: each side moved by up to `frac` of the box's size (x1 <= x2 kept).
fn jitter(r: &mut Rng, b: &[f64; 4], frac: f64) -> [f64; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let mut m = |v: f64, s: f64| v + r.q(-frac * s, frac * s);
    let (x1, y1, x2, y2) = (m(b[0], w), m(b[1], h), m(b[2], w), m(b[3], h));
    [x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)]
}

/// The kinds of generated detection files.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Perturbed,
    Duplicates,
    FalsePositives,
    Ties,
    TinyHuge,
    Crowded,
    Sparse,
}

const KINDS: [Kind; 7] = [
    Kind::Perturbed,
    Kind::Duplicates,
    Kind::FalsePositives,
    Kind::Ties,
    Kind::TinyHuge,
    Kind::Crowded,
    Kind::Sparse,
];

fn score(r: &mut Rng, kind: Kind) -> f64 {
    match kind {
        Kind::Ties => [0.25, 0.5, 0.75][r.below(3) as usize],
        _ => r.below(1024) as f64 / 1024.0,
    }
}

fn random_box(r: &mut Rng, im: &GtImage, kind: Kind) -> [f64; 4] {
    let (w, h) = (im.width as f64, im.height as f64);
    let (bw, bh) = match (kind, r.below(3)) {
        (Kind::TinyHuge, 0) => (r.q(0.0, 2.0), r.q(0.0, 2.0)),
        (Kind::TinyHuge, 1) => (r.q(w, 2.0 * w), r.q(h, 2.0 * h)),
        _ => (r.q(1.0, w / 2.0), r.q(1.0, h / 2.0)),
    };
    let (x, y) = (r.q(0.0, w), r.q(0.0, h));
    [x, y, x + bw, y + bh]
}

/// One generated detections file of `kind` over `split`, in shuffled order.
fn detections(split: &DetectionSplit, kind: Kind, seed: u64) -> Vec<Detection> {
    let mut r = Rng(seed);
    let mut v = Vec::new();
    for (i, im) in split.images.iter().enumerate() {
        if matches!(kind, Kind::Sparse) && i % 2 == 0 {
            continue; // images without detections
        }
        for o in &im.objects {
            if matches!(kind, Kind::Sparse) && o.class == 1 {
                continue; // a class with ground truth and no detection
            }
            let copies = match kind {
                Kind::Duplicates => 1 + r.below(3),
                _ => u64::from(r.chance(0.85)),
            };
            for _ in 0..copies {
                let bbox = jitter(&mut r, &o.bbox, 0.25);
                let score = score(&mut r, kind);
                v.push(Detection {
                    image_id: im.id,
                    class: o.class,
                    bbox,
                    score,
                });
            }
        }
        let extra = match kind {
            Kind::FalsePositives | Kind::Ties | Kind::TinyHuge => r.below(12),
            Kind::Crowded if i % 13 == 0 => 150 + r.below(150),
            _ => 0,
        };
        for _ in 0..extra {
            let class = if matches!(kind, Kind::Crowded) {
                2
            } else {
                r.below(CLASSES as u64) as usize
            };
            let bbox = random_box(&mut r, im, kind);
            let score = score(&mut r, kind);
            v.push(Detection {
                image_id: im.id,
                class,
                bbox,
                score,
            });
        }
    }
    for i in (1..v.len()).rev() {
        let j = r.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

/// The split as a COCO instances json (with a `difficult` key, which only voc_eval.py reads).
fn coco_json(split: &DetectionSplit) -> Value {
    let mut anns = Vec::new();
    for im in &split.images {
        for o in &im.objects {
            let [x1, y1, x2, y2] = o.bbox;
            anns.push(json!({
                "id": anns.len() + 1, "image_id": im.id,
                "category_id": split.category_ids[o.class],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": o.area,
                "iscrowd": u8::from(o.crowd), "difficult": u8::from(o.difficult),
            }));
        }
    }
    json!({
        "images": split.images.iter().map(|im| json!({
            "id": im.id, "width": im.width, "height": im.height, "file_name": im.name,
        })).collect::<Vec<_>>(),
        "annotations": anns,
        "categories": split.classes.iter().zip(&split.category_ids)
            .map(|(n, id)| json!({"id": id, "name": n})).collect::<Vec<_>>(),
    })
}

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Whether .venv's python imports numpy and pycocotools.
fn references_present() -> bool {
    Command::new(python())
        .args(["-c", "import numpy, pycocotools.cocoeval"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a reference script with `--gt GT --results RESULTS` and `extra`, and parses its JSON.
fn reference(script: &str, gt: &Path, results: &Path, extra: &[&str]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new(python())
        .arg(root.join(script))
        .arg("--gt")
        .arg(gt)
        .arg("--results")
        .arg(results)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn close(ours: Option<f64>, theirs: &Value, what: &str) {
    match (ours, theirs.as_f64()) {
        (None, None) => assert!(theirs.is_null(), "{what}: {theirs}"),
        (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-6, "{what}: ours {a}, reference {b}"),
        _ => panic!("{what}: ours {ours:?}, reference {theirs}"),
    }
}

/// Writes the split as `dir/gt.json` for the references.
fn write_gt(dir: &Path, split: &DetectionSplit) -> PathBuf {
    let gt = dir.join("gt.json");
    std::fs::write(&gt, serde_json::to_vec(&coco_json(split)).unwrap()).unwrap();
    gt
}

/// Ours against both references (ground truth `gt`, a COCO json) on one detections file;
/// returns the results file.
fn compare(
    dir: &Path,
    gt: &Path,
    split: &DetectionSplit,
    dets: &[Detection],
    what: &str,
) -> PathBuf {
    let res = dir.join(format!("{what}.json"));
    results::write(&res, split, dets).unwrap();
    let read = results::read(&res, split).unwrap();
    let differ = read.iter().zip(dets).position(|(a, b)| a != b);
    assert_eq!(
        (read.len(), differ),
        (dets.len(), None),
        "{what}: the file reads back as written"
    );
    let ours = report::score(split, &read).unwrap();

    let c = reference("scripts/reference/coco_eval.py", gt, &res, &[]);
    for (i, s) in ours.coco.stats.iter().enumerate() {
        close(
            Some(*s),
            &c["stats"][i],
            &format!("{what}: COCO stats[{i}]"),
        );
    }
    let lines: Vec<String> = serde_json::from_value(c["summary"].clone()).unwrap();
    assert_eq!(
        coco::summary_lines(&ours.coco.stats),
        lines,
        "{what}: summary lines"
    );
    compare_per_class(&ours, split, &c, what);
    let v = reference("scripts/reference/voc_eval.py", gt, &res, &[]);
    compare_voc(&ours, split, &v, what);
    res
}

/// Our per-class COCO AP and AP50 against coco_eval.py's output `c`.
fn compare_per_class(
    ours: &report::DetectionScores,
    split: &DetectionSplit,
    c: &Value,
    what: &str,
) {
    for (k, id) in split.category_ids.iter().enumerate() {
        let pc = &c["per_class"][id.to_string()];
        close(
            ours.coco.per_class[k].ap,
            &pc["ap"],
            &format!("{what}: COCO AP of {id}"),
        );
        close(
            ours.coco.per_class[k].ap50,
            &pc["ap50"],
            &format!("{what}: COCO AP50 of {id}"),
        );
    }
}

/// Our VOC numbers against voc_eval.py's output `v`.
fn compare_voc(ours: &report::DetectionScores, split: &DetectionSplit, v: &Value, what: &str) {
    for (k, id) in split.category_ids.iter().enumerate() {
        let pv = &v["per_class"][id.to_string()];
        close(
            ours.voc[k].ap07,
            &pv["ap07"],
            &format!("{what}: VOC07 AP of {id}"),
        );
        close(
            ours.voc[k].ap,
            &pv["ap"],
            &format!("{what}: VOC AP of {id}"),
        );
        assert_eq!(
            Some(ours.voc[k].npos as u64),
            pv["npos"].as_u64(),
            "{what}: npos of {id}"
        );
    }
    close(
        voc::mean(ours.voc.iter().map(|x| x.ap07)),
        &v["map07"],
        &format!("{what}: VOC07 mAP"),
    );
    close(
        voc::mean(ours.voc.iter().map(|x| x.ap)),
        &v["map"],
        &format!("{what}: VOC mAP"),
    );
}

#[test]
fn generated_detection_files_score_as_pycocotools_and_the_voc_devkit() {
    if !references_present() {
        return support::skip(
            "generated_detection_files_score_as_pycocotools_and_the_voc_devkit",
            ".venv/bin/python with numpy and pycocotools (scripts/setup-reference.sh)",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for (seed, gt_seed) in [(1u64, 11u64), (2, 12)] {
        let split = ground_truth(gt_seed);
        assert!(split.images.iter().any(|i| i.objects.is_empty()));
        let gt = write_gt(dir.path(), &split);
        for kind in KINDS {
            let dets = detections(&split, kind, seed * 100 + kind as u64);
            compare(dir.path(), &gt, &split, &dets, &format!("{kind:?}-{seed}"));
        }
    }
}

#[test]
fn perfect_detections_score_one_and_none_zero() {
    let split = ground_truth(11);
    let perfect: Vec<Detection> = split
        .images
        .iter()
        .flat_map(|im| {
            im.objects.iter().map(|o| Detection {
                image_id: im.id,
                class: o.class,
                bbox: o.bbox,
                score: 0.5,
            })
        })
        .collect();
    let s = report::score(&split, &perfect).unwrap();
    for k in 0..CLASSES - 1 {
        assert_eq!(s.voc[k].ap, Some(1.0), "class {k}");
        let ap = s.coco.per_class[k].ap.unwrap();
        assert!((ap - 1.0).abs() < 1e-12, "class {k}: {ap}");
    }
    // The class without ground truth has no AP in either protocol.
    assert_eq!(
        (s.voc[CLASSES - 1].ap, s.coco.per_class[CLASSES - 1].ap),
        (None, None)
    );
    let none = report::score(&split, &[]).unwrap();
    assert_eq!(none.coco.stats[0], 0.0);
    assert_eq!(none.voc[0].ap07, Some(0.0));
}

/// Writes `text` as a results file and reads it against `split`: the error line.
fn refused(dir: &Path, split: &DetectionSplit, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    let e = format!("{:#}", results::read(&p, split).unwrap_err());
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn hostile_results_files_are_one_line_errors() {
    let split = ground_truth(11);
    let dir = tempfile::tempdir().unwrap();
    let d = |img: &str, cat: &str, bbox: &str, score: &str| {
        format!(
            r#"[{{"image_id": 1000, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}}, {{"image_id": {img}, "category_id": {cat}, "bbox": {bbox}, "score": {score}}}]"#
        )
    };
    let e = refused(
        dir.path(),
        &split,
        "img.json",
        &d("5", "3", "[1, 2, 3, 4]", "0.5"),
    );
    assert!(e.contains("entry 1") && e.contains("image_id 5"), "{e}");
    let e = refused(
        dir.path(),
        &split,
        "cat.json",
        &d("1000", "99", "[1, 2, 3, 4]", "0.5"),
    );
    assert!(e.contains("category_id 99"), "{e}");
    let e = refused(
        dir.path(),
        &split,
        "neg.json",
        &d("1000", "3", "[1, 2, -3, 4]", "0.5"),
    );
    assert!(e.contains("negative width or height"), "{e}");
    let e = refused(
        dir.path(),
        &split,
        "nan.json",
        &d("1000", "3", "[1, 2, 3, 4]", "NaN"),
    );
    assert!(e.contains("not a COCO results file"), "{e}");
    let e = refused(
        dir.path(),
        &split,
        "inf.json",
        &d("1000", "3", "[1, 2, 3, 1e999]", "0.5"),
    );
    assert!(e.contains("not a COCO results file"), "{e}");
    let e = refused(
        dir.path(),
        &split,
        "short.json",
        &d("1000", "3", "[1, 2, 3]", "0.5"),
    );
    assert!(e.contains("not a COCO results file"), "{e}");
    let e = refused(dir.path(), &split, "obj.json", r#"{"image_id": 1000}"#);
    assert!(e.contains("not a COCO results file"), "{e}");
    refused(
        dir.path(),
        &split,
        "cut.json",
        &d("1000", "3", "[1, 2, 3, 4]", "0.5")[..40],
    );
    // An empty list is zero detections.
    std::fs::write(dir.path().join("empty.json"), "[]").unwrap();
    assert!(results::read(&dir.path().join("empty.json"), &split)
        .unwrap()
        .is_empty());
}

/// The dogs-det test split (683 images, 745 boxes) through a repository config, and the
/// archive's extracted root; `None` (after a visible skip) without the archive or references.
fn dogs(test: &str, config: &str) -> Option<(DetectionSplit, PathBuf)> {
    if support::shared_data("dogs-det.tar.gz").is_none() {
        support::skip(test, "../shared/data/dogs-det.tar.gz");
        return None;
    }
    if !references_present() {
        support::skip(
            test,
            ".venv/bin/python with numpy and pycocotools (scripts/setup-reference.sh)",
        );
        return None;
    }
    let cfg = Config::load(&repo_config(config)).unwrap();
    let root = detection::detection_root(&cfg).unwrap();
    let split = detection::read_split_at(&cfg, &root, SplitKind::Test).unwrap();
    assert_eq!((split.images.len(), split.boxes()), (683, 745));
    Some((split, root))
}

fn repo_config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name)
}

/// The image's name without extension: COCO's `file_name` and VOC's id name the same photo.
fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |x| x.0)
}

/// `dets` of `from`'s images moved to the images of `to` with the same name (the two layouts
/// number the same photographs differently), order kept.
fn remap(dets: &[Detection], from: &DetectionSplit, to: &DetectionSplit) -> Vec<Detection> {
    let name: std::collections::HashMap<u64, &str> =
        from.images.iter().map(|i| (i.id, stem(&i.name))).collect();
    let id: std::collections::HashMap<&str, u64> =
        to.images.iter().map(|i| (stem(&i.name), i.id)).collect();
    dets.iter()
        .map(|d| Detection {
            image_id: id[name[&d.image_id]],
            ..d.clone()
        })
        .collect()
}

/// The dogs test split read through the VOC layout (dogs_voc.toml).
fn dogs_voc() -> DetectionSplit {
    let cfg = Config::load(&repo_config("dogs_voc.toml")).unwrap();
    detection::read_split(&cfg, SplitKind::Test).unwrap()
}

#[test]
fn dogs_test_set_scores_as_pycocotools_and_the_voc_devkit() {
    let test = "dogs_test_set_scores_as_pycocotools_and_the_voc_devkit";
    let Some((split, root)) = dogs(test, "dogs_coco.toml") else {
        return;
    };
    // The archive's own COCO annotations for pycocotools and voc_eval.py; its VOC XML files
    // (corners as continuous coordinates: voc_one_based = false) for voc_eval.py against ours
    // on the VOC layout.
    let gt = root.join("annotations/instances_test.json");
    let voc_split = dogs_voc();
    let classes = Config::load(&repo_config("dogs_voc.toml"))
        .unwrap()
        .data
        .detection
        .classes;
    let dir = tempfile::tempdir().unwrap();
    for kind in KINDS {
        let dets = detections(&split, kind, 300 + kind as u64);
        compare(dir.path(), &gt, &split, &dets, &format!("dogs-{kind:?}"));
        let voc_dets = remap(&dets, &split, &voc_split);
        let res = dir.path().join(format!("dogs-voc-{kind:?}.json"));
        results::write(&res, &voc_split, &voc_dets).unwrap();
        let ours = report::score(&voc_split, &voc_dets).unwrap();
        let xml = reference(
            "scripts/reference/voc_eval.py",
            &root,
            &res,
            &[
                "--split",
                "test",
                "--continuous",
                "--classes",
                &classes.join(","),
            ],
        );
        compare_voc(&ours, &voc_split, &xml, &format!("dogs-{kind:?} (VOC XML)"));
        // Same boxes, same detections in the same order: the same VOC numbers on both layouts.
        assert_eq!(
            ours.voc,
            report::score(&split, &dets).unwrap().voc,
            "{kind:?}"
        );
    }
}

#[test]
fn eval_detections_prints_and_writes_both_tables_for_either_layout() {
    let test = "eval_detections_prints_and_writes_both_tables_for_either_layout";
    let Some((split, root)) = dogs(test, "dogs_coco.toml") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Distinct scores: the layouts number the images differently, and COCO breaks ties in
    // score by image id.
    let mut dets = detections(&split, Kind::FalsePositives, 7);
    let n = dets.len() as f64;
    for (i, d) in dets.iter_mut().enumerate() {
        d.score = (i as f64 + 1.0) / (n + 1.0);
    }
    let voc_split = dogs_voc();
    let mut written = Vec::new();
    for (config, s, d) in [
        ("dogs_coco.toml", &split, dets.clone()),
        (
            "dogs_voc.toml",
            &voc_split,
            remap(&dets, &split, &voc_split),
        ),
    ] {
        let res = dir.path().join(format!("{config}.json"));
        results::write(&res, s, &d).unwrap();
        let out = dir.path().join(config);
        let o = support::resnet(&[
            "eval".as_ref(),
            "--detections".as_ref(),
            res.as_os_str(),
            "--config".as_ref(),
            repo_config(config).as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        assert!(o.status.success(), "{config}: {}", support::stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        for l in [
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
            "VOC07 AP",
            "mean",
        ] {
            assert!(text.contains(l), "{config}: no {l:?} in {text}");
        }
        for f in [
            "per_class.csv",
            "per_class.md",
            "coco_summary.csv",
            "coco_summary.md",
        ] {
            assert!(out.join(f).is_file(), "{config}: {f}");
        }
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(out.join("scores.json")).unwrap()).unwrap();
        for c in v["per_class"].as_array_mut().unwrap() {
            c["class"] = Value::Null; // wnids in the VOC layout, breed names in COCO's
        }
        written.push(v);
    }
    // Both layouts hold the same boxes: the same numbers, to the last digit.
    assert_eq!(written[0], written[1]);
    let ours = &written[0];
    let c = reference(
        "scripts/reference/coco_eval.py",
        &root.join("annotations/instances_test.json"),
        &dir.path().join("dogs_coco.toml.json"),
        &[],
    );
    for i in 0..12 {
        close(
            ours["coco_stats"][i].as_f64(),
            &c["stats"][i],
            &format!("stats[{i}]"),
        );
    }
}

#[test]
fn eval_detections_refuses_bad_input_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let tiny = support::tiny().write(dir.path(), "tiny");
    let o = support::resnet(&[
        "eval".as_ref(),
        "--detections".as_ref(),
        missing.as_os_str(),
        "--config".as_ref(),
        tiny.as_os_str(),
    ]);
    support::refused(&o, &["data.dataset", "synthetic"]);
    let o = support::resnet(&["eval", "--detections", "x.json"]);
    assert!(!o.status.success());
    assert!(
        support::stderr(&o).contains("--config"),
        "{}",
        support::stderr(&o)
    );
    if support::shared_data("dogs-det.tar.gz").is_some() {
        let o = support::resnet(&[
            "eval".as_ref(),
            "--detections".as_ref(),
            missing.as_os_str(),
            "--config".as_ref(),
            repo_config("dogs_coco.toml").as_os_str(),
        ]);
        support::refused(&o, &["missing.json"]);
    }
}
