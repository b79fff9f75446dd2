//! python: the interpreter's stdlib and lib-dynload (per interpreter found in the closure, any
//! prefix), site/dist-packages, venvs, PYTHONPATH; packaging tools only when the app imports
//! them; warnings for dynamic imports.
use std::collections::BTreeSet;

use super::{app_workdir, keep_lib_tree, list_files, loader, pyscan, shebang};
use crate::elf::rootfs::dirname;
use crate::elf::Node;
use crate::profile::schema::ProfileFile;
use crate::profile::{schema, Acc, Ctx};

/// Entries that python.toml's `keep.exclude` removes from site/dist-packages, let back in when
/// the app imports the module (by exclude-pattern suffix).
pub const PACKAGING: &[(&str, &[&str])] = &[
    ("pip", &["/pip", "/pip-*.dist-info", "/bin/pip", "/bin/pip[0-9]*"]),
    ("setuptools", &["/setuptools", "/setuptools-*.dist-info", "/_distutils_hack", "/distutils-precedence.pth", "/pkg_resources"]),
    ("pkg_resources", &["/pkg_resources", "/setuptools", "/setuptools-*.dist-info"]),
    ("wheel", &["/wheel", "/wheel-*.dist-info"]),
];

/// `pythonX.Y` (not `python3-config` etc.) → "X.Y".
fn version_of(base: &str) -> Option<String> {
    let v = base.strip_prefix("python")?;
    let v = v.strip_suffix('m').unwrap_or(v); // python3.7m
    let mut it = v.split('.');
    let (a, b) = (it.next()?, it.next()?);
    if it.next().is_none() && !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
        Some(format!("{a}.{b}"))
    } else {
        None
    }
}

/// (prefix, version) of every interpreter in the closure: `P/bin/pythonX.Y` or `P/lib*/libpythonX.Y.so*`.
fn interpreters(cx: &Ctx) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for p in &cx.closure {
        let base = p.rsplit('/').next().unwrap_or(p);
        if let Some(v) = version_of(base) {
            if cx.view.fs.is_file(p) {
                out.insert((dirname(&dirname(p)), v));
            }
        } else if let Some(rest) = base.strip_prefix("libpython") {
            let v = rest.split(".so").next().unwrap_or("");
            if let Some(v) = version_of(&format!("python{v}")) {
                out.insert((dirname(&dirname(p)), v));
            }
        }
    }
    out
}

/// Top-level module names imported by Python source (`import a.b, c as d`, `from x.y import z`),
/// and the first line using dynamic imports, if any. Best effort: line based, no parser.
pub fn scan_imports(src: &str) -> (BTreeSet<String>, Option<(usize, String)>) {
    let mut mods = BTreeSet::new();
    let mut dynamic = None;
    for (i, raw) in src.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("import ") {
            for part in rest.split(',') {
                let name = part.split_whitespace().next().unwrap_or("");
                let top = name.split('.').next().unwrap_or("").trim_matches(|c| c == '(' || c == ')');
                if is_ident(top) {
                    mods.insert(top.to_string());
                }
            }
        } else if let Some(rest) = line.strip_prefix("from ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            if !name.starts_with('.') {
                let top = name.split('.').next().unwrap_or("");
                if is_ident(top) {
                    mods.insert(top.to_string());
                }
            }
        }
        if dynamic.is_none()
            && (line.contains("importlib") || line.contains("__import__(") || line.contains("exec(") || line.contains("import_module("))
        {
            dynamic = Some((i + 1, line.chars().take(120).collect()));
        }
    }
    (mods, dynamic)
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !s.as_bytes()[0].is_ascii_digit()
}

/// The app's Python sources: non-ELF roots that are Python scripts, and `*.py` under WorkingDir.
fn app_sources(cx: &Ctx) -> (Vec<String>, bool) {
    let fs = cx.view.fs;
    let mut files = Vec::new();
    for r in cx.view.roots {
        let is_py = r.ends_with(".py") || shebang(fs, r).is_some_and(|s| s.contains("python"));
        if is_py && fs.is_file(r) {
            files.push(r.clone());
        }
    }
    let mut truncated = false;
    if let Some(wd) = app_workdir(cx) {
        let skip = ["node_modules", "site-packages", "dist-packages", ".git", "__pycache__", ".venv", "venv"];
        let (all, t) = list_files(fs, &wd, &skip, 20_000);
        truncated = t;
        files.extend(all.into_iter().filter(|f| f.ends_with(".py")));
    }
    files.sort();
    files.dedup();
    (files, truncated)
}

