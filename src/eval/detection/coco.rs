//! COCO's box AP and AR (Table 8's mAP@.5 and mAP@[.5, .95]) as pycocotools' `COCOeval`
//! computes them (`evaluate`, `accumulate`, `summarize` with `iouType='bbox'`): IoU thresholds
//! .50:.05:.95, 101 recall points, area ranges all/small/medium/large, maxDets 1/10/100, crowd
//! ground truth, the precision envelope, -1 where a setting has no ground truth; the 12 summary
//! numbers, and per class the AP and AP50 Detectron prints (the mean of the valid precision
//! entries over IoU thresholds and recall points at area "all", 100 detections).
//!
//! Images are visited in ascending id and each image's detections in score order, so that ties
//! in score sort as pycocotools' stable mergesort sorts them. The per-image matching is
//! [`super::coco_match`]. Two differences, both where pycocotools fails or is undefined: an
//! empty results list scores 0 (pycocotools' `loadRes` raises on it), and ground-truth ids play
//! no part (pycocotools counts a match to an annotation with id 0 as no match).
use super::coco_match::{evaluate_img, ImgEval, MAX_THRESHOLDS};
use super::{by_descending_score, check_detections};
use crate::data::detection::{Detection, DetectionSplit, GtObject};
use crate::paper::{
    COCO_AP50, COCO_AP75, COCO_AREA_RANGES, COCO_IOU_RANGE, COCO_MAX_DETS, COCO_RECALL_RANGE,
};
use anyhow::Result;
use rayon::prelude::*;

/// `np.linspace(start, stop, num)` to the last bit: `i * ((stop - start) / (num - 1)) + start`,
/// the last element `stop`.
pub(crate) fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// One class's accumulated precision `[area][maxDets][iou][recall]` and recall
/// `[area][maxDets][iou]`, -1 where the class has no ground truth in that setting.
#[derive(Debug, Clone)]
struct ClassCurves {
    precision: Vec<Vec<Vec<Vec<f64>>>>,
    recall: Vec<Vec<Vec<f64>>>,
}

/// One class's COCO AP (IoU .50:.95) and AP50, at area "all" and 100 detections; `None` when
/// the class has no (non-crowd) ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoClassAp {
    pub ap: Option<f64>,
    pub ap50: Option<f64>,
}

/// COCOeval's result: `stats` in `summarize`'s order (see [`SUMMARY`]), and per class.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoScores {
    pub stats: [f64; 12],
    pub per_class: Vec<CocoClassAp>,
}

/// The 12 lines of `summarize`: AP or AR, IoU threshold (`None`: all), area range, maxDets.
pub const SUMMARY: [(bool, Option<f64>, &str, usize); 12] = [
    (true, None, "all", 100),
    (true, Some(COCO_AP50), "all", 100),
    (true, Some(COCO_AP75), "all", 100),
    (true, None, "small", 100),
    (true, None, "medium", 100),
    (true, None, "large", 100),
    (false, None, "all", 1),
    (false, None, "all", 10),
    (false, None, "all", 100),
    (false, None, "small", 100),
    (false, None, "medium", 100),
    (false, None, "large", 100),
];

/// COCOeval (bbox) of `dets` against `split` (checked first: see [`check_detections`]).
pub fn evaluate(split: &DetectionSplit, dets: &[Detection]) -> Result<CocoScores> {
    check_detections(split, dets)?;
    let iou_thrs = linspace(COCO_IOU_RANGE.0, COCO_IOU_RANGE.1, COCO_IOU_RANGE.2);
    let rec_thrs = linspace(
        COCO_RECALL_RANGE.0,
        COCO_RECALL_RANGE.1,
        COCO_RECALL_RANGE.2,
    );
    anyhow::ensure!(iou_thrs.len() <= MAX_THRESHOLDS, "too many IoU thresholds");
    // Images in ascending id (pycocotools' sorted imgIds); their positions in the split.
    let mut images: Vec<usize> = (0..split.images.len()).collect();
    images.sort_by_key(|&i| split.images[i].id);
    let pos_of = super::image_index(split);
    let mut rank = vec![0usize; split.images.len()];
    for (r, &i) in images.iter().enumerate() {
        rank[i] = r;
    }
    let mut by_class: Vec<Vec<Vec<usize>>> = vec![Vec::new(); split.classes.len()];
    for (n, d) in dets.iter().enumerate() {
        let per_image = &mut by_class[d.class];
        if per_image.is_empty() {
            per_image.resize(images.len(), Vec::new());
        }
        per_image[rank[pos_of[&d.image_id]]].push(n);
    }
    let curves: Vec<ClassCurves> = by_class
        .into_par_iter()
        .enumerate()
        .map(|(c, per_image)| {
            let evals = class_evals(split, &images, dets, c, per_image, &iou_thrs);
            accumulate(&evals, &iou_thrs, &rec_thrs)
        })
        .collect();
    Ok(summarize(&curves, &iou_thrs))
}

