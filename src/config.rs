//! The experiment config (paper §3.4 and §4.2): one TOML file is the single source of truth for a run.
//!
//! Every section is a nested serde struct with `deny_unknown_fields`; defaults are the paper's
//! CIFAR-10 recipe (§4.2). [`Config::load`] parses and validates, naming the file, the key and the
//! allowed values in every error. CLI flags only override fields afterwards ([`Config::validate`]
//! must then be called again). Files over [`MAX_CONFIG_BYTES`] are refused unread.
//!
//! Relative paths (`data.path`, `data.cache_dir`):
//! - written in a config file, they are relative to that file's folder, whatever the current
//!   directory: `configs/x.toml` names the repository's `data/` as `../data`. For a run folder's
//!   `config.toml` (read by `--resume DIR` and `eval`), that is the run folder. [`Config::load`]
//!   resolves them to absolute paths, which every message then shows;
//! - defaults (a key left out) and command-line flags (`--data`, `--out`, `--dir`, ...) are
//!   relative to the current directory, as for any command;
//! - the resolved config a run folder receives ([`Config::to_toml`]) holds both as absolute
//!   paths, so it means the same wherever it is read from.
//!
//! `[data.detection]`'s paths (VOC roots, COCO annotation files and image folders) are relative to
//! `data.path` itself (the folder, or the extracted archive's top folder), so they never change
//! meaning when `data.path` moves.
//!
//! `run.out_dir` keeps the command-line rule (relative to the current directory) wherever it is
//! written, so that `runs/<name>` lands beside the user as before.
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// Largest config file read, in bytes; a larger one (or `/dev/zero`) is refused unread.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Most intra-op or decoding threads accepted (`run.threads`, `data.workers`).
pub const MAX_THREADS: usize = 4096;
/// Deepest CIFAR net describable (a bound on the plan, far past anything that fits in memory;
/// [`crate::run::budget`] refuses what does not fit).
pub const MAX_CIFAR_DEPTH: usize = 1_000_000;
/// Most classes accepted (ImageNet-21k has 21,841).
pub const MAX_CLASSES: usize = 1_000_000;
/// The default `data.path`, relative to the current directory: where `resnet data fetch cifar10`
/// puts CIFAR-10 by default, and what `configs/cifar_*.toml` name (as `../data/cifar10`, from
/// `configs/`).
pub const DEFAULT_CIFAR10_DIR: &str = "data/cifar10";

/// The whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run name; defaults to the config file's stem. A plain file name (no `/`, not `.` or `..`):
    /// the run folder is `runs/<name>` unless `run.out_dir` says otherwise.
    #[serde(default)]
    pub name: String,
    pub model: ModelConfig,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub run: RunConfig,
}

/// Which network (paper §3.3, Table 1, §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// 32×32 inputs, 3 stages of 2n layers at 16/32/64 filters (§4.2).
    Cifar,
    /// 224×224 inputs, Table 1's 18/34/50/101/152-layer nets.
    Imagenet,
}

/// Residual net, or the same stack without shortcuts (the paper's "plain" baseline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    Residual,
    Plain,
}

/// Shortcut options of §3.3 / Table 3 (ordered A, B, C as the paper's tables list them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Shortcut {
    /// Identity; zero-padding for increasing dimensions (parameter-free).
    A,
    /// Projection (1×1 conv + BN) only where dimensions change.
    B,
    /// Projection on every block.
    C,
}

/// The spellings the config and the run records (`summary.csv`'s `family`, `kind` and
/// `shortcut` columns) use for these enums: `name()` writes one, `FromStr` reads it back and
/// names the accepted spellings otherwise.
macro_rules! record_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = anyhow::Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => bail!("{s:?} is not one of {}", [$($name),+].join(", ")),
                }
            }
        }
    };
}

record_names!(Family { Cifar => "cifar", Imagenet => "imagenet" });
record_names!(NetKind { Residual => "residual", Plain => "plain" });
record_names!(Shortcut { A => "A", B => "B", C => "C" });

/// The network: a preset of the paper filled into one struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub family: Family,
    pub depth: usize,
    #[serde(default = "default_kind")]
    pub kind: NetKind,
    /// Defaults to A for CIFAR (§4.2) and B for ImageNet (the paper's ResNet-50/101/152).
    #[serde(default)]
    pub shortcut: Option<Shortcut>,
    /// Defaults to 10 for CIFAR and 1000 for ImageNet.
    #[serde(default)]
    pub classes: Option<usize>,
    /// Bottleneck blocks: put the stride-2 on the first 1×1 conv, as the paper's released models
    /// and fb.resnet.torch do (3.8 GFLOPs for ResNet-50). `false` puts it on the 3×3 conv as
    /// torchvision does ("ResNet v1.5", 4.1 GFLOPs); parameter counts are the same.
    #[serde(default = "default_true")]
    pub stride_in_1x1: bool,
}

/// Which images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// The official binary CIFAR-10 (`cifar-10-binary.tar.gz`).
    Cifar10,
    /// `ROOT/train/<class>/*` and `ROOT/val/<class>/*` (or `test/`), JPEG or PNG; ROOT may also be
    /// a `.tar.gz` of such a tree, extracted once into `data.cache_dir`.
    ImageFolder,
    /// Seeded class-dependent patterns, for tests and smoke runs.
    Synthetic,
    /// Detection (the paper's appendix, Table 7): the PASCAL VOC layout (`JPEGImages/`,
    /// `Annotations/*.xml`, `ImageSets/Main/<set>.txt`) under the roots of `[data.detection]`.
    Voc,
    /// Detection (the paper's appendix, Table 8): COCO's `instances_*.json` and image folders
    /// named in `[data.detection]`.
    Coco,
}

