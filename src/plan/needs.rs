//! Sources of needs. Each source (the image's commands, the profiles, later runtime traces)
//! says what the app needs as lists of path + reason; the plan merges them in source order,
//! first reason wins.
use super::roots::{self, Found};
use super::{env_pairs, TreeFs};
use crate::elf::RootFs;
use crate::error::{Error, Result};
use crate::image::config::{runtime, string_list};
use crate::profile::{self, ImageView, ProfileSet};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub path: String,
    pub reason: String,
}

impl Need {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Need {
        Need { path: path.into(), reason: reason.into() }
    }
}

impl From<&profile::Keep> for Need {
    fn from(k: &profile::Keep) -> Need {
        Need::new(k.path.clone(), k.reason.clone())
    }
}

/// What one source says the app needs.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// ELF files run or loaded: their closure is kept, the reason labels it.
    pub elf_roots: Vec<Need>,
    /// Paths the app runs (commands, scripts, argument files): kept ahead of the ELF
    /// closure so `--explain` names the command line rather than a library edge.
    pub runs: Vec<Need>,
    /// Paths the app reads; a directory named here keeps its whole subtree.
    pub reads: Vec<Need>,
    /// Directories kept as directories only; their contents are decided like any path.
    pub dirs: Vec<Need>,
}

/// The image's runtime facts every source reads.
pub struct Context<'a> {
    pub fs: TreeFs<'a>,
    pub config: &'a Value,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

impl<'a> Context<'a> {
    pub fn new(fs: TreeFs<'a>, config: &'a Value) -> Context<'a> {
        let workdir = runtime(config, "WorkingDir").and_then(Value::as_str).filter(|w| !w.is_empty()).map(str::to_string);
        let user = runtime(config, "User").and_then(Value::as_str).map(str::to_string);
        Context { fs, config, env: env_pairs(config), workdir, user }
    }

    /// First value of an Env key.
    pub fn env(&self, k: &str) -> Option<String> {
        self.env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone())
    }
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

/// Roots: what the image runs (Entrypoint + Cmd, the Healthcheck), one root per command.
pub fn find_roots(cx: &Context, warnings: &mut BTreeSet<String>) -> Found {
    let mut resolver = roots::Resolver::new(&cx.fs, cx.env("PATH").as_deref(), cx.workdir.as_deref());
    resolver.env = cx.env.clone();
    let mut found = Found::default();
    let (argv, label) = command_of(cx.config);
    if label == "Entrypoint" {
        resolver.cmd = string_list(runtime(cx.config, "Cmd"));
    }
    if argv.is_empty() {
        warnings.insert("the image has no Entrypoint or Cmd: only profiles, WorkingDir and --keep decide what stays".into());
    } else {
        resolver.argv(&argv, label, &mut found);
    }
    if let Some(test) = runtime(cx.config, "Healthcheck").and_then(|h| h.get("Test")) {
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
    found
}

/// The command lines' needs: roots are ELF roots and run; argument files run.
pub fn command_needs(found: &Found) -> Needs {
    Needs {
        elf_roots: found.roots.iter().map(|r| Need::new(r.path.clone(), r.label.clone())).collect(),
        runs: found.roots.iter().map(|r| Need::new(r.path.clone(), format!("root: {}", r.label))).chain(found.files.iter().map(|f| Need::new(f.path.clone(), f.label.clone()))).collect(),
        ..Needs::default()
    }
}

/// Profiles, detected from the image's files and the canonical roots, or forced.
pub fn evaluate_profiles(cx: &Context, found: &Found, names: &[String], files: &[PathBuf]) -> Result<(ProfileSet, profile::Needs)> {
    let mut set = ProfileSet::builtin().map_err(|e| Error::Other(format!("builtin profiles: {e}")))?;
    let mut forced = names.to_vec();
    for f in files {
        let name = set.add_file(f).map_err(|e| Error::input(format!("--profile {}", f.display()), e.to_string()))?;
        forced.push(name);
    }
    let canon_roots: Vec<String> = found.roots.iter().filter_map(|r| cx.fs.resolve(&r.path).map(|x| x.path)).collect::<BTreeSet<_>>().into_iter().collect();
    let view = ImageView { fs: &cx.fs, env: &cx.env, roots: &canon_roots, workdir: cx.workdir.as_deref(), user: cx.user.as_deref() };
    let needs = profile::evaluate(&set, &forced, &view).map_err(|e| Error::Usage(format!("profiles: {e}")))?;
    Ok((set, needs))
}

/// The profiles' needs: modules they say are loaded, data they read, directories they use.
pub fn profile_needs(p: &profile::Needs) -> Needs {
    Needs {
        elf_roots: p.elf_roots.iter().map(Need::from).collect(),
        runs: Vec::new(),
        reads: p.keep.iter().map(Need::from).collect(),
        dirs: p.keep_dirs.iter().map(Need::from).collect(),
    }
}

/// `--keep`: an ELF file kept is an ELF root (its libraries come with it). Globs that match
/// nothing are said, naming the glob.
pub fn user_needs(cx: &Context, paths: &[String], globs: &[String], warnings: &mut BTreeSet<String>) -> Result<Needs> {
    let set = super::globset(globs, "--keep")?;
    let mut matched = vec![false; globs.len()];
    let mut needs = Needs::default();
    for p in paths {
        let m = set.matches(p);
        for i in &m {
            matched[*i] = true;
        }
        if let Some(i) = m.first() {
            if cx.fs.lstat(p) == Some(crate::elf::Node::File) && cx.fs.read(p).is_some_and(|b| b.starts_with(b"\x7fELF")) {
                needs.elf_roots.push(Need::new(p.clone(), format!("--keep {}", globs[*i])));
            }
        }
    }
    warn_unmatched("--keep", globs, &matched, warnings);
    Ok(needs)
}

/// `--drop` globs that match no path of the image, said by name.
pub fn check_drops(paths: &[String], globs: &[String], warnings: &mut BTreeSet<String>) -> Result<()> {
    let set = super::globset(globs, "--drop")?;
    let mut matched = vec![false; globs.len()];
    for i in paths.iter().flat_map(|p| set.matches(p)) {
        matched[i] = true;
    }
    warn_unmatched("--drop", globs, &matched, warnings);
    Ok(())
}

fn warn_unmatched(flag: &str, globs: &[String], matched: &[bool], warnings: &mut BTreeSet<String>) {
    for (g, _) in globs.iter().zip(matched).filter(|(_, m)| !**m) {
        warnings.insert(format!("{flag} {g} matches nothing in the image"));
    }
}
