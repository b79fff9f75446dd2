//! The profile stage on real data: the cached Debian bookworm rootfs (python3, openssl…), a real
//! CPython install (pyenv), a real `npm install` from the npm registry, and Debian's real nginx
//! configuration (`apt-get download nginx-common`). Tools or caches missing: skip loudly, or
//! fail under CI=true.
mod common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use imgslim::elf::HostDir;
use imgslim::profile::{drop_rules, evaluate, ImageView, Needs, ProfileSet};

const GLIBC_KEY: &str = "bookworm-minbase-v1";
const GLIBC_PKGS: &[&str] = &["python3", "openssl", "libsqlite3-0", "libcurl4"];

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Missing tool: fail under CI=true, otherwise skip loudly (shared helper).
fn need(tool: &str) -> bool {
    common::have_tool(tool)
}

fn cache_parent() -> PathBuf {
    std::env::var_os("IMGSLIM_TEST_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/imgslim-test/elf-rootfs"))
}

/// The cached Debian rootfs (built once by tests/support/build-glibc-rootfs.sh, shared with the
/// elf tests: same key, same lock).
fn debian() -> Option<PathBuf> {
    let dir = cache_parent().join(GLIBC_KEY);
    if !dir.join(".imgslim-complete").exists() {
        if !need("debootstrap") || !need("chroot") {
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/build-glibc-rootfs.sh");
        let st = Command::new("sh").arg(script).arg(cache_parent()).arg(GLIBC_KEY).args(GLIBC_PKGS).status().unwrap();
        assert!(st.success(), "building the Debian test rootfs failed");
    }
    Some(dir)
}

fn strings(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn run_eval(root: &Path, env: &[(&str, &str)], roots: &[&str], wd: Option<&str>, forced: &[&str]) -> (ProfileSet, Needs) {
    let fs = HostDir::new(root);
    let set = ProfileSet::builtin().unwrap();
    let env = strings(env);
    let roots: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
    let forced: Vec<String> = forced.iter().map(|s| s.to_string()).collect();
    let view = ImageView { fs: &fs, env: &env, roots: &roots, workdir: wd, user: None };
    let n = evaluate(&set, &forced, &view).unwrap();
    (set, n)
}

/// Is `p` kept: listed, or below a kept directory?
fn is_kept(n: &Needs, p: &str) -> bool {
    n.keep.iter().any(|k| k.path == p || p.starts_with(&format!("{}/", k.path)))
}

fn applied(n: &Needs, name: &str) -> bool {
    n.applied.iter().any(|a| a.name == name)
}

fn elf_root(n: &Needs, p: &str) -> bool {
    n.elf_roots.iter().any(|k| k.path == p)
}

/// No kept file is claimed by a drop rule (other than the catch-alls listed).
fn assert_no_overlap(root: &Path, n: &Needs, rules: &[imgslim::profile::DropRule], catch_alls: &[&str]) {
    let mut overlap = Vec::new();
    let mut kept = 0;
    for p in tree(root).keys() {
        if is_kept(n, p) {
            kept += 1;
            if let Some(r) = rules.iter().find(|r| r.matches(p) && !catch_alls.contains(&r.name.as_str())) {
                overlap.push(format!("{p} ({})", r.name));
            }
        }
    }
    assert!(kept > 0);
    assert!(overlap.is_empty(), "kept and claimed by a drop rule: {overlap:#?}");
}

/// Every non-directory entry of a host tree, as image paths, with sizes.
fn tree(root: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false).into_iter().filter_map(Result::ok) {
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(root).unwrap();
        let size = e.metadata().map(|m| m.len()).unwrap_or(0);
        m.insert(format!("/{}", rel.display()), size);
    }
    m
}

#[test]
fn debian_base_glibc_python() {
    let Some(root) = debian() else { return };
    let (set, n) = run_eval(&root, &[("PATH", "/usr/local/bin:/usr/bin:/bin")], &["/usr/bin/python3.11"], Some("/"), &[]);
    for p in ["base", "glibc", "python", "tzdata"] {
        assert!(applied(&n, p), "{p} not applied: {:?}", n.applied);
    }
    assert!(!applied(&n, "node") && !applied(&n, "musl") && !applied(&n, "jvm") && !applied(&n, "nginx"), "{:?}", n.applied);
    let why = |name: &str| n.applied.iter().find(|a| a.name == name).unwrap().why.clone();
    assert!(why("python").contains("/usr/bin/python3.11"), "{}", why("python"));
    // base
    // (debootstrap writes no /etc/hosts: the runtime bind-mounts it.)
    assert!(!root.join("etc/hosts").exists());
    for p in ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/nsswitch.conf", "/etc/resolv.conf", "/etc/hostname", "/etc/os-release", "/usr/lib/os-release", "/etc/localtime", "/usr/share/zoneinfo/Etc/UTC", "/etc/ld.so.cache"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    assert!(n.keep_dirs.iter().any(|k| k.path == "/tmp"));
    assert!(!is_kept(&n, "/usr/share/zoneinfo/Asia/Tokyo"));
    // glibc: bookworm (glibc 2.36) has files/dns built in, but still ships the stub .so files.
    assert!(elf_root(&n, "/usr/lib/x86_64-linux-gnu/libnss_files.so.2"), "{:?}", n.elf_roots.iter().filter(|k| k.path.contains("nss")).collect::<Vec<_>>());
    assert!(elf_root(&n, "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"));
    assert!(!elf_root(&n, "/usr/lib/x86_64-linux-gnu/libnss_hesiod.so.2"), "not named in nsswitch.conf");
    // nsswitch.conf names `db` and `nis`, whose modules bookworm minbase does not ship.
    assert!(n.warnings.iter().any(|w| w.contains("'nis'")), "{:#?}", n.warnings);
    assert!(n.warnings.iter().any(|w| w.contains("gconv")), "{:#?}", n.warnings);
    assert!(!is_kept(&n, "/usr/lib/x86_64-linux-gnu/gconv/IBM1047.so"));
    // python: stdlib kept in clean pieces, its test dir excluded, lib-dynload in elf_roots.
    for p in ["/usr/lib/python3.11/os.py", "/usr/lib/python3.11/json/__init__.py", "/usr/lib/python3.11/encodings/utf_8.py", "/usr/lib/python3/dist-packages"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    assert!(n.keep.iter().any(|k| k.path == "/usr/lib/python3.11/json"), "clean dirs are one entry");
    assert!(!n.keep.iter().any(|k| k.path == "/usr/lib/python3.11"), "not whole: test/ is excluded");
    let test_files: Vec<String> = tree(&root.join("usr/lib/python3.11/test")).into_keys().map(|p| format!("/usr/lib/python3.11/test{p}")).collect();
    assert!(!test_files.is_empty(), "bookworm's python3.11 ships a few files in test/");
    for t in &test_files {
        assert!(!is_kept(&n, t), "{t} kept");
    }
    let dynload: Vec<String> = std::fs::read_dir(root.join("usr/lib/python3.11/lib-dynload")).unwrap().map(|e| format!("/usr/lib/python3.11/lib-dynload/{}", e.unwrap().file_name().to_string_lossy())).collect();
    assert!(dynload.len() > 30);
    for d in dynload.iter().filter(|d| d.ends_with(".so")) {
        assert!(elf_root(&n, d), "{d} not an elf root");
    }
    assert!(elf_root(&n, "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"));
    // python3.11 itself does not link libssl; its _ssl module does: openssl applies in round 2.
    assert!(why("openssl").contains("programs other profiles keep"), "{}", why("openssl"));
    assert!(elf_root(&n, "/usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so"));
    assert!(elf_root(&n, "/usr/lib/x86_64-linux-gnu/engines-3/padlock.so"));
    assert!(is_kept(&n, "/usr/lib/ssl/openssl.cnf") && is_kept(&n, "/etc/ssl/openssl.cnf"));
    // Kept paths and drop rules never overlap (keep wins, but the rules should not claim them).
    let rules = drop_rules(&set, &n.applied);
    let files = tree(&root);
    let kept_bytes: u64 = files.iter().filter(|(p, _)| is_kept(&n, p)).map(|(_, s)| s).sum();
    let py_bytes: u64 = files.iter().filter(|(p, _)| p.starts_with("/usr/lib/python3.11/")).map(|(_, s)| s).sum();
    let py_kept: u64 = files.iter().filter(|(p, _)| p.starts_with("/usr/lib/python3.11/") && is_kept(&n, p)).map(|(_, s)| s).sum();
    eprintln!(
        "debian python3.11: {} keep entries, {} elf_roots, {} keep_dirs, {} warnings; profiles keep {kept_bytes} bytes (before ELF closure); stdlib {py_kept} of {py_bytes} bytes",
        n.keep.len(), n.elf_roots.len(), n.keep_dirs.len(), n.warnings.len()
    );
    for a in &n.applied {
        eprintln!("applied {}", a.why);
    }
    for w in &n.warnings {
        eprintln!("warning {w}");
    }
    let mut overlap = Vec::new();
    for p in files.keys() {
        if is_kept(&n, p) {
            if let Some(r) = rules.iter().find(|r| r.matches(p) && r.name != "tzdata-unused-zones") {
                overlap.push(format!("{p} ({})", r.name));
            }
        }
    }
    // /usr/share/zoneinfo/Etc/UTC is kept by /etc/localtime and claimed by tzdata-unused-zones:
    // that rule is a catch-all below the kept zone by design (checked separately).
    assert!(overlap.is_empty(), "kept and claimed by a drop rule: {overlap:#?}");
    let tz = rules.iter().find(|r| r.name == "tzdata-unused-zones").unwrap();
    assert!(tz.matches("/usr/share/zoneinfo/Asia/Tokyo"));
}

#[test]
fn debian_drop_rules_match_what_they_claim() {
    let Some(root) = debian() else { return };
    let set = ProfileSet::builtin().unwrap();
    let rules = drop_rules(&set, &[]);
    let files = tree(&root);
    let mut bytes: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    let mut total = (0usize, 0u64);
    for (p, size) in &files {
        if let Some(r) = rules.iter().find(|r| r.matches(p)) {
            let e = bytes.entry(r.name.as_str()).or_default();
            e.0 += 1;
            e.1 += size;
            if !r.distroless_only {
                total.0 += 1;
                total.1 += size;
            }
        }
    }
    for (name, (n, b)) in &bytes {
        eprintln!("rule {name:24} {n:6} files {b:>10} bytes");
    }
    eprintln!("base rules (not distroless_only), first match: {} files, {} bytes of {} files", total.0, total.1, files.len());
    let m = |name: &str, p: &str| rules.iter().find(|r| r.name == name).unwrap().matches(p);
    // Each rule claims real files of this rootfs…
    for name in ["apt-lists", "docs", "man", "locales-unused", "dpkg", "apt", "logs"] {
        assert!(bytes.get(name).is_some_and(|x| x.0 > 0), "{name} matched nothing");
    }
    assert!(files.contains_key("/usr/share/doc/bash/copyright"));
    assert!(!m("docs", "/usr/share/doc/bash/copyright"), "copyright files are kept");
    let changelog = files.keys().find(|p| p.starts_with("/usr/share/doc/") && p.ends_with("changelog.Debian.gz")).unwrap();
    assert!(m("docs", changelog));
    assert!(files.contains_key("/var/lib/dpkg/status"));
    assert!(m("dpkg", "/var/lib/dpkg/status"));
    assert!(rules.iter().find(|r| r.name == "dpkg").unwrap().distroless_only);
    assert!(m("apt", "/usr/bin/apt-get"));
    assert!(m("man", files.keys().find(|p| p.starts_with("/usr/share/man/man1/")).unwrap()));
    assert!(files.contains_key("/usr/share/locale/de/LC_MESSAGES/dpkg.mo"));
    assert!(m("locales-unused", "/usr/share/locale/de/LC_MESSAGES/dpkg.mo"));
    assert!(!m("locales-unused", "/usr/share/locale/locale.alias"));
    // …and none claims what every image needs.
    for p in ["/etc/passwd", "/etc/nsswitch.conf", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/python3.11", "/usr/lib/python3.11/os.py", "/tmp", "/var/log", "/var/lib/dpkg", "/usr/lib/os-release", "/etc/ssl/certs/ca-certificates.crt"] {
        assert!(!rules.iter().any(|r| r.matches(p)), "{p} claimed by {:?}", rules.iter().find(|r| r.matches(p)).map(|r| &r.name));
    }
    // Synthetic paths for the caches this rootfs does not have.
    for (name, p) in [
        ("pip-cache", "/root/.cache/pip/http/a/b"),
        ("npm-cache", "/home/node/.npm/_cacache/index-v5/x"),
        ("yarn-cache", "/usr/local/share/.cache/yarn/v6/x"),
        ("go-build-cache", "/root/.cache/go-build/ab/cd"),
        ("cargo-registry-cache", "/usr/local/cargo/.cargo/registry/cache/x.crate"),
        ("tmp", "/tmp/build/x.o"),
        ("apk-cache", "/var/cache/apk/APKINDEX.tar.gz"),
        ("static-libs", "/usr/lib/x86_64-linux-gnu/libc.a"),
        ("libtool", "/usr/lib/libfoo.la"),
        ("pkgconfig", "/usr/lib/x86_64-linux-gnu/pkgconfig/zlib.pc"),
        ("headers", "/usr/include/stdio.h"),
        ("dpkg-old", "/var/lib/dpkg/status-old"),
        ("apk", "/lib/apk/db/installed"),
    ] {
        assert!(m(name, p), "{name} does not match {p}");
    }
    assert!(bytes.values().map(|x| x.1).sum::<u64>() > 50_000_000, "{bytes:?}");
}

#[test]
fn debian_locale_and_timezone_from_env() {
    let Some(root) = debian() else { return };
    let (_, n) = run_eval(&root, &[("LANG", "C.UTF-8"), ("TZ", ":Europe/Paris"), ("LANGUAGE", "fr:de")], &["/usr/bin/python3.11"], None, &[]);
    assert!(is_kept(&n, "/usr/lib/locale/C.utf8/LC_CTYPE"), "C.UTF-8 compiled locale");
    assert!(is_kept(&n, "/usr/share/zoneinfo/Europe/Paris"));
    assert!(!is_kept(&n, "/usr/share/zoneinfo/Europe/Berlin"));
    assert!(n.drop_exclusions.iter().any(|k| k.path == "/usr/share/locale/fr"), "{:?}", n.drop_exclusions);
    assert!(n.drop_exclusions.iter().any(|k| k.path == "/usr/share/locale/de"));
    assert!(!n.drop_exclusions.iter().any(|k| k.path == "/usr/share/locale/es"));

    let (_, n) = run_eval(&root, &[("LANG", "de_DE.UTF-8"), ("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")], &["/usr/bin/python3.11"], None, &["tzdata-all"]);
    assert!(n.warnings.iter().any(|w| w.contains("de_DE.UTF-8") && w.contains("no compiled locale")), "{:#?}", n.warnings);
    assert!(n.keep.iter().any(|k| k.path == "/usr/share/zoneinfo"), "tzdata-all keeps the whole database");
    assert!(applied(&n, "tzdata-all"));

    let (_, n) = run_eval(&root, &[("LC_CTYPE", "ja_JP.EUC-JP")], &["/usr/bin/python3.11"], None, &[]);
    assert!(elf_root(&n, "/usr/lib/x86_64-linux-gnu/gconv/EUC-JP.so"), "non-UTF-8 codeset keeps gconv");
    assert!(is_kept(&n, "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules"));
    let (_, n) = run_eval(&root, &[("TZ", "Nowhere/Land")], &["/usr/bin/python3.11"], None, &[]);
    assert!(n.warnings.iter().all(|w| !w.contains("User")));
    assert!(n.warnings.iter().any(|w| w.contains("Nowhere/Land")));
    assert!(!is_kept(&n, "/usr/lib/locale/C.utf8"), "no LANG: no locale data");
}

fn pyenv() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    let p = home.join(".pyenv/versions/3.11.7");
    if !p.join("bin/python3.11").exists() {
        assert!(!ci(), "CI=true but the pyenv CPython 3.11.7 is missing");
        eprintln!("SKIP: no pyenv 3.11.7");
        return None;
    }
    Some(p)
}

/// A full upstream CPython install (with test/, idlelib, tkinter, ensurepip, lib2to3, config,
/// pip and setuptools) used as an image rooted at its prefix: /bin/python3.11, /lib/python3.11.
#[test]
fn cpython_full_install_excludes() {
    let Some(py) = pyenv() else { return };
    let (set, n) = run_eval(&py, &[], &["/bin/python3.11"], None, &[]);
    assert!(applied(&n, "python"));
    let lib = "/lib/python3.11";
    for p in ["os.py", "json/__init__.py", "unittest/case.py", "asyncio/base_events.py", "lib-dynload/_json.cpython-311-x86_64-linux-gnu.so"] {
        assert!(is_kept(&n, &format!("{lib}/{p}")), "{p} not kept");
    }
    for p in ["test/test_os.py", "idlelib/idle.py", "tkinter/__init__.py", "turtledemo/__main__.py", "ensurepip/__init__.py", "lib2to3/main.py", "unittest/test/test_case.py", "site-packages/pip/__init__.py", "site-packages/setuptools/__init__.py", "site-packages/_distutils_hack/__init__.py", "site-packages/distutils-precedence.pth"] {
        let full = format!("{lib}/{p}");
        assert!(py.join(full.trim_start_matches('/')).exists(), "{full} missing from the real install");
        assert!(!is_kept(&n, &full), "{full} kept");
    }
    let config = std::fs::read_dir(py.join("lib/python3.11")).unwrap().filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).find(|n| n.starts_with("config-3.11")).unwrap();
    assert!(!is_kept(&n, &format!("{lib}/{config}/Makefile")));
    let tk = n.elf_roots.iter().filter(|k| k.path.contains("_tkinter")).count();
    assert_eq!(tk, 0);
    assert!(n.elf_roots.iter().filter(|k| k.path.starts_with("/lib/python3.11/lib-dynload/")).count() > 40);
    // The python drop rules claim exactly the excluded parts.
    let rules = drop_rules(&set, &n.applied);
    let by = |p: &str| rules.iter().find(|r| r.matches(p)).map(|r| r.name.clone());
    assert_eq!(by("/lib/python3.11/test/test_os.py").as_deref(), Some("python-tests"));
    assert_eq!(by("/lib/python3.11/idlelib/idle.py").as_deref(), Some("python-idle-tkinter"));
    assert_eq!(by("/lib/python3.11/ensurepip/__init__.py").as_deref(), Some("python-ensurepip"));
    assert_eq!(by("/lib/python3.11/site-packages/pip/__init__.py").as_deref(), Some("python-packaging-tools"));
    assert_eq!(by(&format!("/lib/python3.11/{config}/Makefile")).as_deref(), Some("python-build-config"));
    assert_eq!(by("/bin/pip3"), Some("python-packaging-tools".into()));
    assert_eq!(by("/lib/python3.11/os.py"), None);
    assert_eq!(by("/lib/python3.11/unittest/case.py"), None);
    assert_eq!(by("/lib/python3.11/turtle.py").as_deref(), Some("python-idle-tkinter"));
    assert!(!is_kept(&n, "/lib/python3.11/turtle.py"));
    assert_no_overlap(&py, &n, &rules, &[]);
}

