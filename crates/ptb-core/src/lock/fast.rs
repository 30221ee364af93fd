//! A fast reader for the canonical lockfile text that [`super::render`]
//! writes. The general KDL parser is format-preserving and takes about a
//! second on a 1,008-cell lockfile, which `ptb plan` reads on every run;
//! this reader handles exactly the canonical shape (one node per line,
//! fixed property order) and returns `None` on anything else, in which
//! case the caller falls back to the general parser. A test checks both
//! agree on rendered lockfiles.

use super::*;
use std::borrow::Cow;

/// Split a canonical line into tokens: bare words, `key=` prefixes kept
/// with their value, quoted strings unescaped. `None` if not canonical.
fn tokens(line: &str) -> Option<Vec<(Option<&str>, Tok<'_>)>> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        // Optional `key=`.
        let start = i;
        let mut key = None;
        while i < b.len() && b[i] != b' ' && b[i] != b'"' && b[i] != b'=' {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            key = Some(&line[start..i]);
            i += 1;
        } else {
            i = start;
        }
        if i < b.len() && b[i] == b'"' {
            i += 1;
            // Most strings have no escapes: borrowed, not copied (a paper's
            // lockfile has ~100,000 of them, read by every `ptb plan`).
            if let Some(n) = line[i..].find(['"', '\\'])
                && b[i + n] == b'"'
            {
                out.push((key, Tok::Str(Cow::Borrowed(&line[i..i + n]))));
                i += n + 1;
                continue;
            }
            let mut s = String::new();
            loop {
                let c = *b.get(i)?;
                match c {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        let e = *b.get(i + 1)?;
                        match e {
                            b'"' => s.push('"'),
                            b'\\' => s.push('\\'),
                            b'n' => s.push('\n'),
                            b'r' => s.push('\r'),
                            b't' => s.push('\t'),
                            b'u' => {
                                // `\u{hex}`, as the writer escapes control and
                                // direction characters.
                                let body = line.get(i + 2..)?.strip_prefix('{')?;
                                let close = body.find('}')?;
                                let c = char::from_u32(u32::from_str_radix(&body[..close], 16).ok()?)?;
                                s.push(c);
                                i += 3 + close + 1;
                                continue;
                            }
                            _ => return None,
                        }
                        i += 2;
                    }
                    _ => {
                        let run = line[i..].find(['"', '\\']).map(|n| i + n)?;
                        s.push_str(&line[i..run]);
                        i = run;
                    }
                }
            }
            out.push((key, Tok::Str(Cow::Owned(s))));
        } else {
            let end = line[i..].find(' ').map(|n| i + n).unwrap_or(b.len());
            out.push((key, Tok::Word(&line[i..end])));
            i = end;
        }
    }
    Some(out)
}

#[derive(Debug)]
enum Tok<'a> {
    Str(Cow<'a, str>),
    Word(&'a str),
}

impl Tok<'_> {
    fn str(self) -> Option<String> {
        match self {
            Tok::Str(s) => Some(s.into_owned()),
            Tok::Word(_) => None,
        }
    }
    /// An integer, exactly (through f64 a seed above 2^53 would change).
    fn int<T: std::str::FromStr>(&self) -> Option<T> {
        match self {
            Tok::Word(w) => w.parse().ok(),
            Tok::Str(_) => None,
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Tok::Word(w) => w.parse().ok(),
            Tok::Str(_) => None,
        }
    }
}

fn prop<'a>(toks: &mut Vec<(Option<&str>, Tok<'a>)>, key: &str) -> Option<Tok<'a>> {
    let i = toks.iter().position(|(k, _)| *k == Some(key))?;
    Some(toks.remove(i).1)
}

fn args<'a>(toks: Vec<(Option<&str>, Tok<'a>)>) -> Vec<Tok<'a>> {
    toks.into_iter().filter(|(k, _)| k.is_none()).map(|(_, t)| t).collect()
}

pub(super) fn parse_canonical(text: &str) -> Option<Lockfile> {
    parse_canonical_to(text, Depth::Full)
}

