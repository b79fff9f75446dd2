//! `imgslim diff A B`: what differs between two images' merged trees and configs.
//! The listing is built from the squashed tree (what a container sees), not from layers, so
//! two images with different layering but the same files compare equal.
use super::human;
use crate::digest::HashingReader;
use crate::fs::{ContentStore, Data, Node, Tree};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};

/// What `diff` compares for one path. mtime is left out on purpose: rewriting tools clamp it,
/// and a diff full of timestamp noise hides the files that really changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub sha256: Option<String>,
    pub target: Option<String>,
    pub device: Option<(u32, u32)>,
    /// This path is the first of its hardlink group, so its bytes count towards directory sizes.
    counted: bool,
}

pub type Listing = BTreeMap<String, Entry>;

/// Every path of the tree with its metadata; file contents are hashed once per inode, in parallel.
pub fn listing(tree: &Tree, store: &ContentStore) -> crate::error::Result<Listing> {
    let walk = tree.walk();
    let mut inodes: Vec<usize> = walk.iter().filter_map(|(_, id)| leaf_inode(tree, *id)).collect();
    inodes.sort_unstable();
    inodes.dedup();
    let hashes: BTreeMap<usize, String> = inodes
        .par_iter()
        .filter_map(|&ino| match &tree.inode(ino).data {
            Data::File { content } => Some((ino, content)),
            _ => None,
        })
        .map(|(ino, content)| {
            let mut r = HashingReader::new(store.reader(content)?);
            r.drain()?;
            Ok((ino, r.into_parts().0.hex().to_string()))
        })
        .collect::<std::io::Result<_>>()
        .map_err(|e| crate::error::Error::Other(format!("reading file contents from the work area: {e}")))?;
    let mut seen = HashSet::new();
    let mut out = Listing::new();
    for (path, id) in walk {
        let meta = tree.meta(id);
        let ino = leaf_inode(tree, id);
        let data = ino.map(|i| &tree.inode(i).data);
        out.insert(
            format!("/{}", String::from_utf8_lossy(&path)),
            Entry {
                kind: tree.kind(id).name(),
                mode: meta.mode & 0o7777,
                uid: meta.uid,
                gid: meta.gid,
                size: tree.size(id),
                sha256: ino.and_then(|i| hashes.get(&i).cloned()),
                target: match data {
                    Some(Data::Symlink { target }) => Some(String::from_utf8_lossy(target).into_owned()),
                    _ => None,
                },
                device: match data {
                    Some(Data::CharDev { major, minor } | Data::BlockDev { major, minor }) => Some((*major, *minor)),
                    _ => None,
                },
                counted: ino.is_none_or(|i| seen.insert(i)),
            },
        );
    }
    Ok(out)
}

impl Entry {
    /// Whether this path's bytes count (the first name of a hardlink group).
    pub fn counted(&self) -> bool {
        self.counted
    }
}

fn leaf_inode(tree: &Tree, id: usize) -> Option<usize> {
    match tree.node(id) {
        Node::Leaf(i) => Some(*i),
        Node::Dir { .. } => None,
    }
}

/// The names of the attributes that differ, in a fixed order.
fn changes(a: &Entry, b: &Entry) -> Vec<&'static str> {
    let mut c = vec![];
    let checks: [(&'static str, bool); 6] = [
        ("kind", a.kind != b.kind),
        ("content", a.sha256 != b.sha256 || a.size != b.size),
        ("mode", a.mode != b.mode),
        ("owner", (a.uid, a.gid) != (b.uid, b.gid)),
        ("target", a.target != b.target),
        ("device", a.device != b.device),
    ];
    for (name, differs) in checks {
        if differs {
            c.push(name);
        }
    }
    c
}

pub struct Changed<'a> {
    pub path: &'a str,
    pub what: Vec<&'static str>,
    pub a: &'a Entry,
    pub b: &'a Entry,
}

/// Paths with their entries, in path order.
pub type Paths<'a> = Vec<(&'a str, &'a Entry)>;

pub struct Diff<'a> {
    pub added: Paths<'a>,
    pub removed: Paths<'a>,
    pub changed: Vec<Changed<'a>>,
    /// Paths equal in both, in path order.
    pub same: Paths<'a>,
    /// Runtime config keys (and os/architecture/variant) whose values differ: (key, a, b).
    pub config: Vec<(String, Value, Value)>,
    /// Directories up to three levels deep whose bytes differ: (path, a bytes, b bytes).
    pub dirs: Vec<(String, u64, u64)>,
    pub bytes: (u64, u64),
}

