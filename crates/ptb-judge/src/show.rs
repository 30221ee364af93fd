//! A judge stage's `verdict.json` as text for a person (`ptb why`): the
//! verdict, then each finding with its evidence, flags first.
//!
//! The file is a stage's output and its strings quote what the agent wrote
//! (file names, matched text): it is read as untrusted JSON, at most
//! [`MAX_VERDICT`] bytes, and every string is printed with control
//! characters escaped, so an agent cannot move a terminal's cursor or
//! rewrite earlier lines of a report.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// The largest `verdict.json` shown.
pub const MAX_VERDICT: u64 = 32 << 20;
/// Findings shown per severity; the rest are counted.
const MAX_SHOWN: usize = 50;
/// Characters of matched text shown per finding.
const MAX_MATCHED: usize = 200;

/// `s` with control characters (ESC, CR, BEL, …) escaped and newlines shown
/// as `⏎`, cut to `max` characters.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push('⏎'),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => clean(s, 500),
        Some(Value::Null) | None => String::new(),
        Some(other) => clean(&other.to_string(), 500),
    }
}

/// Read and render `path`; a missing or unreadable file says so.
pub fn render_file(path: &Path) -> String {
    let read = match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_file() && md.len() <= MAX_VERDICT => std::fs::read_to_string(path).map_err(|e| e.to_string()),
        Ok(md) if md.is_file() => Err(format!("{} bytes, over the {MAX_VERDICT} byte limit", md.len())),
        Ok(_) => Err("not a regular file".into()),
        Err(e) => Err(e.to_string()),
    };
    match read.and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| format!("not JSON: {e}"))) {
        Ok(v) => render(&v),
        Err(e) => format!("  no findings to show: {}: {e}\n", path.display()),
    }
}

/// The findings of a parsed `verdict.json`.
pub fn render(v: &Value) -> String {
    let mut o = String::new();
    let findings: Vec<&Value> = v.get("findings").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let _ = writeln!(o, "  verdict: {} ({} finding(s))", text(v, "verdict"), findings.len());
    for sev in ["flag", "note"] {
        let of: Vec<&&Value> = findings.iter().filter(|f| f.get("severity").and_then(Value::as_str) == Some(sev)).collect();
        for f in of.iter().take(MAX_SHOWN) {
            let _ = writeln!(o, "  {} {}/{}: {}", if sev == "flag" { "FLAG" } else { "note" }, text(f, "kind"), text(f, "detector"), text(f, "message"));
            let Some(ev) = f.get("evidence") else { continue };
            let mut at = text(ev, "file");
            if let Some(l) = ev.get("line").and_then(Value::as_u64) {
                let _ = write!(at, ":{l}");
            }
            if let Some(b) = ev.get("offset").and_then(Value::as_u64) {
                let _ = write!(at, " (byte {b})");
            }
            let column = text(ev, "column");
            if !column.is_empty() {
                let _ = write!(at, " column {column}");
            }
            if let Some(r) = ev.get("row").and_then(Value::as_u64) {
                let _ = write!(at, " row {r}");
            }
            let tensor = text(ev, "tensor");
            if !tensor.is_empty() {
                let _ = write!(at, " tensor {tensor}");
            }
            if !at.is_empty() {
                let _ = writeln!(o, "      at {at}");
            }
            if let Some(items) = ev.get("items").and_then(Value::as_array).filter(|a| !a.is_empty()) {
                let ids: Vec<String> = items.iter().take(20).map(|i| clean(i.as_str().unwrap_or("?"), 80)).collect();
                let more = if items.len() > 20 { format!(" and {} more", items.len() - 20) } else { String::new() };
                let _ = writeln!(o, "      items {}{more}", ids.join(", "));
            }
            if let (Some(old), Some(new)) = (ev.get("old"), ev.get("new")) {
                let _ = writeln!(o, "      {} → {}", clean(&old.to_string(), 200), clean(&new.to_string(), 200));
            }
            if let Some(Value::String(m)) = ev.get("matched") {
                let _ = writeln!(o, "      matched \"{}\"", clean(m, MAX_MATCHED));
            }
            if let Some(Value::Object(fig)) = ev.get("figures") {
                let figs: Vec<String> = fig
                    .iter()
                    .take(8)
                    .map(|(k, x)| format!("{}={}", clean(k, 60), x.as_f64().map(|x| format!("{x:.4}")).unwrap_or_else(|| "?".into())))
                    .collect();
                if !figs.is_empty() {
                    let _ = writeln!(o, "      {}", figs.join(" "));
                }
            }
        }
        if of.len() > MAX_SHOWN {
            let _ = writeln!(o, "  … and {} more {sev}(s) in verdict.json", of.len() - MAX_SHOWN);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\u{1b}[2Jb\rc\nd", 100), "a\\u{1b}[2Jb\\u{d}c⏎d");
        assert_eq!(clean("abcdef", 3), "abc…");
    }

    #[test]
    fn findings_with_evidence() {
        let v = serde_json::json!({"verdict": "flagged", "findings": [
            {"kind": "contamination", "detector": "ngram", "severity": "flag", "message": "leak.jsonl: 1 test item",
             "evidence": {"file": "leak.jsonl", "line": 3, "offset": 10, "items": ["7"], "matched": "Ilse stacks\u{1b}]0;x\u{7}", "figures": {"coverage:7": 1.0}}},
            {"kind": "tampering", "detector": "config", "severity": "note", "message": "vocab", "evidence": {"old": 10, "new": 12}}]});
        let out = render(&v);
        assert!(out.contains("verdict: flagged (2 finding(s))"), "{out}");
        assert!(out.contains("FLAG contamination/ngram: leak.jsonl: 1 test item"), "{out}");
        assert!(out.contains("at leak.jsonl:3 (byte 10)") && out.contains("items 7") && out.contains("coverage:7=1.0000"), "{out}");
        assert!(out.contains("matched \"Ilse stacks\\u{1b}]0;x\\u{7}\""), "{out}");
        assert!(out.contains("note tampering/config: vocab") && out.contains("10 → 12"), "{out}");
        assert!(!out.contains('\u{1b}'));
    }
}
