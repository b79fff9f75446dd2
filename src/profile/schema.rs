//! The TOML schema of a profile file (documented in `profiles/README.md`) and its validation.
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::ProfileError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub detect: Detect,
    #[serde(default)]
    pub keep: KeepSpec,
    #[serde(default)]
    pub drop: Vec<DropSpec>,
    /// Built-in Rust functions for what cannot be declarative (see `providers.rs`).
    #[serde(default)]
    pub providers: Vec<String>,
    /// The runtime starts as root and drops privileges itself (nginx's master process switches
    /// its workers to the `user` directive): `--distroless` must not change User to nonroot.
    #[serde(default)]
    pub starts_as_root: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    /// Applied to every image (base, or a recorded trace).
    #[serde(default)]
    pub always: bool,
    /// Globs of paths that must exist in the image.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Basename globs matched against the roots and every path of their ELF closure.
    #[serde(default)]
    pub elf_names: Vec<String>,
    /// Env keys of the image config.
    #[serde(default)]
    pub env: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepSpec {
    /// Absolute path globs kept when present (a matched directory is kept whole, minus `exclude`).
    #[serde(default)]
    pub globs: Vec<String>,
    /// Absolute path globs removed from `globs` and `elf_closure` (an excluded dir excludes its subtree).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Globs of files kept and whose ELF closure is kept too.
    #[serde(default)]
    pub elf_closure: Vec<String>,
    /// Globs of directories kept as directories only (not their contents): `/tmp`, `/root`…
    #[serde(default)]
    pub dirs: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropSpec {
    pub name: String,
    pub category: String,
    pub description: String,
    pub globs: Vec<String>,
    /// Paths matching these are not matched by the rule.
    #[serde(default)]
    pub except: Vec<String>,
    #[serde(default)]
    pub distroless_only: bool,
}

pub const CATEGORIES: &[&str] = &["caches", "docs", "dev", "package-manager", "tests", "data", "runtime-tools", "unused-deps"];

/// A glob over absolute paths: `*`, `?`, `[..]` stay inside a component, `**` crosses them.
pub fn glob(p: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(p).literal_separator(true).backslash_escape(true).build()
}

pub fn globset(pats: &[String]) -> Result<GlobSet, globset::Error> {
    let mut b = GlobSetBuilder::new();
    for p in pats {
        b.add(glob(p)?);
    }
    b.build()
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.')
}

impl ProfileFile {
    pub fn parse(text: &str, origin: &str) -> Result<ProfileFile, ProfileError> {
        let p: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Parse { origin: origin.to_string(), msg: e.to_string() })?;
        p.validate(origin)?;
        Ok(p)
    }

    fn validate(&self, origin: &str) -> Result<(), ProfileError> {
        let bad = |msg: String| Err(ProfileError::Invalid { origin: origin.to_string(), msg });
        if !valid_name(&self.name) {
            return bad(format!("profile name {:?} must be 1-64 chars of [a-z0-9._-]", self.name));
        }
        let abs = [
            ("detect.paths", &self.detect.paths),
            ("keep.globs", &self.keep.globs),
            ("keep.exclude", &self.keep.exclude),
            ("keep.elf_closure", &self.keep.elf_closure),
            ("keep.dirs", &self.keep.dirs),
        ];
        for (what, pats) in abs {
            for p in pats.iter() {
                if !p.starts_with('/') && !p.starts_with("**/") {
                    return bad(format!("{what}: {p:?} must be absolute (or start with **/)"));
                }
                glob(p).map_err(|e| ProfileError::Invalid { origin: origin.into(), msg: format!("{what}: {p:?}: {e}") })?;
            }
        }
        for p in &self.detect.elf_names {
            if p.contains('/') {
                return bad(format!("detect.elf_names: {p:?} is a basename glob, it cannot contain '/'"));
            }
            glob(p).map_err(|e| ProfileError::Invalid { origin: origin.into(), msg: format!("detect.elf_names: {p:?}: {e}") })?;
        }
        for prov in &self.providers {
            if !super::providers::NAMES.contains(&prov.as_str()) {
                return bad(format!("unknown provider {prov:?} (known: {})", super::providers::NAMES.join(", ")));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &self.drop {
            if !valid_name(&d.name) {
                return bad(format!("drop rule name {:?} must be 1-64 chars of [a-z0-9._-]", d.name));
            }
            if !seen.insert(d.name.as_str()) {
                return bad(format!("drop rule {:?} defined twice", d.name));
            }
            if !CATEGORIES.contains(&d.category.as_str()) {
                return bad(format!("drop rule {:?}: unknown category {:?} (known: {})", d.name, d.category, CATEGORIES.join(", ")));
            }
            if d.globs.is_empty() {
                return bad(format!("drop rule {:?} has no globs", d.name));
            }
            for p in d.globs.iter().chain(&d.except) {
                if !p.starts_with('/') && !p.starts_with("**/") {
                    return bad(format!("drop rule {:?}: {p:?} must be absolute (or start with **/)", d.name));
                }
                glob(p).map_err(|e| ProfileError::Invalid { origin: origin.into(), msg: format!("drop rule {:?}: {p:?}: {e}", d.name) })?;
            }
        }
        Ok(())
    }
}
