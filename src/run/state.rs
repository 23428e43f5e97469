//! What a run's checkpoint carries besides tensors (§4.2's runs resume exactly): the iteration,
//! the seed, the learning-rate schedule's state (warm-up of §4.2, plateaus of §3.4), the metric
//! sums of the current curve interval, and the best and last errors.
use crate::config::{Config, ScheduleConfig};
use serde::{Deserialize, Serialize};

/// Checkpoint format version (metadata `format`).
pub const FORMAT_VERSION: u32 = 1;

/// Host-side metric sums of the current curve interval and warm-up window (so that a checkpoint
/// taken mid-interval, e.g. on Ctrl-C, resumes with the same row values).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accumulators {
    pub loss_sum: f64,
    pub errors: u64,
    pub images: u64,
    pub steps: u64,
    pub warm_errors: u64,
    pub warm_images: u64,
}

/// The training state besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub format: u32,
    /// Iterations completed.
    pub iteration: u64,
    pub seed: u64,
    pub schedule: ScheduleState,
    /// Whether the momentum buffers hold values (false before the first step).
    pub momentum_started: bool,
    pub acc: Accumulators,
    /// Best evaluated error (percent) and its iteration.
    pub best_test_error: Option<f64>,
    pub best_iteration: u64,
    pub last_test_error: Option<f64>,
    pub last_train_error: Option<f64>,
    /// Training seconds so far (over all sessions of the run).
    pub elapsed_s: f64,
    /// The iteration of the last curve row written before this state was saved (`None` in
    /// checkpoints from before it was stored, and before the first row): a resume's
    /// `curves.csv` must end there.
    #[serde(default)]
    pub last_row: Option<u64>,
    /// The content key of the training data the run was trained on ([`crate::data`]'s
    /// `DataSource::content_key`); `None` in checkpoints from before it was stored.
    #[serde(default)]
    pub data_key: Option<String>,
}

impl TrainState {
    /// The state of a run of `cfg` at iteration 0 (the schedule at its start, nothing measured).
    pub fn initial(cfg: &Config) -> TrainState {
        TrainState {
            format: FORMAT_VERSION,
            iteration: 0,
            seed: cfg.run.seed,
            schedule: ScheduleState::initial(&cfg.schedule),
            momentum_started: false,
            acc: Accumulators::default(),
            best_test_error: None,
            best_iteration: 0,
            last_test_error: None,
            last_train_error: None,
            elapsed_s: 0.0,
            last_row: None,
            data_key: None,
        }
    }
}

/// Everything that changes during a run (saved in checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Warm-up still running (only with `schedule.warmup`).
    pub warmup_active: bool,
    /// Iteration at which warm-up ended (iterations completed at the switch).
    pub warmup_end: Option<u64>,
    /// Plateau mode: best evaluated error (fraction) so far, evaluations without improvement,
    /// and how many times the learning rate was lowered.
    pub plateau_best: Option<f64>,
    pub plateau_bad: u32,
    pub plateau_drops: u32,
}

impl ScheduleState {
    /// The schedule's state before the first iteration.
    pub fn initial(cfg: &ScheduleConfig) -> ScheduleState {
        ScheduleState {
            warmup_active: cfg.warmup.is_some(),
            warmup_end: None,
            plateau_best: None,
            plateau_bad: 0,
            plateau_drops: 0,
        }
    }
}
