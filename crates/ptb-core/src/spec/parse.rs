//! KDL front end: documents → [`Experiment`], collecting every mistake as a
//! diagnostic with its span instead of stopping at the first.

use super::diag::{ListFmt, SpecDiagnostic, SpecError, did_you_mean};
use super::matrix::{RawMatrix, Selector, expand};
use super::units::{parse_duration, parse_memory};
use super::*;
use kdl::{KdlDocument, KdlNode, KdlValue};
use miette::{NamedSource, SourceSpan};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One source file: its name as shown in messages, text and directory.
pub(super) struct Src {
    name: String,
    text: Arc<String>,
    dir: PathBuf,
}

/// Where something was declared, for diagnostics raised after parsing.
#[derive(Clone)]
pub(super) struct Loc {
    src: Arc<Src>,
    span: SourceSpan,
}

impl Loc {
    /// `file:line:col`.
    pub(super) fn describe(&self) -> String {
        let (line, col) = super::diag::line_col(&self.src.text, self.span.offset());
        format!("{}:{line}:{col}", self.src.name)
    }
}

pub(super) struct Ctx<'a> {
    pub(super) errors: Vec<SpecDiagnostic>,
    include_stack: Vec<PathBuf>,
    sources: &'a dyn SpecSources,
}

/// What parsing needs from outside the spec's text: the files it includes.
/// [`load`] takes them from the disk ([`Disk`]); parsing itself does no I/O.
/// (Hub models are not looked up here: the session finds them in the store
/// by the content hash the lockfile pins.)
pub trait SpecSources {
    /// An included file's text and a canonical name for it (for cycles).
    fn include(&self, path: &Path) -> std::io::Result<(String, PathBuf)>;
}

/// Spec sources on this machine: files on disk.
pub struct Disk;

impl Disk {
    pub fn from_env() -> Disk {
        Disk
    }
}

impl SpecSources for Disk {
    fn include(&self, path: &Path) -> std::io::Result<(String, PathBuf)> {
        let text = std::fs::read_to_string(path)?;
        Ok((text, std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())))
    }
}

impl Ctx<'_> {
    pub(super) fn error(&mut self, loc: &Loc, message: impl Into<String>, label: impl Into<String>, help: Option<String>) {
        self.errors.push(SpecDiagnostic {
            message: message.into(),
            src: NamedSource::new(loc.src.name.clone(), loc.src.text.clone()),
            span: loc.span,
            label: label.into(),
            help,
        });
    }
}

/// Load a spec file (and its includes) from disk: the I/O step; parsing
/// follows with what it read.
pub fn load(path: &Path) -> Result<Experiment, SpecError> {
    let disk = Disk::from_env();
    let (text, canonical) = disk.include(path).map_err(|source| SpecError::Read { path: path.to_path_buf(), source })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut exp = parse(&path.display().to_string(), &text, &dir, Some(canonical), &disk)?;
    exp.source = path.to_path_buf();
    Ok(exp)
}

/// Parse spec text named `name`; relative paths resolve against `dir`;
/// includes are read from the disk, and the hub cache from the environment.
pub fn parse_str(name: &str, text: &str, dir: &Path) -> Result<Experiment, SpecError> {
    parse(name, text, dir, None, &Disk::from_env())
}

/// Parse spec text named `name` (whose canonical path, if it is a file, is
/// `canonical`: an include of it is a cycle) with `sources` for everything
/// outside the text.
pub fn parse(name: &str, text: &str, dir: &Path, canonical: Option<PathBuf>, sources: &dyn SpecSources) -> Result<Experiment, SpecError> {
    let mut ctx = Ctx { errors: Vec::new(), include_stack: canonical.into_iter().collect(), sources };
    let mut raw = Raw::default();
    let src = Arc::new(Src { name: name.to_string(), text: Arc::new(text.to_string()), dir: dir.to_path_buf() });
    read_document(&mut ctx, &mut raw, &src, true);
    let exp = if ctx.errors.is_empty() { build(&mut ctx, raw, name, dir) } else { None };
    match exp {
        Some(e) if ctx.errors.is_empty() => Ok(e),
        _ => Err(SpecError::Invalid { file: name.to_string(), diagnostics: ctx.errors }),
    }
}

#[derive(Default)]
struct Raw {
    experiment: Option<(String, Loc)>,
    store: Option<PathBuf>,
    lockfile: Option<PathBuf>,
    models: Vec<(Model, Loc)>,
    benchmarks: Vec<(Benchmark, Loc)>,
    agents: Vec<(Agent, Loc)>,
    stages: BTreeMap<StageKind, (StageSpec, Loc)>,
    matrices: Vec<RawMatrix>,
    reviews: Vec<(crate::judge::Review, Loc)>,
}

