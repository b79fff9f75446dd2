//! Layer-efficiency numbers for `inspect --ci`: ours (a surviving copy is not waste) and dive's
//! (`dive/filetree/efficiency.go`, which counts the surviving copy too), side by side.
use crate::fs::Data;
use crate::layer::{ApplyStats, ChangeKind, Changeset};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Efficiency {
    /// Σ content bytes over all layers (every copy of every file).
    pub total_bytes: u64,
    /// Bytes of copies deleted or replaced by a later entry: invisible in the final image.
    pub wasted_bytes: u64,
    /// 1 - wasted / total (1 for an empty image).
    pub efficiency: f64,
    /// Wasted bytes caused by layers after the first / content bytes of those layers.
    pub user_wasted_percent: f64,
}

/// Ours, from the squash step's per-layer accounting.
pub fn ours(changesets: &[Changeset], apply: &[ApplyStats]) -> Efficiency {
    let total: u64 = changesets.iter().map(|c| c.content_bytes).sum();
    let wasted: u64 = apply.iter().map(|a| a.wasted_bytes).sum();
    let user_total: u64 = changesets.iter().skip(1).map(|c| c.content_bytes).sum();
    let user_wasted: u64 = apply.iter().skip(1).map(|a| a.wasted_bytes).sum();
    Efficiency {
        total_bytes: total,
        wasted_bytes: wasted,
        efficiency: 1.0 - ratio_or(0.0, wasted, total),
        user_wasted_percent: ratio_or(0.0, user_wasted, user_total),
    }
}

fn ratio_or(default: f64, num: u64, den: u64) -> f64 {
    if den == 0 { default } else { num as f64 / den as f64 }
}

/// Dive's numbers, reproduced from its algorithm: per path, `CumulativeSize` over every layer
/// that has it and the smallest size seen; a whiteout counts 0 for a file and the stacked size
/// of everything under it for a directory; opaque markers are ignored, as dive does.
pub fn dive(changesets: &[Changeset]) -> Efficiency {
    // path -> (cumulative, min, times seen)
    let mut eff: BTreeMap<Vec<u8>, (u64, u64, u32)> = BTreeMap::new();
    // The stacked tree of the layers below the current one: path -> size.
    let mut stack: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut note = |path: &[u8], size: u64| {
        let e = eff.entry(path.to_vec()).or_insert((0, u64::MAX, 0));
        e.0 += size;
        e.1 = e.1.min(size);
        e.2 += 1;
    };
    let mut layer_sizes = vec![];
    for cs in changesets {
        for wh in &cs.whiteouts {
            let under = subtree(&stack, wh);
            let size = if under.len() > 1 { under.iter().map(|(_, s)| *s).sum() } else { 0 };
            note(wh, size);
            for (p, _) in under {
                stack.remove(&p);
            }
        }
        let mut layer_size = 0;
        for ch in &cs.additions {
            let size = match &ch.kind {
                ChangeKind::Leaf(_, Data::File { content }) => content.len,
                _ => 0,
            };
            layer_size += size;
            note(&ch.path, size);
            stack.insert(ch.path.clone(), size);
        }
        layer_sizes.push(layer_size);
    }
    let (mut min_sum, mut cum_sum, mut wasted) = (0u64, 0u64, 0u64);
    for (cum, min, seen) in eff.values() {
        min_sum += min;
        cum_sum += cum;
        if *seen > 1 {
            wasted += cum;
        }
    }
    let user: u64 = layer_sizes.iter().skip(1).sum();
    Efficiency {
        total_bytes: cum_sum,
        wasted_bytes: wasted,
        efficiency: if cum_sum == 0 { 1.0 } else { min_sum as f64 / cum_sum as f64 },
        user_wasted_percent: if user == 0 { f64::NAN } else { wasted as f64 / user as f64 },
    }
}

/// `path` and every stacked entry below it.
fn subtree(stack: &BTreeMap<Vec<u8>, u64>, path: &[u8]) -> Vec<(Vec<u8>, u64)> {
    let mut prefix = path.to_vec();
    prefix.push(b'/');
    stack
        .range(path.to_vec()..)
        .take_while(|(p, _)| p.as_slice() == path || p.starts_with(&prefix) || p.as_slice() < prefix.as_slice())
        .filter(|(p, _)| p.as_slice() == path || p.starts_with(&prefix))
        .map(|(p, s)| (p.clone(), *s))
        .collect()
}

/// A file copy that a later layer deletes or replaces: in the image's bytes, invisible in
/// its filesystem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WastedFile {
    pub path: String,
    /// The layer (0-based) holding the hidden copy, and the one that hides it.
    pub layer: usize,
    pub hidden_by: usize,
    pub bytes: u64,
}

/// Regular files of each layer that a later layer's entry, whiteout or opaque marker hides,
/// largest first. (A copy still reachable through a hardlink of another path is listed too.)
pub fn wasted_files(changesets: &[Changeset]) -> Vec<WastedFile> {
    use std::collections::HashSet;
    fn set<'a>(v: impl Iterator<Item = &'a [u8]>) -> HashSet<&'a [u8]> {
        v.map(|p| p.strip_suffix(b"/").unwrap_or(p)).collect()
    }
    type Sets<'a> = (HashSet<&'a [u8]>, HashSet<&'a [u8]>, HashSet<&'a [u8]>);
    let sets: Vec<Sets> = changesets
        .iter()
        .map(|cs| (set(cs.additions.iter().map(|a| a.path.as_slice())), set(cs.whiteouts.iter().map(Vec::as_slice)), set(cs.opaque_dirs.iter().map(Vec::as_slice))))
        .collect();
    let hides = |j: usize, p: &[u8]| {
        let (adds, whs, opaque) = &sets[j];
        if adds.contains(p) || whs.contains(p) {
            return true;
        }
        // Any parent directory whited out, or made opaque, hides p.
        p.iter().enumerate().filter(|(_, c)| **c == b'/').any(|(k, _)| whs.contains(&p[..k]) || opaque.contains(&p[..k]))
    };
    let mut out = Vec::new();
    for (i, cs) in changesets.iter().enumerate() {
        for a in &cs.additions {
            let ChangeKind::Leaf(_, Data::File { content }) = &a.kind else { continue };
            if content.len == 0 {
                continue;
            }
            if let Some(j) = (i + 1..changesets.len()).find(|&j| hides(j, &a.path)) {
                out.push(WastedFile { path: format!("/{}", String::from_utf8_lossy(&a.path)), layer: i, hidden_by: j, bytes: content.len });
            }
        }
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    out
}
