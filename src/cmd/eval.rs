//! `resnet eval`: a checkpoint tested under §3.4's protocols (1-crop, 10-crop, multi-scale), or
//! a detections file scored by VOC's and COCO's protocols (Tables 7 and 8).
use super::parse_device;
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint (last.safetensors) inside a run folder; with --config, a plain state dict
    /// (torchvision's names, safetensors: e.g. torchvision's pretrained weights).
    #[arg(long, required_unless_present = "detections")]
    pub checkpoint: Option<PathBuf>,
    /// A detections file in COCO's results format (a JSON list of {"image_id", "category_id",
    /// "bbox": [x, y, w, h], "score"}), scored against the test split of --config (data.dataset
    /// voc or coco): per-class VOC07 AP, VOC AP, COCO AP and AP50, and COCO's 12-line summary.
    #[arg(long, conflicts_with_all = ["checkpoint", "ten_crop", "multi_scale", "csv", "device"], requires = "config")]
    pub detections: Option<PathBuf>,
    /// With --detections: also write the tables as CSV and Markdown into this folder
    /// (per_class.{csv,md}, coco_summary.{csv,md}) and every number at full precision
    /// (scores.json).
    #[arg(long, requires = "detections")]
    pub out: Option<PathBuf>,
    /// The recipe (network, data, testing sizes) for a weights-only --checkpoint, e.g.
    /// configs/imagenet_resnet50.toml for torchvision's resnet50 weights.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Ten-crop testing (Table 3): softmax averaged over 10 crops (ImageNet-style data only).
    #[arg(long, conflicts_with = "multi_scale")]
    pub ten_crop: bool,
    /// Multi-scale testing (§3.4, Table 4): the whole image (fully convolutional) resized to each
    /// shorter side, and its flip; softmax averaged over all of them. Alone: the recipe's
    /// data.imagenet.multi_scale (by default the paper's 224,256,384,480,640).
    #[arg(long, value_name = "SIDES", num_args = 0..=1, default_missing_value = resnet::eval::CONFIG_SIDES)]
    pub multi_scale: Option<String>,
    /// Where to append the result (default: eval.csv in the run folder; with --config,
    /// W.eval.csv beside the weights W.safetensors).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Override the recipe's run.device: auto, cpu or cuda (e.g. a GPU run evaluated on a CPU).
    #[arg(long)]
    pub device: Option<String>,
}

pub fn exec(a: Args) -> Result<()> {
    use resnet::eval::Protocol;
    if let (Some(file), Some(config)) = (&a.detections, &a.config) {
        return detections(file, config, a.out.as_deref());
    }
    let Some(checkpoint) = a.checkpoint else {
        anyhow::bail!("eval: give --checkpoint FILE or --detections FILE --config C");
    };
    let protocol = match (&a.multi_scale, a.ten_crop) {
        (Some(list), _) => Protocol::multi_scale(list)?,
        (None, true) => Protocol::TenCrop,
        (None, false) => Protocol::SingleCrop,
    };
    let opts = resnet::eval::EvalOptions {
        protocol,
        csv: a.csv,
        device: a.device.as_deref().map(parse_device).transpose()?,
        config: a.config,
    };
    let out = resnet::eval::measure(&checkpoint, &opts)?;
    for n in &out.notes {
        resnet::errln!("{n}");
    }
    let r = &out.row;
    resnet::outln!(
        "{} (iteration {}): {} split, {} images, {} ({} views per image): top-1 error {:.2}%, top-5 error {:.2}%, loss {:.4}",
        r.checkpoint, r.iteration, r.split, r.images, r.protocol, r.crops, r.top1_error, r.top5_error, r.loss
    );
    // The numbers are printed first: a failed write loses nothing that was measured.
    resnet::eval::record(&out)?;
    resnet::outln!("appended to {}", out.csv.display());
    Ok(())
}

/// `--detections FILE --config C [--out DIR]`: prints both tables, then writes them.
fn detections(file: &Path, config: &Path, out: Option<&Path>) -> Result<()> {
    use resnet::eval::detection::report;
    let r = report::score_file(file, config)?;
    resnet::outln!("{}", report::text(&r.split, &r.scores).trim_end());
    let [gt, dt, scoring] = r.seconds;
    resnet::errln!(
        "read {} images of ground truth in {gt:.3} s and {} detections in {dt:.3} s; scored in {scoring:.3} s",
        r.split.images.len(),
        r.detections
    );
    if let Some(dir) = out {
        for p in report::write(dir, &r.split, &r.scores)? {
            resnet::outln!("wrote {}", p.display());
        }
    }
    Ok(())
}
