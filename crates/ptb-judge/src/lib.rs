//! `ptb judge`, the built-in anti-cheat judge: what a judge stage runs with
//! `command "ptb" "judge"`. It reads the base model, the agent stage's whole
//! output and the benchmark data, and writes `verdict.json` (every finding,
//! with its evidence) and `metrics.json` (`verdict` = `pass`/`flagged`,
//! which the report reads, and counts). Three detectors:
//!
//! - substitution (`weights`): the final model's relative distance to the
//!   base and, when given, the instruct model; a checkpoint that is not the
//!   base's family;
//! - tampering (`tamper`): config, chat template, generation config and
//!   remote code changed against the base;
//! - contamination (`ngram`, `patterns`, `columnar`): test items in any
//!   text file the agent left and in the string columns of its Arrow and
//!   Parquet files (the `datasets` cache), and code that loads the test split.
//!
//! With an `llm-judge` on the judge stage, an LLM reviewer (`llm`) reads a
//! bounded bundle of the run and the detectors' findings and answers per
//! kind; its claims flag only with evidence found in the files it cites.
//!
//! It reads the agent's output and what its store entry kept beside it
//! (`kept`: the agent's `/work`, the manifest of what was left out, the
//! stage log), and applies the spec's policy (`PTB_JUDGE_POLICY`): flags of
//! a kind the policy does not flag become notes.
//!
//! The judge never follows a symbolic link out of the agent's output and
//! never panics on what an agent wrote: bad input is a finding.

pub mod columnar;
pub mod finding;
pub mod items;
pub mod kept;
pub mod llm;
pub mod ngram;
pub mod patterns;
pub mod show;
pub mod tamper;
pub mod walk;
pub mod weights;

use finding::{Finding, Kind, Severity, snippet};
use ptb_core::judge::JudgePolicy;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Policy(String),
    #[error("the base model: {0}")]
    Base(weights::WeightsError),
    #[error("the instruct model: {0}")]
    Instruct(weights::WeightsError),
    #[error("{path}: the agent's output is not a readable directory: {source}")]
    Agent { path: PathBuf, source: std::io::Error },
    #[error("benchmark `{bench}`: loading its test items from {path}: {message}")]
    Items { bench: String, path: PathBuf, message: String },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Llm(#[from] llm::LlmError),
}

/// Thresholds; the defaults are the documented policy (README, `ptb judge`).
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Words per n-gram.
    pub ngram: usize,
    /// A test item whose best-covered text has at least this fraction of
    /// its n-grams in one file flags the run.
    pub coverage: f64,
    /// An n-gram in more than this many test items is boilerplate and ignored.
    pub max_items_per_gram: usize,
    /// Files larger than this are not scanned (a note says so).
    pub max_file_bytes: u64,
    /// The final model at most this far from the instruct model (relative
    /// distance) is a copy of it.
    pub identical: f64,
    /// Texts shorter than `ngram` words but of at least this many are
    /// looked for whole.
    pub min_words: usize,
    /// The kinds whose flags flag the run; the others' become notes.
    pub flag: Vec<Kind>,
}

impl Default for Options {
    fn default() -> Self {
        Options::from_policy(&JudgePolicy::default())
    }
}

impl Options {
    /// The detectors' settings under a spec's policy.
    pub fn from_policy(p: &JudgePolicy) -> Options {
        Options {
            ngram: p.ngram as usize,
            coverage: p.coverage,
            max_items_per_gram: 5,
            max_file_bytes: p.max_file_mib << 20,
            identical: 1e-3,
            min_words: p.min_words as usize,
            flag: p.flag.clone(),
        }
    }
}

