//! Lockfile text. Written by hand, not through a KDL document builder,
//! because the format must be byte-stable: fixed field order, fixed float
//! formatting, one node per line. Read back with the kdl parser.

use super::*;
use kdl::{KdlDocument, KdlNode, KdlValue};
use std::fmt::Write as _;

const STAGE_ORDER: [&str; 3] = ["agent", "judge", "eval"];

fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters a KDL v2 string may not hold literally: controls, the
/// newlines KDL knows besides `\n` (NEL, LS, PS, VT, FF), direction
/// overrides and isolates, and the BOM. A stage's metric can hold any of
/// them; written literally, the lockfile would not parse back.
pub(super) fn needs_escape(c: char) -> bool {
    matches!(c as u32, 0..=0x1f | 0x7f | 0x85 | 0x200e | 0x200f | 0x2028 | 0x2029 | 0x202a..=0x202e | 0x2066..=0x2069 | 0xfeff)
}

/// Shortest round-trip float, always with a `.` or exponent so KDL reads it
/// back as a float.
fn num(f: f64) -> String {
    let s = format!("{f:?}");
    if s.contains(['.', 'e', 'E']) { s } else { format!("{s}.0") }
}

fn metric(v: &MetricValue) -> String {
    match v {
        MetricValue::Bool(b) => {
            if *b {
                "#true".into()
            } else {
                "#false".into()
            }
        }
        MetricValue::Number(f) if f.is_finite() => num(*f),
        MetricValue::Number(_) => "#nan".into(),
        MetricValue::Text(s) => q(s),
    }
}

fn stage_rank(name: &str) -> usize {
    STAGE_ORDER.iter().position(|s| *s == name).unwrap_or(STAGE_ORDER.len())
}

pub fn render(l: &Lockfile) -> String {
    let mut o = String::new();
    o.push_str("// ptb lockfile: written by `ptb apply`; do not edit by hand.\n");
    let _ = writeln!(o, "version {}", l.format_version());
    let _ = writeln!(o, "experiment {}", q(&l.experiment));
    let _ = writeln!(o, "ptb {}", q(&l.ptb_version));
    let _ = writeln!(o, "models{}", l.models.iter().map(|m| format!(" {}", q(m))).collect::<String>());
    for b in &l.benchmarks {
        let w = b.weight.map(|w| format!(" weight={}", num(w))).unwrap_or_default();
        let _ = writeln!(o, "benchmark {}{w}", q(&b.name));
    }
    for a in &l.agents {
        let _ = writeln!(o, "agent {} kind={}", q(&a.name), q(&a.kind));
    }
    if !l.pins.is_empty() {
        o.push_str("pins {\n");
        for (k, v) in &l.pins {
            let _ = writeln!(o, "    pin {} {}", q(k), q(v));
        }
        o.push_str("}\n");
    }
    for (name, h) in &l.hub {
        let _ = writeln!(o, "hub {} repo={} revision={} commit={} sha256={}", q(name), q(&h.repo), q(&h.revision), q(&h.commit), q(&h.sha256));
    }
    for r in &l.reviews {
        let _ = writeln!(o, "review {} verdict={} reason={}", q(&r.cell), q(r.verdict.name()), q(&r.reason));
    }
    for (id, c) in &l.cells {
        render_cell(&mut o, id, c);
    }
    o
}

/// One `cell` node, as it appears in the lockfile; the journal frames the
/// same text so a replayed record is byte-for-byte what a full write gives.
pub(super) fn render_cell(o: &mut String, id: &str, c: &CellRecord) {
    let _ = writeln!(o, "cell {} model={} benchmark={} agent={} seed={} {{", q(id), q(&c.model), q(&c.benchmark), q(&c.agent), c.seed);
    let mut stages: Vec<_> = c.stages.iter().collect();
    stages.sort_by_key(|(n, _)| (stage_rank(n), n.to_string()));
    for (name, s) in stages {
        let exit = s.exit_code.map(|e| format!(" exit={e}")).unwrap_or_default();
        let _ = writeln!(
            o,
            "    stage {} key={} status={} path={} started={} finished={} duration={:.3}{exit} {{",
            q(name),
            q(&s.key),
            q(s.status.name()),
            q(&s.path),
            q(&s.started),
            q(&s.finished),
            s.duration_s
        );
        for (k, v) in &s.metrics {
            let _ = writeln!(o, "        metric {} {}", q(k), metric(v));
        }
        for (k, v) in &s.inputs {
            let _ = writeln!(o, "        input {} {}", q(k), q(v));
        }
        o.push_str("    }\n");
    }
    o.push_str("}\n");
}

fn bad(message: impl Into<String>) -> ParseError {
    ParseError { version: None, message: message.into() }
}

fn arg(n: &KdlNode, i: usize) -> Option<&KdlValue> {
    n.entries().iter().filter(|e| e.name().is_none()).nth(i).map(|e| e.value())
}

