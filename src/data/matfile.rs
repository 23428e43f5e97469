//! A small reader of MATLAB level-5 MAT-files, for the one the ImageNet devkit ships
//! (`ILSVRC2012_devkit_t12/data/meta.mat`, whose `synsets` struct array maps the ILSVRC2012 ids of
//! §3.4's 1000 classes to WordNet ids). It reads what that file holds: numeric, char, cell and
//! struct arrays, plain or zlib-compressed (`miCOMPRESSED`, MATLAB's `-v7` default), in either
//! byte order; anything else (sparse or object arrays, `-v7.3` HDF5 files) is one clear error or
//! an [`Value::Unsupported`] placeholder, never a guess. The `matfile` crate (0.5) reads numeric
//! arrays only, hence this file.
use crate::sys::console::shown;
use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// The most bytes one compressed element may inflate to (the devkit's meta.mat holds about 1 MB).
pub const MAX_INFLATED: u64 = 256 << 20;
/// Deepest nesting of cells and structs accepted.
const MAX_DEPTH: usize = 16;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;

/// What one array holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any numeric class (double, single, integers, logical), the real part as f64,
    /// column-major.
    Numeric(Vec<f64>),
    /// A char array of one row.
    Char(String),
    /// A cell array, column-major.
    Cell(Vec<Array>),
    /// A struct array: field names, then for each element (column-major) one array per field.
    Struct {
        fields: Vec<String>,
        elements: Vec<Vec<Array>>,
    },
    /// A class this reader does not read (its mxCLASS number: 3 object, 5 sparse, ...).
    Unsupported(u8),
}

/// A named array with its dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub name: String,
    pub dims: Vec<usize>,
    pub value: Value,
}

impl Array {
    /// The value of field `field` of element `k` of a struct array.
    pub fn field(&self, k: usize, field: &str) -> Option<&Array> {
        match &self.value {
            Value::Struct { fields, elements } => {
                let i = fields.iter().position(|f| f == field)?;
                elements.get(k).map(|e| &e[i])
            }
            _ => None,
        }
    }
}

/// Reads every top-level array of the MAT-file at `path`.
pub fn read(path: &Path) -> Result<Vec<Array>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{}: not a MAT-file this reader reads", path.display()))
}

/// Parses a whole MAT-file (128-byte header, then data elements).
pub fn parse(bytes: &[u8]) -> Result<Vec<Array>> {
    if bytes.len() < 128 {
        bail!(
            "{} bytes, shorter than the 128-byte MAT-file header",
            bytes.len()
        );
    }
    if bytes.starts_with(b"MATLAB 7.3") {
        bail!("a -v7.3 (HDF5) MAT-file; only level-5 files (-v6, -v7) are read");
    }
    if !bytes.starts_with(b"MATLAB 5.0 MAT-file") {
        bail!("no `MATLAB 5.0 MAT-file` header text");
    }
    let big = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => bail!("byte-order mark {other:?}, expected `IM` or `MI`"),
    };
    let mut c = Cursor {
        buf: bytes,
        pos: 128,
        big,
    };
    let mut out = Vec::new();
    while c.pos + 8 <= bytes.len() {
        let at = c.pos;
        let (ty, data) = c.element()?;
        match ty {
            MI_MATRIX => out.push(matrix(data, big, 0)?),
            MI_COMPRESSED => {
                let inflated = inflate(data).with_context(|| format!("element at byte {at}"))?;
                let mut inner = Cursor {
                    buf: &inflated,
                    pos: 0,
                    big,
                };
                let (ty, data) = inner.element()?;
                if ty != MI_MATRIX {
                    bail!("compressed element at byte {at} holds data type {ty}, not a matrix");
                }
                out.push(matrix(data, big, 0)?);
            }
            _ => bail!("top-level element of data type {ty} at byte {at}, expected a matrix"),
        }
    }
    Ok(out)
}

