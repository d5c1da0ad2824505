//! Numeric delimited text (CSV, TSV), plain or gzip-compressed (recognised by content).
//!
//! Every field is a number; one optional column holds integral class labels. Blank lines are
//! skipped, `\r\n` line ends are accepted, a field may be wrapped in double quotes, and spaces
//! around a field are ignored. With the delimiter `b' '` any run of spaces and tabs separates
//! fields. Errors name the line and column, both counted from 1 as editors do (the
//! `label_column` option counts from 0, as indices do).

use std::path::Path;

use super::gzip;
use crate::error::{Error, Result, invalid};
use crate::tensor::Matrix;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field separator: `b','`, `b'\t'`, `b';'`, ... (`b' '`: runs of whitespace).
    pub delimiter: u8,
    /// Skip the first non-blank line.
    pub has_header: bool,
    /// 0-based column holding integral labels, taken out of the features.
    pub label_column: Option<usize>,
}

impl Default for CsvOptions {
    /// Comma-separated, no header, no labels.
    fn default() -> Self {
        CsvOptions { delimiter: b',', has_header: false, label_column: None }
    }
}

impl CsvOptions {
    /// Tab-separated, no header, no labels.
    pub fn tsv() -> Self {
        CsvOptions { delimiter: b'\t', ..CsvOptions::default() }
    }

    pub fn validate(&self) -> Result<()> {
        let d = self.delimiter;
        if !d.is_ascii() || d.is_ascii_alphanumeric() || b"\r\n\".+-".contains(&d) {
            return Err(invalid!("delimiter {:?} cannot separate numbers (use ',', '\\t', ';', ' ', ...)", d as char));
        }
        if self.label_column.is_some_and(|c| c > u32::MAX as usize) {
            return Err(invalid!("label column {:?} is out of range", self.label_column));
        }
        Ok(())
    }
}

fn at(line: usize, col: usize, msg: String) -> Error {
    Error::BadFormat(format!("line {line}, column {col}: {msg}"))
}

fn shown(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(&field[..field.len().min(40)]).into_owned();
    if field.len() > 40 { format!("{s}...") } else { s }
}

/// The field with surrounding spaces and one pair of double quotes removed.
fn clean(field: &[u8]) -> &[u8] {
    let f = field.trim_ascii();
    match f {
        [b'"', inner @ .., b'"'] => inner.trim_ascii(),
        _ => f,
    }
}

fn number(field: &[u8], line: usize, col: usize) -> Result<f64> {
    let f = clean(field);
    if f.is_empty() {
        return Err(at(line, col, "empty field (missing values are not supported)".into()));
    }
    let v: f64 = std::str::from_utf8(f)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| at(line, col, format!("cannot parse \"{}\" as a number", shown(f))))?;
    if !v.is_finite() || !(v as f32).is_finite() {
        let why = if v.is_finite() { " (outside the f32 range)" } else { "" };
        return Err(at(line, col, format!("non-finite value \"{}\"{why}", shown(f))));
    }
    Ok(v)
}

/// The fields of a line: split at each delimiter, or at runs of spaces and tabs for `b' '`.
struct Fields<'a> {
    rest: Option<&'a [u8]>,
    delimiter: u8,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let mut r = self.rest?;
        if self.delimiter == b' ' {
            let start = r.iter().position(|b| !blank(b)).unwrap_or(r.len());
            r = &r[start..];
            if r.is_empty() {
                self.rest = None;
                return None;
            }
        }
        let end =
            if self.delimiter == b' ' { r.iter().position(blank) } else { r.iter().position(|&b| b == self.delimiter) };
        match end {
            Some(i) => {
                self.rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                self.rest = None;
                Some(r)
            }
        }
    }
}

/// Appends to a vector whose growth is fallible: a file too large for memory is
/// [`Error::OutOfMemory`], never an abort of the host.
fn push<T>(v: &mut Vec<T>, x: T) -> Result<()> {
    if v.len() == v.capacity() {
        v.try_reserve(v.len().max(1024))
            .map_err(|_| Error::OutOfMemory(format!("{} values parsed so far, and room for as many more", v.len())))?;
    }
    v.push(x);
    Ok(())
}