/// Longest model, benchmark, agent or stage name.
const NAME_MAX: usize = 64;
/// Deepest nesting of `{ }` (and of `/* */` comments) a spec may have; the
/// KDL parser recurses per level, so a hostile or broken file could
/// otherwise overflow the stack. Real specs nest three or four levels.
const NESTING_MAX: usize = 32;
/// Deepest chain of `include`s.
const INCLUDE_DEPTH_MAX: usize = 16;
/// Largest spec file (a paper's is a few kilobytes).
const SPEC_MAX_BYTES: usize = 4 << 20;
/// The longest budget a stage may have, and the longest grace.
const BUDGET_MAX: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
const GRACE_MAX: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The byte offset where `text` first nests deeper than [`NESTING_MAX`]:
/// braces outside strings and comments, and block comments within block
/// comments. Raw strings (`#"…"#`) and escapes are skipped; anything this
/// scan gets wrong the KDL parser reports properly afterwards.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let (mut i, mut depth, mut comment) = (0, 0usize, 0usize);
    while i < b.len() {
        if comment > 0 {
            if b[i..].starts_with(b"*/") {
                comment -= 1;
                i += 2;
            } else if b[i..].starts_with(b"/*") {
                comment += 1;
                if comment > NESTING_MAX {
                    return Some(i);
                }
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'#' if b[i..].iter().find(|&&c| c != b'#') == Some(&b'"') => {
                let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                i += hashes + 1;
                i = b[i..].windows(close.len()).position(|w| w == close.as_slice()).map_or(b.len(), |p| i + p + close.len());
            }
            b'/' if b.get(i + 1) == Some(&b'/') => i = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                comment = 1;
                i += 2;
            }
            b'{' => {
                depth += 1;
                if depth > NESTING_MAX {
                    return Some(i);
                }
                i += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

fn read_document(ctx: &mut Ctx, raw: &mut Raw, src: &Arc<Src>, top: bool) {
    if src.text.len() > SPEC_MAX_BYTES {
        let loc = Loc { src: src.clone(), span: (0, 0).into() };
        ctx.error(&loc, format!("the spec is {} bytes; at most {SPEC_MAX_BYTES} are read", src.text.len()), "here", Some("is this the right file?".into()));
        return;
    }
    if let Some(at) = too_deep(&src.text) {
        let loc = Loc { src: src.clone(), span: (at, 1).into() };
        ctx.error(
            &loc,
            format!("nodes are nested more than {NESTING_MAX} levels deep"),
            "too deep",
            Some("a spec nests a few levels (stage { command … }); look for unbalanced `{`".into()),
        );
        return;
    }
    let doc = match KdlDocument::parse(&src.text) {
        Ok(d) => d,
        Err(e) => {
            for d in e.diagnostics {
                let loc = Loc { src: src.clone(), span: d.span };
                ctx.error(&loc, d.message.unwrap_or_else(|| "KDL syntax error".into()), d.label.unwrap_or_else(|| "here".into()), d.help);
            }
            return;
        }
    };
    for node in doc.nodes() {
        let n = N { node, src };
        match node.name().value() {
            "experiment" => read_experiment(ctx, raw, &n, top),
            "include" => read_include(ctx, raw, &n),
            "model" => {
                if let Some(m) = read_model(ctx, &n) {
                    raw.models.push((m, n.loc()));
                }
            }
            "benchmark" => {
                if let Some(b) = read_benchmark(ctx, &n) {
                    raw.benchmarks.push((b, n.loc()));
                }
            }
            "agent" => {
                if let Some(a) = read_agent(ctx, &n) {
                    raw.agents.push((a, n.loc()));
                }
            }
            "stage" => read_stage(ctx, raw, &n),
            "review" => {
                if let Some(r) = super::judging::read_review(ctx, &n) {
                    raw.reviews.push(r);
                }
            }
            "matrix" => {
                if let Some(m) = read_matrix(ctx, &n) {
                    raw.matrices.push(m);
                }
            }
            other => {
                let known = ["experiment", "include", "model", "benchmark", "agent", "stage", "matrix", "review"];
                ctx.error(
                    &n.name_loc(),
                    format!("unknown node `{other}`"),
                    "not a ptb node",
                    Some(did_you_mean(other, known).unwrap_or_else(|| format!("top-level nodes are {}", ListFmt(&known)))),
                );
            }
        }
    }
}

/// A node together with its source, with typed accessors that record
/// diagnostics on mistakes.
pub(super) struct N<'a> {
    node: &'a KdlNode,
    src: &'a Arc<Src>,
}

impl<'a> N<'a> {
    pub(super) fn loc(&self) -> Loc {
        Loc { src: self.src.clone(), span: self.node.span() }
    }
    pub(super) fn name_loc(&self) -> Loc {
        Loc { src: self.src.clone(), span: self.node.name().span() }
    }
    pub(super) fn name(&self) -> &str {
        self.node.name().value()
    }
    pub(super) fn entry_loc(&self, key: &str) -> Loc {
        let span = self.node.entry(key).map(|e| e.span()).unwrap_or(self.node.span());
        Loc { src: self.src.clone(), span }
    }
    pub(super) fn children(&self) -> impl Iterator<Item = N<'a>> + 'a {
        let src = self.src;
        self.node.children().into_iter().flat_map(|d| d.nodes().iter()).map(move |node| N { node, src })
    }

    /// Positional arguments (entries without a name), with their locations.
    pub(super) fn args(&self) -> Vec<(&'a KdlValue, Loc)> {
        self.node.entries().iter().filter(|e| e.name().is_none()).map(|e| (e.value(), Loc { src: self.src.clone(), span: e.span() })).collect()
    }

    /// Reject properties outside `allowed` and more than `max_args` arguments.
    pub(super) fn check_shape(&self, ctx: &mut Ctx, allowed: &[&str], max_args: usize) {
        for e in self.node.entries() {
            if let Some(k) = e.name()
                && !allowed.contains(&k.value())
            {
                let loc = Loc { src: self.src.clone(), span: e.span() };
                let help = did_you_mean(k.value(), allowed.iter().copied()).or_else(|| {
                    Some(if allowed.is_empty() {
                        format!("`{}` takes no properties", self.name())
                    } else {
                        format!("`{}` takes {}", self.name(), ListFmt(allowed))
                    })
                });
                ctx.error(&loc, format!("unknown property `{}` on `{}`", k.value(), self.name()), "unknown property", help);
            }
        }
        let args = self.args();
        if args.len() > max_args {
            ctx.error(
                &args[max_args].1,
                format!("too many arguments to `{}`", self.name()),
                "unexpected",
                Some(format!("`{}` takes at most {max_args}", self.name())),
            );
        }
    }

    /// The one required name argument (`model qwen3-1.7b`).
    pub(super) fn label(&self, ctx: &mut Ctx, what: &str) -> Option<String> {
        match self.args().first() {
            Some((KdlValue::String(s), loc)) => {
                if s.chars().count() > NAME_MAX {
                    ctx.error(
                        loc,
                        format!("{what} name is {} characters long; at most {NAME_MAX} are allowed", s.chars().count()),
                        "name too long",
                        Some("names appear in cell ids, store entries and tables: use a short one".into()),
                    );
                    return None;
                }
                if s.is_empty() || s.contains(['/', '=']) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    ctx.error(
                        loc,
                        format!("invalid {what} name `{s}`"),
                        "invalid name",
                        Some("names may not be empty or contain `/`, `=` or spaces (they appear in cell ids)".into()),
                    );
                    return None;
                }
                Some(s.clone())
            }
            Some((_, loc)) => {
                ctx.error(loc, format!("{what} name must be a string"), "not a string", None);
                None
            }
            None => {
                ctx.error(&self.loc(), format!("`{}` needs a name", self.name()), "missing name", Some(format!("write e.g. `{} my-{what}`", self.name())));
                None
            }
        }
    }

    /// The raw value of a property, if present.
    pub(super) fn node_get(&self, key: &str) -> Option<&KdlValue> {
        self.node.get(key)
    }

    pub(super) fn str_prop(&self, ctx: &mut Ctx, key: &str) -> Option<String> {
        match self.node.get(key)? {
            KdlValue::String(s) => Some(s.clone()),
            other => {
                ctx.error(
                    &self.entry_loc(key),
                    format!("`{key}` must be a string, found {}", kind_of(other)),
                    "wrong type",
                    Some(format!("quote it: {key}=\"{other}\"")),
                );
                None
            }
        }
    }

    pub(super) fn num_prop(&self, ctx: &mut Ctx, key: &str) -> Option<f64> {
        match self.node.get(key)? {
            KdlValue::Integer(i) => Some(*i as f64),
            KdlValue::Float(f) => Some(*f),
            other => {
                ctx.error(&self.entry_loc(key), format!("`{key}` must be a number, found {}", kind_of(other)), "wrong type", None);
                None
            }
        }
    }

    pub(super) fn uint_prop(&self, ctx: &mut Ctx, key: &str) -> Option<u32> {
        match self.node.get(key)? {
            KdlValue::Integer(i) if (0..=u32::MAX as i128).contains(i) => Some(*i as u32),
            other => {
                ctx.error(&self.entry_loc(key), format!("`{key}` must be a non-negative integer, found {}", kind_of(other)), "wrong type", None);
                None
            }
        }
    }

    fn duration_prop(&self, ctx: &mut Ctx, key: &str) -> Option<std::time::Duration> {
        let v = match self.node.get(key)? {
            KdlValue::String(s) => parse_duration(s),
            KdlValue::Integer(i) if *i >= 0 => u64::try_from(*i).map(std::time::Duration::from_secs).map_err(|_| format!("`{key}` of {i} seconds is too long")),
            other => Err(format!("`{key}` must be a duration like \"10h\", found {}", kind_of(other))),
        };
        v.map_err(|m| ctx.error(&self.entry_loc(key), m, "bad duration", None)).ok()
    }

    /// A duration property within `range` (budgets: a stage that may run
    /// for a thousand years is a typo, and its deadline would overflow).
    fn duration_in(&self, ctx: &mut Ctx, key: &str, range: std::ops::RangeInclusive<std::time::Duration>) -> Option<std::time::Duration> {
        let d = self.duration_prop(ctx, key)?;
        if range.contains(&d) {
            return Some(d);
        }
        let show = |d: &std::time::Duration| humantime::format_duration(*d).to_string();
        ctx.error(
            &self.entry_loc(key),
            format!("`{key}` is {}; it must be between {} and {}", show(&d), show(range.start()), show(range.end())),
            "out of range",
            None,
        );
        None
    }

    /// A `sha256=` property: 64 hex characters.
    fn sha_prop(&self, ctx: &mut Ctx) -> Option<String> {
        let s = self.str_prop(ctx, "sha256")?;
        let s = s.strip_prefix("sha256:").unwrap_or(&s).to_ascii_lowercase();
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            ctx.error(
                &self.entry_loc("sha256"),
                format!("`sha256` must be 64 hex characters, got {} characters", s.len()),
                "bad hash",
                Some("compute it with `ptb hash PATH`".into()),
            );
            return None;
        }
        Some(s)
    }

    fn path_prop(&self, ctx: &mut Ctx, key: &str) -> Option<PathBuf> {
        self.str_prop(ctx, key).map(|p| normalize(&self.src.dir.join(p)))
    }

    /// A property's raw value.
    pub(super) fn get(&self, key: &str) -> Option<&'a KdlValue> {
        self.node.get(key)
    }

    /// Enumerated string property.
    pub(super) fn choice_prop(&self, ctx: &mut Ctx, key: &str, choices: &[&str]) -> Option<String> {
        let v = self.str_prop(ctx, key)?;
        if choices.contains(&v.as_str()) {
            return Some(v);
        }
        let help = did_you_mean(&v, choices.iter().copied()).unwrap_or_else(|| format!("one of {}", ListFmt(choices)));
        ctx.error(&self.entry_loc(key), format!("unknown {key} `{v}`"), "unknown value", Some(help));
        None
    }
}

