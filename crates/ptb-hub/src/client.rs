//! The hub's HTTP API: the revision listing and file downloads. Blocking
//! (ureq with rustls): a fetch is a handful of large sequential transfers,
//! and the callers are not async.

use crate::{HubError, io};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ptb_core::progress::Reporter;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Transfers cut off this many times in a row (each resumed where it
/// stopped) end the fetch with an error; the next run resumes again.
const RETRIES: u32 = 5;
/// A revision listing larger than this is not one.
const LISTING_MAX: u64 = 64 << 20;

/// Where the hub is and who asks. The token is a secret: never logged,
/// printed (its `Debug` says only whether there is one) or stored.
#[derive(Clone)]
pub struct HubConfig {
    pub endpoint: String,
    token: Option<String>,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig").field("endpoint", &self.endpoint).field("token", &self.token.as_ref().map(|_| "<set>")).finish()
    }
}

impl HubConfig {
    /// `HF_ENDPOINT` (a mirror) or the public hub; `HF_TOKEN` if set and
    /// not empty, as huggingface_hub reads them.
    pub fn from_env() -> HubConfig {
        let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()).unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        HubConfig::new(&endpoint, std::env::var("HF_TOKEN").ok())
    }

    pub fn new(endpoint: &str, token: Option<String>) -> HubConfig {
        HubConfig { endpoint: endpoint.trim_end_matches('/').to_string(), token: token.filter(|t| !t.is_empty()) }
    }
}

/// `GET /api/models/{repo}/revision/{rev}?blobs=true`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RevisionInfo {
    /// The commit the revision resolves to.
    pub sha: String,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

/// One file of a revision.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Sibling {
    /// The file's path in the repo (data from the network: see `paths`).
    pub rfilename: String,
    #[serde(default)]
    pub size: Option<u64>,
    /// Set for files stored with git LFS (weights): their sha256.
    #[serde(default)]
    pub lfs: Option<Lfs>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Lfs {
    pub sha256: String,
    #[serde(default)]
    pub size: Option<u64>,
}

impl Sibling {
    /// The size the hub lists, if it does.
    pub fn expected_size(&self) -> Option<u64> {
        self.lfs.as_ref().and_then(|l| l.size).or(self.size)
    }
}

