//! `--level traced`: where a runtime's module trees are kept whole by its profile (the Python
//! stdlib and packages, node_modules and Debian's /usr/share/nodejs, jars, the JDK's configuration
//! in /etc), keep only what the trace touched. Everything else the profiles name (NSS,
//! certificates, locale, zone, the interpreter) is kept as at minimal, and the ELF closure of
//! traced executables and libraries comes with the trace's needs.
use super::needs::{Need, Needs};
use super::globset;
use crate::error::{Error, Result};

const MODULE_TREES: &[&str] = &["**/lib/python[0-9]*/**", "**/*-packages/**", "**/node_modules/**", "**/*.jar", "/usr/lib/jvm/**", "/opt/java/**", "/etc/java-*/**", "/usr/share/nodejs/**"];

fn module_trees() -> Result<globset::GlobSet> {
    globset(&MODULE_TREES.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "module tree")
}

/// The profiles' needs without the module trees (the trace says which modules run).
pub fn narrow(profile: Needs) -> Result<Needs> {
    let trees = module_trees()?;
    let keep = |v: Vec<Need>| v.into_iter().filter(|n| !trees.is_match(&n.path)).collect();
    Ok(Needs { elf_roots: keep(profile.elf_roots), runs: keep(profile.runs), reads: keep(profile.reads), dirs: profile.dirs })
}

/// The trace's needs without the entries of module-tree directories that were only listed: a
/// runtime's import machinery lists each directory on its path to cache the names, and opens
/// (so the trace keeps) what it then imports. Listings elsewhere (a plugin directory) stay.
pub fn narrow_listings(traced: &Needs) -> Result<Needs> {
    let trees = module_trees()?;
    let keep = |v: &[Need]| v.iter().filter(|n| !(n.reason.contains(LISTED) && trees.is_match(&n.path))).cloned().collect();
    Ok(Needs { elf_roots: traced.elf_roots.clone(), runs: traced.runs.clone(), reads: keep(&traced.reads), dirs: keep(&traced.dirs) })
}

/// The marker `trace::resolve` puts in the reason of a listed directory's entries.
pub const LISTED: &str = " (listed ";

pub fn require_trace(traced: &Option<Needs>) -> Result<()> {
    match traced {
        Some(_) => Ok(()),
        None => Err(Error::Usage("--level traced keeps only what a trace touched: add --trace [probes] or --from-trace FILE".into())),
    }
}
