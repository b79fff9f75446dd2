//! Persistent blob cache, content-addressed like an OCI layout (`blobs/sha256/<hex>`), so a
//! second pull of the same image downloads nothing. Writes go to `tmp/` and are renamed in
//! after their digest checks out; least-recently-used blobs go first when over the bound.
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Default size bound when `IMGSLIM_CACHE_MAX` is unset: 10 GiB.
const DEFAULT_MAX: u64 = 10 << 30;

#[derive(Clone, Debug)]
pub struct Cache {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

pub struct Usage {
    pub blobs: usize,
    pub bytes: u64,
}

impl Cache {
    /// `$IMGSLIM_CACHE_DIR`, else `$XDG_CACHE_HOME/imgslim`, else `~/.cache/imgslim`; the bound is
    /// `$IMGSLIM_CACHE_MAX` (bytes, or with a K/M/G suffix).
    pub fn from_env() -> Result<Cache> {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = env("IMGSLIM_CACHE_DIR")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("imgslim")))
            .or_else(|| env("HOME").map(|h| h.join(".cache/imgslim")))
            .ok_or_else(|| Error::Usage("no cache directory: set IMGSLIM_CACHE_DIR, XDG_CACHE_HOME or HOME".into()))?;
        let max_bytes = match std::env::var("IMGSLIM_CACHE_MAX") {
            Ok(s) if !s.is_empty() => parse_size(&s).ok_or_else(|| Error::Usage(format!("IMGSLIM_CACHE_MAX '{s}': expected bytes, e.g. 2G")))?,
            _ => DEFAULT_MAX,
        };
        Ok(Cache { dir, max_bytes })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.blob_path())
    }

    /// The cached blob when present with the expected size; touched so pruning keeps it.
    pub fn get(&self, d: &Digest, size: Option<u64>) -> Option<PathBuf> {
        let p = self.blob_path(d);
        let md = std::fs::symlink_metadata(&p).ok()?;
        if !md.is_file() || size.is_some_and(|s| s != md.len()) {
            return None;
        }
        if let Ok(f) = std::fs::File::options().append(true).open(&p) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(p)
    }

    /// A temp file for a download; `commit` moves it in once verified. It is registered with
    /// the interrupt handler, so a signal mid-download leaves no partial blob in `tmp/`.
    pub fn temp(&self) -> Result<PendingBlob> {
        let tmp = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp).at(&tmp)?;
        let file = crate::cli::interrupt::create(|| tempfile::Builder::new().prefix("blob-").tempfile_in(&tmp), |t| t.path().to_path_buf())
            .at(&tmp)?;
        Ok(PendingBlob(Some(file)))
    }

    pub fn commit(&self, mut tmp: PendingBlob, d: &Digest) -> Result<PathBuf> {
        let p = self.blob_path(d);
        let parent = p.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).at(parent)?;
        let Some(file) = tmp.0.take() else { return Err(Error::Other(format!("{}: temp file already committed", p.display()))) };
        let path = file.path().to_path_buf();
        let done = file.persist(&p).map_err(|e| Error::io(&p, e.error));
        crate::cli::interrupt::forget(&path);
        done?;
        Ok(p)
    }

    /// Store small bytes (manifests, configs) already verified by the caller.
    pub fn put_bytes(&self, d: &Digest, bytes: &[u8]) -> Result<PathBuf> {
        if let Some(p) = self.get(d, Some(bytes.len() as u64)) {
            return Ok(p);
        }
        let mut t = self.temp()?;
        std::io::Write::write_all(&mut t, bytes).at(t.path())?;
        self.commit(t, d)
    }

    fn blobs(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let dir = self.dir.join("blobs/sha256");
        let Ok(rd) = std::fs::read_dir(&dir) else { return Vec::new() };
        rd.flatten()
            .filter_map(|e| {
                let md = e.metadata().ok()?;
                md.is_file().then(|| (e.path(), md.len(), md.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
            })
            .collect()
    }

    pub fn usage(&self) -> Usage {
        let b = self.blobs();
        Usage { blobs: b.len(), bytes: b.iter().map(|x| x.1).sum() }
    }

    /// Held (shared) by every pull while it uses cached blobs and temp files; pruning takes it
    /// exclusively, so it never deletes what a concurrent run is about to link or commit.
    pub fn lock_shared(&self) -> Result<std::fs::File> {
        let f = self.lock_file()?;
        f.lock_shared().at(self.dir.join("lock"))?;
        Ok(f)
    }

    fn lock_file(&self) -> Result<std::fs::File> {
        std::fs::create_dir_all(&self.dir).at(&self.dir)?;
        let p = self.dir.join("lock");
        std::fs::File::options().create(true).truncate(false).write(true).open(&p).at(&p)
    }

    /// Delete least-recently-used blobs until the cache holds at most `keep` bytes; returns what
    /// was removed. Stale temp files of interrupted downloads go too. Waits for running pulls.
    pub fn prune(&self, keep: u64) -> Result<Usage> {
        let lock = self.lock_file()?;
        lock.lock().at(self.dir.join("lock"))?;
        self.prune_locked(keep)
    }

    fn prune_locked(&self, keep: u64) -> Result<Usage> {
        let _ = std::fs::remove_dir_all(self.dir.join("tmp"));
        let mut b = self.blobs();
        b.sort_by_key(|x| std::cmp::Reverse(x.2));
        let mut total: u64 = b.iter().map(|x| x.1).sum();
        let mut removed = Usage { blobs: 0, bytes: 0 };
        while total > keep {
            let Some((p, size, _)) = b.pop() else { break };
            std::fs::remove_file(&p).at(&p)?;
            total -= size;
            removed.blobs += 1;
            removed.bytes += size;
        }
        Ok(removed)
    }

    /// Enforce the configured bound (after a pull, its shared lock released). While another
    /// run is pulling this is skipped rather than waited for: that run enforces it when done.
    pub fn enforce_bound(&self) -> Result<()> {
        if self.usage().bytes <= self.max_bytes {
            return Ok(());
        }
        let lock = self.lock_file()?;
        match lock.try_lock() {
            Ok(()) => self.prune_locked(self.max_bytes).map(|_| ()),
            Err(std::fs::TryLockError::WouldBlock) => Ok(()),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(self.dir.join("lock"), e)),
        }
    }
}

