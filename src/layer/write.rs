//! Write a tree as one layer tar, deterministically: entries in `Tree::walk` order (parents
//! first, names in byte order), explicit headers (never the tar crate's deterministic mode,
//! which rewrites modes), PAX records only where needed, hardlink targets before their links.
use crate::error::{Error, Result};
use crate::fs::{ContentStore, Data, Meta, Node, Tree};
use std::collections::HashMap;
use std::io::{Read, Write};
use tar::{EntryType, Header};

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// SOURCE_DATE_EPOCH: mtimes later than this are clamped to it (BuildKit's rule).
    pub clamp_mtime: Option<i64>,
    /// Free each spool's space once the write has read the last content in it (see
    /// `ReleasePlan`). Only for the store's last reader: a freed range reads back as zeros.
    pub release_content: bool,
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
    let mut buf = vec![0u8; COPY_BUF];
    let mut release = opts.release_content.then(|| ReleasePlan::new(tree, store));
    for (i, (path, id)) in tree.walk_iter().enumerate() {
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
                append_content(b.get_mut(), &h, r, &mut buf).map_err(werr)?;
                stats.content_bytes += c.len;
                crate::progress::add(c.len);
            }
            None => b.append(&h, std::io::empty()).map_err(werr)?,
        }
        stats.entries += 1;
        if let Some(r) = &mut release {
            r.written(i);
        }
    }
    let out = b.into_inner().map_err(werr)?;
    Ok((out, stats))
}

/// Spool space is freed in segments of this size.
const RELEASE_SEGMENT: u64 = 16 << 20;

/// For each spool segment, the walk index of the last entry whose content lies in it: once
/// the write is past that entry the segment is freed, so the spools shrink as the layer is
/// written instead of all at the end. Every file leaf counts as a read (hardlinks too, though
/// only the first is), which can only free a segment later, never too early.
struct ReleasePlan {
    /// (walk index of the last read, spool, segment), in walk order.
    due: Vec<(usize, u32, u64)>,
    next: usize,
    releaser: crate::fs::Releaser,
}

impl ReleasePlan {
    fn new(tree: &Tree, store: &ContentStore) -> Self {
        let mut last: HashMap<(u32, u64), usize> = HashMap::new();
        for (i, (_, id)) in tree.walk_iter().enumerate() {
            let Node::Leaf(ino) = tree.node(id) else { continue };
            if let Data::File { content: c } = &tree.inode(*ino).data {
                if c.len > 0 {
                    for seg in c.offset / RELEASE_SEGMENT..=(c.offset + c.len - 1) / RELEASE_SEGMENT {
                        last.insert((c.spool, seg), i);
                    }
                }
            }
        }
        let mut due: Vec<(usize, u32, u64)> = last.into_iter().map(|((spool, seg), i)| (i, spool, seg)).collect();
        due.sort_unstable();
        ReleasePlan { due, next: 0, releaser: store.releaser() }
    }

    /// Entry `i` is written: free the segments no later entry reads.
    fn written(&mut self, i: usize) {
        while let Some(&(at, spool, seg)) = self.due.get(self.next) {
            if at > i {
                break;
            }
            self.releaser.release(spool, seg * RELEASE_SEGMENT, RELEASE_SEGMENT);
            self.next += 1;
        }
    }
}

/// File contents are copied through one buffer of this size, allocated once.
const COPY_BUF: usize = 256 << 10;

/// A regular file's header, content and padding. `tar::Builder::append` copies with
/// `io::copy`'s 8 KiB buffer: one `pread` per 8 KiB, and a zeroed stack buffer per file.
fn append_content<W: Write>(out: &mut W, h: &Header, mut r: impl Read, buf: &mut [u8]) -> std::io::Result<()> {
    out.write_all(h.as_bytes())?;
    let mut left = h.entry_size()?;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = match r.read(&mut buf[..want]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file content shorter than its header says"));
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    let pad = (512 - h.entry_size()? % 512) % 512;
    out.write_all(&[0u8; 512][..pad as usize])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{ContentRef, SpoolWriter};
    use std::os::unix::fs::MetadataExt;

    /// Freeing the spool behind the write must not change a byte of the layer, even when the
    /// walk reads the spool out of order and two files share content far apart in the walk.
    #[test]
    fn releasing_the_spool_while_writing_keeps_every_byte() {
        const N: usize = 40;
        let mut spool = SpoolWriter::new(0, tempfile::tempfile().unwrap());
        let refs: Vec<ContentRef> = (0..N)
            .map(|i| spool.append_bytes(&(0..1u32 << 20).map(|j| (j as usize * 31 + i * 7) as u8).collect::<Vec<u8>>()).unwrap())
            .collect();
        let file = spool.finish().unwrap();
        let watch = file.try_clone().unwrap();
        let mut store = ContentStore::new(1);
        store.set(0, file);
        let mut tree = Tree::new();
        let mut released = Vec::new();
        let meta = Meta { mode: 0o644, ..Default::default() };
        // Names permute the spool order, so segments are last read at scattered points.
        let mut put = |name: String, c: ContentRef| {
            let ino = tree.new_inode(meta.clone(), Data::File { content: c });
            tree.put_leaf(&[name.as_bytes()], ino, &mut released);
        };
        for (i, c) in refs.iter().enumerate() {
            put(format!("f{:02}", (i * 17) % N), *c);
        }
        put("a-first".into(), refs[N - 1]);
        put("z-last".into(), refs[0]);
        let write = |release_content| write_tree(&tree, &store, Vec::new(), &WriteOptions { release_content, ..Default::default() }).unwrap().0;
        let kept = write(false);
        let before = watch.metadata().unwrap().blocks();
        let released_tar = write(true);
        assert!(kept == released_tar, "the layer changed when the spool was freed behind the write");
        let after = watch.metadata().unwrap().blocks();
        assert!(after < before / 2, "the spool was not freed ({before} -> {after} blocks)");
    }
}