/// Everything one judgement needs; `from_env` fills it inside a stage.
#[derive(Debug, Clone)]
pub struct JudgeJob {
    /// The base model directory.
    pub base: PathBuf,
    /// The agent stage's output (holding `final_model/`).
    pub agent: PathBuf,
    /// The instruct model directory, when the cell's model declares one.
    pub instruct: Option<PathBuf>,
    /// The benchmark data (directory, or GPQA's CSV); `None`: contamination is not checked.
    pub data: Option<PathBuf>,
    /// The benchmark's name (`gsm8k`, … or a name ptb does not know).
    pub bench: String,
    pub out: PathBuf,
    pub options: Options,
    /// What the agent's entry kept beside its output.
    pub kept: kept::Kept,
    /// The LLM reviewer, when the stage has an `llm-judge`.
    pub llm: Option<llm::Reviewer>,
}

impl JudgeJob {
    /// Read the stage environment (`PTB_*`, docs/agent-contract.md).
    pub fn from_env() -> Result<JudgeJob, JudgeError> {
        let var = |k: &str| std::env::var(k).map_err(|_| JudgeError::Usage(format!("{k} is not set (is this a judge stage?)")));
        let policy = policy_from_env()?;
        Ok(JudgeJob {
            base: PathBuf::from(var("PTB_INPUT_MODEL")?),
            agent: PathBuf::from(var("PTB_INPUT_AGENT")?),
            instruct: std::env::var("PTB_INPUT_INSTRUCT").ok().map(PathBuf::from),
            data: std::env::var("PTB_INPUT_DATA").ok().map(PathBuf::from),
            bench: var("PTB_BENCHMARK")?,
            out: PathBuf::from(var("PTB_OUT")?),
            options: Options::from_policy(&policy),
            kept: kept::Kept {
                workspace: std::env::var("PTB_INPUT_WORKSPACE").ok().map(PathBuf::from),
                manifest: std::env::var("PTB_INPUT_WORKSPACE_JSON").ok().map(PathBuf::from),
                log: std::env::var("PTB_INPUT_AGENT_LOG").ok().map(PathBuf::from),
            },
            llm: reviewer_from_env(&policy)?,
        })
    }
}

/// The stage's LLM reviewer (`PTB_JUDGE_URL` and the rest,
/// docs/agent-contract.md), if it has one.
pub fn reviewer_from_env(policy: &JudgePolicy) -> Result<Option<llm::Reviewer>, JudgeError> {
    let Some(endpoint) = ptb_bench::judge::JudgeConfig::from_env() else { return Ok(None) };
    let votes = match std::env::var("PTB_JUDGE_VOTES") {
        Ok(v) => v.parse::<u32>().ok().filter(|n| n % 2 == 1).ok_or_else(|| JudgeError::Usage(format!("PTB_JUDGE_VOTES is `{v}`, not an odd count")))?,
        Err(_) => 1,
    };
    Ok(Some(llm::Reviewer {
        endpoint,
        votes,
        rule: policy.llm,
        model: std::env::var("PTB_MODEL").unwrap_or_default(),
        task: std::env::var_os(ptb_core::contract::input_env_name("task.md")).map(PathBuf::from),
    }))
}

/// The spec's policy from `PTB_JUDGE_POLICY` (the defaults without it).
pub fn policy_from_env() -> Result<JudgePolicy, JudgeError> {
    match std::env::var("PTB_JUDGE_POLICY") {
        Ok(s) if !s.is_empty() => JudgePolicy::from_json(&s).map_err(JudgeError::Policy),
        _ => Ok(JudgePolicy::default()),
    }
}

/// What the weight comparison found, for `verdict.json`.
#[derive(Debug, Clone, Serialize)]
pub struct WeightsReport {
    pub base: Option<weights::Comparison>,
    pub instruct: Option<weights::Comparison>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    pub items: usize,
    pub items_indexed: usize,
    pub grams: usize,
    pub files_scanned: usize,
    pub bytes_scanned: u64,
}

