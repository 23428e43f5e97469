//! What a run records (the curves of the paper's Figures 1, 4 and 6, and the numbers of Tables 2,
//! 4, 6): `curves.csv` rows, the one-row `summary.csv`, and the rows `resnet eval` appends to
//! `eval.csv`. Only writing and reading files here; the training loop produces the values.
use crate::config::{Family, NetKind, RecipeChange, Shortcut};
use crate::present::csvline;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `curves.csv` header (read by `report`, `compare` and the plots, and written by the Python
/// reference trainer too: old run folders must keep reading).
pub const CURVES_HEADER: &str =
    "iteration,epoch,lr,train_loss,train_error,test_loss,test_error,images_per_s,elapsed_s";

/// `summary.csv` header (shared interface).
pub const SUMMARY_HEADER: &str = "name,model,family,kind,shortcut,depth,params,iterations,\
final_train_error,final_test_error,best_test_error,best_iteration,eval_split,warmup_end,wall_s";

/// `eval.csv` header. `protocol` names the testing protocol (`1-crop`, `10-crop`,
/// `multi-scale 224/256/384/480/640`); `crops` is the number of views averaged per image.
pub const EVAL_HEADER: &str =
    "checkpoint,iteration,split,protocol,crops,images,test_loss,top1_error,top5_error";

/// The header of `eval.csv` files written before the protocol column (only crop testing).
pub const EVAL_HEADER_V1: &str =
    "checkpoint,iteration,split,crops,images,test_loss,top1_error,top5_error";

/// The protocol of an `eval.csv` row without a protocol column: 10 crops or one.
pub fn protocol_of_crops(crops: u32) -> String {
    format!("{crops}-crop")
}

/// `changes.csv` header: deliberate recipe changes of a resumed run (`resnet train --resume
/// --change KEY`), each with the iteration from which it applies.
pub const CHANGES_HEADER: &str = "iteration,key,old,new";

/// One row of `curves.csv`: errors in percent, training values averaged over the interval.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveRow {
    pub iteration: u64,
    pub epoch: f64,
    pub lr: f64,
    pub train_loss: f64,
    pub train_error: f64,
    pub test_loss: Option<f64>,
    pub test_error: Option<f64>,
    pub images_per_s: f64,
    pub elapsed_s: f64,
}

/// The one row of `summary.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub name: String,
    pub model: String,
    pub family: Family,
    pub kind: NetKind,
    pub shortcut: Shortcut,
    pub depth: usize,
    pub params: u64,
    pub iterations: u64,
    pub final_train_error: f64,
    pub final_test_error: f64,
    pub best_test_error: f64,
    pub best_iteration: u64,
    pub eval_split: String,
    pub warmup_end: Option<u64>,
    pub wall_s: f64,
}

/// One row of `eval.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRow {
    pub checkpoint: String,
    pub iteration: u64,
    pub split: String,
    pub protocol: String,
    pub crops: u32,
    pub images: u64,
    pub loss: f64,
    pub top1_error: f64,
    pub top5_error: f64,
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

impl CurveRow {
    /// The CSV line (no newline). Floats use Rust's shortest round-trip form.
    pub fn to_csv(&self) -> String {
        csvline::write([
            self.iteration.to_string(),
            self.epoch.to_string(),
            self.lr.to_string(),
            self.train_loss.to_string(),
            self.train_error.to_string(),
            opt(self.test_loss),
            opt(self.test_error),
            format!("{:.1}", self.images_per_s),
            format!("{:.3}", self.elapsed_s),
        ])
    }

    fn parse(line: &str) -> Result<CurveRow> {
        let f = csvline::read(line)?;
        if f.len() != 9 {
            bail!("expected 9 fields, found {}", f.len());
        }
        let num = |i: usize| -> Result<f64> {
            f[i].parse::<f64>()
                .with_context(|| format!("field {} = {:?} is not a number", i + 1, f[i]))
        };
        let onum = |i: usize| -> Result<Option<f64>> {
            if f[i].is_empty() {
                Ok(None)
            } else {
                num(i).map(Some)
            }
        };
        Ok(CurveRow {
            iteration: f[0]
                .parse()
                .with_context(|| format!("iteration {:?} is not an integer", f[0]))?,
            epoch: num(1)?,
            lr: num(2)?,
            train_loss: num(3)?,
            train_error: num(4)?,
            test_loss: onum(5)?,
            test_error: onum(6)?,
            images_per_s: num(7)?,
            elapsed_s: num(8)?,
        })
    }
}

