//! The merged filesystem tree of an image: an in-memory tree of entries whose file contents
//! live in spool files in the work area (never all in RAM, never extracted to the host).
//!
//! Non-directory entries point at an *inode*, so hardlinks are paths sharing one inode: a
//! link keeps its content when the other path is replaced or whited out, exactly like
//! unlink-then-create on a real filesystem.
mod content;
mod path;
pub mod resolve;
pub mod space;

pub use content::{ContentReader, ContentRef, ContentStore, Releaser, SpoolError, SpoolWriter};
pub use path::{clean_link_target, join_path, normalize_entry_path, split_path, PathError};
pub use resolve::{HostDir, Resolved, RootFs, MAX_SYMLINKS};

use std::collections::BTreeMap;

pub type NodeId = usize;
pub type InodeId = usize;

/// Ownership, permissions (the 12 low bits: rwx plus setuid/setgid/sticky), mtime and xattrs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Extended attributes by full name (`security.capability`, …), carried as SCHILY.xattr.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    File { content: ContentRef },
    Symlink { target: Vec<u8> },
    CharDev { major: u32, minor: u32 },
    BlockDev { major: u32, minor: u32 },
    Fifo,
}

#[derive(Clone, Debug)]
pub struct Inode {
    pub meta: Meta,
    pub data: Data,
    /// Number of tree paths that reference this inode.
    pub links: u32,
}

impl Inode {
    /// Content size in bytes (0 for everything but regular files).
    pub fn size(&self) -> u64 {
        match &self.data {
            Data::File { content } => content.len,
            _ => 0,
        }
    }
}

/// A directory's attributes and entries. Boxed in `Node` so that the far more numerous
/// leaves cost 16 bytes each (a `Meta` and a map inline would make every node 80).
#[derive(Clone, Debug)]
pub struct Dir {
    pub meta: Meta,
    pub children: BTreeMap<Vec<u8>, NodeId>,
}

#[derive(Clone, Debug)]
pub enum Node {
    Dir(Box<Dir>),
    Leaf(InodeId),
}

impl Node {
    fn dir(meta: Meta) -> Node {
        Node::Dir(Box::new(Dir { meta, children: BTreeMap::new() }))
    }
}

/// What a path holds, for callers that walk the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    CharDev,
    BlockDev,
    Fifo,
}

impl Kind {
    /// The name reports use (`dir`, `file`, `symlink`, `char`, `block`, `fifo`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dir => "dir",
            Kind::File => "file",
            Kind::Symlink => "symlink",
            Kind::CharDev => "char",
            Kind::BlockDev => "block",
            Kind::Fifo => "fifo",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    inodes: Vec<Inode>,
}

pub const ROOT: NodeId = 0;

