//! Apply a changeset to the merged tree exactly as overlay-based runtimes do.
use super::read::{ChangeKind, Changeset};
use crate::error::{Error, Result};
use crate::fs::{split_path, Node, Tree};

#[derive(Debug, Default, Clone, Copy)]
pub struct ApplyStats {
    /// Content bytes of lower (or same-layer duplicate) copies that this layer deleted or
    /// replaced, each copy counted once. A copy that survives through another hardlink is not
    /// wasted and is not counted.
    pub wasted_bytes: u64,
    pub wasted_files: u64,
}

/// `what` names the layer in errors.
pub fn apply(tree: &mut Tree, cs: &Changeset, what: &str) -> Result<ApplyStats> {
    let mut released = Vec::new();
    // Opaque markers first, whatever their position in the layer, then explicit whiteouts:
    // both only ever hide lower-layer content, which is all the tree holds at this point.
    for dir in &cs.opaque_dirs {
        tree.clear_dir(&split_path(dir), &mut released);
    }
    for path in &cs.whiteouts {
        tree.remove(&split_path(path), &mut released);
    }
    for change in &cs.additions {
        let comps = split_path(&change.path);
        match &change.kind {
            ChangeKind::Dir(meta) => tree.put_dir(&comps, meta.clone(), &mut released),
            ChangeKind::Leaf(meta, data) => {
                if comps.is_empty() {
                    return Err(Error::input(what, "a non-directory entry for the root directory"));
                }
                let ino = tree.new_inode(meta.clone(), data.clone());
                tree.put_leaf(&comps, ino, &mut released);
            }
            ChangeKind::Hardlink { target } => {
                let ino = match hardlink_target(tree, target).map(|id| tree.node(id)) {
                    Some(Node::Leaf(ino)) => *ino,
                    Some(Node::Dir { .. }) => {
                        return Err(Error::input(
                            format!("{what}: entry '{}'", String::from_utf8_lossy(&change.path)),
                            format!("hardlink to a directory '{}'", String::from_utf8_lossy(target)),
                        ))
                    }
                    None => {
                        return Err(Error::input(
                            format!("{what}: entry '{}'", String::from_utf8_lossy(&change.path)),
                            format!("hardlink target '{}' does not exist", String::from_utf8_lossy(target)),
                        ))
                    }
                };
                if comps.is_empty() {
                    return Err(Error::input(what, "a hardlink entry for the root directory"));
                }
                tree.put_leaf(&comps, ino, &mut released);
            }
        }
    }
    let mut stats = ApplyStats::default();
    for ino in released {
        stats.wasted_bytes += tree.inode(ino).size();
        stats.wasted_files += 1;
    }
    Ok(stats)
}

/// A hardlink's target path as the runtimes find it: parent symlinks followed, the last
/// component literal.
fn hardlink_target(tree: &mut Tree, target: &[u8]) -> Option<crate::fs::NodeId> {
    let comps = split_path(target);
    let (last, parent) = comps.split_last()?;
    let dir = tree.resolve_dir(parent)?;
    tree.children(dir)?.get(*last).copied()
}