fn kind_of(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

fn read_experiment(ctx: &mut Ctx, raw: &mut Raw, n: &N, top: bool) {
    n.check_shape(ctx, &["store", "lockfile"], 1);
    if !top {
        ctx.error(
            &n.loc(),
            "`experiment` in an included file",
            "only in the main spec",
            Some("included files hold shared models, benchmarks, agents and stages".into()),
        );
        return;
    }
    if let Some((_, first)) = &raw.experiment {
        let first = first.clone();
        ctx.error(&n.loc(), "a spec declares one `experiment`", "second declaration", None);
        ctx.error(&first, "first `experiment` is here", "first declaration", None);
        return;
    }
    let Some(name) = n.label(ctx, "experiment") else { return };
    raw.store = n.path_prop(ctx, "store");
    raw.lockfile = n.path_prop(ctx, "lockfile");
    raw.experiment = Some((name, n.loc()));
}

fn read_include(ctx: &mut Ctx, raw: &mut Raw, n: &N) {
    n.check_shape(ctx, &[], 1);
    let Some((KdlValue::String(rel), loc)) = n.args().into_iter().next() else {
        ctx.error(&n.loc(), "`include` needs a file name", "missing file", Some("write `include \"common.kdl\"`".into()));
        return;
    };
    let path = n.src.dir.join(rel);
    let (text, canon) = match ctx.sources.include(&path) {
        Ok(t) => t,
        Err(e) => {
            ctx.error(&loc, format!("cannot read included file {}: {e}", path.display()), "here", Some("paths are relative to the including file".into()));
            return;
        }
    };
    if ctx.include_stack.contains(&canon) {
        ctx.error(&loc, format!("include cycle: {} includes itself", path.display()), "cycle", None);
        return;
    }
    if ctx.include_stack.len() > INCLUDE_DEPTH_MAX {
        ctx.error(
            &loc,
            format!("includes are nested more than {INCLUDE_DEPTH_MAX} deep"),
            "too deep",
            Some("include shared files from the top-level spec".into()),
        );
        return;
    }
    ctx.include_stack.push(canon);
    let src = Arc::new(Src { name: path.display().to_string(), text: Arc::new(text), dir: path.parent().map(Path::to_path_buf).unwrap_or_default() });
    read_document(ctx, raw, &src, false);
    ctx.include_stack.pop();
}

/// `path=` or `repo=` + `revision=`, optional `sha256=`.
fn read_input_ref(ctx: &mut Ctx, n: &N, what: &str) -> Option<InputRef> {
    let sha256 = n.sha_prop(ctx);
    let path = n.path_prop(ctx, "path");
    let repo = n.str_prop(ctx, "repo");
    let revision = n.str_prop(ctx, "revision");
    match (path, repo, revision) {
        (Some(p), None, None) => Some(InputRef { origin: n.str_prop(ctx, "path").unwrap_or_default(), path: p, sha256, hub: None }),
        (None, Some(repo), Some(rev)) => {
            if !valid_repo(&repo) {
                ctx.error(&n.entry_loc("repo"), format!("{what} `repo` must be `org/name` (letters, digits, `-`, `_`, `.`)"), "not a hub repo", None);
                return None;
            }
            if rev.is_empty() || rev.contains("..") || rev.starts_with('/') || rev.chars().any(|c| c.is_control() || c == ' ') {
                ctx.error(&n.entry_loc("revision"), format!("{what} `revision` must be a branch, a tag or a commit"), "not a revision", None);
                return None;
            }
            let hub = HubRef { repo: repo.clone(), revision: rev.clone(), declared_at: n.loc().describe() };
            Some(InputRef { path: PathBuf::new(), origin: format!("{repo}@{rev}"), sha256, hub: Some(hub) })
        }
        (None, Some(_), None) => {
            ctx.error(&n.entry_loc("repo"), format!("{what} `repo` needs a `revision`"), "unpinned", Some("pin the commit: revision=\"<sha>\"".into()));
            None
        }
        (Some(_), Some(_), _) => {
            ctx.error(&n.entry_loc("repo"), format!("{what} has both `path` and `repo`"), "choose one", None);
            None
        }
        _ => {
            ctx.error(&n.loc(), format!("{what} needs `path=` or `repo=` with `revision=`"), "no location", None);
            None
        }
    }
}

/// `org/name` as the hub spells repositories: it goes into URLs, so
/// nothing that could change their path (`..`, `?`, `%`, more slashes).
fn valid_repo(repo: &str) -> bool {
    let ok = |p: &str| !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    matches!(repo.split_once('/'), Some((org, name)) if ok(org) && ok(name))
}

fn read_model(ctx: &mut Ctx, n: &N) -> Option<Model> {
    n.check_shape(ctx, &["path", "repo", "revision", "sha256", "arch"], 1);
    let name = n.label(ctx, "model");
    let base = read_input_ref(ctx, n, "model");
    let arch = n.choice_prop(ctx, "arch", &crate::arch::Arch::NAMES).map(|a| a.parse().expect("one of Arch::NAMES"));
    let mut instruct = None;
    for c in n.children() {
        match c.name() {
            "instruct" => {
                c.check_shape(ctx, &["path", "repo", "revision", "sha256"], 0);
                instruct = read_input_ref(ctx, &c, "instruct model");
            }
            other => ctx.error(&c.name_loc(), format!("unknown child `{other}` of `model`"), "unknown", did_you_mean(other, ["instruct"])),
        }
    }
    Some(Model { name: name?, base: base?, arch, instruct })
}

fn read_benchmark(ctx: &mut Ctx, n: &N) -> Option<Benchmark> {
    n.check_shape(ctx, &["data", "sha256", "weight"], 1);
    let name = n.label(ctx, "benchmark");
    let sha256 = n.sha_prop(ctx);
    let data = match n.path_prop(ctx, "data") {
        Some(p) => Some(InputRef { origin: n.str_prop(ctx, "data").unwrap_or_default(), path: p, sha256, hub: None }),
        None => {
            ctx.error(&n.loc(), "benchmark needs `data=`", "no data", Some("point it at the benchmark's data file: data=\"data/gsm8k.jsonl\"".into()));
            None
        }
    };
    let weight = n.num_prop(ctx, "weight");
    if let Some(w) = weight
        && !(w.is_finite() && w >= 0.0)
    {
        ctx.error(&n.entry_loc("weight"), "`weight` must be a finite non-negative number", "bad weight", None);
    }
    Some(Benchmark { name: name?, data: data?, weight })
}

/// `command`, `env`, `secret` children shared by agents and stages.
fn read_runner_child(ctx: &mut Ctx, runner: &mut Runner, c: &N) -> bool {
    match c.name() {
        "command" => {
            c.check_shape(ctx, &[], usize::MAX);
            let mut argv = Vec::new();
            for (v, loc) in c.args() {
                match v {
                    KdlValue::String(s) => argv.push(s.clone()),
                    other => ctx.error(&loc, format!("command arguments are strings, found {}", kind_of(other)), "quote it", None),
                }
            }
            if argv.is_empty() {
                ctx.error(&c.loc(), "`command` needs at least a program", "empty", Some("write `command \"scripts/eval.sh\" \"--flag\"`".into()));
            }
            // Kept as written (relative to the spec file) so that stage keys
            // do not depend on where the repository is checked out.
            runner.command = argv;
            runner.command_dir = c.src.dir.clone();
        }
        "env" => {
            for e in c.node.entries() {
                let loc = Loc { src: c.src.clone(), span: e.span() };
                match (e.name(), e.value()) {
                    (Some(k), KdlValue::String(v)) => {
                        runner.env.insert(k.value().to_string(), v.clone());
                    }
                    (Some(k), other) => {
                        runner.env.insert(k.value().to_string(), other.to_string());
                    }
                    (None, _) => ctx.error(
                        &loc,
                        "`env` takes KEY=\"value\" properties",
                        "not a property",
                        Some("for host variables whose value must not be recorded, use `secret NAME`".into()),
                    ),
                }
            }
        }
        "sandbox" => runner.sandbox = super::sandbox::read_sandbox(ctx, c),
        "secret" => {
            c.check_shape(ctx, &[], usize::MAX);
            for (v, loc) in c.args() {
                match v {
                    KdlValue::String(s) => runner.secrets.push(s.clone()),
                    _ => ctx.error(&loc, "`secret` takes names of host environment variables", "not a name", None),
                }
            }
        }
        _ => return false,
    }
    true
}

fn read_runner_props(ctx: &mut Ctx, n: &N, runner: &mut Runner) {
    runner.image = n.str_prop(ctx, "image");
    runner.network = n.choice_prop(ctx, "network", &Network::NAMES).and_then(|v| Network::parse(&v));
    runner.pull = n.choice_prop(ctx, "pull", &PullPolicy::NAMES).and_then(|v| PullPolicy::parse(&v));
}

fn read_agent(ctx: &mut Ctx, n: &N) -> Option<Agent> {
    n.check_shape(ctx, &["checkpoint", "image", "network", "pull"], 1);
    let name = n.label(ctx, "agent")?;
    if let Some(cp) = n.choice_prop(ctx, "checkpoint", &["base", "instruct"]) {
        if n.children().next().is_some() || n.node.get("image").is_some() {
            ctx.error(
                &n.loc(),
                "a `checkpoint=` agent evaluates a model as it is and runs nothing",
                "has a runner",
                Some("remove its command/image, or drop `checkpoint=`".into()),
            );
        }
        let src = if cp == "base" { CheckpointSource::Base } else { CheckpointSource::Instruct };
        return Some(Agent { name, kind: AgentKind::Checkpoint(src) });
    }
    let mut runner = Runner::default();
    read_runner_props(ctx, n, &mut runner);
    for c in n.children() {
        if !read_runner_child(ctx, &mut runner, &c) {
            ctx.error(
                &c.name_loc(),
                format!("unknown child `{}` of `agent`", c.name()),
                "unknown",
                did_you_mean(c.name(), ["command", "env", "secret", "sandbox"]),
            );
        }
    }
    if runner.image.is_none()
        && let Some(c) = n.children().find(|c| c.name() == "sandbox")
    {
        sandbox_needs_a_container(ctx, &c, &format!("agent `{name}` has no image"));
    }
    if runner.command.is_empty() && runner.image.is_none() {
        ctx.error(
            &n.loc(),
            format!("agent `{name}` has nothing to run"),
            "no command or image",
            Some("add `{ command \"scripts/agent.sh\" }`, `image=\"name@sha256:…\"`, or `checkpoint=base`".into()),
        );
        return None;
    }
    Some(Agent { name, kind: AgentKind::Run(runner) })
}

/// A `sandbox` only configures containers: on a local process it would
/// promise an isolation that does not exist.
fn sandbox_needs_a_container(ctx: &mut Ctx, c: &N, why: &str) {
    ctx.error(
        &c.name_loc(),
        format!("`sandbox` applies to container stages, but {why}"),
        "no container",
        Some("give it an `image=` (and `executor=docker`), or remove the `sandbox` node; local stages are contained by ptb's process namespace (docs/security.md)".into()),
    );
}

fn read_stage(ctx: &mut Ctx, raw: &mut Raw, n: &N) {
    n.check_shape(ctx, &["executor", "budget", "grace", "image", "network", "pull"], 1);
    let Some(name) = n.label(ctx, "stage") else { return };
    let Some(kind) = StageKind::from_name(&name) else {
        let help = did_you_mean(&name, StageKind::ALL.map(|k| k.name())).unwrap_or_else(|| "stages are `agent`, `judge` and `eval`".into());
        ctx.error(&n.args()[0].1, format!("unknown stage `{name}`"), "unknown stage", Some(help));
        return;
    };
    let mut runner = Runner::default();
    read_runner_props(ctx, n, &mut runner);
    let mut resources = Resources::default();
    let mut llm_judge = None;
    let mut llm_judge_loc = None;
    let mut policy = None;
    let mut keep = Keep::default();
    let mut slurm = None;
    for c in n.children() {
        if c.name() == "slurm" {
            slurm = Some((read_slurm(ctx, &c), c.name_loc()));
        } else if c.name() == "policy" {
            if kind != StageKind::Judge {
                ctx.error(&c.name_loc(), "`policy` belongs in the judge stage", "not the judge stage", Some("move it into `stage judge { … }`".into()));
            }
            policy = super::judging::read_policy(ctx, &c);
        } else if c.name() == "keep" {
            if kind != StageKind::Agent {
                ctx.error(
                    &c.name_loc(),
                    "`keep` belongs in the agent stage",
                    "not the agent stage",
                    Some("only the agent stage's /work is kept; move it into `stage agent { … }`".into()),
                );
            }
            keep = super::judging::read_keep(ctx, &c);
        } else if c.name() == "llm-judge" {
            llm_judge_loc = Some(c.name_loc());
            if kind == StageKind::Agent {
                ctx.error(
                    &c.name_loc(),
                    "`llm-judge` belongs in the judge or eval stage",
                    "the agent stage",
                    Some("in `stage eval` it scores Arena-Hard and HealthBench answers; in `stage judge` it reviews the agent's run; move it there".into()),
                );
            }
            llm_judge = read_llm_judge(ctx, &c, &mut runner, kind);
        } else if c.name() == "resources" {
            c.check_shape(ctx, &["gpus", "cpus", "memory", "disk"], 0);
            resources.gpus = c.uint_prop(ctx, "gpus").unwrap_or(0);
            resources.cpus = c.uint_prop(ctx, "cpus");
            resources.memory_bytes =
                c.str_prop(ctx, "memory").and_then(|m| parse_memory(&m).map_err(|e| ctx.error(&c.entry_loc("memory"), e, "bad size", None)).ok());
            resources.disk_bytes =
                c.str_prop(ctx, "disk").and_then(|m| parse_memory(&m).map_err(|e| ctx.error(&c.entry_loc("disk"), e, "bad size", None)).ok());
        } else if !read_runner_child(ctx, &mut runner, &c) {
            ctx.error(
                &c.name_loc(),
                format!("unknown child `{}` of `stage`", c.name()),
                "unknown",
                did_you_mean(c.name(), ["command", "env", "secret", "sandbox", "resources", "llm-judge", "policy", "keep", "slurm"]),
            );
        }
    }
    let executor = match n.choice_prop(ctx, "executor", &["local", "docker", "slurm"]).as_deref() {
        Some("docker") => ExecutorKind::Docker,
        Some("slurm") => ExecutorKind::Slurm,
        Some(_) => ExecutorKind::Local,
        None if runner.image.is_some() => ExecutorKind::Docker,
        None => ExecutorKind::Local,
    };
    // Slurm runs a stage with an image in Docker on its node, hardened
    // the same way; only a stage that runs as a plain process has no
    // container to configure.
    let runs_a_container = match executor {
        ExecutorKind::Docker => true,
        ExecutorKind::Slurm => runner.image.is_some() || kind == StageKind::Agent,
        ExecutorKind::Local => false,
    };
    if !runs_a_container && let Some(c) = n.children().find(|c| c.name() == "sandbox") {
        sandbox_needs_a_container(ctx, &c, &format!("stage `{name}` runs on the {} executor", executor.name()));
    }
    if let Some((_, loc)) = &slurm
        && executor != ExecutorKind::Slurm
    {
        ctx.error(
            loc,
            format!("`slurm` settings in a stage that runs with executor={}", executor.name()),
            "not a Slurm stage",
            Some(format!("add `executor=\"slurm\"` to `stage {name}`, or remove `slurm`")),
        );
    }
    if let (Some(j), Some(loc)) = (&llm_judge, &llm_judge_loc)
        && executor == ExecutorKind::Docker
        && runner.network != Some(Network::Bridge)
    {
        ctx.error(
            loc,
            format!("the judge at {} cannot be reached from this stage's container, which has no network", j.url),
            "needs the network",
            Some(format!("add `network=bridge` to `stage {name}`")),
        );
    }
    if kind == StageKind::Agent && !runner.command.is_empty() {
        ctx.error(&n.loc(), "the agent stage's command comes from each `agent`", "command here", Some("move `command` into the `agent` nodes".into()));
    }
    if kind != StageKind::Agent && runner.command.is_empty() {
        ctx.error(&n.loc(), format!("stage `{name}` has no command"), "no command", Some(format!("add `{{ command \"scripts/{name}.sh\" }}`")));
    }
    let default_budget = match kind {
        StageKind::Agent => 10 * 3600,
        StageKind::Judge => 3600,
        StageKind::Eval => 8 * 3600,
    };
    let spec = StageSpec {
        kind,
        executor,
        budget: n.duration_in(ctx, "budget", std::time::Duration::from_secs(1)..=BUDGET_MAX).unwrap_or(std::time::Duration::from_secs(default_budget)),
        grace: n.duration_in(ctx, "grace", std::time::Duration::ZERO..=GRACE_MAX).unwrap_or(std::time::Duration::from_secs(30)),
        resources,
        runner,
        llm_judge,
        policy,
        keep,
        slurm: slurm.map(|(s, _)| s).unwrap_or_default(),
    };
    if let Some((_, first)) = raw.stages.get(&kind) {
        let first = first.clone();
        ctx.error(&n.loc(), format!("stage `{name}` is declared twice"), "second declaration", None);
        ctx.error(&first, format!("first `{name}` stage is here"), "first declaration", None);
        return;
    }
    raw.stages.insert(kind, (spec, n.loc()));
}

/// `slurm "--exclusive" partition="gpu" account="lab" qos="normal" constraint="a100"`:
/// arguments are further sbatch options, passed verbatim.
fn read_slurm(ctx: &mut Ctx, c: &N) -> SlurmOptions {
    c.check_shape(ctx, &["partition", "account", "qos", "constraint"], usize::MAX);
    let mut extra = Vec::new();
    for (v, loc) in c.args() {
        match v {
            KdlValue::String(s) if s.starts_with('-') => extra.push(s.clone()),
            KdlValue::String(s) => {
                ctx.error(&loc, format!("`{s}` is not an sbatch option"), "not an option", Some(format!("sbatch options start with `-`: \"--{s}\"")))
            }
            other => ctx.error(&loc, format!("expected an sbatch option, found {}", kind_of(other)), "not an option", None),
        }
    }
    SlurmOptions {
        partition: c.str_prop(ctx, "partition"),
        account: c.str_prop(ctx, "account"),
        qos: c.str_prop(ctx, "qos"),
        constraint: c.str_prop(ctx, "constraint"),
        extra,
    }
}

/// `llm-judge url="…" model="…" api-key-env="OPENAI_API_KEY" concurrency=16`,
/// and in the judge stage `votes=3` (independent reviews, majority per kind).
/// The key's variable becomes one of the stage's secrets.
fn read_llm_judge(ctx: &mut Ctx, c: &N, runner: &mut Runner, kind: StageKind) -> Option<LlmJudge> {
    c.check_shape(ctx, &["url", "model", "api-key-env", "concurrency", "votes"], 0);
    let required = |ctx: &mut Ctx, key: &str, example: &str| {
        let v = c.str_prop(ctx, key);
        if v.is_none() && c.node.get(key).is_none() {
            ctx.error(&c.loc(), format!("`llm-judge` needs `{key}=`"), "missing", Some(format!("for the reference's judge: {example}")));
        }
        v
    };
    let url = required(ctx, "url", "url=\"https://api.openai.com/v1\"");
    let model = required(ctx, "model", "model=\"gpt-5-mini\"");
    if let Some(u) = &url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        ctx.error(
            &c.entry_loc("url"),
            format!("`{u}` is not an http(s) URL"),
            "not a URL",
            Some("the base of an OpenAI-compatible API, e.g. \"https://api.openai.com/v1\"".into()),
        );
    }
    let api_key_env = c.str_prop(ctx, "api-key-env").unwrap_or_else(|| "OPENAI_API_KEY".into());
    let concurrency = c.uint_prop(ctx, "concurrency");
    if concurrency == Some(0) {
        ctx.error(&c.entry_loc("concurrency"), "`concurrency` must be at least 1", "zero", None);
    }
    let votes = c.uint_prop(ctx, "votes");
    if let Some(v) = votes {
        if kind != StageKind::Judge {
            ctx.error(
                &c.entry_loc("votes"),
                "`votes` applies to the LLM reviewer of the judge stage",
                "not the judge stage",
                Some("the eval's judge follows the reference's protocol; remove `votes`".into()),
            );
        } else if v == 0 || v % 2 == 0 || v > 9 {
            ctx.error(
                &c.entry_loc("votes"),
                format!("`votes` must be odd, from 1 to 9, not {v}"),
                "not an odd count",
                Some("a majority needs an odd number of reviews, e.g. votes=3".into()),
            );
        }
    }
    if !runner.secrets.contains(&api_key_env) {
        runner.secrets.push(api_key_env.clone());
    }
    Some(LlmJudge { url: url?, model: model?, api_key_env, concurrency, votes: votes.unwrap_or(1) })
}