/// Metadata for directories a layer creates implicitly (an entry whose parent has no entry):
/// what containerd's applier does with MkdirAll.
pub fn implicit_dir_meta() -> Meta {
    Meta { mode: 0o755, ..Meta::default() }
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            nodes: vec![Node::dir(implicit_dir_meta())],
            inodes: Vec::new(),
        }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }
    pub fn inode(&self, id: InodeId) -> &Inode {
        &self.inodes[id]
    }
    pub fn inode_mut(&mut self, id: InodeId) -> &mut Inode {
        &mut self.inodes[id]
    }

    pub fn kind(&self, id: NodeId) -> Kind {
        match &self.nodes[id] {
            Node::Dir { .. } => Kind::Dir,
            Node::Leaf(i) => match self.inodes[*i].data {
                Data::File { .. } => Kind::File,
                Data::Symlink { .. } => Kind::Symlink,
                Data::CharDev { .. } => Kind::CharDev,
                Data::BlockDev { .. } => Kind::BlockDev,
                Data::Fifo => Kind::Fifo,
            },
        }
    }

    pub fn meta(&self, id: NodeId) -> &Meta {
        match &self.nodes[id] {
            Node::Dir(d) => &d.meta,
            Node::Leaf(i) => &self.inodes[*i].meta,
        }
    }

    /// Size of a regular file's content, 0 otherwise.
    pub fn size(&self, id: NodeId) -> u64 {
        match &self.nodes[id] {
            Node::Dir { .. } => 0,
            Node::Leaf(i) => self.inodes[*i].size(),
        }
    }

    pub fn children(&self, id: NodeId) -> Option<&BTreeMap<Vec<u8>, NodeId>> {
        match &self.nodes[id] {
            Node::Dir(d) => Some(&d.children),
            Node::Leaf(_) => None,
        }
    }

    /// Look a path up literally: no symlink is followed (layer paths are literal, as in an
    /// overlay snapshot, and a symlink must never redirect where an entry lands).
    pub fn lookup(&self, comps: &[&[u8]]) -> Option<NodeId> {
        let mut cur = ROOT;
        for c in comps {
            cur = *self.children(cur)?.get(*c)?;
        }
        Some(cur)
    }

    pub fn lookup_path(&self, path: &[u8]) -> Option<NodeId> {
        self.lookup(&split_path(path))
    }

    /// Make sure every directory on `comps` exists, creating missing ones with
    /// `implicit_dir_meta`. A symlink on the way is followed inside the tree, chroot-style, as
    /// containerd (`fs.RootPath`) and umoci do: an entry `bin/x` over a lower `bin -> usr/bin`
    /// lands in `usr/bin`. Any other non-directory in the way (or a symlink loop) is replaced
    /// by a directory (an entry `a/b` over a lower file `a` implies `a` is now a directory),
    /// and its inode released. Returns the directory.
    pub fn ensure_dir(&mut self, comps: &[&[u8]], released: &mut Vec<InodeId>) -> NodeId {
        self.walk_dirs(comps, Some(released), true).unwrap_or(ROOT)
    }

    /// The directory at `comps` with symlinks on the way followed as `ensure_dir` does, without
    /// changing the tree. None when a component is missing or not a directory.
    pub fn resolve_dir(&mut self, comps: &[&[u8]]) -> Option<NodeId> {
        self.walk_dirs(comps, None, true)
    }

    /// Walk `comps` from the root following symlinks (absolute targets restart at the root,
    /// `..` at the root stays there). With `create`, missing or non-directory components become
    /// directories; without, the walk stops there. After MAX_SYMLINKS (a loop) the walk starts
    /// over without following any link, so the names are taken literally.
    fn walk_dirs(&mut self, comps: &[&[u8]], mut create: Option<&mut Vec<InodeId>>, follow: bool) -> Option<NodeId> {
        let mut todo: std::collections::VecDeque<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
        let mut stack = vec![ROOT];
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            if c.is_empty() || c == b"." {
                continue;
            }
            if c == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let cur = *stack.last().unwrap_or(&ROOT);
            let existing = self.children(cur).and_then(|ch| ch.get(&c).copied());
            if let Some(id) = existing {
                if matches!(self.nodes[id], Node::Dir { .. }) {
                    stack.push(id);
                    continue;
                }
                if let Some(target) = self.symlink_target(id).filter(|_| follow) {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return self.walk_dirs(comps, create, false);
                    }
                    if target.first() == Some(&b'/') {
                        stack.truncate(1);
                    }
                    for part in split_path(&target).into_iter().rev() {
                        todo.push_front(part.to_vec());
                    }
                    continue;
                }
            }
            let released = create.as_deref_mut()?;
            if let Some(old) = existing {
                self.release_subtree(old, released);
            }
            let id = self.push_node(Node::dir(implicit_dir_meta()));
            self.dir_children_mut(cur).insert(c, id);
            stack.push(id);
        }
        stack.last().copied()
    }

    fn symlink_target(&self, id: NodeId) -> Option<Vec<u8>> {
        match &self.nodes[id] {
            Node::Leaf(i) => match &self.inodes[*i].data {
                Data::Symlink { target } => Some(target.clone()),
                _ => None,
            },
            Node::Dir { .. } => None,
        }
    }

    fn push_node(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    fn dir_children_mut(&mut self, id: NodeId) -> &mut BTreeMap<Vec<u8>, NodeId> {
        match &mut self.nodes[id] {
            Node::Dir(d) => &mut d.children,
            // Callers only pass ids they just checked or created as directories.
            Node::Leaf(_) => unreachable!("dir_children_mut on a leaf"),
        }
    }

    /// Drop one link of every inode under `id` (itself included); collect those left with none.
    fn release_subtree(&mut self, id: NodeId, released: &mut Vec<InodeId>) {
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            match &self.nodes[n] {
                Node::Dir(d) => stack.extend(d.children.values().copied()),
                Node::Leaf(i) => {
                    let i = *i;
                    let ino = &mut self.inodes[i];
                    ino.links = ino.links.saturating_sub(1);
                    if ino.links == 0 {
                        released.push(i);
                    }
                }
            }
        }
    }

    /// Remove a path and everything below it. Returns false when nothing was there.
    /// Symlinks in the parent components are followed (a whiteout `bin/.wh.x` under a lower
    /// `bin -> usr/bin` removes `usr/bin/x`), the last component never is.
    pub fn remove(&mut self, comps: &[&[u8]], released: &mut Vec<InodeId>) -> bool {
        let Some((last, parent_comps)) = comps.split_last() else { return false };
        let Some(parent) = self.resolve_dir(parent_comps) else { return false };
        let removed = match &mut self.nodes[parent] {
            Node::Dir(d) => d.children.remove(*last),
            Node::Leaf(_) => None,
        };
        match removed {
            Some(id) => {
                self.release_subtree(id, released);
                true
            }
            None => false,
        }
    }

    /// Empty a directory (an opaque whiteout): its children go, the directory itself stays.
    /// The marker's directory is found as `ensure_dir` finds it (symlinks followed).
    pub fn clear_dir(&mut self, comps: &[&[u8]], released: &mut Vec<InodeId>) {
        let Some(id) = self.resolve_dir(comps) else { return };
        let old = match &mut self.nodes[id] {
            Node::Dir(d) => std::mem::take(&mut d.children),
            Node::Leaf(_) => return,
        };
        for child in old.into_values() {
            self.release_subtree(child, released);
        }
    }

    /// Put a directory at `comps`. If a directory is already there only its attributes change
    /// (the spec's rule for dir over dir); anything else is replaced.
    pub fn put_dir(&mut self, comps: &[&[u8]], meta: Meta, released: &mut Vec<InodeId>) {
        let Some((last, parent_comps)) = comps.split_last() else {
            // The root entry (`./`) only sets the root's attributes.
            if let Node::Dir(d) = &mut self.nodes[ROOT] {
                d.meta = meta;
            }
            return;
        };
        let parent = self.ensure_dir(parent_comps, released);
        let existing = self.children(parent).and_then(|ch| ch.get(*last).copied());
        if let Some(id) = existing {
            if let Node::Dir(d) = &mut self.nodes[id] {
                d.meta = meta;
                return;
            }
            self.release_subtree(id, released);
        }
        let id = self.push_node(Node::dir(meta));
        self.dir_children_mut(parent).insert(last.to_vec(), id);
    }

    /// Create a new inode (not yet linked anywhere).
    pub fn new_inode(&mut self, meta: Meta, data: Data) -> InodeId {
        self.inodes.push(Inode { meta, data, links: 0 });
        self.inodes.len() - 1
    }

    /// Link `inode` at `comps`, replacing whatever is there (unlink then create).
    pub fn put_leaf(&mut self, comps: &[&[u8]], inode: InodeId, released: &mut Vec<InodeId>) {
        let Some((last, parent_comps)) = comps.split_last() else { return };
        let parent = self.ensure_dir(parent_comps, released);
        // Count the new link first so relinking a path to its own inode is a no-op.
        self.inodes[inode].links += 1;
        match self.children(parent).and_then(|ch| ch.get(*last).copied()) {
            // A leaf replacing a leaf takes over its node: layers that rewrite the same paths
            // must not grow the node table.
            Some(old) if matches!(self.nodes[old], Node::Leaf(_)) => {
                self.release_subtree(old, released);
                self.nodes[old] = Node::Leaf(inode);
            }
            old => {
                let id = self.push_node(Node::Leaf(inode));
                self.dir_children_mut(parent).insert(last.to_vec(), id);
                if let Some(old) = old {
                    self.release_subtree(old, released);
                }
            }
        }
    }

    /// Every path in the tree (root excluded) in a stable order: depth-first, children by
    /// byte order of their names, so parents come before their children.
    pub fn walk(&self) -> Vec<(Vec<u8>, NodeId)> {
        self.walk_iter().collect()
    }

    /// `walk` one path at a time, holding only the current path and one cursor per directory
    /// level (the layer writer streams a tree of any size through this).
    pub fn walk_iter(&self) -> Walk<'_> {
        let top = self.children(ROOT).map(|ch| (0, ch.iter()));
        Walk { tree: self, stack: top.into_iter().collect(), path: Vec::new() }
    }
}

