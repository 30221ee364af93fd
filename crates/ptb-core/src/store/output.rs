//! A stage's output, read as data. The agent stage is untrusted code (see
//! docs/security.md): whatever it left in `$PTB_OUT` is bytes to keep or
//! refuse, never a pointer ptb follows or a mode ptb honours.
//!
//! - [`sanitize`] runs before a build is committed: special files (FIFOs,
//!   sockets, devices) are refused, set-uid/set-gid/sticky bits stripped,
//!   hard links broken (making the entry read-only must not change a file
//!   outside it), foreign ownership taken over. Symlinks stay symlinks.
//! - [`read_metrics`] opens `metrics.json` without following a link or
//!   blocking on a FIFO, reads at most [`METRICS_MAX_BYTES`], and
//!   [`parse_metrics`] accepts only a flat object of numbers, booleans and
//!   short strings.
//! - [`resolve_inside`] is how ptb finds a path inside an entry (the
//!   checkpoint an eval stage mounts): no component may be a symlink.

use super::MetricValue;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// `metrics.json` larger than this is refused (a result is a few numbers).
pub const METRICS_MAX_BYTES: usize = 64 << 10;
/// At most this many metrics per stage.
pub const METRICS_MAX_ENTRIES: usize = 128;
/// Metric names: 1 to 64 of `A-Z a-z 0-9 _ . - : /`.
pub const METRIC_NAME_MAX: usize = 64;
/// A text metric is a label (a verdict, a reason), not a document.
pub const METRIC_TEXT_MAX_CHARS: usize = 512;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricsError {
    #[error("metrics.json is larger than {METRICS_MAX_BYTES} bytes; write details to another file in $PTB_OUT")]
    TooLarge,
    #[error("metrics.json is not valid JSON: {0}")]
    Json(String),
    #[error("metrics.json must hold one JSON object of name → value")]
    NotObject,
    #[error("metrics.json holds {0} metrics; at most {METRICS_MAX_ENTRIES} are allowed")]
    TooMany(usize),
    #[error("metric name {0:?} is not allowed: use 1 to {METRIC_NAME_MAX} of A-Z a-z 0-9 _ . - : /")]
    BadName(String),
    #[error("metric `{name}` is {kind}; a metric is a number, a boolean or a short string (put structured data in another file)")]
    BadValue { name: String, kind: &'static str },
    #[error("metric `{name}` is {chars} characters long; at most {METRIC_TEXT_MAX_CHARS} are allowed")]
    TextTooLong { name: String, chars: usize },
    #[error("metric `{name}` holds control character U+{code:04X}")]
    ControlChar { name: String, code: u32 },
}

/// What was wrong with a stage's output; the stage fails with this message.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path} is a {kind}; a stage's output may hold only regular files, directories and symlinks")]
    Special { path: PathBuf, kind: &'static str },
    #[error("{path} is a symlink; ptb never follows links a stage left")]
    Symlink { path: PathBuf },
    #[error("{path} is not in the stage's output")]
    Missing { path: PathBuf },
    #[error("{path} escapes the store entry it was asked from")]
    Escapes { path: PathBuf },
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("{context} {path}: {source}")]
    Io { context: &'static str, path: PathBuf, source: io::Error },
}

fn io_err<'a>(context: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError::Io { context, path: path.to_path_buf(), source }
}

/// What a special file is ("FIFO", "socket", "block device", "character
/// device"), or `None` for a regular file, a directory or a symlink: the
/// one place that names them, for the store, hashing and the kept workspace.
pub fn special_kind(ft: &fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        Some("FIFO")
    } else if ft.is_socket() {
        Some("socket")
    } else if ft.is_block_device() {
        Some("block device")
    } else if ft.is_char_device() {
        Some("character device")
    } else {
        None
    }
}

/// What [`sanitize`] changed, for the stage's log.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sanitized {
    /// Files whose set-uid, set-gid or sticky bit was removed.
    pub stripped_mode: Vec<PathBuf>,
    /// Files that were hard links, now copies.
    pub unlinked: Vec<PathBuf>,
    /// Entries that belonged to another user, now ptb's.
    pub chowned: Vec<PathBuf>,
}

