//! COCOeval's per-image, per-category step for boxes (pycocotools `cocoeval.py`: `computeIoU`,
//! `evaluateImg`), for all four area ranges at once:
//!
//! - detections in descending score (stable: ties keep their order in the results file, as
//!   `np.argsort(kind='mergesort')`), at most the largest `maxDets` (100) kept;
//! - IoU as pycocotools' `bbIou` (`maskApi.c`): intersection over union, or over the
//!   detection's own area for a crowd box; boxes as `[x, y, w, h]` with `x + w` = the contract's
//!   `x2` (what COCO's readers store) and `w = x2 - x1`;
//! - ground truth ignored when crowd or its `area` outside the range (both ends inclusive),
//!   visited non-ignored first; each detection takes the best-IoU ground truth at or above the
//!   threshold (IoU capped at `1 - 1e-10`; a later box wins a tie), not yet matched unless
//!   crowd, stopping at the ignored ones once it holds a regular match;
//! - a detection matched to an ignored box is ignored; an unmatched one is ignored when its box
//!   area `w * h` (`loadRes`'s `area`) is outside the range.
use crate::data::detection::{Detection, GtObject};

/// IoU thresholds fit a `u16` mask per detection (pycocotools has 10).
pub(crate) const MAX_THRESHOLDS: usize = 16;

/// One (image, category, area range): the kept detections in score order and, per IoU
/// threshold (bit `t`), whether each matched a box and whether it is ignored.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImgEval {
    pub scores: Vec<f64>,
    pub matched: Vec<u16>,
    pub ignored: Vec<u16>,
    /// Ground truth not ignored in this range (`npig`'s share of this image).
    pub npig: usize,
}

/// `[x, y, w, h]` and `x + w`, `y + h` of a contract box.
fn xywh(b: &[f64; 4]) -> [f64; 6] {
    [b[0], b[1], b[2] - b[0], b[3] - b[1], b[2], b[3]]
}

/// pycocotools' `bbIou` of a detection and a ground-truth box.
fn iou(d: &[f64; 6], g: &[f64; 6], crowd: bool) -> f64 {
    let w = d[4].min(g[4]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = d[5].min(g[5]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let (da, ga, i) = (d[2] * d[3], g[2] * g[3], w * h);
    i / if crowd { da } else { da + ga - i }
}

/// `evaluateImg` for every range of `areas`: `gts` in annotation order, `dts` already in score
/// order and cut to `maxDets`. `None` when both are empty (pycocotools' `None`).
pub(crate) fn evaluate_img(
    gts: &[&GtObject],
    dts: &[&Detection],
    iou_thrs: &[f64],
    areas: &[(f64, f64)],
) -> Option<Vec<ImgEval>> {
    if gts.is_empty() && dts.is_empty() {
        return None;
    }
    let gb: Vec<[f64; 6]> = gts.iter().map(|g| xywh(&g.bbox)).collect();
    let db: Vec<[f64; 6]> = dts.iter().map(|d| xywh(&d.bbox)).collect();
    let ious: Vec<f64> = db
        .iter()
        .flat_map(|d| gb.iter().zip(gts).map(move |(g, o)| iou(d, g, o.crowd)))
        .collect();
    let scores: Vec<f64> = dts.iter().map(|d| d.score).collect();
    Some(
        areas
            .iter()
            .map(|&(lo, hi)| {
                let out = |a: f64| a < lo || a > hi;
                let ignore: Vec<bool> = gts.iter().map(|g| g.crowd || out(g.area)).collect();
                let (matched, mut ignored) = match_range(gts, &ious, &ignore, dts.len(), iou_thrs);
                for (d, b) in db.iter().enumerate() {
                    if out(b[2] * b[3]) {
                        ignored[d] |= !matched[d];
                    }
                }
                let npig = ignore.iter().filter(|i| !**i).count();
                ImgEval {
                    scores: scores.clone(),
                    matched,
                    ignored,
                    npig,
                }
            })
            .collect(),
    )
}

/// The greedy matching of one area range at every threshold: (matched, ignored) bit masks.
fn match_range(
    gts: &[&GtObject],
    ious: &[f64],
    ignore: &[bool],
    nd: usize,
    iou_thrs: &[f64],
) -> (Vec<u16>, Vec<u16>) {
    let ng = gts.len();
    // Non-ignored boxes first, each group in annotation order (a stable sort on the flag).
    let order: Vec<usize> = (0..ng)
        .filter(|&g| !ignore[g])
        .chain((0..ng).filter(|&g| ignore[g]))
        .collect();
    let (mut matched, mut ignored) = (vec![0u16; nd], vec![0u16; nd]);
    if ng == 0 {
        return (matched, ignored);
    }
    let mut taken = vec![false; ng];
    for (t, &thr) in iou_thrs.iter().enumerate() {
        taken.iter_mut().for_each(|x| *x = false);
        for d in 0..nd {
            let mut best = thr.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for &g in &order {
                if taken[g] && !gts[g].crowd {
                    continue;
                }
                if m.is_some_and(|m| !ignore[m]) && ignore[g] {
                    break;
                }
                let v = ious[d * ng + g];
                if v < best {
                    continue;
                }
                best = v;
                m = Some(g);
            }
            if let Some(m) = m {
                matched[d] |= 1 << t;
                if ignore[m] {
                    ignored[d] |= 1 << t;
                }
                taken[m] = true;
            }
        }
    }
    (matched, ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(b: [f64; 4], crowd: bool) -> GtObject {
        let area = (b[2] - b[0]) * (b[3] - b[1]);
        GtObject {
            class: 0,
            bbox: b,
            area,
            crowd,
            difficult: false,
        }
    }
    fn dt(b: [f64; 4], score: f64) -> Detection {
        Detection {
            image_id: 1,
            class: 0,
            bbox: b,
            score,
        }
    }

    #[test]
    fn crowd_iou_is_over_the_detection_area() {
        let g = xywh(&[0.0, 0.0, 20.0, 20.0]);
        let d = xywh(&[10.0, 0.0, 30.0, 10.0]);
        assert_eq!(iou(&d, &g, false), 100.0 / (200.0 + 400.0 - 100.0));
        assert_eq!(iou(&d, &g, true), 100.0 / 200.0);
        assert_eq!(iou(&xywh(&[20.0, 0.0, 30.0, 10.0]), &g, false), 0.0);
    }

    #[test]
    fn one_box_matches_once_a_crowd_many_times() {
        let thr = [0.5, 0.9];
        let all = [(0.0, 1e10)];
        let g = [gt([0.0, 0.0, 10.0, 10.0], false)];
        let d = [
            dt([0.0, 0.0, 10.0, 10.0], 0.9),
            dt([0.0, 0.0, 10.0, 8.0], 0.8),
        ];
        let e = &evaluate_img(&[&g[0]], &[&d[0], &d[1]], &thr, &all).unwrap()[0];
        // The first takes the box at both thresholds; the duplicate is unmatched (a false positive).
        assert_eq!(
            (e.matched.clone(), e.ignored.clone(), e.npig),
            (vec![0b11, 0], vec![0, 0], 1)
        );
        let c = [gt([0.0, 0.0, 10.0, 10.0], true)];
        let e = &evaluate_img(&[&c[0]], &[&d[0], &d[1]], &thr, &all).unwrap()[0];
        // A crowd matches both (IoU 1 over the detection's area), and both are ignored.
        assert_eq!(
            (e.matched.clone(), e.ignored.clone(), e.npig),
            (vec![0b11, 0b11], vec![0b11, 0b11], 0)
        );
        assert!(evaluate_img(&[], &[], &thr, &all).is_none());
    }
}