impl Dataset {
    /// The config's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar10",
            Dataset::ImageFolder => "image_folder",
            Dataset::Synthetic => "synthetic",
            Dataset::Voc => "voc",
            Dataset::Coco => "coco",
        }
    }

    /// A detection dataset (boxes, not one label per image): `voc` or `coco`.
    pub fn is_detection(self) -> bool {
        matches!(self, Dataset::Voc | Dataset::Coco)
    }
}

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Augment {
    /// §4.2: per-pixel mean subtraction, 4-pixel zero padding + random 32×32 crop, random flip.
    Cifar,
    /// §3.4: scale augmentation [256, 480], random 224 crop, flip, per-pixel mean, PCA colour.
    Imagenet,
    /// Per-pixel mean subtraction only.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    #[serde(default = "default_dataset")]
    pub dataset: Dataset,
    /// Folder (or archive) with the data. For `cifar10` the folder holding (or receiving)
    /// `cifar-10-batches-bin/`, or that folder itself. Relative to the config file's folder when
    /// written in a file (see the module doc); the default `data/cifar10` is relative to the
    /// current directory.
    #[serde(default = "default_data_path")]
    pub path: PathBuf,
    #[serde(default = "default_augment")]
    pub augment: Augment,
    /// Training images held out as a validation split (the paper's 45k/5k split uses 5000);
    /// 0 evaluates on the test split.
    #[serde(default)]
    pub validation: usize,
    /// Where archives are extracted and decoded caches are kept. Relative as `path`; the default
    /// `.cache` is in the current directory.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
    /// Skip corrupt or non-image files with a warning (counted) instead of failing.
    #[serde(default)]
    pub skip_corrupt: bool,
    /// Decoding threads for image folders; 0 = all cores.
    #[serde(default)]
    pub workers: usize,
    /// Size of the synthetic dataset (only for `dataset = "synthetic"`).
    #[serde(default)]
    pub synthetic: SyntheticConfig,
    /// The sizes of §3.4's transform (`augment = "imagenet"` and the evaluation of large images).
    #[serde(default)]
    pub imagenet: ImagenetTransform,
    /// Where a detection dataset's annotations are and how its images are resized
    /// (`dataset = "voc"` or `"coco"` only).
    #[serde(default)]
    pub detection: DetectionConfig,
}

/// One VOC image set: `ROOT/ImageSets/Main/SET.txt` names the images of `ROOT/JPEGImages/` and
/// `ROOT/Annotations/`. `root` is relative to `data.path` (absolute allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocSet {
    pub root: PathBuf,
    pub set: String,
}

/// One COCO split: an `instances_*.json` and the folder holding its `file_name`s, both relative
/// to `data.path` (absolute allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CocoSet {
    pub annotations: PathBuf,
    pub images: PathBuf,
}

/// `[data.detection]`: the splits of a detection dataset and Faster R-CNN's image transform.
///
/// Paths are relative to `data.path`: the folder itself, or, for a `.tar.gz`, its extraction in
/// `data.cache_dir` (its single top-level folder when it has one). VOC 07+12 with
/// `data.path = "VOCdevkit"`: `voc_train = [{ root = "VOC2007", set = "trainval" },
/// { root = "VOC2012", set = "trainval" }]`, `voc_test = [{ root = "VOC2007", set = "test" }]`;
/// 07++12 adds `{ root = "VOC2007", set = "test" }` to the training sets and tests on VOC2012.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    /// Class names, in the order of the contiguous labels. VOC: the `<name>` of the objects
    /// (empty = VOC's 20 classes in the devkit's order); an object of another class is an error.
    /// COCO: empty = the categories of the file sorted by id; when given, exactly those names.
    #[serde(default)]
    pub classes: Vec<String>,
    /// VOC image sets of the training split.
    #[serde(default = "default_voc_train")]
    pub voc_train: Vec<VocSet>,
    /// VOC image sets of the test split.
    #[serde(default = "default_voc_test")]
    pub voc_test: Vec<VocSet>,
    /// VOC's corners are 1-based inclusive pixel indices (the devkit's convention): the box
    /// `[xmin - 1, ymin - 1, xmax, ymax]` in continuous coordinates, as py-faster-rcnn and
    /// Detectron convert them. `false` reads them as continuous coordinates as written (for
    /// VOC-style files made from COCO boxes, as the dogs-det archive's are).
    #[serde(default = "default_true")]
    pub voc_one_based: bool,
    /// The COCO training split (default: the official 2017 layout).
    #[serde(default = "default_coco_train")]
    pub coco_train: CocoSet,
    /// The COCO test split (default: COCO 2017 val).
    #[serde(default = "default_coco_test")]
    pub coco_test: CocoSet,
    /// Faster R-CNN's scale: the shorter side after resizing (the paper's 600).
    #[serde(default = "default_det_shorter")]
    pub shorter_side: u32,
    /// The longer side is at most this (py-faster-rcnn's 1000); the shorter side gives way.
    #[serde(default = "default_det_longer")]
    pub max_side: u32,
    /// A batch is zero-padded to the largest image, then to a multiple of this (1 = no more).
    #[serde(default = "default_one")]
    pub size_divisor: u32,
    /// Horizontal flips of training images (with their boxes), each with probability 1/2.
    #[serde(default = "default_true")]
    pub flip: bool,
}

fn default_voc_train() -> Vec<VocSet> {
    vec![VocSet {
        root: PathBuf::from("."),
        set: "trainval".into(),
    }]
}
fn default_voc_test() -> Vec<VocSet> {
    vec![VocSet {
        root: PathBuf::from("."),
        set: "test".into(),
    }]
}
fn coco_set(set: &str) -> CocoSet {
    CocoSet {
        annotations: PathBuf::from(format!("annotations/instances_{set}.json")),
        images: PathBuf::from(set),
    }
}
fn default_coco_train() -> CocoSet {
    coco_set("train2017")
}
fn default_coco_test() -> CocoSet {
    coco_set("val2017")
}
fn default_det_shorter() -> u32 {
    600
}
fn default_det_longer() -> u32 {
    1000
}
fn default_one() -> u32 {
    1
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            classes: Vec::new(),
            voc_train: default_voc_train(),
            voc_test: default_voc_test(),
            voc_one_based: true,
            coco_train: default_coco_train(),
            coco_test: default_coco_test(),
            shorter_side: default_det_shorter(),
            max_side: default_det_longer(),
            size_divisor: default_one(),
            flip: true,
        }
    }
}

/// Largest `data.detection.shorter_side` / `max_side` accepted (COCO's images are at most 640
/// pixels a side; Detectron's largest test scale is 1,400).
pub const MAX_DETECTION_SIDE: u32 = 4096;

