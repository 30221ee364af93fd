//! Resolution: the I/O step before planning. Reads the content hashes of
//! every file the spec names (through the stat cache) and the digests of
//! images, producing [`Pins`]. Planning then needs no I/O.

use crate::hash::ContentHasher;
use crate::spec::{AgentKind, Experiment, HubRef, InputRef, Runner};
use std::collections::BTreeMap;

/// One resolved input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// `sha256:<hex>` for files and directories, the image id for images.
    /// `None` when it could not be determined (missing and unpinned).
    pub hash: Option<String>,
    /// Why the input is not usable here, if it is not (e.g. a checkpoint
    /// that is pinned in the spec but not present on this machine).
    pub missing: Option<String>,
}

/// Resolved inputs by name: `model/<m>`, `model/<m>/instruct`,
/// `benchmark/<b>`, `script/<path as written>`, `image/<ref>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins(pub BTreeMap<String, Pin>);

impl Pins {
    pub fn get(&self, name: &str) -> Option<&Pin> {
        self.0.get(name)
    }
    /// The hash to put in a key: the resolved hash, or a marker that makes
    /// the key unique to "unknown" so a missing input can never collide
    /// with a real one.
    pub fn hash_or_missing(&self, name: &str) -> &str {
        self.0.get(name).and_then(|p| p.hash.as_deref()).unwrap_or("missing")
    }
    pub fn missing(&self, name: &str) -> Option<String> {
        match self.0.get(name) {
            Some(Pin { missing: Some(m), .. }) => Some(m.clone()),
            None => Some(format!("{name} was not resolved")),
            _ => None,
        }
    }
}

/// A resolved container image: the local image id and, when the image came
/// from a registry, its repo digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    pub id: String,
    pub repo_digest: Option<String>,
}

/// Why an image reference could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ImageLookupError {
    /// Not in the local engine (and not to be pulled). A variant of its own
    /// so planning can tell "obtainable by digest" from "unavailable".
    #[error(
        "image `{image}` is not in the local Docker engine: build it (`docker build -t {image} DIR`), load it (`docker load -i FILE.tar`), or pin it by digest and set `pull \"if-missing\"` in the spec"
    )]
    Missing { image: String },
    /// The engine could not be asked.
    #[error("{0}")]
    Engine(String),
}

/// Resolves image references to content digests (implemented by the Docker
/// executor in ptb-exec; resolution takes it as a parameter so ptb-core
/// needs no container engine and the plan stays pure).
pub trait ImageResolver: Send + Sync {
    fn resolve(&self, image: &str) -> Result<ResolvedImage, ImageLookupError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{what} {origin}: content is sha256:{actual}, but the spec pins sha256:{pinned}")]
    PinMismatch { what: String, origin: String, pinned: String, actual: String },
    #[error(transparent)]
    HubPinMismatch(Box<HubPinMismatch>),
    #[error(transparent)]
    Hash(#[from] crate::hash::HashError),
}

/// A hub model whose spec `sha256=` disagrees with the lockfile's pin
/// (boxed in [`ResolveError`]: six strings would make every `Result` large).
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} {origin} (declared at {declared_at}): the spec pins sha256:{pinned}, but the lockfile pins content sha256:{locked} (commit {commit}); fix `sha256=` there, or run `ptb update` if the lockfile is stale"
)]
pub struct HubPinMismatch {
    pub what: String,
    pub origin: String,
    pub declared_at: String,
    pub pinned: String,
    pub locked: String,
    pub commit: String,
}

pub fn script_pin_name(r: &Runner) -> Option<String> {
    r.program().map(|_| format!("script/{}", r.command[0]))
}

pub fn image_pin_name(image: &str) -> String {
    format!("image/{image}")
}

