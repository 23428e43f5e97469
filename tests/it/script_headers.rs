//! The Python references write our CSV formats (run folders of scripts/reference/train.py, bench
//! rows of scripts/reference/bench.py): their header constants equal ours, read from the source.
use resnet::analysis::throughput::CSV_HEADER;
use resnet::run::records::{CURVES_HEADER, SUMMARY_HEADER};

/// The string constant `NAME = "..."` or `NAME = ("..." "...")` of a Python file.
fn python_constant(script: &str, name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(&format!("\n{name} = "))
        .unwrap_or_else(|| panic!("{script}: no constant {name}"));
    let rest = &text[start + name.len() + 4..];
    let end = if rest.starts_with('(') {
        rest.find("\n)").unwrap()
    } else {
        rest.find('\n').unwrap()
    };
    rest[..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<String>()
}

#[test]
fn reference_trainer_writes_our_curves_and_summary_headers() {
    let py = "scripts/reference/train.py";
    assert_eq!(python_constant(py, "CURVES_HEADER"), CURVES_HEADER);
    assert_eq!(python_constant(py, "SUMMARY_HEADER"), SUMMARY_HEADER);
}

#[test]
fn reference_bench_writes_our_bench_header() {
    let py = "scripts/reference/bench.py";
    assert_eq!(python_constant(py, "CSV_HEADER"), CSV_HEADER);
}
