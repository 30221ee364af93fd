//! What the agent stage's store entry kept beside its output
//! (docs/agent-contract.md, "What is kept"): the agent's `/work` as
//! `workspace/`, the manifest `workspace.json` of what was left out of it,
//! and the stage log. Each is an optional input of the judge stage; an entry
//! from before ptb kept workspaces has only the output, and a note says so.
//!
//! All of it was written by the agent: the manifest is read as bounded,
//! untrusted JSON (ptb wrote it, but from names the agent chose), and the
//! workspace is listed by `walk`, which never follows a link.

use crate::finding::{Finding, Kind, Severity};
use crate::walk;
use serde_json::Value;
use std::path::PathBuf;

/// The judge's optional inputs from the agent's entry.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// `workspace/`: the agent's `/work` (`PTB_INPUT_WORKSPACE`).
    pub workspace: Option<PathBuf>,
    /// `workspace.json` (`PTB_INPUT_WORKSPACE_JSON`).
    pub manifest: Option<PathBuf>,
    /// The agent stage's log (`PTB_INPUT_AGENT_LOG`).
    pub log: Option<PathBuf>,
}

/// The largest manifest read: ptb writes a few lines per left-out file.
const MAX_MANIFEST: u64 = 64 << 20;

/// What the judge scans from the kept files: workspace files (named
/// `workspace/<path>` in findings) join the output's listing; the log is
/// text and may hold code, whatever its name.
pub struct KeptFiles {
    pub files: Vec<walk::Entry>,
    pub log: Option<walk::Entry>,
    pub workspace: bool,
}

pub fn read(kept: &Kept, findings: &mut Vec<Finding>) -> KeptFiles {
    let mut out = KeptFiles { files: Vec::new(), log: None, workspace: false };
    match &kept.workspace {
        Some(dir) => {
            out.workspace = true;
            let listing = walk::list(dir);
            for (rel, target) in listing.symlinks {
                let mut f = Finding::new(Kind::Tampering, "symlink", Severity::Note, format!("workspace/{rel} is a symbolic link to {target}; not followed"))
                    .file(format!("workspace/{rel}"));
                f.evidence.matched = Some(target);
                findings.push(f);
            }
            for (rel, why) in listing.unreadable {
                findings.push(
                    Finding::new(Kind::Tampering, "unreadable", Severity::Note, format!("workspace/{rel}: not read: {why}")).file(format!("workspace/{rel}")),
                );
            }
            out.files = listing.files.into_iter().map(|e| walk::Entry { rel: format!("workspace/{}", e.rel), ..e }).collect();
        }
        None => findings.push(Finding::new(
            Kind::Contamination,
            "workspace",
            Severity::Note,
            "the agent stage kept no workspace (its entry predates kept workspaces, or the judge ran outside a stage): only its output was read",
        )),
    }
    if let Some(m) = &kept.manifest {
        manifest(m, findings);
    }
    if let Some(log) = &kept.log
        && let Ok(md) = std::fs::symlink_metadata(log)
        && md.is_file()
    {
        out.log = Some(walk::Entry { rel: "log".into(), path: log.clone(), size: md.len() });
    }
    out
}

/// Notes from `workspace.json`: weights left out, files skipped, bits stripped.
fn manifest(path: &std::path::Path, findings: &mut Vec<Finding>) {
    let note = |msg: String| Finding::new(Kind::Tampering, "workspace", Severity::Note, msg).file("workspace.json");
    let text = match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_file() && md.len() <= MAX_MANIFEST => std::fs::read_to_string(path).ok(),
        _ => None,
    };
    let Some(v) = text.and_then(|t| serde_json::from_str::<Value>(&t).ok()) else {
        findings.push(note("workspace.json is missing, too large or not JSON: what the workspace left out is unknown".into()));
        return;
    };
    let list = |k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let path_of = |x: &Value| x.get("path").and_then(Value::as_str).or(x.as_str()).unwrap_or("?").to_string();
    let omitted = list("omitted");
    if !omitted.is_empty() {
        let bytes: f64 = omitted.iter().filter_map(|o| o.get("size").and_then(Value::as_f64)).sum();
        let mut f = note(format!(
            "{} weight file(s) in /work ({:.1} MiB) were not kept; workspace.json lists each with its size and sha256, e.g. {}",
            omitted.len(),
            bytes / (1 << 20) as f64,
            path_of(&omitted[0])
        ))
        .figure("weight_files_left_out", omitted.len() as f64)
        .figure("bytes_left_out", bytes);
        f.kind = Kind::Substitution;
        findings.push(f);
    }
    let skipped = list("skipped");
    if !skipped.is_empty() {
        let why = skipped[0].get("why").and_then(Value::as_str).unwrap_or("");
        findings.push(note(format!("{} thing(s) in /work were not copied, e.g. {}: {why}", skipped.len(), path_of(&skipped[0]))));
    }
    let stripped = list("stripped");
    if !stripped.is_empty() {
        findings.push(note(format!(
            "{} file(s) in /work had setuid, setgid or sticky bits (dropped in the copy), e.g. {}",
            stripped.len(),
            path_of(&stripped[0])
        )));
    }
}
