//! `resnet bench`: training and evaluation throughput of the §4.2 CIFAR-10 recipe (batch 128,
//! SGD), for comparing our libtorch training loop with PyTorch scripts on the same machine.
//!
//! One measurement is a [`BenchRecord`], printed as a readable line and as one CSV row whose
//! format `scripts/reference_train.py` shares ([`CSV_HEADER`]). [`summarize`] reads such rows back
//! (from `scripts/bench_compare.sh`, which runs ours and the references alternately) and makes
//! the table of medians and of the ratios ours/typical and ours/careful.
use crate::table::Table;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;

/// Column names of one benchmark row, shared with `scripts/reference_train.py`.
pub const CSV_HEADER: &str = "impl,model,device,threads,precision,memory_format,batch,iters,\
train_images_per_s,data_wait_frac,eval_images_per_s";

/// One benchmark measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRecord {
    /// Which implementation: `ours`, `typical`, `careful` (optionally with `+option` suffixes).
    pub implementation: String,
    /// `ModelConfig::display_name()`, e.g. `resnet20`.
    pub model: String,
    /// `cpu` or `cuda`.
    pub device: String,
    /// Intra-op CPU threads.
    pub threads: usize,
    /// `fp32` or `bf16`.
    pub precision: String,
    /// `nchw` or `nhwc`.
    pub memory_format: String,
    pub batch: usize,
    /// Timed training iterations (after the warm-up).
    pub iters: u64,
    /// Steady-state training throughput.
    pub train_images_per_s: f64,
    /// Share of the training time spent producing or waiting for the next batch (0-1).
    pub data_wait_frac: f64,
    /// Evaluation (inference) throughput; NaN when not measured.
    pub eval_images_per_s: f64,
}

fn fmt_f(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        "nan".into()
    } else {
        format!("{x:.decimals$}")
    }
}

impl BenchRecord {
    /// The CSV row (no header, no newline), in [`CSV_HEADER`]'s order.
    pub fn to_csv_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{}",
            self.implementation,
            self.model,
            self.device,
            self.threads,
            self.precision,
            self.memory_format,
            self.batch,
            self.iters,
            fmt_f(self.train_images_per_s, 2),
            fmt_f(self.data_wait_frac, 4),
            fmt_f(self.eval_images_per_s, 2),
        )
    }

    /// Parses a row written by [`BenchRecord::to_csv_line`] or by the Python reference.
    pub fn parse_csv_line(line: &str) -> Result<BenchRecord> {
        let f: Vec<&str> = line.trim().split(',').map(str::trim).collect();
        let n = CSV_HEADER.split(',').count();
        if f.len() != n {
            bail!(
                "benchmark row `{}` has {} fields; expected {n}: {CSV_HEADER}",
                line.trim(),
                f.len()
            );
        }
        let names: Vec<&str> = CSV_HEADER.split(',').collect();
        let num = |i: usize| -> Result<f64> {
            f[i].parse::<f64>().with_context(|| {
                format!(
                    "benchmark row `{}`: {} = `{}` is not a number",
                    line.trim(),
                    names[i],
                    f[i]
                )
            })
        };
        let int = |i: usize| -> Result<u64> {
            f[i].parse::<u64>().with_context(|| {
                format!(
                    "benchmark row `{}`: {} = `{}` is not a whole number",
                    line.trim(),
                    names[i],
                    f[i]
                )
            })
        };
        Ok(BenchRecord {
            implementation: f[0].to_string(),
            model: f[1].to_string(),
            device: f[2].to_string(),
            threads: int(3)? as usize,
            precision: f[4].to_string(),
            memory_format: f[5].to_string(),
            batch: int(6)? as usize,
            iters: int(7)?,
            train_images_per_s: num(8)?,
            data_wait_frac: num(9)?,
            eval_images_per_s: num(10)?,
        })
    }

    /// One readable line for the terminal.
    pub fn to_text(&self) -> String {
        format!(
            "{}: {} on {} ({} threads), {}/{}, batch {}: train {} images/s over {} iterations \
             ({}% waiting for data), eval {} images/s",
            self.implementation,
            self.model,
            self.device,
            self.threads,
            self.precision,
            self.memory_format,
            self.batch,
            fmt_f(self.train_images_per_s, 1),
            self.iters,
            fmt_f(100.0 * self.data_wait_frac, 1),
            fmt_f(self.eval_images_per_s, 1),
        )
    }
}

