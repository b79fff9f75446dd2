//! Write a tree as one layer tar, deterministically: entries in `Tree::walk` order (parents
//! first, names in byte order), explicit headers (never the tar crate's deterministic mode,
//! which rewrites modes), PAX records only where needed, hardlink targets before their links.
use crate::error::{Error, Result};
use crate::fs::{ContentStore, Data, Meta, Node, Tree};
use std::collections::HashMap;
use std::io::Write;
use tar::{EntryType, Header};

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// SOURCE_DATE_EPOCH: mtimes later than this are clamped to it (BuildKit's rule).
    pub clamp_mtime: Option<i64>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    pub entries: u64,
    pub content_bytes: u64,
}

const USTAR_NAME_MAX: usize = 100;

pub fn write_tree<W: Write>(tree: &Tree, store: &ContentStore, out: W, opts: &WriteOptions) -> Result<(W, WriteStats)> {
    let mut b = tar::Builder::new(out);
    let mut stats = WriteStats::default();
    // First path written for each hardlinked inode: later paths become hardlinks to it (only
    // inodes with several links are remembered, so memory follows the links, not the files).
    let mut first_path: HashMap<usize, Vec<u8>> = HashMap::new();
    let werr = |e: std::io::Error| Error::Other(format!("writing layer tar: {e}"));
    for (path, id) in tree.walk_iter() {
        let mut h = Header::new_ustar();
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let (meta, size): (&Meta, u64);
        let mut link: Option<Vec<u8>> = None;
        let mut content = None;
        let mut entry_path = path.clone();
        match tree.node(id) {
            Node::Dir(d) => {
                h.set_entry_type(EntryType::Directory);
                entry_path.push(b'/');
                meta = &d.meta;
                size = 0;
            }
            Node::Leaf(ino_id) => {
                let ino = tree.inode(*ino_id);
                meta = &ino.meta;
                if let Some(first) = first_path.get(ino_id) {
                    h.set_entry_type(EntryType::Link);
                    link = Some(first.clone());
                    size = 0;
                } else {
                    if ino.links > 1 {
                        first_path.insert(*ino_id, path.clone());
                    }
                    match &ino.data {
                        Data::File { content: c } => {
                            h.set_entry_type(EntryType::Regular);
                            size = c.len;
                            content = Some(*c);
                        }
                        Data::Symlink { target } => {
                            h.set_entry_type(EntryType::Symlink);
                            link = Some(target.clone());
                            size = 0;
                        }
                        Data::CharDev { major, minor } | Data::BlockDev { major, minor } => {
                            let t = if matches!(ino.data, Data::CharDev { .. }) { EntryType::Char } else { EntryType::Block };
                            h.set_entry_type(t);
                            h.set_device_major(*major).map_err(werr)?;
                            h.set_device_minor(*minor).map_err(werr)?;
                            size = 0;
                        }
                        Data::Fifo => {
                            h.set_entry_type(EntryType::Fifo);
                            size = 0;
                        }
                    }
                }
            }
        }
        if entry_path.len() > USTAR_NAME_MAX {
            pax.push(("path".into(), entry_path.clone()));
            entry_path.truncate(USTAR_NAME_MAX);
        }
        // set_path would split into the ustar prefix field; writing the name bytes directly
        // keeps one rule (name field, PAX when longer) and never fails.
        let name_field = &mut h.as_old_mut().name;
        name_field.fill(0);
        name_field[..entry_path.len()].copy_from_slice(&entry_path);
        if let Some(l) = &link {
            if l.len() > USTAR_NAME_MAX {
                pax.push(("linkpath".into(), l.clone()));
            }
            let lf = &mut h.as_old_mut().linkname;
            lf.fill(0);
            let n = l.len().min(USTAR_NAME_MAX);
            lf[..n].copy_from_slice(&l[..n]);
        }
        for (k, v) in &meta.xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        h.set_mode(meta.mode);
        set_id(&mut h, &mut pax, meta.uid, true);
        set_id(&mut h, &mut pax, meta.gid, false);
        let mut mtime = meta.mtime.max(0);
        if let Some(c) = opts.clamp_mtime {
            mtime = mtime.min(c.max(0));
        }
        h.set_mtime(mtime as u64);
        h.set_size(size);
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).map_err(werr)?;
        }
        h.set_cksum();
        match content {
            Some(c) => {
                let r = store.reader(&c).map_err(werr)?;
                b.append(&h, r).map_err(werr)?;
                stats.content_bytes += c.len;
                crate::progress::add(c.len);
            }
            None => b.append(&h, std::io::empty()).map_err(werr)?,
        }
        stats.entries += 1;
    }
    let out = b.into_inner().map_err(werr)?;
    Ok((out, stats))
}

/// uid/gid beyond the octal field's range go into PAX (as Go and GNU tar do).
fn set_id(h: &mut Header, pax: &mut Vec<(String, Vec<u8>)>, v: u64, uid: bool) {
    const MAX_OCTAL: u64 = 0o7777777;
    let key = if uid { "uid" } else { "gid" };
    let shown = if v > MAX_OCTAL {
        pax.push((key.into(), v.to_string().into_bytes()));
        0
    } else {
        v
    };
    if uid {
        h.set_uid(shown);
    } else {
        h.set_gid(shown);
    }
}
