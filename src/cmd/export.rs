//! `resnet export`: a checkpoint's network as torchvision's state dict (Table 1's nets under
//! `torchvision.models.resnet*`'s names), for use outside `resnet`.
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint (last.safetensors) of a run.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The state dict to write (safetensors, no metadata): torchvision's model of the same net
    /// loads it with `load_state_dict(safetensors.torch.load_file(OUT), strict=True)`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace --out when it already exists (never a checkpoint, nor a file in a run folder).
    #[arg(long)]
    pub force: bool,
}

pub fn exec(a: Args) -> Result<()> {
    let e = resnet::run::torchvision::export(&a.checkpoint, &a.out, a.force)?;
    resnet::outln!(
        "wrote {} ({} tensors, iteration {}): torchvision's state dict, without the optimizer",
        a.out.display(),
        e.tensors,
        e.iteration
    );
    Ok(())
}
