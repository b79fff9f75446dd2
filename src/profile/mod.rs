//! The `profile` stage: what a runtime needs that the ELF closure cannot see (NSS modules, CA
//! certificates, time zones, locales, interpreters' stdlib and packages, JVM home, nginx
//! config), and the named drop rules (caches, docs, dev files, package managers).
//!
//! Profiles are TOML files (`profiles/*.toml`, embedded in the binary; schema in
//! `profiles/README.md`) plus a few built-in Rust *providers* for what cannot be declarative
//! (parsing nsswitch.conf, package.json, nginx.conf, scanning Python imports).
//!
//! ```no_run
//! use imgslim::profile::{evaluate, drop_rules, ImageView, ProfileSet};
//! let fs = imgslim::elf::HostDir::new("/path/to/rootfs");
//! let set = ProfileSet::builtin().unwrap();
//! let env = vec![("LANG".to_string(), "C.UTF-8".to_string())];
//! let roots = vec!["/usr/bin/python3.11".to_string()];
//! let view = ImageView { fs: &fs, env: &env, roots: &roots, workdir: Some("/app"), user: None };
//! let needs = evaluate(&set, &[], &view).unwrap();
//! for k in &needs.keep { println!("{}: {}", k.path, k.reason); }
//! let rules = drop_rules(&set, &needs.applied);
//! assert!(rules.iter().any(|r| r.name == "man"));
//! ```
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use globset::GlobSet;

use crate::elf::{self, RootFs};

pub mod expand;
pub mod providers;
pub mod schema;

use schema::ProfileFile;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{origin}: invalid TOML: {msg}")]
    Parse { origin: String, msg: String },
    #[error("{origin}: {msg}")]
    Invalid { origin: String, msg: String },
    #[error("unknown profile {name:?} (neither a file nor a builtin; builtins: {known})")]
    Unknown { name: String, known: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("profile {name:?} is defined twice ({first} and {second})")]
    Duplicate { name: String, first: String, second: String },
}

/// The builtin profiles, embedded at compile time.
const BUILTIN: &[(&str, &str)] = &[
    ("apache.toml", include_str!("../../profiles/apache.toml")),
    ("base.toml", include_str!("../../profiles/base.toml")),
    ("ca-certificates.toml", include_str!("../../profiles/ca-certificates.toml")),
    ("glibc.toml", include_str!("../../profiles/glibc.toml")),
    ("glibc-gconv.toml", include_str!("../../profiles/glibc-gconv.toml")),
    ("jvm.toml", include_str!("../../profiles/jvm.toml")),
    ("mariadb.toml", include_str!("../../profiles/mariadb.toml")),
    ("musl.toml", include_str!("../../profiles/musl.toml")),
    ("nginx.toml", include_str!("../../profiles/nginx.toml")),
    ("openssl.toml", include_str!("../../profiles/openssl.toml")),
    ("perl.toml", include_str!("../../profiles/perl.toml")),
    ("php.toml", include_str!("../../profiles/php.toml")),
    ("node.toml", include_str!("../../profiles/node.toml")),
    ("postgresql.toml", include_str!("../../profiles/postgresql.toml")),
    ("python.toml", include_str!("../../profiles/python.toml")),
    ("redis.toml", include_str!("../../profiles/redis.toml")),
    ("ruby.toml", include_str!("../../profiles/ruby.toml")),
    ("tomcat.toml", include_str!("../../profiles/tomcat.toml")),
    ("tzdata.toml", include_str!("../../profiles/tzdata.toml")),
    ("tzdata-all.toml", include_str!("../../profiles/tzdata-all.toml")),
];

#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub file: ProfileFile,
    pub origin: String,
    /// Added with `--profile FILE`: applied without detection.
    pub user: bool,
}

#[derive(Debug, Clone)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Loaded>,
}

impl ProfileSet {
    /// Every profiles/*.toml embedded in the binary (include_str!), parsed and validated.
    pub fn builtin() -> Result<ProfileSet, ProfileError> {
        let mut set = ProfileSet { profiles: BTreeMap::new() };
        for (file, text) in BUILTIN {
            let origin = format!("builtin profiles/{file}");
            let p = ProfileFile::parse(text, &origin)?;
            set.insert(Loaded { file: p, origin, user: false })?;
        }
        set.check_rule_names()?;
        Ok(set)
    }

    fn insert(&mut self, l: Loaded) -> Result<(), ProfileError> {
        if let Some(prev) = self.profiles.get(&l.file.name) {
            return Err(ProfileError::Duplicate { name: l.file.name.clone(), first: prev.origin.clone(), second: l.origin });
        }
        self.profiles.insert(l.file.name.clone(), l);
        Ok(())
    }