fn s_arg(n: &KdlNode, i: usize) -> Result<String, ParseError> {
    arg(n, i).and_then(|v| v.as_string()).map(str::to_string).ok_or_else(|| bad(format!("`{}` needs string argument {}", n.name().value(), i + 1)))
}

fn s_prop(n: &KdlNode, k: &str) -> Result<String, ParseError> {
    n.get(k).and_then(|v| v.as_string()).map(str::to_string).ok_or_else(|| bad(format!("`{}` needs string property `{k}`", n.name().value())))
}

fn f_of(v: &KdlValue) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// Read a lockfile: the canonical text through the fast reader, anything
/// else (hand-edited, reformatted) through the general KDL parser.
pub fn parse(text: &str) -> Result<Lockfile, ParseError> {
    parse_to(text, Depth::Full)
}

/// [`parse`], keeping of each record what `depth` says; text that is not
/// canonical is read whole.
pub(super) fn parse_to(text: &str, depth: Depth) -> Result<Lockfile, ParseError> {
    match super::fast::parse_canonical_parallel(text, depth) {
        Some(l) => Ok(l),
        None => parse_kdl(text),
    }
}

#[cfg(test)]
pub(super) fn parse_kdl_for_tests(text: &str) -> Result<Lockfile, ParseError> {
    parse_kdl(text)
}

