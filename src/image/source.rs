//! Where an image's files come from: an OCI layout directory, or a tar archive (docker save,
//! oci-archive, or stdin spooled to the work area) indexed once so members are read in place.
use crate::error::{Error, IoContext, Result};
use crate::fs::{normalize_entry_path, ContentReader};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub enum Store {
    Dir(PathBuf),
    Tar(Arc<TarIndex>),
}

pub struct TarIndex {
    /// The name the user knows the archive by (not a spool file's).
    path: PathBuf,
    file: Arc<File>,
    members: HashMap<Vec<u8>, Member>,
}

#[derive(Clone, Debug)]
enum Member {
    Data { offset: u64, size: u64 },
    /// Old `docker save` deduplicated identical layers with symlinks between members.
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Dir,
}

impl Store {
    /// Human name of a member for error messages.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Store::Dir(d) => d.join(name).display().to_string(),
            Store::Tar(t) => format!("{}:{}", t.path.display(), name),
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        match self {
            Store::Dir(d) => safe_rel(name).map(|r| d.join(r).is_file()).unwrap_or(false),
            Store::Tar(t) => t.resolve(name.as_bytes()).is_some(),
        }
    }

    /// Open a member; `name` is relative to the layout/archive root and may come from the
    /// image (manifest.json), so it is checked to stay inside.
    pub fn open(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Store::Dir(d) => {
                let rel = safe_rel(name).ok_or_else(|| Error::input(self.describe(name), "path escapes the image directory"))?;
                let p = d.join(rel);
                // Never follow a symlink planted in the layout out of it.
                let md = std::fs::symlink_metadata(&p).at(&p)?;
                if !md.is_file() {
                    return Err(Error::input(p.display().to_string(), "not a regular file"));
                }
                let f = File::open(&p).at(&p)?;
                Ok((Box::new(f), md.len()))
            }
            Store::Tar(t) => {
                let (offset, size) = t
                    .resolve(name.as_bytes())
                    .ok_or_else(|| Error::input(self.describe(name), "missing from the archive"))?;
                Ok((Box::new(ContentReader::new(t.file.clone(), offset, size)), size))
            }
        }
    }

    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let (r, size) = self.open(name)?;
        if size > limit {
            return Err(Error::input(self.describe(name), format!("{size} bytes is too large for a JSON document")));
        }
        let mut v = Vec::with_capacity(size as usize);
        r.take(limit).read_to_end(&mut v).map_err(|e| Error::input(self.describe(name), e.to_string()))?;
        Ok(v)
    }
}

fn safe_rel(name: &str) -> Option<PathBuf> {
    let n = normalize_entry_path(name.as_bytes()).ok()?;
    if n.is_empty() {
        return None;
    }
    Some(PathBuf::from(String::from_utf8(n).ok()?))
}

impl TarIndex {
    /// Index every member of an archive once (headers only; data is skipped by seeking).
    pub fn open(path: &Path) -> Result<TarIndex> {
        Self::open_as(path, &path.display().to_string())
    }

    /// Index `path`, naming it `what` in messages (stdin, or the user's compressed archive).
    pub fn open_as(path: &Path, what: &str) -> Result<TarIndex> {
        let file = File::open(path).at(path)?;
        let mut members = HashMap::new();
        {
            let mut ar = tar::Archive::new(&file);
            let entries = ar.entries_with_seek().map_err(|e| Error::input(what, format!("not a tar archive: {e}")))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::input(what, format!("reading the archive: {e}")))?;
                let raw = entry.path_bytes().into_owned();
                let Ok(name) = normalize_entry_path(&raw) else {
                    // A hostile member name can never be addressed; ignore it rather than trust it.
                    continue;
                };
                let m = match entry.header().entry_type() {
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        Member::Data { offset: entry.raw_file_position(), size: entry.size() }
                    }
                    tar::EntryType::Symlink => match entry.link_name_bytes() {
                        Some(l) => Member::Symlink(l.into_owned()),
                        None => continue,
                    },
                    tar::EntryType::Link => match entry.link_name_bytes() {
                        Some(l) => Member::Hardlink(l.into_owned()),
                        None => continue,
                    },
                    tar::EntryType::Directory => Member::Dir,
                    _ => continue,
                };
                members.insert(name, m);
            }
        }
        if members.is_empty() {
            return Err(Error::input(what, "empty or not a tar archive"));
        }
        Ok(TarIndex { path: PathBuf::from(what), file: Arc::new(file), members })
    }

    /// Follow member symlinks/hardlinks (bounded, never leaving the archive root).
    fn resolve(&self, name: &[u8]) -> Option<(u64, u64)> {
        let mut cur = normalize_entry_path(name).ok()?;
        for _ in 0..16 {
            match self.members.get(&cur)? {
                Member::Data { offset, size } => return Some((*offset, *size)),
                Member::Dir => return None,
                Member::Hardlink(t) => cur = normalize_entry_path(t).ok()?,
                Member::Symlink(t) => {
                    let base = match cur.iter().rposition(|b| *b == b'/') {
                        Some(i) => cur[..i].to_vec(),
                        None => Vec::new(),
                    };
                    let joined = if t.first() == Some(&b'/') { t[1..].to_vec() } else { crate::fs::join_path(&base, t) };
                    cur = lexical_clean(&joined)?;
                }
            }
        }
        None
    }

    pub fn has(&self, name: &str) -> bool {
        normalize_entry_path(name.as_bytes()).map(|n| self.members.contains_key(&n)).unwrap_or(false)
    }
}

/// Resolve `..` lexically; None when it would climb above the archive root.
fn lexical_clean(p: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in p.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join(&b'/'))
}