/// Appends rows to `curves.csv`, one complete line per write, flushed at once (a killed run
/// leaves only whole lines, all at or before its last checkpoint's successors).
pub struct CurvesWriter {
    file: std::fs::File,
}

impl CurvesWriter {
    /// Creates `path` with the header (replacing any old file).
    pub fn create(path: &Path) -> Result<CurvesWriter> {
        let mut file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(format!("{CURVES_HEADER}\n").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(CurvesWriter { file })
    }

    /// Keeps the header and the complete rows with `iteration <= upto` (what a checkpoint at
    /// `upto` has seen), then appends from there: [`CurvesWriter::check_resume`], then
    /// [`ResumedCurves::open`].
    pub fn resume(path: &Path, upto: u64) -> Result<CurvesWriter> {
        CurvesWriter::check_resume(path, upto)?.open()
    }

    /// Reads `path` for a resume at iteration `upto` without changing it
    /// ([`CurvesWriter::check_resume_at`] for a checkpoint that does not say its last row).
    pub fn check_resume(path: &Path, upto: u64) -> Result<ResumedCurves> {
        CurvesWriter::check_resume_at(path, upto, None)
    }

    /// Reads `path` for a resume from a checkpoint at iteration `upto` whose last curve row was
    /// `seen` (`None`: a checkpoint from before it was stored), without changing it. The header
    /// and every row must parse (an unparsable line is an error naming the file and the line, so
    /// no row is ever dropped silently), rows must strictly increase, and the rows kept (those at
    /// or before `upto`) must end at `seen`. A last line without its newline is kept when it is a
    /// complete row the checkpoint has seen; it is dropped only when provably half-written (it
    /// does not parse, or lies after `upto`: the checkpoint was saved after every row it saw
    /// was written whole).
    pub fn check_resume_at(path: &Path, upto: u64, seen: Option<u64>) -> Result<ResumedCurves> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut kept = format!("{CURVES_HEADER}\n");
        let (complete, tail) = match text.rfind('\n') {
            Some(i) => text.split_at(i + 1),
            None => ("", text.as_str()),
        };
        let mut lines = complete.lines().enumerate();
        if let Some((_, header)) = lines.next() {
            if header.trim() != CURVES_HEADER {
                bail!(
                    "{} line 1: header is {header:?}, expected {CURVES_HEADER:?}; \
                     the run's curves cannot be continued (repair the file or start over with --force)",
                    path.display()
                );
            }
        }
        let mut last: Option<u64> = None;
        let mut reached = 0;
        let mut take = |row: &CurveRow, line: &str, number: usize| -> Result<()> {
            if let Some(prev) = last.filter(|&p| row.iteration <= p) {
                bail!(
                    "{} line {number}: iteration {} after iteration {prev}: curve rows must \
                     strictly increase (a duplicated or misplaced row); repair the file to resume",
                    path.display(),
                    row.iteration
                );
            }
            last = Some(row.iteration);
            if row.iteration <= upto {
                kept += &format!("{line}\n");
                reached = row.iteration;
            }
            Ok(())
        };
        let mut count = 1;
        for (i, line) in lines {
            count = i + 2;
            if line.trim().is_empty() {
                continue;
            }
            let row = CurveRow::parse(line).with_context(|| {
                format!(
                    "{} line {}: {line:?} is not a curve row; repair or remove that line \
                     to resume (no row is dropped silently)",
                    path.display(),
                    i + 1
                )
            })?;
            take(&row, line, i + 1)?;
        }
        if !complete.is_empty() {
            if let Ok(row) = CurveRow::parse(tail.trim_end()) {
                if row.iteration <= upto {
                    take(&row, tail.trim_end(), count)?;
                }
            }
        }
        if let Some(seen) = seen.filter(|&s| s != reached) {
            bail!(
                "{} ends at iteration {reached} but its checkpoint (iteration {upto}) has seen the \
                 rows up to iteration {seen}: rows are missing or the checkpoint is not this \
                 run's (restored from another backup); restore the curves or start over with --force",
                path.display()
            );
        }
        Ok(ResumedCurves {
            path: path.to_path_buf(),
            kept,
        })
    }

    pub fn append(&mut self, row: &CurveRow) -> Result<()> {
        self.file
            .write_all(format!("{}\n", row.to_csv()).as_bytes())
            .context("cannot append to curves.csv")
    }
}

