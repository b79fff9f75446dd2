//! dpkg: `/var/lib/dpkg/status` stanzas and `info/<pkg>.{list,md5sums,conffiles}`.
//! Listed paths are resolved as dpkg would inside the image (`/bin/ls` on a merged-/usr image
//! is `/usr/bin/ls`), then looked up in the plan's kept set.
use super::{Mode, NewFile, PackageUse, Rewrite};
use crate::elf::{Node, RootFs};
use crate::error::Result;
use crate::fs::Meta;
use crate::plan::TreeFs;
use std::collections::{BTreeSet, HashMap};

/// The plan's decisions by canonical path: (kept, content bytes).
pub type Kept<'a> = HashMap<&'a str, (bool, u64)>;

/// One status stanza, the fields this stage reads.
struct Stanza<'a> {
    text: &'a str,
    package: &'a str,
    arch: &'a str,
    version: &'a str,
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':'))).map(str::trim).unwrap_or("")
}

fn stanzas(status: &str) -> Vec<Stanza<'_>> {
    status
        .split("\n\n")
        .map(|t| t.trim_matches('\n'))
        .filter(|t| !t.is_empty())
        .map(|text| Stanza { text, package: field(text, "Package"), arch: field(text, "Architecture"), version: field(text, "Version") })
        .filter(|s| !s.package.is_empty())
        .collect()
}

/// Conffile paths of a stanza (` /etc/x <md5> [obsolete]` lines under `Conffiles:`).
fn conffiles(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if l.starts_with(' ') {
            if inside {
                out.extend(l.split_whitespace().next());
            }
        } else {
            inside = l.starts_with("Conffiles:");
        }
    }
    out
}

/// The stanza with only the conffiles in `keep` (the field goes when none is left).
fn stanza_text(text: &str, keep: &BTreeSet<String>) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut inside = false;
    let mut header = None;
    for l in text.lines() {
        if l.starts_with(' ') && inside {
            if l.split_whitespace().next().is_some_and(|p| keep.contains(p)) {
                out.extend(header.take());
                out.push(l);
            }
            continue;
        }
        inside = l.starts_with("Conffiles:");
        if inside {
            header = Some(l);
        } else {
            out.push(l);
        }
    }
    out.join("\n") + "\n"
}

/// How one listed path fares: None when the image does not have it at all.
pub(super) struct Fate {
    dir: bool,
    pub kept: bool,
    pub size: u64,
}

pub(super) fn fate(fs: &TreeFs, kept: &Kept, path: &str) -> Option<Fate> {
    let (loc, _) = fs.location(path)?;
    let &(keep, size) = kept.get(loc.as_str())?;
    let dir = fs.resolve(path).is_some_and(|r| r.node == Node::Dir);
    Some(Fate { dir, kept: keep, size })
}

/// One package's result: the paths kept (in .list order) and its usage.
struct Pkg {
    key: String,
    stanza: String,
    kept_paths: BTreeSet<String>,
    list: Option<String>,
    usage: PackageUse,
}

fn package(fs: &TreeFs, kept: &Kept, info: &str, key: &str, s: &Stanza) -> Pkg {
    let list = fs.read_file(&format!("{info}/{key}.list")).map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut usage = PackageUse { name: s.package.to_string(), version: s.version.to_string(), ..Default::default() };
    let mut kept_paths = BTreeSet::new();
    let mut kept_list = String::new();
    let mut seen = BTreeSet::new();
    let listed = list.as_deref().unwrap_or("").lines().map(|l| (l, true));
    for (p, in_list) in listed.chain(conffiles(s.text).into_iter().map(|p| (p, false))) {
        if p.is_empty() || !seen.insert(p) {
            continue;
        }
        let Some(f) = fate(fs, kept, p) else { continue };
        if f.kept {
            kept_paths.insert(p.to_string());
            if in_list {
                kept_list.push_str(p);
                kept_list.push('\n');
            }
        }
        match (f.dir, f.kept) {
            (true, _) => {}
            (false, true) => {
                usage.files_kept += 1;
                usage.bytes_kept += f.size;
            }
            (false, false) => {
                usage.files_dropped += 1;
                usage.bytes_dropped += f.size;
            }
        }
    }
    let stanza = stanza_text(s.text, &kept_paths);
    Pkg { key: key.to_string(), stanza, kept_paths, list: list.map(|_| kept_list), usage }
}

