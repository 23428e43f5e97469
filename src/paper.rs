//! The paper's facts in one place: every number of *Deep Residual Learning for Image
//! Recognition* (He, Zhang, Ren, Sun, 2015; arXiv:1512.03385v1) that the code compares against
//! or trains with — Table 1's FLOPs, Table 6's parameters and errors, Tables 2, 3 and 4's errors,
//! the recipes of §3.4 and §4.2 — beside the numbers of two reproductions (akamaster's CIFAR-10
//! ResNets, torchvision's ImageNet ResNets), and the experiment grid of every table and figure
//! that `resnet reproduce` runs. `info`, `report`, the configs' defaults and `reproduce` read
//! these; no other file writes one of them as a literal.
use crate::config::{Family, ModelConfig, NetKind, Shortcut};

/// One network as the paper names it: family, plain or residual, depth and shortcut option
/// (the config's own enums, so lookups are typed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    pub family: Family,
    pub kind: NetKind,
    pub depth: usize,
    /// For plain nets the option the config carries (A), which builds no shortcut.
    pub shortcut: Shortcut,
}

impl Net {
    /// A CIFAR-10 net of §4.2 (option A, as Table 6's ResNets).
    pub const fn cifar(kind: NetKind, depth: usize) -> Net {
        Net {
            family: Family::Cifar,
            kind,
            depth,
            shortcut: Shortcut::A,
        }
    }

    /// An ImageNet net of Table 1.
    pub const fn imagenet(kind: NetKind, depth: usize, shortcut: Shortcut) -> Net {
        Net {
            family: Family::Imagenet,
            kind,
            depth,
            shortcut,
        }
    }

    /// The net a model config builds.
    pub fn of(m: &ModelConfig) -> Net {
        Net {
            family: m.family,
            kind: m.kind,
            depth: m.depth,
            shortcut: m.shortcut(),
        }
    }

    /// The model config of this net (10 or 1000 classes, stride on the first 1×1 as the paper).
    pub fn model(&self) -> ModelConfig {
        match self.family {
            Family::Cifar => ModelConfig {
                shortcut: Some(self.shortcut),
                ..ModelConfig::cifar(self.depth, self.kind)
            },
            Family::Imagenet => ModelConfig::imagenet(self.depth, self.kind, self.shortcut),
        }
    }

    fn is(&self, family: Family, kind: NetKind, shortcut: Shortcut) -> bool {
        self.family == family && self.kind == kind && self.shortcut == shortcut
    }
}

// ---------------------------------------------------------------------------------------------
// Recipes
// ---------------------------------------------------------------------------------------------

/// §4.2: "We start with a learning rate of 0.1".
pub const CIFAR_LR: f64 = 0.1;
/// §4.2 (and §3.4): momentum 0.9.
pub const MOMENTUM: f64 = 0.9;
/// §4.2 (and §3.4): weight decay 0.0001.
pub const WEIGHT_DECAY: f64 = 1e-4;
/// §4.2: "a mini-batch size of 128".
pub const CIFAR_BATCH: usize = 128;
/// §4.2: "divide it by 10 at 32k and 48k iterations, and terminate training at 64k iterations".
pub const CIFAR_ITERATIONS: u64 = 64_000;
/// §4.2: the learning-rate milestones of [`CIFAR_ITERATIONS`].
pub const CIFAR_MILESTONES: [u64; 2] = [32_000, 48_000];
/// §3.4 and §4.2: the learning rate is divided by 10.
pub const LR_DIVISOR_GAMMA: f64 = 0.1;
/// §4.2, ResNet-110: "we use 0.01 to warm up the training until the training error is below 80%
/// (about 400 iterations), and then go back to 0.1"; ResNet-1202 "same as 110".
pub const WARMUP_LR: f64 = 0.01;
/// §4.2: the training error (fraction) below which the warm-up ends.
pub const WARMUP_UNTIL_TRAIN_ERROR: f64 = 0.80;
/// §4.2: the depths trained with the warm-up (ResNet-110, and ResNet-1202 "same as 110").
pub const WARMUP_DEPTHS: [usize; 2] = [110, 1202];

/// Whether this CIFAR net trains with §4.2's warm-up: ResNet-110 and ResNet-1202 (the paper),
/// and plain-110, whose learning rate the paper does not give: it gets the same warm-up as
/// ResNet-110 (as configs/cifar_plain110.toml), so Figure 6's 110-layer pair differ only in
/// their shortcuts.
pub fn warms_up(net: &Net) -> bool {
    net.family == Family::Cifar && WARMUP_DEPTHS.contains(&net.depth)
}