/// Parses delimited text into features and, with `label_column`, labels. Memory that cannot
/// be had is [`Error::OutOfMemory`].
pub fn parse(text: &[u8], opts: &CsvOptions) -> Result<(Matrix, Option<Vec<i32>>)> {
    opts.validate()?;
    let d = opts.delimiter;
    let mut values: Vec<f32> = Vec::new();
    let mut labels: Vec<i32> = Vec::new();
    let mut width: Option<(usize, usize)> = None; // (fields per row, line that set it)
    let mut header_pending = opts.has_header;
    let mut rows = 0usize;
    let fields = |raw| Fields { rest: Some(raw), delimiter: d };
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.trim_ascii().is_empty() {
            continue;
        }
        if header_pending {
            header_pending = false;
            continue;
        }
        let n = fields(raw).count();
        match width {
            None => {
                if let Some(lc) = opts.label_column {
                    if lc >= n {
                        return Err(invalid!("label column {lc} (0-based) does not exist: line {line} has {n} fields"));
                    }
                    if n == 1 {
                        return Err(Error::BadFormat(format!("line {line}: only the label column, no features")));
                    }
                }
                width = Some((n, line));
            }
            Some((w, first)) if w != n => {
                return Err(Error::BadFormat(format!(
                    "line {line}: {n} fields, but line {first} has {w} (ragged rows)"
                )));
            }
            _ => {}
        }
        for (j, f) in fields(raw).enumerate() {
            let v = number(f, line, j + 1)?;
            if Some(j) == opts.label_column {
                if v.fract() != 0.0 || v < i32::MIN as f64 || v > i32::MAX as f64 {
                    return Err(at(line, j + 1, format!("label \"{}\" is not an integer", shown(clean(f)))));
                }
                push(&mut labels, v as i32)?;
            } else {
                push(&mut values, v as f32)?;
            }
        }
        rows += 1;
    }
    let Some((w, _)) = width else {
        return Err(Error::BadFormat("no data rows".into()));
    };
    let cols = w - opts.label_column.is_some() as usize;
    let x = Matrix::from_vec(rows, cols, values)?;
    Ok((x, opts.label_column.map(|_| labels)))
}

/// Reads a delimited text file (plain or gzip; a regular file of at most
/// [`super::MAX_DATA_FILE_BYTES`], decompressed too). Errors name the file, line and column.
pub fn read(path: &Path, opts: &CsvOptions) -> Result<(Matrix, Option<Vec<i32>>)> {
    opts.validate()?;
    parse(&gzip::read_file(path)?, opts).map_err(|e| super::in_file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::bad_format as bad;

    #[test]
    fn parses_header_labels_crlf_quotes_and_blank_lines() {
        let text = b"a,b,label\r\n1, 2.5 ,3\r\n\r\n\"-4e1\",5,0\n";
        let o = CsvOptions { has_header: true, label_column: Some(2), ..Default::default() };
        let (x, l) = parse(text, &o).unwrap();
        assert_eq!((x.rows(), x.cols()), (2, 2));
        assert_eq!(x.as_slice(), &[1.0, 2.5, -40.0, 5.0]);
        assert_eq!(l, Some(vec![3, 0]));
        // The label column may be first, as in UCI HIGGS.
        let (x, l) =
            parse(b"1\t0.5\t0.25\n0\t-1\t2\n", &CsvOptions { label_column: Some(0), ..CsvOptions::tsv() }).unwrap();
        assert_eq!(x.as_slice(), &[0.5, 0.25, -1.0, 2.0]);
        assert_eq!(l, Some(vec![1, 0]));
        // Whitespace-separated.
        let (x, _) = parse(b"  1  2\t3\n4 5 6  \n", &CsvOptions { delimiter: b' ', ..Default::default() }).unwrap();
        assert_eq!((x.rows(), x.cols()), (2, 3));
    }

    #[test]
    fn errors_name_line_and_column() {
        let o = CsvOptions::default();
        assert_eq!(bad(parse(b"1,2,3\n4,x5,6\n", &o)), "line 2, column 2: cannot parse \"x5\" as a number");
        // Line numbers count blank lines and the header.
        let h = CsvOptions { has_header: true, ..o };
        assert!(bad(parse(b"h1,h2\n\n1,2\n3,nan\n", &h)).starts_with("line 4, column 2: non-finite"));
        assert!(bad(parse(b"1,inf\n", &o)).starts_with("line 1, column 2: non-finite"));
        assert!(bad(parse(b"1,1e39\n", &o)).contains("outside the f32 range"));
        assert!(bad(parse(b"1,,3\n", &o)).starts_with("line 1, column 2: empty field"));
        assert_eq!(bad(parse(b"1,2,3\n4,5\n", &o)), "line 2: 2 fields, but line 1 has 3 (ragged rows)");
        let l = CsvOptions { label_column: Some(0), ..o };
        assert!(bad(parse(b"1,2\n1.5,3\n", &l)).starts_with("line 2, column 1: label \"1.5\" is not an integer"));
        assert!(bad(parse(b"s,2\n", &l)).starts_with("line 1, column 1: cannot parse"));
        assert_eq!(bad(parse(b"\n\n", &o)), "no data rows");
    }

    #[test]
    fn options_are_validated() {
        let o = CsvOptions { label_column: Some(3), ..Default::default() };
        assert!(matches!(parse(b"1,2,3\n", &o), Err(Error::InvalidArgument(_))));
        for d in [b'1', b'e', b'\n', b'.', b'-', b'"', 200] {
            let o = CsvOptions { delimiter: d, ..Default::default() };
            assert!(matches!(parse(b"1\n", &o), Err(Error::InvalidArgument(_))), "delimiter {d}");
        }
        let o = CsvOptions { label_column: Some(0), ..Default::default() };
        assert!(bad(parse(b"1\n2\n", &o)).contains("no features"));
    }

    #[test]
    fn gzip_is_read_transparently() {
        let text = b"1,2\n3,4\n";
        let dir = std::env::temp_dir().join(format!("latent-csv-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("plain-name-but-gzip.csv");
        std::fs::write(&p, super::super::gzip::tests::gzip(text, 6, 0)).unwrap();
        let (x, l) = read(&p, &CsvOptions::default()).unwrap();
        assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
        assert!(l.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
