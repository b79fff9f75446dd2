//! Keep/drop decisions. Every path of the merged tree gets a decision: kept with the reason
//! that needs it (a root, the ELF closure, a profile, --keep), or dropped by a named rule.
pub mod distroless;
pub mod roots;
mod treefs;

pub use roots::Root;
pub use treefs::TreeFs;

use crate::elf::{self, ClosureOptions, RootFs};
use crate::error::{Error, Result};
use crate::fs::{split_path, ContentStore, Kind, Node, Tree};
use crate::image::config::{runtime, string_list};
use crate::profile::{self, ImageView, ProfileSet};
use globset::{GlobSet, GlobSetBuilder};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Keep only what the app needs (roots, ELF closure, profiles, --keep).
    Minimal,
    /// Keep everything except what the drop rules name.
    Clean,
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub level: Level,
    /// `--profile NAME` values (forced builtins).
    pub profiles: Vec<String>,
    /// `--profile FILE` values.
    pub profile_files: Vec<PathBuf>,
    pub keep: Vec<String>,
    pub drop: Vec<String>,
    pub distroless: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub path: String,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub kind: &'static str,
    /// Content bytes, counted once per inode (0 for the second path of a hardlink).
    pub size: u64,
    pub keep: bool,
    /// Why it is kept, or the rule's description when dropped.
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RuleStat {
    pub name: String,
    pub category: String,
    pub description: String,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub level: Level,
    pub roots: Vec<(String, String)>,
    pub profiles: Vec<(String, String)>,
    pub entries: Vec<Entry>,
    pub rules: Vec<RuleStat>,
    pub warnings: Vec<String>,
    /// Applied profiles whose runtime starts as root and drops privileges itself.
    #[serde(skip)]
    pub starts_as_root: Vec<String>,
}

pub const NOT_NEEDED: &str = "not-needed";
const ETC_REASON: &str =
    "configuration under /etc: apps read it at run time and static analysis cannot tell which files (small; drop with --drop)";

fn globset(globs: &[String], what: &str) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let g = if g.starts_with('/') { g.clone() } else { format!("/{g}") };
        let glob = globset::GlobBuilder::new(&g)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Usage(format!("{what} '{g}': {e}")))?;
        b.add(glob);
    }
    b.build().map_err(|e| Error::Usage(format!("{what}: {e}")))
}

/// Env as (key, value) pairs.
pub fn env_pairs(config: &Value) -> Vec<(String, String)> {
    string_list(runtime(config, "Env"))
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e, String::new()),
        })
        .collect()
}

fn command_of(config: &Value) -> (Vec<String>, &'static str) {
    let ep = string_list(runtime(config, "Entrypoint"));
    let cmd = string_list(runtime(config, "Cmd"));
    if ep.is_empty() {
        (cmd, "Cmd")
    } else {
        let mut v = ep;
        v.extend(cmd);
        (v, "Entrypoint")
    }
}