/// §3.4: "a mini-batch size of 256".
pub const IMAGENET_BATCH: usize = 256;
/// §3.4: "the models are trained for up to 60 × 10⁴ iterations", lr from 0.1 divided by 10
/// "when the error plateaus".
pub const IMAGENET_ITERATIONS: u64 = 600_000;
/// §3.4: "resized with its shorter side randomly sampled in [256, 480] for scale augmentation".
pub const SCALE_AUG_SHORTER_SIDE: [u32; 2] = [256, 480];
/// §3.4: "A 224×224 crop is randomly sampled".
pub const CROP: u32 = 224;
/// The shorter side of a test image before its centre or 10 crops: the standard testing of
/// AlexNet [21] that §3.4 adopts (torchvision's `Resize(256)` then `CenterCrop(224)`).
pub const TEST_RESIZE: u32 = 256;
/// §3.4: "In testing, for comparison studies we adopt the standard 10-crop testing".
pub const TEN_CROP_VIEWS: u32 = 10;
/// §3.4: "average the scores at multiple scales (images are resized such that the shorter side
/// is in {224, 256, 384, 480, 640})" — Table 4's fully-convolutional testing.
pub const MULTI_SCALE_SIDES: [u32; 5] = [224, 256, 384, 480, 640];

/// Appendix A, "Object Detection Baselines" (after Faster R-CNN [32], §3.1.3 "re-scale the
/// images such that their shorter side is s = 600 pixels"): the detection scale of Tables 7–8.
pub const DETECTION_SHORTER_SIDE: u32 = 600;
/// The longer side's cap beside that scale: py-faster-rcnn's `lib/fast_rcnn/config.py`,
/// `__C.TRAIN.MAX_SIZE = 1000` ("Max pixel size of the longest side of a scaled input image"),
/// the same at test (`__C.TEST.MAX_SIZE`); torchvision's `GeneralizedRCNNTransform(max_size=1000)`.
pub const DETECTION_MAX_SIDE: u32 = 1000;
/// Per-channel pixel means of py-faster-rcnn (`__C.PIXEL_MEANS = [[[102.9801, 115.9465,
/// 122.7717]]]`, BGR on 0–255), here in RGB order on 0–255; its images are not divided by a std.
pub const FASTER_RCNN_PIXEL_MEANS_RGB: [f64; 3] = [122.7717, 115.9465, 102.9801];
/// The 20 PASCAL VOC classes in the devkit's order (VOCdevkit `VOCinit.m`, py-faster-rcnn's
/// `datasets/pascal_voc.py`): contiguous labels 0..20, `category_id` 1..=20.
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// A compressed schedule's milestones: §4.2's 32k/48k of 64k scaled to `iterations`
/// (50 % and 75 %, as configs/cifar10_png_3k_resnet20.toml: 1,500 and 2,250 of 3,000).
pub fn scaled_milestones(iterations: u64) -> Vec<u64> {
    CIFAR_MILESTONES
        .iter()
        .map(|&m| (m as u128 * iterations as u128 / CIFAR_ITERATIONS as u128) as u64)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Counts: Table 1 (FLOPs), Table 6 (#params), torchvision
// ---------------------------------------------------------------------------------------------

/// Table 1's FLOPs row (multiply-adds ×10⁹) for the 18/34/50/101/152-layer nets; §4.1 gives the
/// plain nets the same figures.
pub const TABLE1_GFLOPS: [(usize, f64); 5] =
    [(18, 1.8), (34, 3.6), (50, 3.8), (101, 7.6), (152, 11.3)];

/// Table 1's FLOPs of an ImageNet net (×10⁹).
pub fn table1_gflops(net: &Net) -> Option<f64> {
    if net.family != Family::Imagenet {
        return None;
    }
    lookup(&TABLE1_GFLOPS, net.depth)
}

/// torchvision's parameter counts of resnet18…152 (`ResNet*_Weights.IMAGENET1K_V1.meta
/// ["num_params"]`, torchvision's models documentation): option-B nets.
pub const TORCHVISION_PARAMS: [(usize, u64); 5] = [
    (18, 11_689_512),
    (34, 21_797_672),
    (50, 25_557_032),
    (101, 44_549_160),
    (152, 60_192_808),
];

/// torchvision's multiply-adds of resnet50 (`ResNet50_Weights.IMAGENET1K_V1.meta["_ops"]`,
/// 4.09 GFLOPS in torchvision's models documentation): its v1.5 net, the stride on the 3×3.
pub const TORCHVISION_RESNET50_GMACS: f64 = 4.09;

/// torchvision's parameter count of an ImageNet ResNet with option B.
pub fn torchvision_params(net: &Net) -> Option<u64> {
    if !net.is(Family::Imagenet, NetKind::Residual, Shortcut::B) {
        return None;
    }
    lookup(&TORCHVISION_PARAMS, net.depth)
}

/// One row of Table 6 ("Classification error on the CIFAR-10 test set"), ResNets with option A.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Table6Row {
    pub depth: usize,
    /// `#params`, millions, as printed (0.27M … 19.4M).
    pub params_millions: f64,
    /// The error (%): the best of 5 runs for ResNet-110, the single number otherwise.
    pub error: f64,
    /// ResNet-110 only: "6.43 (6.61±0.16)", the mean and std over 5 runs.
    pub mean_std: Option<(f64, f64)>,
}

impl Table6Row {
    /// The error as Table 6 prints it: `8.75`, or `6.43 (6.61±0.16)`.
    pub fn shown(&self) -> String {
        match self.mean_std {
            Some((m, s)) => format!("{:.2} ({m:.2}±{s:.2})", self.error),
            None => format!("{:.2}", self.error),
        }
    }

    /// The paper's mean where it gives one (ResNet-110), else its single number.
    pub fn mean(&self) -> f64 {
        self.mean_std.map(|(m, _)| m).unwrap_or(self.error)
    }

    /// `#params` as printed: `0.27M`, `1.7M`.
    pub fn params_shown(&self) -> String {
        format!("{}M", self.params_millions)
    }
}

/// Table 6's ResNet rows. Plain nets appear only in Figure 6, with no number in any table.
pub const TABLE6: [Table6Row; 6] = [
    t6(20, 0.27, 8.75, None),
    t6(32, 0.46, 7.51, None),
    t6(44, 0.66, 7.17, None),
    t6(56, 0.85, 6.97, None),
    t6(110, 1.7, 6.43, Some((6.61, 0.16))),
    t6(1202, 19.4, 7.93, None),
];

const fn t6(depth: usize, params: f64, error: f64, mean_std: Option<(f64, f64)>) -> Table6Row {
    Table6Row {
        depth,
        params_millions: params,
        error,
        mean_std,
    }
}

/// Table 6's row of a CIFAR-10 ResNet with option A.
pub fn table6(net: &Net) -> Option<Table6Row> {
    if !net.is(Family::Cifar, NetKind::Residual, Shortcut::A) {
        return None;
    }
    TABLE6.iter().find(|r| r.depth == net.depth).copied()
}

/// akamaster/pytorch_resnet_cifar10 (its README's table), the widely used PyTorch reproduction
/// of Table 6 (option A; 200 epochs with lr÷10 at 100 and 150, per-channel normalization, best
/// test accuracy over the epochs): CIFAR-10 test error (%) per depth.
pub const AKAMASTER_ERROR: [(usize, f64); 6] = [
    (20, 8.27),
    (32, 7.37),
    (44, 6.90),
    (56, 6.61),
    (110, 6.32),
    (1202, 6.18),
];

/// akamaster's error of a CIFAR-10 ResNet with option A.
pub fn akamaster_error(net: &Net) -> Option<f64> {
    if !net.is(Family::Cifar, NetKind::Residual, Shortcut::A) {
        return None;
    }
    lookup(&AKAMASTER_ERROR, net.depth)
}

// ---------------------------------------------------------------------------------------------
// ImageNet errors: Tables 2, 3 (10-crop) and 4 (multi-scale)
// ---------------------------------------------------------------------------------------------

/// An ImageNet validation error of the paper (%), with the table(s) it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImagenetError {
    pub net: Net,
    pub top1: f64,
    pub top5: Option<f64>,
    pub source: &'static str,
}