/// An app that imports pip keeps it; an app importing a name built at run time is a risk.
#[test]
fn python_app_imports_decide_packaging_tools() {
    let Some(py) = pyenv() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let lib = r.join("usr/local/lib/python3.11");
    std::fs::create_dir_all(lib.join("site-packages")).unwrap();
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    std::fs::copy(py.join("bin/python3.11"), r.join("usr/local/bin/python3.11")).unwrap();
    std::fs::copy(py.join("lib/python3.11/os.py"), lib.join("os.py")).unwrap();
    let st = Command::new("cp").arg("-a").arg(py.join("lib/python3.11/site-packages/pip")).arg(lib.join("site-packages/")).status().unwrap();
    assert!(st.success());
    std::fs::create_dir_all(r.join("app")).unwrap();
    std::fs::write(r.join("app/main.py"), "import json\nfrom pip._internal.cli.main import main\n").unwrap();
    let (_, n) = run_eval(r, &[], &["/usr/local/bin/python3.11", "/app/main.py"], Some("/app"), &[]);
    assert!(is_kept(&n, "/usr/local/lib/python3.11/site-packages/pip/__init__.py"), "imported pip is kept");
    assert!(is_kept(&n, "/app/main.py"));
    assert!(n.warnings.iter().all(|w| !w.contains("dynamically")));
    std::fs::write(r.join("app/main.py"), "import importlib\nm = importlib.import_module('plugins.' + name)\n").unwrap();
    let (_, n) = run_eval(r, &[], &["/usr/local/bin/python3.11"], Some("/app"), &[]);
    assert!(!is_kept(&n, "/usr/local/lib/python3.11/site-packages/pip/__init__.py"));
    // A name built at run time is a risk naming file and line.
    assert!(n.risks.iter().any(|r| r.kind == "dynamic-import" && r.at == "/app/main.py:2" && r.fix.contains("--trace")), "{:#?}", n.risks);
}

