//! A stage's log: its output split into lines, redacted, and written to the
//! store with bounded memory and bounded size, whatever the stage prints.
//!
//! - Lines longer than [`MAX_LINE`] bytes (progress bars, a stage printing
//!   megabytes without a newline) are cut into pieces; a cut never falls
//!   inside an occurrence of a secret, so redaction holds across pieces
//!   and across the chunks the engine delivers.
//! - The file keeps the first [`HEAD_BYTES`] and the last [`TAIL_BYTES`] of
//!   output (the tail is where a failure's cause is), with a line saying
//!   how much was left out between them.

use crate::{LineSink, Redactor};
use std::collections::VecDeque;
use std::io::Write;

/// The longest line kept whole.
pub const MAX_LINE: usize = 16 << 10;
/// Bytes of output written before the log starts keeping only its tail.
pub const HEAD_BYTES: u64 = 16 << 20;
/// Bytes of the latest output kept once the head is full.
pub const TAIL_BYTES: usize = 16 << 20;

/// One output stream's partial line.
#[derive(Debug, Default)]
struct Partial {
    buf: Vec<u8>,
}

/// Where a cut at or before `limit` may fall in `buf`: not inside an
/// occurrence of a secret, not inside a UTF-8 character, never at 0.
fn cut_point(buf: &[u8], limit: usize, secrets: &[&[u8]]) -> usize {
    let mut cut = limit.min(buf.len());
    // Move the cut before any secret that straddles it (repeat: moving it
    // can land inside an earlier one).
    loop {
        let straddling = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| {
                let lo = cut.saturating_sub(s.len() - 1);
                let hi = (cut + s.len() - 1).min(buf.len());
                buf[lo..hi].windows(s.len()).position(|w| w == *s).map(|p| lo + p).filter(|&start| start < cut && start + s.len() > cut)
            })
            .min();
        match straddling {
            Some(start) if start > 0 => cut = start,
            // A secret at the very start: cut after it instead.
            Some(_) => return secrets.iter().filter(|s| buf.starts_with(s)).map(|s| s.len()).max().unwrap_or(cut),
            None => break,
        }
    }
    while cut > 0 && cut < buf.len() && (buf[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    if cut == 0 { limit.min(buf.len()) } else { cut }
}

/// A stage's log file plus the line sink, fed with raw output bytes.
pub struct StageLog<'a> {
    file: std::fs::File,
    redactor: Redactor,
    sink: &'a dyn LineSink,
    streams: [Partial; 2],
    written: u64,
    tail: VecDeque<String>,
    tail_bytes: usize,
    omitted_bytes: u64,
    omitted_lines: u64,
    head_cap: u64,
    tail_cap: usize,
}

impl<'a> StageLog<'a> {
    pub fn new(file: std::fs::File, redactor: Redactor, sink: &'a dyn LineSink) -> Self {
        Self::with_caps(file, redactor, sink, HEAD_BYTES, TAIL_BYTES)
    }

    pub fn with_caps(file: std::fs::File, redactor: Redactor, sink: &'a dyn LineSink, head_cap: u64, tail_cap: usize) -> Self {
        StageLog {
            file,
            redactor,
            sink,
            streams: Default::default(),
            written: 0,
            tail: VecDeque::new(),
            tail_bytes: 0,
            omitted_bytes: 0,
            omitted_lines: 0,
            head_cap,
            tail_cap,
        }
    }

    /// Output bytes from stream 0 (stdout) or 1 (stderr).
    pub fn push(&mut self, stream: usize, bytes: &[u8]) {
        let mut buf = std::mem::take(&mut self.streams[stream].buf);
        buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(n) = buf[start..].iter().position(|&b| b == b'\n') {
            self.emit(&buf[start..start + n]);
            start += n + 1;
        }
        buf.drain(..start);
        // A stage printing without newlines must not grow ptb's memory.
        while buf.len() > MAX_LINE {
            let secrets = self.redactor.values();
            let cut = cut_point(&buf, MAX_LINE, &secrets);
            self.emit(&buf[..cut]);
            buf.drain(..cut);
        }
        self.streams[stream].buf = buf;
    }

