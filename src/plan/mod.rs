//! Keep/drop decisions. Every path of the merged tree gets a decision: kept with the reason
//! that needs it (a root, the ELF closure, a profile, --keep), or dropped by a named rule.
mod decide;
pub mod distroless;
mod keepset;
pub mod needs;
pub mod roots;
mod treefs;

pub use needs::{Need, Needs};
pub use roots::Root;
pub use treefs::TreeFs;

use crate::error::{Error, Result};
use crate::fs::{split_path, ContentStore, Tree};
use crate::image::config::{runtime, string_list};
use crate::profile;
use decide::Decider;
use globset::{GlobSet, GlobSetBuilder};
use keepset::KeepSet;
use needs::Context;
use serde_json::Value;
use std::collections::BTreeSet;
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

/// Roots → needs from each source → the ELF closure of every source's ELF roots → the keep
/// set → a decision per path → bytes per rule. A new source of needs (runtime traces) is one
/// more `Needs` pushed onto `sources`.
pub fn build(tree: &Tree, store: &ContentStore, config: &Value, opts: &PlanOptions) -> Result<Plan> {
    let cx = Context::new(TreeFs { tree, store }, config);
    let mut warnings: BTreeSet<String> = BTreeSet::new();

    let found = needs::find_roots(&cx, &mut warnings);
    let (set, profiled) = needs::evaluate_profiles(&cx, &found, &opts.profiles, &opts.profile_files)?;
    warnings.extend(profiled.warnings.iter().cloned());
    let sources = vec![needs::command_needs(&found), needs::profile_needs(&profiled)];

    let elf = keepset::elf_closure(&cx, &sources, &mut warnings);
    let walk = tree.walk();
    let paths: Vec<String> = walk.iter().map(|(p, _)| format!("/{}", String::from_utf8_lossy(p))).collect();
    let ks = KeepSet::build(&cx, &paths, &opts.keep, &sources, &elf)?;

    let rules = profile::drop_rules(&set, &profiled.applied);
    let exclusions: Vec<String> = profiled.drop_exclusions.iter().map(|k| k.path.clone()).collect();
    let entries = Decider::new(&cx, tree, &walk, &paths, &ks, opts, &rules, &exclusions)?.decide_all();
    let rules_out = decide::rule_stats(&rules, &entries);

    if !elf.closure.kept.is_empty() || !found.roots.is_empty() {
        warnings.insert(
            "libraries loaded with dlopen() (plugins, NSS beyond nsswitch.conf, gconv, engines) are invisible to static analysis: profiles cover the common ones; add others with --keep".into(),
        );
    }
    Ok(Plan {
        level: opts.level,
        roots: found.roots.iter().map(|r| (r.path.clone(), r.label.clone())).collect(),
        profiles: profiled.applied.iter().map(|a| (a.name.clone(), a.why.clone())).collect(),
        entries,
        rules: rules_out,
        warnings: warnings.into_iter().collect(),
        starts_as_root: profiled.applied.iter().filter(|a| set.starts_as_root(&a.name)).map(|a| a.name.clone()).collect(),
    })
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