/// The checked rows of a resumed `curves.csv` ([`CurvesWriter::check_resume`]), written back
/// only by [`ResumedCurves::open`].
#[derive(Debug, Clone)]
pub struct ResumedCurves {
    path: PathBuf,
    kept: String,
}

impl ResumedCurves {
    /// Rows kept (header excluded).
    pub fn rows(&self) -> usize {
        self.kept.lines().count() - 1
    }

    /// Replaces the file by the kept rows and opens it for appending.
    pub fn open(self) -> Result<CurvesWriter> {
        crate::present::table::write_atomic(&self.path, self.kept.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open {} for appending", self.path.display()))?;
        Ok(CurvesWriter { file })
    }
}

/// Reads `curves.csv`.
pub fn read_curves(path: &Path) -> Result<Vec<CurveRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == CURVES_HEADER => {}
        other => bail!(
            "{}: header is {:?}, expected {CURVES_HEADER:?}",
            path.display(),
            other.unwrap_or("")
        ),
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            CurveRow::parse(l).with_context(|| format!("{} line {}", path.display(), i + 2))
        })
        .collect()
}

impl Summary {
    /// The summary of a network that has not finished (or not started) a run: identity fields
    /// set, results NaN/empty. Filled in by the training loop, or shown as an empty table row.
    pub fn unfinished(
        name: &str,
        model: &str,
        family: Family,
        kind: NetKind,
        shortcut: Shortcut,
        depth: usize,
        params: u64,
    ) -> Self {
        Summary {
            name: name.into(),
            model: model.into(),
            family,
            kind,
            shortcut,
            depth,
            params,
            iterations: 0,
            final_train_error: f64::NAN,
            final_test_error: f64::NAN,
            best_test_error: f64::NAN,
            best_iteration: 0,
            eval_split: String::new(),
            warmup_end: None,
            wall_s: 0.0,
        }
    }

    fn fields(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.model.clone(),
            self.family.to_string(),
            self.kind.to_string(),
            self.shortcut.to_string(),
            self.depth.to_string(),
            self.params.to_string(),
            self.iterations.to_string(),
            self.final_train_error.to_string(),
            self.final_test_error.to_string(),
            self.best_test_error.to_string(),
            self.best_iteration.to_string(),
            self.eval_split.clone(),
            self.warmup_end.map(|w| w.to_string()).unwrap_or_default(),
            format!("{:.3}", self.wall_s),
        ]
    }
}

/// Writes `summary.csv` (header + one row), atomically.
pub fn write_summary(path: &Path, s: &Summary) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(SUMMARY_HEADER.split(','))?;
    w.write_record(s.fields())?;
    let bytes = w.into_inner().context("flushing summary CSV")?;
    crate::present::table::write_atomic(path, &bytes)
}

/// Reads `summary.csv`.
pub fn read_summary(path: &Path) -> Result<Summary> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header: Vec<String> = r.headers()?.iter().map(String::from).collect();
    if header.join(",") != SUMMARY_HEADER {
        bail!(
            "{}: header is {:?}, expected {SUMMARY_HEADER:?}",
            path.display(),
            header.join(",")
        );
    }
    let rec = r
        .records()
        .next()
        .with_context(|| format!("{}: no summary row", path.display()))?
        .with_context(|| format!("{}: bad summary row", path.display()))?;
    let get = |i: usize| rec.get(i).unwrap_or("").to_string();
    let num = |i: usize| -> Result<f64> {
        get(i).parse::<f64>().with_context(|| {
            format!(
                "{}: {} = {:?} is not a number",
                path.display(),
                header[i],
                get(i)
            )
        })
    };
    let int = |i: usize| -> Result<u64> {
        get(i).parse::<u64>().with_context(|| {
            format!(
                "{}: {} = {:?} is not an integer",
                path.display(),
                header[i],
                get(i)
            )
        })
    };
    Ok(Summary {
        name: get(0),
        model: get(1),
        family: column(path, &header[2], &get(2))?,
        kind: column(path, &header[3], &get(3))?,
        shortcut: column(path, &header[4], &get(4))?,
        depth: int(5)? as usize,
        params: int(6)?,
        iterations: int(7)?,
        final_train_error: num(8)?,
        final_test_error: num(9)?,
        best_test_error: num(10)?,
        best_iteration: int(11)?,
        eval_split: get(12),
        warmup_end: if get(13).is_empty() {
            None
        } else {
            Some(int(13)?)
        },
        wall_s: num(14)?,
    })
}