const fn ie(net: Net, top1: f64, top5: Option<f64>, source: &'static str) -> ImagenetError {
    ImagenetError {
        net,
        top1,
        top5,
        source,
    }
}

const fn inet(kind: NetKind, depth: usize, shortcut: Shortcut) -> Net {
    Net::imagenet(kind, depth, shortcut)
}

/// Table 2 (top-1, 10-crop, val; its ResNets use option A) and Table 3 (top-1/top-5, 10-crop,
/// val; ResNet-50/101/152 use option B). plain-34's top-5 (10.02) is Table 3's plain-34 row;
/// Table 2 gives no top-5 for the 18-layer nets. Table 3's ResNet-34 A row repeats Table 2's.
pub const TABLES_2_3: [ImagenetError; 9] = {
    use NetKind::{Plain, Residual};
    use Shortcut::{A, B, C};
    [
        ie(inet(Plain, 18, A), 27.94, None, "Table 2"),
        ie(inet(Plain, 34, A), 28.54, Some(10.02), "Tables 2, 3"),
        ie(inet(Residual, 18, A), 27.88, None, "Table 2"),
        ie(inet(Residual, 34, A), 25.03, Some(7.76), "Tables 2, 3"),
        ie(inet(Residual, 34, B), 24.52, Some(7.46), "Table 3"),
        ie(inet(Residual, 34, C), 24.19, Some(7.40), "Table 3"),
        ie(inet(Residual, 50, B), 22.85, Some(6.71), "Table 3"),
        ie(inet(Residual, 101, B), 21.75, Some(6.05), "Table 3"),
        ie(inet(Residual, 152, B), 21.43, Some(5.71), "Table 3"),
    ]
};