/// `evaluateImg` of one class on every image (ascending id), each area range.
fn class_evals(
    split: &DetectionSplit,
    images: &[usize],
    dets: &[Detection],
    class: usize,
    mut per_image: Vec<Vec<usize>>,
    iou_thrs: &[f64],
) -> Vec<Option<Vec<ImgEval>>> {
    let areas: Vec<(f64, f64)> = COCO_AREA_RANGES.iter().map(|a| (a.1, a.2)).collect();
    let max_det = *COCO_MAX_DETS.iter().max().unwrap_or(&0);
    images
        .iter()
        .enumerate()
        .map(|(r, &i)| {
            let gts: Vec<&GtObject> = split.images[i]
                .objects
                .iter()
                .filter(|o| o.class == class)
                .collect();
            let idx = per_image.get_mut(r).map(std::mem::take).unwrap_or_default();
            let mut idx = idx;
            by_descending_score(dets, &mut idx);
            idx.truncate(max_det);
            let dts: Vec<&Detection> = idx.iter().map(|&n| &dets[n]).collect();
            evaluate_img(&gts, &dts, iou_thrs, &areas)
        })
        .collect()
}

/// One detection in `accumulate`: score, matched and ignored masks, position in its image.
type Entry = (f64, u16, u16, usize);

/// `accumulate` for one class: per area range and maxDets, the detections of all images in
/// score order (stable over images in id order, then each image's order), cumulative true and
/// false positives per threshold, precision made monotone, read at the recall thresholds.
fn accumulate(evals: &[Option<Vec<ImgEval>>], iou_thrs: &[f64], rec_thrs: &[f64]) -> ClassCurves {
    let (na, nm, nt) = (COCO_AREA_RANGES.len(), COCO_MAX_DETS.len(), iou_thrs.len());
    let mut precision = vec![vec![vec![vec![-1.0; rec_thrs.len()]; nt]; nm]; na];
    let mut recall = vec![vec![vec![-1.0; nt]; nm]; na];
    for a in 0..na {
        let e: Vec<&ImgEval> = evals.iter().flatten().map(|v| &v[a]).collect();
        if e.is_empty() {
            continue;
        }
        let npig: usize = e.iter().map(|x| x.npig).sum();
        if npig == 0 {
            continue;
        }
        // (score, matched, ignored, position in its image), stably sorted by descending score.
        let mut all: Vec<Entry> = e
            .iter()
            .flat_map(|x| {
                (0..x.scores.len()).map(move |p| (x.scores[p], x.matched[p], x.ignored[p], p))
            })
            .collect();
        all.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap_or(std::cmp::Ordering::Equal));
        for (m, &max_det) in COCO_MAX_DETS.iter().enumerate() {
            for t in 0..nt {
                let (p, r) = curve(&all, max_det, t, npig, rec_thrs);
                precision[a][m][t] = p;
                recall[a][m][t] = r;
            }
        }
    }
    ClassCurves { precision, recall }
}

/// Precision at each recall threshold and the final recall of one threshold's ranking (the
/// entries of `all` at positions below `max_det`), without materializing the curves:
/// pycocotools' `rc = tp / npig`, `pr = tp / (fp + tp + eps)`, the envelope (each precision
/// raised to the largest after it) and `np.searchsorted(rc, recThrs, side='left')`, read as
/// "the envelope at the first entry whose recall reaches the threshold" (0 past the end).
fn curve(
    all: &[Entry],
    max_det: usize,
    t: usize,
    npig: usize,
    rec_thrs: &[f64],
) -> (Vec<f64>, f64) {
    let bit = 1u16 << t;
    let kept = || all.iter().filter(move |e| e.3 < max_det);
    let step = |e: &Entry| -> (f64, f64) {
        match (e.2 & bit != 0, e.1 & bit != 0) {
            (true, _) => (0.0, 0.0),
            (false, true) => (1.0, 0.0),
            (false, false) => (0.0, 1.0),
        }
    };
    // Forward: where each recall threshold is first reached (entry index, in kept order).
    let mut first = vec![usize::MAX; rec_thrs.len()];
    let (mut tp, mut fp, mut n, mut r) = (0.0f64, 0.0f64, 0usize, 0usize);
    for e in kept() {
        let (a, b) = step(e);
        tp += a;
        fp += b;
        let rc = tp / npig as f64;
        while r < rec_thrs.len() && rc >= rec_thrs[r] {
            first[r] = n;
            r += 1;
        }
        n += 1;
    }
    let recall = if n > 0 { tp / npig as f64 } else { 0.0 };
    // Backward: the running maximum of precision is the envelope; read it where needed.
    let mut q = vec![0.0; rec_thrs.len()];
    let mut envelope = f64::NEG_INFINITY;
    // Thresholds 0..r were reached, at nondecreasing entries.
    let mut i = n;
    for e in kept().rev() {
        i -= 1;
        let p = tp / (fp + tp + f64::EPSILON);
        envelope = envelope.max(p);
        while r > 0 && first[r - 1] == i {
            q[r - 1] = envelope;
            r -= 1;
        }
        let (a, b) = step(e);
        tp -= a;
        fp -= b;
    }
    (q, recall)
}

