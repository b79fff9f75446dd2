//! node: the app's production dependency closure, resolved like Node's `require()` does
//! (node_modules of the requiring package's real dir and each ancestor; scoped names; symlinks
//! followed, as with pnpm), kept package by package; devDependencies and extraneous packages
//! are left to the `node-dev-dependencies` drop rule.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{app_workdir, shebang};
use crate::elf::rootfs::{dirname, join_path};
use crate::elf::{is_elf, Node, RootFs};
use crate::profile::expand::Expander;
use crate::profile::{schema, Acc, Ctx};

/// Dependency fields followed from a package.json.
const FIELDS: &[(&str, bool)] = &[("dependencies", true), ("optionalDependencies", false), ("peerDependencies", false)];

/// Dependency names of a package.json: (name, required). `Err` if it is not a JSON object.
pub fn deps_of(text: &[u8]) -> Result<Vec<(String, bool)>, String> {
    let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    for (field, required) in FIELDS {
        if let Some(m) = obj.get(*field).and_then(|d| d.as_object()) {
            for name in m.keys() {
                let r = out.entry(name.clone()).or_insert(false);
                *r |= required;
            }
        }
    }
    Ok(out.into_iter().collect())
}

fn valid_pkg_name(n: &str) -> bool {
    let ok = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']);
    match n.strip_prefix('@') {
        Some(rest) => rest.split_once('/').is_some_and(|(a, b)| ok(a) && ok(b)),
        None => ok(n),
    }
}

/// Node's lookup: `dir/node_modules/name` for `dir` = the requiring package's real dir and each
/// ancestor, skipping dirs that are themselves named node_modules. Returns (path, canonical).
pub fn resolve_pkg(fs: &dyn RootFs, from: &str, name: &str) -> Option<(String, String)> {
    if !valid_pkg_name(name) {
        return None;
    }
    let mut d = from.to_string();
    loop {
        if !d.ends_with("/node_modules") {
            let cand = join_path(&join_path(&d, "node_modules"), name);
            if let Some(r) = fs.resolve(&cand) {
                if r.node == Node::Dir {
                    return Some((cand, r.path));
                }
            }
        }
        if d == "/" {
            return None;
        }
        d = dirname(&d);
    }
}

/// Package directories (top level and scoped) directly in a node_modules dir.
fn packages_in(fs: &dyn RootFs, nm: &str) -> Vec<String> {
    let mut v = Vec::new();
    for n in fs.read_dir(nm) {
        if n.starts_with('.') {
            continue;
        }
        let p = join_path(nm, &n);
        if n.starts_with('@') {
            for s in fs.read_dir(&p) {
                v.push(join_path(&p, &s));
            }
        } else {
            v.push(p);
        }
    }
    v
}

/// The app directories: WorkingDir and the dirs of non-ELF roots, up to the nearest package.json.
fn app_dirs(cx: &Ctx) -> BTreeSet<String> {
    let fs = cx.view.fs;
    let mut starts = Vec::new();
    if let Some(wd) = app_workdir(cx) {
        starts.push(wd);
    }
    for r in cx.view.roots {
        let head = fs.read(r).map(|b| is_elf(&b)).unwrap_or(true);
        if !head && (r.ends_with(".js") || r.ends_with(".mjs") || r.ends_with(".cjs") || shebang(fs, r).is_some_and(|s| s.contains("node"))) {
            starts.push(dirname(r));
        }
    }
    let mut out = BTreeSet::new();
    for s in starts {
        let mut d = s.clone();
        loop {
            if fs.is_file(&join_path(&d, "package.json")) {
                out.insert(d);
                break;
            }
            if d == "/" || d.ends_with("/node_modules") {
                break;
            }
            d = dirname(&d);
        }
    }
    out
}

