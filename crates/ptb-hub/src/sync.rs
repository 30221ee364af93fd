//! What `ptb apply` and `ptb update` do with a spec's hub models: find
//! each in the lockfile and the store, resolve and fetch what is missing,
//! and write the new pins into the lockfile.
//!
//! | | pinned, in the store | pinned, not in the store | not pinned |
//! |---|---|---|---|
//! | `apply` | nothing (no request) | fetch the pinned commit, check the pinned hash | resolve, fetch, pin |
//! | `apply --locked` | nothing | as `apply` (the lockfile does not change) | refused; nothing fetched, lockfile untouched |
//! | `update [MODEL…]` | resolve; fetch and re-pin if the commit moved | resolve, fetch, re-pin | resolve, fetch, pin |

use crate::HubError;
use crate::client::Client;
use crate::fetch::{Expect, Named, fetch};
use ptb_core::lock::{HubPin, Lockfile};
use ptb_core::progress::Reporter;
use ptb_core::resolve::{hub_pin, model_refs};
use ptb_core::session::LockfileGuard;
use ptb_core::spec::{Experiment, HubRef};
use ptb_core::store::Store;
use std::path::Path;

#[derive(Debug, Clone)]
pub enum Mode {
    /// Before `ptb apply` runs stages; `locked` is `--locked`; `models`:
    /// only these models' refs (the models of the cells `--cell` selects;
    /// empty: all).
    Apply { locked: bool, models: Vec<String> },
    /// `ptb update [MODEL…]`: re-resolve the named models (all when empty).
    Update { models: Vec<String> },
}

/// A pin written (or, for `update`, checked and unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `model/<m>` or `model/<m>/instruct`.
    pub name: String,
    /// `model `m`` / `instruct model of `m``.
    pub what: String,
    /// `repo@revision` as written.
    pub origin: String,
    pub old_commit: Option<String>,
    pub new_commit: String,
    pub old_sha256: Option<String>,
    pub new_sha256: String,
}

impl Change {
    pub fn changed(&self) -> bool {
        self.old_commit.as_deref() != Some(self.new_commit.as_str()) || self.old_sha256.as_deref() != Some(self.new_sha256.as_str())
    }
}

#[derive(Debug, Default)]
pub struct SyncReport {
    /// Pins written or confirmed, in spec order.
    pub pins: Vec<Change>,
    /// Models downloaded (`what origin`).
    pub fetched: Vec<String>,
    pub lockfile_written: bool,
}

struct Want<'a> {
    name: String,
    what: String,
    origin: &'a str,
    hub: &'a HubRef,
    spec_sha: Option<&'a str>,
}

/// Bring the store and the lockfile's hub pins in line with `exp`.
pub fn sync(exp: &Experiment, lock_path: &Path, store: &Store, client: &Client, mode: &Mode, reporter: &dyn Reporter) -> Result<SyncReport, HubError> {
    let lock = Lockfile::load(lock_path)?;
    let mut wants: Vec<Want> = model_refs(exp)
        .filter_map(|(name, what, r)| r.hub.as_ref().map(|hub| Want { name, what, origin: &r.origin, hub, spec_sha: r.sha256.as_deref() }))
        .collect();
    if let Mode::Apply { models, .. } = mode
        && !models.is_empty()
    {
        wants.retain(|w| models.iter().any(|m| w.name == format!("model/{m}") || w.name == format!("model/{m}/instruct")));
    }
    if let Mode::Update { models } = mode
        && !models.is_empty()
    {
        let known: Vec<&str> =
            exp.models.iter().filter(|m| m.base.hub.is_some() || m.instruct.as_ref().is_some_and(|i| i.hub.is_some())).map(|m| m.name.as_str()).collect();
        for m in models {
            if !known.contains(&m.as_str()) {
                return Err(HubError::NoSuchModel { name: m.clone(), known: known.join(", ") });
            }
        }
        wants.retain(|w| models.iter().any(|m| w.name == format!("model/{m}") || w.name == format!("model/{m}/instruct")));
    }
    // --locked refuses before anything is fetched.
    if let Mode::Apply { locked: true, .. } = mode {
        let refs: Vec<String> = wants
            .iter()
            .filter(|w| hub_pin(&lock, &w.name, w.hub).is_none())
            .map(|w| format!("  {} ({}), declared at {}", w.what, w.origin, w.hub.declared_at))
            .collect();
        if !refs.is_empty() {
            return Err(HubError::NotLocked { lockfile: lock_path.to_path_buf(), refs });
        }
    }
    let mut report = SyncReport::default();
    for w in &wants {
        let pinned = hub_pin(&lock, &w.name, w.hub);
        let spec_expect = w.spec_sha.map(|s| Expect { sha256: s.to_string(), pinned_by: format!("`sha256=` at {}", w.hub.declared_at) });
        let named = Named { what: &w.what, origin: w.origin };
        let (info, expect) = match (mode, pinned) {
            (Mode::Apply { .. }, Some(p)) => {
                let hex = p.sha256.strip_prefix("sha256:").unwrap_or(&p.sha256);
                if store.model_dir(hex).is_dir() {
                    continue;
                }
                let by_lock = Expect { sha256: hex.to_string(), pinned_by: format!("the lockfile {}", lock_path.display()) };
                (client.revision(&w.hub.repo, &p.commit)?, Some(by_lock))
            }
            _ => {
                let info = client.revision(&w.hub.repo, &w.hub.revision)?;
                if let Some(p) = pinned {
                    let hex = p.sha256.strip_prefix("sha256:").unwrap_or(&p.sha256);
                    if p.commit == info.sha && store.model_dir(hex).is_dir() {
                        report.pins.push(change(w, Some(p), &p.commit, &p.sha256));
                        continue;
                    }
                }
                (info, spec_expect)
            }
        };
        let f = fetch(client, store, &w.hub.repo, &info, named, expect.as_ref(), reporter)?;
        report.fetched.push(format!("{} ({})", w.what, w.origin));
        report.pins.push(change(w, pinned, &f.commit, &f.sha256));
    }
    let new: Vec<&Change> = report.pins.iter().filter(|c| c.changed()).collect();
    if !new.is_empty() {
        let _guard = LockfileGuard::acquire(store, lock_path)?;
        // The file as it is now (another apply may have written since).
        let mut l = Lockfile::load_file(lock_path)?;
        for c in new {
            let hub = wants.iter().find(|w| w.name == c.name).expect("a change is for a wanted ref").hub;
            l.hub.insert(
                c.name.clone(),
                HubPin { repo: hub.repo.clone(), revision: hub.revision.clone(), commit: c.new_commit.clone(), sha256: c.new_sha256.clone() },
            );
        }
        report.lockfile_written = l.save(lock_path)?;
    }
    Ok(report)
}

fn change(w: &Want, old: Option<&HubPin>, commit: &str, sha256: &str) -> Change {
    Change {
        name: w.name.clone(),
        what: w.what.clone(),
        origin: w.origin.to_string(),
        old_commit: old.map(|p| p.commit.clone()),
        new_commit: commit.to_string(),
        old_sha256: old.map(|p| p.sha256.clone()),
        new_sha256: sha256.to_string(),
    }
}