pub fn build(tree: &Tree, store: &ContentStore, config: &Value, opts: &PlanOptions) -> Result<Plan> {
    let fs = TreeFs { tree, store };
    let env = env_pairs(config);
    let get_env = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone());
    let workdir = runtime(config, "WorkingDir").and_then(Value::as_str).filter(|w| !w.is_empty()).map(str::to_string);
    let user = runtime(config, "User").and_then(Value::as_str).map(str::to_string);
    let mut warnings: BTreeSet<String> = BTreeSet::new();

    // 1. Roots: what the image runs.
    let path_var = get_env("PATH");
    let mut resolver = roots::Resolver::new(&fs, path_var.as_deref(), workdir.as_deref());
    let mut found = roots::Found::default();
    let (argv, label) = command_of(config);
    if argv.is_empty() {
        warnings.insert("the image has no Entrypoint or Cmd: only profiles, WorkingDir and --keep decide what stays".into());
    } else {
        resolver.argv(&argv, label, &mut found);
    }
    if let Some(test) = runtime(config, "Healthcheck").and_then(|h| h.get("Test")) {
        let t = string_list(Some(test));
        match t.first().map(String::as_str) {
            Some("CMD") => resolver.argv(&t[1..], "Healthcheck", &mut found),
            Some("CMD-SHELL") => {
                let mut v = vec!["/bin/sh".to_string(), "-c".to_string()];
                v.extend(t[1..].iter().cloned());
                resolver.argv(&v, "Healthcheck", &mut found);
            }
            _ => {}
        }
    }
    warnings.extend(found.uncertain.iter().cloned());
    // A command used in several places is one root; its first label explains it.
    let mut seen_roots = HashSet::new();
    found.roots.retain(|r| seen_roots.insert(r.path.clone()));

    // 2. Profiles, which see the canonical roots.
    let mut set = ProfileSet::builtin().map_err(|e| Error::Other(format!("builtin profiles: {e}")))?;
    let mut forced = opts.profiles.clone();
    for f in &opts.profile_files {
        let name = set.add_file(f).map_err(|e| Error::Usage(format!("--profile {}: {e}", f.display())))?;
        forced.push(name);
    }
    let canon_roots: Vec<String> = found.roots.iter().filter_map(|r| fs.resolve(&r.path).map(|x| x.path)).collect::<BTreeSet<_>>().into_iter().collect();
    let view = ImageView { fs: &fs, env: &env, roots: &canon_roots, workdir: workdir.as_deref(), user: user.as_deref() };
    let needs = profile::evaluate(&set, &forced, &view).map_err(|e| Error::Usage(format!("profiles: {e}")))?;
    warnings.extend(needs.warnings.iter().cloned());

    // 3. The ELF closure of the roots and of what profiles say is loaded at run time.
    let mut elf_roots: Vec<String> = found.roots.iter().map(|r| r.path.clone()).collect();
    let mut root_label: HashMap<String, String> = found.roots.iter().rev().map(|r| (r.path.clone(), r.label.clone())).collect();
    for k in &needs.elf_roots {
        elf_roots.push(k.path.clone());
        root_label.entry(k.path.clone()).or_insert_with(|| k.reason.clone());
    }
    let mut seen = HashSet::new();
    elf_roots.retain(|r| seen.insert(r.clone()));
    let copts = ClosureOptions { ld_library_path: get_env("LD_LIBRARY_PATH"), ld_preload: get_env("LD_PRELOAD"), cwd: workdir.clone().unwrap_or_else(|| "/".into()) };
    let closure = elf::closure(&fs, &elf_roots, &copts);
    // A library kept under the same name elsewhere (libjvm.so, loaded first by the launcher)
    // is found by soname at run time, as the loader reuses already-loaded objects.
    let kept_names: HashSet<&str> = closure.kept.keys().filter_map(|k| k.rsplit('/').next()).collect();
    for u in closure.unresolved.iter().filter(|u| !kept_names.contains(u.name.as_str())) {
        warnings.insert(format!("{} needs {} but it {} (root: {})", u.requester, u.name, u.why, u.root));
    }
    warnings.extend(closure.warnings.iter().cloned());

    // 4. The keep set: path -> reason, first reason wins; directories listed here keep their
    // whole subtree.
    let mut keep: BTreeMap<String, String> = BTreeMap::new();
    let mut subtrees: BTreeMap<String, String> = BTreeMap::new();
    let user_keep = globset(&opts.keep, "--keep")?;
    let user_drop = globset(&opts.drop, "--drop")?;
    let walk = tree.walk();
    let paths: Vec<String> = walk.iter().map(|(p, _)| format!("/{}", String::from_utf8_lossy(p))).collect();
    for p in &paths {
        let m = user_keep.matches(p);
        if let Some(i) = m.first() {
            keep.entry(p.clone()).or_insert_with(|| format!("--keep {}", opts.keep[*i]));
        }
    }
    let add = |keep: &mut BTreeMap<String, String>, subtrees: &mut BTreeMap<String, String>, path: &str, reason: String| {
        let Some(r) = fs.resolve(path) else { return };
        for s in &r.symlinks {
            keep.entry(s.clone()).or_insert_with(|| format!("symlink on the way to {path} ({reason})"));
        }
        // A directory named directly keeps its subtree; a symlink that points at a directory
        // (`/lib -> usr/lib`) keeps only itself and the directory entry.
        let names_a_symlink = r.symlinks.last().is_some_and(|s| fs.location(path).is_some_and(|(loc, _)| loc == *s));
        if r.node == elf::Node::Dir && !names_a_symlink {
            subtrees.entry(r.path.clone()).or_insert_with(|| reason.clone());
        }
        keep.entry(r.path).or_insert(reason);
    };
    for r in &found.roots {
        add(&mut keep, &mut subtrees, &r.path, format!("root: {}", r.label));
    }
    for f in &found.files {
        add(&mut keep, &mut subtrees, &f.path, f.label.clone());
    }
    for (p, k) in &closure.kept {
        let label = root_label.get(&k.root).cloned().unwrap_or_else(|| k.root.clone());
        let reason = if k.reason == elf::Reason::Root { format!("root: {label}") } else { format!("{} (root: {label})", k.reason) };
        keep.entry(p.clone()).or_insert(reason);
    }
    for k in &needs.keep {
        add(&mut keep, &mut subtrees, &k.path, k.reason.clone());
    }
    // Directories kept as directories only (/tmp, /root, the User's home): their contents
    // are decided like any other path.
    for k in &needs.keep_dirs {
        if let Some(r) = fs.resolve(&k.path) {
            for s in &r.symlinks {
                keep.entry(s.clone()).or_insert_with(|| format!("symlink on the way to {} ({})", k.path, k.reason));
            }
            keep.entry(r.path).or_insert_with(|| k.reason.clone());
        }
    }
    // WorkingDir is the base profile's to keep: it knows to leave node_modules to the node
    // profile's production closure.
    if let Some(vols) = runtime(config, "Volumes").and_then(Value::as_object) {
        for v in vols.keys() {
            if let Some(r) = fs.resolve(v) {
                keep.entry(r.path).or_insert_with(|| "declared Volume (kept as a directory)".into());
            }
        }
    }
    let exclusions: Vec<String> = needs.drop_exclusions.iter().map(|k| k.path.clone()).collect();

    // 5. Decide every path. Children come after parents in `walk`, so decide in reverse and let
    // a kept child keep its parent directory.
    let rules = profile::drop_rules(&set, &needs.applied);
    let applicable: Vec<&profile::DropRule> = rules.iter().filter(|r| opts.distroless || !r.distroless_only).collect();
    let under = |map: &BTreeMap<String, String>, p: &str| -> Option<String> {
        let mut cur = p;
        loop {
            if let Some(r) = map.get(cur) {
                return Some(r.clone());
            }
            match cur.rfind('/') {
                Some(0) | None => return None,
                Some(i) => cur = &cur[..i],
            }
        }
    };
    let mut kept_child: HashSet<String> = HashSet::new();
    // Other names of a kept file cost no bytes: hardlinks of its inode (busybox's applets) and
    // symlinks that resolve to it. Keeping them keeps the image's commands working.
    let mut inode_kept: HashMap<usize, String> = HashMap::new();
    for (i, (_, id)) in walk.iter().enumerate() {
        if let Node::Leaf(ino) = tree.node(*id) {
            if keep.contains_key(&paths[i]) {
                inode_kept.entry(*ino).or_insert_with(|| paths[i].clone());
            }
        }
    }
    let alias_of_kept = |i: usize, id: usize| -> Option<String> {
        let Node::Leaf(ino) = tree.node(id) else { return None };
        if let Some(k) = inode_kept.get(ino) {
            return Some(format!("hardlink of kept {k} (no extra bytes)"));
        }
        if tree.kind(id) == Kind::Symlink {
            let r = fs.resolve(&paths[i])?;
            let chain_kept = r.symlinks.iter().all(|s| *s == paths[i] || keep.contains_key(s));
            let target_kept = keep.contains_key(&r.path)
                || fs.node_at(&r.path).and_then(|t| match tree.node(t) {
                    Node::Leaf(ino) => inode_kept.get(ino),
                    Node::Dir { .. } => None,
                }).is_some();
            if r.node == elf::Node::File && chain_kept && target_kept {
                return Some(format!("symlink to kept {} (no extra bytes)", r.path));
            }
        }
        None
    };
    let mut entries: Vec<Entry> = Vec::with_capacity(walk.len());
    for (i, (raw, id)) in walk.iter().enumerate().rev() {
        let p = &paths[i];
        let kind = tree.kind(*id);
        let parent = parent_of(p);
        let rule_for = |p: &str| applicable.iter().find(|r| r.matches(p)).copied();
        let mut e = Entry { path: p.clone(), raw: raw.clone(), kind: kind.name(), size: 0, keep: false, why: String::new(), rule: None, category: None };
        let user_dropped = user_drop.matches(p).first().map(|j| opts.drop[*j].clone());
        let explicit = keep.get(p).cloned().or_else(|| under(&subtrees, p)).or_else(|| {
            if opts.level == Level::Minimal { alias_of_kept(i, *id) } else { None }
        });
        let child_kept = kind == Kind::Dir && kept_child.contains(p);
        if let (Some(g), false) = (&user_dropped, keep.get(p).is_some_and(|r| r.starts_with("--keep"))) {
            if !child_kept {
                e.rule = Some("user-drop".into());
                e.category = Some("user".into());
                e.why = format!("--drop {g}");
            }
        }
        if e.rule.is_none() {
            if let Some(r) = explicit {
                e.keep = true;
                e.why = r;
            } else if child_kept {
                e.keep = true;
                e.why = "parent directory of kept paths".into();
            } else if kind == Kind::Dir && tree.children(*id).is_some_and(|c| c.is_empty()) && rule_for(p).is_none() {
                e.keep = true;
                e.why = "empty directory in the original (a mount point or runtime location; no bytes)".into();
            } else {
                match opts.level {
                    Level::Minimal => match rule_for(p) {
                        Some(r) => drop_by(&mut e, r),
                        None if p.starts_with("/etc/") => {
                            e.keep = true;
                            e.why = ETC_REASON.into();
                        }
                        None => {
                            e.rule = Some(NOT_NEEDED.into());
                            e.category = Some("minimal".into());
                            e.why = "not reached from the entrypoint, its ELF closure, a profile or --keep".into();
                        }
                    },
                    Level::Clean => match rule_for(p) {
                        Some(r) if !exclusions.iter().any(|x| p == x || p.starts_with(&format!("{x}/"))) => drop_by(&mut e, r),
                        _ => {
                            e.keep = true;
                            e.why = "clean level: no drop rule names it".into();
                        }
                    },
                }
            }
        }
        if e.keep {
            kept_child.insert(parent);
        }
        entries.push(e);
    }
    entries.reverse();
    // Bytes of an inode count once: on its first kept path, else on its first path.
    let mut owner: HashMap<usize, usize> = HashMap::new();
    for (i, (_, id)) in walk.iter().enumerate() {
        if let Node::Leaf(ino) = tree.node(*id) {
            match owner.get(ino) {
                Some(&j) if entries[j].keep || !entries[i].keep => {}
                _ => {
                    owner.insert(*ino, i);
                }
            }
        }
    }
    for (ino, i) in owner {
        entries[i].size = tree.inode(ino).size();
    }

    // 6. Bytes per rule.
    let mut stats: BTreeMap<String, RuleStat> = BTreeMap::new();
    for r in &rules {
        stats.insert(r.name.clone(), RuleStat { name: r.name.clone(), category: r.category.clone(), description: r.description.clone(), ..Default::default() });
    }
    for e in entries.iter().filter(|e| !e.keep) {
        let name = e.rule.clone().unwrap_or_default();
        let s = stats.entry(name.clone()).or_insert_with(|| RuleStat {
            name: name.clone(),
            category: e.category.clone().unwrap_or_default(),
            description: e.why.clone(),
            ..Default::default()
        });
        s.files += 1;
        s.bytes += e.size;
    }
    let mut rules_out: Vec<RuleStat> = stats.into_values().collect();
    rules_out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));

    if !closure.kept.is_empty() || !found.roots.is_empty() {
        warnings.insert(
            "libraries loaded with dlopen() (plugins, NSS beyond nsswitch.conf, gconv, engines) are invisible to static analysis: profiles cover the common ones; add others with --keep".into(),
        );
    }
    Ok(Plan {
        level: opts.level,
        roots: found.roots.iter().map(|r| (r.path.clone(), r.label.clone())).collect(),
        profiles: needs.applied.iter().map(|a| (a.name.clone(), a.why.clone())).collect(),
        entries,
        rules: rules_out,
        warnings: warnings.into_iter().collect(),
        starts_as_root: needs.applied.iter().filter(|a| set.starts_as_root(&a.name)).map(|a| a.name.clone()).collect(),
    })
}

