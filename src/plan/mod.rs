//! Keep/drop decisions. Every path of the merged tree gets a decision: kept with the reason
//! that needs it (a root, the ELF closure, a profile, --keep), or dropped by a named rule.
mod decide;
pub mod distroless;
mod keepset;
pub mod needs;
pub mod risk;
pub mod roots;
pub mod shell;
pub mod traced;
mod treefs;

pub use needs::{Need, Needs};
pub use risk::Risk;
pub use roots::Root;
pub use treefs::TreeFs;

use crate::elf::RootFs;
use crate::error::{Error, Result};
use crate::fs::{split_path, ContentStore, Tree};
use crate::image::config::{runtime, string_list};
use crate::profile;
use decide::Decider;
use globset::{GlobSet, GlobSetBuilder};
use keepset::KeepSet;
use needs::Context;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Keep only what the app needs (roots, ELF closure, profiles, --keep).
    Minimal,
    /// Keep everything except what the drop rules name.
    Clean,
    /// Like minimal, but runtime module trees (Python stdlib/packages, node_modules, jars) keep
    /// only what a trace touched (needs --trace or --from-trace).
    Traced,
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
    /// Needs from runtime traces (`slim --trace/--from-trace`), already resolved in the image.
    pub traced: Option<Needs>,
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
    /// Why it is kept, or the rule's description when dropped. Reasons, rules and categories
    /// repeat across thousands of entries, so they are shared (`Decider::intern`), not copied.
    #[serde(serialize_with = "shared")]
    pub why: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "shared_opt")]
    pub rule: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "shared_opt")]
    pub category: Option<Arc<str>>,
    /// The kept path that needs this one (its requester, a symlink's target, the kept
    /// directory above it): `--explain` follows these down to a root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The inode (hardlinked names share one).
    #[serde(skip)]
    pub inode: Option<usize>,
}

// serde's `rc` feature would serialise Arc<str>, but at the cost of rebuilding every crate on serde.
fn shared<S: serde::Serializer>(s: &Arc<str>, ser: S) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

fn shared_opt<S: serde::Serializer>(s: &Option<Arc<str>>, ser: S) -> std::result::Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_some(&**s),
        None => ser.serialize_none(),
    }
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
    /// Boilerplate true of every image of its kind (said once, not a warning).
    pub notes: Vec<String>,
    /// What may break the slimmed image, each with where and the fix (`--strict` refuses them).
    pub risks: Vec<Risk>,
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

