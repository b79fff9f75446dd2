//! `slim --pack`: pack the eligible executables of a (slimmed) image tree in place. Every
//! candidate is listed with what happened to it and why.
use super::{assess, Decision, PackOptions};

use crate::fs::{ContentStore, Data, Node, Tree};
use rayon::prelude::*;
use std::collections::HashSet;

#[derive(Debug, Clone, serde::Serialize)]
pub struct PackRecord {
    pub path: String,
    pub original: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packed: Option<u64>,
    /// "packed …" or "skipped: <reason>".
    pub decision: String,
}

/// Pack every executable ELF regular file of `tree` that `assess` accepts. Hardlinked names
/// share one inode, which is packed once.
pub fn pack_tree(tree: &mut Tree, store: &mut ContentStore, opts: &PackOptions) -> std::io::Result<Vec<PackRecord>> {
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    for (path, id) in tree.walk() {
        let Node::Leaf(ino) = tree.node(id) else { continue };
        let inode = tree.inode(*ino);
        let Data::File { content } = &inode.data else { continue };
        // Cheap filters first: only executable-mode files, then ELF magic.
        if inode.meta.mode & 0o111 == 0 || !seen.insert(*ino) {
            continue;
        }
        let head = store.read_head(content, 4)?;
        if head != b"\x7fELF" {
            continue;
        }
        let caps = inode.meta.xattrs.contains_key("security.capability");
        candidates.push((format!("/{}", String::from_utf8_lossy(&path)), *ino, *content, inode.meta.mode, caps));
    }
    // The LZMA encoder needs ~100 MB per file: rayon's pool (one thread per core) bounds it.
    let results: Vec<std::io::Result<(String, usize, u64, Decision)>> = candidates
        .par_iter()
        .map(|(path, ino, content, mode, caps)| {
            if content.len < opts.min_size {
                // Below the threshold: say so without reading the whole file.
                let reason = super::SkipReason::TooSmall { size: content.len, min: opts.min_size };
                return Ok((path.clone(), *ino, content.len, Decision::Skip(reason)));
            }
            let bytes = store.read_all(content)?;
            Ok((path.clone(), *ino, content.len, assess(&bytes, *mode, *caps, opts)))
        })
        .collect();
    let mut records = Vec::new();
    for r in results {
        let (path, ino, original, decision) = r?;
        let text = decision.to_string();
        let packed = match decision {
            Decision::Pack(p) => {
                let c = store.add_bytes(&p.bytes)?;
                tree.inode_mut(ino).data = Data::File { content: c };
                Some(p.packed_size)
            }
            Decision::Skip(_) => None,
        };
        records.push(PackRecord { path, original, packed, decision: text });
    }
    Ok(records)
}