/// The mean of the entries > -1, or -1 when there is none (`summarize`'s `_summarize`).
fn mean_valid(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values.filter(|v| *v > -1.0) {
        sum += v;
        n += 1;
    }
    if n == 0 {
        -1.0
    } else {
        sum / n as f64
    }
}

/// `summarize`'s 12 numbers and the per-class AP/AP50.
fn summarize(curves: &[ClassCurves], iou_thrs: &[f64]) -> CocoScores {
    let area_of = |name: &str| COCO_AREA_RANGES.iter().position(|a| a.0 == name);
    let m_of = |n: usize| COCO_MAX_DETS.iter().position(|&m| m == n);
    let ts = |thr: Option<f64>| -> Vec<usize> {
        (0..iou_thrs.len())
            .filter(|&t| thr.is_none_or(|x| iou_thrs[t] == x))
            .collect()
    };
    let mut stats = [-1.0; 12];
    for (s, &(ap, thr, area, max_det)) in stats.iter_mut().zip(SUMMARY.iter()) {
        let (Some(a), Some(m)) = (area_of(area), m_of(max_det)) else {
            continue;
        };
        let t = ts(thr);
        *s = if ap {
            mean_valid(curves.iter().flat_map(|c| {
                t.iter()
                    .flat_map(move |&t| c.precision[a][m][t].iter().copied())
            }))
        } else {
            mean_valid(
                curves
                    .iter()
                    .flat_map(|c| t.iter().map(move |&t| c.recall[a][m][t])),
            )
        };
    }
    let (a, m) = (
        area_of("all").unwrap_or(0),
        m_of(100).unwrap_or(COCO_MAX_DETS.len() - 1),
    );
    let per_class = curves
        .iter()
        .map(|c| {
            let of = |t: Vec<usize>| {
                let v = mean_valid(t.iter().flat_map(|&t| c.precision[a][m][t].iter().copied()));
                (v > -1.0).then_some(v)
            };
            CocoClassAp {
                ap: of(ts(None)),
                ap50: of(ts(Some(COCO_AP50))),
            }
        })
        .collect();
    CocoScores { stats, per_class }
}

/// `summarize`'s printed lines, in pycocotools' wording and format.
pub fn summary_lines(stats: &[f64; 12]) -> Vec<String> {
    SUMMARY
        .iter()
        .zip(stats)
        .map(|(&(ap, thr, area, max_det), v)| {
            let (title, kind) = if ap { ("Average Precision", "(AP)") } else { ("Average Recall", "(AR)") };
            let iou = match thr {
                Some(t) => format!("{t:0.2}"),
                None => format!("{:0.2}:{:0.2}", COCO_IOU_RANGE.0, COCO_IOU_RANGE.1),
            };
            format!(" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6} | maxDets={max_det:>3} ] = {v:0.3}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_ends_exactly_and_hits_the_summary_thresholds() {
        let t = linspace(COCO_IOU_RANGE.0, COCO_IOU_RANGE.1, COCO_IOU_RANGE.2);
        assert_eq!((t.len(), t[0], t[9]), (10, 0.5, 0.95));
        assert!(t.contains(&COCO_AP75));
        let r = linspace(0.0, 1.0, 101);
        assert_eq!((r[0], r[100], r[50]), (0.0, 1.0, 0.5));
    }

    #[test]
    fn summary_lines_read_as_pycocotools_prints_them() {
        let l = summary_lines(&[-1.0; 12]);
        assert_eq!(
            l[0],
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = -1.000"
        );
        assert_eq!(
            l[6],
            " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = -1.000"
        );
        assert_eq!(
            l[1],
            " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = -1.000"
        );
    }

    #[test]
    fn curve_reads_the_envelope_at_recall_thresholds() {
        // Two boxes; ranking: hit, miss, hit. Precision 1, 1/2, 2/3 -> envelope 1, 2/3, 2/3.
        let kept = [
            (0.9, 1, 0, 0),
            (0.8, 0, 0, 1),
            (0.7, 1, 0, 2),
            (0.6, 1, 0, 3),
        ];
        // The fourth entry is past maxDets 3.
        let (q, r) = curve(&kept, 3, 0, 2, &[0.0, 0.5, 0.6, 1.0]);
        assert_eq!(r, 1.0);
        assert_eq!(q[0], 1.0 / (1.0 + f64::EPSILON));
        assert_eq!(q[2], 2.0 / (3.0 + f64::EPSILON));
        assert_eq!(q[3], q[2]);
    }
}