/// Distribution builds of node (Debian's nodejs) load some builtins from JS files outside the
/// binary ("externalized builtins", e.g. /usr/share/nodejs/cjs-module-lexer/lexer.js) at start-up.
/// The binary names them, so read the paths out of node and libnode themselves.
fn externalized_builtins(cx: &Ctx, acc: &mut Acc) -> usize {
    const PREFIXES: [&[u8]; 2] = [b"/usr/share/nodejs/", b"/usr/lib/nodejs/"];
    let fs = cx.view.fs;
    let mut n = 0;
    for bin in &cx.closure {
        let base = bin.rsplit('/').next().unwrap_or("");
        if !(base == "node" || base == "nodejs" || base.starts_with("libnode.so")) {
            continue;
        }
        let Some(bytes) = fs.read(bin) else { continue };
        for prefix in PREFIXES {
            let mut i = 0;
            while let Some(off) = find(&bytes[i..], prefix) {
                let start = i + off;
                let end = bytes[start..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || b"/._-@+".contains(b)))
                    .map_or(bytes.len(), |e| start + e);
                i = end.max(start + 1);
                let Ok(path) = std::str::from_utf8(&bytes[start..end]) else { continue };
                if !fs.is_file(path) {
                    continue;
                }
                // Keep the module's package directory: the file may load siblings.
                let rest = &path[prefix.len()..];
                let mut parts = rest.split('/');
                let first = parts.next().unwrap_or("");
                let pkg = if first.starts_with('@') {
                    format!("{}{first}/{}", String::from_utf8_lossy(prefix), parts.next().unwrap_or(""))
                } else {
                    format!("{}{first}", String::from_utf8_lossy(prefix))
                };
                acc.keep_glob(fs, &pkg, &format!("node: externalized builtin {path}, loaded by {bin} at start-up"));
                n += 1;
            }
        }
    }
    n
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Absolute paths written as string literals in the apps' own JavaScript (not node_modules).
fn literal_paths(cx: &Ctx, acc: &mut Acc, apps: &BTreeSet<String>) {
    for app in apps {
        let (files, _) = super::list_files(cx.view.fs, app, &["node_modules", ".git"], 20_000);
        for f in files.iter().filter(|f| f.ends_with(".js") || f.ends_with(".mjs") || f.ends_with(".cjs")) {
            let Some(b) = cx.view.fs.read(f).filter(|b| b.len() < 4 << 20) else { continue };
            let scan = super::pyscan::scan(&String::from_utf8_lossy(&b), false);
            super::loader::keep_literal_paths(cx, acc, f, &scan.paths);
        }
    }
}