/// Resolve every input of the experiment.
pub fn resolve(exp: &Experiment, hasher: &ContentHasher, images: Option<&dyn ImageResolver>) -> Result<Pins, ResolveError> {
    let mut pins = BTreeMap::new();
    for (name, what, r) in model_refs(exp) {
        // Hub models are found through the lockfile: `resolve_hub`.
        if r.hub.is_none() {
            pins.insert(name, input(hasher, r, &what)?);
        }
    }
    for b in &exp.benchmarks {
        let what = format!("benchmark `{}` data", b.name);
        let pin = match unfetched(&b.data.path) {
            Some(absent) => Pin {
                hash: b.data.sha256.as_ref().map(|h| format!("sha256:{h}")),
                missing: Some(format!(
                    "{what} is not fetched: {} is listed in {} but absent (scripts/bench/fetch-data.sh fetches the pinned data)",
                    absent.display(),
                    b.data.path.join(SUMS).display()
                )),
            },
            None => input(hasher, &b.data, &what)?,
        };
        pins.insert(format!("benchmark/{}", b.name), pin);
    }
    let mut runners: Vec<&Runner> = exp.agents.iter().filter_map(|a| if let AgentKind::Run(r) = &a.kind { Some(r) } else { None }).collect();
    runners.extend([&exp.stages.agent.runner, &exp.stages.eval.runner]);
    runners.extend(exp.stages.judge.as_ref().map(|j| &j.runner));
    for r in runners {
        if let (Some(name), Some(path)) = (script_pin_name(r), r.program()) {
            let pin = if path.is_file() {
                Pin { hash: Some(format!("sha256:{}", hasher.file(&path)?)), missing: None }
            } else {
                Pin { hash: None, missing: Some(format!("script {} does not exist", path.display())) }
            };
            pins.insert(name, pin);
        }
        if let Some(image) = &r.image {
            let pullable = r.pull == Some(crate::spec::PullPolicy::IfMissing);
            pins.insert(image_pin_name(image), image_pin(image, images, pullable));
        }
    }
    Ok(Pins(pins))
}

/// Every model input of the experiment: its pin name (`model/<m>`,
/// `model/<m>/instruct`), how messages name it, and the reference.
pub fn model_refs(exp: &Experiment) -> impl Iterator<Item = (String, String, &InputRef)> {
    exp.models.iter().flat_map(|m| {
        std::iter::once((format!("model/{}", m.name), format!("model `{}`", m.name), &m.base))
            .chain(m.instruct.iter().map(|i| (format!("model/{}/instruct", m.name), format!("instruct model of `{}`", m.name), i)))
    })
}

/// The lockfile's pin for a hub reference, if it pins this very ref (the
/// same repo and the same revision as written) and is well-formed: a
/// 40-hex commit and `sha256:` + 64 hex. The hash names a directory in the
/// store, so a hand-edited `sha256="../x"` must not become a path; such a
/// pin counts as no pin (`ptb apply` re-resolves it, `--locked` refuses).
pub fn hub_pin<'a>(lock: &'a crate::lock::Lockfile, name: &str, hub: &HubRef) -> Option<&'a crate::lock::HubPin> {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    lock.hub
        .get(name)
        .filter(|p| p.repo == hub.repo && p.revision == hub.revision)
        .filter(|p| hex(&p.commit, 40) && p.sha256.strip_prefix("sha256:").is_some_and(|h| hex(h, 64)))
}

