//! Layer changesets: reading a layer tar into a list of changes (whiteouts, opaque markers,
//! additions), applying changesets to the merged tree the way container runtimes do, and
//! writing a tree back as one deterministic layer tar.
mod apply;
mod read;
mod write;

pub use apply::{apply, ApplyStats};
pub use read::{read_changeset, Change, ChangeKind, Changeset};
pub use write::{write_tree, WriteOptions, WriteStats};

use crate::error::Result;
use crate::fs::Tree;

/// Merge changesets bottom to top into one tree. Returns the tree and, per layer, what it
/// wasted (lower content it deleted or replaced). Given owned changesets, each is freed as
/// soon as it is merged, so the layers' metadata and the tree never peak together.
pub fn squash<C: std::borrow::Borrow<Changeset>>(changesets: impl IntoIterator<Item = C>, names: &[String]) -> Result<(Tree, Vec<ApplyStats>)> {
    let mut tree = Tree::new();
    let mut stats = Vec::with_capacity(names.len());
    for (cs, name) in changesets.into_iter().zip(names) {
        stats.push(apply(&mut tree, cs.borrow(), name)?);
    }
    Ok((tree, stats))
}