impl DetectionConfig {
    /// Sizes in range, shorter side not above the longer bound, image sets and class names
    /// well-formed and distinct.
    pub fn validate(&self) -> Result<()> {
        let d = self;
        for (key, v) in [("shorter_side", d.shorter_side), ("max_side", d.max_side)] {
            if v == 0 || v > MAX_DETECTION_SIDE {
                bail!("data.detection.{key} = {v}: must be in 1..={MAX_DETECTION_SIDE} pixels");
            }
        }
        if d.shorter_side > d.max_side {
            bail!(
                "data.detection.shorter_side = {} is larger than data.detection.max_side = {}",
                d.shorter_side,
                d.max_side
            );
        }
        if !(1..=256).contains(&d.size_divisor) {
            bail!(
                "data.detection.size_divisor = {}: must be in 1..=256 (1 = pad to the largest \
                 image only; torchvision pads to 32)",
                d.size_divisor
            );
        }
        for (key, sets) in [("voc_train", &d.voc_train), ("voc_test", &d.voc_test)] {
            if sets.is_empty() {
                bail!("data.detection.{key} = []: list at least one {{ root, set }}");
            }
            for s in sets {
                let ok = !s.set.is_empty()
                    && s.set.len() <= 255
                    && !s.set.contains(['/', '\\', '\0'])
                    && s.set != "."
                    && s.set != "..";
                if !ok {
                    bail!(
                        "data.detection.{key}: set = {:?} is not an image-set name (a file name \
                         under ImageSets/Main/ without .txt, e.g. \"trainval\")",
                        s.set
                    );
                }
            }
        }
        for (i, c) in d.classes.iter().enumerate() {
            if c.trim().is_empty() || c.trim() != c {
                bail!("data.detection.classes: {c:?} is not a class name (empty or padded)");
            }
            if d.classes[..i].contains(c) {
                bail!("data.detection.classes: {c:?} is listed twice");
            }
        }
        if d.classes.len() > MAX_CLASSES {
            bail!("data.detection.classes: at most {MAX_CLASSES} names");
        }
        Ok(())
    }
}

/// `[data.imagenet]`: the pixel sizes of §3.4's transform, the paper's by default. Training: the
/// shorter side drawn in [`scale_min`, `scale_max`], a `crop`×`crop` crop; evaluation: shorter side
/// `test_resize`, the centre (or 10) `crop` crops; multi-scale testing (Table 4): the whole image
/// at each of `multi_scale`'s shorter sides. Smaller values give reduced-resolution recipes
/// (configs/imagewoof_*.toml) that train on a CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagenetTransform {
    #[serde(default = "default_scale_min")]
    pub scale_min: u32,
    #[serde(default = "default_scale_max")]
    pub scale_max: u32,
    #[serde(default = "default_crop")]
    pub crop: u32,
    #[serde(default = "default_test_resize")]
    pub test_resize: u32,
    #[serde(default = "default_multi_scale")]
    pub multi_scale: Vec<u32>,
}

fn default_scale_min() -> u32 {
    256
}
fn default_scale_max() -> u32 {
    480
}
fn default_crop() -> u32 {
    224
}
fn default_test_resize() -> u32 {
    256
}
fn default_multi_scale() -> Vec<u32> {
    vec![224, 256, 384, 480, 640]
}

impl Default for ImagenetTransform {
    fn default() -> Self {
        ImagenetTransform {
            scale_min: default_scale_min(),
            scale_max: default_scale_max(),
            crop: default_crop(),
            test_resize: default_test_resize(),
            multi_scale: default_multi_scale(),
        }
    }
}

/// Largest side any `[data.imagenet]` size may have (the paper's largest is 640): with streamed
/// images' aspect ratio capped at 16, one resized image stays within 1024 × 16384 × 3 bytes.
pub const MAX_TRANSFORM_SIDE: u32 = 1024;