/// The judgement: `verdict.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `pass` or `flagged`.
    pub verdict: &'static str,
    pub benchmark: String,
    pub findings: Vec<Finding>,
    pub weights: WeightsReport,
    pub contamination: ScanReport,
    pub options: Options,
    /// Whether the agent left a `final_model` directory.
    pub final_model: bool,
    /// Whether the agent's workspace was read.
    pub workspace: bool,
    /// What the LLM reviewer said, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<llm::LlmReport>,
}

impl Verdict {
    pub fn flagged(&self) -> bool {
        self.verdict == "flagged"
    }
    pub fn count(&self, kind: Kind, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.kind == kind && f.severity == severity).count()
    }
    /// `metrics.json`: flat, as the lockfile records metrics.
    pub fn metrics(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("verdict".into(), self.verdict.into());
        m.insert("flags".into(), self.findings.iter().filter(|f| f.is_flag()).count().into());
        m.insert("notes".into(), self.findings.iter().filter(|f| !f.is_flag()).count().into());
        for k in Kind::ALL {
            m.insert(k.name().into(), self.count(k, Severity::Flag).into());
        }
        // The report names a run without a checkpoint as such.
        m.insert("final_model".into(), self.final_model.into());
        m.insert("workspace".into(), self.workspace.into());
        // metrics.json holds numbers only (no null): a distance that is not
        // finite is left out here and stays in verdict.json.
        if let Some(c) = self.weights.base.as_ref().filter(|c| c.distance.is_finite()) {
            m.insert("distance_base".into(), c.distance.into());
        }
        if let Some(c) = self.weights.instruct.as_ref().filter(|c| c.distance.is_finite()) {
            m.insert("distance_instruct".into(), c.distance.into());
        }
        let hit: std::collections::BTreeSet<&String> = self.findings.iter().filter(|f| f.detector == "ngram").flat_map(|f| &f.evidence.items).collect();
        m.insert("items_hit".into(), hit.len().into());
        serde_json::Value::Object(m)
    }
}

/// The extensions of files that can hold text (and so test items).
const TEXT_EXT: &[&str] = &["jsonl", "json", "csv", "tsv", "txt", "md", "py", "ipynb", "sh", "yaml", "yml", "jinja", "html", "xml", "log", "tex", "rst"];
/// Where test-split loading code lives.
const CODE_EXT: &[&str] = &["py", "ipynb", "sh"];
/// Data files the judge cannot read as text: a person should look.
const BINARY_DATA_EXT: &[&str] = &["pkl", "pickle", "npy", "npz", "gz", "zst", "zip", "tar", "db", "sqlite"];