/// `.md5sums` lines (`<md5>  usr/bin/x`) of the kept paths.
fn md5sums(text: &str, kept: &BTreeSet<String>) -> String {
    text.lines()
        .filter(|l| l.split_once("  ").is_some_and(|(_, p)| kept.contains(&format!("/{p}"))))
        .map(|l| format!("{l}\n"))
        .collect()
}

pub(super) fn meta_of(fs: &TreeFs, path: &str) -> Meta {
    fs.node_at(path).map(|id| fs.tree.meta(id).clone()).unwrap_or(Meta { mode: 0o644, ..Meta::default() })
}

/// `info/<key>.<suffix>` names: the key is everything before the last dot (control file
/// suffixes have none; package names may: `python3.11.list`).
fn info_key(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(k, _)| k)
}

pub fn rewrite(fs: &TreeFs, kept: &Kept, mode: Mode) -> Result<Rewrite> {
    let Some(admin) = fs.resolve("/var/lib/dpkg").filter(|r| r.node == Node::Dir).map(|r| r.path) else {
        return Ok(Rewrite::default());
    };
    let status_path = format!("{admin}/status");
    let Some(status) = fs.read_file(&status_path).map(|b| String::from_utf8_lossy(&b).into_owned()) else {
        return Ok(Rewrite::default());
    };
    let info = format!("{admin}/info");
    let keys: BTreeSet<String> = fs.list_dir(&info).iter().filter_map(|n| info_key(n).map(str::to_string)).collect();
    let pkgs: Vec<Pkg> = stanzas(&status)
        .iter()
        .map(|s| {
            let qualified = format!("{}:{}", s.package, s.arch);
            let key = if keys.contains(&qualified) { qualified } else { s.package.to_string() };
            package(fs, kept, &info, &key, s)
        })
        .collect();
    let mut rw = Rewrite { mode: Some(mode), db: "dpkg", ..Default::default() };
    let under: Vec<&str> = kept.keys().copied().filter(|p| p.starts_with(&format!("{admin}/"))).collect();
    let prune = matches!(mode, Mode::Prune | Mode::StatusD);
    let removed: BTreeSet<&str> = pkgs.iter().filter(|p| prune && p.usage.files_kept == 0).map(|p| p.key.as_str()).collect();
    match mode {
        Mode::Keep => rw.decisions.extend(under.iter().map(|p| (p.to_string(), true))),
        Mode::Drop => rw.decisions.extend(under.iter().map(|p| (p.to_string(), false))),
        Mode::Prune => prune_files(fs, &admin, &under, &pkgs, &removed, &mut rw),
        Mode::StatusD => status_d_files(fs, &admin, &under, &pkgs, &removed, &mut rw),
    }
    if mode != Mode::Drop && kept.contains_key("/etc/debian_version") {
        // Scanners identify the distribution by it.
        rw.decisions.insert("/etc/debian_version".into(), true);
    }
    rw.packages = pkgs.iter().map(|p| PackageUse { removed: removed.contains(p.key.as_str()), ..p.usage.clone() }).collect();
    if prune {
        let kept: Vec<&str> = pkgs.iter().filter(|p| !removed.contains(p.key.as_str())).map(|p| p.stanza.as_str()).collect();
        rw.unmet = unmet(&kept);
    }
    Ok(rw)
}

/// The names in a relation field (`Depends: a (>= 1) | b:any, c`): one list of
/// alternatives per clause.
fn clauses(value: &str) -> Vec<Vec<&str>> {
    value
        .split(',')
        .map(|c| c.split('|').filter_map(|alt| alt.split_whitespace().next()).map(|n| n.split(':').next().unwrap_or(n)).filter(|n| !n.is_empty()).collect::<Vec<_>>())
        .filter(|c| !c.is_empty())
        .collect()
}

