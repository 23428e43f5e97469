//! One CSV line at a time through the csv crate, for the files written and read a row per line
//! (`curves.csv`, appended as a run trains and cut back on resume; `resnet bench`'s rows, shared
//! with `scripts/reference/bench.py`). Whole tables go through [`csv::Writer`] directly.
use anyhow::{Context, Result};

/// `fields` as one CSV line without its newline, quoted where a field needs it (numbers and plain
/// names never do, so such a line is the fields joined by commas).
pub fn write<I, T>(fields: I) -> String
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing one record to memory fails only on a field count differing from an earlier record's,
    // and there is no earlier record.
    w.write_record(fields)
        .and_then(|_| w.flush().map_err(csv::Error::from))
        .expect("one CSV record into memory");
    let bytes = w.into_inner().expect("flushed in-memory CSV writer");
    let mut line = String::from_utf8_lossy(&bytes).into_owned();
    line.pop();
    line
}

/// The fields of one CSV line (surrounding spaces trimmed). `line` must hold a single record.
pub fn read(line: &str) -> Result<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    let found = r
        .read_record(&mut record)
        .with_context(|| format!("{line:?} is not a CSV line"))?;
    let mut more = csv::StringRecord::new();
    if r.read_record(&mut more).unwrap_or(true) {
        anyhow::bail!("{line:?} holds more than one CSV line");
    }
    Ok(if found {
        record.iter().map(str::to_string).collect()
    } else {
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_are_joined_by_commas_and_read_back() {
        let line = write(["12", "0.25", "", "nan", "ours+graph"]);
        assert_eq!(line, "12,0.25,,nan,ours+graph");
        assert_eq!(
            read(&line).unwrap(),
            ["12", "0.25", "", "nan", "ours+graph"]
        );
        assert_eq!(read(" a , b ").unwrap(), ["a", "b"]);
    }

    #[test]
    fn a_field_with_a_comma_is_quoted_and_one_line_only_is_read() {
        let line = write(["a,b", "c"]);
        assert_eq!(line, "\"a,b\",c");
        assert_eq!(read(&line).unwrap(), ["a,b", "c"]);
        assert!(read("a\nb").is_err());
    }
}