/// A metric or input line, checked but not kept ([`Depth::Keys`]): it
/// passes exactly when the full read below would take it.
fn well_formed(head: &str, toks: Vec<(Option<&str>, Tok<'_>)>) -> Option<()> {
    let mut a = toks.into_iter().filter(|(k, _)| k.is_none()).map(|(_, t)| t);
    let (name, value) = (a.next()?, a.next()?);
    let ok = matches!(name, Tok::Str(_))
        && match value {
            Tok::Str(_) => true,
            Tok::Word(_) if head == "input" => false,
            Tok::Word(w) => w == "#true" || w == "#false" || w.parse::<f64>().is_ok(),
        };
    ok.then_some(())
}

/// A metric or input line in its canonical shape without escapes,
/// `"name" "value"` (a metric's value may be a word): taken as
/// [`well_formed`] would take it, without tokenizing. Anything else goes
/// to the tokenizer.
fn plain_pair(head: &str, rest: &str) -> bool {
    if !(head == "input" || head == "metric") || rest.contains('\\') {
        return false;
    }
    let Some(r) = rest.strip_prefix('"') else { return false };
    let Some(end) = r.find('"') else { return false };
    let Some(value) = r[end + 1..].strip_prefix(' ') else { return false };
    match value.strip_prefix('"') {
        Some(v) => v.find('"') == Some(v.len().wrapping_sub(1)),
        None => head == "metric" && !value.contains([' ', '"', '=']) && (value == "#true" || value == "#false" || value.parse::<f64>().is_ok()),
    }
}

fn parse_canonical_to(text: &str, depth: Depth) -> Option<Lockfile> {
    let keys = depth == Depth::Keys;
    let mut l = Lockfile::default();
    let mut lines = text.lines().map(|raw| (raw, raw.trim())).filter(|(_, t)| !t.is_empty() && !t.starts_with("//"));
    let version: u32 = lines.next()?.0.strip_prefix("version ")?.parse().ok()?;
    if !(LOCK_VERSION_MIN..=LOCK_VERSION).contains(&version) {
        return None;
    }
    let mut cell: Option<(String, CellRecord)> = None;
    let mut stage: Option<(String, StageRecord)> = None;
    let mut in_pins = false;
    for (_, line) in lines {
        let opens = line.ends_with(" {");
        let body = line.strip_suffix(" {").unwrap_or(line);
        if line == "}" {
            if let Some((name, rec)) = stage.take() {
                cell.as_mut()?.1.stages.insert(name, rec);
            } else if let Some((id, c)) = cell.take() {
                l.cells.insert(id, c);
            } else if in_pins {
                in_pins = false;
            } else {
                return None;
            }
            continue;
        }
        let (head, rest) = body.split_once(' ').unwrap_or((body, ""));
        if keys && !opens && stage.is_some() && plain_pair(head, rest) {
            continue;
        }
        let mut toks = tokens(rest)?;
        match (head, opens) {
            ("metric" | "input", false) if stage.is_some() && keys => well_formed(head, toks)?,
            ("metric", false) if stage.is_some() => {
                let mut a = args(toks).into_iter();
                let name = a.next()?.str()?;
                let v = match a.next()? {
                    Tok::Str(s) => MetricValue::Text(s.into_owned()),
                    Tok::Word("#true") => MetricValue::Bool(true),
                    Tok::Word("#false") => MetricValue::Bool(false),
                    t => MetricValue::Number(t.num()?),
                };
                stage.as_mut()?.1.metrics.insert(name, v);
            }
            ("input", false) if stage.is_some() => {
                let mut a = args(toks).into_iter();
                let (k, v) = (a.next()?.str()?, a.next()?.str()?);
                stage.as_mut()?.1.inputs.insert(k, v);
            }
            ("stage", true) if cell.is_some() && stage.is_none() => {
                let mut time = |k| prop(&mut toks, k).and_then(|t| if keys { matches!(t, Tok::Str(_)).then(String::new) } else { t.str() });
                let (started, finished) = (time("started")?, time("finished")?);
                let rec = StageRecord {
                    key: prop(&mut toks, "key")?.str()?,
                    status: prop(&mut toks, "status")?.str()?.parse().ok()?,
                    path: prop(&mut toks, "path")?.str()?,
                    started,
                    finished,
                    duration_s: prop(&mut toks, "duration")?.num()?,
                    exit_code: match prop(&mut toks, "exit") {
                        Some(t) => Some(t.int()?),
                        None => None,
                    },
                    metrics: BTreeMap::new(),
                    inputs: BTreeMap::new(),
                };
                let name = args(toks).into_iter().next()?.str()?;
                stage = Some((name, rec));
            }
            ("cell", true) if cell.is_none() => {
                let c = CellRecord {
                    model: prop(&mut toks, "model")?.str()?,
                    benchmark: prop(&mut toks, "benchmark")?.str()?,
                    agent: prop(&mut toks, "agent")?.str()?,
                    seed: prop(&mut toks, "seed")?.int()?,
                    stages: BTreeMap::new(),
                };
                cell = Some((args(toks).into_iter().next()?.str()?, c));
            }
            ("pin", false) if in_pins => {
                let mut a = args(toks).into_iter();
                let (k, v) = (a.next()?.str()?, a.next()?.str()?);
                l.pins.insert(k, v);
            }
            ("pins", true) if body == "pins" && cell.is_none() => in_pins = true,
            ("hub", false) if cell.is_none() && !in_pins => {
                let pin = HubPin {
                    repo: prop(&mut toks, "repo")?.str()?,
                    revision: prop(&mut toks, "revision")?.str()?,
                    commit: prop(&mut toks, "commit")?.str()?,
                    sha256: prop(&mut toks, "sha256")?.str()?,
                };
                let mut a = args(toks).into_iter();
                let name = a.next()?.str()?;
                if a.next().is_some() {
                    return None;
                }
                l.hub.insert(name, pin);
            }
            ("review", false) if cell.is_none() && !in_pins => {
                let verdict = crate::judge::Verdict::parse(&prop(&mut toks, "verdict")?.str()?)?;
                let reason = prop(&mut toks, "reason")?.str()?;
                l.reviews.push(crate::judge::Review { cell: args(toks).into_iter().next()?.str()?, verdict, reason });
            }
            ("experiment", false) => l.experiment = args(toks).into_iter().next()?.str()?,
            ("ptb", false) => l.ptb_version = args(toks).into_iter().next()?.str()?,
            ("models", false) => l.models = args(toks).into_iter().map(Tok::str).collect::<Option<_>>()?,
            ("benchmark", false) => {
                let weight = match prop(&mut toks, "weight") {
                    Some(t) => Some(t.num()?),
                    None => None,
                };
                l.benchmarks.push(BenchmarkInfo { name: args(toks).into_iter().next()?.str()?, weight });
            }
            ("agent", false) => {
                let kind = prop(&mut toks, "kind")?.str()?;
                l.agents.push(AgentInfo { name: args(toks).into_iter().next()?.str()?, kind });
            }
            _ => return None,
        }
    }
    (cell.is_none() && stage.is_none() && !in_pins).then_some(l)
}

/// Large lockfiles (a paper's is megabytes) are read on two threads: the
/// text is split at a `cell` line near the middle and the halves parsed
/// independently (cells do not refer to each other).
pub(super) fn parse_canonical_parallel(text: &str, depth: Depth) -> Option<Lockfile> {
    const PARALLEL_ABOVE: usize = 256 << 10;
    if text.len() < PARALLEL_ABOVE {
        return parse_canonical_to(text, depth);
    }
    // The middle byte may fall inside a multi-byte character.
    let mid = (text.len() / 2..text.len()).find(|&i| text.is_char_boundary(i))?;
    let split = text[mid..].find("\ncell \"").map(|i| mid + i + 1)?;
    let (head, tail) = text.split_at(split);
    let tail = format!("version {LOCK_VERSION}\n{tail}");
    let (a, b) = std::thread::scope(|s| {
        let t = s.spawn(|| parse_canonical_to(&tail, depth));
        (parse_canonical_to(head, depth), t.join().ok().flatten())
    });
    let (mut a, b) = (a?, b?);
    a.cells.extend(b.cells);
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The shortcut for metric and input lines never takes a line the
        /// tokenizer's check would refuse.
        #[test]
        fn plain_pairs_are_well_formed(rest in "[\"a1 =#.\\\\e-]{0,12}", metric in any::<bool>()) {
            let head = if metric { "metric" } else { "input" };
            if plain_pair(head, &rest) {
                prop_assert!(tokens(&rest).and_then(|t| well_formed(head, t)).is_some(), "{rest:?}");
            }
        }
    }

    #[test]
    fn plain_pairs() {
        assert!(plain_pair("input", r#""cell.model" "qwen3""#));
        assert!(plain_pair("input", r#""a" """#));
        assert!(plain_pair("metric", r#""score" 0.5"#));
        assert!(plain_pair("metric", r#""ok" #true"#));
        assert!(!plain_pair("input", r#""score" 0.5"#));
        assert!(!plain_pair("metric", r#""x" #nan"#));
        assert!(!plain_pair("input", r#""a" "b" "c""#));
        assert!(!plain_pair("input", r#""a\"" "b""#));
    }
}
