//! A checkpoint is trusted only as far as it can be checked (issue 19): one flipped bit in a
//! weight or in the training state, or gigabytes after a valid header, are refused naming the
//! file, on eval and on resume. Checkpoints are edited byte by byte here, as a disk or a careless
//! copy would.
use crate::support;
use std::ffi::OsStr;
use std::path::Path;
use support::*;

/// The header length, and the byte range of tensor `name`'s data, of a safetensors file.
fn tensor_range(bytes: &[u8], name: &str) -> (usize, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let off = &header[name]["data_offsets"];
    let (a, b) = (off[0].as_u64().unwrap(), off[1].as_u64().unwrap());
    (8 + n + a as usize, 8 + n + b as usize)
}

fn eval(ck: &Path) -> std::process::Output {
    resnet(&[
        OsStr::new("eval"),
        OsStr::new("--checkpoint"),
        ck.as_os_str(),
    ])
}

fn resume(dir: &Path) -> std::process::Output {
    resnet(&[OsStr::new("train"), OsStr::new("--resume"), dir.as_os_str()])
}

/// One flipped bit in a weight loaded silently; it is refused by eval and by a resume, naming the
/// file and the checksum, and nothing is recorded.
#[test]
fn a_flipped_bit_in_a_weight_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 20, "");
    let ck = run.join("last.safetensors");
    let mut bytes = std::fs::read(&ck).unwrap();
    let (start, _) = tensor_range(&bytes, "conv1.weight");
    bytes[start + 101] ^= 0x04;
    std::fs::write(&ck, &bytes).unwrap();
    let name = ck.display().to_string();
    refused(&eval(&ck), &[&name, "checksum"]);
    assert!(!run.join("eval.csv").exists());
    refused(&resume(&run), &[&name, "checksum"]);
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        bytes,
        "the checkpoint was rewritten"
    );
}

/// The training state edited (iteration 20 read as 28, same length) resumed silently at the
/// wrong iteration; it is refused like a corrupt weight.
#[test]
fn an_edited_training_state_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 20, "");
    let ck = run.join("last.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    let from = br#"iteration\":20,"#;
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the iteration in the state");
    let mut edited = bytes.clone();
    edited[at..at + from.len()].copy_from_slice(br#"iteration\":28,"#);
    std::fs::write(&ck, &edited).unwrap();
    let name = ck.display().to_string();
    refused(&resume(&run), &[&name, "checksum"]);
    refused(&eval(&ck), &[&name, "checksum"]);
}

/// A valid checkpoint followed by 256 MiB (a sparse file: nothing on disk) was read whole before
/// it was refused; its size is checked against what the header describes, before reading.
#[test]
fn a_checkpoint_longer_than_its_header_says_is_refused_by_size() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained(tmp.path(), "run", 20, "");
    let ck = run.join("last.safetensors");
    let len = std::fs::metadata(&ck).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&ck).unwrap();
    f.set_len(len + (256 << 20)).unwrap();
    drop(f);
    let o = eval(&ck);
    refused(
        &o,
        &[&ck.display().to_string(), &format!("{len} bytes"), "header"],
    );
}