/// Path segments: everything but unreserved characters is escaped, so a
/// revision like `refs/pr/1` stays one segment and no name can add a query.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub struct Client {
    cfg: HubConfig,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(cfg: HubConfig) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            // Per read, not per transfer: a model is gigabytes.
            .timeout_read(Duration::from_secs(120))
            .redirects(10)
            // The hub redirects downloads to a CDN with signed URLs: the
            // token goes to the hub's own host only.
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("ptb/", env!("CARGO_PKG_VERSION")))
            .build();
        Client { cfg, agent }
    }

    pub fn endpoint(&self) -> &str {
        &self.cfg.endpoint
    }

    fn get(&self, url: &str) -> ureq::Request {
        let r = self.agent.get(url);
        match &self.cfg.token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// What `revision` (a branch, tag or commit) of `repo` is: its commit
    /// and files. `repo` is `org/name` as the spec parser checked it.
    pub fn revision(&self, repo: &str, revision: &str) -> Result<RevisionInfo, HubError> {
        let url = format!("{}/api/models/{repo}/revision/{}?blobs=true", self.cfg.endpoint, segment(revision));
        let resp = match self.get(&url).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(404, _)) => {
                return Err(HubError::RevisionNotFound { repo: repo.into(), revision: revision.into(), endpoint: self.cfg.endpoint.clone() });
            }
            Err(ureq::Error::Status(status @ (401 | 403), _)) => {
                return Err(HubError::Denied { repo: repo.into(), revision: revision.into(), endpoint: self.cfg.endpoint.clone(), status });
            }
            Err(ureq::Error::Status(status, _)) => return Err(HubError::Http { url, status }),
            Err(ureq::Error::Transport(t)) => return Err(HubError::Transport { url, message: t.to_string() }),
        };
        let bad = |message: String| HubError::BadListing { repo: repo.into(), revision: revision.into(), message };
        let mut body = Vec::new();
        resp.into_reader().take(LISTING_MAX + 1).read_to_end(&mut body).map_err(|e| HubError::Transport { url: url.clone(), message: e.to_string() })?;
        if body.len() as u64 > LISTING_MAX {
            return Err(bad(format!("larger than {} MiB", LISTING_MAX >> 20)));
        }
        let info: RevisionInfo = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        if !crate::is_commit(&info.sha) {
            return Err(bad(format!("`sha` is not a commit id: {:?}", info.sha.chars().take(64).collect::<String>())));
        }
        if crate::is_commit(revision) && info.sha != revision {
            return Err(bad(format!("asked for commit {revision}, got {}", info.sha)));
        }
        Ok(info)
    }

    /// Download `file` of `repo` at `commit` into `part`, resuming from
    /// what `part` already holds (an interrupted transfer, in this run or
    /// an earlier one) with a `Range` request. Redirects are followed.
    /// Sizes and hashes are checked by the caller.
    pub fn download(&self, repo: &str, commit: &str, file: &Sibling, part: &Path, reporter: &dyn Reporter) -> Result<(), HubError> {
        let path: Vec<String> = file.rfilename.split('/').map(segment).collect();
        let url = format!("{}/{repo}/resolve/{commit}/{}", self.cfg.endpoint, path.join("/"));
        let size = file.expected_size();
        let mut failures = 0;
        loop {
            // Without a listed size, a partial file cannot be told from a
            // whole one: start over.
            let have = match size {
                Some(_) => std::fs::metadata(part).map(|m| m.len()).unwrap_or(0),
                None => 0,
            };
            if size.is_some_and(|s| have >= s) {
                return Ok(());
            }
            let mut req = self.get(&url);
            if have > 0 {
                req = req.set("Range", &format!("bytes={have}-"));
            }
            let resp = match req.call() {
                Ok(r) => r,
                // The partial file is longer than the file: start over.
                Err(ureq::Error::Status(416, _)) => {
                    std::fs::remove_file(part).map_err(io("cannot remove", part))?;
                    failures += 1;
                    if failures > RETRIES {
                        return Err(HubError::Http { url, status: 416 });
                    }
                    continue;
                }
                Err(ureq::Error::Status(status @ (401 | 403), _)) => {
                    return Err(HubError::Denied { repo: repo.into(), revision: commit.into(), endpoint: self.cfg.endpoint.clone(), status });
                }
                Err(ureq::Error::Status(status, _)) => return Err(HubError::Http { url, status }),
                Err(ureq::Error::Transport(t)) => {
                    failures += 1;
                    if failures > RETRIES {
                        return Err(HubError::Transport { url, message: t.to_string() });
                    }
                    std::thread::sleep(backoff(failures));
                    continue;
                }
            };
            // 206 from where we asked: append; anything else is the whole
            // file (a server that ignores Range): start over.
            let resumed = have > 0 && resp.status() == 206 && resp.header("Content-Range").is_some_and(|r| r.starts_with(&format!("bytes {have}-")));
            // (Starting over, the progress bar may overshoot: a byte
            // counter has nothing to take back.)
            let mut out =
                if resumed { std::fs::OpenOptions::new().append(true).open(part) } else { std::fs::File::create(part) }.map_err(io("cannot write", part))?;
            // Never more than the listed size (and one byte to notice a
            // longer file): a hostile server cannot fill the disk.
            let limit = size.map(|s| s.saturating_sub(if resumed { have } else { 0 }).saturating_add(1)).unwrap_or(u64::MAX);
            match copy(resp.into_reader().take(limit), &mut out, reporter) {
                Ok(_) => {
                    out.sync_all().map_err(io("cannot write", part))?;
                    // Without a length to check, a complete body is the file.
                    if size.is_none() {
                        return Ok(());
                    }
                    let now = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
                    if size.is_some_and(|s| now >= s) {
                        return Ok(());
                    }
                    // The body ended early without an error: resume too.
                    failures += 1;
                    if failures > RETRIES {
                        return Err(HubError::Transport {
                            url,
                            message: format!("transfer ended early {failures} times ({now} of {} bytes)", size.unwrap_or(0)),
                        });
                    }
                }
                Err(CopyError::Write(e)) => return Err(HubError::Io { context: "cannot write", path: part.to_path_buf(), source: e }),
                Err(CopyError::Read(e)) => {
                    failures += 1;
                    if failures > RETRIES {
                        return Err(HubError::Transport { url, message: format!("transfer cut off {failures} times, last: {e}") });
                    }
                }
            }
            std::thread::sleep(backoff(failures));
        }
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100 << failures.min(6))
}

enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

fn copy(mut from: impl Read, to: &mut std::fs::File, reporter: &dyn Reporter) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = match from.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..got]).map_err(CopyError::Write)?;
        n += got as u64;
        reporter.downloaded_bytes(got as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_change_the_url() {
        assert_eq!(segment("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(segment("v1.0-rc_2~x"), "v1.0-rc_2~x");
        assert_eq!(segment("a?b#c d"), "a%3Fb%23c%20d");
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let c = HubConfig::new("http://127.0.0.1:1/", Some("hf_secret".into()));
        let d = format!("{c:?}");
        assert!(!d.contains("hf_secret") && d.contains("<set>") && d.contains("http://127.0.0.1:1\""), "{d}");
    }
}
