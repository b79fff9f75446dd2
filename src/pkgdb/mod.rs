//! Package databases that describe what is left. After the plan, each package's payload is
//! looked up in the kept set; the database is rewritten so scanners (syft, trivy, grype) and
//! dpkg itself report only packages whose files are still in the image, and only those files.
mod apk;
mod dpkg;

use crate::error::{Error, Result};
use crate::fs::{split_path, ContentStore, Data, Meta, Tree};
use crate::plan::{Plan, RuleStat};
use std::collections::BTreeMap;

/// `--package-db`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Leave the database exactly as it was.
    Keep,
    /// Delete packages with no files left; name only the remaining files of the others.
    Prune,
    /// As prune, written as distroless does: /var/lib/dpkg/status.d/<pkg> (+ .md5sums).
    #[value(name = "status.d")]
    #[serde(rename = "status.d")]
    StatusD,
    /// Remove the database (what --distroless did before).
    Drop,
}

/// One package: what of its payload (files, symlinks; not directories) stays.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PackageUse {
    pub name: String,
    pub version: String,
    pub files_kept: u64,
    pub files_dropped: u64,
    pub bytes_kept: u64,
    pub bytes_dropped: u64,
    /// Deleted from the database: none of its payload is left.
    pub removed: bool,
}

/// A file of the database written with new content after the plan is applied.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Canonical path, e.g. `/var/lib/dpkg/status`.
    pub path: String,
    pub bytes: Vec<u8>,
    pub meta: Meta,
}

/// What the stage does to the image.
#[derive(Debug, Default)]
pub struct Rewrite {
    pub mode: Option<Mode>,
    /// `dpkg` or `apk`.
    pub db: &'static str,
    pub packages: Vec<PackageUse>,
    /// Database paths kept (true) or dropped (false) whatever the plan said.
    pub decisions: BTreeMap<String, bool>,
    pub files: Vec<NewFile>,
    /// Directories to create for `files` (status.d).
    pub dirs: Vec<(String, Meta)>,
    /// Dependencies of kept packages on packages no longer in the database (prune, status.d).
    pub unmet: Vec<String>,
}

pub const RULE: &str = "package-db";

impl Rewrite {
    pub fn removed(&self) -> Vec<&str> {
        self.packages.iter().filter(|p| p.removed).map(|p| p.name.as_str()).collect()
    }

    /// The summary's lines.
    pub fn notes(&self) -> Vec<String> {
        let Some(mode) = self.mode else { return Vec::new() };
        let removed = self.removed();
        let mode = serde_json::to_value(mode).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let mut n = vec![format!("package database ({}, --package-db {mode}): {} packages, {} removed entirely", self.db, self.packages.len(), removed.len())];
        if !removed.is_empty() && mode != "keep" && mode != "drop" {
            n.push(format!("packages removed entirely: {}", removed.join(", ")));
        }
        if !self.unmet.is_empty() {
            // Information, not an error: `apt-get check` would report these against the new status.
            n.push(format!("dependencies no longer in the database ({}): {}", self.unmet.len(), self.unmet.join("; ")));
        }
        n
    }

    /// Make the plan keep the database files this mode writes and drop the others.
    pub fn overrule(&self, plan: &mut Plan) {
        let rule = RuleStat {
            name: RULE.into(),
            category: "package-manager".into(),
            description: "package database entries of packages with no files left (--package-db)".into(),
            ..Default::default()
        };
        plan.overrule(&self.decisions, &rule, "package database describing what is left (--package-db)");
    }

    /// After the plan is applied: write the rewritten database files.
    pub fn write_into(&self, tree: &mut Tree, store: &mut ContentStore) -> Result<()> {
        let mut released = Vec::new();
        for (d, meta) in &self.dirs {
            tree.put_dir(&split_path(d.trim_start_matches('/').as_bytes()), meta.clone(), &mut released);
        }
        for f in &self.files {
            let content = store.add_bytes(&f.bytes).map_err(|e| Error::Other(format!("work area: {e}")))?;
            let ino = tree.new_inode(f.meta.clone(), Data::File { content });
            tree.put_leaf(&split_path(f.path.trim_start_matches('/').as_bytes()), ino, &mut released);
        }
        Ok(())
    }
}

/// A package the (rewritten) database lists as installed, with its files present in the tree.
#[derive(Debug, Clone)]
pub struct Installed {
    /// `deb` or `apk`: the purl type.
    pub ecosystem: &'static str,
    pub name: String,
    pub version: String,
    pub arch: String,
    pub files: Vec<String>,
}

/// What the database in `tree` describes (for the SBOM of the slimmed image).
pub fn installed(tree: &Tree, store: &ContentStore) -> Vec<Installed> {
    let fs = crate::plan::TreeFs { tree, store };
    let mut all = dpkg::installed(&fs);
    all.extend(apk::installed(&fs));
    all
}

/// Decide what the image's package database becomes, given the plan's kept set. An image
/// without a dpkg database gets an empty `Rewrite`.
pub fn rewrite(tree: &Tree, store: &ContentStore, plan: &Plan, mode: Mode) -> Result<Rewrite> {
    let kept: dpkg::Kept = plan.entries.iter().map(|e| (e.path.as_str(), (e.keep, e.size))).collect();
    let fs = crate::plan::TreeFs { tree, store };
    let rw = dpkg::rewrite(&fs, &kept, mode)?;
    if rw.mode.is_some() {
        return Ok(rw);
    }
    apk::rewrite(&fs, &kept, mode)
}