fn inflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|e| anyhow!("bad zlib data ({e})"))?;
    if out.len() as u64 > MAX_INFLATED {
        bail!("inflates to more than {MAX_INFLATED} bytes");
    }
    Ok(out)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Cursor<'a> {
    fn u32_at(&self, at: usize) -> Result<u32> {
        let b: [u8; 4] = self
            .buf
            .get(at..at + 4)
            .ok_or_else(|| anyhow!("truncated element at byte {at}"))?
            .try_into()
            .unwrap();
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// The next data element's type and bytes (the small 4-byte form included); moves past its
    /// padding to 8 bytes (compressed elements are not padded).
    fn element(&mut self) -> Result<(u32, &'a [u8])> {
        let at = self.pos;
        let first = self.u32_at(at)?;
        if first >> 16 != 0 {
            let n = (first >> 16) as usize;
            if n > 4 {
                bail!("small data element of {n} bytes at byte {at} (at most 4)");
            }
            let data = self
                .buf
                .get(at + 4..at + 4 + n)
                .ok_or_else(|| anyhow!("truncated element at byte {at}"))?;
            self.pos = at + 8;
            return Ok((first & 0xffff, data));
        }
        let n = self.u32_at(at + 4)? as usize;
        let data = self
            .buf
            .get(at + 8..at + 8 + n)
            .ok_or_else(|| anyhow!("element at byte {at} declares {n} bytes past the end"))?;
        let padded = if first == MI_COMPRESSED {
            n
        } else {
            n.div_ceil(8) * 8
        };
        self.pos = (at + 8 + padded).min(self.buf.len());
        Ok((first, data))
    }

    fn expect(&mut self, want: &[u32], what: &str) -> Result<&'a [u8]> {
        let at = self.pos;
        let (ty, data) = self.element()?;
        if !want.contains(&ty) {
            bail!("{what} at byte {at} has data type {ty}, expected one of {want:?}");
        }
        Ok(data)
    }
}

/// The numbers of a numeric data element, as f64.
fn numbers(ty: u32, d: &[u8], big: bool) -> Result<Vec<f64>> {
    macro_rules! conv {
        ($t:ty) => {{
            const N: usize = std::mem::size_of::<$t>();
            d.chunks_exact(N)
                .map(|c| {
                    let b: [u8; N] = c.try_into().unwrap();
                    (if big {
                        <$t>::from_be_bytes(b)
                    } else {
                        <$t>::from_le_bytes(b)
                    }) as f64
                })
                .collect()
        }};
    }
    Ok(match ty {
        MI_INT8 => conv!(i8),
        MI_UINT8 => conv!(u8),
        MI_INT16 => conv!(i16),
        MI_UINT16 => conv!(u16),
        MI_INT32 => conv!(i32),
        MI_UINT32 => conv!(u32),
        MI_SINGLE => conv!(f32),
        MI_DOUBLE => conv!(f64),
        MI_INT64 => conv!(i64),
        MI_UINT64 => conv!(u64),
        _ => bail!("numeric data of data type {ty}, which is not a number type"),
    })
}

fn chars(ty: u32, d: &[u8], big: bool) -> Result<String> {
    match ty {
        MI_UINT8 | MI_INT8 | MI_UTF8 => {
            String::from_utf8(d.to_vec()).map_err(|_| anyhow!("char data is not UTF-8"))
        }
        MI_UINT16 | MI_UTF16 => {
            let units: Vec<u16> = numbers(MI_UINT16, d, big)?
                .into_iter()
                .map(|x| x as u16)
                .collect();
            String::from_utf16(&units).map_err(|_| anyhow!("char data is not UTF-16"))
        }
        _ => bail!("char data of data type {ty}"),
    }
}

/// One miMATRIX element's body: flags, dimensions, name, then the class's data.
fn matrix(data: &[u8], big: bool, depth: usize) -> Result<Array> {
    if depth > MAX_DEPTH {
        bail!("cells or structs nested deeper than {MAX_DEPTH}");
    }
    if data.is_empty() {
        // An empty element stands for an empty array (MATLAB writes `[]` fields so).
        return Ok(Array {
            name: String::new(),
            dims: vec![0, 0],
            value: Value::Numeric(Vec::new()),
        });
    }
    let mut c = Cursor {
        buf: data,
        pos: 0,
        big,
    };
    let flags = numbers(MI_UINT32, c.expect(&[MI_UINT32], "array flags")?, big)?;
    let class = *flags.first().ok_or_else(|| anyhow!("empty array flags"))? as u32 as u8;
    let dims: Vec<usize> = numbers(MI_INT32, c.expect(&[MI_INT32], "dimensions")?, big)?
        .into_iter()
        .map(|d| d as usize)
        .collect();
    let name = chars(MI_INT8, c.expect(&[MI_INT8], "array name")?, big)?;
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= 1 << 28)
        .ok_or_else(|| {
            anyhow!(
                "array `{}` has dimensions {dims:?}, too many elements",
                shown(&name)
            )
        })?;
    let value = class_value(&mut c, class, n, &name, big, depth)
        .with_context(|| format!("array `{}`", shown(&name)))?;
    Ok(Array { name, dims, value })
}