/// A download's temp file in the cache's `tmp/`: removed when dropped (an error) or on a
/// signal, and unregistered from the interrupt handler once it is gone or committed.
pub struct PendingBlob(Option<tempfile::NamedTempFile>);

impl PendingBlob {
    pub fn path(&self) -> &Path {
        self.0.as_ref().map_or(Path::new(""), |f| f.path())
    }

    pub fn reopen(&self) -> std::io::Result<std::fs::File> {
        match &self.0 {
            Some(f) => f.reopen(),
            None => Err(std::io::Error::other("temp file already committed")),
        }
    }
}

impl std::io::Write for PendingBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("temp file already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            let path = f.path().to_path_buf();
            drop(f);
            crate::cli::interrupt::forget(&path);
        }
    }
}

/// `123`, `10K`, `512M`, `2G` (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        (i, 'T' | 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Make `dst` hold the cached blob `src`: a hard link when on the same filesystem, else a copy.
pub fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p).at(p)?;
    }
    if dst.exists() {
        return Ok(());
    }
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).at(dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("10k"), Some(10 << 10));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn prune_drops_least_recent_first() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache { dir: d.path().to_path_buf(), max_bytes: 1 << 20 };
        let old = Digest::of_bytes(b"old");
        let new = Digest::of_bytes(b"new!");
        c.put_bytes(&old, b"old").unwrap();
        let p = c.blob_path(&old);
        let f = std::fs::File::options().append(true).open(&p).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000)).unwrap();
        c.put_bytes(&new, b"new!").unwrap();
        let removed = c.prune(4).unwrap();
        assert_eq!((removed.blobs, removed.bytes), (1, 3));
        assert!(c.get(&old, None).is_none());
        assert!(c.get(&new, Some(4)).is_some());
    }
}
