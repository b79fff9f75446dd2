//! ELF closure against independent oracles: the image's own loader (`ld.so --list` in a chroot)
//! on every dynamic ELF file of a real Debian and a real Alpine rootfs, lddtree on a few files,
//! and synthetic gcc-built trees for RPATH/RUNPATH/ld.so.conf/hwcaps/hostile symlinks.
//!
//! Needs root, `debootstrap`, `chroot`, `tar`, `gcc`, `ldconfig`; lddtree needs
//! `pax-utils` + `python3-pyelftools`. With CI=true a missing tool fails the test.
mod common;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use imgslim::elf::{self, closure, ClosureOptions, HostDir, Reason, RootFs};

const GLIBC_KEY: &str = "bookworm-minbase-v1";
const GLIBC_PKGS: &[&str] = &["python3", "openssl", "libsqlite3-0", "libcurl4"];
const ALPINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/images/alpine-minirootfs-3.20.3-x86_64.tar.gz");

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Missing tool: fail under CI=true, otherwise skip loudly (shared helper).
fn need(tool: &str) -> bool {
    common::have_tool(tool)
}

fn need_root() -> bool {
    let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let ok = uid.is_ok_and(|u| u == "0");
    if !ok {
        assert!(!ci(), "CI=true but the chroot oracle needs root");
        eprintln!("SKIP: not root");
    }
    ok
}

fn cache_parent() -> PathBuf {
    std::env::var_os("IMGSLIM_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/imgslim-test/elf-rootfs"))
}

/// The cached Debian rootfs, built on first use (tests/support/build-glibc-rootfs.sh).
fn glibc_rootfs() -> Option<PathBuf> {
    if !need_root() || !need("chroot") {
        return None;
    }
    let dir = cache_parent().join(GLIBC_KEY);
    if !dir.join(".imgslim-complete").exists() {
        if !need("debootstrap") {
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/build-glibc-rootfs.sh");
        let st = Command::new("sh").arg(script).arg(cache_parent()).arg(GLIBC_KEY).args(GLIBC_PKGS).status().unwrap();
        assert!(st.success(), "building the Debian test rootfs failed");
    }
    Some(dir)
}

/// Every regular (non-symlink) dynamic ELF file in the tree, as image paths, sorted; hardlinks
/// counted once (busybox images are hundreds of links to one file).
fn dynamic_elfs(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut v = Vec::new();
    let mut inodes = BTreeSet::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let md = e.metadata().unwrap();
        if !inodes.insert((md.dev(), md.ino())) {
            continue;
        }
        let rel = e.path().strip_prefix(root).unwrap();
        let s = format!("/{}", rel.display());
        if s.starts_with("/proc/") || s.starts_with("/sys/") || s.starts_with("/dev/") {
            continue;
        }
        let Ok(bytes) = std::fs::read(e.path()) else { continue };
        if let Ok(info) = elf::parse(&bytes) {
            if info.is_dynamic && (info.e_type == 2 || info.e_type == 3) {
                v.push(s);
            }
        }
    }
    v
}

#[derive(Debug, Default)]
struct Listing {
    /// Paths the loader printed (as printed, not canonical).
    paths: Vec<String>,
    /// Names reported as not found.
    missing: Vec<String>,
    raw: String,
}

