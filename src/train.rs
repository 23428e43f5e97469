//! Training runs of §3.4 / §4.2: the shared types `compare` drives runs through.
//!
//! Only the interface types of the shared brief, written on the `report` branch so `compare`
//! compiles before the `train` branch lands; the `train` branch owns this module (with
//! `train::run`) and its version wins on merge.
use crate::records::Summary;
use std::path::PathBuf;

/// How `train::run` treats an existing run folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrainOptions {
    /// Continue the run in `cfg.out_dir()` from its checkpoint.
    pub resume: bool,
    /// Start over in a folder that holds another run.
    pub force: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// What a finished (or interrupted) run left behind.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub summary: Summary,
    pub interrupted: bool,
}