/// A typed column of a record (`family`, `kind`, `shortcut`), the file and column named when
/// the value is another spelling.
fn column<T: std::str::FromStr<Err = anyhow::Error>>(
    path: &Path,
    header: &str,
    value: &str,
) -> Result<T> {
    value
        .parse()
        .with_context(|| format!("{}: {header}", path.display()))
}

/// Rewrites an `eval.csv` of the first format (no protocol column) in the current one, the
/// protocol of each row following from its crops; files already current are left alone.
fn upgrade_eval(path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if text.lines().next().map(str::trim) != Some(EVAL_HEADER_V1) {
        return Ok(());
    }
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(EVAL_HEADER.split(','))?;
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", path.display(), i + 2))?;
        let crops: u32 = rec.get(3).unwrap_or("").trim().parse().with_context(|| {
            format!("{} line {}: crops {:?}", path.display(), i + 2, rec.get(3))
        })?;
        let mut fields: Vec<String> = rec.iter().map(String::from).collect();
        fields.insert(3, protocol_of_crops(crops));
        w.write_record(&fields)?;
    }
    let bytes = w.into_inner().context("flushing eval CSV")?;
    crate::present::table::write_atomic(path, &bytes)
}

/// Every row of `eval.csv`, in file order (empty when the file does not exist). Files written
/// before the `protocol` column get the protocol from `crops`; columns are found by name, so a
/// missing one is named with the file.
pub fn read_eval(path: &Path) -> Result<Vec<EvalRow>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header: Vec<String> = r
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .iter()
        .map(String::from)
        .collect();
    let col = |name: &str| -> Result<usize> {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column `{name}` (header {:?}, expected {EVAL_HEADER:?})",
                path.display(),
                header.join(",")
            )
        })
    };
    let names = [
        "checkpoint",
        "iteration",
        "split",
        "crops",
        "images",
        "test_loss",
        "top1_error",
        "top5_error",
    ];
    let c: Vec<usize> = names.iter().map(|n| col(n)).collect::<Result<_>>()?;
    let c_protocol = header.iter().position(|h| h == "protocol");
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{} line {line}", path.display()))?;
        let field = |k: usize| rec.get(c[k]).unwrap_or("").trim();
        let bad = |k: usize| {
            format!(
                "{} line {line}: {} = {:?}",
                path.display(),
                names[k],
                field(k)
            )
        };
        let num = |k: usize| -> Result<f64> { field(k).parse().with_context(|| bad(k)) };
        let int = |k: usize| -> Result<u64> { field(k).parse().with_context(|| bad(k)) };
        let crops = int(3)? as u32;
        rows.push(EvalRow {
            checkpoint: field(0).to_string(),
            iteration: int(1)?,
            split: field(2).to_string(),
            protocol: match c_protocol {
                Some(p) => rec.get(p).unwrap_or("").trim().to_string(),
                None => protocol_of_crops(crops),
            },
            crops,
            images: int(4)?,
            loss: num(5)?,
            top1_error: num(6)?,
            top5_error: num(7)?,
        });
    }
    Ok(rows)
}

/// The largest `eval.csv` read (to bring a file of the first format to the current one).
const MAX_EVAL_CSV_BYTES: u64 = 64 << 20;

/// Appends one row to `eval.csv`, writing the header first when the file is new or empty (and
/// bringing a file of the first format, without the protocol column, to the current one first).
/// Any other file is refused unchanged (`--csv curves.csv` would break the run). A device, FIFO
/// or `/dev/stdout` is written in place, header and row, without reading it.
pub fn append_eval(path: &Path, row: &EvalRow) -> Result<()> {
    let (target, new) = match crate::sys::atomic::resolve(path)? {
        crate::sys::atomic::Target::Special(p) => (p, true),
        crate::sys::atomic::Target::Regular(p) => {
            let new = match std::fs::metadata(&p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
                Ok(m) if m.len() == 0 => true,
                Ok(m) => {
                    check_eval_table(path, &p, m.len())?;
                    false
                }
            };
            if let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create folder {}", parent.display()))?;
            }
            (p, new)
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&target)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    if new {
        w.write_record(EVAL_HEADER.split(','))?;
    }
    w.write_record([
        row.checkpoint.clone(),
        row.iteration.to_string(),
        row.split.clone(),
        row.protocol.clone(),
        row.crops.to_string(),
        row.images.to_string(),
        row.loss.to_string(),
        row.top1_error.to_string(),
        row.top5_error.to_string(),
    ])?;
    f.write_all(&w.into_inner().context("flushing eval CSV")?)
        .with_context(|| format!("cannot append to {}", path.display()))
}