/// Hub models: the content the lockfile pins, found in the store by its
/// hash (no network, no re-hashing: a store entry is named by its
/// content). Sets each found model's path to its store directory; a model
/// not pinned, or pinned but not fetched here, is missing, with what to do.
pub fn resolve_hub(exp: &mut Experiment, lock: &crate::lock::Lockfile, store: &crate::store::Store, pins: &mut Pins) -> Result<(), ResolveError> {
    let mut found = Vec::new();
    for (name, what, r) in model_refs(exp) {
        let Some(hub) = &r.hub else { continue };
        let pin = match hub_pin(lock, &name, hub) {
            Some(p) => {
                let hex = p.sha256.strip_prefix("sha256:").unwrap_or(&p.sha256);
                if let Some(spec) = &r.sha256
                    && spec != hex
                {
                    return Err(ResolveError::HubPinMismatch(Box::new(HubPinMismatch {
                        what,
                        origin: r.origin.clone(),
                        declared_at: hub.declared_at.clone(),
                        pinned: spec.clone(),
                        locked: hex.to_string(),
                        commit: p.commit.clone(),
                    })));
                }
                let dir = store.model_dir(hex);
                if dir.is_dir() {
                    found.push((name.clone(), dir));
                    Pin { hash: Some(p.sha256.clone()), missing: None }
                } else {
                    let commit = p.commit.get(..12).unwrap_or(&p.commit);
                    Pin { hash: Some(p.sha256.clone()), missing: Some(format!("{what} ({} → {commit}): not fetched; `ptb apply` fetches it", r.origin)) }
                }
            }
            None => Pin {
                hash: r.sha256.as_ref().map(|h| format!("sha256:{h}")),
                missing: Some(format!("{what} ({}): not resolved in the lockfile; `ptb apply` resolves and fetches it", r.origin)),
            },
        };
        pins.0.insert(name, pin);
    }
    for m in &mut exp.models {
        for (name, r) in
            std::iter::once((format!("model/{}", m.name), &mut m.base)).chain(m.instruct.as_mut().map(|i| (format!("model/{}/instruct", m.name), i)))
        {
            if let Some((_, dir)) = found.iter().find(|(n, _)| *n == name) {
                r.path = dir.clone();
            }
        }
    }
    Ok(())
}

/// An image reference `name@sha256:…` pins itself; a tag needs the engine.
/// A digest-pinned image with `pull "if-missing"` is obtainable, so it is
/// not missing even when absent (the executor pulls it by digest).
fn image_pin(image: &str, images: Option<&dyn ImageResolver>, pullable: bool) -> Pin {
    let pinned = image.split_once("@sha256:").map(|(_, d)| format!("sha256:{d}"));
    match images.map(|r| r.resolve(image)) {
        Some(Ok(resolved)) => Pin { hash: Some(pinned.unwrap_or(resolved.id)), missing: None },
        Some(Err(ImageLookupError::Missing { .. })) if pullable && pinned.is_some() => Pin { hash: pinned, missing: None },
        Some(Err(e)) => Pin { hash: pinned, missing: Some(e.to_string()) },
        None => Pin { hash: pinned, missing: Some(format!("image {image}: no container engine was consulted")) },
    }
}

/// The file beside a benchmark's data that pins it (committed; the data is not).
const SUMS: &str = "SHA256SUMS";

/// The first file a data directory's `SHA256SUMS` lists that is not there.
/// A clone without fetched data holds only the sums: hashing that as "the
/// data" would plan evaluations on a key no real data has, and the eval
/// would fail only when it runs. Contents are checked when loaded
/// (`ptb_bench::data::open_pinned`); this only asks whether they exist.
fn unfetched(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let sums = std::fs::read_to_string(dir.join(SUMS)).ok()?;
    sums.lines()
        .filter_map(|l| l.split_once(char::is_whitespace).map(|(_, f)| f.trim_start().trim_start_matches('*')))
        .filter(|f| !f.is_empty() && !f.contains("..") && !f.starts_with('/'))
        .map(|f| dir.join(f))
        .find(|p| !p.exists())
}

fn input(hasher: &ContentHasher, r: &InputRef, what: &str) -> Result<Pin, ResolveError> {
    if !r.path.exists() {
        return Ok(Pin {
            hash: r.sha256.as_ref().map(|h| format!("sha256:{h}")),
            missing: Some(format!("{what} is not on this machine (expected at {})", r.path.display())),
        });
    }
    let actual = hasher.path(&r.path)?;
    if let Some(pinned) = &r.sha256
        && *pinned != actual
    {
        return Err(ResolveError::PinMismatch { what: what.to_string(), origin: r.origin.clone(), pinned: pinned.clone(), actual });
    }
    Ok(Pin { hash: Some(format!("sha256:{actual}")), missing: None })
}