/// A real `npm install` (registry): prod deps with a nested and a scoped package, a devDependency.
#[test]
fn node_production_closure_from_real_npm_install() {
    if !need("npm") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let app = r.join("srv/app");
    std::fs::create_dir_all(&app).unwrap();
    // debug@2.6.9 needs ms@2.0.0; the devDependency ms@2.1.3 takes the top level, so npm nests
    // ms@2.0.0 under debug/node_modules.
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"app","version":"1.0.0","private":true,
            "dependencies":{"debug":"2.6.9","@isaacs/string-locale-compare":"1.1.0","mkdirp":"1.0.4"},
            "optionalDependencies":{"not-installed-optional-xyz":"*"},
            "devDependencies":{"ms":"2.1.3","is-number":"7.0.0","semver":"7.6.3"}}"#
            .replace("\"optionalDependencies\":{\"not-installed-optional-xyz\":\"*\"},", ""),
    )
    .unwrap();
    std::fs::write(app.join("index.js"), "require('debug')('app')('hi')\n").unwrap();
    let out = Command::new("npm").args(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix"]).arg(&app).output().unwrap();
    assert!(out.status.success(), "npm install failed: {}", String::from_utf8_lossy(&out.stderr));
    for p in ["node_modules/debug/node_modules/ms/package.json", "node_modules/ms/package.json", "node_modules/is-number/package.json", "node_modules/@isaacs/string-locale-compare/package.json"] {
        assert!(app.join(p).exists(), "npm did not lay out {p}");
    }
    // A node binary (any ELF named node) and a global npm.
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::copy("/bin/true", r.join("usr/bin/node")).unwrap();
    std::fs::create_dir_all(r.join("usr/local/lib/node_modules/npm/bin")).unwrap();
    std::fs::write(r.join("usr/local/lib/node_modules/npm/bin/npm-cli.js"), "").unwrap();
    std::fs::write(r.join("usr/local/lib/node_modules/npm/package.json"), r#"{"name":"npm","bin":{"npm":"bin/npm-cli.js"}}"#).unwrap();
    let (set, n) = run_eval(r, &[("NODE_ENV", "production")], &["/usr/bin/node", "/srv/app/index.js"], Some("/srv/app"), &[]);
    assert!(applied(&n, "node"), "{:?}", n.applied);
    for p in ["/srv/app/index.js", "/srv/app/package.json", "/srv/app/node_modules/debug/src/index.js", "/srv/app/node_modules/debug/node_modules/ms/index.js", "/srv/app/node_modules/@isaacs/string-locale-compare/index.js", "/srv/app/node_modules/.package-lock.json", "/srv/app/node_modules/.bin/mkdirp", "/srv/app/node_modules/mkdirp/bin/cmd.js"] {
        assert!(is_kept(&n, p), "{p} not kept: {:#?}", n.keep);
    }
    assert!(app.join("node_modules/.bin/semver").symlink_metadata().is_ok());
    for p in ["/srv/app/node_modules/ms/index.js", "/srv/app/node_modules/is-number/index.js", "/srv/app/node_modules/.bin/semver", "/usr/local/lib/node_modules/npm/bin/npm-cli.js"] {
        assert!(!is_kept(&n, p), "{p} kept");
    }
    let why = &n.applied.iter().find(|a| a.name == "node").unwrap().why;
    assert!(why.contains("3 top-level packages not in the production closure"), "{why}");
    let rules = drop_rules(&set, &n.applied);
    let by = |p: &str| rules.iter().find(|r| r.matches(p)).map(|r| r.name.clone());
    assert_eq!(by("/srv/app/node_modules/ms/index.js").as_deref(), Some("node-dev-dependencies"));
    assert_eq!(by("/usr/local/lib/node_modules/npm/bin/npm-cli.js").as_deref(), Some("npm"));
    // Running npm itself (CMD npm start) keeps it.
    let (_, n) = run_eval(r, &[], &["/usr/bin/node", "/usr/local/lib/node_modules/npm/bin/npm-cli.js"], Some("/srv/app"), &[]);
    assert!(is_kept(&n, "/usr/local/lib/node_modules/npm/bin/npm-cli.js"), "npm kept when it is a root");
    // A broken package.json is a warning.
    std::fs::write(app.join("node_modules/debug/package.json"), "{\"dependencies\": [").unwrap();
    let (_, n) = run_eval(r, &[], &["/usr/bin/node"], Some("/srv/app"), &[]);
    assert!(n.warnings.iter().any(|w| w.contains("debug/package.json is not valid")), "{:#?}", n.warnings);
}

/// Debian's real nginx configuration (nginx-common), with a dynamic module and a site root.
#[test]
fn nginx_debian_config() {
    if !need("apt-get") || !need("dpkg-deb") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dl = tmp.path().join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    let out = Command::new("apt-get").arg("download").arg("nginx-common").current_dir(&dl).output().unwrap();
    if !out.status.success() {
        assert!(!ci(), "apt-get download nginx-common failed: {}", String::from_utf8_lossy(&out.stderr));
        eprintln!("SKIP: apt-get download nginx-common failed");
        return;
    }
    let deb = std::fs::read_dir(&dl).unwrap().next().unwrap().unwrap().path();
    let r = tmp.path().join("root");
    assert!(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&r).status().unwrap().success());
    assert!(r.join("etc/nginx/nginx.conf").exists());
    let conf = std::fs::read_to_string(r.join("etc/nginx/nginx.conf")).unwrap();
    assert!(conf.contains("include /etc/nginx/modules-enabled/*.conf;") && conf.contains("user www-data;"), "Debian's nginx.conf changed");
    // What nginx-core and libnginx-mod-* would add: the binary, a module, a site root.
    std::fs::create_dir_all(r.join("usr/sbin")).unwrap();
    std::fs::copy("/bin/true", r.join("usr/sbin/nginx")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/nginx/modules")).unwrap();
    std::fs::copy("/bin/true", r.join("usr/lib/nginx/modules/ngx_stream_module.so")).unwrap();
    std::fs::create_dir_all(r.join("usr/share/nginx")).unwrap();
    let _ = std::os::unix::fs::symlink("../../lib/nginx/modules", r.join("usr/share/nginx/modules"));
    std::fs::create_dir_all(r.join("etc/nginx/modules-enabled")).unwrap();
    std::fs::write(r.join("etc/nginx/modules-enabled/50-mod-stream.conf"), "load_module modules/ngx_stream_module.so;\n").unwrap();
    std::fs::create_dir_all(r.join("var/www/html")).unwrap();
    std::fs::write(r.join("var/www/html/index.html"), "hi").unwrap();
    std::fs::create_dir_all(r.join("srv/extra")).unwrap();
    std::fs::write(r.join("srv/extra/a.html"), "a").unwrap();
    std::fs::write(r.join("etc/nginx/conf.d/extra.conf"), "server { listen 81; location /x { alias /srv/extra/; } }\n").unwrap();
    std::fs::write(r.join("srv/unrelated"), "u").unwrap();
    // The postinst links the default site.
    std::fs::create_dir_all(r.join("etc/nginx/sites-enabled")).unwrap();
    let _ = std::os::unix::fs::symlink("/etc/nginx/sites-available/default", r.join("etc/nginx/sites-enabled/default"));
    assert!(std::fs::read_to_string(r.join("etc/nginx/sites-available/default")).unwrap().contains("root /var/www/html;"));

    let (_, n) = run_eval(&r, &[], &["/usr/sbin/nginx"], None, &[]);
    assert!(applied(&n, "nginx"), "{:?}", n.applied);
    for p in ["/etc/nginx/nginx.conf", "/etc/nginx/mime.types", "/etc/nginx/sites-enabled/default", "/var/www/html/index.html", "/srv/extra/a.html", "/usr/share/nginx/modules"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    assert!(!is_kept(&n, "/srv/unrelated"));
    assert!(elf_root(&n, "/usr/lib/nginx/modules/ngx_stream_module.so"), "{:#?}", n.elf_roots);
    assert!(n.warnings.iter().any(|w| w.contains("user www-data") && w.contains("not in /etc/passwd")), "{:#?}", n.warnings);
    let why = &n.applied.iter().find(|a| a.name == "nginx").unwrap().why;
    assert!(why.contains("www-data") && why.contains("1 dynamic modules"), "{why}");
}

/// Debian's real OpenJDK 17 headless runtime (apt-get download, cached), with an app jar.
#[test]
fn jvm_debian_openjdk17() {
    if !need("apt-get") || !need("dpkg-deb") {
        return;
    }
    let dl = PathBuf::from("/var/cache/imgslim-test/profile-dl");
    std::fs::create_dir_all(&dl).unwrap();
    let find = || std::fs::read_dir(&dl).unwrap().filter_map(Result::ok).map(|e| e.path()).find(|p| p.to_string_lossy().contains("openjdk-17-jre-headless_"));
    if find().is_none() {
        let out = Command::new("apt-get").args(["download", "openjdk-17-jre-headless"]).current_dir(&dl).output().unwrap();
        if !out.status.success() {
            assert!(!ci(), "apt-get download openjdk-17-jre-headless failed: {}", String::from_utf8_lossy(&out.stderr));
            eprintln!("SKIP: apt-get download failed");
            return;
        }
    }
    let deb = find().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    assert!(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(r).status().unwrap().success());
    let home = "/usr/lib/jvm/java-17-openjdk-amd64";
    std::fs::create_dir_all(r.join("app")).unwrap();
    std::fs::write(r.join("app/app.jar"), "PK").unwrap();
    let (set, n) = run_eval(r, &[], &[&format!("{home}/bin/java")], Some("/app"), &[]);
    assert!(applied(&n, "jvm"), "{:?}", n.applied);
    for lib in ["server/libjvm.so", "libjava.so", "libjimage.so", "libnet.so", "libnio.so", "libzip.so", "libverify.so", "libjli.so", "libmanagement.so"] {
        assert!(elf_root(&n, &format!("{home}/lib/{lib}")), "{lib} not an ELF root");
    }
    assert!(!elf_root(&n, &format!("{home}/lib/libjsound.so")), "sound is desktop-only");
    assert!(is_kept(&n, &format!("{home}/lib/libjsound.so")), "…but kept as a file");
    for p in ["lib/modules", "lib/jvm.cfg", "lib/tzdb.dat", "lib/classlist", "lib/security/default.policy", "conf/security/java.security", "release", "legal/java.base/ASSEMBLY_EXCEPTION"] {
        let full = format!("{home}/{p}");
        assert!(r.join(full.trim_start_matches('/')).symlink_metadata().is_ok(), "{full} not in the package");
        assert!(is_kept(&n, &full), "{full} not kept");
    }
    // conf/*.properties are symlinks to /etc/java-17-openjdk: the targets are kept too.
    assert!(is_kept(&n, "/etc/java-17-openjdk/net.properties"), "symlink target in /etc not kept");
    assert!(is_kept(&n, "/app/app.jar"));
    assert!(!is_kept(&n, &format!("{home}/lib/ct.sym")));
    let man = std::fs::read_dir(r.join(&home[1..]).join("man/man1")).unwrap().next().unwrap().unwrap().file_name();
    let man = format!("{home}/man/man1/{}", man.to_string_lossy());
    assert!(!is_kept(&n, &man));
    let rules = drop_rules(&set, &n.applied);
    assert_eq!(rules.iter().find(|r| r.matches(&man)).map(|r| r.name.as_str()), Some("jvm-man"));
    assert_no_overlap(r, &n, &rules, &[]);
    // JAVA_HOME from Env alone (a shell-script entrypoint): same home.
    let (_, n2) = run_eval(r, &[("JAVA_HOME", "/usr/lib/jvm/java-1.17.0-openjdk-amd64")], &[], Some("/app"), &[]);
    assert!(applied(&n2, "jvm"));
    assert!(elf_root(&n2, &format!("{home}/lib/server/libjvm.so")), "JAVA_HOME symlink resolved to the real home");
}

/// The real Alpine minirootfs: musl, the CA bundle (with /etc/ssl/cert.pem symlink), apk rules.
#[test]
fn alpine_musl_ca_certificates_apk() {
    let tgz_path = format!("{}/../shared/images/alpine-minirootfs-3.20.3-x86_64.tar.gz", env!("CARGO_MANIFEST_DIR"));
    let tgz = Path::new(&tgz_path);
    if !tgz.exists() {
        assert!(!ci(), "CI=true but {} is missing", tgz.display());
        eprintln!("SKIP: no Alpine minirootfs");
        return;
    }
    if !need("tar") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    assert!(Command::new("tar").arg("xzf").arg(tgz).arg("-C").arg(r).status().unwrap().success());
    let (set, n) = run_eval(r, &[], &["/bin/busybox"], Some("/"), &[]);
    for p in ["base", "musl", "ca-certificates"] {
        assert!(applied(&n, p), "{p} not applied: {:?}", n.applied);
    }
    assert!(!applied(&n, "glibc") && !applied(&n, "python") && !applied(&n, "openssl"), "busybox does not link libssl: {:?}", n.applied);
    assert!(elf_root(&n, "/lib/ld-musl-x86_64.so.1"));
    for p in ["/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem", "/etc/ssl/openssl.cnf", "/etc/passwd", "/etc/group", "/etc/os-release", "/etc/alpine-release", "/lib/libc.musl-x86_64.so.1"] {
        assert!(is_kept(&n, p), "{p} not kept");
    }
    assert!(!is_kept(&n, "/lib/apk/db/installed"));
    let rules = drop_rules(&set, &n.applied);
    let by = |p: &str| rules.iter().find(|r| r.matches(p)).map(|r| (r.name.clone(), r.distroless_only));
    assert_eq!(by("/lib/apk/db/installed"), Some(("apk".into(), true)));
    assert_eq!(by("/sbin/apk"), Some(("apk".into(), true)));
    assert_eq!(by("/etc/apk/world"), Some(("apk".into(), true)));
    assert_eq!(by("/lib/libapk.so.2.14.0"), Some(("apk".into(), true)));
    assert_eq!(by("/lib/ld-musl-x86_64.so.1"), None);
    assert_eq!(by("/etc/ssl/certs/ca-certificates.crt"), None);
    assert_no_overlap(r, &n, &rules, &[]);
}