fn read_matrix(ctx: &mut Ctx, n: &N) -> Option<RawMatrix> {
    n.check_shape(ctx, &[], 0);
    let mut m = RawMatrix::default();
    for c in n.children() {
        let strings = |ctx: &mut Ctx, c: &N| -> Vec<(String, Loc)> {
            c.check_shape(ctx, &[], usize::MAX);
            c.args()
                .into_iter()
                .filter_map(|(v, loc)| match v {
                    KdlValue::String(s) => Some((s.clone(), loc)),
                    other => {
                        ctx.error(&loc, format!("expected a name, found {}", kind_of(other)), "not a name", None);
                        None
                    }
                })
                .collect()
        };
        match c.name() {
            "models" => m.models = Some(strings(ctx, &c)),
            "benchmarks" => m.benchmarks = Some(strings(ctx, &c)),
            "agents" => m.agents = Some(strings(ctx, &c)),
            "seeds" => {
                c.check_shape(ctx, &[], usize::MAX);
                let mut seeds = Vec::new();
                for (v, loc) in c.args() {
                    match v {
                        KdlValue::Integer(i) if (0..=u64::MAX as i128).contains(i) => seeds.push(*i as u64),
                        other => ctx.error(&loc, format!("seeds are non-negative integers, found {}", kind_of(other)), "not a seed", None),
                    }
                }
                m.seeds = Some((seeds, c.loc()));
            }
            "exclude" => {
                c.check_shape(ctx, &["model", "benchmark", "agent", "seed"], 0);
                let seed = match c.node.get("seed") {
                    Some(KdlValue::Integer(i)) if *i >= 0 => Some(*i as u64),
                    Some(_) => {
                        ctx.error(&c.entry_loc("seed"), "`seed` must be a non-negative integer", "wrong type", None);
                        None
                    }
                    None => None,
                };
                let sel = |ctx: &mut Ctx, key: &str| c.str_prop(ctx, key).map(|v| (v, c.entry_loc(key)));
                m.excludes.push(Selector { model: sel(ctx, "model"), benchmark: sel(ctx, "benchmark"), agent: sel(ctx, "agent"), seed });
            }
            other => ctx.error(
                &c.name_loc(),
                format!("unknown child `{other}` of `matrix`"),
                "unknown",
                did_you_mean(other, ["models", "benchmarks", "agents", "seeds", "exclude"]),
            ),
        }
    }
    Some(m)
}

