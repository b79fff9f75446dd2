//! The squashed tree materialised once in the work area: the overlay's read-only lower layer.
//! Every entry is created inside a directory this function itself created, so no image path,
//! symlink or `..` can make it write elsewhere. Device nodes are not created (a container's
//! /dev is ours) and no xattr is written (no file capabilities). As root, ownership is kept.
use crate::error::{IoContext, Result};
use crate::fs::{ContentStore, Data, Meta, Node, NodeId, Tree, ROOT};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A materialised rootfs; removed (whatever its modes) when dropped.
pub struct Rootfs {
    path: PathBuf,
}

impl Rootfs {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        remove_tree(&self.path);
    }
}

/// Remove a tree even where the image made directories read-only (rootless, mode bits bind).
pub fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() {
        return;
    }
    for e in walkdir::WalkDir::new(path).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
    let _ = std::fs::remove_dir_all(path);
}

struct Writer<'a> {
    tree: &'a Tree,
    store: &'a ContentStore,
    as_root: bool,
    /// First path written for each inode: later paths of it become hardlinks.
    links: HashMap<usize, PathBuf>,
}

/// Write `tree` under `dir` (which must not exist yet).
pub fn materialise(tree: &Tree, store: &ContentStore, dir: &Path) -> Result<Rootfs> {
    std::fs::DirBuilder::new().mode(0o700).create(dir).at(dir)?;
    let rootfs = Rootfs { path: dir.to_path_buf() };
    let mut w = Writer { tree, store, as_root: nix::unistd::geteuid().is_root(), links: HashMap::new() };
    w.dir(ROOT, dir)?;
    Ok(rootfs)
}

impl Writer<'_> {
    fn dir(&mut self, id: NodeId, path: &Path) -> Result<()> {
        if let Some(children) = self.tree.children(id) {
            for (name, child) in children {
                // The tree's names are normalised single components; check anyway.
                if name.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
                    continue;
                }
                let p = path.join(OsStr::from_bytes(name));
                self.entry(*child, &p)?;
            }
        }
        // Modes last: a read-only directory must first be filled.
        self.finish(path, self.tree.meta(id), false)
    }

    fn entry(&mut self, id: NodeId, p: &Path) -> Result<()> {
        let ino = match self.tree.node(id) {
            Node::Dir { .. } => {
                std::fs::DirBuilder::new().mode(0o700).create(p).at(p)?;
                return self.dir(id, p);
            }
            Node::Leaf(ino) => *ino,
        };
        if let Some(first) = self.links.get(&ino) {
            return std::fs::hard_link(first, p).at(p);
        }
        let inode = self.tree.inode(ino);
        match &inode.data {
            Data::File { content } => {
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(p).at(p)?;
                let mut r = self.store.reader(content).at(p)?;
                std::io::copy(&mut r, &mut f).at(p)?;
            }
            Data::Symlink { target } => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), p).at(p)?;
                return self.finish(p, &inode.meta, true);
            }
            Data::Fifo => nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(std::io::Error::from).at(p)?,
            // Device nodes: the container's /dev is a tmpfs of ours; image nodes are skipped.
            Data::CharDev { .. } | Data::BlockDev { .. } => return Ok(()),
        }
        self.links.insert(ino, p.to_path_buf());
        self.finish(p, &inode.meta, false)
    }

    /// Owner (as root), mode, mtime. Never through a symlink.
    fn finish(&self, p: &Path, meta: &Meta, symlink: bool) -> Result<()> {
        if self.as_root {
            let (u, g) = (u32::try_from(meta.uid).ok(), u32::try_from(meta.gid).ok());
            std::os::unix::fs::lchown(p, u, g).at(p)?;
        }
        if !symlink {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(meta.mode & 0o7777)).at(p)?;
        }
        let t = nix::sys::time::TimeSpec::new(meta.mtime, 0);
        nix::sys::stat::utimensat(nix::fcntl::AT_FDCWD, p, &t, &t, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
            .map_err(std::io::Error::from)
            .at(p)
    }
}