impl ImagenetTransform {
    /// Each size in 1..=[`MAX_TRANSFORM_SIDE`]; scale_min <= scale_max; the crop fits in the
    /// smallest training scale and in the test resize; multi-scale sides listed, distinct.
    pub fn validate(&self) -> Result<()> {
        let t = self;
        for (key, v) in [
            ("scale_min", t.scale_min),
            ("scale_max", t.scale_max),
            ("crop", t.crop),
            ("test_resize", t.test_resize),
        ] {
            if v == 0 || v > MAX_TRANSFORM_SIDE {
                bail!("data.imagenet.{key} = {v}: must be in 1..={MAX_TRANSFORM_SIDE} pixels");
            }
        }
        if t.scale_min > t.scale_max {
            bail!(
                "data.imagenet.scale_min = {} is larger than data.imagenet.scale_max = {}",
                t.scale_min,
                t.scale_max
            );
        }
        if t.crop > t.scale_min {
            bail!(
                "data.imagenet.crop = {} is larger than the smallest training scale \
                 data.imagenet.scale_min = {}: the crop would not fit in the resized image",
                t.crop,
                t.scale_min
            );
        }
        if t.test_resize < t.crop {
            bail!(
                "data.imagenet.test_resize = {} is smaller than data.imagenet.crop = {}: the \
                 centre crop would not fit in the resized image",
                t.test_resize,
                t.crop
            );
        }
        if t.multi_scale.is_empty() {
            bail!("data.imagenet.multi_scale = []: list at least one shorter side (the paper's: [224, 256, 384, 480, 640])");
        }
        for (i, &s) in t.multi_scale.iter().enumerate() {
            if s == 0 || s > MAX_TRANSFORM_SIDE {
                bail!(
                    "data.imagenet.multi_scale = {:?}: side {s} must be in 1..={MAX_TRANSFORM_SIDE}",
                    t.multi_scale
                );
            }
            if t.multi_scale[..i].contains(&s) {
                bail!(
                    "data.imagenet.multi_scale = {:?}: side {s} is listed twice",
                    t.multi_scale
                );
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    #[serde(default = "default_syn_train")]
    pub train: usize,
    #[serde(default = "default_syn_test")]
    pub test: usize,
    /// Square image side in pixels.
    #[serde(default = "default_syn_size")]
    pub image_size: usize,
}

/// SGD as in §3.4 / §4.2 (PyTorch `SGD` semantics: coupled weight decay, dampening 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default)]
    pub nesterov: bool,
}

/// How the learning rate is lowered: at fixed iterations (CIFAR, §4.2) or when the error
/// plateaus (ImageNet, §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleMode {
    Milestones,
    Plateau,
}

/// Learning-rate schedule, in iterations as the paper counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default = "default_mode")]
    pub mode: ScheduleMode,
    /// Iterations at which lr is multiplied by `gamma` (mode = "milestones").
    #[serde(default = "default_milestones")]
    pub milestones: Vec<u64>,
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Last iteration (training stops after it).
    #[serde(default = "default_iterations")]
    pub iterations: u64,
    /// mode = "plateau": lower lr when the evaluated error has not improved by `plateau_threshold`
    /// (absolute, in error fraction) for `plateau_patience` consecutive evaluations.
    #[serde(default = "default_patience")]
    pub plateau_patience: u32,
    #[serde(default = "default_plateau_threshold")]
    pub plateau_threshold: f64,
    /// ResNet-110's warm-up (§4.2): train at `warmup.lr` until the training error falls below
    /// `warmup.until_train_error`, then go back to `optimizer.lr`.
    #[serde(default)]
    pub warmup: Option<WarmupConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupConfig {
    #[serde(default = "default_warmup_lr")]
    pub lr: f64,
    /// Training error (fraction, over the last `check_every` iterations) below which warm-up ends.
    #[serde(default = "default_warmup_err")]
    pub until_train_error: f64,
    /// How often the training error is read for this rule (a device sync on GPU).
    #[serde(default = "default_warmup_check")]
    pub check_every: u64,
    /// Warm-up ends here at the latest.
    #[serde(default = "default_warmup_max")]
    pub max_iterations: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Bf16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryFormat {
    Nchw,
    Nhwc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_device")]
    pub device: DeviceChoice,
    /// Run folder; empty means `runs/<name>`.
    #[serde(default)]
    pub out_dir: PathBuf,
    /// One `curves.csv` row (training loss/error over the interval) every this many iterations.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Test (or validation) error every this many iterations, and always at the end.
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// Checkpoint every this many iterations, and always at the end.
    #[serde(default = "default_ckpt_every")]
    pub checkpoint_every: u64,
    /// Intra-op CPU threads; 0 = libtorch's default (all cores).
    #[serde(default)]
    pub threads: usize,
    /// CUDA only: "bf16" runs forward/backward under bfloat16 autocast.
    #[serde(default = "default_precision")]
    pub precision: Precision,
    /// "nhwc" gives activations (and conv weights) channels-last strides.
    #[serde(default = "default_memory_format")]
    pub memory_format: MemoryFormat,
    /// Evaluation batch size.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// CUDA only: capture the whole training step (batch assembly, forward, backward, SGD
    /// update, metric slots) once as a CUDA graph and replay it every iteration (src/graph.rs).
    /// Same arithmetic as the eager step; off by default until proven on the device. Needs a
    /// dataset held in device memory (cifar10, synthetic, small-image folders).
    #[serde(default)]
    pub cuda_graph: bool,
    /// Data-parallel ranks the global `optimizer.batch_size` is split over (issue 16; BN
    /// statistics are per rank, so it is part of the recipe). 1 = one process.
    #[serde(default = "default_world_size")]
    pub world_size: usize,
    /// Collective backend: "auto" (NCCL on CUDA, Gloo on the CPU), "gloo" or "nccl".
    #[serde(default = "default_dist_backend")]
    pub dist_backend: String,
    /// Bounds the rendezvous and every collective, in seconds.
    #[serde(default = "default_dist_timeout_s")]
    pub dist_timeout_s: u64,
}

fn default_world_size() -> usize {
    1
}
fn default_dist_backend() -> String {
    "auto".into()
}
/// The largest `run.dist_timeout_s` (7 days): c10d's deadlines are nanosecond counts, which a
/// timeout near 1e10 s overflows (failing at once, or never firing).
pub const MAX_DIST_TIMEOUT_S: u64 = 7 * 24 * 3600;

fn default_dist_timeout_s() -> u64 {
    300
}

fn default_true() -> bool {
    true
}
fn default_kind() -> NetKind {
    NetKind::Residual
}
fn default_dataset() -> Dataset {
    Dataset::Cifar10
}
fn default_data_path() -> PathBuf {
    PathBuf::from(DEFAULT_CIFAR10_DIR)
}
fn default_augment() -> Augment {
    Augment::Cifar
}
fn default_cache_dir() -> PathBuf {
    PathBuf::from(".cache")
}
fn default_syn_train() -> usize {
    2048
}
fn default_syn_test() -> usize {
    512
}
fn default_syn_size() -> usize {
    32
}
fn default_lr() -> f64 {
    0.1
}
fn default_momentum() -> f64 {
    0.9
}
fn default_weight_decay() -> f64 {
    1e-4
}
fn default_batch() -> usize {
    128
}
fn default_mode() -> ScheduleMode {
    ScheduleMode::Milestones
}
fn default_milestones() -> Vec<u64> {
    vec![32_000, 48_000]
}
fn default_gamma() -> f64 {
    0.1
}
fn default_iterations() -> u64 {
    64_000
}
fn default_patience() -> u32 {
    3
}
fn default_plateau_threshold() -> f64 {
    0.001
}
fn default_warmup_lr() -> f64 {
    0.01
}
fn default_warmup_err() -> f64 {
    0.8
}
fn default_warmup_check() -> u64 {
    20
}
fn default_warmup_max() -> u64 {
    2_000
}
fn default_device() -> DeviceChoice {
    DeviceChoice::Auto
}
fn default_log_every() -> u64 {
    100
}
fn default_eval_every() -> u64 {
    1_000
}
fn default_ckpt_every() -> u64 {
    1_000
}
fn default_precision() -> Precision {
    Precision::Fp32
}
fn default_memory_format() -> MemoryFormat {
    MemoryFormat::Nchw
}
fn default_eval_batch() -> usize {
    500
}

impl Default for DataConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty data config")
    }
}
impl Default for SyntheticConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty synthetic config")
    }
}
impl Default for OptimizerConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty optimizer config")
    }
}
impl Default for ScheduleConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty schedule config")
    }
}
impl Default for RunConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty run config")
    }
}
impl Default for WarmupConfig {
    fn default() -> Self {
        toml::from_str("").expect("empty warmup config")
    }
}

/// Depths of Table 1.
pub const IMAGENET_DEPTHS: [usize; 5] = [18, 34, 50, 101, 152];

impl ModelConfig {
    /// A CIFAR-10 net of §4.2 (option A shortcuts, 10 classes).
    pub fn cifar(depth: usize, kind: NetKind) -> Self {
        ModelConfig {
            family: Family::Cifar,
            depth,
            kind,
            shortcut: Some(Shortcut::A),
            classes: Some(10),
            stride_in_1x1: true,
        }
    }

    /// An ImageNet net of Table 1 with the given shortcut option.
    pub fn imagenet(depth: usize, kind: NetKind, shortcut: Shortcut) -> Self {
        ModelConfig {
            family: Family::Imagenet,
            depth,
            kind,
            shortcut: Some(shortcut),
            classes: Some(1000),
            stride_in_1x1: true,
        }
    }

    /// Shortcut option after defaults (A for CIFAR, B for ImageNet).
    pub fn shortcut(&self) -> Shortcut {
        self.shortcut.unwrap_or(match self.family {
            Family::Cifar => Shortcut::A,
            Family::Imagenet => Shortcut::B,
        })
    }

    pub fn classes(&self) -> usize {
        self.classes.unwrap_or(match self.family {
            Family::Cifar => 10,
            Family::Imagenet => 1000,
        })
    }

    /// Input side length the family is designed for.
    pub fn image_size(&self) -> usize {
        match self.family {
            Family::Cifar => 32,
            Family::Imagenet => 224,
        }
    }