/// The iterator of `Tree::walk_iter`.
pub struct Walk<'a> {
    tree: &'a Tree,
    /// Per open directory: the length of its path and the cursor over its children.
    stack: Vec<(usize, std::collections::btree_map::Iter<'a, Vec<u8>, NodeId>)>,
    path: Vec<u8>,
}

impl Iterator for Walk<'_> {
    type Item = (Vec<u8>, NodeId);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (base, cursor) = self.stack.last_mut()?;
            let Some((name, id)) = cursor.next() else {
                self.stack.pop();
                continue;
            };
            self.path.truncate(*base);
            if *base > 0 {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(name);
            if let Some(ch) = self.tree.children(*id) {
                self.stack.push((self.path.len(), ch.iter()));
            }
            return Some((self.path.clone(), *id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<&[u8]> {
        split_path(s.as_bytes())
    }

    fn file(t: &mut Tree, len: u64) -> InodeId {
        t.new_inode(Meta::default(), Data::File { content: ContentRef { spool: 0, offset: 0, len } })
    }

    /// usrmerge: `bin -> usr/bin` in a lower layer, then entries and a whiteout under `bin/`
    /// (and an absolute, climbing link) land in `usr/bin`; `/bin` stays a symlink.
    #[test]
    fn symlinked_parents_are_followed_inside_the_tree() {
        let mut t = Tree::new();
        let mut rel = vec![];
        t.put_dir(&p("usr/bin"), implicit_dir_meta(), &mut rel);
        let link = t.new_inode(Meta::default(), Data::Symlink { target: b"usr/bin".to_vec() });
        t.put_leaf(&p("bin"), link, &mut rel);
        let climb = t.new_inode(Meta::default(), Data::Symlink { target: b"../../../../usr/./bin".to_vec() });
        t.put_leaf(&p("usr/lib/up"), climb, &mut rel);
        let sh = file(&mut t, 1);
        t.put_leaf(&p("bin/sh"), sh, &mut rel);
        let ls = file(&mut t, 2);
        t.put_leaf(&p("usr/lib/up/ls"), ls, &mut rel);
        assert_eq!(t.kind(t.lookup(&p("bin")).unwrap()), Kind::Symlink);
        assert!(t.lookup(&p("usr/bin/sh")).is_some() && t.lookup(&p("usr/bin/ls")).is_some());
        assert!(t.remove(&p("bin/sh"), &mut rel));
        assert!(t.lookup(&p("usr/bin/sh")).is_none());
        t.clear_dir(&p("bin"), &mut rel);
        assert!(t.lookup(&p("usr/bin/ls")).is_none(), "an opaque marker under bin/ empties usr/bin");
        assert_eq!(t.kind(t.lookup(&p("bin")).unwrap()), Kind::Symlink);
        // A loop is not followed forever: the names are taken literally, the link replaced.
        let l = t.new_inode(Meta::default(), Data::Symlink { target: b"loop/x".to_vec() });
        t.put_leaf(&p("loop"), l, &mut rel);
        let f = file(&mut t, 3);
        t.put_leaf(&p("loop/y"), f, &mut rel);
        assert_eq!(t.kind(t.lookup(&p("loop")).unwrap()), Kind::Dir);
        assert_eq!(t.kind(t.lookup(&p("loop/y")).unwrap()), Kind::File);
    }

    #[test]
    fn hardlink_survives_removal_of_other_path() {
        let mut t = Tree::new();
        let mut rel = vec![];
        let i = file(&mut t, 5);
        t.put_leaf(&p("a/x"), i, &mut rel);
        t.put_leaf(&p("b/y"), i, &mut rel);
        assert!(t.remove(&p("a/x"), &mut rel));
        assert!(rel.is_empty(), "inode still linked at b/y");
        assert!(t.remove(&p("b/y"), &mut rel));
        assert_eq!(rel, vec![i]);
    }

    #[test]
    fn dir_over_dir_keeps_children_file_over_dir_replaces() {
        let mut t = Tree::new();
        let mut rel = vec![];
        let i = file(&mut t, 1);
        t.put_leaf(&p("d/f"), i, &mut rel);
        t.put_dir(&p("d"), Meta { mode: 0o700, ..Meta::default() }, &mut rel);
        assert!(t.lookup(&p("d/f")).is_some());
        assert_eq!(t.meta(t.lookup(&p("d")).unwrap()).mode, 0o700);
        let j = file(&mut t, 2);
        t.put_leaf(&p("d"), j, &mut rel);
        assert_eq!(rel, vec![i]);
        assert_eq!(t.kind(t.lookup(&p("d")).unwrap()), Kind::File);
    }

    #[test]
    fn walk_is_parent_first_and_sorted() {
        let mut t = Tree::new();
        let mut rel = vec![];
        for path in ["b/z", "a-b", "a/c", "a/b"] {
            let i = file(&mut t, 0);
            t.put_leaf(&p(path), i, &mut rel);
        }
        let paths: Vec<String> = t.walk().into_iter().map(|(p, _)| String::from_utf8(p).unwrap()).collect();
        assert_eq!(paths, ["a", "a/b", "a/c", "a-b", "b", "b/z"]);
    }
}
