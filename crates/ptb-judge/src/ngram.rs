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

/// One word of a text: its hash and where it lies (byte offsets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Word {
    pub hash: u64,
    pub start: usize,
    pub end: usize,
}

fn mix(mut z: u64) -> u64 {
    // SplitMix64's finaliser: the per-byte hash below is linear, this spreads it.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// A random 64-bit value per byte (SplitMix64 of the byte), for tabulation
/// hashing of words: `h = rotl(h, 7) ^ T[b]` per byte costs a cycle or two
/// where FNV's multiply is a 3-cycle dependency chain per byte. Positions
/// differ by a rotation, so two words collide only by chance (or past 64
/// bytes, where rotations repeat; mixing the length in at the end separates
/// the rest).
const TABLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut z = (i as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        t[i] = z ^ (z >> 31);
        i += 1;
    }
    t
};

/// Per ASCII byte: its lowercase form when a letter or digit, 0 for a separator.
const CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphanumeric() { b.to_ascii_lowercase() } else { 0 };
        i += 1;
    }
    t
};

#[inline(always)]
fn step(h: u64, b: u8) -> u64 {
    h.rotate_left(7) ^ TABLE[b as usize]
}

/// Feed a non-ASCII letter, lowercased, byte by byte.
fn feed(h: u64, c: char) -> u64 {
    let mut buf = [0u8; 4];
    c.to_lowercase().fold(h, |h, lc| lc.encode_utf8(&mut buf).bytes().fold(h, step))
}

/// The character at the start of `b` when it is valid UTF-8: (char, length).
fn char_at(b: &[u8]) -> Option<(char, usize)> {
    let len = match b[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(b.get(..len)?).ok()?;
    s.chars().next().map(|c| (c, len))
}

/// The normalised words of a text, one at a time, without allocating.
/// Bytes that are not UTF-8 are separators (a binary file scans as text).
pub struct Words<'a> {
    bytes: &'a [u8],
    i: usize,
}

impl<'a> Words<'a> {
    pub fn new(bytes: &'a [u8]) -> Words<'a> {
        Words { bytes, i: 0 }
    }
}

impl Iterator for Words<'_> {
    type Item = Word;

    #[inline]
    fn next(&mut self) -> Option<Word> {
        let b = self.bytes;
        let mut i = self.i;
        let mut h = 0u64;
        let mut start = usize::MAX;
        while i < b.len() {
            let c = b[i];
            if c < 0x80 {
                let l = CLASS[c as usize];
                if l != 0 {
                    if start == usize::MAX {
                        start = i;
                    }
                    h = step(h, l);
                    i += 1;
                    continue;
                }
                // A JSON escape: `\n`, `\"`… separate words; `\u00e9` is the
                // character itself, part of the word when a letter.
                let mut skip = 1;
                if c == b'\\' && i + 1 < b.len() {
                    match b[i + 1] {
                        b'n' | b't' | b'r' | b'b' | b'f' | b'"' | b'\\' | b'/' => skip = 2,
                        b'u' if i + 6 <= b.len() => {
                            let hex = std::str::from_utf8(&b[i + 2..i + 6]).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
                            if let Some(ch) = hex.and_then(char::from_u32).filter(|ch| ch.is_alphanumeric()) {
                                if start == usize::MAX {
                                    start = i;
                                }
                                h = feed(h, ch);
                                i += 6;
                                continue;
                            }
                        }
                        _ => {}
                    }
                }
                if start != usize::MAX {
                    self.i = i;
                    return Some(Word { hash: mix(h), start, end: i });
                }
                i += skip;
                continue;
            }
            match char_at(&b[i..]) {
                Some((ch, len)) if ch.is_alphanumeric() => {
                    if start == usize::MAX {
                        start = i;
                    }
                    h = feed(h, ch);
                    i += len;
                }
                other => {
                    if start != usize::MAX {
                        self.i = i;
                        return Some(Word { hash: mix(h), start, end: i });
                    }
                    i += other.map_or(1, |(_, len)| len);
                }
            }
        }
        self.i = b.len();
        (start != usize::MAX).then(|| Word { hash: mix(h), start, end: b.len() })
    }
}