pub(crate) fn provide(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let builtins = externalized_builtins(cx, acc);
    let apps = app_dirs(cx);
    let mut notes = Vec::new();
    if builtins > 0 {
        notes.push(format!("{builtins} externalized builtin module(s) named by the node binary"));
    }
    if apps.is_empty() {
        // No package.json: keep every node_modules of the WorkingDir whole (nothing to prune by).
        if let Some(wd) = app_workdir(cx) {
            let nm = join_path(&wd, "node_modules");
            if fs.resolve(&nm).is_some() {
                acc.keep_glob(fs, &nm, "node: no package.json next to the app, node_modules kept whole");
                acc.warn(format!("node: no package.json in {wd} or next to the entry script: {nm} kept whole (devDependencies not pruned)"));
            }
        }
        return Some("no app package.json found".into());
    }

    let no_nm = schema::globset(&["**/node_modules".to_string()]).ok()?;
    let mut kept_pkgs: BTreeSet<String> = BTreeSet::new();
    let mut nm_dirs: BTreeSet<String> = BTreeSet::new();
    let mut q: VecDeque<(String, String)> = VecDeque::new(); // (canonical dir, label)
    for app in &apps {
        // The app itself, minus its node_modules (pruned below).
        let reason = format!("node: application directory {app} (package.json)");
        let mut e = Expander::new(fs, &no_nm);
        e.add(app, &reason);
        acc.absorb(e.finish(), false, &reason);
        q.push_back((app.clone(), format!("the app ({app}/package.json)")));
        kept_pkgs.insert(app.clone());
    }
    literal_paths(cx, acc, &apps);
    let mut missing = 0;
    while let Some((dir, label)) = q.pop_front() {
        let pj = join_path(&dir, "package.json");
        let Some(text) = fs.read(&pj) else { continue };
        let deps = match deps_of(&text) {
            Ok(d) => d,
            Err(e) => {
                acc.warn(format!("node: {pj} is not valid package.json ({e}); its dependencies are not followed"));
                continue;
            }
        };
        for (name, required) in deps {
            if !valid_pkg_name(&name) {
                acc.warn(format!("node: {pj} names an invalid package {name:?}; ignored"));
                continue;
            }
            match resolve_pkg(fs, &dir, &name) {
                Some((path, canon)) => {
                    let reason = format!("node: production dependency {name} of {label}");
                    if let Some(r) = fs.resolve(&path) {
                        for s in r.symlinks {
                            acc.keep(s, format!("{reason} (symlink on the way to {canon})"));
                        }
                    }
                    let nm = dirname(&path);
                    let nm = if name.starts_with('@') { dirname(&nm) } else { nm };
                    nm_dirs.insert(nm);
                    if super::SYSTEM_DIRS.contains(&canon.as_str()) {
                        acc.warn(format!("node: package {name} of {label} resolves to the system directory {canon}; ignored"));
                        continue;
                    }
                    if kept_pkgs.insert(canon.clone()) {
                        acc.keep_glob(fs, &canon, &reason);
                        // Native addons are dlopen()ed by require(): their ELF closure is needed.
                        let empty = globset::GlobSet::empty();
                        let mut e = Expander::new(fs, &empty);
                        e.add(&format!("{canon}/**/*.node"), &reason);
                        for (p, _) in e.finish().paths {
                            if fs.lstat(&p) == Some(Node::File) {
                                acc.elf_roots.entry(p).or_insert_with(|| format!("{reason}: native addon, dlopen()ed by require()"));
                            }
                        }
                        q.push_back((canon, name.clone()));
                    }
                }
                None if required => {
                    missing += 1;
                    acc.warn(format!("node: dependency {name} of {label} is not installed (require() fails as before slimming)"));
                }
                None => {}
            }
        }
    }
    // node_modules/.bin entries of kept packages, and dot-dirs (.prisma, .package-lock.json…).
    for app in &apps {
        nm_dirs.insert(join_path(app, "node_modules"));
    }
    for nm in &nm_dirs {
        for n in fs.read_dir(nm) {
            let p = join_path(nm, &n);
            if n == ".bin" {
                for b in fs.read_dir(&p) {
                    let bp = join_path(&p, &b);
                    if let Some(r) = fs.resolve(&bp) {
                        // Owned by a kept package: the nearest package dir, not an app dir
                        // seen through its node_modules.
                        let owned = kept_pkgs.iter().any(|k| {
                            r.path.strip_prefix(&format!("{k}/")).is_some_and(|rest| !rest.contains("node_modules/"))
                        });
                        if owned {
                            acc.keep(bp, "node: .bin entry of a kept package");
                        }
                    }
                }
            } else if n.starts_with('.') && n != ".cache" && n != ".pnpm" {
                acc.keep_glob(fs, &p, &format!("node: {n} in {nm} (generated files, e.g. Prisma client, npm's hidden lockfile)"));
            }
        }
    }
    // What is left for the node-dev-dependencies rule.
    let mut dropped = Vec::new();
    for app in &apps {
        for p in packages_in(fs, &join_path(app, "node_modules")) {
            let canon = fs.resolve(&p).map(|r| r.path).unwrap_or(p.clone());
            if !kept_pkgs.contains(&canon) {
                dropped.push(p.rsplit("node_modules/").next().unwrap_or(&p).to_string());
            }
        }
    }
    if let Some(np) = cx.view.env_get("NODE_PATH") {
        for d in np.split(':').filter(|d| d.starts_with('/')) {
            acc.keep_glob(fs, d, &format!("node: Env NODE_PATH={np}"));
        }
    }
    notes.push(format!("app {}: {} production packages", apps.iter().cloned().collect::<Vec<_>>().join(", "), kept_pkgs.len() - apps.len()));
    if !dropped.is_empty() {
        let shown: Vec<&str> = dropped.iter().take(10).map(String::as_str).collect();
        notes.push(format!(
            "{} top-level packages not in the production closure (devDependencies/extraneous): {}{}",
            dropped.len(),
            shown.join(", "),
            if dropped.len() > 10 { ", …" } else { "" }
        ));
    }
    if missing > 0 {
        notes.push(format!("{missing} missing dependencies"));
    }
    Some(notes.join("; "))
}
