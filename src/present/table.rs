//! Tables of results (the paper's Tables 1, 2, 3 and 6): one small type that every command fills
//! and that alone writes CSV and Markdown files and aligned text for the terminal.
use anyhow::{Context, Result};
use std::path::Path;

/// A header row and string cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        self.rows.push(row);
    }

    /// Writes the table as CSV, creating parent folders; the write is atomic (temp + rename).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.headers)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        let bytes = w.into_inner().context("flushing CSV")?;
        write_atomic(path, &bytes)
    }

    /// GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("| {} |\n", self.headers.join(" | "));
        s += &format!("|{}\n", "---|".repeat(self.headers.len()));
        for r in &self.rows {
            s += &format!("| {} |\n", r.join(" | "));
        }
        s
    }

    /// Space-aligned text for the terminal.
    pub fn to_text(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut s = line(&self.headers) + "\n";
        for r in &self.rows {
            s += &(line(r) + "\n");
        }
        s
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, sync, rename), so
/// readers never see a half-written file; through symbolic links (the link is kept) and in place
/// for devices and FIFOs. See [`crate::sys::atomic`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::sys::atomic::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_writes() {
        let mut t = Table::new(["model", "params"]);
        t.push(vec!["resnet20".into(), "269722".into()]);
        assert_eq!(
            t.to_markdown(),
            "| model | params |\n|---|---|\n| resnet20 | 269722 |\n"
        );
        assert_eq!(t.to_text(), "model     params\nresnet20  269722\n");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.csv");
        t.write_csv(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "model,params\nresnet20,269722\n"
        );
    }
}