/// `Depends`/`Pre-Depends` of the kept packages that no kept package satisfies (by name or
/// `Provides`), as `pkg: Depends: dep` lines. What `apt-get check` reports as unmet against the
/// pruned status: information, since the files the app needs were kept by the plan.
pub fn unmet(kept: &[&str]) -> Vec<String> {
    let mut have: BTreeSet<&str> = BTreeSet::new();
    for t in kept {
        have.insert(field(t, "Package"));
        have.extend(clauses(field(t, "Provides")).into_iter().flatten());
    }
    let mut out = Vec::new();
    for t in kept {
        for f in ["Pre-Depends", "Depends"] {
            for c in clauses(field(t, f)) {
                if !c.iter().any(|n| have.contains(n)) {
                    out.push(format!("{}: {f}: {}", field(t, "Package"), c.join(" | ")));
                }
            }
        }
    }
    out
}

/// `prune`: the whole database stays except the removed packages' stanzas and info files
/// and dpkg's `*-old` backups; the kept packages' file lists name only what remains.
fn prune_files(fs: &TreeFs, admin: &str, under: &[&str], pkgs: &[Pkg], removed: &BTreeSet<&str>, rw: &mut Rewrite) {
    let info = format!("{admin}/info/");
    for p in under {
        let gone = p.ends_with("-old") || p.strip_prefix(&info).and_then(info_key).is_some_and(|k| removed.contains(k));
        rw.decisions.insert(p.to_string(), !gone);
    }
    let status: String = pkgs.iter().filter(|p| !removed.contains(p.key.as_str())).map(|p| p.stanza.clone()).collect::<Vec<_>>().join("\n");
    let status_path = format!("{admin}/status");
    rw.files.push(NewFile { meta: meta_of(fs, &status_path), path: status_path, bytes: status.into_bytes() });
    for p in pkgs.iter().filter(|p| !removed.contains(p.key.as_str())) {
        if let Some(list) = &p.list {
            let path = format!("{info}{}.list", p.key);
            rw.files.push(NewFile { meta: meta_of(fs, &path), path, bytes: list.clone().into_bytes() });
        }
        for (suffix, f) in [("md5sums", md5sums as fn(&str, &BTreeSet<String>) -> String), ("conffiles", kept_lines)] {
            let path = format!("{info}{}.{suffix}", p.key);
            if let Some(old) = fs.read_file(&path) {
                let bytes = f(&String::from_utf8_lossy(&old), &p.kept_paths).into_bytes();
                rw.files.push(NewFile { meta: meta_of(fs, &path), path, bytes });
            }
        }
    }
}

/// `info/<pkg>.conffiles` lines (one path each) that are kept.
fn kept_lines(text: &str, kept: &BTreeSet<String>) -> String {
    text.lines().filter(|l| kept.contains(l.trim())).map(|l| format!("{l}\n")).collect()
}

/// `status.d`: distroless's layout, one stanza file (and `.md5sums`) per kept package, no
/// `status` and no `info/`.
fn status_d_files(fs: &TreeFs, admin: &str, under: &[&str], pkgs: &[Pkg], removed: &BTreeSet<&str>, rw: &mut Rewrite) {
    let info = format!("{admin}/info");
    for p in under {
        if *p == info || p.starts_with(&format!("{info}/")) || p.ends_with("-old") || *p == format!("{admin}/status") {
            rw.decisions.insert(p.to_string(), false);
        }
    }
    let dir = format!("{admin}/status.d");
    rw.dirs.push((dir.clone(), meta_of(fs, admin)));
    let meta = meta_of(fs, &format!("{admin}/status"));
    let mut names = BTreeSet::new();
    for p in pkgs.iter().filter(|p| !removed.contains(p.key.as_str())) {
        let name = if names.insert(p.usage.name.clone()) { p.usage.name.clone() } else { p.key.clone() };
        rw.files.push(NewFile { path: format!("{dir}/{name}"), bytes: p.stanza.clone().into_bytes(), meta: meta.clone() });
        if let Some(old) = fs.read_file(&format!("{info}/{}.md5sums", p.key)) {
            let bytes = md5sums(&String::from_utf8_lossy(&old), &p.kept_paths).into_bytes();
            rw.files.push(NewFile { path: format!("{dir}/{name}.md5sums"), bytes, meta: meta.clone() });
        }
    }
}

