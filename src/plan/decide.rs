//! Decisions: every path of the tree kept with a reason or dropped by a named rule, then the
//! bytes each rule removed.
use super::keepset::KeepSet;
use super::needs::Context;
use super::{globset, Entry, Level, PlanOptions, RuleStat, ETC_REASON, NOT_NEEDED};
use crate::elf::{self, RootFs};
use crate::error::Result;
use crate::fs::{Kind, Node, NodeId, Tree};
use crate::profile::DropRule;
use globset::GlobSet;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Drop-rule categories the clean level applies; the rest (package managers, data, tests,
/// runtime tools, unused deps) are the minimal level's.
const CLEAN_CATEGORIES: &[&str] = &["caches", "docs", "dev"];


pub(super) fn parent_of(p: &str) -> String {
    match p.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => p[..i].to_string(),
    }
}


/// Everything one decision looks at.
pub struct Decider<'a> {
    pub cx: &'a Context<'a>,
    pub tree: &'a Tree,
    pub walk: &'a [(Vec<u8>, NodeId)],
    pub paths: &'a [String],
    pub ks: &'a KeepSet,
    pub opts: &'a PlanOptions,
    pub rules: Vec<&'a DropRule>,
    /// Paths no drop rule may remove at the clean level.
    pub exclusions: &'a [String],
    user_drop: GlobSet,
    /// Kept inodes and their first kept path.
    inode_kept: HashMap<usize, String>,
    /// One shared copy of each reason, rule and category text.
    texts: RefCell<HashSet<Arc<str>>>,
}

