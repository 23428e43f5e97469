//! `resnet eval --detections`: a COCO results file scored against a config's test split by
//! both protocols ([`super::voc`], [`super::coco`]), as two tables: per class (VOC07 AP, VOC AP,
//! COCO AP, AP50; their means) and COCO's 12-line summary in pycocotools' wording; written as
//! CSV and Markdown with `--out DIR`.
use super::coco::{self, summary_lines, CocoScores};
use super::results;
use super::voc::{self, VocClassAp};
use crate::data::detection::{self, Detection, DetectionSplit, SplitKind};
use crate::present::table::{write_atomic, Table};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Both protocols' scores of one detections list.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionScores {
    pub voc: Vec<VocClassAp>,
    pub coco: CocoScores,
}

/// Scores `dets` against `split` by both protocols.
pub fn score(split: &DetectionSplit, dets: &[Detection]) -> Result<DetectionScores> {
    let (v, c) = rayon::join(
        || voc::evaluate(split, dets),
        || coco::evaluate(split, dets),
    );
    Ok(DetectionScores { voc: v?, coco: c? })
}

/// An AP as a percentage with two decimals, `-` when undefined.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{:.2}", 100.0 * v))
}

/// Per class: ground-truth boxes VOC counts, detections, VOC07 AP, VOC AP, COCO AP, AP50 (%),
/// then the mean over the classes that have ground truth.
pub fn per_class_table(split: &DetectionSplit, s: &DetectionScores) -> Table {
    let mut t = Table::new([
        "class",
        "gt",
        "detections",
        "VOC07 AP",
        "VOC AP",
        "COCO AP",
        "AP50",
    ]);
    for (c, name) in split.classes.iter().enumerate() {
        let (v, k) = (&s.voc[c], &s.coco.per_class[c]);
        t.push(vec![
            name.clone(),
            v.npos.to_string(),
            v.detections.to_string(),
            pct(v.ap07),
            pct(v.ap),
            pct(k.ap),
            pct(k.ap50),
        ]);
    }
    let valid = |x: f64| (x > -1.0).then_some(x);
    t.push(vec![
        "mean".into(),
        s.voc.iter().map(|v| v.npos).sum::<usize>().to_string(),
        s.voc
            .iter()
            .map(|v| v.detections)
            .sum::<usize>()
            .to_string(),
        pct(voc::mean(s.voc.iter().map(|v| v.ap07))),
        pct(voc::mean(s.voc.iter().map(|v| v.ap))),
        pct(valid(s.coco.stats[0])),
        pct(valid(s.coco.stats[1])),
    ]);
    t
}

/// COCO's summary as a table: AP or AR, IoU, area, maxDets (pycocotools' line in columns, no
/// `|` to break Markdown) and the value with three decimals, as it prints.
pub fn summary_table(s: &DetectionScores) -> Table {
    let mut t = Table::new(["metric", "IoU", "area", "maxDets", "value"]);
    for (&(ap, thr, area, max_det), v) in coco::SUMMARY.iter().zip(&s.coco.stats) {
        let (lo, hi, _) = crate::paper::COCO_IOU_RANGE;
        let iou = thr.map_or_else(|| format!("{lo:0.2}:{hi:0.2}"), |x| format!("{x:0.2}"));
        t.push(vec![
            if ap { "AP" } else { "AR" }.to_string(),
            iou,
            area.to_string(),
            max_det.to_string(),
            format!("{v:0.3}"),
        ]);
    }
    t
}

/// The text `eval --detections` prints: the per-class table, then pycocotools' summary lines.
pub fn text(split: &DetectionSplit, s: &DetectionScores) -> String {
    let mut out = per_class_table(split, s).to_text();
    out.push('\n');
    for l in summary_lines(&s.coco.stats) {
        out += &l;
        out.push('\n');
    }
    out
}

/// Every number at full precision, for programs: COCO's 12 `stats` (`summarize`'s order) and
/// per class its category id, VOC07 AP, VOC AP, COCO AP and AP50 as fractions (null: undefined).
pub fn to_json(split: &DetectionSplit, s: &DetectionScores) -> serde_json::Value {
    let per_class: Vec<serde_json::Value> = (0..split.classes.len())
        .map(|c| {
            serde_json::json!({
                "class": split.classes[c], "category_id": split.category_ids.get(c),
                "npos": s.voc[c].npos, "detections": s.voc[c].detections,
                "voc07_ap": s.voc[c].ap07, "voc_ap": s.voc[c].ap,
                "coco_ap": s.coco.per_class[c].ap, "coco_ap50": s.coco.per_class[c].ap50,
            })
        })
        .collect();
    serde_json::json!({ "coco_stats": s.coco.stats, "per_class": per_class })
}

/// Writes `per_class.{csv,md}`, `coco_summary.{csv,md}` and `scores.json` ([`to_json`]) into
/// `dir`; returns their paths.
pub fn write(dir: &Path, split: &DetectionSplit, s: &DetectionScores) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for (stem, t) in [
        ("per_class", per_class_table(split, s)),
        ("coco_summary", summary_table(s)),
    ] {
        let csv = dir.join(format!("{stem}.csv"));
        t.write_csv(&csv)?;
        let md = dir.join(format!("{stem}.md"));
        write_atomic(&md, t.to_markdown().as_bytes())?;
        paths.extend([csv, md]);
    }
    let json = dir.join("scores.json");
    write_atomic(&json, &serde_json::to_vec_pretty(&to_json(split, s))?)?;
    paths.push(json);
    Ok(paths)
}

/// What `eval --detections` measured: the split, the scores, and the seconds spent reading the
/// ground truth, reading the detections and scoring them (both protocols).
pub struct Scored {
    pub split: DetectionSplit,
    pub detections: usize,
    pub scores: DetectionScores,
    pub seconds: [f64; 3],
}

/// `eval --detections FILE --config C`: the config's test split, the file read against it
/// (every entry checked), both protocols' scores.
pub fn score_file(file: &Path, config: &Path) -> Result<Scored> {
    let t0 = std::time::Instant::now();
    let cfg = crate::config::Config::load(config)?;
    let split = detection::read_split(&cfg, SplitKind::Test)?;
    let t1 = std::time::Instant::now();
    let dets = results::read(file, &split)?;
    let t2 = std::time::Instant::now();
    let scores = score(&split, &dets)?;
    let t3 = std::time::Instant::now();
    let secs = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64();
    Ok(Scored {
        split,
        detections: dets.len(),
        scores,
        seconds: [secs(t0, t1), secs(t1, t2), secs(t2, t3)],
    })
}
