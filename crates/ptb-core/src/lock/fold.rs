//! Folding the journal into the lockfile one cell at a time.
//!
//! [`compact`] loads the lockfile and the journal whole: at the end of an
//! apply of 10,080 cells that is 30,000 records of ~20 inputs each, parsed
//! into owned strings, plus the rendered text — most of the apply's peak
//! memory, and growing with the experiment. [`fold`] writes the same bytes
//! holding one cell at a time: it indexes the journal (where each cell's
//! latest record of each stage is), then reads the lockfile cell by cell,
//! in the order both are sorted in, replacing the stages the journal has
//! and rendering each cell as [`render`] would. The new text goes to a
//! temporary file and is compared with the old one as it is written; the
//! file is replaced only if it changed, as [`Lockfile::save`] does.
//!
//! Anything it does not expect — a lockfile that is not in the canonical
//! form (hand-edited), cells out of order, a journal frame that is torn or
//! damaged — is left to [`compact`], which handles every case.

use super::journal::{MAGIC, checksum_matches, journal_path, parse_payload, remove_journal};
use super::replace::Replacement;
use super::*;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;

/// Fold the journal into the lockfile: `header` adjusts the lockfile's
/// header (it sees no cells), cells for which `keep` is false are dropped.
/// The caller holds the lockfile's guard. Returns whether the lockfile was
/// written and what the journal held; the journal is deleted.
pub fn fold(lock_path: &Path, header: impl Fn(&mut Lockfile), keep: impl Fn(&str) -> bool) -> Result<(bool, Replay), LockError> {
    if let Some(done) = stream(lock_path, &header, &keep)? {
        return Ok(done);
    }
    compact(lock_path, |l| {
        header(l);
        l.cells.retain(|id, _| keep(id));
    })
}

/// Where a frame's payload is in the journal file (`len` 0: none).
#[derive(Debug, Clone, Copy, Default)]
struct At {
    offset: u64,
    len: u32,
}

/// The stages a cell's latest frames are kept in slots for; any other
/// name (the journal is ptb's, but a lockfile may name others) in `other`.
const SLOTS: [&str; 3] = ["agent", "judge", "eval"];

/// A cell's records in the journal. Kept for every cell the journal has
/// (all of them, after a first apply), so it is small: fixed slots rather
/// than a list of owned stage names (~250 bytes a cell less).
#[derive(Debug)]
struct Journaled {
    /// Its first frame: a cell the lockfile lacks takes its model,
    /// benchmark, agent and seed from there (as [`journal`] replays it).
    first: At,
    /// The latest frame of each stage in [`SLOTS`].
    slots: [At; 3],
    /// The latest frame of any other stage.
    other: Vec<(String, At)>,
}

impl Journaled {
    fn set(&mut self, stage: String, at: At) {
        match SLOTS.iter().position(|s| *s == stage) {
            Some(i) => self.slots[i] = at,
            None => match self.other.iter_mut().find(|(s, _)| *s == stage) {
                Some((_, latest)) => *latest = at,
                None => self.other.push((stage, at)),
            },
        }
    }

    fn frames(&self) -> impl Iterator<Item = At> + '_ {
        self.slots.iter().copied().filter(|a| a.len > 0).chain(self.other.iter().map(|(_, a)| *a))
    }
}

enum Index {
    Absent,
    /// A frame that is not whole: [`compact`] skips it with a note.
    Damaged,
    Found {
        file: File,
        cells: BTreeMap<String, Journaled>,
        records: usize,
    },
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> LockError + '_ {
    move |source| LockError::Read { path: path.to_path_buf(), source }
}