/// Table 4 ("Error rates (%) of single-model results on the ImageNet validation set"): the
/// ResNets' top-1/top-5 errors with multi-scale fully-convolutional testing (§3.4).
pub const TABLE4: [ImagenetError; 5] = {
    use NetKind::Residual;
    use Shortcut::{B, C};
    [
        ie(inet(Residual, 34, B), 21.84, Some(5.71), "Table 4"),
        ie(inet(Residual, 34, C), 21.53, Some(5.60), "Table 4"),
        ie(inet(Residual, 50, B), 20.74, Some(5.25), "Table 4"),
        ie(inet(Residual, 101, B), 19.87, Some(4.60), "Table 4"),
        ie(inet(Residual, 152, B), 19.38, Some(4.49), "Table 4"),
    ]
};

/// The Tables 2/3 entry of an ImageNet net (plain nets match whatever option they carry).
pub fn tables_2_3(net: &Net) -> Option<ImagenetError> {
    find_imagenet(&TABLES_2_3, net)
}

/// The Table 4 entry of an ImageNet ResNet.
pub fn table4(net: &Net) -> Option<ImagenetError> {
    find_imagenet(&TABLE4, net)
}

fn find_imagenet(rows: &[ImagenetError], net: &Net) -> Option<ImagenetError> {
    rows.iter()
        .find(|e| {
            let p = &e.net;
            p.family == net.family
                && p.kind == net.kind
                && p.depth == net.depth
                && (p.kind == NetKind::Plain || p.shortcut == net.shortcut)
        })
        .copied()
}