fn build(ctx: &mut Ctx, raw: Raw, name: &str, dir: &Path) -> Option<Experiment> {
    let top = Loc { src: Arc::new(Src { name: name.to_string(), text: Arc::new(String::new()), dir: dir.to_path_buf() }), span: (0, 0).into() };
    let Some((exp_name, _)) = raw.experiment.clone() else {
        ctx.error(&top, "the spec has no `experiment` node", "start of file", Some("add `experiment my-study` at the top".into()));
        return None;
    };
    check_unique(ctx, raw.models.iter().map(|(m, l)| (m.name.as_str(), l)), "model");
    check_unique(ctx, raw.benchmarks.iter().map(|(b, l)| (b.name.as_str(), l)), "benchmark");
    check_unique(ctx, raw.agents.iter().map(|(a, l)| (a.name.as_str(), l)), "agent");

    let needs_agent_stage = raw.agents.iter().any(|(a, _)| matches!(a.kind, AgentKind::Run(_)));
    let exp_loc = raw.experiment.as_ref().map(|(_, l)| l.clone()).unwrap_or(top);
    let mut stages = raw.stages;
    let eval = stages.remove(&StageKind::Eval);
    let agent = stages.remove(&StageKind::Agent);
    if eval.is_none() {
        ctx.error(&exp_loc, "the experiment has no `stage eval`", "declared here", Some("add `stage eval { command \"scripts/eval.sh\" }`".into()));
    }
    if agent.is_none() && needs_agent_stage {
        ctx.error(&exp_loc, "agents that run need a `stage agent`", "declared here", Some("add `stage agent budget=\"10h\"`".into()));
    }
    // Executor/image agreement, per agent for the agent stage.
    if let Some((spec, _)) = &agent {
        for (a, loc) in &raw.agents {
            if let AgentKind::Run(r) = &a.kind {
                let dockerish = r.image.is_some();
                match (spec.executor, dockerish) {
                    (ExecutorKind::Docker, false) => ctx.error(
                        loc,
                        format!("agent `{}` has no image but the agent stage runs in docker", a.name),
                        "no image",
                        Some("add image=\"name@sha256:…\"".into()),
                    ),
                    (ExecutorKind::Local, true) => ctx.error(
                        loc,
                        format!("agent `{}` has an image but the agent stage is local", a.name),
                        "image here",
                        Some("set `stage agent executor=\"docker\"`".into()),
                    ),
                    _ => {}
                }
            }
        }
    }
    let models: Vec<Model> = raw.models.iter().map(|(m, _)| m.clone()).collect();
    let benchmarks: Vec<Benchmark> = raw.benchmarks.iter().map(|(b, _)| b.clone()).collect();
    let agents: Vec<Agent> = raw.agents.iter().map(|(a, _)| a.clone()).collect();
    let agent_locs: Vec<Loc> = raw.agents.iter().map(|(_, l)| l.clone()).collect();
    let cells = expand(ctx, &raw.matrices, &models, &benchmarks, &agents, &agent_locs, &exp_loc);
    let has_judge = stages.contains_key(&StageKind::Judge);
    let reviews = super::judging::check_reviews(ctx, raw.reviews, &cells, |c| matches!(agents[c.agent].kind, AgentKind::Run(_)), has_judge);
    if !ctx.errors.is_empty() {
        return None;
    }
    let lockfile = normalize(&raw.lockfile.unwrap_or_else(|| dir.join("..").join("lockfiles").join(format!("{exp_name}.lock"))));
    let store = normalize(&raw.store.unwrap_or_else(|| dir.join("..").join("store")));
    Some(Experiment {
        name: exp_name,
        source: dir.join(name),
        dir: dir.to_path_buf(),
        store,
        lockfile,
        models,
        benchmarks,
        agents,
        stages: Stages {
            agent: agent.map(|(s, _)| s).unwrap_or_else(placeholder_agent_stage),
            judge: stages.remove(&StageKind::Judge).map(|(s, _)| s),
            eval: eval?.0,
        },
        cells,
        reviews,
    })
}