fn parent_of(p: &str) -> String {
    match p.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => p[..i].to_string(),
    }
}

fn drop_by(e: &mut Entry, r: &profile::DropRule) {
    e.rule = Some(r.name.clone());
    e.category = Some(r.category.clone());
    e.why = r.description.clone();
}

impl Plan {
    /// Remove every dropped path from the tree.
    pub fn apply(&self, tree: &mut Tree) {
        let mut released = Vec::new();
        for e in self.entries.iter().rev().filter(|e| !e.keep) {
            tree.remove(&split_path(&e.raw), &mut released);
        }
    }

    pub fn find(&self, path: &str) -> Option<&Entry> {
        let p = format!("/{}", path.trim_matches('/'));
        self.entries.iter().find(|e| e.path == p)
    }

    /// `--explain PATH`: the decision and its chain.
    pub fn explain(&self, path: &str) -> String {
        match self.find(path) {
            None => format!("{path}: not in the image"),
            Some(e) if e.keep => format!("{}: kept: {}", e.path, e.why),
            Some(e) => format!(
                "{}: dropped by rule '{}' ({}): {}",
                e.path,
                e.rule.as_deref().unwrap_or("?"),
                e.category.as_deref().unwrap_or("?"),
                e.why
            ),
        }
    }

    pub fn bytes(&self, keep: bool) -> u64 {
        self.entries.iter().filter(|e| e.keep == keep).map(|e| e.size).sum()
    }
}