fn parse_kdl(text: &str) -> Result<Lockfile, ParseError> {
    let doc: KdlDocument = text
        .parse()
        .map_err(|e: kdl::KdlError| bad(format!("not valid KDL: {}", e.diagnostics.first().and_then(|d| d.message.clone()).unwrap_or_default())))?;
    let version = doc.get("version").and_then(|n| arg(n, 0)).ok_or_else(|| bad("no `version` node"))?;
    if !version.as_integer().is_some_and(|v| (LOCK_VERSION_MIN as i128..=LOCK_VERSION as i128).contains(&v)) {
        return Err(ParseError { version: Some(version.to_string()), message: String::new() });
    }
    let mut l = Lockfile::default();
    for n in doc.nodes() {
        match n.name().value() {
            "version" => {}
            "experiment" => l.experiment = s_arg(n, 0)?,
            "ptb" => l.ptb_version = s_arg(n, 0)?,
            "models" => l.models = (0..n.entries().len()).map(|i| s_arg(n, i)).collect::<Result<_, _>>()?,
            "benchmark" => l.benchmarks.push(BenchmarkInfo { name: s_arg(n, 0)?, weight: n.get("weight").and_then(f_of) }),
            "agent" => l.agents.push(AgentInfo { name: s_arg(n, 0)?, kind: s_prop(n, "kind")? }),
            "review" => {
                let verdict = s_prop(n, "verdict")?;
                let verdict = crate::judge::Verdict::parse(&verdict).ok_or_else(|| bad(format!("review: unknown verdict `{verdict}`")))?;
                l.reviews.push(crate::judge::Review { cell: s_arg(n, 0)?, verdict, reason: s_prop(n, "reason")? });
            }
            "hub" => {
                let pin = HubPin { repo: s_prop(n, "repo")?, revision: s_prop(n, "revision")?, commit: s_prop(n, "commit")?, sha256: s_prop(n, "sha256")? };
                l.hub.insert(s_arg(n, 0)?, pin);
            }
            "pins" => {
                for p in n.iter_children() {
                    l.pins.insert(s_arg(p, 0)?, s_arg(p, 1)?);
                }
            }
            "cell" => {
                let id = s_arg(n, 0)?;
                let seed = n.get("seed").and_then(|v| v.as_integer()).filter(|s| *s >= 0).ok_or_else(|| bad(format!("cell {id}: bad seed")))? as u64;
                let mut cell =
                    CellRecord { model: s_prop(n, "model")?, benchmark: s_prop(n, "benchmark")?, agent: s_prop(n, "agent")?, seed, stages: BTreeMap::new() };
                for s in n.iter_children() {
                    let mut rec = StageRecord {
                        key: s_prop(s, "key")?,
                        status: s_prop(s, "status")?.parse().map_err(|e: crate::status::UnknownStatus| bad(format!("cell {id}: {e}")))?,
                        path: s_prop(s, "path")?,
                        started: s_prop(s, "started")?,
                        finished: s_prop(s, "finished")?,
                        duration_s: s.get("duration").and_then(f_of).unwrap_or(0.0),
                        exit_code: s.get("exit").and_then(|v| v.as_integer()).map(|e| e as i32),
                        metrics: BTreeMap::new(),
                        inputs: BTreeMap::new(),
                    };
                    for c in s.iter_children() {
                        match c.name().value() {
                            "metric" => {
                                let v = match arg(c, 1) {
                                    Some(KdlValue::Bool(b)) => MetricValue::Bool(*b),
                                    Some(KdlValue::String(t)) => MetricValue::Text(t.clone()),
                                    Some(v) => MetricValue::Number(f_of(v).ok_or_else(|| bad("metric value"))?),
                                    None => return Err(bad("metric without a value")),
                                };
                                rec.metrics.insert(s_arg(c, 0)?, v);
                            }
                            "input" => {
                                rec.inputs.insert(s_arg(c, 0)?, s_arg(c, 1)?);
                            }
                            other => return Err(bad(format!("unknown node `{other}` in stage"))),
                        }
                    }
                    cell.stages.insert(s_arg(s, 0)?, rec);
                }
                l.cells.insert(id, cell);
            }
            other => return Err(bad(format!("unknown node `{other}`"))),
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lockfile {
        let mut stages = BTreeMap::new();
        stages.insert(
            "eval".to_string(),
            StageRecord {
                key: "ab".repeat(32),
                status: crate::status::StageStatus::Success,
                path: "v1/x".into(),
                started: "2026-11-23T10:00:00Z".into(),
                finished: "2026-11-23T10:00:01Z".into(),
                duration_s: 1.25,
                exit_code: Some(0),
                metrics: [("score".to_string(), MetricValue::Number(0.1)), ("note".to_string(), MetricValue::Text("a \"q\"\n".into()))].into(),
                inputs: [("schema".to_string(), "1".to_string())].into(),
            },
        );
        Lockfile {
            experiment: "demo".into(),
            ptb_version: "0.1.0".into(),
            models: vec!["m".into()],
            benchmarks: vec![BenchmarkInfo { name: "b".into(), weight: Some(0.0936) }],
            agents: vec![AgentInfo { name: "a".into(), kind: "run".into() }],
            pins: [("model/m".to_string(), "sha256:00".to_string())].into(),
            hub: BTreeMap::new(),
            reviews: vec![crate::judge::Review {
                cell: "m/b/a/seed=1".into(),
                verdict: crate::judge::Verdict::Pass,
                reason: "the \"flagged\" file is the train split".into(),
            }],
            cells: [("m/b/a/seed=1".to_string(), CellRecord { model: "m".into(), benchmark: "b".into(), agent: "a".into(), seed: 1, stages })].into(),
        }
    }

    #[test]
    fn round_trip_is_byte_identical() {
        let text = render(&sample());
        let back = parse(&text).unwrap();
        assert_eq!(back, sample());
        assert_eq!(render(&back), text);
    }

    #[test]
    fn fast_reader_agrees_with_the_kdl_parser() {
        let text = render(&sample());
        assert_eq!(super::super::fast::parse_canonical(&text), Some(parse_kdl(&text).unwrap()));
        // Split in two halves and read in parallel: the same.
        let mut big = sample();
        let cell = big.cells.values().next().unwrap().clone();
        for i in 0..3000 {
            big.cells.insert(format!("m/b/a/seed={i}"), CellRecord { seed: i, ..cell.clone() });
        }
        let big_text = render(&big);
        assert!(big_text.len() > 256 << 10);
        assert!(super::super::fast::parse_canonical_parallel(&big_text, Depth::Full) == Some(big), "parallel read differs");
        // Reformatted by hand: the fast reader declines, the result is the same.
        let edited = text.replace("experiment \"demo\"", "experiment #\"demo\"#");
        assert_eq!(super::super::fast::parse_canonical(&edited), None);
        assert_eq!(parse(&edited).unwrap(), sample());
    }

    #[test]
    fn unknown_version_is_refused() {
        let text = render(&sample()).replace("version 1", "version 99");
        let e = parse(&text).unwrap_err().at(Path::new("x.lock"));
        assert!(e.to_string().contains("version 99 is not supported"), "{e}");
    }

    /// Hub pins are what version 2 adds: a lockfile without them is written
    /// as version 1, byte for byte as before; one with them as version 2,
    /// read back by both readers; a version beyond this ptb's is refused.
    #[test]
    fn hub_pins_need_version_2_and_nothing_else_does() {
        let plain = render(&sample());
        assert!(plain.starts_with("// ptb lockfile: written by `ptb apply`; do not edit by hand.\nversion 1\n"), "{plain}");
        let mut l = sample();
        let pin = HubPin { repo: "Qwen/Qwen3-1.7B".into(), revision: "main".into(), commit: "a".repeat(40), sha256: format!("sha256:{}", "b".repeat(64)) };
        l.hub.insert("model/m".into(), pin);
        let text = render(&l);
        assert!(text.contains("\nversion 2\n"), "{text}");
        assert!(
            text.contains(&format!(
                "hub \"model/m\" repo=\"Qwen/Qwen3-1.7B\" revision=\"main\" commit=\"{}\" sha256=\"sha256:{}\"\n",
                "a".repeat(40),
                "b".repeat(64)
            )),
            "{text}"
        );
        assert_eq!(super::super::fast::parse_canonical(&text).as_ref(), Some(&l));
        assert_eq!(parse_kdl(&text).unwrap(), l);
        assert_eq!(render(&parse(&text).unwrap()), text);
        let e = parse(&text.replace("version 2", "version 3")).unwrap_err().at(Path::new("x.lock"));
        assert!(e.to_string().contains("version 3 is not supported (this ptb reads versions 1 to 2)"), "{e}");
    }
}
