//! Risks: what the plan could not be sure of and that may break the slimmed image. Each names
//! where it comes from and what fixes it; `--strict` refuses to write an image with any.
use super::Entry;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Risk {
    /// unresolved-command, dynamic-import, dlopen, config-include, broken-root, dropped-tree.
    pub kind: &'static str,
    /// File and line (or the config field) it comes from.
    pub at: String,
    pub what: String,
    pub fix: String,
}

impl Risk {
    pub fn new(kind: &'static str, at: impl Into<String>, what: impl Into<String>, fix: impl Into<String>) -> Risk {
        Risk { kind, at: at.into(), what: what.into(), fix: fix.into() }
    }
}

impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}: {} (fix: {})", self.kind, self.at, self.what, self.fix)
    }
}

/// 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// Roots whose file the plan drops (a `--drop` of the interpreter, say): the image would not start.
/// `chain` gives the paths a root goes through (its symlinks, then the file).
pub fn dropped_roots(roots: &[(String, String)], chain: impl Fn(&str) -> Vec<String>, entries: &[Entry]) -> Vec<Risk> {
    let by_path: HashMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let find = |p: &str| by_path.get(p).copied();
    let mut out = Vec::new();
    for (p, label) in roots {
        if let Some((c, e)) = chain(p).into_iter().find_map(|c| find(&c).filter(|e| !e.keep).map(|e| (c, e))) {
            out.push(Risk::new("broken-root", label.clone(), format!("{p} is a root but is dropped ({})", e.why), format!("remove the --drop that matches it, or --keep '{c}'")));
        }
    }
    out
}

/// Application trees outside the distribution (`/opt/X`, `/srv/X`, `/app/X`) that held files
/// and lose all of them, unless WorkingDir is in them.
pub fn dropped_trees(entries: &[Entry], workdir: Option<&str>) -> Vec<Risk> {
    // tree -> (files, files kept, bytes dropped)
    let mut trees: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.kind != "dir") {
        let mut parts = e.path.splitn(4, '/');
        let (_, top, name) = (parts.next(), parts.next(), parts.next());
        let (Some(top), Some(name)) = (top, name) else { continue };
        if !["opt", "srv", "app"].contains(&top) || parts.next().is_none() {
            continue;
        }
        let t = trees.entry(format!("/{top}/{name}")).or_default();
        t.0 += 1;
        t.1 += u64::from(e.keep);
        t.2 += if e.keep { 0 } else { e.size };
    }
    let inside = |t: &str| workdir.is_some_and(|w| w == t || w.starts_with(&format!("{t}/")) || t.starts_with(&format!("{}/", w.trim_end_matches('/'))));
    trees
        .into_iter()
        .filter(|(t, (files, kept, _))| *files > 0 && *kept == 0 && !inside(t))
        .map(|(t, (files, _, bytes))| {
            Risk::new("dropped-tree", t.clone(), format!("the whole non-distribution tree is dropped ({files} files, {bytes} bytes): nothing the plan saw uses it"), format!("--keep '{t}' if the app uses it, or --trace"))
        })
        .collect()
}
