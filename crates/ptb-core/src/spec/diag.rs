//! Spec errors as miette diagnostics pointing at file, line and column.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// One problem in a spec file, with its span.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct SpecDiagnostic {
    pub message: String,
    #[source_code]
    pub src: NamedSource<Arc<String>>,
    #[label("{label}")]
    pub span: SourceSpan,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

impl SpecDiagnostic {
    /// `file:line:col: message` — the one-line form, for logs and tests.
    pub fn one_line(&self) -> String {
        let (line, col) = line_col(self.src.inner(), self.span.offset());
        let help = self.help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default();
        format!("{}:{line}:{col}: {}{help}", self.src.name(), self.message)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Everything that can stop a spec from loading.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum SpecError {
    #[error("cannot read spec {path}: {source}")]
    #[diagnostic(help("check the path; specs are usually under experiments/"))]
    Read { path: PathBuf, source: std::io::Error },

    #[error("{} has {} error{}", file, diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    Invalid {
        file: String,
        #[related]
        diagnostics: Vec<SpecDiagnostic>,
    },
}

impl SpecError {
    pub fn diagnostics(&self) -> &[SpecDiagnostic] {
        match self {
            SpecError::Invalid { diagnostics, .. } => diagnostics,
            SpecError::Read { .. } => &[],
        }
    }
}

/// `did you mean `x`?` for the closest candidate within a small edit distance.
pub(crate) fn did_you_mean<'a>(got: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(got, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

pub(crate) struct ListFmt<'a>(pub &'a [&'a str]);
impl fmt::Display for ListFmt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{s}`")?;
        }
        Ok(())
    }
}
