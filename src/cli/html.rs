//! `--html FILE` for `slim`, `inspect` and `diff`: the page is rendered by report::html from the data
//! the command already has; this wires it to the loaded image and the output transaction.
use super::common::Loaded;
use super::outputs::{Kind, Outputs, Slot};
use crate::error::{Error, IoContext};
use crate::plan::Entry;
use crate::report::html::{self, Layer};
use std::collections::HashSet;

/// Add the `--html` output to the transaction (before any work, like the others).
pub fn add(outs: &mut Outputs, given: Option<&str>) -> Result<Option<Slot>, Error> {
    match given {
        Some("-") => Err(Error::Usage("--html -: the page goes to a file, not stdout".into())),
        Some(p) => outs.add("--html", p, Kind::File).map(Some),
        None => Ok(None),
    }
}

/// The input's layers with the bytes each one wasted, as `inspect` counts them.
pub fn layers(l: &Loaded) -> Vec<Layer> {
    l.layer_stats
        .iter()
        .zip(&l.apply_stats)
        .map(|(s, ap)| Layer {
            name: s.digest.as_ref().unwrap_or(&s.diff_id).to_string(),
            compressed: s.compressed,
            uncompressed: s.uncompressed,
            files: s.files,
            whiteouts: s.whiteouts,
            wasted: ap.wasted_bytes,
        })
        .collect()
}

/// The merged tree as undecided entries, for `inspect` (hardlinked bytes counted once).
pub fn entries(l: &Loaded) -> Vec<Entry> {
    let mut seen = HashSet::new();
    l.tree
        .walk()
        .into_iter()
        .map(|(raw, id)| {
            let inode = match l.tree.node(id) {
                crate::fs::Node::Leaf(ino) => Some(*ino),
                _ => None,
            };
            let size = if inode.is_some_and(|i| seen.insert(i)) { l.tree.size(id) } else { 0 };
            let path = format!("/{}", String::from_utf8_lossy(&raw));
            Entry { path, raw, kind: l.tree.kind(id).name(), size, keep: true, why: "".into(), rule: None, category: None, via: None, inode }
        })
        .collect()
}

pub fn write(outs: &Outputs, slot: Slot, r: &html::Report) -> Result<(), Error> {
    let p = outs.path(slot);
    std::fs::write(&p, html::render(r)).at(&p)?;
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).at(&p)
}
