//! `ptb gc` and `ptb verify`.

use super::{Store, StoreError};
use std::collections::HashSet;

/// Entries (finished and failed) no given lockfile references.
#[derive(Debug, Default)]
pub struct GcReport {
    pub removed: Vec<String>,
    pub kept: usize,
}

/// Remove every entry whose `v1/...` path is not in `keep` (paths as the
/// lockfile records them). With `dry_run`, only report.
pub fn gc(store: &Store, keep: &HashSet<String>, dry_run: bool) -> Result<GcReport, StoreError> {
    let mut report = GcReport::default();
    let mut candidates = Vec::new();
    // Fetched models (`v1/models/<hash>`) are kept while a lockfile pins them.
    let models = store.models_dir();
    for (dir, prefix) in [(store.root().to_path_buf(), "v1/"), (store.failed_dir(), "v1/failed/"), (models.clone(), "v1/models/")] {
        if dir == models && !dir.exists() {
            continue;
        }
        let rd = std::fs::read_dir(&dir).map_err(|source| StoreError::Io { context: "cannot list", path: dir.clone(), source })?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || (prefix == "v1/" && (name == "failed" || name == super::MODELS)) {
                continue;
            }
            candidates.push((format!("{prefix}{name}"), e.path()));
        }
    }
    candidates.sort();
    for (rel, path) in candidates {
        if keep.contains(&rel) {
            report.kept += 1;
            continue;
        }
        if !dry_run {
            super::remove_tree(&path)?;
        }
        report.removed.push(rel);
    }
    Ok(report)
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub ok: usize,
    /// (entry, problem)
    pub bad: Vec<(String, String)>,
}

/// Re-hash every finished entry's `out/` and compare with its meta.json.
pub fn verify(store: &Store) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let index = store.index()?;
    let mut names: Vec<&str> = index.names().collect();
    names.sort();
    for name in names {
        let meta = match store.read_meta(name) {
            Ok(m) => m,
            Err(e) => {
                report.bad.push((name.to_string(), e.to_string()));
                continue;
            }
        };
        let entry = store.entry_dir(name);
        let problem = match (crate::hash::hash_dir(&entry.join("out")), &meta.out_sha256) {
            (Ok(actual), Some(expected)) if actual == *expected => None,
            (Ok(actual), Some(expected)) => Some(changed("out/", expected, &actual)),
            (Ok(_), None) => Some("meta.json records no output hash".into()),
            (Err(e), _) => Some(e.to_string()),
        };
        // The kept workspace is the judge's evidence: checked the same way
        // when the entry recorded its hash.
        let problem = problem.or_else(|| {
            let expected = meta.workspace_sha256.as_ref()?;
            match crate::hash::hash_dir(&entry.join("workspace")) {
                Ok(actual) if actual == *expected => None,
                Ok(actual) => Some(changed("workspace/", expected, &actual)),
                Err(e) => Some(format!("workspace/: {e}")),
            }
        });
        match problem {
            None => report.ok += 1,
            Some(p) => report.bad.push((name.to_string(), p)),
        }
    }
    // Fetched models are named by their content hash: re-hash them.
    let mut models: Vec<_> = std::fs::read_dir(store.models_dir()).into_iter().flatten().flatten().map(|e| e.path()).collect();
    models.sort();
    for dir in models {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let entry = format!("{}/{name}", super::MODELS);
        match crate::hash::hash_dir(&dir) {
            Ok(actual) if actual == name => report.ok += 1,
            Ok(actual) => report
                .bad
                .push((entry, format!("model changed on disk: its name says {}…, its files hash to {}…", name.get(..12).unwrap_or(&name), &actual[..12]))),
            Err(e) => report.bad.push((entry, e.to_string())),
        }
    }
    Ok(report)
}

fn changed(what: &str, expected: &str, actual: &str) -> String {
    format!("{what} changed on disk: expected {}…, found {}…", expected.get(..12).unwrap_or(expected), actual.get(..12).unwrap_or(actual))
}