    /// A short display name, e.g. `resnet56`, `plain20`, `resnet34-C`.
    pub fn display_name(&self) -> String {
        let base = match self.kind {
            NetKind::Residual => "resnet",
            NetKind::Plain => "plain",
        };
        let default_sc = match self.family {
            Family::Cifar => Shortcut::A,
            Family::Imagenet => Shortcut::B,
        };
        if self.kind == NetKind::Residual && self.shortcut() != default_sc {
            format!("{base}{}-{}", self.depth, self.shortcut())
        } else {
            format!("{base}{}", self.depth)
        }
    }

    /// Checks the depth and class count; errors name the key and the allowed values.
    pub fn validate(&self) -> Result<()> {
        match self.family {
            Family::Cifar => {
                if self.depth > MAX_CIFAR_DEPTH {
                    bail!(
                        "model.depth = {}: at most {MAX_CIFAR_DEPTH} (ResNet-1202 is the paper's \
                         deepest)",
                        self.depth
                    );
                }
                if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
                    bail!(
                        "model.depth = {}: a CIFAR net has depth 6n+2 with n >= 1 \
                         (20, 32, 44, 56, 110, 1202, ...)",
                        self.depth
                    );
                }
            }
            Family::Imagenet => {
                if !IMAGENET_DEPTHS.contains(&self.depth) {
                    bail!(
                        "model.depth = {}: an ImageNet net has depth 18, 34, 50, 101 or 152 (Table 1)",
                        self.depth
                    );
                }
            }
        }
        if !(2..=MAX_CLASSES).contains(&self.classes()) {
            bail!(
                "model.classes = {}: must be in 2..={MAX_CLASSES}",
                self.classes()
            );
        }
        Ok(())
    }
}

impl Config {
    /// Reads, parses and validates a config file. Errors name the file, the key and the value.
    /// Relative `data.path` and `data.cache_dir` written in the file are resolved against its
    /// folder (see the module doc).
    pub fn load(path: &Path) -> Result<Config> {
        let text = read_config_text(path)?;
        let mut cfg = Config::from_toml(&text)
            .with_context(|| format!("in config file {}", path.display()))?;
        if cfg.name.is_empty() {
            cfg.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into());
        }
        cfg.resolve_written_paths(path, &text);
        cfg.validate()
            .with_context(|| format!("in config file {}", path.display()))?;
        Ok(cfg)
    }

    /// Makes the relative `data.path` / `data.cache_dir` that `text` (the file at `path`) sets
    /// absolute, against the file's folder.
    fn resolve_written_paths(&mut self, path: &Path, text: &str) {
        let Ok(table) = toml::from_str::<toml::Table>(text) else {
            return;
        };
        let data = table.get("data").and_then(toml::Value::as_table);
        let written = |key: &str| data.is_some_and(|d| d.contains_key(key));
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = folder_absolute(folder);
        if written("path") {
            self.data.path = resolve_against(&base, &self.data.path);
        }
        if written("cache_dir") {
            self.data.cache_dir = resolve_against(&base, &self.data.cache_dir);
        }
    }

    /// Parses TOML text (no validation, no file name).
    pub fn from_toml(text: &str) -> Result<Config> {
        toml::from_str::<Config>(text)
            .map_err(|e| anyhow::anyhow!("{}", describe_toml_error(&e, text)))
    }

    /// The resolved config as TOML (every default written out, `data.path` and `data.cache_dir`
    /// absolute, against the current directory where relative), as stored first in a run folder.
    pub fn to_toml(&self) -> Result<String> {
        let mut resolved = self.clone();
        if let Ok(cwd) = std::env::current_dir() {
            let cwd = folder_absolute(&cwd);
            resolved.data.path = resolve_against(&cwd, &self.data.path);
            resolved.data.cache_dir = resolve_against(&cwd, &self.data.cache_dir);
        }
        resolved.model.shortcut = Some(self.model.shortcut());
        resolved.model.classes = Some(self.model.classes());
        resolved.run.out_dir = self.out_dir();
        Ok(toml::to_string_pretty(&resolved)?)
    }

    /// The run folder: `run.out_dir`, or `runs/<name>`.
    pub fn out_dir(&self) -> PathBuf {
        if self.run.out_dir.as_os_str().is_empty() {
            PathBuf::from("runs").join(&self.name)
        } else {
            self.run.out_dir.clone()
        }
    }

    /// Cross-field checks. Every message names the key, the bad value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        check_name(&self.name)?;
        self.model.validate()?;
        self.optimizer.validate()?;
        self.schedule.validate()?;
        self.run.validate()?;
        let (b, w) = (self.optimizer.batch_size, self.run.world_size);
        if !b.is_multiple_of(w) {
            bail!(
                "optimizer.batch_size = {b} (the global batch) does not divide by run.world_size \
                 = {w} (the number of ranks): each rank trains on an equal slice"
            );
        }
        self.validate_data()
    }

    /// `[data]`, and how it fits the model.
    fn validate_data(&self) -> Result<()> {
        if self.data.workers > MAX_THREADS {
            bail!(
                "data.workers = {}: must be in 0..={MAX_THREADS} (0 = all cores)",
                self.data.workers
            );
        }
        let d = &self.data;
        if d.dataset == Dataset::Synthetic {
            let syn = &d.synthetic;
            if syn.train == 0 || syn.test == 0 {
                bail!("data.synthetic.train and data.synthetic.test must be at least 1");
            }
            if syn.image_size < 8 {
                bail!(
                    "data.synthetic.image_size = {}: must be at least 8",
                    syn.image_size
                );
            }
        }
        if d.dataset == Dataset::Cifar10 && self.model.classes() != 10 {
            bail!(
                "model.classes = {} but data.dataset = \"cifar10\" has 10 classes",
                self.model.classes()
            );
        }
        d.imagenet.validate()?;
        d.detection.validate()?;
        if d.augment == Augment::Imagenet && self.model.family == Family::Cifar {
            bail!("data.augment = \"imagenet\" crops 224x224 and does not fit model.family = \"cifar\"; allowed: \"cifar\", \"none\"");
        }
        Ok(())
    }
}

impl OptimizerConfig {
    /// `[optimizer]`: positive lr, momentum in [0, 1), batch of at least one.
    fn validate(&self) -> Result<()> {
        let o = self;
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            bail!("optimizer.lr = {}: must be a positive number", o.lr);
        }
        if !(0.0..1.0).contains(&o.momentum) {
            bail!("optimizer.momentum = {}: must be in [0, 1)", o.momentum);
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            bail!("optimizer.weight_decay = {}: must be >= 0", o.weight_decay);
        }
        if o.batch_size == 0 {
            bail!("optimizer.batch_size = 0: must be at least 1");
        }
        if o.nesterov && o.momentum == 0.0 {
            bail!("optimizer.nesterov = true needs optimizer.momentum > 0");
        }
        Ok(())
    }
}