/// A venv root: `VIRTUAL_ENV`, `V` for a root `V/bin/…`, or a `V/bin` in PATH, with `V/pyvenv.cfg`.
fn venvs(cx: &Ctx) -> BTreeSet<String> {
    let fs = cx.view.fs;
    let mut out = BTreeSet::new();
    let mut cands: Vec<String> = cx.view.env_get("VIRTUAL_ENV").into_iter().map(str::to_string).collect();
    for r in cx.view.roots {
        cands.push(dirname(&dirname(r)));
    }
    if let Some(path) = cx.view.env_get("PATH") {
        for d in path.split(':').filter(|d| d.starts_with('/') && d.ends_with("/bin")) {
            cands.push(dirname(d));
        }
    }
    for c in cands {
        if fs.is_file(&format!("{c}/pyvenv.cfg")) {
            if let Some(r) = fs.resolve(&c) {
                out.insert(r.path);
            }
        }
    }
    out
}

pub(crate) fn provide(cx: &Ctx, acc: &mut Acc, profile: &ProfileFile) -> Option<String> {
    let fs = cx.view.fs;
    let mut notes = Vec::new();

    // What the app imports decides whether packaging tools stay.
    let (sources, truncated) = app_sources(cx);
    let mut imported = BTreeSet::new();
    let mut ctypes = false;
    for f in &sources {
        let Some(b) = fs.read(f) else { continue };
        let text = String::from_utf8_lossy(&b);
        imported.extend(scan_imports(&text).0);
        let scan = pyscan::scan(&text, true);
        ctypes |= scan.ctypes;
        loader::apply(cx, acc, f, &scan, &mut imported);
    }
    if ctypes {
        loader::keep_ldconfig(cx, acc);
    }
    if truncated {
        acc.warn("python: more than 20000 files under WorkingDir; the import scan is partial");
    }
    let mut exclude_pats = profile.keep.exclude.clone();
    let mut let_in = Vec::new();
    for (module, suffixes) in PACKAGING {
        if imported.contains(*module) {
            let_in.push(*module);
            exclude_pats.retain(|e| !suffixes.iter().any(|s| e.ends_with(s)));
        }
    }
    if !let_in.is_empty() {
        notes.push(format!("app imports {} (kept)", let_in.join(", ")));
    }
    let Ok(exclude) = schema::globset(&exclude_pats) else { return None };

    let keep_dir = |acc: &mut Acc, dir: &str, reason: &str| {
        keep_lib_tree(fs, acc, dir, reason, &exclude, "Python extension module, dlopen()ed at import");
        loader::pth_dirs(cx, acc, dir);
    };

    for (prefix, v) in interpreters(cx) {
        let pre = if prefix == "/" { String::new() } else { prefix.clone() };
        for lib in ["lib", "lib64"] {
            let std = format!("{pre}/{lib}/python{v}");
            if fs.resolve(&std).is_some_and(|r| r.node == Node::Dir && r.symlinks.is_empty()) {
                keep_dir(acc, &std, &format!("python {v} stdlib of the interpreter in {prefix}"));
                notes.push(format!("stdlib {std}"));
            }
        }
        // Debian's dist-packages (python3-* packages).
        let major = v.split('.').next().unwrap_or("3");
        let deb = format!("{pre}/lib/python{major}/dist-packages");
        if fs.resolve(&deb).is_some_and(|r| r.node == Node::Dir) {
            keep_dir(acc, &deb, &format!("python {v} dist-packages"));
        }
        if prefix == "/usr" {
            for local in [format!("/usr/local/lib/python{v}"), format!("/usr/local/lib/python{major}/dist-packages")] {
                if fs.resolve(&local).is_some_and(|r| r.node == Node::Dir) {
                    keep_dir(acc, &local, &format!("python {v} packages in /usr/local (on sys.path of {prefix}/bin/python{v})"));
                }
            }
        }
    }
    for v in venvs(cx) {
        keep_dir(acc, &v, "Python virtual environment (pyvenv.cfg)");
        notes.push(format!("venv {v}"));
    }
    if let Some(pp) = cx.view.env_get("PYTHONPATH") {
        for d in pp.split(':').filter(|d| d.starts_with('/')) {
            if fs.resolve(d).is_some() {
                keep_dir(acc, d, &format!("Env PYTHONPATH={pp}"));
            }
        }
    }
    for f in &sources {
        acc.keep(f.clone(), "python: application source (import scan)");
    }
    if notes.is_empty() {
        None
    } else {
        Some(notes.join(", "))
    }
}
