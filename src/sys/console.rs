//! Console output that never fails a command (issue 19): a closed stdout or stderr (`resnet train
//! ... | head`, a dead log pipe, a closed terminal) loses the lines written to it and nothing else.
//! A training run whose output is gone keeps training and writes its records, summary and
//! checkpoints as usual; a report or an info table still writes its files. `println!` panics
//! there; these macros drop the line instead.

/// `print!` that ignores a failed write.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` that ignores a failed write.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a failed write.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A string read from a file (a tensor name, an archive member, a class folder) as messages
/// show it: control characters (escape sequences, carriage returns, newlines) replaced by `?`,
/// at most 200 characters, so that a hostile file cannot drive the terminal or forge lines.
pub fn shown(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