impl ScheduleConfig {
    /// `[schedule]`: iterations, increasing milestones inside the run, gamma, the plateau rule,
    /// warm-up.
    fn validate(&self) -> Result<()> {
        let s = self;
        if s.iterations == 0 {
            bail!("schedule.iterations = 0: must be at least 1");
        }
        if s.milestones.windows(2).any(|w| w[0] >= w[1]) {
            bail!(
                "schedule.milestones = {:?}: must be strictly increasing",
                s.milestones
            );
        }
        if let Some(m) = s.milestones.iter().find(|&&m| m == 0 || m > s.iterations) {
            bail!(
                "schedule.milestones contains {m}: each must be in 1..={} (schedule.iterations)",
                s.iterations
            );
        }
        if !(s.gamma > 0.0 && s.gamma <= 1.0) {
            bail!("schedule.gamma = {}: must be in (0, 1]", s.gamma);
        }
        // NaN or a negative threshold would make "not improved" never true: no plateau rule.
        if !(0.0..1.0).contains(&s.plateau_threshold) {
            bail!(
                "schedule.plateau_threshold = {}: must be an error fraction in [0, 1)",
                s.plateau_threshold
            );
        }
        if s.plateau_patience == 0 {
            bail!("schedule.plateau_patience = 0: must be at least 1 evaluation");
        }
        if let Some(w) = &s.warmup {
            if !(w.lr > 0.0 && w.lr.is_finite()) {
                bail!("schedule.warmup.lr = {}: must be a positive number", w.lr);
            }
            if !(w.until_train_error > 0.0 && w.until_train_error <= 1.0) {
                bail!(
                    "schedule.warmup.until_train_error = {}: must be a fraction in (0, 1]",
                    w.until_train_error
                );
            }
            if w.check_every == 0 {
                bail!("schedule.warmup.check_every = 0: must be at least 1");
            }
        }
        Ok(())
    }
}

impl RunConfig {
    /// `[run]`: intervals that land on curve rows, device-dependent switches, thread counts.
    fn validate(&self) -> Result<()> {
        let r = self;
        for (key, v) in [
            ("run.log_every", r.log_every),
            ("run.eval_every", r.eval_every),
            ("run.checkpoint_every", r.checkpoint_every),
        ] {
            if v == 0 {
                bail!("{key} = 0: must be at least 1");
            }
        }
        if !r.checkpoint_every.is_multiple_of(r.log_every) {
            bail!(
                "run.checkpoint_every = {} must be a multiple of run.log_every = {} \
                 (checkpoints are taken at curve rows)",
                r.checkpoint_every,
                r.log_every
            );
        }
        if !r.eval_every.is_multiple_of(r.log_every) {
            bail!(
                "run.eval_every = {} must be a multiple of run.log_every = {} \
                 (test errors are reported on curve rows)",
                r.eval_every,
                r.log_every
            );
        }
        if r.eval_batch_size == 0 {
            bail!("run.eval_batch_size = 0: must be at least 1");
        }
        if r.cuda_graph && r.device == DeviceChoice::Cpu {
            bail!(
                "run.cuda_graph = true needs a CUDA device but run.device = \"cpu\"; \
                 set run.cuda_graph = false (or run.device = \"cuda\" / \"auto\" on a GPU machine)"
            );
        }
        if r.threads > MAX_THREADS {
            bail!(
                "run.threads = {}: must be in 0..={MAX_THREADS} (0 = all cores)",
                r.threads
            );
        }
        if r.world_size == 0 {
            bail!("run.world_size = 0: must be at least 1");
        }
        if !["auto", "gloo", "nccl"].contains(&r.dist_backend.as_str()) {
            bail!(
                "run.dist_backend = {:?}: expected \"auto\", \"gloo\" or \"nccl\"",
                r.dist_backend
            );
        }
        if r.world_size > 1 && r.cuda_graph {
            bail!(
                "run.cuda_graph = true with run.world_size = {} (data parallelism): the gradient \
                 all-reduce is not captured in the graph yet; set run.cuda_graph = false",
                r.world_size
            );
        }
        if r.dist_timeout_s == 0 || r.dist_timeout_s > MAX_DIST_TIMEOUT_S {
            bail!(
                "run.dist_timeout_s = {}: must be 1 to {MAX_DIST_TIMEOUT_S} (7 days); c10d keeps \
                 its deadline in nanoseconds, which larger values overflow",
                r.dist_timeout_s
            );
        }
        Ok(())
    }
}

/// Refuses a run name that is not a plain file name (it names the run folder `runs/<name>`).
/// Empty means "not set" (`Config::load` fills in the file's stem).
fn check_name(name: &str) -> Result<()> {
    let plain = !name.contains(['/', '\\'])
        && name != "."
        && name != ".."
        && !name.chars().any(char::is_control)
        && name.len() <= 255;
    if !plain {
        bail!(
            "name = {name:?}: must be a plain file name (no `/`, not `.` or `..`, at most 255 \
             bytes): it names the run folder runs/<name>"
        );
    }
    Ok(())
}

/// Reads a config file of at most [`MAX_CONFIG_BYTES`] (never more, whatever the file is).
fn read_config_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let cannot = || format!("cannot read config file {}", path.display());
    let f = std::fs::File::open(path).with_context(cannot)?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(cannot)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        bail!(
            "config file {} is larger than {MAX_CONFIG_BYTES} bytes; a config is a short TOML file",
            path.display()
        );
    }
    String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("config file {} is not UTF-8 text ({e})", path.display()))
}

/// `folder` as an absolute path with its symbolic links resolved (as is, made absolute, when it
/// cannot be resolved).
pub fn folder_absolute(folder: &Path) -> PathBuf {
    std::fs::canonicalize(folder)
        .or_else(|_| std::path::absolute(folder))
        .unwrap_or_else(|_| folder.to_path_buf())
}

/// `p` when absolute, else `base` joined with `p`, its leading `..` taken off `base` (exact when
/// `base` has no symbolic links, as [`folder_absolute`] gives), so that messages show
/// `/repo/shared/data/x` rather than `/repo/resnet/configs/../../shared/data/x`.
pub fn resolve_against(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let mut out = base.to_path_buf();
    let mut parts = p.components().peekable();
    while let Some(c) = parts.peek() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.parent().is_some() => {
                out.pop();
            }
            // `/..` is `/`.
            Component::ParentDir if out.has_root() => {}
            _ => break,
        }
        parts.next();
    }
    out.extend(parts);
    out
}

