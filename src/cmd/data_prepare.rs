//! `resnet data prepare imagenet`: the official ImageNet 2012 archives of §3.4 into the
//! wnid-folder layout that `data.dataset = "image_folder"` reads ([`resnet::data::imagenet`]).
use anyhow::Result;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PrepareWhat {
    /// ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz, as
    /// torchvision's `ImageNet` dataset reads them.
    Imagenet,
}

#[derive(clap::Args)]
pub struct Args {
    what: PrepareWhat,
    /// ILSVRC2012_img_train.tar: a tar of one <wnid>.tar per class.
    #[arg(long)]
    train_tar: PathBuf,
    /// ILSVRC2012_img_val.tar: the 50,000 validation JPEGs, flat.
    #[arg(long)]
    val_tar: PathBuf,
    /// ILSVRC2012_devkit_t12.tar.gz (data/meta.mat, data/ILSVRC2012_validation_ground_truth.txt).
    #[arg(long)]
    devkit: PathBuf,
    /// Receives train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (about as large as the two tars); a
    /// killed run is resumed by running the same command again.
    #[arg(long)]
    out: PathBuf,
}

pub fn exec(a: Args) -> Result<()> {
    match a.what {
        PrepareWhat::Imagenet => {
            let archives = resnet::data::imagenet::Archives {
                train_tar: a.train_tar,
                val_tar: a.val_tar,
                devkit: a.devkit,
            };
            let p = resnet::data::imagenet::prepare(&archives, &a.out)?;
            println!(
                "ImageNet ready in {}: {} classes, {} training images in train/, {} validation \
                 images in val/ ({} classes and {} validation images were already in place)",
                a.out.display(),
                p.classes,
                p.train_images,
                p.val_images,
                p.classes_skipped,
                p.val_skipped
            );
        }
    }
    Ok(())
}
