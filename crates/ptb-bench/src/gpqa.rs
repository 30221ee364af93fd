//! GPQA (main): inspect's `multiple_choice(cot=True)` prompt, choice shuffling
//! and `choice()` letter extraction.
//!
//! The data is gated, so ptb never ships it: users point `--data` at their own
//! `gpqa_main.csv` (the CSV of the GPQA release); tests use a made-up fixture.

use super::BenchError;
use super::chat::{ChatRequest, Message};
use super::data;
use super::pyrandom::PyRandom;
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

pub const GPQA_MAX_TOKENS: u32 = 16000;
const LETTERS: [char; 4] = ['A', 'B', 'C', 'D'];

/// One question; `choices[0]` is the correct answer (the dataset's order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpqaItem {
    pub id: String,
    pub question: String,
    pub choices: [String; 4],
}

/// How the four choices are ordered before prompting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChoiceOrder {
    /// The reference: `shuffle_choices=True` with no seed, so each run draws a
    /// fresh order that is not recorded anywhere.
    Unseeded,
    /// ptb's default for reproducible runs: the order is a function of the seed
    /// and the item id, recorded with the results.
    Seeded(u64),
    /// Exactly what inspect's `shuffle_choices(seed)` gives: one CPython
    /// `random.Random(seed)` shuffling every item in dataset order. Use it to
    /// compare with an inspect run that was given a seed.
    InspectSeed(u64),
    /// Dataset order (correct answer always `A`): only for debugging.
    Original,
}

/// The choices as shown to the model, and which letter is correct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presented {
    pub choices: Vec<String>,
    /// `order[i]` = original index of the choice shown at position i.
    pub order: Vec<usize>,
    pub target: char,
}

fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = ptb_core::rng::SplitMix64::new(seed);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx
}

