//! What interpreted sources load by name (see `pyscan`), turned into keeps and risks: ctypes'
//! `/sbin/ldconfig` and `/etc/ld.so.cache`, the libraries `find_library`/`CDLL` name, modules
//! `import_module('literal')` names, absolute paths in string literals, and `.pth` files.
use super::pyscan::{LibName, Scan};
use super::servers::expand_all;
use super::SYSTEM_DIRS;
use crate::elf::rootfs::{dirname, join_path};
use crate::elf::Node;
use crate::profile::{Acc, Ctx};
use std::collections::BTreeSet;

/// Directories the dynamic loader searches (ld.so.cache's usual content).
const LIB_DIRS: &[&str] = &[
    "/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];
/// Trees a path literal names without needing all they hold (`os.listdir('/usr/lib')`).
const DISTRO_TREES: &[&str] = &["/usr/", "/lib", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/run", "/tmp", "/var/lib", "/var/cache", "/var/log"];
const FIX_DLOPEN: &str = "--keep GLOB of the library, or --trace";

/// Everything one source file's scan asks for.
pub(crate) fn apply(cx: &Ctx, acc: &mut Acc, file: &str, scan: &Scan, imported: &mut BTreeSet<String>) {
    keep_literal_paths(cx, acc, file, &scan.paths);
    let mut search: Vec<String> = vec![dirname(file)];
    search.extend(cx.view.workdir.map(str::to_string));
    search.extend(cx.view.env_get("PYTHONPATH").unwrap_or_default().split(':').filter(|d| d.starts_with('/')).map(str::to_string));
    search.extend(scan.paths.iter().map(|(_, p)| p.clone()).filter(|p| cx.view.fs.resolve(p).is_some_and(|r| r.node == Node::Dir)));
    for (n, m) in &scan.imports {
        imported.insert(m.split('.').next().unwrap_or(m).to_string());
        literal_import(cx, acc, &format!("{file}:{n}"), m, &search);
    }
    for (n, text) in &scan.imports_dynamic {
        acc.risk("dynamic-import", format!("{file}:{n}"), format!("python: imports a module named at run time: `{text}`"), "--keep GLOB of the modules it may import, or --trace");
    }
    for (n, lib) in &scan.libs {
        library(cx, acc, &format!("{file}:{n}"), lib);
    }
    for (n, text) in &scan.libs_dynamic {
        acc.risk("dlopen", format!("{file}:{n}"), format!("python: ctypes loads a library named at run time: `{text}`"), FIX_DLOPEN);
    }
}

/// `import_module('a.b')`: `a/b.py`, the package `a/b/` or the namespace dir, in the
/// directories the module can come from (the file's own, WorkingDir, PYTHONPATH, literal dirs).
/// Not found there: it is in the stdlib or site-packages, which are kept whole.
fn literal_import(cx: &Ctx, acc: &mut Acc, at: &str, module: &str, search: &[String]) {
    let rel = module.replace('.', "/");
    let reason = format!("python: import_module('{module}') in {at}");
    for d in search {
        for cand in [format!("{rel}.py"), rel.clone()] {
            let p = join_path(d, &cand);
            if cx.view.fs.resolve(&p).is_some() && !SYSTEM_DIRS.contains(&p.as_str()) {
                acc.keep_glob(cx.view.fs, &p, &reason);
                return;
            }
        }
    }
}

/// A library ctypes loads: every file of that name in the loader's directories, as ELF roots.
fn library(cx: &Ctx, acc: &mut Acc, at: &str, lib: &LibName) {
    let fs = cx.view.fs;
    let (pats, what): (Vec<String>, String) = match lib {
        LibName::Short(n) => (LIB_DIRS.iter().map(|d| format!("{d}/lib{n}.so*")).collect(), format!("find_library('{n}')")),
        LibName::File(p) if p.starts_with('/') => (vec![p.clone()], format!("CDLL('{p}')")),
        LibName::File(f) => (LIB_DIRS.iter().map(|d| join_path(d, f)).collect(), format!("CDLL('{f}')")),
    };
    let reason = format!("python: {what} in {at}");
    let mut found = 0;
    for p in pats.iter().flat_map(|p| expand_all(fs, p)) {
        if let Some(r) = fs.resolve(&p).filter(|r| r.node == Node::File) {
            acc.keep_glob(fs, &p, &reason);
            acc.elf_root(r.path, reason.clone());
            found += 1;
        }
    }
    if found == 0 {
        acc.risk("dlopen", at, format!("python: {what} names a library that is in no library directory of the image, and no profile knows it"), FIX_DLOPEN);
    }
}

/// Absolute paths the source names that exist in the image. A directory is kept whole unless
/// it is a distribution tree (`/usr/lib`, `/etc`…).
pub(crate) fn keep_literal_paths(cx: &Ctx, acc: &mut Acc, file: &str, paths: &[(usize, String)]) {
    let fs = cx.view.fs;
    for (n, p) in paths {
        let Some(r) = fs.resolve(p) else { continue };
        let distro = |q: &str| SYSTEM_DIRS.contains(&q) || DISTRO_TREES.iter().any(|t| q.starts_with(t));
        if r.node == Node::Dir && (distro(&r.path) || distro(p)) {
            continue;
        }
        acc.keep_glob(fs, p, &format!("path literal in {file}:{n}"));
    }
}

/// ctypes.util.find_library runs `/sbin/ldconfig -p`, which reads `/etc/ld.so.cache`: without
/// them it returns None and `CDLL(None)` loads nothing the app wanted.
pub(crate) fn keep_ldconfig(cx: &Ctx, acc: &mut Acc) {
    let fs = cx.view.fs;
    let reason = "python: the app imports ctypes (find_library runs /sbin/ldconfig -p, which reads /etc/ld.so.cache)";
    for p in ["/sbin/ldconfig", "/sbin/ldconfig.real", "/etc/ld.so.cache", "/etc/ld.so.conf"] {
        let Some(r) = fs.resolve(p).filter(|r| r.node == Node::File) else { continue };
        acc.keep_glob(fs, p, reason);
        match fs.read(&r.path) {
            Some(b) if b.starts_with(b"\x7fELF") => acc.elf_root(r.path, reason),
            Some(b) if b.starts_with(b"#!") => {
                let line = String::from_utf8_lossy(&b[2..b.len().min(256)]).lines().next().unwrap_or_default().to_string();
                if let Some(i) = line.split_whitespace().next().filter(|i| fs.resolve(i).is_some()) {
                    acc.elf_root(i.to_string(), format!("interpreter of {p} ({reason})"));
                }
            }
            _ => {}
        }
    }
}

/// `.pth` files in a kept site directory (or its `site-packages`/`dist-packages`): the
/// directories their lines name are on sys.path.
pub(crate) fn pth_dirs(cx: &Ctx, acc: &mut Acc, dir: &str) {
    let fs = cx.view.fs;
    let pths = ["*.pth", "site-packages/*.pth", "dist-packages/*.pth"].iter().flat_map(|p| expand_all(fs, &join_path(dir, p)));
    for pth in pths.collect::<Vec<_>>() {
        let site = dirname(&pth);
        let Some(b) = fs.read(&pth) else { continue };
        for line in String::from_utf8_lossy(&b).lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with("import ") || line.starts_with("import\t") {
                continue;
            }
            let p = if line.starts_with('/') { line.to_string() } else { join_path(&site, line) };
            if fs.resolve(&p).is_some_and(|r| r.node == Node::Dir && !SYSTEM_DIRS.contains(&r.path.as_str())) {
                acc.keep_glob(fs, &p, &format!("python: on sys.path through {pth}"));
            }
        }
    }
}
