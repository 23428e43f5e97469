//! The learning-rate schedule of §4.2 (CIFAR: 0.1, divided by 10 at 32k and 48k iterations,
//! ResNet-110's 0.01 warm-up until the training error is below 80 %) and §3.4 (ImageNet: divided
//! by 10 when the error plateaus), counted in iterations.
//!
//! Pure state machine: the training loop tells it about warm-up checks and evaluations; it says
//! which learning rate the next iteration uses. Its state is serializable for checkpoints.
use crate::config::{ScheduleConfig, ScheduleMode};
pub use crate::run::state::ScheduleState;

/// The schedule of one run.
#[derive(Debug, Clone)]
pub struct Schedule {
    cfg: ScheduleConfig,
    base_lr: f64,
    pub state: ScheduleState,
}

impl Schedule {
    pub fn new(cfg: &ScheduleConfig, base_lr: f64) -> Schedule {
        Schedule {
            cfg: cfg.clone(),
            base_lr,
            state: ScheduleState::initial(cfg),
        }
    }

    /// The learning rate of (0-based) iteration `it`, i.e. after `it` iterations completed.
    pub fn lr(&self, it: u64) -> f64 {
        if self.state.warmup_active {
            if let Some(w) = &self.cfg.warmup {
                return w.lr;
            }
        }
        let drops = match self.cfg.mode {
            ScheduleMode::Milestones => {
                self.cfg.milestones.iter().filter(|&&m| m <= it).count() as i32
            }
            ScheduleMode::Plateau => self.state.plateau_drops as i32,
        };
        self.base_lr * self.cfg.gamma.powi(drops)
    }

    /// Whether iteration count `done` (iterations completed) is a warm-up check point.
    pub fn is_warmup_check(&self, done: u64) -> bool {
        match (&self.cfg.warmup, self.state.warmup_active) {
            (Some(w), true) => done.is_multiple_of(w.check_every) || done >= w.max_iterations,
            _ => false,
        }
    }

    /// Warm-up rule (§4.2): ends once the training error (fraction, over the last check window)
    /// is below `until_train_error`, or at `max_iterations`. Returns true when it ended now.
    pub fn warmup_check(&mut self, done: u64, train_error: f64) -> bool {
        let Some(w) = &self.cfg.warmup else {
            return false;
        };
        if self.state.warmup_active
            && (train_error < w.until_train_error || done >= w.max_iterations)
        {
            self.state.warmup_active = false;
            self.state.warmup_end = Some(done);
            return true;
        }
        false
    }

    /// Plateau rule (§3.4): after an evaluation with error `error` (fraction). Returns true when
    /// the learning rate was lowered.
    pub fn on_eval(&mut self, error: f64) -> bool {
        if self.cfg.mode != ScheduleMode::Plateau {
            return false;
        }
        let s = &mut self.state;
        match s.plateau_best {
            Some(best) if error > best - self.cfg.plateau_threshold => {
                s.plateau_bad += 1;
                if s.plateau_bad >= self.cfg.plateau_patience {
                    s.plateau_drops += 1;
                    s.plateau_bad = 0;
                    // Measure the next plateau from the current level.
                    s.plateau_best = Some(best.min(error));
                    return true;
                }
            }
            _ => {
                s.plateau_best = Some(error);
                s.plateau_bad = 0;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WarmupConfig;

    #[test]
    fn papers_cifar_steps() {
        let s = Schedule::new(&ScheduleConfig::default(), 0.1);
        assert_eq!(s.lr(0), 0.1);
        assert_eq!(s.lr(31_999), 0.1);
        assert!((s.lr(32_000) - 0.01).abs() < 1e-15);
        assert!((s.lr(47_999) - 0.01).abs() < 1e-15);
        assert!((s.lr(48_000) - 0.001).abs() < 1e-15);
        assert!((s.lr(63_999) - 0.001).abs() < 1e-15);
    }

    #[test]
    fn warmup_holds_until_error_below_threshold() {
        let cfg = ScheduleConfig {
            warmup: Some(WarmupConfig::default()),
            ..Default::default()
        };
        let mut s = Schedule::new(&cfg, 0.1);
        assert_eq!(s.lr(0), 0.01);
        assert!(s.is_warmup_check(20) && !s.is_warmup_check(21));
        assert!(!s.warmup_check(20, 0.85));
        assert_eq!(s.lr(20), 0.01);
        assert!(s.warmup_check(400, 0.79));
        assert_eq!(s.state.warmup_end, Some(400));
        assert_eq!(s.lr(400), 0.1);
        assert!(!s.is_warmup_check(420));
        // max_iterations ends it regardless of the error.
        let mut s = Schedule::new(&cfg, 0.1);
        assert!(s.warmup_check(2_000, 0.9));
        assert_eq!(s.state.warmup_end, Some(2_000));
    }

    #[test]
    fn plateau_drops_after_patience_evaluations() {
        let cfg = ScheduleConfig {
            mode: ScheduleMode::Plateau,
            plateau_patience: 2,
            plateau_threshold: 0.01,
            ..Default::default()
        };
        let mut s = Schedule::new(&cfg, 0.1);
        assert!(!s.on_eval(0.50));
        assert!(!s.on_eval(0.40)); // improved
        assert!(!s.on_eval(0.395)); // within threshold: bad 1
        assert!(s.on_eval(0.41)); // bad 2: drop
        assert!((s.lr(10) - 0.01).abs() < 1e-15);
        assert_eq!(s.state.plateau_bad, 0);
        assert!(!s.on_eval(0.30));
        assert_eq!(s.state.plateau_best, Some(0.30));
    }
}