impl<'a> Decider<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(cx: &'a Context<'a>, tree: &'a Tree, walk: &'a [(Vec<u8>, NodeId)], paths: &'a [String], ks: &'a KeepSet, opts: &'a PlanOptions, rules: &'a [DropRule], exclusions: &'a [String]) -> Result<Decider<'a>> {
        let mut inode_kept: HashMap<usize, String> = HashMap::new();
        for (i, (_, id)) in walk.iter().enumerate() {
            if let Node::Leaf(ino) = tree.node(*id) {
                if ks.keep.contains_key(&paths[i]) {
                    inode_kept.entry(*ino).or_insert_with(|| paths[i].clone());
                }
            }
        }
        let rules = rules.iter().filter(|r| opts.distroless || !r.distroless_only).collect();
        let user_drop = globset(&opts.drop, "--drop")?;
        Ok(Decider { cx, tree, walk, paths, ks, opts, rules, exclusions, user_drop, inode_kept, texts: RefCell::default() })
    }

    fn intern(&self, s: &str) -> Arc<str> {
        let mut texts = self.texts.borrow_mut();
        if let Some(t) = texts.get(s) {
            return t.clone();
        }
        let t: Arc<str> = s.into();
        texts.insert(t.clone());
        t
    }

    fn keep(&self, e: &mut Entry, why: &str) {
        e.keep = true;
        e.why = self.intern(why);
    }

    fn drop_by(&self, e: &mut Entry, rule: &str, category: &str, why: &str) {
        e.rule = Some(self.intern(rule));
        e.category = Some(self.intern(category));
        e.why = self.intern(why);
    }

    fn rule_for(&self, p: &str) -> Option<&'a DropRule> {
        self.rules.iter().find(|r| r.matches(p)).copied()
    }

    /// The clean level promises a working image: only caches, docs and build leftovers go.
    fn clean_rule_for(&self, p: &str) -> Option<&'a DropRule> {
        self.rules.iter().find(|r| CLEAN_CATEGORIES.contains(&r.category.as_str()) && r.matches(p)).copied()
    }

    /// Other names of a kept file cost no bytes: hardlinks of its inode (busybox's applets)
    /// and symlinks that resolve to it. Keeping them keeps the image's commands working.
    fn alias_of_kept(&self, i: usize, id: NodeId) -> Option<(String, Option<String>)> {
        let (tree, fs, keep) = (self.tree, &self.cx.fs, &self.ks.keep);
        let Node::Leaf(ino) = tree.node(id) else { return None };
        if let Some(k) = self.inode_kept.get(ino) {
            return Some((format!("hardlink of kept {k} (no extra bytes)"), Some(k.clone())));
        }
        if tree.kind(id) == Kind::Symlink {
            let r = fs.resolve(&self.paths[i])?;
            let chain_kept = r.symlinks.iter().all(|s| *s == self.paths[i] || keep.contains_key(s));
            let target_kept = keep.contains_key(&r.path)
                || fs.node_at(&r.path).and_then(|t| match tree.node(t) {
                    Node::Leaf(ino) => self.inode_kept.get(ino),
                    Node::Dir { .. } => None,
                }).is_some();
            if r.node == elf::Node::File && chain_kept && target_kept {
                return Some((format!("symlink to kept {} (no extra bytes)", r.path), Some(r.path)));
            }
        }
        None
    }

    /// Children come after parents in `walk`, so decide in reverse and let a kept child keep
    /// its parent directory.
    pub fn decide_all(&self) -> Vec<Entry> {
        let mut kept_child: HashSet<String> = HashSet::new();
        let mut entries: Vec<Entry> = Vec::with_capacity(self.walk.len());
        for i in (0..self.walk.len()).rev() {
            let e = self.decide(i, &kept_child);
            if e.keep {
                kept_child.insert(parent_of(&self.paths[i]));
            }
            entries.push(e);
        }
        entries.reverse();
        self.count_bytes(&mut entries);
        entries
    }

    /// One entry's decision; its path and raw name are filled in by the caller, which owns them.
    fn decide(&self, i: usize, kept_child: &HashSet<String>) -> Entry {
        let (_, id) = &self.walk[i];
        let p = &self.paths[i];
        let kind = self.tree.kind(*id);
        let inode = match self.tree.node(*id) {
            Node::Leaf(ino) => Some(*ino),
            Node::Dir { .. } => None,
        };
        let mut e = Entry { path: String::new(), raw: Vec::new(), kind: kind.name(), size: 0, keep: false, why: "".into(), rule: None, category: None, via: None, inode };
        let child_kept = kind == Kind::Dir && kept_child.contains(p);
        let user_kept = self.ks.keep.get(p).is_some_and(|r| r.starts_with("--keep"));
        if let (Some(j), false, false) = (self.user_drop.matches(p).first(), user_kept, child_kept) {
            // One rule per glob, so the summary has one row per --drop.
            let rule = format!("--drop {}", self.opts.drop[*j]);
            self.drop_by(&mut e, &rule, "user", &rule);
            return e;
        }
        let explicit = self.ks.keep.get(p).map(|r| (r.clone(), self.ks.via.get(p).cloned())).or_else(|| self.ks.under_subtree(p)).or_else(|| {
            if self.opts.level != Level::Clean { self.alias_of_kept(i, *id) } else { None }
        });
        if let Some((r, via)) = explicit {
            self.keep(&mut e, &r);
            e.via = via.filter(|v| v != p);
        } else if child_kept {
            self.keep(&mut e, "parent directory of kept paths");
        } else if kind == Kind::Dir && self.tree.children(*id).is_some_and(|c| c.is_empty()) && self.rule_for(p).is_none() {
            self.keep(&mut e, "empty directory in the original (a mount point or runtime location; no bytes)");
        } else {
            self.by_level(&mut e, p);
        }
        e
    }

    /// A path no source needs: the level's rules decide.
    fn by_level(&self, e: &mut Entry, p: &str) {
        let by_rule = |e: &mut Entry, r: &DropRule| self.drop_by(e, &r.name, &r.category, &r.description);
        match (self.opts.level, self.rule_for(p)) {
            (Level::Minimal | Level::Traced, Some(r)) => by_rule(e, r),
            (Level::Minimal | Level::Traced, None) if p.starts_with("/etc/") => self.keep(e, ETC_REASON),
            (Level::Minimal | Level::Traced, None) => {
                self.drop_by(e, NOT_NEEDED, "minimal", "not reached from the entrypoint, its ELF closure, a profile or --keep")
            }
            (Level::Clean, _) => match self.clean_rule_for(p) {
                Some(r) if !self.exclusions.iter().any(|x| p == x || p.starts_with(&format!("{x}/"))) => by_rule(e, r),
                _ => self.keep(e, "clean level: no caches/docs/dev drop rule names it"),
            },
        }
    }

    /// Bytes of an inode count once: on its first kept path, else on its first path.
    fn count_bytes(&self, entries: &mut [Entry]) {
        let mut owner: HashMap<usize, usize> = HashMap::new();
        for (i, (_, id)) in self.walk.iter().enumerate() {
            if let Node::Leaf(ino) = self.tree.node(*id) {
                match owner.get(ino) {
                    Some(&j) if entries[j].keep || !entries[i].keep => {}
                    _ => {
                        owner.insert(*ino, i);
                    }
                }
            }
        }
        for (ino, i) in owner {
            entries[i].size = self.tree.inode(ino).size();
        }
    }
}

/// Bytes per rule, largest first; every applicable rule is listed, even when it removed nothing.
pub fn rule_stats(rules: &[DropRule], entries: &[Entry]) -> Vec<RuleStat> {
    let mut stats: BTreeMap<String, RuleStat> = BTreeMap::new();
    for r in rules {
        stats.insert(r.name.clone(), RuleStat { name: r.name.clone(), category: r.category.clone(), description: r.description.clone(), ..Default::default() });
    }
    for e in entries.iter().filter(|e| !e.keep) {
        let name = e.rule.as_deref().unwrap_or_default().to_string();
        let s = stats.entry(name.clone()).or_insert_with(|| RuleStat {
            name: name.clone(),
            category: e.category.as_deref().unwrap_or_default().to_string(),
            description: e.why.to_string(),
            ..Default::default()
        });
        s.files += 1;
        s.bytes += e.size;
    }
    let mut out: Vec<RuleStat> = stats.into_values().collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    out
}
