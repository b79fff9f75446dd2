//! The keep set: every path some source needs, with the first reason given for it.
use super::needs::{Context, Need, Needs};
use super::globset;
use crate::elf::{self, ClosureOptions, RootFs};
use crate::error::Result;
use crate::image::config::runtime;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The ELF closure of every source's ELF roots, and the label of each root.
pub struct ElfNeeds {
    pub closure: elf::Closure,
    root_label: HashMap<String, String>,
}

pub fn elf_closure(cx: &Context, sources: &[Needs], warnings: &mut BTreeSet<String>) -> ElfNeeds {
    let mut elf_roots: Vec<String> = Vec::new();
    let mut root_label: HashMap<String, String> = HashMap::new();
    for n in sources.iter().flat_map(|s| &s.elf_roots) {
        if !root_label.contains_key(&n.path) {
            root_label.insert(n.path.clone(), n.reason.clone());
            elf_roots.push(n.path.clone());
        }
    }
    let copts = ClosureOptions { ld_library_path: cx.env("LD_LIBRARY_PATH"), ld_preload: cx.env("LD_PRELOAD"), cwd: cx.workdir.clone().unwrap_or_else(|| "/".into()) };
    let closure = elf::closure(&cx.fs, &elf_roots, &copts);
    // A library kept under the same name elsewhere (libjvm.so, loaded first by the launcher)
    // is found by soname at run time, as the loader reuses already-loaded objects.
    let kept_names: HashSet<&str> = closure.kept.keys().filter_map(|k| k.rsplit('/').next()).collect();
    for u in closure.unresolved.iter().filter(|u| !kept_names.contains(u.name.as_str())) {
        warnings.insert(format!("{} needs {} but it {} (root: {})", u.requester, u.name, u.why, u.root));
    }
    warnings.extend(closure.warnings.iter().cloned());
    ElfNeeds { closure, root_label }
}

/// Path -> reason; directories in `subtrees` keep their whole subtree.
#[derive(Default)]
pub struct KeepSet {
    pub keep: BTreeMap<String, String>,
    pub subtrees: BTreeMap<String, String>,
    /// Path -> the kept path that needs it (a library's requester, a symlink's target):
    /// the edges `--explain` follows down to a root.
    pub via: BTreeMap<String, String>,
}

impl KeepSet {
    /// Merge, in this order (first reason wins): `--keep`, what sources run, the ELF closure,
    /// what sources read, directories sources use, declared Volumes.
    pub fn build(cx: &Context, paths: &[String], user_keep: &[String], sources: &[Needs], elf: &ElfNeeds) -> Result<KeepSet> {
        let mut ks = KeepSet::default();
        ks.user_keep(cx, paths, user_keep)?;
        for n in sources.iter().flat_map(|s| &s.runs) {
            ks.add(cx, n);
        }
        ks.closure(elf);
        for n in sources.iter().flat_map(|s| &s.reads) {
            ks.add(cx, n);
        }
        for n in sources.iter().flat_map(|s| &s.dirs) {
            ks.add_dir(cx, n);
        }
        ks.volumes(cx);
        Ok(ks)
    }

    /// `--keep` globs; a directory matched keeps its subtree.
    fn user_keep(&mut self, cx: &Context, paths: &[String], globs: &[String]) -> Result<()> {
        let set = globset(globs, "--keep")?;
        for p in paths {
            if let Some(i) = set.matches(p).first() {
                let reason = format!("--keep {}", globs[*i]);
                if cx.fs.lstat(p) == Some(elf::Node::Dir) {
                    self.subtrees.entry(p.clone()).or_insert_with(|| reason.clone());
                }
                self.keep.entry(p.clone()).or_insert(reason);
            }
        }
        Ok(())
    }

    /// Each symlink is named with the path it finally leads to (not the need's own name,
    /// which may be the symlink itself), and points there for `--explain`.
    fn symlinks_on_the_way(&mut self, symlinks: &[String], target: &str, n: &Need) {
        for s in symlinks.iter().filter(|s| *s != target) {
            if !self.keep.contains_key(s) {
                self.keep.insert(s.clone(), format!("symlink on the way to {target} ({})", n.reason));
                self.via.insert(s.clone(), target.to_string());
            }
        }
    }

    fn add(&mut self, cx: &Context, n: &Need) {
        let Some(r) = cx.fs.resolve(&n.path) else { return };
        self.symlinks_on_the_way(&r.symlinks, &r.path, n);
        // A directory named directly keeps its subtree; a symlink that points at a directory
        // (`/lib -> usr/lib`) keeps only itself and the directory entry.
        let names_a_symlink = r.symlinks.last().is_some_and(|s| cx.fs.location(&n.path).is_some_and(|(loc, _)| loc == *s));
        if r.node == elf::Node::Dir && !names_a_symlink {
            self.subtrees.entry(r.path.clone()).or_insert_with(|| n.reason.clone());
        }
        self.keep.entry(r.path).or_insert_with(|| n.reason.clone());
    }

    /// Directories kept as directories only (/tmp, /root, the User's home).
    fn add_dir(&mut self, cx: &Context, n: &Need) {
        if let Some(r) = cx.fs.resolve(&n.path) {
            self.symlinks_on_the_way(&r.symlinks, &r.path, n);
            self.keep.entry(r.path).or_insert_with(|| n.reason.clone());
        }
    }

    fn closure(&mut self, elf: &ElfNeeds) {
        for (p, k) in &elf.closure.kept {
            let label = elf.root_label.get(&k.root).cloned().unwrap_or_else(|| k.root.clone());
            let reason = if k.reason == elf::Reason::Root { format!("root: {label}") } else { format!("{} (root: {label})", k.reason) };
            if !self.keep.contains_key(p) {
                self.keep.insert(p.clone(), reason);
                if let Some(by) = k.reason.requester().filter(|by| *by != p) {
                    self.via.insert(p.clone(), by.to_string());
                }
            }
        }
    }

    // WorkingDir is the base profile's to keep: it knows to leave node_modules to the node
    // profile's production closure.
    fn volumes(&mut self, cx: &Context) {
        if let Some(vols) = runtime(cx.config, "Volumes").and_then(Value::as_object) {
            for v in vols.keys() {
                if let Some(r) = cx.fs.resolve(v) {
                    self.keep.entry(r.path).or_insert_with(|| "declared Volume (kept as a directory)".into());
                }
            }
        }
    }

    /// The reason for a path, or for the nearest kept subtree above it, with that subtree
    /// (when it is not the path itself) as the path that needs it.
    pub fn under_subtree(&self, p: &str) -> Option<(String, Option<String>)> {
        let mut cur = p;
        loop {
            if let Some(r) = self.subtrees.get(cur) {
                return Some((r.clone(), (cur != p).then(|| cur.to_string())));
            }
            match cur.rfind('/') {
                Some(0) | None => return None,
                Some(i) => cur = &cur[..i],
            }
        }
    }
}