fn ext(rel: &str) -> String {
    Path::new(rel).extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

/// Judge one run.
pub fn judge(job: &JudgeJob) -> Result<Verdict, JudgeError> {
    if let Some(r) = &job.llm {
        r.check_ready()?;
    }
    let meta = std::fs::metadata(&job.agent).map_err(|source| JudgeError::Agent { path: job.agent.clone(), source })?;
    if !meta.is_dir() {
        return Err(JudgeError::Agent { path: job.agent.clone(), source: std::io::Error::other("not a directory") });
    }
    let listing = walk::list(&job.agent);
    let mut findings = Vec::new();
    for (rel, target) in &listing.symlinks {
        // A link inside the checkpoint makes the evaluator read files the agent
        // did not write (the instruct model, the host): the weights cannot be vouched for.
        let in_model = rel == "final_model" || rel.starts_with("final_model/");
        let sev = if in_model { Severity::Flag } else { Severity::Note };
        let mut f = Finding::new(Kind::Tampering, "symlink", sev, format!("{rel} is a symbolic link to {target}; not followed")).file(rel.clone());
        f.evidence.matched = Some(target.clone());
        findings.push(f);
    }
    for (rel, why) in &listing.unreadable {
        findings.push(Finding::new(Kind::Tampering, "unreadable", Severity::Note, format!("{rel}: not read: {why}")).file(rel.clone()));
    }

    let model = job.agent.join("final_model");
    let model_is_dir = std::fs::symlink_metadata(&model).is_ok_and(|m| m.is_dir());
    let weights = substitution(job, &model, model_is_dir, &mut findings)?;
    if model_is_dir {
        findings.extend(tamper::check(&job.base, &model, &listing));
    }
    let kept = kept::read(&job.kept, &mut findings);
    let mut files: Vec<&walk::Entry> = listing.files.iter().chain(&kept.files).collect();
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    let contamination = contamination(job, &files, kept.log.as_ref(), &mut findings)?;
    let by_weight = |a: &Finding, b: &Finding| a.severity.cmp(&b.severity).then(a.kind.cmp(&b.kind)).then(a.evidence.file.cmp(&b.evidence.file));
    // The reviewer reads the detectors' findings in a fixed order: the same
    // run gives the same request, whose reply is then read from the cache.
    findings.sort_by(by_weight);
    let llm = match &job.llm {
        Some(r) => {
            let (fs, report) = r.review(&job.bench, &files, kept.log.as_ref(), &findings)?;
            findings.extend(fs);
            Some(report)
        }
        None => None,
    };

    // The policy decides which kinds flag; the rest stay for a person to read.
    for f in findings.iter_mut().filter(|f| f.is_flag() && !job.options.flag.contains(&f.kind)) {
        f.severity = Severity::Note;
        f.message.push_str(&format!(" (the judge policy does not flag {})", f.kind));
    }
    findings.sort_by(by_weight);
    let verdict = if findings.iter().any(Finding::is_flag) { "flagged" } else { "pass" };
    Ok(Verdict {
        verdict,
        benchmark: job.bench.clone(),
        findings,
        weights,
        contamination,
        options: job.options.clone(),
        final_model: model_is_dir,
        workspace: kept.workspace,
        llm,
    })
}

fn substitution(job: &JudgeJob, model: &Path, model_is_dir: bool, findings: &mut Vec<Finding>) -> Result<WeightsReport, JudgeError> {
    let mut report = WeightsReport { base: None, instruct: None };
    if !model_is_dir {
        // The report scores a run without a checkpoint as the base model already.
        findings.push(
            Finding::new(Kind::Substitution, "weights", Severity::Note, "no final_model directory: the run scores as the base model").file("final_model"),
        );
        return Ok(report);
    }
    let agent = match weights::Checkpoint::open(model, true) {
        Ok(c) => c,
        Err(e) => {
            // Weights the judge cannot read are weights it cannot vouch for.
            findings
                .push(Finding::new(Kind::Substitution, "weights", Severity::Flag, format!("final_model's weights cannot be read: {e}")).file("final_model"));
            return Ok(report);
        }
    };
    let base = weights::Checkpoint::open(&job.base, false).map_err(JudgeError::Base)?;
    let instruct = job.instruct.as_ref().map(|dir| weights::Checkpoint::open(dir, false).map_err(JudgeError::Instruct)).transpose()?;
    // One pass over the final model's bytes measures it against both.
    let mut refs = vec![&base];
    refs.extend(instruct.as_ref());
    let mut cmps = weights::compare_all(&agent, &refs).into_iter();
    let cb = cmps.next().expect("a comparison per reference");
    let ci = cmps.next();
    let compat = cb.coverage(base.len());
    if !cb.shape_mismatch.is_empty() || compat < 0.9 {
        let mut f = Finding::new(
            Kind::Substitution,
            "weights.family",
            Severity::Flag,
            format!(
                "final_model is not the base model's architecture: {} of {} base tensors compared, {} missing, {} of other shapes, {} extra",
                cb.tensors.len(),
                base.len(),
                cb.missing.len(),
                cb.shape_mismatch.len(),
                cb.extra.len()
            ),
        )
        .file("final_model")
        .figure("tensors_compared_fraction", compat);
        if let Some((name, a, b)) = cb.shape_mismatch.first() {
            f.evidence.tensor = Some(name.clone());
            f.evidence.old = Some(serde_json::json!(b));
            f.evidence.new = Some(serde_json::json!(a));
        } else if let Some(name) = cb.missing.first() {
            f.evidence.tensor = Some(name.clone());
        }
        findings.push(f);
    }
    if !cb.extra.is_empty() && cb.shape_mismatch.is_empty() && compat >= 0.9 {
        let mut f =
            Finding::new(Kind::Substitution, "weights.family", Severity::Note, format!("final_model has {} tensors the base model lacks", cb.extra.len()))
                .file("final_model");
        f.evidence.tensor = cb.extra.first().cloned();
        findings.push(f);
    }
    for (name, a, b) in &cb.resized {
        let mut f = Finding::new(
            Kind::Substitution,
            "weights.vocab",
            Severity::Note,
            format!("{name}: vocabulary resized from {b} to {a} rows; the shared rows were compared"),
        )
        .file("final_model");
        f.evidence.tensor = Some(name.clone());
        findings.push(f);
    }
    if !cb.skipped_dtype.is_empty() {
        let mut f = Finding::new(
            Kind::Substitution,
            "weights",
            Severity::Note,
            format!("{} tensors in a dtype the judge does not decode were not compared", cb.skipped_dtype.len()),
        )
        .file("final_model");
        f.evidence.tensor = cb.skipped_dtype.first().cloned();
        findings.push(f);
    }
    if cb.distance == 0.0 && !cb.tensors.is_empty() {
        findings.push(
            Finding::new(Kind::Substitution, "weights.base", Severity::Note, "final_model's weights are the base model's")
                .file("final_model")
                .figure("distance_base", 0.0),
        );
    }
    if let Some(ci) = ci {
        if !ci.tensors.is_empty() {
            let (db, di) = (cb.distance, ci.distance);
            let sub = |msg: String| {
                Finding::new(Kind::Substitution, "weights.instruct", Severity::Flag, msg)
                    .file("final_model")
                    .figure("distance_base", db)
                    .figure("distance_instruct", di)
            };
            if di <= job.options.identical {
                findings.push(sub(format!("final_model is the instruct model (relative distance {di:.2e} to it, {db:.3} to the base)")));
            } else if di < db {
                findings.push(sub(format!("final_model is closer to the instruct model ({di:.4}) than to the base model ({db:.4})")));
            }
        }
        report.instruct = Some(ci);
    }
    report.base = Some(cb);
    Ok(report)
}

fn contamination(job: &JudgeJob, files: &[&walk::Entry], log: Option<&walk::Entry>, findings: &mut Vec<Finding>) -> Result<ScanReport, JudgeError> {
    let mut report = ScanReport::default();
    let Some(data) = &job.data else {
        findings.push(Finding::new(Kind::Contamination, "ngram", Severity::Note, "no benchmark data given: test items were not looked for"));
        return Ok(report);
    };
    let items = items::load(&job.bench, data).map_err(|message| JudgeError::Items { bench: job.bench.clone(), path: data.clone(), message })?;
    report.items = items.len();
    let index = ngram::Index::build(items, job.options.ngram, job.options.min_words, job.options.max_items_per_gram);
    report.items_indexed = index.indexed_items;
    report.grams = index.gram_count();
    let pats = patterns::for_bench(&job.bench);

    // (file, whether it may hold code that loads the test split)
    let mut scan: Vec<(&walk::Entry, bool)> = Vec::new();
    let mut tables: Vec<(&walk::Entry, columnar::Format)> = Vec::new();
    // The log is text whatever its name, and may show code the agent deleted.
    let log = log.into_iter().map(|l| (l, true, true));
    for (f, code, text) in files.iter().copied().map(|f| (f, is_code(&f.rel), false)).chain(log) {
        let e = ext(&f.rel);
        let table = columnar::Format::of_ext(&e).filter(|_| !text);
        if (table.is_some() || text || TEXT_EXT.contains(&e.as_str())) && f.size > job.options.max_file_bytes {
            let msg = format!("{}: {} bytes, over the {} byte cap; not scanned", f.rel, f.size, job.options.max_file_bytes);
            findings.push(Finding::new(Kind::Contamination, "ngram", Severity::Note, msg).file(f.rel.clone()).figure("bytes", f.size as f64));
        } else if let Some(format) = table {
            tables.push((f, format));
        } else if !text && BINARY_DATA_EXT.contains(&e.as_str()) {
            findings.push(
                Finding::new(Kind::Contamination, "ngram", Severity::Note, format!("{}: a binary data file ({e}); not scanned", f.rel)).file(f.rel.clone()),
            );
        } else if text || TEXT_EXT.contains(&e.as_str()) {
            scan.push((f, code));
        }
    }
    let mut results: Vec<(u64, Vec<Finding>)> = scan.par_iter().map(|(f, code)| scan_file(f, &index, &pats, &job.options, *code)).collect();
    results.extend(tables.par_iter().map(|(f, format)| scan_table(f, *format, &index, &job.options)).collect::<Vec<_>>());
    for (bytes, fs) in results {
        report.bytes_scanned += bytes;
        report.files_scanned += 1;
        findings.extend(fs);
    }
    Ok(report)
}

fn is_code(rel: &str) -> bool {
    CODE_EXT.contains(&ext(rel).as_str())
}

/// Scan one file: n-gram hits (one finding per file, the items it holds)
/// and, in code, test-split loading.
fn scan_file(f: &walk::Entry, index: &ngram::Index, pats: &[patterns::Pattern], opts: &Options, code: bool) -> (u64, Vec<Finding>) {
    let mut out = Vec::new();
    let bytes = match std::fs::read(&f.path) {
        Ok(b) => b,
        Err(e) => {
            out.push(Finding::new(Kind::Contamination, "ngram", Severity::Note, format!("{}: not read: {e}", f.rel)).file(f.rel.clone()));
            return (0, out);
        }
    };
    if bytes.iter().take(8192).any(|b| *b == 0) {
        out.push(
            Finding::new(Kind::Contamination, "ngram", Severity::Note, format!("{}: binary content in a text file; scanned as text", f.rel))
                .file(f.rel.clone()),
        );
    }
    let hits = index.scan(&bytes);
    if !hits.is_empty() {
        out.push(ngram_finding(&f.rel, &bytes, &hits, index, opts, None));
    }
    if code {
        let text = String::from_utf8_lossy(&bytes);
        for p in pats {
            if let Some(m) = p.re.find(&text) {
                let line = text[..m.start()].bytes().filter(|b| *b == b'\n').count() + 1;
                let mut fd = Finding::new(
                    Kind::Contamination,
                    "code",
                    Severity::Flag,
                    format!("{}:{line}: code loads the benchmark's test data (matches {})", f.rel, p.source),
                )
                .file(f.rel.clone());
                fd.evidence.line = Some(line);
                fd.evidence.offset = Some(m.start() as u64);
                fd.evidence.matched = Some(snippet(m.as_str(), 300));
                out.push(fd);
            }
        }
    }
    (bytes.len() as u64, out)
}

/// One finding for the test items `hits` found in `text` (a file, or one
/// column of a table: then its name, and the row of the first hit).
fn ngram_finding(rel: &str, text: &[u8], hits: &[ngram::Hit], index: &ngram::Index, opts: &Options, column: Option<&columnar::ColumnText>) -> Finding {
    let flagged: Vec<&ngram::Hit> = hits.iter().filter(|h| h.coverage >= opts.coverage).collect();
    let sev = if flagged.is_empty() { Severity::Note } else { Severity::Flag };
    let top = hits[0].clone();
    let shown: Vec<&ngram::Hit> = if flagged.is_empty() { hits.iter().collect() } else { flagged.clone() };
    let ids: Vec<String> = shown.iter().map(|h| index.items[h.item].id.clone()).collect();
    let at = match column {
        Some(c) => format!("column {} row {}", c.column, c.row_at(top.offset)),
        None => format!("line {}", top.line),
    };
    let msg = format!(
        "{}: {} test item(s) with ≥{:.0}% of their {}-grams ({} with any), e.g. {} at {:.0}% from {at}",
        rel,
        flagged.len(),
        opts.coverage * 100.0,
        index.n,
        hits.len(),
        index.items[top.item].id,
        top.coverage * 100.0,
    );
    let mut fd = Finding::new(Kind::Contamination, "ngram", sev, msg)
        .file(rel)
        .figure("items_hit", hits.len() as f64)
        .figure("items_over_threshold", flagged.len() as f64);
    match column {
        Some(c) => {
            fd.evidence.column = Some(c.column.clone());
            fd.evidence.row = Some(c.row_at(top.offset));
        }
        None => {
            fd.evidence.line = Some(top.line);
            fd.evidence.offset = Some(top.offset as u64);
        }
    }
    let end = (top.end + 120).min(text.len());
    fd.evidence.matched = Some(snippet(&String::from_utf8_lossy(&text[top.offset..end]), 300));
    // Per item coverage, the best-covered first (at most 100 in the file).
    let cov: BTreeMap<String, f64> =
        shown.iter().take(100).map(|h| (format!("coverage:{}", index.items[h.item].id), (h.coverage * 1000.0).round() / 1000.0)).collect();
    fd.evidence.figures.extend(cov);
    fd.evidence.items = ids;
    fd
}

/// Scan the string columns of an Arrow or Parquet file: a finding per
/// column holding test items; a file that cannot be decoded is a note.
fn scan_table(f: &walk::Entry, format: columnar::Format, index: &ngram::Index, opts: &Options) -> (u64, Vec<Finding>) {
    let mut out = Vec::new();
    let note = |msg: String| Finding::new(Kind::Contamination, "columnar", Severity::Note, msg).file(f.rel.clone());
    let bytes = match std::fs::read(&f.path) {
        Ok(b) => b,
        Err(e) => return (0, vec![note(format!("{}: not read: {e}", f.rel))]),
    };
    let size = bytes.len() as u64;
    let texts = match columnar::read(format, bytes, opts.max_file_bytes as usize) {
        Ok(t) => t,
        Err(e) => return (size, vec![note(format!("{}: unreadable as {format}: {e}; not scanned", f.rel))]),
    };
    if texts.truncated {
        out.push(note(format!("{}: over the {} byte cap of decoded text; the rest was not scanned", f.rel, opts.max_file_bytes)));
    }
    for c in &texts.columns {
        let hits = index.scan(&c.text);
        if !hits.is_empty() {
            out.push(ngram_finding(&f.rel, &c.text, &hits, index, opts, Some(c)));
        }
    }
    (size, out)
}

/// Write `verdict.json` and `metrics.json` into `out`.
pub fn write(v: &Verdict, out: &Path) -> Result<(), JudgeError> {
    let w = |name: &str, value: String| {
        let path = out.join(name);
        std::fs::write(&path, value).map_err(|source| JudgeError::Write { path, source })
    };
    std::fs::create_dir_all(out).map_err(|source| JudgeError::Write { path: out.to_path_buf(), source })?;
    w("verdict.json", serde_json::to_string_pretty(v).expect("verdict serialises") + "\n")?;
    w("metrics.json", serde_json::to_string_pretty(&v.metrics()).expect("metrics serialise") + "\n")?;
    Ok(())
}

/// Judge and write: what `ptb judge` does.
pub fn run(job: &JudgeJob) -> Result<Verdict, JudgeError> {
    let v = judge(job)?;
    write(&v, &job.out)?;
    Ok(v)
}