impl Sanitized {
    pub fn notes(&self) -> Vec<String> {
        let mut v = Vec::new();
        let mut say = |what: &str, paths: &[PathBuf]| {
            if let Some(first) = paths.first() {
                v.push(format!("{what} on {} file(s), e.g. {}", paths.len(), first.display()));
            }
        };
        say("removed set-uid/set-gid/sticky bits", &self.stripped_mode);
        say("copied hard-linked files (so the store's read-only mode changes nothing outside)", &self.unlinked);
        say("took over ownership from another user", &self.chowned);
        v
    }
}

/// Make `out` safe to commit (see the module docs). Never follows a link.
pub fn sanitize(out: &Path) -> Result<Sanitized, OutputError> {
    let mut done = Sanitized::default();
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    for e in walkdir::WalkDir::new(out).follow_links(false) {
        let e = e.map_err(|e| {
            let path = e.path().unwrap_or(out).to_path_buf();
            OutputError::Io { context: "cannot read", path, source: e.into_io_error().unwrap_or_else(|| io::Error::other("filesystem loop")) }
        })?;
        let path = e.path();
        let md = fs::symlink_metadata(path).map_err(io_err("cannot inspect", path))?;
        let ft = md.file_type();
        if let Some(kind) = special_kind(&ft) {
            return Err(OutputError::Special { path: path.to_path_buf(), kind });
        }
        if (md.uid() != uid || md.gid() != gid) && std::os::unix::fs::lchown(path, Some(uid), Some(gid)).is_ok() {
            done.chowned.push(path.to_path_buf());
        }
        if ft.is_symlink() {
            continue;
        }
        if ft.is_file() && md.nlink() > 1 {
            unlink_copy(path, &md)?;
            done.unlinked.push(path.to_path_buf());
        }
        let mode = md.permissions().mode();
        if mode & 0o7000 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o777)).map_err(io_err("cannot change the mode of", path))?;
            done.stripped_mode.push(path.to_path_buf());
        }
    }
    Ok(done)
}

/// Replace a hard link by a private copy with the same permission bits.
fn unlink_copy(path: &Path, md: &fs::Metadata) -> Result<(), OutputError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err("cannot create a file in", dir))?;
    let mut src = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(io_err("cannot read", path))?;
    io::copy(&mut src, &mut tmp.as_file()).map_err(io_err("cannot copy", path))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(md.permissions().mode() & 0o777)).map_err(io_err("cannot change the mode of", path))?;
    tmp.persist(path).map_err(|e| OutputError::Io { context: "cannot replace", path: path.to_path_buf(), source: e.error })?;
    Ok(())
}

/// Open a file of a stage's output for reading: never through a symlink,
/// never blocking on a FIFO (`O_NONBLOCK`, then only a regular file is read).
pub fn open_regular(path: &Path) -> Result<fs::File, OutputError> {
    let f = match fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(OutputError::Symlink { path: path.to_path_buf() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OutputError::Missing { path: path.to_path_buf() }),
        Err(e) => return Err(OutputError::Io { context: "cannot open", path: path.to_path_buf(), source: e }),
    };
    let md = f.metadata().map_err(io_err("cannot inspect", path))?;
    if let Some(kind) = special_kind(&md.file_type()) {
        return Err(OutputError::Special { path: path.to_path_buf(), kind });
    }
    if !md.is_file() {
        return Err(OutputError::Io { context: "expected a file at", path: path.to_path_buf(), source: io::Error::other("it is a directory") });
    }
    Ok(f)
}

