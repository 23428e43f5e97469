//! Display of a training run (§4.2's curves as they are produced): an indicatif bar with
//! iteration/total, images/s, loss, running training error, last test error and ETA on a
//! terminal, or one plain line per curve row when stdout is not a terminal. Display only: the
//! training loop produces the rows, `records` writes them.
use crate::run::records::CurveRow;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// How a run is shown.
pub enum Progress {
    /// Nothing (library callers, tests).
    Silent,
    Bar(ProgressBar),
    /// Plain lines (stdout is a file or pipe).
    Lines {
        total: u64,
        name: String,
    },
}

/// A learning rate as people write it (0.010000000000000002 -> 0.01).
fn short_lr(lr: f64) -> String {
    let s = format!("{lr:.8}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn eta(done: u64, total: u64, images_per_s: f64, batch: usize) -> String {
    if images_per_s <= 0.0 {
        return "?".into();
    }
    let secs = (total - done.min(total)) as f64 * batch as f64 / images_per_s;
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The text of one curve row as shown to the user.
pub fn describe_row(r: &CurveRow, total: u64, batch: usize, last_test: Option<f64>) -> String {
    let test = match last_test {
        Some(t) => format!("{t:.2}%"),
        None => "-".into(),
    };
    format!(
        "it {}/{} (epoch {:.2})  lr {}  loss {:.4}  train err {:.2}%  test err {}  {:.0} img/s  ETA {}",
        r.iteration,
        total,
        r.epoch,
        short_lr(r.lr),
        r.train_loss,
        r.train_error,
        test,
        r.images_per_s,
        eta(r.iteration, total, r.images_per_s, batch)
    )
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise; `Silent` when `enabled` is false.
    pub fn new(enabled: bool, name: &str, start: u64, total: u64) -> Progress {
        if !enabled {
            return Progress::Silent;
        }
        if std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} it  {msg}  ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar.set_position(start);
            bar.reset_eta();
            Progress::Bar(bar)
        } else {
            Progress::Lines {
                total,
                name: name.to_string(),
            }
        }
    }

    /// Called after every iteration (cheap: the bar redraws at its own rate).
    pub fn step(&self, done: u64) {
        if let Progress::Bar(b) = self {
            b.set_position(done);
        }
    }

    /// A new curve row.
    pub fn row(&self, r: &CurveRow, batch: usize, last_test: Option<f64>) {
        match self {
            Progress::Silent => {}
            Progress::Bar(b) => {
                let test = last_test
                    .map(|t| format!("{t:.2}%"))
                    .unwrap_or_else(|| "-".into());
                b.set_message(format!(
                    "{:.0} img/s  loss {:.4}  train err {:.2}%  test err {}",
                    r.images_per_s, r.train_loss, r.train_error, test
                ));
            }
            Progress::Lines { total, name } => {
                println!("{name}: {}", describe_row(r, *total, batch, last_test));
            }
        }
    }

    /// A one-off message (warm-up ended, lr lowered, checkpoint notes).
    pub fn note(&self, msg: &str) {
        match self {
            Progress::Silent => {}
            Progress::Bar(b) => b.println(msg),
            Progress::Lines { name, .. } => println!("{name}: {msg}"),
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_text_has_the_numbers() {
        let r = CurveRow {
            iteration: 100,
            epoch: 0.256,
            lr: 0.1,
            train_loss: 1.5,
            train_error: 55.0,
            test_loss: None,
            test_error: None,
            images_per_s: 1000.0,
            elapsed_s: 12.8,
        };
        let s = describe_row(&r, 200, 128, Some(60.0));
        assert!(
            s.contains("it 100/200") && s.contains("test err 60.00%"),
            "{s}"
        );
        // 100 iterations * 128 images at 1000 img/s = 12.8 s
        assert!(s.contains("ETA 0m13s"), "{s}");
        assert_eq!(short_lr(0.1 * 0.1), "0.01");
        assert_eq!(short_lr(1e-4), "0.0001");
    }
}