/// Roots → needs from each source → the ELF closure of every source's ELF roots → the keep
/// set → a decision per path → bytes per rule. A new source of needs (runtime traces) is one
/// more `Needs` pushed onto `sources`.
pub fn build(tree: &Tree, store: &ContentStore, config: &Value, opts: &PlanOptions) -> Result<Plan> {
    let cx = Context::new(TreeFs { tree, store }, config);
    let mut warnings: BTreeSet<String> = BTreeSet::new();

    let found = needs::find_roots(&cx, &mut warnings);
    let (set, profiled) = needs::evaluate_profiles(&cx, &found, &opts.profiles, &opts.profile_files)?;
    warnings.extend(profiled.warnings.iter().cloned());
    let walk = tree.walk();
    let paths: Vec<String> = walk.iter().map(|(p, _)| format!("/{}", String::from_utf8_lossy(p))).collect();
    let user = needs::user_needs(&cx, &paths, &opts.keep, &mut warnings)?;
    needs::check_drops(&paths, &opts.drop, &mut warnings)?;
    let mut profile_needs = needs::profile_needs(&profiled);
    if opts.level == Level::Traced {
        traced::require_trace(&opts.traced)?;
        profile_needs = traced::narrow(profile_needs)?;
    }
    let mut sources = vec![user, needs::command_needs(&found), profile_needs];
    match (&opts.traced, opts.level) {
        (Some(t), Level::Traced) => sources.push(traced::narrow_listings(t)?),
        (t, _) => sources.extend(t.clone()),
    }

    let elf = keepset::elf_closure(&cx, &sources, &mut warnings);
    let ks = KeepSet::build(&cx, &paths, &opts.keep, &sources, &elf)?;

    let rules = profile::drop_rules(&set, &profiled.applied);
    let exclusions: Vec<String> = profiled.drop_exclusions.iter().map(|k| k.path.clone()).collect();
    let mut entries = Decider::new(&cx, tree, &walk, &paths, &ks, opts, &rules, &exclusions)?.decide_all();
    // The walk's paths move into the entries: one copy of each path, not three.
    for ((e, (raw, _)), path) in entries.iter_mut().zip(walk).zip(paths) {
        e.raw = raw;
        e.path = path;
    }
    let rules_out = decide::rule_stats(&rules, &entries);

    let mut notes = Vec::new();
    if !elf.closure.kept.is_empty() || !found.roots.is_empty() {
        notes.push(DLOPEN_NOTE.to_string());
    }
    let warnings = true_of_plan(warnings, &entries);
    let (nss, warnings): (Vec<String>, Vec<String>) = warnings.into_iter().partition(|w| w.starts_with(NSS_ABSENT) && w.ends_with("(as before slimming)"));
    if !nss.is_empty() {
        let names: Vec<&str> = nss.iter().filter_map(|w| w[NSS_ABSENT.len()..].split('\'').next()).collect();
        notes.push(format!("glibc: /etc/nsswitch.conf names NSS services the image never had ({}): glibc skips them, as before slimming", names.join(", ")));
    }
    let roots: Vec<(String, String)> = found.roots.iter().map(|r| (r.path.clone(), r.label.clone())).collect();
    let mut risks: Vec<Risk> = found.risks.iter().cloned().chain(profiled.risks.iter().cloned()).collect();
    risks.extend(risk::dropped_roots(&roots, |p| cx.fs.resolve(p).map(|r| r.symlinks.into_iter().chain([r.path]).collect()).unwrap_or_default(), &entries));
    risks.extend(risk::dropped_trees(&entries, cx.workdir.as_deref()));
    risks.sort();
    risks.dedup();
    Ok(Plan {
        level: opts.level,
        roots,
        profiles: profiled.applied.iter().map(|a| (a.name.clone(), a.why.clone())).collect(),
        entries,
        rules: rules_out,
        warnings,
        notes,
        risks,
        starts_as_root: profiled.applied.iter().filter(|a| set.starts_as_root(&a.name)).map(|a| a.name.clone()).collect(),
    })
}

const NSS_ABSENT: &str = "glibc: /etc/nsswitch.conf names NSS service '";
const DLOPEN_NOTE: &str = "libraries loaded with dlopen() (plugins, NSS beyond nsswitch.conf, gconv, engines) are invisible to static analysis: profiles cover the common ones; add others with --keep";

/// Warnings that say something is missing are checked against the decisions: a warning must
/// be true of the image being written.
fn true_of_plan(warnings: BTreeSet<String>, entries: &[Entry]) -> Vec<String> {
    let kept = |f: &dyn Fn(&str) -> bool| entries.iter().any(|e| e.keep && e.kind == "file" && f(&e.path));
    warnings
        .into_iter()
        .filter(|w| {
            if w.starts_with("jvm: no application jar found") {
                return !kept(&|p| p.ends_with(".jar") || p.ends_with(".war"));
            }
            if w.starts_with("glibc: gconv modules") {
                return !kept(&|p| p.contains("/gconv/") && p.ends_with(".so"));
            }
            true
        })
        .collect()
}