/// Refuses a non-empty `target` (what `path` resolves to, `len` bytes) that does not start with
/// eval's header; upgrades one of the first format.
fn check_eval_table(path: &Path, target: &Path, len: u64) -> Result<()> {
    let first = crate::sys::atomic::first_line(target)?.unwrap_or_default();
    if first.trim() == EVAL_HEADER {
        return Ok(());
    }
    if first.trim() == EVAL_HEADER_V1 {
        if len > MAX_EVAL_CSV_BYTES {
            bail!(
                "{}: {len} bytes, larger than any eval table ({MAX_EVAL_CSV_BYTES} bytes)",
                path.display()
            );
        }
        return upgrade_eval(target);
    }
    let shown: String = first.chars().take(80).collect();
    bail!(
        "{} is not an eval table (its first line is {shown:?}); eval appends only to a new or \
         empty file or one that starts with eval's header {EVAL_HEADER:?}",
        path.display()
    )
}

/// Appends the recipe changes that apply from `iteration` on to `changes.csv` (header first when
/// the file is new); values in TOML syntax, CSV-quoted.
pub fn append_changes(path: &Path, iteration: u64, changes: &[RecipeChange]) -> Result<()> {
    let new = !path.exists();
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    if new {
        w.write_record(CHANGES_HEADER.split(','))?;
    }
    for c in changes {
        w.write_record([
            iteration.to_string(),
            c.key.clone(),
            c.old.clone(),
            c.new.clone(),
        ])?;
    }
    let bytes = w.into_inner().context("flushing changes CSV")?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot append to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(it: u64, test: Option<f64>) -> CurveRow {
        CurveRow {
            iteration: it,
            epoch: it as f64 / 10.0,
            lr: 0.1,
            train_loss: 1.5,
            train_error: 87.5,
            test_loss: test.map(|t| t / 40.0),
            test_error: test,
            images_per_s: 1234.56,
            elapsed_s: 1.5,
        }
    }

    /// The bytes of a curve line are those of the hand-joined format before the csv crate
    /// (shortest round-trip floats, `{:.1}` images/s, `{:.3}` seconds, empty test fields), which
    /// old run folders and scripts/reference/train.py share.
    #[test]
    fn curve_lines_keep_their_bytes() {
        let mut r = row(20, Some(50.0));
        r.epoch = 0.1 + 0.2;
        assert_eq!(
            r.to_csv(),
            "20,0.30000000000000004,0.1,1.5,87.5,1.25,50,1234.6,1.500"
        );
        assert_eq!(CurveRow::parse(&r.to_csv()).unwrap().epoch, 0.1 + 0.2);
        assert_eq!(row(10, None).to_csv(), "10,1,0.1,1.5,87.5,,,1234.6,1.500");
    }

    #[test]
    fn curves_round_trip_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("curves.csv");
        let mut w = CurvesWriter::create(&p).unwrap();
        for it in [10, 20, 30] {
            w.append(&row(it, (it == 20).then_some(50.0))).unwrap();
        }
        drop(w);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(&format!("{CURVES_HEADER}\n10,1,0.1,1.5,87.5,,,")));
        let back = read_curves(&p).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1].test_error, Some(50.0));
        assert_eq!(back[0].test_loss, None);
        // A half-written last line is dropped, and so are rows after the checkpoint.
        std::fs::write(&p, format!("{text}40,4,0.1,2.3")).unwrap();
        let mut w = CurvesWriter::resume(&p, 20).unwrap();
        w.append(&row(30, None)).unwrap();
        drop(w);
        let back = read_curves(&p).unwrap();
        assert_eq!(
            back.iter().map(|r| r.iteration).collect::<Vec<_>>(),
            vec![10, 20, 30]
        );
    }

    /// A garbage line on resume is an error naming the file and the line, and the file is left
    /// as it was: no row after it is dropped silently.
    #[test]
    fn resume_refuses_an_unparsable_row_and_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("curves.csv");
        let mut w = CurvesWriter::create(&p).unwrap();
        for it in [10, 20, 30] {
            w.append(&row(it, None)).unwrap();
        }
        drop(w);
        let good = std::fs::read_to_string(&p).unwrap();
        let mut lines: Vec<&str> = good.lines().collect();
        lines.insert(2, "15,garbage");
        let bad = lines.join("\n") + "\n";
        std::fs::write(&p, &bad).unwrap();
        let e = format!("{:#}", CurvesWriter::resume(&p, 30).err().unwrap());
        assert!(
            e.contains("curves.csv line 3") && e.contains("\"15,garbage\""),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), bad);
        // Also past the checkpoint's iteration: the line is reported, not skipped.
        let e = format!("{:#}", CurvesWriter::check_resume(&p, 10).err().unwrap());
        assert!(e.contains("line 3"), "{e}");
        std::fs::write(&p, good.replace(CURVES_HEADER, "iteration,loss")).unwrap();
        let e = format!("{:#}", CurvesWriter::resume(&p, 30).err().unwrap());
        assert!(e.contains("line 1: header"), "{e}");
        // Checking alone changes nothing; opening keeps the rows up to the checkpoint.
        std::fs::write(&p, &good).unwrap();
        let kept = CurvesWriter::check_resume(&p, 20).unwrap();
        assert_eq!(kept.rows(), 2);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), good);
        drop(kept.open().unwrap());
        assert_eq!(read_curves(&p).unwrap().len(), 2);
    }

    #[test]
    fn changes_append_under_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("changes.csv");
        let c = |k: &str, a: &str, b: &str| RecipeChange {
            key: k.into(),
            old: a.into(),
            new: b.into(),
        };
        append_changes(&p, 400, &[c("schedule.iterations", "400", "600")]).unwrap();
        append_changes(
            &p,
            600,
            &[
                c("schedule.iterations", "600", "800"),
                c("schedule.milestones", "[300]", "[300, 700]"),
            ],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "iteration,key,old,new\n400,schedule.iterations,400,600\n\
             600,schedule.iterations,600,800\n600,schedule.milestones,[300],\"[300, 700]\"\n"
        );
    }

    #[test]
    fn summary_round_trips_with_exact_header() {
        let s = Summary {
            name: "r20".into(),
            model: "resnet20".into(),
            family: Family::Cifar,
            kind: NetKind::Residual,
            shortcut: Shortcut::A,
            depth: 20,
            params: 269_722,
            iterations: 400,
            final_train_error: 40.5,
            final_test_error: 45.25,
            best_test_error: 45.0,
            best_iteration: 300,
            eval_split: "test".into(),
            warmup_end: None,
            wall_s: 12.5,
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.csv");
        write_summary(&p, &s).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().next().unwrap(), SUMMARY_HEADER);
        assert_eq!(read_summary(&p).unwrap(), s);
        let w = Summary {
            warmup_end: Some(400),
            ..s
        };
        write_summary(&p, &w).unwrap();
        assert_eq!(read_summary(&p).unwrap().warmup_end, Some(400));
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace(",residual,", ",resnet,")).unwrap();
        let err = format!("{:#}", read_summary(&p).unwrap_err());
        assert!(
            err.contains("summary.csv: kind: \"resnet\" is not one of residual, plain"),
            "{err}"
        );
    }

    #[test]
    fn eval_rows_append_under_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("eval.csv");
        let r = EvalRow {
            checkpoint: "last.safetensors".into(),
            iteration: 10,
            split: "test".into(),
            protocol: "multi-scale 224/256".into(),
            crops: 4,
            images: 100,
            loss: 1.5,
            top1_error: 40.0,
            top5_error: 5.0,
        };
        append_eval(&p, &r).unwrap();
        append_eval(&p, &r).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert_eq!(text.lines().next().unwrap(), EVAL_HEADER);
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "last.safetensors,10,test,multi-scale 224/256,4,100,1.5,40,5"
        );
    }

    #[test]
    fn an_eval_csv_without_protocol_is_upgraded_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("eval.csv");
        std::fs::write(
            &p,
            format!(
                "{EVAL_HEADER_V1}\na.safetensors,5,val,10,50,1.25,30,9\nb,6,val,1,50,1.5,35,12\n"
            ),
        )
        .unwrap();
        let r = EvalRow {
            checkpoint: "c".into(),
            iteration: 7,
            split: "val".into(),
            protocol: "multi-scale 224".into(),
            crops: 2,
            images: 50,
            loss: 1.0,
            top1_error: 20.0,
            top5_error: 4.0,
        };
        append_eval(&p, &r).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                EVAL_HEADER,
                "a.safetensors,5,val,10-crop,10,50,1.25,30,9",
                "b,6,val,1-crop,1,50,1.5,35,12",
                "c,7,val,multi-scale 224,2,50,1,20,4",
            ]
        );
    }
}