/// Keys of the resolved config that do not change what is trained (where and how fast it runs,
/// how often it reports; `run.cuda_graph` replays the same arithmetic): everything else is the
/// run's recipe. `run.eval_every` is a recipe key only in plateau mode, where evaluations drive
/// the learning rate.
const NON_RECIPE_KEYS: [&str; 13] = [
    "name",
    "data.cache_dir",
    "data.workers",
    "run.device",
    "run.out_dir",
    "run.log_every",
    "run.checkpoint_every",
    "run.threads",
    "run.memory_format",
    "run.eval_batch_size",
    "run.cuda_graph",
    "run.dist_backend",
    "run.dist_timeout_s",
];

/// The resolved config as `section.key` → value (TOML syntax).
fn flat_config(c: &Config) -> Result<std::collections::BTreeMap<String, String>> {
    let v: toml::Value = toml::from_str(&c.to_toml()?)?;
    let mut out = std::collections::BTreeMap::new();
    flatten_toml("", &v, &mut out);
    Ok(out)
}

/// One recipe key whose value differs between two configs (values in TOML syntax, `(none)` for
/// an absent optional section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeChange {
    pub key: String,
    pub old: String,
    pub new: String,
}

impl std::fmt::Display for RecipeChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.key, self.old, self.new)
    }
}

impl Config {
    /// The recipe keys whose values differ between `self` and `other`, as one
    /// `key: old -> new` string each, sorted by key (empty when both train the same thing).
    ///
    /// The recipe is everything that alters what is trained: model (kind too: a plain and a
    /// residual net have the same tensors), data, optimizer, schedule, seed and precision. Both
    /// configs are compared in their resolved form (defaults written out), so an omitted key and
    /// its default are equal.
    pub fn recipe_diff(&self, other: &Config) -> Vec<String> {
        self.recipe_changes(other)
            .iter()
            .map(RecipeChange::to_string)
            .collect()
    }

    /// [`Config::recipe_diff`] as structured entries (for files that record the changes).
    /// Every key (recipe or not) whose resolved value differs between the two configs, in key
    /// order: what data-parallel ranks started with different configs are told.
    pub fn differing_keys(&self, other: &Config) -> Vec<String> {
        let (Ok(a), Ok(b)) = (flat_config(self), flat_config(other)) else {
            return vec!["(config not serializable)".into()];
        };
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        keys.into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect()
    }

    pub fn recipe_changes(&self, other: &Config) -> Vec<RecipeChange> {
        let flat = flat_config;
        let (Ok(a), Ok(b)) = (flat(self), flat(other)) else {
            return vec![RecipeChange {
                key: "(config not serializable)".into(),
                old: String::new(),
                new: String::new(),
            }];
        };
        let plateau = self.schedule.mode == ScheduleMode::Plateau
            || other.schedule.mode == ScheduleMode::Plateau;
        // Synthetic images come from the seed alone (data.path is never read); real images never
        // read data.synthetic.
        let synthetic = [self, other].map(|c| c.data.dataset == Dataset::Synthetic);
        let unused = |k: &str| match synthetic {
            [true, true] => k == "data.path" || k == "data.skip_corrupt",
            [false, false] => k.starts_with("data.synthetic."),
            _ => false,
        };
        let skip = |k: &str| {
            NON_RECIPE_KEYS.contains(&k) || (k == "run.eval_every" && !plateau) || unused(k)
        };
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(none)".into());
        keys.into_iter()
            .filter(|k| !skip(k))
            .filter_map(|k| {
                let (x, y) = (a.get(k), b.get(k));
                (x != y).then(|| RecipeChange {
                    key: k.clone(),
                    old: show(x),
                    new: show(y),
                })
            })
            .collect()
    }
}