/// Reads benchmark rows from CSV text: header lines (starting with `impl,`) and blank lines are
/// skipped; any other line must be a row. Errors name the line number.
pub fn parse_rows(text: &str) -> Result<Vec<BenchRecord>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with("impl,"))
        .map(|(i, l)| BenchRecord::parse_csv_line(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// Median of the finite values (mean of the middle two for an even count); NaN if none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// `a / b`, NaN when either is missing or `b` is not positive.
pub fn ratio(a: f64, b: f64) -> f64 {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

/// Medians of one implementation on one setup.
#[derive(Debug, Clone, PartialEq)]
pub struct Medians {
    pub runs: usize,
    pub train_images_per_s: f64,
    pub data_wait_frac: f64,
    pub eval_images_per_s: f64,
}

/// The comparison setup a row belongs to: model, device, threads, batch.
pub type SetupKey = (String, String, usize, usize);

/// An implementation in one variant: (implementation, precision, memory_format).
pub type VariantKey = (String, String, String);

/// Groups rows by setup and implementation variant and takes the medians of each group.
pub fn medians(rows: &[BenchRecord]) -> BTreeMap<SetupKey, BTreeMap<VariantKey, Medians>> {
    let mut groups: BTreeMap<SetupKey, BTreeMap<VariantKey, Vec<&BenchRecord>>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.model.clone(), r.device.clone(), r.threads, r.batch))
            .or_default()
            .entry((
                r.implementation.clone(),
                r.precision.clone(),
                r.memory_format.clone(),
            ))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|(k, by_impl)| {
            let m = by_impl
                .into_iter()
                .map(|(name, rs)| {
                    let col = |f: fn(&BenchRecord) -> f64| {
                        median(&rs.iter().map(|r| f(r)).collect::<Vec<_>>())
                    };
                    let med = Medians {
                        runs: rs.len(),
                        train_images_per_s: col(|r| r.train_images_per_s),
                        data_wait_frac: col(|r| r.data_wait_frac),
                        eval_images_per_s: col(|r| r.eval_images_per_s),
                    };
                    (name, med)
                })
                .collect();
            (k, m)
        })
        .collect()
}

