//! The n-gram index of a benchmark's test items and the scan of a text
//! against it. Text is normalised to words (lowercased, every character
//! that is not a letter or digit a separator, so punctuation and runs of
//! whitespace vanish); JSON escapes (`\n`, `\"`, `\u00e9`) are decoded on
//! the way, so a test item inside a JSONL string matches the item itself.
//! Each n-gram of words is a 64-bit rolling hash: no strings are kept.
//!
//! A text shorter than n words (a BFCL question, a short AIME problem) has
//! no n-gram; one of at least `min_words` words is indexed whole, as the
//! gram of all its words, and found only as that exact word sequence
//! (coverage 1 or nothing). Shorter texts are left out: a phrase of a few
//! words turns up by chance.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The keys are already mixed 64-bit hashes: hashing them again is waste.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
pub type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// One word of a text: its hash, where it starts (byte offset) and on which line (1-based).
#[derive(Debug, Clone, Copy)]
pub struct Word {
    pub hash: u64,
    pub start: usize,
    pub end: usize,
    pub line: usize,
}

fn mix(mut z: u64) -> u64 {
    // SplitMix64's finaliser: FNV alone leaves short words' hashes close together.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

const FNV: u64 = 0xcbf29ce484222325;

/// The normalised words of `text`.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::with_capacity(text.len() / 5);
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut line = 1;
    let mut cur: Option<(u64, usize, usize)> = None; // (fnv, start, line)
    let flush = |cur: &mut Option<(u64, usize, usize)>, end: usize, out: &mut Vec<Word>| {
        if let Some((h, start, line)) = cur.take() {
            out.push(Word { hash: mix(h), start, end, line });
        }
    };
    let feed = |cur: &mut Option<(u64, usize, usize)>, c: char, at: usize, line: usize| {
        let (h, _, _) = cur.get_or_insert((FNV, at, line));
        let mut buf = [0u8; 4];
        for lc in c.to_lowercase() {
            for b in lc.encode_utf8(&mut buf).bytes() {
                *h = (*h ^ u64::from(b)).wrapping_mul(0x100000001b3);
            }
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if b.is_ascii_alphanumeric() {
                let (h, _, _) = cur.get_or_insert((FNV, i, line));
                *h = (*h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x100000001b3);
                i += 1;
                continue;
            }
            flush(&mut cur, i, &mut out);
            if b == b'\n' {
                line += 1;
            } else if b == b'\\' && i + 1 < bytes.len() {
                match bytes[i + 1] {
                    b'n' | b't' | b'r' | b'b' | b'f' | b'"' | b'\\' | b'/' => i += 1,
                    b'u' if i + 6 <= bytes.len() => {
                        let hex = std::str::from_utf8(&bytes[i + 2..i + 6]).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
                        if let Some(c) = hex.and_then(char::from_u32) {
                            if c.is_alphanumeric() {
                                feed(&mut cur, c, i, line);
                            }
                            i += 6;
                            continue;
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
            continue;
        }
        let c = text[i..].chars().next().expect("char boundary");
        if c.is_alphanumeric() {
            feed(&mut cur, c, i, line);
        } else {
            flush(&mut cur, i, &mut out);
        }
        i += c.len_utf8();
    }
    flush(&mut cur, bytes.len(), &mut out);
    out
}

const P: u64 = 0x100000001b3 | 1 << 63;

/// The hash of every window of `n` words, in order (`words.len() - n + 1` of them).
pub fn grams(words: &[Word], n: usize) -> Vec<u64> {
    if n == 0 || words.len() < n {
        return vec![];
    }
    let pn = (1..n).fold(1u64, |a, _| a.wrapping_mul(P));
    let mut h = 0u64;
    let mut out = Vec::with_capacity(words.len() - n + 1);
    for (i, w) in words.iter().enumerate() {
        if i >= n {
            h = h.wrapping_sub(words[i - n].hash.wrapping_mul(pn));
        }
        h = h.wrapping_mul(P).wrapping_add(w.hash);
        if i + 1 >= n {
            out.push(mix(h));
        }
    }
    out
}

/// A test item: an id and its texts (question, solution, tests…), each
/// indexed on its own so an item's coverage is that of its best-covered text.
#[derive(Debug, Clone)]
pub struct TestItem {
    pub id: String,
    pub segments: Vec<String>,
}

pub struct Index {
    pub n: usize,
    /// The lengths (< n) of the short texts indexed whole.
    short_lens: Vec<usize>,
    pub items: Vec<TestItem>,
    /// gram → the (item, segment) pairs that contain it.
    grams: IdMap<u64, Vec<(u32, u16)>>,
    /// (item, segment) → its number of distinct indexed grams.
    totals: HashMap<(u32, u16), usize>,
    /// Items with at least one indexed gram (shorter texts cannot be found).
    pub indexed_items: usize,
    /// Grams dropped as boilerplate (in more than `max_items` items).
    pub dropped_grams: usize,
}

impl Index {
    /// Index `items` with `n`-grams; a gram in more than `max_items` distinct
    /// items is boilerplate (a shared instruction, a common import line) and
    /// is left out, so that it neither matches nor counts.
    pub fn build(items: Vec<TestItem>, n: usize, min_words: usize, max_items: usize) -> Index {
        let mut grams: IdMap<u64, Vec<(u32, u16)>> = IdMap::default();
        let mut short_lens = std::collections::BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            for (s, seg) in item.segments.iter().enumerate() {
                let mut seen: IdSet<u64> = IdSet::default();
                let ws = words(seg);
                // A short text is one gram of all its words (a 64-bit hash
                // of another length than n cannot meet an n-gram but by chance).
                let k = if ws.len() < n && ws.len() >= min_words.max(1) { ws.len() } else { n };
                if k < n {
                    short_lens.insert(k);
                }
                for g in self::grams(&ws, k) {
                    if seen.insert(g) {
                        grams.entry(g).or_default().push((i as u32, s as u16));
                    }
                }
            }
        }
        let mut dropped = 0;
        grams.retain(|_, v| {
            let mut ids: Vec<u32> = v.iter().map(|(i, _)| *i).collect();
            ids.dedup();
            let keep = ids.len() <= max_items;
            dropped += usize::from(!keep);
            keep
        });
        let mut totals: HashMap<(u32, u16), usize> = HashMap::new();
        for v in grams.values() {
            for k in v {
                *totals.entry(*k).or_default() += 1;
            }
        }
        let indexed_items = totals.keys().map(|(i, _)| *i).collect::<HashSet<_>>().len();
        Index { n, short_lens: short_lens.into_iter().collect(), items, grams, totals, indexed_items, dropped_grams: dropped }
    }

    pub fn gram_count(&self) -> usize {
        self.grams.len()
    }

    /// The test items `text` contains, best-covered first.
    pub fn scan(&self, text: &str) -> Vec<Hit> {
        let ws = words(text);
        let mut matched: HashMap<(u32, u16), IdSet<u64>> = HashMap::new();
        // item → (word index, length) of its first matched gram
        let mut first: HashMap<u32, (usize, usize)> = HashMap::new();
        for len in std::iter::once(self.n).chain(self.short_lens.iter().copied()) {
            for (pos, g) in grams(&ws, len).iter().enumerate() {
                if let Some(v) = self.grams.get(g) {
                    for &(item, seg) in v {
                        matched.entry((item, seg)).or_default().insert(*g);
                        let e = first.entry(item).or_insert((pos, len));
                        if pos < e.0 {
                            *e = (pos, len);
                        }
                    }
                }
            }
        }
        let mut best: HashMap<u32, f64> = HashMap::new();
        for (k, set) in &matched {
            let cov = set.len() as f64 / self.totals[k] as f64;
            let e = best.entry(k.0).or_insert(0.0);
            if cov > *e {
                *e = cov;
            }
        }
        let mut hits: Vec<Hit> = best
            .into_iter()
            .map(|(item, coverage)| {
                let (pos, len) = first[&item];
                let (w0, w1) = (ws[pos], ws[pos + len - 1]);
                Hit { item: item as usize, coverage, line: w0.line, offset: w0.start, end: w1.end }
            })
            .collect();
        hits.sort_by(|a, b| b.coverage.total_cmp(&a.coverage).then(a.item.cmp(&b.item)));
        hits
    }
}

/// One test item found in a text.
#[derive(Debug, Clone)]
pub struct Hit {
    pub item: usize,
    /// The fraction of the item's best-covered text whose n-grams occur.
    pub coverage: f64,
    /// Line and byte offset of the first matching n-gram, and where it ends.
    pub line: usize,
    pub offset: usize,
    pub end: usize,
}