/// An experiment with only reference rows has no agent stage; it is never run.
fn placeholder_agent_stage() -> StageSpec {
    StageSpec {
        kind: StageKind::Agent,
        executor: ExecutorKind::Local,
        budget: std::time::Duration::from_secs(0),
        grace: std::time::Duration::from_secs(0),
        resources: Resources::default(),
        runner: Runner::default(),
        llm_judge: None,
        policy: None,
        keep: Keep::default(),
        slurm: SlurmOptions::default(),
    }
}

fn check_unique<'a>(ctx: &mut Ctx, items: impl Iterator<Item = (&'a str, &'a Loc)>, what: &str) {
    let mut seen: BTreeMap<&str, &Loc> = BTreeMap::new();
    for (name, loc) in items {
        if let Some(first) = seen.get(name) {
            let first = (*first).clone();
            ctx.error(
                loc,
                format!("duplicate {what} `{name}`"),
                "declared again",
                Some(format!("{what} names must be unique; the first is at {}", first.describe())),
            );
        } else {
            seen.insert(name, loc);
        }
    }
}

/// Lexically drop `.` and fold `dir/..`, so messages show `store/v1/…`
/// rather than `experiments/../store/v1/…`. Lexical on purpose: the path
/// may not exist yet, and following symlinks would change what users wrote.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}