pub fn compare<'a>(a: &'a Listing, b: &'a Listing, a_cfg: &Value, b_cfg: &Value) -> Diff<'a> {
    let mut d = Diff { added: vec![], removed: vec![], changed: vec![], same: vec![], config: vec![], dirs: vec![], bytes: (0, 0) };
    for (p, ea) in a {
        match b.get(p) {
            None => d.removed.push((p, ea)),
            Some(eb) => {
                let what = changes(ea, eb);
                if what.is_empty() {
                    d.same.push((p, ea));
                } else {
                    d.changed.push(Changed { path: p, what, a: ea, b: eb });
                }
            }
        }
    }
    d.added = b.iter().filter(|(p, _)| !a.contains_key(*p)).map(|(p, e)| (p.as_str(), e)).collect();
    d.config = config_changes(a_cfg, b_cfg);
    let (da, db) = (dir_bytes(a), dir_bytes(b));
    d.bytes = (da.get("/").copied().unwrap_or(0), db.get("/").copied().unwrap_or(0));
    for dir in da.keys().chain(db.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (x, y) = (da.get(dir).copied().unwrap_or(0), db.get(dir).copied().unwrap_or(0));
        if x != y {
            d.dirs.push((dir.clone(), x, y));
        }
    }
    d
}

/// Bytes under "/" and under every directory up to three levels deep; a hardlinked file counts once.
fn dir_bytes(l: &Listing) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (p, e) in l.iter().filter(|(_, e)| e.counted && e.size > 0) {
        *m.entry("/".to_string()).or_insert(0) += e.size;
        let mut end = 0;
        for _ in 0..3 {
            match p[end + 1..].find('/') {
                Some(i) => {
                    end += 1 + i;
                    *m.entry(p[..end].to_string()).or_insert(0) += e.size;
                }
                None => break,
            }
        }
    }
    m
}

fn config_changes(a: &Value, b: &Value) -> Vec<(String, Value, Value)> {
    let mut out = vec![];
    for key in ["os", "architecture", "variant"] {
        let (x, y) = (a.get(key).cloned().unwrap_or(Value::Null), b.get(key).cloned().unwrap_or(Value::Null));
        if x != y {
            out.push((key.to_string(), x, y));
        }
    }
    let empty = serde_json::Map::new();
    let ra = a.get("config").and_then(Value::as_object).unwrap_or(&empty);
    let rb = b.get("config").and_then(Value::as_object).unwrap_or(&empty);
    let keys: std::collections::BTreeSet<&String> = ra.keys().chain(rb.keys()).collect();
    for key in keys {
        let (x, y) = (ra.get(key).cloned().unwrap_or(Value::Null), rb.get(key).cloned().unwrap_or(Value::Null));
        if x != y {
            out.push((key.clone(), x, y));
        }
    }
    out
}

fn entry_json(path: &str, e: &Entry) -> Value {
    json!({
        "path": path, "kind": e.kind, "mode": format!("{:04o}", e.mode), "uid": e.uid, "gid": e.gid,
        "size": e.size, "sha256": e.sha256, "target": e.target,
        "device": e.device.map(|(ma, mi)| format!("{ma}:{mi}")),
    })
}

/// The `--json` document (schema 1, documented in the README).
pub fn to_json(d: &Diff, a_name: &str, b_name: &str) -> Value {
    json!({
        "schema": 1,
        "a": {"image": a_name, "bytes": d.bytes.0},
        "b": {"image": b_name, "bytes": d.bytes.1},
        "counts": {"added": d.added.len(), "removed": d.removed.len(), "changed": d.changed.len(), "unchanged": d.same.len()},
        "added": d.added.iter().map(|(p, e)| entry_json(p, e)).collect::<Vec<_>>(),
        "removed": d.removed.iter().map(|(p, e)| entry_json(p, e)).collect::<Vec<_>>(),
        "changed": d.changed.iter().map(|c| json!({"path": c.path, "changes": c.what, "a": entry_json(c.path, c.a), "b": entry_json(c.path, c.b)})).collect::<Vec<_>>(),
        "config": d.config.iter().map(|(k, x, y)| json!({"key": k, "a": x, "b": y})).collect::<Vec<_>>(),
        "directories": d.dirs.iter().map(|(p, x, y)| json!({"path": p, "a_bytes": x, "b_bytes": y})).collect::<Vec<_>>(),
    })
}