/// The normalised words of `text`.
pub fn words(text: &str) -> Vec<Word> {
    Words::new(text.as_bytes()).collect()
}

const P: u64 = 0x100000001b3 | 1 << 63;

/// The gram hash of all of `hashes` (word hashes), as `grams` computes it.
fn hash_of(hashes: &[u64]) -> u64 {
    mix(hashes.iter().fold(0u64, |h, w| h.wrapping_mul(P).wrapping_add(*w)))
}

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
    /// Short texts (fewer than n words, indexed whole) by the hash of their
    /// last `tail` words (`tail` = the shortest one's length): (length, hash
    /// of the whole text). The scan rolls one hash of `tail` words beside the
    /// n-gram's and checks a candidate's full length only on a hit, instead
    /// of rolling one hash per short length.
    short: IdMap<u64, Vec<(usize, u64)>>,
    tail: usize,
    pub items: Vec<TestItem>,
    /// gram → the (item, segment) pairs that contain it.
    grams: IdMap<u64, Vec<(u32, u16)>>,
    /// A one-hash Bloom filter of `grams`' keys (about 16 bits a gram, so
    /// ~6% false candidates): the scan's common case, a gram in no test item,
    /// is one bit in a table that stays in cache instead of a probe of the map.
    filter: Vec<u64>,
    filter_shift: u32,
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
        // (word hashes, hash of them all) of each short text
        let mut shorts: Vec<(Vec<u64>, u64)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            for (s, seg) in item.segments.iter().enumerate() {
                let mut seen: IdSet<u64> = IdSet::default();
                let ws = words(seg);
                // A short text is one gram of all its words (a 64-bit hash
                // of another length than n cannot meet an n-gram but by chance).
                let k = if ws.len() < n && ws.len() >= min_words.max(1) { ws.len() } else { n };
                let gs = self::grams(&ws, k);
                if k < n {
                    shorts.push((ws.iter().map(|w| w.hash).collect(), gs[0]));
                }
                for g in gs {
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
        let tail = shorts.iter().map(|(ws, _)| ws.len()).min().unwrap_or(0);
        let mut short: IdMap<u64, Vec<(usize, u64)>> = IdMap::default();
        for (ws, full) in &shorts {
            if grams.contains_key(full) {
                short.entry(hash_of(&ws[ws.len() - tail..])).or_default().push((ws.len(), *full));
            }
        }
        let bits = ((grams.len() + short.len()).max(1) * 16).next_power_of_two().max(1 << 12);
        let filter_shift = 64 - bits.trailing_zeros();
        let mut filter = vec![0u64; bits / 64];
        for g in grams.keys().chain(short.keys()) {
            let b = (g >> filter_shift) as usize;
            filter[b / 64] |= 1 << (b % 64);
        }
        Index { n, short, tail, items, grams, filter, filter_shift, totals, indexed_items, dropped_grams: dropped }
    }

    pub fn gram_count(&self) -> usize {
        self.grams.len()
    }

    #[inline(always)]
    fn maybe(&self, g: u64) -> bool {
        let b = (g >> self.filter_shift) as usize;
        self.filter[b / 64] & (1 << (b % 64)) != 0
    }

    /// The test items `text` contains, best-covered first. One pass over
    /// the words, in constant memory beyond the hits: the last `n` words in
    /// a ring, one rolling hash per gram length.
    pub fn scan(&self, text: &[u8]) -> Vec<Hit> {
        let n = self.n.max(1);
        // (length, P^(length-1), rolling hash)
        let mut rolls: Vec<(usize, u64, u64)> =
            std::iter::once(n).chain(Some(self.tail).filter(|t| *t > 0)).map(|l| (l, (1..l).fold(1u64, |a, _| a.wrapping_mul(P)), 0)).collect();
        let mut window = Vec::with_capacity(n);
        // A power-of-two ring: a mask, not a division, per access.
        let mask = n.next_power_of_two() - 1;
        let mut ring = vec![Word::default(); mask + 1];
        let mut matched: HashMap<(u32, u16), IdSet<u64>> = HashMap::new();
        // item → (start, end) bytes of its first matched gram
        let mut first: HashMap<u32, (usize, usize)> = HashMap::new();
        for (i, w) in Words::new(text).enumerate() {
            // The word leaving each window, before its slot is reused.
            for (len, pn, h) in rolls.iter_mut() {
                if i >= *len {
                    *h = h.wrapping_sub(ring[(i - *len) & mask].hash.wrapping_mul(*pn));
                }
            }
            ring[i & mask] = w;
            for (len, _, h) in rolls.iter_mut() {
                let len = *len;
                *h = h.wrapping_mul(P).wrapping_add(w.hash);
                if i + 1 < len {
                    continue;
                }
                let g = mix(*h);
                if !self.maybe(g) {
                    continue;
                }
                // The n-gram itself, or the short texts ending in these `tail` words.
                let candidates: &[(usize, u64)] = if len == n { &[(n, g)] } else { self.short.get(&g).map_or(&[], Vec::as_slice) };
                for &(k, full) in candidates {
                    if k > i + 1 {
                        continue;
                    }
                    if len != n {
                        window.clear();
                        window.extend((i + 1 - k..=i).map(|j| ring[j & mask].hash));
                        if hash_of(&window) != full {
                            continue;
                        }
                    }
                    if let Some(v) = self.grams.get(&full) {
                        let start = ring[(i + 1 - k) & mask].start;
                        for &(item, seg) in v {
                            matched.entry((item, seg)).or_default().insert(full);
                            let e = first.entry(item).or_insert((start, w.end));
                            if start < e.0 {
                                *e = (start, w.end);
                            }
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
                let (offset, end) = first[&item];
                Hit { item: item as usize, coverage, line: 0, offset, end }
            })
            .collect();
        hits.sort_by(|a, b| b.coverage.total_cmp(&a.coverage).then(a.item.cmp(&b.item)));
        // Lines only for what is reported: counting them per word would
        // cost the scan a branch per byte.
        let mut by_offset: Vec<usize> = (0..hits.len()).collect();
        by_offset.sort_by_key(|&k| hits[k].offset);
        let (mut line, mut at) = (1, 0);
        for k in by_offset {
            let off = hits[k].offset;
            line += text[at..off].iter().filter(|b| **b == b'\n').count();
            at = off;
            hits[k].line = line;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn index(texts: &[&str], n: usize) -> Index {
        let items = texts.iter().enumerate().map(|(i, t)| TestItem { id: i.to_string(), segments: vec![t.to_string()] }).collect();
        Index::build(items, n, 3, 5)
    }

    #[test]
    fn a_json_escaped_letter_is_part_of_its_word() {
        let ix = index(&["the café on the corner sells twelve pastries every single morning"], 5);
        let hits = ix.scan(br#"{"q": "The caf\u00e9 on the corner sells twelve pastries every single morning"}"#);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].coverage, 1.0);
        // Split by a separator, "caf" and "é" are other words: the grams holding them miss.
        let split = ix.scan("the caf é on the corner sells twelve pastries every single morning".as_bytes());
        assert!(split.is_empty() || split[0].coverage < 1.0);
    }

    #[test]
    fn short_texts_are_found_whole_and_only_whole() {
        let ix = index(&["find the sum of these numbers", "a much longer item that has more than eight words in it"], 8);
        // A short item (6 < n words, >= min_words 3) inside other text, after a line break.
        let hits = ix.scan(b"intro line\nplease find the sum of these numbers quickly");
        assert_eq!(hits.iter().map(|h| (h.item, h.line)).collect::<Vec<_>>(), vec![(0, 2)]);
        // Its tail alone (the words the scan keys on) is not the item.
        assert!(ix.scan(b"sum of these numbers").is_empty());
    }

    #[test]
    fn the_streaming_scan_agrees_with_the_gram_lists() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        let ix = index(&[text], 4);
        let hits = ix.scan(format!("noise words here {text} and after").as_bytes());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].coverage, 1.0);
        assert_eq!(grams(&words(text), 4).len(), 9);
        let half = "one two three four five six seven";
        let hits = ix.scan(half.as_bytes());
        assert!((hits[0].coverage - 4.0 / 9.0).abs() < 1e-9, "{}", hits[0].coverage);
    }
}
