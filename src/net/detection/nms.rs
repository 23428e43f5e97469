//! Non-maximum suppression (Faster R-CNN's RPN proposals and its per-class detections, the
//! paper's appendix "Object Detection Baselines"), as torchvision's `nms` and `batched_nms`
//! compute it: boxes in descending score order, each kept box suppresses every later box whose
//! IoU with it exceeds the threshold; areas without VOC's +1 (torchvision's and Detectron2's
//! convention; py-faster-rcnn's +1 is a property of its 1-based boxes, see `data::detection`).
//!
//! Built in Rust over the boxes on the host rather than calling torchvision's kernel (why:
//! `roi_align`'s module doc). Equal scores keep their input order (a stable sort);
//! torchvision sorts with `at::sort`, whose order of ties is unspecified.
use anyhow::{ensure, Result};
use tch::{Device, Kind, Tensor};

/// Indices (int64, on the boxes' device) of the boxes `[N, 4]` (x1, y1, x2, y2) kept, in
/// descending score order.
pub fn nms(boxes: &Tensor, scores: &Tensor, iou_threshold: f64) -> Result<Tensor> {
    let n = boxes.size2()?.0;
    ensure!(
        boxes.size2()?.1 == 4,
        "boxes must be [N, 4], got {:?}",
        boxes.size()
    );
    ensure!(
        scores.size() == [n],
        "scores must be [{n}], got {:?}",
        scores.size()
    );
    let b: Vec<f32> = host(boxes)?;
    let s: Vec<f32> = host(scores)?;
    let keep = keep_indices(&b, &s, iou_threshold as f32);
    Ok(Tensor::from_slice(&keep).to_device(boxes.device()))
}

/// [`nms`] within each class (`idxs` `[N]`): boxes of different classes never suppress each
/// other (torchvision's `batched_nms`, which offsets each class's boxes apart).
pub fn batched_nms(
    boxes: &Tensor,
    scores: &Tensor,
    idxs: &Tensor,
    iou_threshold: f64,
) -> Result<Tensor> {
    let n = boxes.size2()?.0;
    ensure!(
        idxs.size() == [n],
        "idxs must be [{n}], got {:?}",
        idxs.size()
    );
    if n == 0 {
        return Ok(Tensor::zeros([0], (Kind::Int64, boxes.device())));
    }
    let b: Vec<f32> = host(boxes)?;
    let s: Vec<f32> = host(scores)?;
    let c: Vec<i64> = Vec::try_from(idxs.to_device(Device::Cpu).to_kind(Kind::Int64))?;
    let mut classes: Vec<i64> = c.clone();
    classes.sort_unstable();
    classes.dedup();
    let mut keep: Vec<i64> = Vec::new();
    for class in classes {
        let members: Vec<usize> = (0..n as usize).filter(|&i| c[i] == class).collect();
        let mb: Vec<f32> = members
            .iter()
            .flat_map(|&i| b[i * 4..i * 4 + 4].to_vec())
            .collect();
        let ms: Vec<f32> = members.iter().map(|&i| s[i]).collect();
        keep.extend(
            keep_indices(&mb, &ms, iou_threshold as f32)
                .iter()
                .map(|&k| members[k as usize] as i64),
        );
    }
    // All kept boxes in descending score order, as torchvision returns them.
    keep.sort_by(|&i, &j| s[j as usize].total_cmp(&s[i as usize]));
    Ok(Tensor::from_slice(&keep).to_device(boxes.device()))
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::try_from(
        t.to_device(Device::Cpu).to_kind(Kind::Float).reshape([-1]),
    )?)
}

/// The greedy suppression over `boxes` (4 values a box) and `scores`, f32 as torchvision's
/// float kernel.
fn keep_indices(boxes: &[f32], scores: &[f32], threshold: f32) -> Vec<i64> {
    let n = scores.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]));
    let area = |i: usize| (boxes[i * 4 + 2] - boxes[i * 4]) * (boxes[i * 4 + 3] - boxes[i * 4 + 1]);
    let mut suppressed = vec![false; n];
    let mut keep = Vec::new();
    for (a, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i as i64);
        let bi = &boxes[i * 4..i * 4 + 4];
        let ai = area(i);
        for &j in &order[a + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = &boxes[j * 4..j * 4 + 4];
            let w = (bi[2].min(bj[2]) - bi[0].max(bj[0])).max(0.0);
            let h = (bi[3].min(bj[3]) - bi[1].max(bj[1])).max(0.0);
            let inter = w * h;
            if inter / (ai + area(j) - inter) > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], cols: i64) -> Tensor {
        Tensor::from_slice(v).view([-1, cols])
    }

    #[test]
    fn overlapping_boxes_keep_the_best_and_disjoint_ones_survive() {
        let boxes = t(&[0., 0., 10., 10., 1., 1., 11., 11., 20., 20., 30., 30.], 4);
        let scores = Tensor::from_slice(&[0.5f32, 0.9, 0.1]);
        let keep = Vec::<i64>::try_from(nms(&boxes, &scores, 0.5).unwrap()).unwrap();
        // IoU of the first two: 81 / 119 = 0.68 > 0.5.
        assert_eq!(keep, vec![1, 2]);
        // At a threshold above 0.68 both stay.
        let keep = Vec::<i64>::try_from(nms(&boxes, &scores, 0.7).unwrap()).unwrap();
        assert_eq!(keep, vec![1, 0, 2]);
    }

    #[test]
    fn classes_do_not_suppress_each_other() {
        let boxes = t(&[0., 0., 10., 10., 0., 0., 10., 10., 0., 0., 10., 10.], 4);
        let scores = Tensor::from_slice(&[0.3f32, 0.9, 0.6]);
        let idxs = Tensor::from_slice(&[0i64, 1, 0]);
        let keep = Vec::<i64>::try_from(batched_nms(&boxes, &scores, &idxs, 0.5).unwrap()).unwrap();
        assert_eq!(keep, vec![1, 2]);
    }

    #[test]
    fn no_boxes_keep_nothing() {
        let boxes = Tensor::zeros([0, 4], (Kind::Float, Device::Cpu));
        let scores = Tensor::zeros([0], (Kind::Float, Device::Cpu));
        assert_eq!(nms(&boxes, &scores, 0.5).unwrap().size(), [0]);
        let idxs = Tensor::zeros([0], (Kind::Int64, Device::Cpu));
        assert_eq!(
            batched_nms(&boxes, &scores, &idxs, 0.5).unwrap().size(),
            [0]
        );
    }
}