    /// Drop rule names are unique across profiles (reports name them).
    fn check_rule_names(&self) -> Result<(), ProfileError> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, l) in &self.profiles {
            for d in &l.file.drop {
                if let Some(prev) = seen.insert(&d.name, name) {
                    return Err(ProfileError::Invalid {
                        origin: l.origin.clone(),
                        msg: format!("drop rule {:?} is also defined by profile {prev:?}", d.name),
                    });
                }
            }
        }
        Ok(())
    }

    /// `--profile FILE`: a user profile file, applied to the image without detection;
    /// `--profile NAME`: the name of a builtin, returned as is (pass it in `forced`).
    /// A path that exists is always read as a file; otherwise it must be a builtin name.
    pub fn add_file(&mut self, path: &Path) -> Result<String, ProfileError> {
        if !path.exists() {
            let s = path.to_string_lossy();
            if self.profiles.contains_key(s.as_ref()) {
                return Ok(s.into_owned());
            }
            return Err(ProfileError::Unknown { name: s.into_owned(), known: self.names().join(", ") });
        }
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Io { path: origin.clone(), source: e })?;
        let p = ProfileFile::parse(&text, &origin)?;
        let name = p.name.clone();
        self.insert(Loaded { file: p, origin, user: true })?;
        if let Err(e) = self.check_rule_names() {
            self.profiles.remove(&name);
            return Err(e);
        }
        Ok(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.profiles.keys().cloned().collect()
    }

    /// Whether the profile's runtime starts as root and drops privileges itself.
    pub fn starts_as_root(&self, name: &str) -> bool {
        self.profiles.get(name).is_some_and(|l| l.file.starts_as_root)
    }

    /// Description of a profile (for `--help`/reports).
    pub fn description(&self, name: &str) -> Option<&str> {
        self.profiles.get(name).map(|l| l.file.description.as_str())
    }
}

pub struct ImageView<'a> {
    pub fs: &'a dyn RootFs,
    /// Config Env, split at the first '='.
    pub env: &'a [(String, String)],
    /// Canonical paths of the resolved root executables (entrypoint/cmd/healthcheck, scripts'
    /// interpreters). Non-ELF roots (scripts, jars) are read by the python/node/jvm providers.
    pub roots: &'a [String],
    pub workdir: Option<&'a str>,
    pub user: Option<&'a str>,
}