/// Run the image's loader in list mode on all files (one chroot process when the root has a
/// shell); parse ldd-style output. glibc: `LD_TRACE_LOADED_OBJECTS=1 ld.so FILE` (what ldd
/// does; it reports missing libs as "not found" instead of stopping). musl: `ld-musl --list`.
fn chroot_list(root: &Path, loader: &str, files: &[String]) -> BTreeMap<String, Listing> {
    let musl = loader.contains("ld-musl");
    let mut out = BTreeMap::new();
    // With a shell in the root: one chroot for many files. Without (synthetic trees): one each.
    let has_sh = root.join("bin/sh").exists();
    let chunk_len = if has_sh { 500 } else { 1 };
    for chunk in files.chunks(chunk_len) {
        let list = if musl { format!("{loader} --list") } else { format!("LD_TRACE_LOADED_OBJECTS=1 {loader}") };
        let script = format!(r#"for f; do echo "@@@ $f"; {list} "$f" 2>&1; done"#);
        let mut cmd = Command::new("chroot");
        cmd.arg(root);
        if has_sh {
            cmd.args(["/bin/sh", "-c", &script, "sh"]).args(chunk);
        } else {
            // No shell to scope LD_TRACE_LOADED_OBJECTS to the loader (set on `chroot` it would
            // trace the host's chroot binary), so use --list; glibc then stops at the first
            // missing library, which the parser below records as missing.
            cmd.args([loader, "--list", &chunk[0]]);
        }
        let o = cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").output().unwrap();
        let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
        if !has_sh {
            text = format!("@@@ {}\n{text}{}", chunk[0], String::from_utf8_lossy(&o.stderr));
        }
        let mut cur: Option<String> = None;
        for line in text.lines() {
            if let Some(f) = line.strip_prefix("@@@ ") {
                cur = Some(f.to_string());
                out.insert(f.to_string(), Listing::default());
                continue;
            }
            let Some(f) = &cur else { continue };
            let l = out.get_mut(f).unwrap();
            l.raw.push_str(line);
            l.raw.push('\n');
            let t = line.trim();
            if let Some((name, rhs)) = t.split_once(" => ") {
                let rhs = rhs.trim();
                if rhs.starts_with("not found") {
                    l.missing.push(name.to_string());
                } else if let Some(p) = rhs.split(" (0x").next().filter(|p| p.starts_with('/')) {
                    l.paths.push(p.to_string());
                }
            } else if t.starts_with('/') && t.contains(" (0x") {
                if let Some(p) = t.split(" (0x").next() {
                    l.paths.push(p.to_string());
                }
            } else if let Some((_, rest)) = t.split_once("error while loading shared libraries: ") {
                // glibc stopped early: count it as missing so the comparison fails loudly
                // unless we warn about the same name.
                if let Some((name, _)) = rest.split_once(':') {
                    l.missing.push(name.to_string());
                }
            } else if let Some(rest) = t.strip_prefix("Error loading shared library ") {
                // musl: "Error loading shared library NAME: No such file … (needed by X)"
                if let Some((name, _)) = rest.split_once(':') {
                    l.missing.push(name.to_string());
                }
            }
        }
    }
    out
}

struct Tally {
    files: usize,
    oracle_paths: usize,
    missing_in_closure: Vec<String>,
    extra: BTreeMap<String, usize>,
}

/// Compare the closure of every file with the loader's own listing of it.
fn check_against_loader(root: &Path, loader: &str, files: &[String]) -> Tally {
    let fs = HostDir::new(root);
    let c = closure(&fs, files, &ClosureOptions::default());
    let listings = chroot_list(root, loader, files);
    let mut t = Tally { files: 0, oracle_paths: 0, missing_in_closure: Vec::new(), extra: BTreeMap::new() };
    for f in files {
        let Some(l) = listings.get(f) else {
            t.missing_in_closure.push(format!("{f}: no loader output"));
            continue;
        };
        let ours = &c.per_root[f];
        t.files += 1;
        let mut oracle = BTreeSet::new();
        for p in &l.paths {
            t.oracle_paths += 1;
            let Some(r) = fs.resolve(p) else {
                t.missing_in_closure.push(format!("{f}: loader printed {p}, which does not resolve"));
                continue;
            };
            oracle.insert(r.path.clone());
            if !ours.contains(&r.path) {
                t.missing_in_closure.push(format!("{f}: needs {p} (= {}) but closure lacks it\n{}", r.path, l.raw));
            }
            for s in &r.symlinks {
                if !ours.contains(s) {
                    t.missing_in_closure.push(format!("{f}: symlink {s} on the way to {p} not kept"));
                }
            }
        }
        // Names the loader could not find must be reported by us too.
        for m in &l.missing {
            if !c.unresolved.iter().any(|u| u.root == *f && u.name == *m) {
                t.missing_in_closure.push(format!("{f}: loader reports {m} missing, we do not warn"));
            }
        }
        for u in c.unresolved.iter().filter(|u| u.root == *f) {
            if !l.missing.contains(&u.name) {
                t.missing_in_closure.push(format!("{f}: we warn about {} ({}), the loader found it", u.name, u.why));
            }
        }
        // Extra ELF files we keep beyond what this CPU's loader picked (hwcaps variants are ok).
        for p in ours {
            if p != f && fs.lstat(p) == Some(elf::Node::File) && !oracle.contains(p) && !l.paths.is_empty() {
                let k = match &c.kept[p].reason {
                    Reason::HwcapsVariant { .. } => "hwcaps variant",
                    Reason::LoaderConfig { .. } => "loader config",
                    _ => "other",
                };
                *t.extra.entry(format!("{k}: {p}")).or_default() += 1;
            }
        }
    }
    t
}

#[test]
fn glibc_debian_every_elf_matches_ld_so_list() {
    let Some(root) = glibc_rootfs() else { return };
    let files = dynamic_elfs(&root);
    assert!(files.len() > 300, "expected hundreds of ELF files, found {}", files.len());
    let t = check_against_loader(&root, "/lib64/ld-linux-x86-64.so.2", &files);
    eprintln!(
        "glibc: {} ELF files checked against ld.so --list, {} loader paths, {} mismatches, extras: {:?}",
        t.files,
        t.oracle_paths,
        t.missing_in_closure.len(),
        t.extra
    );
    assert!(t.missing_in_closure.is_empty(), "{}", t.missing_in_closure.join("\n"));
    assert_eq!(t.files, files.len());
    assert!(t.oracle_paths > 1000);
    assert!(
        t.extra.keys().all(|k| !k.starts_with("other")),
        "closure keeps ELF files the loader does not load: {:?}",
        t.extra
    );
}

#[test]
fn glibc_python_reasons_and_symlinks() {
    let Some(root) = glibc_rootfs() else { return };
    let fs = HostDir::new(&root);
    let c = closure(&fs, &["/usr/bin/python3".to_string()], &ClosureOptions::default());
    let k = |p: &str| c.kept.get(p).map(|k| k.reason.to_string()).unwrap_or_else(|| panic!("{p} not kept: {:#?}", c.kept));
    assert_eq!(k("/usr/bin/python3"), "symlink on the way to /usr/bin/python3.11");
    assert_eq!(k("/usr/bin/python3.11"), "root");
    // Merged /usr: /lib64 -> usr/lib64, then the ld.so symlink, then /lib -> usr/lib.
    assert_eq!(k("/lib64"), "symlink on the way to /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    assert!(c.kept.contains_key("/usr/lib64/ld-linux-x86-64.so.2"));
    assert!(c.kept.contains_key("/lib"));
    assert_eq!(k("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), "PT_INTERP of /usr/bin/python3.11");
    assert_eq!(k("/usr/lib/x86_64-linux-gnu/libexpat.so.1.8.10").split(" of ").last(), Some("/usr/bin/python3.11"));
    assert!(k("/usr/lib/x86_64-linux-gnu/libc.so.6").starts_with("DT_NEEDED libc.so.6 of "));
    assert!(c.unresolved.is_empty(), "{:?}", c.unresolved);
    assert_eq!(c.kept["/usr/bin/python3.11"].root, "/usr/bin/python3");
    assert_eq!(
        c.kept["/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"].to_string(),
        "DT_NEEDED libz.so.1 of /usr/bin/python3.11 (root: /usr/bin/python3)"
    );
    assert_eq!(c.kept["/usr/lib/x86_64-linux-gnu/libz.so.1"].reason.to_string(), "symlink on the way to /usr/lib/x86_64-linux-gnu/libz.so.1.2.13");
    let info = |p: &str| elf::parse(&fs.read(p).unwrap()).unwrap();
    let py = info("/usr/bin/python3.11");
    // Debian builds python3.11 as a non-PIE ET_EXEC; openssl is a PIE.
    assert!(py.is_executable() && !py.is_pie() && py.e_type == 2 && !py.is_shared_lib() && py.is_64 && py.machine == 62);
    let ossl = info("/usr/bin/openssl");
    assert!(ossl.is_executable() && ossl.is_pie() && ossl.e_type == 3 && !ossl.is_shared_lib());
    assert_eq!(py.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
    let z = info("/usr/lib/x86_64-linux-gnu/libz.so.1");
    assert!(z.is_shared_lib() && !z.is_executable());
    assert_eq!((z.soname.as_deref(), z.needed.as_slice()), (Some("libz.so.1"), &["libc.so.6".to_string()][..]));
    // Not in the closure: things python only dlopens.
    assert!(!c.kept.contains_key("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0"));
}

#[test]
fn glibc_lddtree_cross_check() {
    let Some(root) = glibc_rootfs() else { return };
    if !need("lddtree") {
        return;
    }
    let fs = HostDir::new(&root);
    let files = ["/usr/bin/python3.11", "/usr/bin/openssl", "/usr/lib/x86_64-linux-gnu/libcurl.so.4", "/usr/bin/apt"];
    for f in files {
        // lddtree is a Python script; run it with the system python (pyelftools lives there).
        let o = Command::new("/usr/bin/python3").arg("/usr/bin/lddtree").arg("-R").arg(&root).arg("-l").arg(f).output().unwrap();
        if !o.status.success() {
            assert!(!ci(), "lddtree failed: {}", String::from_utf8_lossy(&o.stderr));
            eprintln!("SKIP lddtree: {}", String::from_utf8_lossy(&o.stderr));
            return;
        }
        let c = closure(&fs, &[f.to_string()], &ClosureOptions::default());
        let ours = &c.per_root[f];
        let mut n = 0;
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let p = line.strip_prefix(root.to_str().unwrap()).unwrap_or(line);
            let r = fs.resolve(p).unwrap_or_else(|| panic!("lddtree path {p} does not resolve"));
            assert!(ours.contains(&r.path), "{f}: lddtree has {p} (= {}), we do not", r.path);
            n += 1;
        }
        assert!(n >= 3, "{f}: lddtree listed only {n} files");
        eprintln!("lddtree {f}: {n} files, all in closure ({} paths kept)", ours.len());
    }
}

#[test]
fn musl_alpine_every_elf_matches_ld_musl_list() {
    if !need_root() || !need("chroot") || !need("tar") {
        return;
    }
    assert!(Path::new(ALPINE).exists(), "{ALPINE} missing");
    let tmp = tempfile::tempdir().unwrap();
    let root = &tmp.path().join("root"); // sources for synthetic objects go to ../src
    std::fs::create_dir(root).unwrap();
    let st = Command::new("tar").arg("-xzf").arg(ALPINE).arg("-C").arg(root).status().unwrap();
    assert!(st.success());
    let files = dynamic_elfs(root);
    assert!(files.len() >= 10, "found only {} ELF files", files.len());
    let t = check_against_loader(root, "/lib/ld-musl-x86_64.so.1", &files);
    eprintln!(
        "musl: {} ELF files checked against ld-musl --list, {} loader paths, {} mismatches, extras: {:?}",
        t.files,
        t.oracle_paths,
        t.missing_in_closure.len(),
        t.extra
    );
    assert!(t.missing_in_closure.is_empty(), "{}", t.missing_in_closure.join("\n"));
    assert!(t.extra.is_empty(), "{:?}", t.extra);
    assert!(t.oracle_paths >= files.len());

    // Reserved names resolve to the loader; the loader config is picked up.
    let fs = HostDir::new(root);
    let c = closure(&fs, &["/bin/busybox".to_string()], &ClosureOptions::default());
    assert_eq!(c.kept["/lib/ld-musl-x86_64.so.1"].reason.to_string(), "PT_INTERP of /bin/busybox");
    assert!(c.unresolved.is_empty(), "{:?}", c.unresolved);
    assert_eq!(c.per_root["/bin/busybox"].len(), 2, "{:?}", c.per_root);

    // Synthetic musl objects (no libc, so any toolchain can build them): RUNPATH is inherited
    // like RPATH in musl, and /etc/ld-musl-x86_64.path replaces the default dirs.
    if !need("gcc") {
        return;
    }
    let nolibc = ["-nostdlib", "-Wl,--no-as-needed"];
    lib(root, "/opt/deep/libdeep.so", "deep", &[], &nolibc);
    lib(root, "/app/lib/liba.so", "a", &["deep"], &[&nolibc[..], &["-L", root.join("opt/deep").to_str().unwrap(), "-ldeep"]].concat());
    lib(root, "/opt/mpath/libp.so", "p", &[], &nolibc);
    let rpl = format!("-Wl,-rpath-link,{}", root.join("opt/deep").display());
    let exe = |out: &str, calls: &[&str], extra: &[&str]| {
        let args = [&nolibc[..], &["-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1", "-Wl,-e,main", &rpl], extra].concat();
        prog(root, out, calls, &args);
    };
    let la = root.join("app/lib");
    exe("/app/bin/runpath", &["a"], &["-L", la.to_str().unwrap(), "-la", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib:/opt/deep"]);
    exe("/app/bin/mpath", &["p"], &["-L", root.join("opt/mpath").to_str().unwrap(), "-lp"]);
    write(&root.join("etc/ld-musl-x86_64.path"), "/opt/mpath\n/lib:/usr/lib\n");
    let roots = vec!["/app/bin/runpath".to_string(), "/app/bin/mpath".to_string()];
    let c = closure(&fs, &roots, &ClosureOptions::default());
    assert!(c.per_root["/app/bin/runpath"].contains("/opt/deep/libdeep.so"), "musl inherits RUNPATH: {c:#?}");
    assert!(c.per_root["/app/bin/mpath"].contains("/opt/mpath/libp.so"), "{c:#?}");
    assert!(c.per_root["/app/bin/mpath"].contains("/etc/ld-musl-x86_64.path"));
    assert!(c.unresolved.is_empty(), "{:?}", c.unresolved);
    let listings = chroot_list(root, "/lib/ld-musl-x86_64.so.1", &roots);
    for f in &roots {
        let l = &listings[f];
        assert!(l.missing.is_empty(), "{f}: {}", l.raw);
        assert!(l.paths.len() >= 2, "{f}: {}", l.raw);
        for p in &l.paths {
            let canon = fs.resolve(p).unwrap().path;
            assert!(c.per_root[f].contains(&canon), "{f}: ld-musl loads {p}, closure lacks it\n{}", l.raw);
        }
    }
    // Without the path file entry the library is not found, by either side.
    write(&root.join("etc/ld-musl-x86_64.path"), "/lib:/usr/lib\n");
    let c = closure(&fs, &roots[1..], &ClosureOptions::default());
    assert_eq!(c.unresolved.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["libp.so"]);
    assert_eq!(chroot_list(root, "/lib/ld-musl-x86_64.so.1", &roots[1..])["/app/bin/mpath"].missing, ["libp.so"]);
}

// ---------------------------------------------------------------- synthetic trees (gcc)

fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

/// `gcc -shared` a one-function library (calling `calls`, so `--as-needed` keeps those
/// DT_NEEDED) with the file name as soname, plus extra args.
fn lib(root: &Path, out: &str, func: &str, calls: &[&str], args: &[&str]) {
    let src = root.join(format!("../src/{func}.c"));
    let decls: String = calls.iter().map(|c| format!("int {c}(void);\n")).collect();
    let body: String = calls.iter().map(|c| format!("{c}()+")).collect();
    write(&src, &format!("{decls}int {func}(void) {{ return {body}1; }}\n"));
    let out = root.join(out.trim_start_matches('/'));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let soname = out.file_name().unwrap().to_str().unwrap().to_string();
    sh(Command::new("gcc").args(["-shared", "-fPIC", "-o"]).arg(&out).arg(&src).arg(format!("-Wl,-soname,{soname}")).args(args));
}

fn prog(root: &Path, out: &str, calls: &[&str], args: &[&str]) {
    let name = out.rsplit('/').next().unwrap();
    let src = root.join(format!("../src/{name}.c"));
    let decls: String = calls.iter().map(|c| format!("int {c}(void);\n")).collect();
    let body: String = calls.iter().map(|c| format!("{c}()+")).collect();
    write(&src, &format!("{decls}int main(void) {{ return {body}0; }}\n"));
    let out = root.join(out.trim_start_matches('/'));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    sh(Command::new("gcc").arg("-o").arg(&out).arg(&src).args(args));
}

/// A tiny root with the host's glibc loader + libc, so the real loader can be the oracle.
fn synthetic_root(tmp: &Path) -> PathBuf {
    let root = tmp.join("root");
    let ma = root.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&ma).unwrap();
    for f in ["ld-linux-x86-64.so.2", "libc.so.6"] {
        // Copy real files (not symlinks) from the host.
        let src = std::fs::canonicalize(Path::new("/lib/x86_64-linux-gnu").join(f)).unwrap();
        std::fs::copy(src, ma.join(f)).unwrap();
    }
    std::fs::create_dir_all(root.join("lib64")).unwrap();
    std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", root.join("lib64/ld-linux-x86-64.so.2")).unwrap();
    root
}

#[test]
fn synthetic_rpath_runpath_conf_hwcaps_hostile() {
    if !need("gcc") || !need("ldconfig") {
        return;
    }
    if !Path::new("/lib/x86_64-linux-gnu/libc.so.6").exists() {
        assert!(!ci(), "host is not x86_64 Debian-like");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = synthetic_root(tmp.path());
    let r = |p: &str| root.join(p.trim_start_matches('/'));
    let rs = |p: &str| r(p).to_str().unwrap().to_string();

    // /opt/deep/libdeep.so: only reachable through an inherited RPATH.
    lib(&root, "/opt/deep/libdeep.so", "deep", &[], &[]);
    // /app/lib/liba.so needs libdeep.so but has no path of its own.
    lib(&root, "/app/lib/liba.so", "a", &["deep"], &["-L", &rs("/opt/deep"), "-ldeep"]);
    let rpl = format!("-Wl,-rpath-link,{}", rs("/opt/deep"));
    let link = ["-L", &rs("/app/lib"), "-la", &rpl];
    // RPATH (old dtags): applies to liba's lookup of libdeep too.
    prog(&root, "/app/bin/rpath", &["a"], &[&link[..], &["-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib:/opt/deep"]].concat());
    // RUNPATH: only for the program's own DT_NEEDED; liba cannot find libdeep.
    prog(&root, "/app/bin/runpath", &["a"], &[&link[..], &["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib:/opt/deep"]].concat());

    // ld.so.conf with a relative glob include.
    lib(&root, "/opt/conf/lib/libconf.so", "conf", &[], &[]);
    write(&r("/etc/ld.so.conf"), "# test\ninclude ld.so.conf.d/*.conf\n");
    write(&r("/etc/ld.so.conf.d/b.conf"), "/opt/conf/lib\n");
    write(&r("/etc/ld.so.conf.d/.hidden.conf"), "/nonexistent\n");
    prog(&root, "/usr/bin/conf", &["conf"], &["-L", &rs("/opt/conf/lib"), "-lconf"]);

    // glibc-hwcaps: baseline + x86-64-v3 build; both must be kept.
    lib(&root, "/opt/hw/libhw.so", "hw", &[], &[]);
    lib(&root, "/opt/hw/glibc-hwcaps/x86-64-v3/libhw.so", "hw", &[], &[]);
    prog(&root, "/usr/bin/hw", &["hw"], &["-L", &rs("/opt/hw"), "-lhw", "-Wl,-rpath,/opt/hw"]);
    // Only an x86-64-v2 build, no baseline: loads on v2+ CPUs only. Kept, with a warning.
    lib(&root, "/opt/hwonly/glibc-hwcaps/x86-64-v2/libhwo.so", "hwo", &[], &[]);
    prog(&root, "/usr/bin/hwonly", &["hwo"], &["-L", &rs("/opt/hwonly/glibc-hwcaps/x86-64-v2"), "-lhwo", "-Wl,-rpath,/opt/hwonly"]);

    // Hostile symlinks: a relative one climbing out of the root, an absolute one naming a host
    // path. Both must resolve inside the root.
    let outside = tmp.path().join("outside");
    lib(&root, "/../outside/libevil.so", "evil", &[], &[]); // a real library on the host, outside the root
    lib(&root, "/outside/libevil.so", "evil", &[], &["-Wl,-soname,libevil-inside.so"]);
    std::fs::create_dir_all(r("/app/evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../../../outside/libevil.so", r("/app/evil/libevil.so")).unwrap();
    std::fs::create_dir_all(r("/app/evil2")).unwrap();
    std::os::unix::fs::symlink(outside.join("libevil.so"), r("/app/evil2/libevil.so")).unwrap();
    prog(&root, "/app/bin/evil", &["evil"], &["-L", outside.to_str().unwrap(), "-levil", "-Wl,-rpath,/app/evil"]);
    prog(&root, "/app/bin/evil2", &["evil"], &["-L", outside.to_str().unwrap(), "-levil", "-Wl,-rpath,/app/evil2"]);

    // A candidate for another machine comes first in RPATH: glibc skips it, keeps searching.
    let deep = std::fs::read(r("/opt/deep/libdeep.so")).unwrap();
    let mut wrong = deep.clone();
    wrong[18..20].copy_from_slice(&183u16.to_le_bytes()); // e_machine = EM_AARCH64
    std::fs::create_dir_all(r("/opt/wrong")).unwrap();
    std::fs::write(r("/opt/wrong/libdeep.so"), &wrong).unwrap();
    prog(&root, "/app/bin/wrong", &["deep"], &["-L", &rs("/opt/deep"), "-ldeep", "-Wl,--disable-new-dtags", "-Wl,-rpath,/opt/wrong:/opt/deep"]);

    // `..` after a directory symlink is physical: /app2/lib -> /opt/real/lib, so
    // /app2/lib/../x is /opt/real/x (lexically it would be the nonexistent /app2/x).
    lib(&root, "/opt/real/x/libq.so", "q", &[], &[]);
    std::fs::create_dir_all(r("/opt/real/lib")).unwrap();
    std::fs::create_dir_all(r("/app2")).unwrap();
    std::os::unix::fs::symlink("/opt/real/lib", r("/app2/lib")).unwrap();
    prog(&root, "/app/bin/dotdot", &["q"], &["-L", &rs("/opt/real/x"), "-lq", "-Wl,-rpath,/app2/lib/../x"]);

    // Dynamic string tokens: $ORIGIN inside DT_NEEDED itself, $LIB and $PLATFORM in RPATH
    // (Debian's glibc expands $LIB to lib/x86_64-linux-gnu; $PLATFORM depends on the CPU).
    lib(&root, "/app/lib/libo.so", "o", &[], &["-Wl,-soname,$ORIGIN/../lib/libo.so"]);
    lib(&root, "/opt/lib/x86_64-linux-gnu/libl.so", "l", &[], &[]);
    lib(&root, "/opt/p/x86_64/libpl.so", "pl", &[], &[]);
    // glibc 2.36 expands $PLATFORM to "haswell" on AVX2 CPUs, "x86_64" on older ones.
    lib(&root, "/opt/p/haswell/libpl.so", "pl", &[], &[]);
    prog(&root, "/app/bin/dst", &["o", "l", "pl"], &[
        "-L", &rs("/app/lib"), "-lo",
        "-L", &rs("/opt/lib/x86_64-linux-gnu"), "-ll",
        "-L", &rs("/opt/p/x86_64"), "-lpl",
        "-Wl,--disable-new-dtags", "-Wl,-rpath,/opt/$LIB:/opt/p/${PLATFORM}",
    ]);

    // Static and static-pie executables need nothing, not even the loader.
    prog(&root, "/app/bin/static", &[], &["-static"]);
    prog(&root, "/app/bin/static-pie", &[], &["-static-pie"]);

    // ld.so.cache for the real loader (the oracle); our side reads ld.so.conf instead.
    sh(Command::new("ldconfig").arg("-r").arg(&root));

    let fs = HostDir::new(&root);
    let roots: Vec<String> = ["/app/bin/rpath", "/app/bin/runpath", "/usr/bin/conf", "/usr/bin/hw", "/app/bin/evil", "/app/bin/evil2", "/app/bin/wrong", "/app/bin/dotdot", "/app/bin/dst", "/usr/bin/hwonly"]
        .map(String::from)
        .to_vec();
    let c = closure(&fs, &roots, &ClosureOptions::default());
    let has = |root: &str, p: &str| c.per_root[root].contains(p);
    let unresolved = |root: &str, n: &str| c.unresolved.iter().any(|u| u.root == root && u.name == n);

    assert!(has("/app/bin/rpath", "/app/lib/liba.so"));
    assert!(has("/app/bin/rpath", "/opt/deep/libdeep.so"), "RPATH must be inherited: {c:#?}");
    assert!(!unresolved("/app/bin/rpath", "libdeep.so"));
    assert_eq!(c.kept["/opt/deep/libdeep.so"].reason.to_string(), "DT_NEEDED libdeep.so of /app/lib/liba.so");

    assert!(has("/app/bin/runpath", "/app/lib/liba.so"));
    assert!(!has("/app/bin/runpath", "/opt/deep/libdeep.so"), "RUNPATH must not be inherited");
    let u = c.unresolved.iter().find(|u| u.root == "/app/bin/runpath").expect("libdeep.so unresolved warning");
    assert_eq!((u.name.as_str(), u.requester.as_str()), ("libdeep.so", "/app/lib/liba.so"));

    assert!(has("/usr/bin/conf", "/opt/conf/lib/libconf.so"), "ld.so.conf include");
    assert!(has("/usr/bin/hw", "/opt/hw/libhw.so"));
    assert!(has("/usr/bin/hw", "/opt/hw/glibc-hwcaps/x86-64-v3/libhw.so"));
    assert!(c.kept["/opt/hw/glibc-hwcaps/x86-64-v3/libhw.so"].reason.to_string().starts_with("hwcaps variant"));
    assert!(has("/usr/bin/hwonly", "/opt/hwonly/glibc-hwcaps/x86-64-v2/libhwo.so"));
    assert!(c.warnings.iter().any(|w| w.starts_with("libhwo.so (needed by /usr/bin/hwonly): only CPU-specific builds")), "{:?}", c.warnings);

    // Hostile: the relative link lands on the in-root copy, the absolute one on nothing.
    assert!(has("/app/bin/evil", "/outside/libevil.so"));
    assert!(has("/app/bin/evil", "/app/evil/libevil.so"));
    assert_eq!(elf::parse(&fs.read("/app/evil/libevil.so").unwrap()).unwrap().soname.as_deref(), Some("libevil-inside.so"));
    assert!(unresolved("/app/bin/evil2", "libevil.so"), "absolute link must not reach the host: {c:#?}");
    assert!(c.kept.keys().all(|k| !k.contains(tmp.path().to_str().unwrap())));

    let cs = closure(&fs, &["/app/bin/static".into(), "/app/bin/static-pie".into()], &ClosureOptions::default());
    assert_eq!(cs.kept.keys().collect::<Vec<_>>(), ["/app/bin/static", "/app/bin/static-pie"], "{cs:#?}");
    assert!(elf::parse(&fs.read("/app/bin/static-pie").unwrap()).unwrap().is_pie());

    assert!(has("/app/bin/dotdot", "/opt/real/x/libq.so"), "physical ..: {c:#?}");
    for l in ["/app/lib/libo.so", "/opt/lib/x86_64-linux-gnu/libl.so", "/opt/p/x86_64/libpl.so", "/opt/p/haswell/libpl.so"] {
        assert!(has("/app/bin/dst", l), "token expansion: {l} missing: {:#?}", c.per_root["/app/bin/dst"]);
    }
    assert!(has("/app/bin/dotdot", "/app2/lib"), "the directory symlink on the way is kept");
    assert!(has("/app/bin/wrong", "/opt/deep/libdeep.so"), "wrong-machine candidate must be skipped");
    assert!(!has("/app/bin/wrong", "/opt/wrong/libdeep.so"));

    // LD_LIBRARY_PATH from the image Env fixes the RUNPATH case; /etc/ld.so.preload is honoured.
    write(&r("/etc/ld.so.preload"), "# comment /opt/deep/libdeep.so\n/opt/conf/lib/libconf.so # trailing\n");
    let opts = ClosureOptions { ld_library_path: Some("/nonexistent::/opt/deep".into()), ..Default::default() };
    let c2 = closure(&fs, &["/app/bin/runpath".to_string()], &opts);
    assert!(c2.per_root["/app/bin/runpath"].contains("/opt/deep/libdeep.so"));
    assert!(c2.unresolved.is_empty(), "{:?}", c2.unresolved);
    assert_eq!(c2.preload_file, ["/opt/conf/lib/libconf.so"]);
    assert_eq!(c2.kept["/opt/conf/lib/libconf.so"].reason.to_string(), "preload /opt/conf/lib/libconf.so from /etc/ld.so.preload");
    assert_eq!(c2.kept["/etc/ld.so.preload"].reason.to_string(), "loader configuration read by /lib64/ld-linux-x86-64.so.2");
    std::fs::remove_file(r("/etc/ld.so.preload")).unwrap();

    // Oracle: the real loader in a chroot of this tree agrees (only where it can run: root).
    if need_root() {
        let listings = chroot_list(&root, "/lib64/ld-linux-x86-64.so.2", &roots);
        for f in &roots {
            let l = &listings[f];
            for p in &l.paths {
                let canon = fs.resolve(p).unwrap_or_else(|| panic!("{f}: loader path {p} does not resolve in the root\n{}", l.raw)).path;
                assert!(c.per_root[f].contains(&canon), "{f}: loader loads {p}, closure lacks it\n{}", l.raw);
            }
            for m in &l.missing {
                assert!(unresolved(f, m), "{f}: loader misses {m}, we do not warn");
            }
            for u in c.unresolved.iter().filter(|u| u.root == *f) {
                assert!(l.missing.contains(&u.name), "{f}: we warn about {} but the loader found it\n{}", u.name, l.raw);
            }
        }
        assert!(listings["/app/bin/runpath"].missing.contains(&"libdeep.so".to_string()));
    }
}

#[test]
fn non_elf_and_missing_roots() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("bin/script"), "#!/bin/sh\necho hi\n");
    write(&tmp.path().join("bin/bad"), "\x7fELF\x02\x01\x01garbage");
    let fs = HostDir::new(tmp.path());
    let c = closure(&fs, &["/bin/script".into(), "/bin/bad".into(), "/nope".into()], &ClosureOptions::default());
    assert_eq!(c.kept.keys().collect::<Vec<_>>(), ["/bin/bad", "/bin/script"]);
    assert!(c.warnings.iter().any(|w| w.starts_with("/nope")));
    assert!(c.warnings.iter().any(|w| w.starts_with("/bin/bad: malformed")), "{:?}", c.warnings);
}

/// Unpack an OCI layout from ../shared/images with umoci; returns the rootfs path.
fn umoci_rootfs(tmp: &Path, layout: &str, tag: &str) -> PathBuf {
    let bundle = tmp.join(tag.replace([':', '.'], "_"));
    let image = format!("{}/../shared/images/{layout}:{tag}", env!("CARGO_MANIFEST_DIR"));
    sh(Command::new("umoci").args(["unpack", "--rootless", "--image", &image]).arg(&bundle));
    bundle.join("rootfs")
}

#[test]
fn busybox_oci_images() {
    if !need_root() || !need("chroot") || !need("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();

    // glibc busybox: not Debian multiarch; libs in /lib, /lib64 -> lib.
    let root = umoci_rootfs(tmp.path(), "busybox-1.38.0-glibc.oci", "busybox:1.38.0-glibc");
    let files = dynamic_elfs(&root);
    let t = check_against_loader(&root, "/lib64/ld-linux-x86-64.so.2", &files);
    eprintln!("busybox-glibc: {} ELF files checked, {} loader paths, {} mismatches", t.files, t.oracle_paths, t.missing_in_closure.len());
    assert!(t.missing_in_closure.is_empty(), "{}", t.missing_in_closure.join("\n"));
    assert!(t.files >= 5 && t.oracle_paths >= 10);
    let fs = HostDir::new(&root);
    let c = closure(&fs, &["/bin/sh".to_string()], &ClosureOptions::default());
    assert_eq!(c.kept["/lib64"].reason.to_string(), "symlink on the way to /lib/ld-linux-x86-64.so.2");
    assert!(c.kept.contains_key("/lib/libc.so.6") && c.kept.contains_key("/lib/libm.so.6"), "{c:#?}");
    // NSS modules are dlopen()ed: invisible here by design (runtime tracing covers them).
    assert!(!c.kept.contains_key("/lib/libnss_files.so.2"));

    // musl busybox: static-pie, no loader in the image at all.
    let root = umoci_rootfs(tmp.path(), "busybox-1.38.0-musl.oci", "busybox:1.38.0-musl");
    let fs = HostDir::new(&root);
    let c = closure(&fs, &["/bin/sh".to_string()], &ClosureOptions::default());
    assert_eq!(c.kept.keys().collect::<Vec<_>>(), ["/bin/sh"], "{c:#?}");
    assert!(c.unresolved.is_empty() && c.warnings.is_empty());
    // Oracle: it really runs with nothing else.
    let st = Command::new("chroot").arg(&root).args(["/bin/sh", "-c", "true"]).env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").status().unwrap();
    assert!(st.success());
}