pub(crate) fn signed(delta: i128) -> String {
    let s = human(delta.unsigned_abs() as u64);
    if delta < 0 { format!("-{s}") } else { format!("+{s}") }
}

pub(crate) fn percent(a: u64, b: u64) -> String {
    if a == 0 {
        return "-".into();
    }
    format!("{:+.1}%", (b as f64 - a as f64) * 100.0 / a as f64)
}

/// The changed attributes, `a -> b`; `detail` adds the content hashes (the page's hover).
pub(crate) fn describe_change(c: &Changed, detail: bool) -> String {
    let parts: Vec<String> = c
        .what
        .iter()
        .map(|w| match *w {
            "kind" => format!("kind {} -> {}", c.a.kind, c.b.kind),
            "content" if detail => format!("content sha256 {} -> {}, size {} -> {}", short(&c.a.sha256), short(&c.b.sha256), human(c.a.size), human(c.b.size)),
            "content" => format!("content ({} -> {})", human(c.a.size), human(c.b.size)),
            "mode" => format!("mode {:04o} -> {:04o}", c.a.mode, c.b.mode),
            "owner" => format!("owner {}:{} -> {}:{}", c.a.uid, c.a.gid, c.b.uid, c.b.gid),
            "target" => format!("target {} -> {}", c.a.target.as_deref().unwrap_or("-"), c.b.target.as_deref().unwrap_or("-")),
            other => other.to_string(),
        })
        .collect();
    parts.join(", ")
}

/// The first 12 hex digits of a content hash, as the page shows it.
fn short(h: &Option<String>) -> String {
    h.as_deref().map_or_else(|| "-".into(), |h| h.chars().take(12).collect())
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 { format!("{n} {one}") } else { format!("{n} {one}s") }
}

/// The text report: summary, config, sizes by directory, then every added/removed/changed path.
pub fn to_text(d: &Diff, a_name: &str, b_name: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "--- {a_name}\n+++ {b_name}");
    let _ = writeln!(
        s,
        "Paths: {} added, {} removed, {} changed, {} unchanged",
        d.added.len(), d.removed.len(), d.changed.len(), d.same.len()
    );
    let _ = writeln!(s, "Content: {} -> {} ({})", human(d.bytes.0), human(d.bytes.1), percent(d.bytes.0, d.bytes.1));
    if !d.config.is_empty() {
        let _ = writeln!(s, "\nConfig:");
        for (k, x, y) in &d.config {
            let _ = writeln!(s, "  {k}: {x} -> {y}");
        }
    }
    if !d.dirs.is_empty() {
        let mut dirs: Vec<_> = d.dirs.iter().filter(|(p, _, _)| p != "/").collect();
        dirs.sort_by_key(|(p, x, y)| (std::cmp::Reverse((*y as i128 - *x as i128).abs()), p.clone()));
        let _ = writeln!(s, "\nSize by directory (largest change first{}):", if dirs.len() > 15 { ", top 15" } else { "" });
        for (p, x, y) in dirs.iter().take(15) {
            let _ = writeln!(s, "  {:>10}  {p}  ({} -> {})", signed(*y as i128 - *x as i128), human(*x), human(*y));
        }
    }
    let sections: [(&str, char, &Paths); 2] = [("Removed", '-', &d.removed), ("Added", '+', &d.added)];
    for (title, sign, list) in sections {
        if !list.is_empty() {
            let _ = writeln!(s, "\n{title} ({}):", plural(list.len(), "path"));
            for (p, e) in list.iter() {
                let _ = writeln!(s, "{sign} {p}{}", if e.kind == "file" { format!("  {}", human(e.size)) } else { format!("  ({})", e.kind) });
            }
        }
    }
    if !d.changed.is_empty() {
        let _ = writeln!(s, "\nChanged ({}):", plural(d.changed.len(), "path"));
        for c in &d.changed {
            let _ = writeln!(s, "~ {}  {}", c.path, describe_change(c, false));
        }
    }
    s
}