/// The packages the database in `fs` says are installed, with the files of each that the
/// tree has (from `info/<pkg>.list`, or `status.d/<pkg>.md5sums` in the distroless layout).
pub fn installed(fs: &TreeFs) -> Vec<super::Installed> {
    let Some(admin) = fs.resolve("/var/lib/dpkg").filter(|r| r.node == Node::Dir).map(|r| r.path) else { return Vec::new() };
    let mut texts: Vec<(String, Option<String>)> = Vec::new();
    if let Some(b) = fs.read_file(&format!("{admin}/status")) {
        texts.push((String::from_utf8_lossy(&b).into_owned(), None));
    }
    let sd = format!("{admin}/status.d");
    let mut names = fs.list_dir(&sd);
    names.sort();
    for n in names.iter().filter(|n| !n.ends_with(".md5sums")) {
        if let Some(b) = fs.read_file(&format!("{sd}/{n}")) {
            texts.push((String::from_utf8_lossy(&b).into_owned(), Some(format!("{sd}/{n}.md5sums"))));
        }
    }
    let mut out = Vec::new();
    for (text, md5) in &texts {
        for s in stanzas(text).iter().filter(|s| md5.is_some() || field(s.text, "Status").ends_with(" installed")) {
            let listed: Vec<String> = match md5 {
                Some(m) => fs.read_file(m).map(|b| String::from_utf8_lossy(&b).lines().filter_map(|l| l.split_once("  ").map(|(_, p)| format!("/{p}"))).collect()).unwrap_or_default(),
                None => {
                    let key = [format!("{}:{}", s.package, s.arch), s.package.to_string()].into_iter().find(|k| fs.lstat(&format!("{admin}/info/{k}.list")).is_some()).unwrap_or_default();
                    fs.read_file(&format!("{admin}/info/{key}.list")).map(|b| String::from_utf8_lossy(&b).lines().map(str::to_string).collect()).unwrap_or_default()
                }
            };
            let files = listed.into_iter().filter(|p| fs.resolve(p).is_some_and(|r| r.node != Node::Dir)).collect();
            out.push(super::Installed { ecosystem: "deb", name: s.package.to_string(), version: s.version.to_string(), arch: s.arch.to_string(), files });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conffiles_are_pruned_and_the_field_goes_when_empty() {
        let t = "Package: a\nConffiles:\n /etc/a 0123\n /etc/b 4567 obsolete\nDescription: x\n more";
        let keep: BTreeSet<String> = ["/etc/b".to_string()].into();
        assert_eq!(stanza_text(t, &keep), "Package: a\nConffiles:\n /etc/b 4567 obsolete\nDescription: x\n more\n");
        assert_eq!(stanza_text(t, &BTreeSet::new()), "Package: a\nDescription: x\n more\n");
        assert_eq!(conffiles(t), ["/etc/a", "/etc/b"]);
    }

    #[test]
    fn unmet_dependencies_by_name_and_provides() {
        let a = "Package: a\nDepends: libc6 (>= 2.36), b | c, mail-transport-agent, d:any\n";
        let b = "Package: x\nProvides: mail-transport-agent\nPre-Depends: gone\n";
        assert_eq!(unmet(&[a, b, "Package: c"]), ["a: Depends: libc6", "a: Depends: d", "x: Pre-Depends: gone"]);
    }

    #[test]
    fn info_keys_keep_dots_in_package_names() {
        assert_eq!(info_key("python3.11.list"), Some("python3.11"));
        assert_eq!(info_key("libc6:amd64.md5sums"), Some("libc6:amd64"));
        assert_eq!(info_key("format"), None);
    }
}
