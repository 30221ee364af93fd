//! The text inside columnar data files: Hugging Face `datasets` cache files
//! (Arrow IPC, usually the *stream* format: `cache-*.arrow`,
//! `data-00000-of-00001.arrow`; the *file* format too) and Parquet. Every
//! string value, nested ones included (a `messages` list of structs), is
//! gathered per column into one text with a map from offsets to rows, so
//! the n-gram scan runs once per column and a hit names column and row.
//!
//! Hostile input: the whole file is read into memory first (the caller has
//! checked its size against the policy's cap), every length the file
//! claims is checked against what is there before the decoders see it, the
//! decoded text is capped at the same number of bytes, and a decoder panic
//! is caught: whatever goes wrong is an error string for a `note`, never a
//! crash and never an allocation the file's own size does not bound.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use std::collections::BTreeMap;

/// Which columnar format a file is in, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Arrow,
    Parquet,
}

impl Format {
    pub fn of_ext(ext: &str) -> Option<Format> {
        match ext {
            "arrow" | "feather" | "ipc" => Some(Format::Arrow),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }
}

/// One column's strings, joined: `text` holds every value followed by a
/// newline; `rows[k] = (offset, row)` says value k starts at `offset` and
/// belongs to top-level row `row`.
#[derive(Debug, Default)]
pub struct ColumnText {
    pub column: String,
    pub text: Vec<u8>,
    rows: Vec<(usize, u64)>,
}

impl ColumnText {
    /// The top-level row holding byte `offset` of `text`.
    pub fn row_at(&self, offset: usize) -> u64 {
        match self.rows.binary_search_by_key(&offset, |r| r.0) {
            Ok(k) => self.rows[k].1,
            Err(0) => 0,
            Err(k) => self.rows[k - 1].1,
        }
    }
}

/// What a file held: its string columns (in column order), and whether the
/// cap cut the text short.
#[derive(Debug, Default)]
pub struct Texts {
    pub columns: Vec<ColumnText>,
    pub rows: u64,
    pub truncated: bool,
}

struct Gather {
    cap: usize,
    used: usize,
    truncated: bool,
    columns: BTreeMap<String, ColumnText>,
    order: Vec<String>,
}

impl Gather {
    fn push(&mut self, column: &str, row: u64, value: &[u8]) {
        if self.used + value.len() + 1 > self.cap {
            self.truncated = true;
            return;
        }
        self.used += value.len() + 1;
        if !self.columns.contains_key(column) {
            self.order.push(column.to_string());
            self.columns.insert(column.to_string(), ColumnText { column: column.to_string(), ..Default::default() });
        }
        let c = self.columns.get_mut(column).expect("inserted above");
        c.rows.push((c.text.len(), row));
        c.text.extend_from_slice(value);
        c.text.push(b'\n');
    }

    /// Every string in `array`, whose element i belongs to top-level row `rows[i]`.
    fn array(&mut self, name: &str, array: &dyn Array, rows: &[u64]) {
        match array.data_type() {
            DataType::Utf8 => {
                let a = array.as_string::<i32>();
                for (i, v) in a.iter().enumerate() {
                    if let Some(v) = v {
                        self.push(name, rows[i], v.as_bytes());
                    }
                }
            }
            DataType::LargeUtf8 => {
                let a = array.as_string::<i64>();
                for (i, v) in a.iter().enumerate() {
                    if let Some(v) = v {
                        self.push(name, rows[i], v.as_bytes());
                    }
                }
            }
            DataType::Utf8View => {
                let a = array.as_string_view();
                for (i, v) in a.iter().enumerate() {
                    if let Some(v) = v {
                        self.push(name, rows[i], v.as_bytes());
                    }
                }
            }
            DataType::List(_) => {
                let a = array.as_list::<i32>();
                let child = child_rows(a.value_offsets().iter().map(|o| *o as usize), rows);
                self.array(name, a.values().as_ref(), &child);
            }
            DataType::LargeList(_) => {
                let a = array.as_list::<i64>();
                let child = child_rows(a.value_offsets().iter().map(|o| *o as usize), rows);
                self.array(name, a.values().as_ref(), &child);
            }
            DataType::FixedSizeList(_, n) => {
                let a = array.as_fixed_size_list();
                let n = (*n).max(0) as usize;
                let child: Vec<u64> = rows.iter().flat_map(|r| std::iter::repeat_n(*r, n)).collect();
                self.array(name, a.values().as_ref(), &child);
            }
            DataType::Struct(fields) => {
                let a = array.as_struct();
                for (f, col) in fields.iter().zip(a.columns()) {
                    self.array(&format!("{name}.{}", f.name()), col.as_ref(), rows);
                }
            }
            _ => {}
        }
    }

    /// Gather every batch a reader yields, until the text cap; the rows read.
    fn batches<E: std::fmt::Display>(&mut self, reader: impl IntoIterator<Item = Result<RecordBatch, E>>) -> Result<u64, String> {
        let mut rows = 0u64;
        for b in reader {
            let b = b.map_err(|e| e.to_string())?;
            self.batch(&b, rows);
            rows += b.num_rows() as u64;
            if self.truncated {
                break;
            }
        }
        Ok(rows)
    }