/// The comparison table: one row per setup and implementation variant with its medians, and for
/// every implementation but `ours` the ratios ours/that (training and evaluation images/s) on the
/// same setup (model, device, threads, batch). Ratios above 1 mean ours is faster. The base is
/// the first `ours` variant (by precision and format), so one comparison should run one of ours.
pub fn summarize(rows: &[BenchRecord]) -> Table {
    let mut t = Table::new([
        "model",
        "device",
        "threads",
        "impl",
        "precision",
        "runs",
        "train_img_s",
        "data_wait_%",
        "eval_img_s",
        "ours/this_train",
        "ours/this_eval",
    ]);
    for ((model, device, threads, _batch), by_impl) in medians(rows) {
        let ours = by_impl.iter().find(|(k, _)| k.0 == "ours").map(|(_, m)| m);
        // `ours` first, then the references in name order.
        let mut keys: Vec<&VariantKey> = by_impl.keys().collect();
        keys.sort_by_key(|k| (k.0 != "ours", (*k).clone()));
        for key in keys {
            let m = &by_impl[key];
            let (rt, re) = match ours {
                Some(o) if key.0 != "ours" => (
                    fmt_f(ratio(o.train_images_per_s, m.train_images_per_s), 2),
                    fmt_f(ratio(o.eval_images_per_s, m.eval_images_per_s), 2),
                ),
                _ => (String::new(), String::new()),
            };
            t.push(vec![
                model.clone(),
                device.clone(),
                threads.to_string(),
                key.0.clone(),
                format!("{}/{}", key.1, key.2),
                m.runs.to_string(),
                fmt_f(m.train_images_per_s, 1),
                fmt_f(100.0 * m.data_wait_frac, 1),
                fmt_f(m.eval_images_per_s, 1),
                rt,
                re,
            ]);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(implementation: &str, model: &str, train: f64, eval: f64) -> BenchRecord {
        BenchRecord {
            implementation: implementation.into(),
            model: model.into(),
            device: "cpu".into(),
            threads: 2,
            precision: "fp32".into(),
            memory_format: "nchw".into(),
            batch: 128,
            iters: 30,
            train_images_per_s: train,
            data_wait_frac: 0.0125,
            eval_images_per_s: eval,
        }
    }

    #[test]
    fn csv_line_round_trips_and_matches_the_header() {
        let r = rec("ours", "resnet20", 371.256, 1234.5);
        let line = r.to_csv_line();
        assert_eq!(
            line,
            "ours,resnet20,cpu,2,fp32,nchw,128,30,371.26,0.0125,1234.50"
        );
        assert_eq!(line.split(',').count(), CSV_HEADER.split(',').count());
        let back = BenchRecord::parse_csv_line(&line).unwrap();
        assert_eq!(back.train_images_per_s, 371.26);
        assert_eq!(
            BenchRecord {
                train_images_per_s: 371.256,
                ..back
            },
            r
        );
    }

    #[test]
    fn parses_the_python_references_row_with_nan_eval() {
        // A row as scripts/reference_train.py prints it with --eval-images 0.
        let r = BenchRecord::parse_csv_line(
            "careful,resnet56,cpu,2,fp32,nchw,128,10,365.06,0.0091,nan\n",
        )
        .unwrap();
        assert_eq!(r.implementation, "careful");
        assert_eq!(r.iters, 10);
        assert!(r.eval_images_per_s.is_nan());
        assert_eq!(
            rec("x", "m", 1.0, f64::NAN)
                .to_csv_line()
                .rsplit(',')
                .next(),
            Some("nan")
        );
    }

    #[test]
    fn bad_rows_name_the_field_and_line() {
        let e = BenchRecord::parse_csv_line("ours,resnet20,cpu").unwrap_err();
        assert!(format!("{e:#}").contains("3 fields; expected 11"), "{e:#}");
        let e = parse_rows(&format!(
            "{CSV_HEADER}\nours,resnet20,cpu,two,fp32,nchw,128,30,1,0,1\n"
        ))
        .unwrap_err();
        let s = format!("{e:#}");
        assert!(s.contains("line 2") && s.contains("threads = `two`"), "{s}");
    }

    #[test]
    fn median_of_odd_even_and_missing() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ratio_guards_missing_values() {
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert!(ratio(1.0, 0.0).is_nan());
        assert!(ratio(f64::NAN, 2.0).is_nan());
    }

    #[test]
    fn summary_takes_medians_per_setup_and_ratios_against_ours() {
        let rows = vec![
            rec("ours", "resnet20", 400.0, 1000.0),
            rec("typical", "resnet20", 300.0, 800.0),
            rec("careful", "resnet20", 380.0, 900.0),
            rec("ours", "resnet20", 420.0, 1100.0),
            rec("typical", "resnet20", 320.0, 700.0),
            rec("careful", "resnet20", 360.0, 1000.0),
            rec("ours", "resnet20", 380.0, 1050.0),
            rec("typical", "resnet20", 200.0, 750.0),
            rec("careful", "resnet20", 400.0, 950.0),
            rec("careful", "resnet56", 100.0, f64::NAN),
        ];
        let t = summarize(&rows);
        let cells: Vec<Vec<&str>> = t
            .rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        // resnet20: ours median 400 / eval 1050; careful 380 / 950; typical 300 / 750.
        assert_eq!(
            cells[0],
            [
                "resnet20",
                "cpu",
                "2",
                "ours",
                "fp32/nchw",
                "3",
                "400.0",
                "1.2",
                "1050.0",
                "",
                ""
            ]
        );
        assert_eq!(
            cells[1],
            [
                "resnet20",
                "cpu",
                "2",
                "careful",
                "fp32/nchw",
                "3",
                "380.0",
                "1.2",
                "950.0",
                "1.05",
                "1.11"
            ]
        );
        assert_eq!(
            cells[2],
            [
                "resnet20",
                "cpu",
                "2",
                "typical",
                "fp32/nchw",
                "3",
                "300.0",
                "1.2",
                "750.0",
                "1.33",
                "1.40"
            ]
        );
        // No `ours` row for resnet56: no ratios.
        assert_eq!(
            cells[3],
            [
                "resnet56",
                "cpu",
                "2",
                "careful",
                "fp32/nchw",
                "1",
                "100.0",
                "1.2",
                "nan",
                "",
                ""
            ]
        );
        assert_eq!(cells.len(), 4);
    }
}