fn item_seed(seed: u64, id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(b"ptb-gpqa-shuffle-v1\0");
    h.update(seed.to_le_bytes());
    h.update(id.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

fn entropy() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

/// The presentation of every item. `InspectSeed` is stateful across the
/// dataset, so orders depend on the items' positions as well as the seed.
pub fn present_all(items: &[GpqaItem], order: ChoiceOrder) -> Vec<Presented> {
    match order {
        ChoiceOrder::InspectSeed(seed) => {
            let mut rng = PyRandom::new(seed);
            items
                .iter()
                .map(|it| {
                    let mut perm = vec![0, 1, 2, 3];
                    rng.shuffle(&mut perm);
                    with_order(it, perm)
                })
                .collect()
        }
        _ => items.iter().map(|it| present(it, order)).collect(),
    }
}

/// One item's presentation; for `InspectSeed` this is the order of an item
/// at position 0 (use `present_all` for a dataset).
pub fn present(item: &GpqaItem, order: ChoiceOrder) -> Presented {
    let perm = match order {
        ChoiceOrder::Original => vec![0, 1, 2, 3],
        ChoiceOrder::Seeded(s) => permutation(4, item_seed(s, &item.id)),
        ChoiceOrder::Unseeded => permutation(4, entropy()),
        ChoiceOrder::InspectSeed(_) => {
            return present_all(std::slice::from_ref(item), order).remove(0);
        }
    };
    with_order(item, perm)
}

fn with_order(item: &GpqaItem, perm: Vec<usize>) -> Presented {
    let pos = perm.iter().position(|&i| i == 0).unwrap_or(0);
    Presented { choices: perm.iter().map(|&i| item.choices[i].clone()).collect(), order: perm, target: LETTERS[pos] }
}

/// inspect's `SINGLE_ANSWER_TEMPLATE_COT` filled in.
pub fn prompt(question: &str, choices: &[String]) -> String {
    let letters: Vec<String> = LETTERS.iter().take(choices.len()).map(|c| c.to_string()).collect();
    let opts: Vec<String> = choices.iter().zip(LETTERS).map(|(c, l)| format!("{l}) {c}")).collect();
    format!(
        "Answer the following multiple choice question. The last line of your response should be of the following format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of {}. Think step by step before answering.\n\n{}\n\n{}",
        letters.join(","),
        question,
        opts.join("\n")
    )
}

pub fn request(item: &GpqaItem, presented: &Presented) -> ChatRequest {
    ChatRequest { messages: vec![Message::user(prompt(&item.question, &presented.choices))], tools: vec![], max_tokens: GPQA_MAX_TOKENS }
}

/// inspect's `parse_answers` for a single-answer question: the strict
/// line-anchored pattern first, then the loose one; the match must be exactly
/// one allowed capital letter.
pub fn parse_letter(completion: &str) -> Option<char> {
    static STRICT: OnceLock<Regex> = OnceLock::new();
    static LOOSE: OnceLock<Regex> = OnceLock::new();
    let strict = STRICT.get_or_init(|| Regex::new(r"(?im)^ANSWER\s*:\s*([A-Za-z\d ,]+)\s*(?:$|\n|\.)").expect("static regex"));
    let loose = LOOSE.get_or_init(|| Regex::new(r"(?i)ANSWER\s*:\s*([A-Za-z\d ,]+)(?:[^\w]|\n|$|\.)").expect("static regex"));
    let caps = strict.captures(completion).or_else(|| loose.captures(completion))?;
    let matched = caps.get(1)?.as_str().trim().trim_end_matches('.');
    let mut chars = matched.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if LETTERS.contains(&c) => Some(c),
        _ => None,
    }
}

pub fn score(completion: &str, presented: &Presented) -> bool {
    parse_letter(completion) == Some(presented.target)
}

/// A minimal RFC 4180 reader: quoted fields may hold commas, quotes (`""`) and
/// newlines, which GPQA's CSV uses. A CSV crate would do the same in more code
/// than this module needs.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err("unterminated quoted field".into());
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// Load GPQA from a CSV with the release's column names. The question id is
/// the `Record ID` column when present, else the row number.
pub fn load_csv(path: &Path) -> Result<Vec<GpqaItem>, BenchError> {
    if !path.is_file() {
        return Err(data::missing(path.to_path_buf()));
    }
    let text = data::read_to_string(path)?;
    let err = |line: usize, message: String| BenchError::Parse { path: path.to_path_buf(), line, message };
    let rows = parse_csv(&text).map_err(|m| err(0, m))?;
    let (header, body) = rows.split_first().ok_or_else(|| err(1, "empty file".into()))?;
    let col: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h.trim(), i)).collect();
    let need = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"];
    let idx: Vec<usize> = need.iter().map(|n| col.get(n).copied().ok_or_else(|| err(1, format!("missing column `{n}`")))).collect::<Result<_, _>>()?;
    let id_col = col.get("Record ID").copied();
    let mut items = Vec::with_capacity(body.len());
    for (r, row) in body.iter().enumerate() {
        if row.iter().all(|f| f.is_empty()) {
            continue;
        }
        let get = |i: usize| row.get(i).cloned().ok_or_else(|| err(r + 2, format!("row has {} fields", row.len())));
        items.push(GpqaItem {
            id: match id_col {
                Some(i) => get(i)?,
                None => r.to_string(),
            },
            question: get(idx[0])?,
            choices: [get(idx[1])?, get(idx[2])?, get(idx[3])?, get(idx[4])?],
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_extraction_follows_inspect() {
        assert_eq!(parse_letter("thinking...\nANSWER: B"), Some('B'));
        assert_eq!(parse_letter("ANSWER: C."), Some('C'));
        assert_eq!(parse_letter("so the final ANSWER: D\n"), Some('D'));
        assert_eq!(parse_letter("ANSWER: b"), None, "lower-case letters are not allowed options");
        assert_eq!(parse_letter("ANSWER: A, B"), None);
        assert_eq!(parse_letter("I think it is B"), None);
    }

    #[test]
    fn seeded_order_is_stable_and_varies() {
        let it = GpqaItem { id: "x".into(), question: "q".into(), choices: ["r".into(), "w1".into(), "w2".into(), "w3".into()] };
        let a = present(&it, ChoiceOrder::Seeded(1));
        assert_eq!(a, present(&it, ChoiceOrder::Seeded(1)));
        assert_eq!(a.choices[(a.target as u8 - b'A') as usize], "r");
        let targets: std::collections::HashSet<char> = (0..40).map(|s| present(&it, ChoiceOrder::Seeded(s)).target).collect();
        assert!(targets.len() > 1, "shuffle must move the correct answer");
    }

    #[test]
    fn inspect_seed_follows_cpython_across_items() {
        let it = |id: &str| GpqaItem { id: id.into(), question: "q".into(), choices: ["r".into(), "w1".into(), "w2".into(), "w3".into()] };
        let p = present_all(&[it("a"), it("b")], ChoiceOrder::InspectSeed(42));
        // random.Random(42) shuffles [0,1,2,3] into [2,1,3,0], then [3,2,0,1].
        assert_eq!((p[0].order.clone(), p[0].target), (vec![2, 1, 3, 0], 'D'));
        assert_eq!((p[1].order.clone(), p[1].target), (vec![3, 2, 0, 1], 'C'));
    }

    #[test]
    fn csv_quotes_and_newlines() {
        let rows = parse_csv("a,b\n\"x, \"\"y\"\"\nz\",2\n").unwrap();
        assert_eq!(rows, vec![vec!["a", "b"], vec!["x, \"y\"\nz", "2"]]);
    }
}
