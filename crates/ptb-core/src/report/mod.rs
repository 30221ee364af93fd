//! `ptb report`: tables from a lockfile alone, through minijinja templates.
//!
//! Every rendered table carries a provenance line (the lockfile and the
//! template it came from) so `ptb report --check FILE` can re-render it and
//! tell whether it still matches.

mod aggregate;
pub mod html;
#[doc(hidden)]
pub mod synthetic;

pub use aggregate::{BenchCol, Cause, CauseCount, ReplacedRun, Row, Stat, Table, aggregate, causes};
pub use html::{render_html, write_figures};

use crate::lock::{LockError, Lockfile};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReportError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
    #[error("cannot read template {path}: {source}")]
    Template { path: PathBuf, source: std::io::Error },
    #[error("template {path}: {source:#}")]
    Render { path: PathBuf, source: minijinja::Error },
    #[error("{path}: no `ptb-report:` provenance line, so it cannot be checked")]
    #[diagnostic(help("render tables with `ptb report LOCKFILE --template T -o FILE`; templates must print {{{{ provenance }}}}"))]
    NoProvenance { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is out of date: it no longer matches {lockfile} (first difference at line {line})")]
    #[diagnostic(help("re-render it: ptb report {lockfile} --template {template} -o {}", path.display()))]
    Stale { path: PathBuf, lockfile: String, template: String, line: usize },
}

/// The marker `--check` looks for.
const MARK: &str = "ptb-report:";

pub fn provenance(lockfile: &Path, template: &Path) -> String {
    format!("{MARK} lockfile={} template={}", lockfile.display(), template.display())
}

fn fmt_num(v: f64, digits: Option<usize>) -> String {
    format!("{:.*}", digits.unwrap_or(1), v)
}

/// Render `template` over the lockfile at `lockfile`.
pub fn render(lockfile: &Path, template: &Path) -> Result<String, ReportError> {
    let lock = Lockfile::load(lockfile)?;
    let source = std::fs::read_to_string(template).map_err(|source| ReportError::Template { path: template.to_path_buf(), source })?;
    let table = aggregate(&lock);
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    add_filters(&mut env);
    env.add_template("table", &source).map_err(|source| ReportError::Render { path: template.to_path_buf(), source })?;
    let tmpl = env.get_template("table").expect("just added");
    tmpl.render(minijinja::context! {
        table => &table,
        experiment => &table.experiment,
        benchmarks => &table.benchmarks,
        rows => &table.rows,
        provenance => provenance(lockfile, template),
    })
    .map_err(|source| ReportError::Render { path: template.to_path_buf(), source })
}

/// `num` and `pm`, shared by every template (tables, the HTML page, figures).
fn add_filters(env: &mut minijinja::Environment<'_>) {
    env.add_filter("num", |v: f64, digits: Option<usize>| fmt_num(v, digits));
    // `stat|pm` → "23.2 ± 1.8" (or "23.2" with one seed); `stat|pm("latex")` uses $\pm$.
    env.add_filter("pm", |s: minijinja::Value, style: Option<String>| -> String {
        let mean = s.get_attr("mean").ok().and_then(|m| f64::try_from(m).ok());
        let std = s.get_attr("std").ok().and_then(|m| f64::try_from(m).ok());
        let sep = if style.as_deref() == Some("latex") { " $\\pm$ " } else { " ± " };
        match (mean, std) {
            (Some(m), Some(sd)) => format!("{}{sep}{}", fmt_num(m, None), fmt_num(sd, None)),
            (Some(m), None) => fmt_num(m, None),
            _ => "–".into(),
        }
    });
}

/// Re-render a committed table from the lockfile and template named in its
/// provenance line and compare.
pub fn check(path: &Path) -> Result<(), ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read { path: path.to_path_buf(), source })?;
    let line = text.lines().find(|l| l.contains(MARK)).ok_or_else(|| ReportError::NoProvenance { path: path.to_path_buf() })?;
    let rest = &line[line.find(MARK).unwrap() + MARK.len()..];
    let field =
        |name: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).map(|s| s.trim_end_matches(['-', '>', '%', '#']).to_string());
    let (Some(lockfile), Some(template)) = (field("lockfile"), field("template")) else {
        return Err(ReportError::NoProvenance { path: path.to_path_buf() });
    };
    // `template=html`: rendered with `ptb report --html`.
    let fresh = if template == html::HTML_TEMPLATE_NAME { render_html(Path::new(&lockfile))? } else { render(Path::new(&lockfile), Path::new(&template))? };
    if fresh == text {
        return Ok(());
    }
    let line = fresh.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or_else(|| fresh.lines().count().min(text.lines().count())) + 1;
    Err(ReportError::Stale { path: path.to_path_buf(), lockfile, template, line })
}