    fn emit(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let line = self.redactor.apply(text.trim_end_matches('\r'));
        self.sink.line(&line);
        if self.written < self.head_cap {
            self.written += line.len() as u64 + 1;
            // A full disk must not kill the stage; the log is best-effort.
            let _ = writeln!(self.file, "{line}");
            return;
        }
        self.tail_bytes += line.len() + 1;
        self.tail.push_back(line);
        while self.tail_bytes > self.tail_cap
            && let Some(old) = self.tail.pop_front()
        {
            self.tail_bytes -= old.len() + 1;
            self.omitted_bytes += old.len() as u64 + 1;
            self.omitted_lines += 1;
        }
    }

    /// Flush partial lines and the kept tail.
    pub fn finish(mut self) {
        for i in 0..2 {
            let rest = std::mem::take(&mut self.streams[i].buf);
            if !rest.is_empty() {
                self.emit(&rest);
            }
        }
        if self.omitted_lines > 0 {
            let _ = writeln!(
                self.file,
                "[ptb: {} line(s), {} byte(s) of output left out here; the log keeps the first {} and the last {} bytes]",
                self.omitted_lines, self.omitted_bytes, self.head_cap, self.tail_cap
            );
        }
        for line in std::mem::take(&mut self.tail) {
            let _ = writeln!(self.file, "{line}");
        }
        let _ = self.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn log_of(secrets: &[(&str, &str)], head: u64, tail: usize, feed: impl FnOnce(&mut StageLog)) -> (String, Vec<String>) {
        let f = tempfile::NamedTempFile::new().unwrap();
        let names: Vec<(String, String)> = secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lines = Mutex::new(Vec::new());
        let sink = |l: &str| lines.lock().unwrap().push(l.to_string());
        let mut log = StageLog::with_caps(f.reopen().unwrap(), Redactor::new(names.iter().map(|(k, v)| (k, v))), &sink, head, tail);
        feed(&mut log);
        log.finish();
        (std::fs::read_to_string(f.path()).unwrap(), lines.into_inner().unwrap())
    }

    #[test]
    fn a_secret_split_across_chunks_and_long_lines_is_redacted() {
        let secret = "sk-THE-SECRET-VALUE";
        let (text, lines) = log_of(&[("KEY", secret)], HEAD_BYTES, TAIL_BYTES, |log| {
            // Across two chunks of one line.
            log.push(0, b"token=sk-THE-SE");
            log.push(0, b"CRET-VALUE ok\n");
            // In a line far longer than MAX_LINE, with the secret where a
            // naive cut would split it, delivered byte-chunk by chunk.
            let mut long = "x".repeat(MAX_LINE - 5).into_bytes();
            long.extend_from_slice(secret.as_bytes());
            long.extend(std::iter::repeat_n(b'y', MAX_LINE * 2));
            long.extend_from_slice(secret.as_bytes());
            for chunk in long.chunks(1000) {
                log.push(1, chunk);
            }
            log.push(1, b"\n");
        });
        assert!(!text.contains(secret), "a secret reached the log");
        assert!(lines.iter().all(|l| !l.contains(secret) && l.len() <= MAX_LINE + 64));
        assert_eq!(text.matches("[REDACTED:KEY]").count(), 3, "{}", &text[..200]);
    }

    #[test]
    fn the_log_keeps_head_and_tail_within_its_caps() {
        let (text, lines) = log_of(&[], 1000, 1000, |log| {
            for i in 0..10_000 {
                log.push(0, format!("line {i}\n").as_bytes());
            }
        });
        assert!(text.len() < 2300, "{} bytes", text.len());
        assert!(text.starts_with("line 0\n"));
        assert!(text.ends_with("line 9999\n"));
        assert!(text.contains("line(s),") && text.contains("left out here"), "{text}");
        assert_eq!(lines.len(), 10_000, "the live display still sees every line");
    }

    #[test]
    fn cut_points_avoid_secrets_and_characters() {
        let s: &[u8] = b"SECRET";
        assert_eq!(cut_point(b"aaaSECRETbbb", 5, &[s]), 3);
        assert_eq!(cut_point(b"SECRETbbb", 3, &[s]), 6);
        assert_eq!(cut_point("aé".as_bytes(), 2, &[]), 1);
        assert_eq!(cut_point(b"abcdef", 4, &[s]), 4);
    }
}