/// The metrics a stage reported in `out/metrics.json`; none if it wrote none.
pub fn read_metrics(out: &Path) -> Result<BTreeMap<String, MetricValue>, OutputError> {
    let path = out.join("metrics.json");
    let f = match open_regular(&path) {
        Ok(f) => f,
        Err(OutputError::Missing { .. }) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.take(METRICS_MAX_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(io_err("cannot read", &path))?;
    Ok(parse_metrics(&bytes)?)
}

fn name_ok(name: &str) -> bool {
    (1..=METRIC_NAME_MAX).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-:/".contains(&b))
}

/// Parse and validate `metrics.json` (see the limits above).
pub fn parse_metrics(bytes: &[u8]) -> Result<BTreeMap<String, MetricValue>, MetricsError> {
    if bytes.len() > METRICS_MAX_BYTES {
        return Err(MetricsError::TooLarge);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| MetricsError::Json(e.to_string()))?;
    let serde_json::Value::Object(map) = value else { return Err(MetricsError::NotObject) };
    if map.len() > METRICS_MAX_ENTRIES {
        return Err(MetricsError::TooMany(map.len()));
    }
    let mut out = BTreeMap::new();
    for (name, v) in map {
        if !name_ok(&name) {
            return Err(MetricsError::BadName(name));
        }
        let v = match v {
            serde_json::Value::Bool(b) => MetricValue::Bool(b),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => MetricValue::Number(f),
                _ => return Err(MetricsError::BadValue { name, kind: "a number outside f64's range" }),
            },
            serde_json::Value::String(s) => {
                let chars = s.chars().count();
                if chars > METRIC_TEXT_MAX_CHARS {
                    return Err(MetricsError::TextTooLong { name, chars });
                }
                if let Some(c) = s.chars().find(|c| c.is_control()) {
                    return Err(MetricsError::ControlChar { name, code: c as u32 });
                }
                MetricValue::Text(s)
            }
            serde_json::Value::Null => return Err(MetricsError::BadValue { name, kind: "null" }),
            serde_json::Value::Array(_) => return Err(MetricsError::BadValue { name, kind: "an array" }),
            serde_json::Value::Object(_) => return Err(MetricsError::BadValue { name, kind: "an object" }),
        };
        out.insert(name, v);
    }
    Ok(out)
}

/// `root/rel`, checked to be inside `root` with no symlink on the way
/// (`rel` is relative, without `..`). Used for every path ptb takes from a
/// stage's output and hands to another stage.
pub fn resolve_inside(root: &Path, rel: &Path) -> Result<PathBuf, OutputError> {
    let mut p = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(part) => p.push(part),
            _ => return Err(OutputError::Escapes { path: root.join(rel) }),
        }
        match fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => return Err(OutputError::Symlink { path: p }),
            Ok(md) if special_kind(&md.file_type()).is_some() => {
                return Err(OutputError::Special { path: p, kind: special_kind(&md.file_type()).unwrap_or("special file") });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OutputError::Missing { path: p }),
            Err(e) => return Err(OutputError::Io { context: "cannot inspect", path: p, source: e }),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;
    use std::os::unix::fs::symlink;

    #[test]
    fn metrics_accept_flat_values_and_name_what_they_refuse() {
        let m = parse_metrics(br#"{"score": 0.5, "ok": true, "verdict": "pass", "n": 12}"#).unwrap();
        assert_eq!(m["score"], MetricValue::Number(0.5));
        assert_eq!(m["verdict"], MetricValue::Text("pass".into()));
        for (text, want) in [
            (r#"{"a": [1]}"#, "metric `a` is an array"),
            (r#"{"a": {"b": 1}}"#, "metric `a` is an object"),
            (r#"{"a": null}"#, "metric `a` is null"),
            (r#"{"a": 1e999}"#, "not valid JSON"),
            (r#"{"a b": 1}"#, "metric name \"a b\" is not allowed"),
            (r#"{"a": "x\u0007y"}"#, "metric `a` holds control character U+0007"),
            (r#"[1]"#, "one JSON object"),
        ] {
            let e = parse_metrics(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let long = format!(r#"{{"a": "{}"}}"#, "é".repeat(METRIC_TEXT_MAX_CHARS + 1));
        assert!(parse_metrics(long.as_bytes()).unwrap_err().to_string().contains("513 characters long"));
        let big = format!(r#"{{"a": "{}"}}"#, " ".repeat(METRICS_MAX_BYTES));
        assert_eq!(parse_metrics(big.as_bytes()), Err(MetricsError::TooLarge));
        let many: String = (0..=METRICS_MAX_ENTRIES).map(|i| format!("\"m{i}\": {i}")).collect::<Vec<_>>().join(",");
        assert_eq!(parse_metrics(format!("{{{many}}}").as_bytes()), Err(MetricsError::TooMany(METRICS_MAX_ENTRIES + 1)));
    }

    proptest::proptest! {
        #[test]
        fn no_bytes_make_the_metrics_parser_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_metrics(&bytes);
        }

        #[test]
        fn accepted_metrics_round_trip(m in proptest::collection::btree_map("[a-z][a-z0-9_.:/-]{0,20}", proptest::prop_oneof![
            proptest::prelude::any::<bool>().prop_map(MetricValue::Bool),
            (-1e300f64..1e300).prop_map(MetricValue::Number),
            "[^\\p{Cc}]{0,40}".prop_map(MetricValue::Text),
        ], 0..20)) {
            let text = serde_json::to_vec(&m).unwrap();
            proptest::prop_assert_eq!(parse_metrics(&text).unwrap(), m);
        }
    }

    #[test]
    fn metrics_are_never_read_through_a_link_or_from_a_fifo() {
        let d = tempfile::tempdir().unwrap();
        let secret = d.path().join("host-secret");
        fs::write(&secret, r#"{"stolen": "host file"}"#).unwrap();
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        symlink(&secret, out.join("metrics.json")).unwrap();
        assert!(matches!(read_metrics(&out), Err(OutputError::Symlink { .. })));
        fs::remove_file(out.join("metrics.json")).unwrap();
        let fifo = std::ffi::CString::new(out.join("metrics.json").to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        // Would block forever if opened for a blocking read.
        assert!(matches!(read_metrics(&out), Err(OutputError::Special { kind: "FIFO", .. })));
        fs::remove_file(out.join("metrics.json")).unwrap();
        assert!(read_metrics(&out).unwrap().is_empty());
    }

    #[test]
    fn sanitize_strips_setuid_breaks_hard_links_and_refuses_fifos() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let outside = d.path().join("base-model.bin");
        fs::write(&outside, b"weights").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o644)).unwrap();
        fs::hard_link(&outside, out.join("copy.bin")).unwrap();
        fs::write(out.join("su"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(out.join("su"), fs::Permissions::from_mode(0o6755)).unwrap();
        symlink("/etc/passwd", out.join("link")).unwrap();
        let s = sanitize(&out).unwrap();
        assert_eq!(fs::metadata(out.join("su")).unwrap().permissions().mode() & 0o7777, 0o755);
        assert_eq!(s.stripped_mode, vec![out.join("su")]);
        assert_eq!(s.unlinked, vec![out.join("copy.bin")]);
        // The copy is private: making it read-only leaves the original alone.
        fs::set_permissions(out.join("copy.bin"), fs::Permissions::from_mode(0o444)).unwrap();
        assert_eq!(fs::metadata(&outside).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(fs::read(out.join("copy.bin")).unwrap(), b"weights");
        // The symlink stays a symlink, unfollowed.
        assert!(fs::symlink_metadata(out.join("link")).unwrap().file_type().is_symlink());
        let fifo = std::ffi::CString::new(out.join("pipe").to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let e = sanitize(&out).unwrap_err().to_string();
        assert!(e.contains("pipe is a FIFO"), "{e}");
    }

    #[test]
    fn resolve_inside_refuses_links_and_escapes() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("out/final_model")).unwrap();
        assert_eq!(resolve_inside(d.path(), Path::new("out/final_model")).unwrap(), d.path().join("out/final_model"));
        fs::remove_dir(d.path().join("out/final_model")).unwrap();
        symlink("/var/run", d.path().join("out/final_model")).unwrap();
        assert!(matches!(resolve_inside(d.path(), Path::new("out/final_model")), Err(OutputError::Symlink { .. })));
        assert!(matches!(resolve_inside(d.path(), Path::new("out/../x")), Err(OutputError::Escapes { .. })));
        assert!(matches!(resolve_inside(d.path(), Path::new("out/none")), Err(OutputError::Missing { .. })));
    }
}