impl ImageView<'_> {
    /// Last value of an Env key (the runtime takes the last one).
    pub fn env_get(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Applied {
    pub name: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Keep {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// Base first, then by name.
    pub applied: Vec<Applied>,
    /// Canonical paths (files, symlinks, or directories meaning their whole subtree), sorted.
    pub keep: Vec<Keep>,
    /// Directories kept as directories only, without their contents (`/tmp`, `/root`…), with
    /// the symlinks on the way. Addition to the agreed interface: `keep` means a whole subtree.
    pub keep_dirs: Vec<Keep>,
    /// Files whose ELF closure must be kept too, sorted.
    pub elf_roots: Vec<Keep>,
    /// Paths no drop rule may remove, sorted.
    pub drop_exclusions: Vec<Keep>,
    pub warnings: Vec<String>,
    /// What may break the image that the profile found (a config include it cannot read…).
    pub risks: Vec<crate::plan::Risk>,
}

/// What providers and declarative rules accumulate for one evaluation.
#[derive(Debug, Default)]
pub(crate) struct Acc {
    pub keep: BTreeMap<String, String>,
    pub elf_roots: BTreeMap<String, String>,
    pub keep_dirs: BTreeMap<String, String>,
    pub drop_exclusions: BTreeMap<String, String>,
    pub warnings: BTreeSet<String>,
    pub risks: BTreeSet<crate::plan::Risk>,
}

impl Acc {
    pub fn keep(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.keep.entry(path.into()).or_insert_with(|| reason.into());
    }
    pub fn elf_root(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        let (p, r) = (path.into(), reason.into());
        self.keep.entry(p.clone()).or_insert_with(|| r.clone());
        self.elf_roots.entry(p).or_insert(r);
    }
    pub fn risk(&mut self, kind: &'static str, at: impl Into<String>, what: impl Into<String>, fix: impl Into<String>) {
        self.risks.insert(crate::plan::Risk::new(kind, at, what, fix));
    }
    pub fn warn(&mut self, w: impl Into<String>) {
        self.warnings.insert(w.into());
    }
    /// Keep a glob's expansion (nothing excluded), with symlink targets.
    /// Providers keep paths the image's own files name (package.json, nginx.conf, Env): a
    /// system directory (`/`, `/usr`, `/etc`…) named that way is refused with a warning, so
    /// `node_modules/x -> ../../..` or `root /;` cannot keep the whole image.
    pub fn keep_glob(&mut self, fs: &dyn RootFs, pattern: &str, reason: &str) -> usize {
        if !pattern.contains(['*', '?', '[', '{']) {
            if let Some(r) = fs.resolve(pattern) {
                if providers::SYSTEM_DIRS.contains(&r.path.as_str()) {
                    self.warn(format!("{reason}: refusing to keep the system directory {} (from {pattern}) whole", r.path));
                    return 0;
                }
            }
        }
        let empty = GlobSet::empty();
        let mut e = expand::Expander::new(fs, &empty);
        let n = e.add(pattern, reason);
        self.absorb(e.finish(), false, reason);
        n
    }
    pub(crate) fn absorb(&mut self, x: expand::Expanded, elf: bool, what: &str) {
        for (p, r) in x.paths {
            if elf {
                self.elf_root(p, r);
            } else {
                self.keep(p, r);
            }
        }
        for (p, r) in x.link_targets {
            self.keep(p, format!("{what}: {r}"));
        }
        if x.truncated {
            self.warn(format!("{what}: expansion stopped after too many entries; some paths may be missing"));
        }
    }
}

/// Facts shared by detection and providers, computed once.
pub(crate) struct Ctx<'a, 'v> {
    pub view: &'a ImageView<'v>,
    /// Every path of the roots' ELF closure (canonical files and symlinks), roots included.
    pub closure: BTreeSet<String>,
    pub applied: BTreeSet<String>,
}

/// Detect which profiles apply (plus `forced` names, error on an unknown name) and evaluate them.
pub fn evaluate(set: &ProfileSet, forced: &[String], view: &ImageView) -> Result<Needs, ProfileError> {
    for f in forced {
        if !set.profiles.contains_key(f) {
            return Err(ProfileError::Unknown { name: f.clone(), known: set.names().join(", ") });
        }
    }
    let opts = elf::ClosureOptions {
        ld_library_path: view.env_get("LD_LIBRARY_PATH").map(str::to_string),
        ld_preload: view.env_get("LD_PRELOAD").map(str::to_string),
        cwd: view.workdir.unwrap_or("/").to_string(),
    };
    let clo = elf::closure(view.fs, view.roots, &opts);
    let mut closure: BTreeSet<String> = clo.kept.into_keys().collect();
    closure.extend(view.roots.iter().cloned());

    // Detection, then evaluation, in rounds: the elf_roots a profile adds (Python extension
    // modules, NSS modules, JDK libraries) extend the closure, which can make another profile
    // apply (e.g. openssl through python's _ssl module). At most 3 rounds.
    let mut applied: Vec<Applied> = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut acc = Acc::default();
    let mut closure_of: BTreeSet<String> = BTreeSet::new();
    for round in 0..3 {
        let mut new: Vec<Applied> = Vec::new();
        for (name, l) in &set.profiles {
            if done.contains(name) {
                continue;
            }
            let why = if forced.contains(name) {
                Some(format!("{name}: forced with --profile {name}"))
            } else if l.user {
                Some(format!("{name}: user profile {} given with --profile", l.origin))
            } else {
                detect(name, &l.file.detect, view, &closure, round > 0)
            };
            if let Some(why) = why {
                new.push(Applied { name: name.clone(), why });
            }
        }
        if new.is_empty() {
            break;
        }
        new.sort_by_key(|a| (a.name != "base", a.name.clone()));
        done.extend(new.iter().map(|a| a.name.clone()));
        let cx = Ctx { view, closure: closure.clone(), applied: done.clone() };
        for a in &mut new {
            let Some(l) = set.profiles.get(&a.name) else { continue };
            apply_profile(l, a, &cx, &mut acc)?;
        }
        applied.extend(new);
        let more: Vec<String> = acc.elf_roots.keys().filter(|p| !closure_of.contains(*p)).cloned().collect();
        if more.is_empty() {
            break;
        }
        closure_of.extend(more.iter().cloned());
        closure.extend(elf::closure(view.fs, &more, &opts).kept.into_keys());
    }
    applied.sort_by_key(|a| (a.name != "base", a.name.clone()));
    let to_vec = |m: BTreeMap<String, String>| m.into_iter().map(|(path, reason)| Keep { path, reason }).collect();
    Ok(Needs {
        applied,
        keep: to_vec(acc.keep),
        keep_dirs: to_vec(acc.keep_dirs),
        elf_roots: to_vec(acc.elf_roots),
        drop_exclusions: to_vec(acc.drop_exclusions),
        warnings: acc.warnings.into_iter().collect(),
        risks: acc.risks.into_iter().collect(),
    })
}

/// Keep globs, elf_closure, dirs and providers of one applied profile.
fn apply_profile(l: &Loaded, a: &mut Applied, cx: &Ctx, acc: &mut Acc) -> Result<(), ProfileError> {
    let view = cx.view;
    let p = &l.file;
    let exclude = schema::globset(&p.keep.exclude).map_err(|e| ProfileError::Invalid { origin: l.origin.clone(), msg: e.to_string() })?;
    for (pats, elf) in [(&p.keep.globs, false), (&p.keep.elf_closure, true)] {
        for pat in pats {
            let what = format!("profile {} keeps {pat}{}", p.name, if elf { " and its ELF closure" } else { "" });
            let mut e = expand::Expander::new(view.fs, &exclude);
            e.add(pat, &what);
            acc.absorb(e.finish(), elf, &what);
        }
    }
    for pat in &p.keep.dirs {
        let what = format!("profile {} keeps the directory {pat}", p.name);
        let mut e = expand::Expander::new(view.fs, &exclude);
        e.add(pat, &what);
        for (path, r) in e.finish().paths {
            match view.fs.lstat(&path) {
                Some(elf::Node::Dir) => {
                    acc.keep_dirs.entry(path).or_insert(r);
                }
                Some(elf::Node::Symlink(_)) => {
                    acc.keep.entry(path).or_insert(r);
                }
                _ => {}
            }
        }
    }
    for prov in &p.providers {
        if let Some(note) = providers::run(prov, cx, acc, p) {
            a.why.push_str("; ");
            a.why.push_str(&note);
        }
    }
    Ok(())
}

/// Does a profile apply? `later`: only ELF names count (a later round, after elf_roots grew the closure).
fn detect(name: &str, d: &schema::Detect, view: &ImageView, closure: &BTreeSet<String>, later: bool) -> Option<String> {
    if d.always {
        return Some(format!("{name}: always applied"));
    }
    for pat in &d.elf_names {
        let Ok(g) = schema::glob(pat) else { continue };
        let m = g.compile_matcher();
        if let Some(p) = closure.iter().find(|p| m.is_match(p.rsplit('/').next().unwrap_or(p))) {
            let whose = if later { "the ELF closure of programs other profiles keep" } else { "the roots' ELF closure" };
            return Some(format!("{name}: detected {p} in {whose} (matches {pat})"));
        }
    }
    if later {
        return None;
    }
    for k in &d.env {
        if let Some(v) = view.env_get(k) {
            return Some(format!("{name}: Env {k}={v}"));
        }
    }
    for pat in &d.paths {
        if let Some(p) = expand::exists(view.fs, pat) {
            return Some(format!("{name}: {p} is present (paths {pat})"));
        }
    }
    None
}

/// One named drop rule.
#[derive(Debug, Clone)]
pub struct DropRule {
    pub name: String,
    pub category: String,
    pub description: String,
    /// Only in `--distroless` mode (package managers and their databases).
    pub distroless_only: bool,
    /// The profile defining it.
    pub profile: String,
    globs: GlobSet,
    except: GlobSet,
    patterns: Vec<String>,
}

impl DropRule {
    /// Does the rule claim this absolute path? Rules are written for non-directory entries
    /// (a directory path may match too; keeping wins over dropping in the plan).
    pub fn matches(&self, path: &str) -> bool {
        self.globs.is_match(path) && !self.except.is_match(path)
    }
    /// The globs, for reports.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// The named drop rules: base rules (profiles/base.toml, always) plus rules of the applied
/// profiles. Order: base rules in file order, then each applied profile's (by name) in file
/// order; more specific rules come first in each file, so "first matching rule" names a path.
pub fn drop_rules(set: &ProfileSet, applied: &[Applied]) -> Vec<DropRule> {
    let mut names: Vec<&str> = applied.iter().map(|a| a.name.as_str()).filter(|n| *n != "base").collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for n in std::iter::once("base").chain(names) {
        let Some(l) = set.profiles.get(n) else { continue };
        for d in &l.file.drop {
            // Validated at load: the globs compile.
            let (Ok(globs), Ok(except)) = (schema::globset(&d.globs), schema::globset(&d.except)) else { continue };
            out.push(DropRule {
                name: d.name.clone(),
                category: d.category.clone(),
                description: d.description.clone(),
                distroless_only: d.distroless_only,
                profile: n.to_string(),
                globs,
                except,
                patterns: d.globs.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
