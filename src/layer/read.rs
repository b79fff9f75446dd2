//! Read one uncompressed layer tar into a `Changeset`. File contents go to the layer's spool;
//! everything else stays in memory as metadata.
use crate::error::{Error, Result};
use crate::fs::{clean_link_target, normalize_entry_path, Data, Meta, SpoolWriter};
use std::collections::BTreeMap;
use std::io::Read;
use tar::EntryType;

#[derive(Debug, Clone)]
pub enum ChangeKind {
    Dir(Meta),
    Leaf(Meta, Data),
    /// A hardlink to another path of the merged tree (this layer's or a lower one's).
    Hardlink { target: Vec<u8> },
}

#[derive(Debug, Clone)]
pub struct Change {
    pub path: Vec<u8>,
    pub kind: ChangeKind,
}

/// One layer's changes, split the way they must be applied: opaque markers first, then
/// explicit whiteouts, then additions in archive order.
#[derive(Debug, Default)]
pub struct Changeset {
    pub opaque_dirs: Vec<Vec<u8>>,
    pub whiteouts: Vec<Vec<u8>>,
    pub additions: Vec<Change>,
    /// Bytes of regular-file content in this layer.
    pub content_bytes: u64,
}

impl Changeset {
    /// Entries in the layer, whiteout markers excluded.
    pub fn file_count(&self) -> usize {
        self.additions.len()
    }
}

const WH_PREFIX: &[u8] = b".wh.";
const WH_OPAQUE: &[u8] = b".wh..wh..opq";
const WH_META: &[u8] = b".wh..wh.";

/// Parse a layer. `what` names the layer in error messages (blob digest or archive member).
pub fn read_changeset(reader: impl Read, spool: &mut SpoolWriter, what: &str) -> Result<Changeset> {
    let mut ar = tar::Archive::new(reader);
    let mut cs = Changeset::default();
    let entries = ar.entries().map_err(|e| Error::input(what, format!("not a tar archive: {e}")))?;
    for (idx, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| Error::input(what, format!("tar entry #{idx}: {e}")))?;
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let bad = |msg: String| Error::input(format!("{what}: entry '{name}'"), msg);
        let etype = entry.header().entry_type();
        if matches!(etype, EntryType::XGlobalHeader) {
            // PAX global headers carry no file; Docker and Go ignore them too.
            continue;
        }
        // A leading `/` names the layer root: Docker, containerd and umoci all extract `/etc/x`
        // as `etc/x`. `..` stays refused in names (no runtime needs it to place an entry).
        let rel = &raw_path[raw_path.iter().take_while(|b| **b == b'/').count()..];
        let path = normalize_entry_path(rel).map_err(|e| bad(e.to_string()))?;

        // Whiteouts: `.wh.NAME` deletes NAME from lower layers; `.wh..wh..opq` empties the dir.
        let (dir, base) = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&path[..0], &path[..]),
        };
        if base.starts_with(WH_PREFIX) {
            if base == WH_OPAQUE {
                cs.opaque_dirs.push(dir.to_vec());
            } else if base.starts_with(WH_META) {
                // Other AUFS metadata (.wh..wh.plnk, …) is not part of the image content.
            } else {
                let target = &base[WH_PREFIX.len()..];
                if target.is_empty() {
                    return Err(bad("whiteout names no file ('.wh.' alone is invalid)".into()));
                }
                if target == b".." || target == b"." {
                    return Err(bad("whiteout names '.' or '..' (would escape its directory)".into()));
                }
                cs.whiteouts.push(crate::fs::join_path(dir, target));
            }
            continue;
        }

        let meta = entry_meta(&mut entry).map_err(bad)?;
        let kind = match etype {
            EntryType::Directory => ChangeKind::Dir(meta),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let content = spool.append(&mut entry).map_err(|e| bad(format!("reading file data: {e}")))?;
                cs.content_bytes += content.len;
                ChangeKind::Leaf(meta, Data::File { content })
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| bad("symlink without a target".into()))?;
                if target.is_empty() || target.contains(&0) {
                    return Err(bad("symlink with an empty or NUL-containing target".into()));
                }
                // The target is data, kept verbatim: `../../../../etc/passwd` is legal and
                // resolves chroot-style (see fs::resolve); nothing here ever follows it.
                ChangeKind::Leaf(meta, Data::Symlink { target: target.into_owned() })
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| bad("hardlink without a target".into()))?;
                let target = clean_link_target(&target).map_err(|e| {
                    bad(format!("hardlink target '{}' is outside the layer tree: {e}", String::from_utf8_lossy(&target)))
                })?;
                if target.is_empty() {
                    return Err(bad("hardlink to the root directory".into()));
                }
                ChangeKind::Hardlink { target }
            }
            EntryType::Char | EntryType::Block => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                if etype == EntryType::Char {
                    ChangeKind::Leaf(meta, Data::CharDev { major, minor })
                } else {
                    ChangeKind::Leaf(meta, Data::BlockDev { major, minor })
                }
            }
            EntryType::Fifo => ChangeKind::Leaf(meta, Data::Fifo),
            other => return Err(bad(format!("unsupported tar entry type {:?}", other.as_byte() as char))),
        };
        cs.additions.push(Change { path, kind });
    }
    Ok(cs)
}

/// Header fields with PAX overrides applied (the tar crate applies only size/uid/gid itself,
/// and not PAX mtime or xattrs).
fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::result::Result<Meta, String> {
    let h = entry.header();
    let old = h.as_old();
    let mode = numeric(&old.mode, h.mode().map(u64::from), "mode")? as u32 & 0o7777;
    let mut uid = numeric(&old.uid, h.uid(), "uid")?;
    let mut gid = numeric(&old.gid, h.gid(), "gid")?;
    let mut mtime = numeric(&old.mtime, h.mtime(), "mtime")? as i64;
    let mut xattrs = BTreeMap::new();
    if let Some(exts) = entry.pax_extensions().map_err(|e| format!("bad PAX header: {e}"))? {
        for ext in exts {
            let ext = ext.map_err(|e| format!("bad PAX record: {e}"))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let num = || std::str::from_utf8(value).ok().map(|s| s.trim().to_string());
            match key {
                "mtime" => {
                    // Fractional seconds are allowed; images keep whole seconds (as Docker does).
                    if let Some(s) = num() {
                        let int = s.split('.').next().unwrap_or("");
                        mtime = int.parse().map_err(|_| format!("bad PAX mtime '{s}'"))?;
                    }
                }
                "uid" => uid = num().and_then(|s| s.parse().ok()).ok_or("bad PAX uid")?,
                "gid" => gid = num().and_then(|s| s.parse().ok()).ok_or("bad PAX gid")?,
                k => {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        xattrs.insert(name.to_string(), value.to_vec());
                    }
                }
            }
        }
    }
    Ok(Meta { mode, uid, gid, mtime, xattrs })
}

/// A numeric header field; all-NUL/space fields read as 0, as Go's archive/tar reads them.
fn numeric(raw: &[u8], parsed: std::io::Result<u64>, name: &str) -> std::result::Result<u64, String> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(format!("bad {name} field: {e}")),
    }
}
