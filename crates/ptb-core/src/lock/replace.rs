//! Replacing the lockfile atomically: a temporary file beside it, fsync'd,
//! renamed over it, the directory fsync'd. Readers see the old file or the
//! new one, never a mix, whatever moment the writer is killed.

use super::LockError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A new version of the lockfile being written. Dropped without
/// [`Replacement::commit`], its temporary file is removed.
pub(super) struct Replacement {
    path: PathBuf,
    dir: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl Replacement {
    /// A new lockfile gets the mode the umask gives (it is meant to be
    /// committed and shared); an existing one keeps its mode.
    pub(super) fn create(path: &Path) -> Result<Replacement, LockError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let werr = |source| LockError::Write { path: path.to_path_buf(), source };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(werr)?;
        let mode = std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777);
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o666).open(&tmp).map_err(werr)?;
        let r = Replacement { path: path.to_path_buf(), dir, tmp, out: Some(BufWriter::with_capacity(256 << 10, f)) };
        if let Some(m) = mode {
            r.file().set_permissions(std::fs::Permissions::from_mode(m)).map_err(werr)?;
        }
        Ok(r)
    }

    fn file(&self) -> &File {
        self.out.as_ref().expect("open until committed").get_ref()
    }

    pub(super) fn write_all(&mut self, bytes: &[u8]) -> Result<(), LockError> {
        let out = self.out.as_mut().expect("open until committed");
        out.write_all(bytes).map_err(|source| LockError::Write { path: self.path.clone(), source })
    }

    /// Make the new content durable and put it in place.
    pub(super) fn commit(mut self) -> Result<(), LockError> {
        let out = self.out.take().expect("committed once");
        let put = || -> std::io::Result<()> {
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            std::fs::rename(&self.tmp, &self.path)
        };
        if let Err(source) = put() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(LockError::Write { path: self.path.clone(), source });
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
