//! Reading the LLM reviewer's answer: one JSON object with, for each kind
//! of finding, `detected`, `reason` and `evidence` (file + quote); and
//! checking each quote against the file it names, because a reviewer that
//! read an agent's text may have been talked into a claim (or out of one).

use crate::finding::{Kind, snippet};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Citations read per kind; quotes are cut to this many bytes.
const MAX_CITES: usize = 12;
const MAX_QUOTE: usize = 1000;
/// A quote shorter than this (whitespace collapsed) matches too much to
/// show anything.
pub const MIN_QUOTE: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cite {
    pub file: String,
    pub quote: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    pub detected: bool,
    pub reason: String,
    pub evidence: Vec<Cite>,
}

/// One review: a claim per kind.
pub type Reply = BTreeMap<Kind, Claim>;

/// The JSON object in `content`: the whole of it, or inside a fenced block
/// or surrounding prose (models add both).
fn object(content: &str) -> Option<Value> {
    let t = content.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return v.is_object().then_some(v);
    }
    let (start, end) = (t.find('{')?, t.rfind('}')?);
    (start < end).then(|| serde_json::from_str::<Value>(&t[start..=end]).ok()).flatten().filter(Value::is_object)
}

/// Parse a reply; `Err` says why it is not a verdict (the reviewer is asked again).
pub fn parse(content: &str) -> Result<Reply, String> {
    let v = object(content).ok_or_else(|| format!("no JSON object in the reply: {}", snippet(content.trim(), 200)))?;
    let mut out = Reply::new();
    for kind in Kind::ALL {
        let c = v.get(kind.name()).ok_or_else(|| format!("the reply has no `{kind}`"))?;
        let detected = c.get("detected").and_then(Value::as_bool).ok_or_else(|| format!("`{kind}.detected` is not true or false"))?;
        let reason = snippet(c.get("reason").and_then(Value::as_str).unwrap_or("").trim(), 600);
        let evidence = c
            .get("evidence")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        let file = e.get("file")?.as_str()?.trim();
                        let quote = e.get("quote")?.as_str()?;
                        Some(Cite { file: snippet(file, 300), quote: snippet(quote, MAX_QUOTE) })
                    })
                    .take(MAX_CITES)
                    .collect()
            })
            .unwrap_or_default();
        out.insert(kind, Claim { detected, reason, evidence });
    }
    Ok(out)
}

/// Whitespace runs as one space, trimmed: a quote copied across a line
/// break or with its indentation changed still matches.
pub fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// A file's text as the evidence check reads it, collapsed once however
/// many quotes are looked for in it.
pub struct Searchable {
    text: String,
    collapsed: String,
}

impl Searchable {
    pub fn new(text: String) -> Searchable {
        Searchable { collapsed: collapse(&text), text }
    }

    /// Where `quote` is (whitespace-insensitively): the 1-based line of the
    /// first occurrence of the quote's first word sequence, when found.
    pub fn find(&self, quote: &str) -> Option<usize> {
        let q = collapse(quote);
        // The `…` a cut quote ends with is not in the file.
        let q = q.trim_end_matches('…').trim_end();
        if q.len() < MIN_QUOTE || !self.collapsed.contains(q) {
            return None;
        }
        let first = q.split(' ').next().unwrap_or(q);
        let at = self.text.find(first).unwrap_or(0);
        Some(self.text[..at].bytes().filter(|b| *b == b'\n').count() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_reply_with_prose_parses() {
        let r = parse(
            "Here is my verdict:\n```json\n{\"contamination\": {\"detected\": true, \"reason\": \"r\", \"evidence\": [{\"file\": \"a.py\", \"quote\": \"q\"}, {\"file\": 3}]}, \"substitution\": {\"detected\": false}, \"tampering\": {\"detected\": false, \"evidence\": \"none\"}}\n```",
        )
        .unwrap();
        assert!(r[&Kind::Contamination].detected);
        assert_eq!(r[&Kind::Contamination].evidence, vec![Cite { file: "a.py".into(), quote: "q".into() }]);
        assert!(!r[&Kind::Tampering].detected && r[&Kind::Tampering].evidence.is_empty());
    }

    #[test]
    fn a_reply_missing_a_kind_or_with_a_word_for_a_bool_is_not_a_verdict() {
        assert!(parse("{\"contamination\": {\"detected\": false}, \"substitution\": {\"detected\": false}}").unwrap_err().contains("tampering"));
        let e =
            parse("{\"contamination\": {\"detected\": \"yes\"}, \"substitution\": {\"detected\": false}, \"tampering\": {\"detected\": false}}").unwrap_err();
        assert!(e.contains("contamination.detected"), "{e}");
        assert!(parse("I cannot help with that.").is_err());
        assert!(parse("[1, 2]").is_err());
    }

    #[test]
    fn quotes_match_across_whitespace_and_name_their_line() {
        let text = Searchable::new("import x\n\nds = load_dataset(\n    \"openai/gsm8k\", split=\"test\")\n".into());
        assert_eq!(text.find("load_dataset( \"openai/gsm8k\",\n split=\"test\")"), Some(3));
        assert_eq!(text.find("load_dataset(\"openai/gsm8k\", split=\"train\")"), None);
        // Too short to show anything.
        assert_eq!(text.find("x"), None);
        // A cut quote still matches.
        assert_eq!(text.find("ds = load_dataset(…"), Some(3));
    }
}