    fn batch(&mut self, batch: &RecordBatch, first_row: u64) {
        let rows: Vec<u64> = (first_row..first_row + batch.num_rows() as u64).collect();
        for (f, col) in batch.schema().fields().iter().zip(batch.columns()) {
            self.array(f.name(), col.as_ref(), &rows);
        }
    }
}

/// Rows of a list's values: value j of list i belongs to i's row. A list's
/// values may extend past the last offset (sliced arrays); those are no row's.
fn child_rows(offsets: impl Iterator<Item = usize>, rows: &[u64]) -> Vec<u64> {
    let offsets: Vec<usize> = offsets.collect();
    let mut out = Vec::new();
    for (i, w) in offsets.windows(2).enumerate() {
        if out.len() < w[0] {
            out.resize(w[0], rows.get(i).copied().unwrap_or(0));
        }
        out.extend(std::iter::repeat_n(rows.get(i).copied().unwrap_or(0), w[1].saturating_sub(w[0])));
    }
    let last = rows.last().copied().unwrap_or(0);
    out.resize(out.len().max(offsets.last().copied().unwrap_or(0)), last);
    out
}

/// Read the strings of `bytes` (a whole `.arrow` or `.parquet` file),
/// keeping at most `cap` bytes of text.
pub fn read(format: Format, bytes: Vec<u8>, cap: usize) -> Result<Texts, String> {
    let run = move || -> Result<Texts, String> {
        let mut g = Gather { cap, used: 0, truncated: false, columns: BTreeMap::new(), order: vec![] };
        let rows = match format {
            Format::Arrow => arrow(bytes, &mut g)?,
            Format::Parquet => parquet(bytes, &mut g)?,
        };
        let mut columns = g.columns;
        let cols = g.order.iter().filter_map(|c| columns.remove(c)).collect();
        Ok(Texts { columns: cols, rows, truncated: g.truncated })
    };
    // The arrow-rs decoders validate what they read, but a decoder bug
    // on hostile input must cost the run a note, not the judge.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "the decoder failed: {}",
            p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied()).unwrap_or("panic")
        )),
    }
}

const ARROW_FILE_MAGIC: &[u8] = b"ARROW1";

fn arrow(bytes: Vec<u8>, g: &mut Gather) -> Result<u64, String> {
    if bytes.starts_with(ARROW_FILE_MAGIC) {
        // The file format: a stream between the magic (padded to 8) and the footer.
        let end = bytes.len().saturating_sub(ARROW_FILE_MAGIC.len() + 4);
        check_stream(bytes.get(8..end).ok_or("too short for an Arrow file")?)?;
        let r = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None).map_err(|e| e.to_string())?;
        return g.batches(r);
    }
    check_stream(&bytes)?;
    let r = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(|e| e.to_string())?;
    g.batches(r)
}

/// Walk an IPC stream's framing and check that every message's metadata
/// and body lie inside `bytes`: the reader allocates what a message claims
/// before reading it, so a garbage length would be a huge allocation.
fn check_stream(bytes: &[u8]) -> Result<(), String> {
    let u32_at = |p: usize| bytes.get(p..p + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    let mut pos = 0usize;
    loop {
        let Some(mut len) = u32_at(pos) else {
            return Ok(()); // no end-of-stream marker: a cut file, the reader says so
        };
        pos += 4;
        if len == 0xFFFF_FFFF {
            len = u32_at(pos).ok_or("truncated after a continuation marker")?;
            pos += 4;
        }
        if len == 0 {
            return Ok(());
        }
        let meta = bytes.get(pos..pos + len as usize).ok_or_else(|| format!("a message of {len} bytes at offset {pos} runs past the end of the file"))?;
        let message = arrow_ipc::root_as_message(meta).map_err(|e| format!("not an Arrow IPC message at offset {pos}: {e}"))?;
        let body = usize::try_from(message.bodyLength()).map_err(|_| format!("a negative body length at offset {pos}"))?;
        pos = pos
            .checked_add(len as usize)
            .and_then(|p| p.checked_add(body))
            .filter(|p| *p <= bytes.len())
            .ok_or_else(|| format!("a message body of {body} bytes at offset {pos} runs past the end of the file"))?;
    }
}

fn parquet(bytes: Vec<u8>, g: &mut Gather) -> Result<u64, String> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    // In memory, a column chunk is a slice of the file: a chunk that claims
    // more than the file holds is an error, not an allocation.
    let data = bytes::Bytes::from(bytes);
    let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(|e| e.to_string())?;
    let meta = builder.metadata().clone();
    // Only the byte-array leaves (strings; binary ones are read and skipped).
    // Memory: one batch of rows at a time, and the text capped by `Gather`.
    let schema = meta.file_metadata().schema_descr();
    let leaves: Vec<usize> = (0..schema.num_columns()).filter(|&i| schema.column(i).physical_type() == parquet::basic::Type::BYTE_ARRAY).collect();
    let mask = ProjectionMask::leaves(schema, leaves);
    let reader = builder.with_projection(mask).with_batch_size(1024).build().map_err(|e| e.to_string())?;
    g.batches(reader)
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Arrow => "Arrow IPC",
            Format::Parquet => "Parquet",
        })
    }
}