/// Change one entry's decision, moving its bytes between rule statistics.
fn set_decision(rules: &mut Vec<RuleStat>, e: &mut Entry, keep: bool, rule: &RuleStat, why: &str) {
    if let Some(old) = e.rule.as_ref().and_then(|n| rules.iter_mut().find(|r| r.name == **n)) {
        old.files = old.files.saturating_sub(1);
        old.bytes = old.bytes.saturating_sub(e.size);
    }
    e.keep = keep;
    e.why = why.into();
    if keep {
        e.rule = None;
        e.category = None;
        return;
    }
    e.rule = Some(rule.name.as_str().into());
    e.category = Some(rule.category.as_str().into());
    let i = match rules.iter().position(|r| r.name == rule.name) {
        Some(i) => i,
        None => {
            rules.push(RuleStat { files: 0, bytes: 0, ..rule.clone() });
            rules.len() - 1
        }
    };
    rules[i].files += 1;
    rules[i].bytes += e.size;
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

    /// `--explain PATH`: the decision and, for a kept path, the chain of paths that need it
    /// down to a root (as `cargo tree -i` prints it).
    pub fn explain(&self, path: &str) -> String {
        let Some(e) = self.find(path) else { return format!("{path}: not in the image") };
        if !e.keep {
            let rule = e.rule.as_deref().unwrap_or("?");
            let cat = e.category.as_deref().unwrap_or("?");
            return format!("{}: dropped by rule '{rule}' ({cat}): {}", e.path, e.why);
        }
        let mut s = format!("{}: kept: {}", e.path, e.why);
        let mut seen: HashSet<&str> = HashSet::from([e.path.as_str()]);
        let mut next = e.via.as_deref();
        let mut depth = 0;
        while let Some(v) = next {
            let pad = "    ".repeat(depth);
            if !seen.insert(v) {
                s.push_str(&format!("\n{pad}└── {v} (already above: the chain loops)"));
                break;
            }
            match self.find(v) {
                Some(n) => {
                    s.push_str(&format!("\n{pad}└── {}: {}", n.path, n.why));
                    next = n.via.as_deref();
                }
                None => {
                    s.push_str(&format!("\n{pad}└── {v}"));
                    next = None;
                }
            }
            depth += 1;
        }
        s
    }

    /// A later stage (the package database) overrules decisions: each path in `changes` is
    /// kept (with its parent directories, which must exist for it) or dropped by `rule`.
    /// Rule statistics follow, so the summary stays true.
    pub fn overrule(&mut self, changes: &BTreeMap<String, bool>, rule: &RuleStat, why: &str) {
        let mut parents: HashSet<String> = HashSet::new();
        for e in self.entries.iter_mut() {
            let Some(&keep) = changes.get(&e.path) else { continue };
            if keep {
                let mut p = decide::parent_of(&e.path);
                while p != "/" && parents.insert(p.clone()) {
                    p = decide::parent_of(&p);
                }
            }
            if e.keep != keep {
                set_decision(&mut self.rules, e, keep, rule, why);
            }
        }
        for e in self.entries.iter_mut().filter(|e| !e.keep && parents.contains(&e.path)) {
            set_decision(&mut self.rules, e, true, rule, "parent directory of kept paths");
        }
    }

    pub fn bytes(&self, keep: bool) -> u64 {
        self.entries.iter().filter(|e| e.keep == keep).map(|e| e.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, keep: bool) -> Entry {
        Entry { path: path.into(), raw: Vec::new(), kind: "file", size: 1, keep, why: "".into(), rule: None, category: None, via: None, inode: None }
    }

    /// Warnings that say something is missing are dropped when the plan keeps it (a jar kept as
    /// an argument of Cmd, gconv modules kept under `--level clean`).
    #[test]
    fn warnings_are_true_of_the_plan() {
        let jar = "jvm: no application jar found (no jar root, no CLASSPATH, WorkingDir is a system dir): pass the jar with --keep".to_string();
        let gconv = "glibc: gconv modules (/usr/lib/x86_64-linux-gnu/gconv) not kept: iconv() fails".to_string();
        let other = "base: something else".to_string();
        let all: BTreeSet<String> = [jar.clone(), gconv.clone(), other.clone()].into();
        let kept = [entry("/app/app.jar", true), entry("/usr/lib/x86_64-linux-gnu/gconv/IBM1047.so", true)];
        assert_eq!(true_of_plan(all.clone(), &kept), std::slice::from_ref(&other));
        let dropped = [entry("/app/app.jar", false), entry("/usr/lib/x86_64-linux-gnu/gconv/IBM1047.so", false)];
        assert_eq!(true_of_plan(all, &dropped), [other, gconv, jar]);
    }
}
