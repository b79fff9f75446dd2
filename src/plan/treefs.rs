//! The merged image tree seen through the `elf::RootFs` trait, so the ELF and profile stages
//! read the image without it ever being extracted.
use crate::elf::{Node as FsNode, RootFs};
use crate::fs::{ContentStore, Data, Kind, Node, NodeId, Tree};

pub struct TreeFs<'a> {
    pub tree: &'a Tree,
    pub store: &'a ContentStore,
}

impl<'a> TreeFs<'a> {
    pub fn node_at(&self, canonical: &str) -> Option<NodeId> {
        self.tree.lookup_path(canonical.trim_start_matches('/').as_bytes())
    }
    /// Where the last component of `path` lives: its parent directories resolved (symlinks
    /// followed, chroot-style), the last component itself not followed. Returns the canonical
    /// location and the symlinks crossed to reach its directory.
    pub fn location(&self, path: &str) -> Option<(String, Vec<String>)> {
        let p = path.trim_end_matches('/');
        let (parent, name) = p.rsplit_once('/')?;
        if name.is_empty() {
            return None;
        }
        let r = self.resolve(if parent.is_empty() { "/" } else { parent })?;
        Some((format!("{}/{name}", r.path.trim_end_matches('/')), r.symlinks))
    }

    /// Mode bits of the object at a canonical path.
    pub fn mode(&self, canonical: &str) -> Option<u32> {
        self.node_at(canonical).map(|id| self.tree.meta(id).mode)
    }
}

impl<'a> RootFs for TreeFs<'a> {
    fn lstat(&self, canonical: &str) -> Option<FsNode> {
        let id = self.node_at(canonical)?;
        Some(match self.tree.node(id) {
            Node::Dir { .. } => FsNode::Dir,
            Node::Leaf(ino) => match &self.tree.inode(*ino).data {
                Data::File { .. } => FsNode::File,
                Data::Symlink { target } => FsNode::Symlink(String::from_utf8_lossy(target).into_owned()),
                _ => FsNode::Other,
            },
        })
    }
    fn read_file(&self, canonical: &str) -> Option<Vec<u8>> {
        let id = self.node_at(canonical)?;
        match self.tree.node(id) {
            Node::Leaf(ino) => match &self.tree.inode(*ino).data {
                Data::File { content } => self.store.read_all(content).ok(),
                _ => None,
            },
            Node::Dir { .. } => None,
        }
    }
    fn list_dir(&self, canonical: &str) -> Vec<String> {
        let Some(id) = self.node_at(canonical) else { return Vec::new() };
        if self.tree.kind(id) != Kind::Dir {
            return Vec::new();
        }
        // Names that are not UTF-8 cannot be addressed by the &str API; they are still
        // decided on (and kept or dropped) by the plan's own walk of the tree.
        self.tree
            .children(id)
            .map(|ch| ch.keys().filter_map(|k| String::from_utf8(k.clone()).ok()).collect())
            .unwrap_or_default()
    }
}