fn index_journal(lock_path: &Path) -> Result<Index, LockError> {
    let path = journal_path(lock_path);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::Absent),
        Err(e) => return Err(read_err(&path)(e)),
    };
    let size = file.metadata().map_err(read_err(&path))?.len();
    let mut r = BufReader::with_capacity(64 << 10, &file);
    let mut magic = vec![0; MAGIC.len()];
    if r.read_exact(&mut magic).is_err() || magic != MAGIC {
        return Ok(Index::Damaged);
    }
    let mut pos = MAGIC.len() as u64;
    let (mut cells, mut records) = (BTreeMap::<String, Journaled>::new(), 0);
    let (mut head, mut payload) = (Vec::new(), Vec::new());
    loop {
        head.clear();
        let n = r.read_until(b'\n', &mut head).map_err(read_err(&path))?;
        if n == 0 {
            break;
        }
        // `\n@<len> <sum>\n`: the leading newline, then the head line.
        if head != b"\n" {
            return Ok(Index::Damaged);
        }
        head.clear();
        let n2 = r.read_until(b'\n', &mut head).map_err(read_err(&path))?;
        let Some((len, sum)) = std::str::from_utf8(&head)
            .ok()
            .and_then(|h| h.strip_prefix('@')?.strip_suffix('\n')?.split_once(' '))
            .and_then(|(len, sum)| Some((len.parse::<u64>().ok()?, sum)))
        else {
            return Ok(Index::Damaged);
        };
        let at = pos + (n + n2) as u64;
        if len > size.saturating_sub(at) || len == 0 || len > u32::MAX as u64 {
            return Ok(Index::Damaged);
        }
        payload.resize(len as usize, 0);
        r.read_exact(&mut payload).map_err(read_err(&path))?;
        if !checksum_matches(&payload, sum) {
            return Ok(Index::Damaged);
        }
        let Some((id, cell)) = parse_payload(&payload) else { return Ok(Index::Damaged) };
        let stage = cell.stages.into_keys().next().expect("a frame holds one stage");
        let at = At { offset: at, len: len as u32 };
        cells.entry(id).or_insert_with(|| Journaled { first: at, slots: [At::default(); 3], other: Vec::new() }).set(stage, at);
        records += 1;
        pos = at.offset + len;
    }
    Ok(Index::Found { file, cells, records })
}

fn frame_at(file: &File, at: At, buf: &mut Vec<u8>) -> Option<(String, CellRecord)> {
    buf.resize(at.len as usize, 0);
    file.read_exact_at(buf, at.offset).ok()?;
    parse_payload(buf)
}

/// The cell with the journal's records applied, as replaying would.
fn apply(file: &File, j: &Journaled, cell: Option<CellRecord>, buf: &mut Vec<u8>) -> Option<CellRecord> {
    let mut cell = match cell {
        Some(c) => c,
        None => CellRecord { stages: BTreeMap::new(), ..frame_at(file, j.first, buf)?.1 },
    };
    for at in j.frames() {
        cell.stages.extend(frame_at(file, at, buf)?.1.stages);
    }
    Some(cell)
}

/// Reads a canonical lockfile a block at a time: the header, then each
/// `cell` node whole.
struct Blocks<R> {
    r: R,
    line: String,
}

impl<R: BufRead> Blocks<R> {
    /// The next line, `None` at the end; text that is not UTF-8 is not canonical.
    fn next_line(&mut self) -> Result<Option<&str>, std::io::Error> {
        self.line.clear();
        match self.r.read_line(&mut self.line) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(&self.line)),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(Some("\u{0}not utf-8")),
            Err(e) => Err(e),
        }
    }
}

/// New bytes, compared with the old file as they are written.
struct Output {
    new: Replacement,
    old: Option<BufReader<File>>,
    same: bool,
    scratch: Vec<u8>,
}

impl Output {
    fn put(&mut self, bytes: &[u8]) -> Result<(), LockError> {
        self.new.write_all(bytes)?;
        if self.same {
            self.scratch.resize(bytes.len(), 0);
            self.same = self.old.as_mut().is_some_and(|o| o.read_exact(&mut self.scratch).is_ok()) && self.scratch == bytes;
        }
        Ok(())
    }

    /// Whether the new text is the old one, byte for byte.
    fn unchanged(&mut self) -> bool {
        self.same && self.old.as_mut().is_some_and(|o| o.fill_buf().is_ok_and(|b| b.is_empty()))
    }
}