fn sub_matrix(c: &mut Cursor, big: bool, depth: usize) -> Result<Array> {
    let data = c.expect(&[MI_MATRIX], "cell or field")?;
    matrix(data, big, depth + 1)
}

fn class_value(
    c: &mut Cursor,
    class: u8,
    n: usize,
    name: &str,
    big: bool,
    depth: usize,
) -> Result<Value> {
    Ok(match class {
        1 => {
            within_bytes_left(c, n, 1, name)?;
            Value::Cell(
                (0..n)
                    .map(|_| sub_matrix(c, big, depth))
                    .collect::<Result<_>>()?,
            )
        }
        2 => {
            let len = numbers(MI_INT32, c.expect(&[MI_INT32], "field name length")?, big)?;
            let len = len.first().copied().unwrap_or(0.0) as usize;
            let raw = c.expect(&[MI_INT8], "field names")?;
            if len == 0 || raw.len() % len != 0 {
                bail!("field names of {} bytes in slots of {len}", raw.len());
            }
            let fields: Vec<String> = raw
                .chunks(len)
                .map(|s| {
                    String::from_utf8_lossy(s)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .collect();
            within_bytes_left(c, n, fields.len(), name)?;
            let mut elements = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let e = (0..fields.len())
                    .map(|_| sub_matrix(c, big, depth))
                    .collect::<Result<_>>()?;
                elements.push(e);
            }
            Value::Struct { fields, elements }
        }
        4 => {
            let at = c.pos;
            let (ty, d) = c.element()?;
            let s = chars(ty, d, big).with_context(|| format!("at byte {at}"))?;
            if s.chars().count() != n {
                bail!("char array `{}` holds {} characters, its dimensions say {n} (only single-row char arrays are read)", shown(name), s.chars().count());
            }
            Value::Char(s)
        }
        6..=15 => {
            let at = c.pos;
            let (ty, d) = c.element()?;
            let v = numbers(ty, d, big).with_context(|| format!("at byte {at}"))?;
            if v.len() != n {
                bail!("{} numbers where its dimensions say {n}", v.len());
            }
            Value::Numeric(v)
        }
        other => Value::Unsupported(other),
    })
}

/// Refuses a cell or struct array of `n` elements of `fields` arrays each that the bytes left in
/// its element cannot hold: every array inside takes at least an 8-byte tag. A struct without
/// fields costs no bytes per element, so it is held to the same 8 bytes an element (one such
/// element, MATLAB's `struct()`, is always accepted): a small file cannot claim millions of
/// elements and make the reader allocate gigabytes.
fn within_bytes_left(c: &Cursor, n: usize, fields: usize, name: &str) -> Result<()> {
    let left = c.buf.len().saturating_sub(c.pos);
    let need = n.saturating_mul(fields.max(1)).saturating_mul(8);
    if n > 1 && need > left {
        bail!(
            "array `{}` claims {n} elements of {fields} field(s), more than the {left} \
             bytes left in it can hold (8 bytes an array at least)",
            shown(name)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_mat_files_are_refused_in_one_line() {
        let e = parse(b"hello").unwrap_err().to_string();
        assert!(e.contains("shorter than the 128-byte"), "{e}");
        let mut h = b"MATLAB 7.3 MAT-file".to_vec();
        h.resize(128, b' ');
        let e = parse(&h).unwrap_err().to_string();
        assert!(e.contains("-v7.3 (HDF5)"), "{e}");
        let mut h = b"MATLAB 5.0 MAT-file".to_vec();
        h.resize(128, b' ');
        let e = parse(&h).unwrap_err().to_string();
        assert!(e.contains("byte-order mark"), "{e}");
    }
}