fn lookup<T: Copy>(rows: &[(usize, T)], depth: usize) -> Option<T> {
    rows.iter().find(|(d, _)| *d == depth).map(|&(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// The experiment grid of every table and figure
// ---------------------------------------------------------------------------------------------

/// A table or figure of the paper that `resnet reproduce` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Experiment {
    /// Table 6: CIFAR-10 test error of ResNet-20/32/44/56/110/1202.
    Table6,
    /// Figure 1: training and test error of plain-20 and plain-56 on CIFAR-10.
    Figure1,
    /// Figure 6: plain-20/32/44/56/110 (left) and ResNet-20/32/44/56/110 (middle) on CIFAR-10.
    Figure6,
    /// Figure 7: the std of the layer responses of Figure 6's nets.
    Figure7,
    /// Table 2: plain-18/34 and ResNet-18/34 (option A), 10-crop top-1 on ImageNet.
    Table2,
    /// Figure 4: the training curves of Table 2's nets.
    Figure4,
    /// Table 3: ResNet-34 A/B/C, ResNet-50/101/152 (and plain-34), 10-crop on ImageNet.
    Table3,
    /// Table 4: single models with multi-scale testing on ImageNet.
    Table4,
}

/// The CIFAR depths of §4.2's plain/residual comparison (Figure 6, n = 3, 5, 7, 9, 18).
pub const CIFAR_DEPTHS: [usize; 5] = [20, 32, 44, 56, 110];
/// Table 6's extra-deep net (n = 200).
pub const CIFAR_EXTRA_DEEP: usize = 1202;
/// Figure 1's two plain nets.
pub const FIGURE1_DEPTHS: [usize; 2] = [20, 56];

impl Experiment {
    /// Every result, in the order of `resnet reproduce --help`.
    pub const ALL: [Experiment; 8] = [
        Experiment::Table6,
        Experiment::Figure1,
        Experiment::Figure6,
        Experiment::Figure7,
        Experiment::Table2,
        Experiment::Table3,
        Experiment::Table4,
        Experiment::Figure4,
    ];

    /// The name on the command line: `table6`, `figure1`, ...
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Table6 => "table6",
            Experiment::Figure1 => "figure1",
            Experiment::Figure6 => "figure6",
            Experiment::Figure7 => "figure7",
            Experiment::Table2 => "table2",
            Experiment::Figure4 => "figure4",
            Experiment::Table3 => "table3",
            Experiment::Table4 => "table4",
        }
    }

    /// The result a command-line name names.
    pub fn parse(s: &str) -> Option<Experiment> {
        Experiment::ALL.into_iter().find(|r| r.name() == s)
    }

    /// CIFAR-10 (§4.2) or ImageNet (§3.4).
    pub fn family(self) -> Family {
        match self {
            Experiment::Table6
            | Experiment::Figure1
            | Experiment::Figure6
            | Experiment::Figure7 => Family::Cifar,
            _ => Family::Imagenet,
        }
    }

    /// The nets the paper trains for this result, in the paper's order.
    pub fn grid(self) -> Vec<Net> {
        use NetKind::{Plain, Residual};
        let cifar = |kind, depths: &[usize]| -> Vec<Net> {
            depths.iter().map(|&d| Net::cifar(kind, d)).collect()
        };
        match self {
            Experiment::Table6 => {
                let mut v = cifar(Residual, &CIFAR_DEPTHS);
                v.push(Net::cifar(Residual, CIFAR_EXTRA_DEEP));
                v
            }
            Experiment::Figure1 => cifar(Plain, &FIGURE1_DEPTHS),
            Experiment::Figure6 | Experiment::Figure7 => {
                [cifar(Plain, &CIFAR_DEPTHS), cifar(Residual, &CIFAR_DEPTHS)].concat()
            }
            Experiment::Table2 | Experiment::Figure4 => {
                let mut v = Vec::new();
                for kind in [Plain, Residual] {
                    for d in [18, 34] {
                        v.push(inet(kind, d, Shortcut::A));
                    }
                }
                v
            }
            Experiment::Table3 => {
                let mut v = vec![inet(Plain, 34, Shortcut::A)];
                for sc in [Shortcut::A, Shortcut::B, Shortcut::C] {
                    v.push(inet(Residual, 34, sc));
                }
                for d in [50, 101, 152] {
                    v.push(inet(Residual, d, Shortcut::B));
                }
                v
            }
            Experiment::Table4 => TABLE4.iter().map(|e| e.net).collect(),
        }
    }

    /// The paper's schedule length for this result's family.
    pub fn iterations(self) -> u64 {
        match self.family() {
            Family::Cifar => CIFAR_ITERATIONS,
            Family::Imagenet => IMAGENET_ITERATIONS,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Detection scoring (Tables 7 and 8): the official evaluators' parameters
// ---------------------------------------------------------------------------------------------

/// PASCAL VOC: a detection is a true positive when its overlap with a ground-truth box is at
/// least 0.5 (VOC devkit `VOCevaldet.m`, `VOCopts.minoverlap = 0.5`; py-faster-rcnn's
/// `voc_eval(..., ovthresh=0.5)`). Table 7 reports mAP at this threshold.
pub const VOC_MIN_OVERLAP: f64 = 0.5;
/// PASCAL VOC2007's 11-point interpolated AP: recall thresholds 0, 0.1, ..., 1 (devkit
/// `VOCevaldet.m`; py-faster-rcnn `voc_ap(use_07_metric=True)`, `np.arange(0., 1.1, 0.1)`).
pub const VOC07_RECALL_POINTS: usize = 11;
/// COCO's IoU thresholds `np.linspace(.5, 0.95, 10)` (pycocotools `cocoeval.py`,
/// `Params.setDetParams`): first, last and count. Table 8's mAP@[.5, .95] averages over them.
pub const COCO_IOU_RANGE: (f64, f64, usize) = (0.5, 0.95, 10);
/// COCO's recall thresholds `np.linspace(.0, 1.00, 101)` (pycocotools, `Params.setDetParams`).
pub const COCO_RECALL_RANGE: (f64, f64, usize) = (0.0, 1.0, 101);
/// COCO's IoU thresholds of the summary's AP50 and AP75 lines (pycocotools `summarize`), and
/// Table 8's mAP@.5.
pub const COCO_AP50: f64 = 0.5;
pub const COCO_AP75: f64 = 0.75;
/// COCO's area ranges in pixels² by name (pycocotools `Params.setDetParams`: `[0, 1e5 ** 2]`,
/// `[0, 32 ** 2]`, `[32 ** 2, 96 ** 2]`, `[96 ** 2, 1e5 ** 2]`; `areaRngLbl`).
pub const COCO_AREA_RANGES: [(&str, f64, f64); 4] = [
    ("all", 0.0, 1e5 * 1e5),
    ("small", 0.0, 32.0 * 32.0),
    ("medium", 32.0 * 32.0, 96.0 * 96.0),
    ("large", 96.0 * 96.0, 1e5 * 1e5),
];
/// COCO's limits on detections per image and category (pycocotools `Params.setDetParams`,
/// `maxDets = [1, 10, 100]`).
pub const COCO_MAX_DETS: [usize; 3] = [1, 10, 100];

/// Every network the paper trains: CIFAR plain/residual 20–110 and ResNet-1202 (Table 6),
/// ImageNet plain-18/34, ResNet-18/34 with A/B/C, ResNet-50/101/152 with B (Tables 1–3).
pub fn all_nets() -> Vec<Net> {
    let mut v = Experiment::Figure6.grid();
    v.push(Net::cifar(NetKind::Residual, CIFAR_EXTRA_DEEP));
    for d in [18, 34] {
        v.push(inet(NetKind::Plain, d, Shortcut::A));
    }
    for d in [18, 34] {
        for sc in [Shortcut::A, Shortcut::B, Shortcut::C] {
            v.push(inet(NetKind::Residual, d, sc));
        }
    }
    for &(d, _) in &TABLE1_GFLOPS[2..] {
        v.push(inet(NetKind::Residual, d, Shortcut::B));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table6_prints_resnet110_as_best_and_mean_std() {
        let r110 = table6(&Net::cifar(NetKind::Residual, 110)).unwrap();
        assert_eq!(r110.shown(), format!("{:.2} (6.61±0.16)", r110.error));
        assert_eq!(r110.mean(), 6.61);
        assert_eq!(r110.params_shown(), "1.7M");
        let r20 = table6(&Net::cifar(NetKind::Residual, 20)).unwrap();
        assert_eq!((r20.shown(), r20.mean()), ("8.75".to_string(), r20.error));
        assert_eq!(table6(&Net::cifar(NetKind::Plain, 20)), None);
    }

    #[test]
    fn compressed_milestones_keep_the_papers_proportions() {
        assert_eq!(scaled_milestones(CIFAR_ITERATIONS), CIFAR_MILESTONES);
        assert_eq!(scaled_milestones(3000), [1500, 2250]);
        assert_eq!(scaled_milestones(2), [1, 1]);
    }

    #[test]
    fn plain_nets_find_their_table_entry_whatever_shortcut_they_carry() {
        let p34 = inet(NetKind::Plain, 34, Shortcut::B);
        assert_eq!(tables_2_3(&p34).unwrap().top5, Some(10.02));
        assert_eq!(tables_2_3(&inet(NetKind::Residual, 18, Shortcut::B)), None);
        assert_eq!(table4(&inet(NetKind::Residual, 34, Shortcut::A)), None);
    }

    #[test]
    fn every_grid_net_builds_and_names_parse_back() {
        for r in Experiment::ALL {
            assert_eq!(Experiment::parse(r.name()), Some(r));
            for n in r.grid() {
                assert_eq!(n.family, r.family(), "{r:?}");
                n.model().validate().unwrap();
                assert_eq!(Net::of(&n.model()), n);
            }
        }
        assert_eq!(all_nets().len(), 22);
        assert_eq!(Experiment::parse("table5"), None);
    }
}