/// `a.b.c = value` pairs of a TOML tree (arrays kept whole, in TOML syntax).
fn flatten_toml(
    prefix: &str,
    v: &toml::Value,
    out: &mut std::collections::BTreeMap<String, String>,
) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Turns a toml/serde error into one line: where (line and the line's own text, which names the
/// key), what is wrong, and serde's list of the allowed values or keys.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) if span.start <= text.len() => {
            let line_no = text[..span.start].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            // The nearest [table] header above names the section of a key.
            let section = text
                .lines()
                .take(line_no)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('['));
            match section {
                Some(sec) if sec != line => format!("line {line_no} `{line}` in {sec}: {msg}"),
                _ => format!("line {line_no} `{line}`: {msg}"),
            }
        }
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper;

    const MIN: &str = "[model]\nfamily = \"cifar\"\ndepth = 20\n";

    #[test]
    /// The serde defaults above are literals (config.rs does not import paper.rs, which builds on
    /// config's types); this test keeps them equal to paper.rs's numbers.
    fn defaults_are_the_papers_recipe() {
        let c = Config::from_toml(MIN).unwrap();
        c.validate().unwrap();
        assert_eq!(c.optimizer.lr, paper::CIFAR_LR);
        assert_eq!(c.optimizer.momentum, paper::MOMENTUM);
        assert_eq!(c.optimizer.weight_decay, paper::WEIGHT_DECAY);
        assert_eq!(c.optimizer.batch_size, paper::CIFAR_BATCH);
        assert_eq!(c.schedule.milestones, paper::CIFAR_MILESTONES.to_vec());
        assert_eq!(c.schedule.gamma, paper::LR_DIVISOR_GAMMA);
        assert_eq!(c.schedule.iterations, paper::CIFAR_ITERATIONS);
        let d = &c.data.detection;
        assert_eq!(d.shorter_side, paper::DETECTION_SHORTER_SIDE);
        assert_eq!(d.max_side, paper::DETECTION_MAX_SIDE);
        let w = WarmupConfig::default();
        assert_eq!(w.lr, paper::WARMUP_LR);
        assert_eq!(w.until_train_error, paper::WARMUP_UNTIL_TRAIN_ERROR);
        let t = ImagenetTransform::default();
        assert_eq!([t.scale_min, t.scale_max], paper::SCALE_AUG_SHORTER_SIDE);
        assert_eq!(t.crop, paper::CROP);
        assert_eq!(t.test_resize, paper::TEST_RESIZE);
        assert_eq!(t.multi_scale, paper::MULTI_SCALE_SIDES.to_vec());
        assert_eq!(c.model.shortcut(), Shortcut::A);
        assert_eq!(c.model.classes(), 10);
        assert_eq!(c.data.augment, Augment::Cifar);
    }

    #[test]
    fn resolved_toml_round_trips() {
        let mut c = Config::from_toml(MIN).unwrap();
        c.name = "x".into();
        let back = Config::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(back.model.shortcut, Some(Shortcut::A));
        assert_eq!(back.run.out_dir, PathBuf::from("runs/x"));
        assert_eq!(back.optimizer, c.optimizer);
    }

    #[test]
    fn typo_names_the_key_and_the_allowed_ones() {
        let e = Config::from_toml(&format!("{MIN}\n[optimizer]\nlrr = 0.1\n")).unwrap_err();
        let s = format!("{e:#}");
        assert!(
            s.contains("unknown field `lrr`") && s.contains("[optimizer]"),
            "{s}"
        );
        assert!(s.contains("`lr`") && s.contains("`momentum`"), "{s}");
    }

    #[test]
    fn bad_depths_are_refused_with_the_rule() {
        let e = Config::from_toml("[model]\nfamily = \"cifar\"\ndepth = 21\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(format!("{e}").contains("model.depth = 21") && format!("{e}").contains("6n+2"));
        let e = Config::from_toml("[model]\nfamily = \"imagenet\"\ndepth = 20\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(format!("{e}").contains("18, 34, 50, 101 or 152"));
    }

    #[test]
    fn unknown_option_lists_allowed_values() {
        let e = Config::from_toml("[model]\nfamily = \"cifar\"\ndepth = 20\nshortcut = \"D\"\n")
            .unwrap_err();
        let s = format!("{e}");
        assert!(
            s.contains("unknown variant `D`") && s.contains("`A`, `B`"),
            "{s}"
        );
        let e = Config::from_toml("[model]\nfamily = \"mnist\"\ndepth = 20\n").unwrap_err();
        assert!(format!("{e}").contains("`cifar` or `imagenet`"));
    }

    #[test]
    fn relative_paths_take_their_leading_dots_off_the_base() {
        let base = Path::new("/repo/resnet/configs");
        assert_eq!(
            resolve_against(base, Path::new("../../shared/data/x.tar.gz")),
            PathBuf::from("/repo/shared/data/x.tar.gz")
        );
        assert_eq!(
            resolve_against(base, Path::new("./d/../e")),
            PathBuf::from("/repo/resnet/configs/d/../e")
        );
        assert_eq!(
            resolve_against(base, Path::new("/abs")),
            PathBuf::from("/abs")
        );
        assert_eq!(
            resolve_against(Path::new("/"), Path::new("../x")),
            PathBuf::from("/x")
        );
    }

    #[test]
    fn names_are_plain_file_names() {
        for ok in ["", "cifar_resnet20", "a.b", "...x"] {
            check_name(ok).unwrap();
        }
        for bad in ["../x", "a/b", ".", "..", "a\\b", "tab\there"] {
            let e = format!("{}", check_name(bad).unwrap_err());
            assert!(e.contains("plain file name"), "{e}");
        }
    }

    #[test]
    fn world_size_is_a_recipe_key_the_backend_and_timeout_are_not() {
        let a = Config::from_toml(MIN).unwrap();
        assert_eq!(
            (
                a.run.world_size,
                a.run.dist_backend.as_str(),
                a.run.dist_timeout_s
            ),
            (1, "auto", 300)
        );
        let mut b = a.clone();
        b.run.dist_backend = "gloo".into();
        b.run.dist_timeout_s = 5;
        assert!(a.recipe_diff(&b).is_empty(), "{:?}", a.recipe_diff(&b));
        b.run.world_size = 2;
        assert_eq!(a.recipe_diff(&b), vec!["run.world_size: 1 -> 2"]);
        for (key, bad) in [
            ("world_size", "0"),
            ("dist_backend", "\"mpi\""),
            ("dist_timeout_s", "0"),
        ] {
            let e = Config::from_toml(&format!("{MIN}\n[run]\n{key} = {bad}\n"))
                .and_then(|c| c.validate().map(|_| c));
            let e = format!("{:#}", e.unwrap_err());
            assert!(
                e.contains(&format!("run.{key}")) && !e.contains('\n'),
                "{e}"
            );
        }
    }

    #[test]
    fn recipe_diff_names_training_keys_only() {
        let a = Config::from_toml(MIN).unwrap();
        let mut b = a.clone();
        assert!(a.recipe_diff(&b).is_empty());
        b.run.device = DeviceChoice::Cpu;
        b.run.threads = 2;
        b.run.log_every = 10;
        b.data.cache_dir = "elsewhere".into();
        b.name = "other".into();
        assert!(a.recipe_diff(&b).is_empty(), "{:?}", a.recipe_diff(&b));
        b.model.kind = NetKind::Plain;
        b.optimizer.lr = 0.05;
        b.schedule.milestones = vec![100];
        b.run.seed = 7;
        assert_eq!(
            a.recipe_diff(&b),
            vec![
                "model.kind: \"residual\" -> \"plain\"",
                "optimizer.lr: 0.1 -> 0.05",
                "run.seed: 0 -> 7",
                "schedule.milestones: [32000, 48000] -> [100]",
            ]
        );
        // Keys a dataset never reads are no part of its recipe.
        let mut s1 = a.clone();
        s1.data.dataset = Dataset::Synthetic;
        let mut s2 = s1.clone();
        s2.data.path = "elsewhere".into();
        assert!(s1.recipe_diff(&s2).is_empty());
        let mut r2 = a.clone();
        r2.data.synthetic.train = 5;
        assert!(a.recipe_diff(&r2).is_empty());
        s2.data.synthetic.train = 5;
        assert_eq!(s1.recipe_diff(&s2), vec!["data.synthetic.train: 2048 -> 5"]);
        // eval_every drives the lr only in plateau mode.
        let mut c = a.clone();
        c.run.eval_every = 500;
        assert!(a.recipe_diff(&c).is_empty());
        c.schedule.mode = ScheduleMode::Plateau;
        let d = a.recipe_diff(&c);
        assert!(d.iter().any(|l| l.starts_with("run.eval_every")), "{d:?}");
        // An omitted key equals its default; a warm-up section is a recipe change.
        let mut w = a.clone();
        w.schedule.warmup = Some(WarmupConfig::default());
        assert!(a
            .recipe_diff(&w)
            .iter()
            .any(|l| l.starts_with("schedule.warmup.lr: (none) -> 0.01")));
    }

    #[test]
    fn cuda_graph_is_off_by_default_refused_on_the_cpu_and_not_a_recipe_key() {
        let c = Config::from_toml(MIN).unwrap();
        assert!(!c.run.cuda_graph);
        let mut g = c.clone();
        g.run.cuda_graph = true;
        g.validate().unwrap();
        assert!(c.recipe_diff(&g).is_empty(), "{:?}", c.recipe_diff(&g));
        g.run.device = DeviceChoice::Cpu;
        let e = format!("{}", g.validate().unwrap_err());
        assert!(
            e.contains("run.cuda_graph = true") && e.contains("\"cpu\""),
            "{e}"
        );
        let e = Config::from_toml(&format!("{MIN}[run]\ncuda_graph = \"yes\"\n")).unwrap_err();
        assert!(format!("{e}").contains("cuda_graph"), "{e}");
    }
}