/// `None`: not a case for streaming; [`compact`] does it.
pub(super) fn stream(lock_path: &Path, header: &dyn Fn(&mut Lockfile), keep: &dyn Fn(&str) -> bool) -> Result<Option<(bool, Replay)>, LockError> {
    let (journal, mut journaled, records) = match index_journal(lock_path)? {
        Index::Damaged => return Ok(None),
        Index::Absent => (None, BTreeMap::new(), 0),
        Index::Found { file, cells, records } => (Some(file), cells, records),
    };
    let rerr = read_err(lock_path);
    let old = match File::open(lock_path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(rerr(e)),
    };
    // The header: every line before the first cell.
    let mut blocks = old.as_ref().map(|f| Blocks { r: BufReader::with_capacity(256 << 10, f), line: String::new() });
    let mut head = String::new();
    let mut pending: Option<String> = None;
    if let Some(b) = &mut blocks {
        while let Some(line) = b.next_line().map_err(read_err(lock_path))? {
            if line.starts_with("cell \"") {
                pending = Some(line.to_string());
                break;
            }
            head.push_str(line);
        }
    }
    let mut hdr = match &old {
        None => Lockfile::default(),
        Some(_) => match fast::parse_canonical(&head) {
            Some(l) if l.cells.is_empty() => l,
            _ => return Ok(None),
        },
    };
    header(&mut hdr);
    hdr.cells.clear();
    let compare = match &old {
        Some(_) => Some(BufReader::with_capacity(256 << 10, File::open(lock_path).map_err(read_err(lock_path))?)),
        None => None,
    };
    let mut out = Output { new: Replacement::create(lock_path)?, old: compare, same: old.is_some(), scratch: Vec::new() };
    out.put(render(&hdr).as_bytes())?;

    let (mut text, mut buf) = (String::new(), Vec::new());
    let mut emit = |out: &mut Output, id: &str, cell: &CellRecord| -> Result<(), LockError> {
        if keep(id) {
            text.clear();
            format::render_cell(&mut text, id, cell);
            out.put(text.as_bytes())?;
        }
        Ok(())
    };
    let mut last: Option<String> = None;
    let mut block = String::new();
    while let Some(first) = pending.take() {
        // One cell node: its `cell` line to the `}` that closes it.
        block.clear();
        block.push_str(&first);
        let b = blocks.as_mut().expect("a pending line comes from the file");
        let mut closed = false;
        while let Some(line) = b.next_line().map_err(read_err(lock_path))? {
            block.push_str(line);
            if line == "}\n" || line == "}" {
                closed = true;
                break;
            }
        }
        if !closed {
            return Ok(None);
        }
        match b.next_line().map_err(read_err(lock_path))? {
            Some(line) if line.starts_with("cell \"") => pending = Some(line.to_string()),
            Some(_) => return Ok(None),
            None => {}
        }
        let mut parsed = match fast::parse_canonical(&format!("version {LOCK_VERSION}\n{block}")) {
            Some(l) => l,
            None => return Ok(None),
        };
        let Some((id, cell)) = parsed.cells.pop_first() else { return Ok(None) };
        // Only a cell in the block, and cells in strictly increasing order
        // (the map a whole-file read builds would merge duplicates).
        if parsed != Lockfile::default() || last.as_ref().is_some_and(|l| *l >= id) {
            return Ok(None);
        }
        // Cells only the journal has, sorted before this one.
        while let Some((jid, _)) = journaled.first_key_value()
            && *jid < id
        {
            let (jid, j) = journaled.pop_first().expect("peeked");
            let Some(c) = apply(journal.as_ref().expect("indexed"), &j, None, &mut buf) else { return Ok(None) };
            emit(&mut out, &jid, &c)?;
        }
        let cell = match journaled.remove(&id) {
            Some(j) => match apply(journal.as_ref().expect("indexed"), &j, Some(cell), &mut buf) {
                Some(c) => c,
                None => return Ok(None),
            },
            None => cell,
        };
        emit(&mut out, &id, &cell)?;
        last = Some(id);
    }
    while let Some((jid, j)) = journaled.pop_first() {
        let Some(c) = apply(journal.as_ref().expect("indexed"), &j, None, &mut buf) else { return Ok(None) };
        emit(&mut out, &jid, &c)?;
    }
    let written = !out.unchanged();
    if written {
        out.new.commit()?;
    }
    let replay = Replay { present: journal.is_some(), records, ignored_bytes: 0 };
    if replay.present {
        remove_journal(lock_path)?;
    }
    Ok(Some((written, replay)))
}
