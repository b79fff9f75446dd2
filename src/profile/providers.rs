//! Built-in providers: the parts of profiles that need code (parsing the image's own config).
//! Each returns an optional note appended to the profile's `Applied::why`.
use std::collections::{BTreeSet, VecDeque};

use super::schema::ProfileFile;
use super::{Acc, Ctx};
use crate::elf::rootfs::join_path;
use crate::elf::{self, Node, RootFs};

pub mod httpd;
pub mod interp;
pub mod loader;
pub mod mysql;
pub mod node;
pub mod pyscan;
pub mod python;
pub mod servers;
pub mod web;

pub const NAMES: &[&str] = &["workdir", "cert_env", "nss", "libgcc_s", "locale", "gconv", "timezone", "python", "node", "jvm", "nginx", "postgresql", "redis", "apache", "php", "mariadb", "ruby", "perl"];

pub(crate) fn run(name: &str, cx: &Ctx, acc: &mut Acc, profile: &ProfileFile) -> Option<String> {
    match name {
        "workdir" => workdir(cx, acc),
        "cert_env" => cert_env(cx, acc),
        "nss" => nss(cx, acc),
        "libgcc_s" => libgcc_s(cx, acc),
        "locale" => locale(cx, acc),
        "gconv" => gconv(cx, acc),
        "timezone" => timezone(cx, acc),
        "python" => python::provide(cx, acc, profile),
        "node" => node::provide(cx, acc),
        "jvm" => web::jvm(cx, acc),
        "nginx" => web::nginx(cx, acc),
        "postgresql" => servers::postgresql(cx, acc),
        "redis" => servers::redis(cx, acc),
        "apache" => httpd::apache(cx, acc),
        "php" => httpd::php(cx, acc),
        "mariadb" => mysql::mariadb(cx, acc),
        "ruby" => interp::ruby(cx, acc, profile),
        "perl" => interp::perl(cx, acc, profile),
        _ => None,
    }
}

/// A library tree (minus `exclude`), whose `.so` are ELF roots: extension modules an interpreter
/// dlopen()s on import/require. A system directory is refused with a warning.
pub(crate) fn keep_lib_tree(fs: &dyn RootFs, acc: &mut Acc, dir: &str, reason: &str, exclude: &globset::GlobSet, so_label: &str) {
    if fs.resolve(dir).is_some_and(|r| SYSTEM_DIRS.contains(&r.path.as_str())) {
        acc.warn(format!("{reason}: refusing to keep the system directory {dir} whole"));
        return;
    }
    let mut e = super::expand::Expander::new(fs, exclude);
    e.add(dir, reason);
    acc.absorb(e.finish(), false, reason);
    let mut e = super::expand::Expander::new(fs, exclude);
    e.add(&format!("{dir}/**/*.so"), reason);
    e.add(&format!("{dir}/**/*.so.*"), reason);
    for (p, _) in e.finish().paths {
        if fs.lstat(&p) == Some(Node::File) {
            acc.elf_roots.entry(p).or_insert_with(|| format!("{reason}: {so_label}"));
        }
    }
}

/// Directories that are system trees, never "the app's working directory".
pub(crate) const SYSTEM_DIRS: &[&str] = &["/", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/local", "/usr/local/bin", "/usr/share", "/etc", "/var", "/root", "/home", "/tmp", "/var/tmp", "/opt", "/srv", "/proc", "/sys", "/dev", "/run"];

/// The canonical WorkingDir, when it is an application directory (not `/` or a system tree).
pub(crate) fn app_workdir(cx: &Ctx) -> Option<String> {
    let wd = cx.view.workdir?;
    let r = cx.view.fs.resolve(wd)?;
    if r.node != Node::Dir || SYSTEM_DIRS.contains(&r.path.as_str()) {
        return None;
    }
    Some(r.path)
}

/// base: the WorkingDir tree is the application (minus `node_modules` when the node profile
/// applies: it keeps the production closure itself).
fn workdir(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    user(cx, acc);
    let raw = cx.view.workdir?;
    let Some(wd) = app_workdir(cx) else {
        return Some(format!("WorkingDir {raw} is a system directory, not kept whole"));
    };
    let reason = format!("WorkingDir {raw} (the application directory)");
    if cx.applied.contains("node") {
        let ex = super::schema::globset(&["**/node_modules".to_string()]).ok()?;
        let mut e = super::expand::Expander::new(cx.view.fs, &ex);
        e.add(&wd, &reason);
        acc.absorb(e.finish(), false, &reason);
        Some(format!("WorkingDir {wd} kept (node_modules left to the node profile)"))
    } else {
        acc.keep_glob(cx.view.fs, &wd, &reason);
        Some(format!("WorkingDir {wd} kept"))
    }
}

/// Env variables naming CA bundles or directories (OpenSSL, curl, requests, Node).
const CERT_ENV: &[&str] = &["SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "AWS_CA_BUNDLE"];

/// ca-certificates: the bundles and dirs Env points at.
fn cert_env(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let mut notes = Vec::new();
    for k in CERT_ENV {
        let Some(v) = cx.view.env_get(k) else { continue };
        // SSL_CERT_DIR is a colon-separated list.
        for p in v.split(':').filter(|p| p.starts_with('/')) {
            if acc.keep_glob(cx.view.fs, p, &format!("Env {k}={v}")) > 0 {
                notes.push(format!("{k}={p}"));
            } else if cx.view.fs.resolve(p).is_none() {
                acc.warn(format!("ca-certificates: Env {k}={v} but {p} is not in the image"));
            }
        }
    }
    if notes.is_empty() {
        None
    } else {
        Some(format!("CA paths from Env: {}", notes.join(", ")))
    }
}

/// The config `User`: a name must be in /etc/passwd (and a group name in /etc/group); its home
/// directory is kept as a directory.
fn user(cx: &Ctx, acc: &mut Acc) {
    let Some(u) = cx.view.user.filter(|u| !u.is_empty()) else { return };
    let (name, group) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let read = |p: &str| cx.view.fs.read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let passwd = read("/etc/passwd");
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() >= 7 && (f[0] == name || (numeric(name) && f[2] == name)));
    match entry {
        Some(f) => {
            let home = f[5];
            if home.starts_with('/') {
                if let Some(r) = cx.view.fs.resolve(home).filter(|r| r.node == Node::Dir) {
                    acc.keep_dirs.entry(r.path).or_insert_with(|| format!("home directory of User {u}"));
                }
            }
        }
        None if !numeric(name) => acc.warn(format!("base: config User {u} is not in /etc/passwd: the container will not start (as before slimming)")),
        None => {}
    }
    if let Some(g) = group.filter(|g| !numeric(g)) {
        if !read("/etc/group").lines().any(|l| l.split(':').next() == Some(g)) {
            acc.warn(format!("base: config User {u}: group {g} is not in /etc/group"));
        }
    }
}

/// glibc's library search dirs: ld.so.conf dirs, then the compiled-in defaults for the libc
/// in the closure (or the common layouts when there is none).
pub(crate) fn lib_dirs(cx: &Ctx) -> Vec<String> {
    let fs = cx.view.fs;
    let mut dirs = elf::search::ld_so_conf_dirs(fs);
    let libc = cx.closure.iter().find(|p| p.ends_with("/libc.so.6")).and_then(|p| fs.read(p)).and_then(|b| elf::parse(&b).ok());
    match libc {
        Some(info) => dirs.extend(elf::search::glibc_default_dirs(&info)),
        None => {
            for d in ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
                dirs.push(d.to_string());
            }
        }
    }
    let mut seen = BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// First `dir/name` that is a file: (path as found, canonical path).
pub(crate) fn find_lib(fs: &dyn RootFs, dirs: &[String], name: &str) -> Option<(String, String)> {
    for d in dirs {
        let p = join_path(d, name);
        if let Some(r) = fs.resolve(&p) {
            if r.node == Node::File {
                return Some((p, r.path));
            }
        }
    }
    None
}

/// Keep a library found by name, as an ELF root, with the symlinks on the way to it.
fn keep_lib(cx: &Ctx, acc: &mut Acc, path: &str, canonical: &str, reason: &str) {
    if let Some(r) = cx.view.fs.resolve(path) {
        for s in r.symlinks {
            acc.keep(s, format!("{reason} (symlink on the way to {canonical})"));
        }
    }
    acc.elf_root(canonical, reason);
}

/// NSS services that glibc ≥ 2.34 has built in (the .so files are empty stubs).
const NSS_BUILTIN: &[&str] = &["files", "dns"];

/// The services named in nsswitch.conf, per database, in file order.
pub fn parse_nsswitch(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((db, rest)) = line.split_once(':') else { continue };
        let db = db.trim();
        if db.is_empty() || db.contains(char::is_whitespace) {
            continue;
        }
        let mut svcs = Vec::new();
        let mut in_action = false;
        for tok in rest.split_whitespace() {
            // `[NOTFOUND=return]` actions, possibly split over several tokens.
            if tok.starts_with('[') {
                in_action = !tok.ends_with(']');
                continue;
            }
            if in_action {
                in_action = !tok.ends_with(']');
                continue;
            }
            if tok.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                svcs.push(tok.to_string());
            }
        }
        out.push((db.to_string(), svcs));
    }
    out
}

fn nss(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let Some(bytes) = fs.read("/etc/nsswitch.conf") else {
        return Some("no /etc/nsswitch.conf: glibc uses its defaults (files, dns; built in since 2.34)".into());
    };
    let text = String::from_utf8_lossy(&bytes);
    let dirs = lib_dirs(cx);
    let mut services: BTreeSet<String> = BTreeSet::new();
    let mut users: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (db, svcs) in parse_nsswitch(&text) {
        for s in svcs {
            users.entry(s.clone()).or_default().push(db.clone());
            services.insert(s);
        }
    }
    let mut kept = Vec::new();
    for s in &services {
        let name = format!("libnss_{s}.so.2");
        let dbs = users.get(s).map(|v| v.join(", ")).unwrap_or_default();
        match find_lib(fs, &dirs, &name) {
            Some((p, c)) => {
                keep_lib(cx, acc, &p, &c, &format!("NSS service '{s}' named in /etc/nsswitch.conf ({dbs}); dlopen()ed by glibc"));
                kept.push(name);
            }
            None if NSS_BUILTIN.contains(&s.as_str()) => {}
            None => acc.warn(format!(
                "glibc: /etc/nsswitch.conf names NSS service '{s}' ({dbs}) but {name} is not in the image: glibc skips it (as before slimming)"
            )),
        }
    }
    Some(format!(
        "NSS modules from /etc/nsswitch.conf: {} (files and dns are built into glibc >= 2.34; their .so are then stubs, kept if present)",
        if kept.is_empty() { "none present".into() } else { kept.join(", ") }
    ))
}

fn libgcc_s(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let dirs = lib_dirs(cx);
    let (p, c) = find_lib(cx.view.fs, &dirs, "libgcc_s.so.1")?;
    keep_lib(cx, acc, &p, &c, "libgcc_s.so.1: dlopen()ed by glibc for pthread_cancel/pthread_exit and unwinding");
    None
}

/// Locale names set in Env that need locale data (not C/POSIX).
fn configured_locales(cx: &Ctx) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (k, val) in cx.view.env {
        if (k == "LANG" || k == "LANGUAGE" || k == "LC_ALL" || k.starts_with("LC_")) && !val.is_empty() && val != "C" && val != "POSIX" {
            if k == "LANGUAGE" {
                for l in val.split(':').filter(|l| !l.is_empty()) {
                    v.push((k.clone(), l.to_string()));
                }
            } else {
                v.push((k.clone(), val.clone()));
            }
        }
    }
    v
}

/// `de_DE.UTF-8@euro` → ("de", "de_DE", normalised codeset "utf8").
fn split_locale(l: &str) -> (String, String, Option<String>) {
    let base = l.split('@').next().unwrap_or(l);
    let (lt, cs) = match base.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (base, None),
    };
    let lang = lt.split('_').next().unwrap_or(lt).to_string();
    let norm = cs.map(|c| c.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase());
    (lang, lt.to_string(), norm)
}

fn locale(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let locs = configured_locales(cx);
    if locs.is_empty() {
        return Some("no non-C locale in Env: locale data not kept".into());
    }
    let mut notes = Vec::new();
    for (k, l) in locs {
        let (lang, lt, cs) = split_locale(&l);
        let reason = format!("locale {l} from Env {k}");
        let mut found = false;
        if lang != "C" && lang != "POSIX" && fs.is_file("/usr/lib/locale/locale-archive") {
            acc.keep("/usr/lib/locale/locale-archive", format!("{reason} (compiled locales archive)"));
            found = true;
        }
        let mut cands = vec![l.clone()];
        if let Some(cs) = &cs {
            cands.push(format!("{lt}.{cs}"));
        }
        cands.push(lt.clone());
        for c in cands {
            for d in ["/usr/lib/locale", "/usr/lib64/locale"] {
                let p = format!("{d}/{c}");
                if fs.resolve(&p).is_some_and(|r| r.node == Node::Dir) {
                    acc.keep_glob(fs, &p, &reason);
                    found = true;
                }
            }
        }
        if lang != "C" {
            for d in [format!("/usr/share/locale/{lang}"), format!("/usr/share/locale/{lt}"), format!("/usr/share/locale-langpack/{lang}")] {
                if fs.resolve(&d).is_some() {
                    acc.drop_exclusions.entry(d).or_insert_with(|| format!("{reason}: message catalogs of the configured language"));
                }
            }
        }
        if !found && lang != "C" {
            acc.warn(format!("glibc: Env {k}={l} but no compiled locale for it in the image (/usr/lib/locale): glibc falls back to C"));
        }
        notes.push(format!("{k}={l}"));
    }
    Some(format!("locale data for {}", notes.join(", ")))
}

fn keep_gconv(fs: &dyn RootFs, acc: &mut Acc, dir: &str, reason: &str) {
    acc.keep_glob(fs, dir, reason);
    let empty = globset::GlobSet::empty();
    let mut e = super::expand::Expander::new(fs, &empty);
    e.add(&format!("{dir}/*.so"), reason);
    for (p, _) in e.finish().paths {
        if fs.lstat(&p) == Some(Node::File) {
            acc.elf_roots.entry(p).or_insert_with(|| format!("{reason}: gconv module, dlopen()ed by iconv"));
        }
    }
}

/// Codesets glibc converts without gconv modules.
const BUILTIN_CODESETS: &[&str] = &["utf8", "ascii", "ansix3.41968", "iso88591", "iso646irv1991", "ucs4", "ucs2", "utf16", "utf32", "utf7", "internal"];

fn gconv(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    if let Some(gp) = cx.view.env_get("GCONV_PATH") {
        for d in gp.split(':').filter(|d| d.starts_with('/')) {
            keep_gconv(fs, acc, d, &format!("Env GCONV_PATH={gp}"));
        }
        return Some(format!("gconv modules from GCONV_PATH={gp}"));
    }
    let dirs = lib_dirs(cx);
    let gdir = dirs.iter().filter_map(|d| fs.resolve(&format!("{d}/gconv"))).find(|r| r.node == Node::Dir)?.path;
    // A configured locale with a codeset glibc does not have built in needs its module.
    let foreign: Vec<String> = configured_locales(cx)
        .into_iter()
        .filter(|(_, l)| split_locale(l).2.is_some_and(|cs| !BUILTIN_CODESETS.contains(&cs.as_str())))
        .map(|(k, l)| format!("{k}={l}"))
        .collect();
    if !foreign.is_empty() {
        keep_gconv(fs, acc, &gdir, &format!("locale codeset of {} needs gconv", foreign.join(", ")));
        return Some(format!("gconv modules {gdir} kept for {}", foreign.join(", ")));
    }
    acc.warn(format!(
        "glibc: gconv modules ({gdir}) not kept: iconv() to charsets other than the built-in UTF-8/ASCII/ISO-8859-1/UCS/UTF-16/32 fails; use --profile glibc-gconv to keep them"
    ));
    Some("gconv modules not kept (no GCONV_PATH, no non-UTF-8 locale)".into())
}

/// tzdata: the zone named by TZ (the /etc/localtime chain is kept by base).
fn timezone(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let mut notes = Vec::new();
    if let Some(r) = fs.resolve("/etc/localtime") {
        notes.push(format!("/etc/localtime → {}", r.path));
    }
    if let Some(tz) = cx.view.env_get("TZ") {
        let name = tz.strip_prefix(':').unwrap_or(tz);
        let reason = format!("Env TZ={tz}");
        if name.starts_with('/') {
            if fs.is_file(name) {
                acc.keep_glob(fs, name, &reason);
                notes.push(format!("TZ file {name}"));
            } else {
                acc.warn(format!("tzdata: Env TZ={tz} names a file that is not in the image"));
            }
        } else if !name.is_empty() && !name.contains("..") {
            let mut hit = false;
            for d in ["/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo"] {
                let p = format!("{d}/{name}");
                if fs.is_file(&p) {
                    acc.keep_glob(fs, &p, &reason);
                    hit = true;
                }
            }
            // POSIX TZ strings ("UTC0", "EST5EDT,M3.2.0,M11.1.0") need no file; posixrules is
            // consulted for DST rules of strings without a rule part.
            if hit {
                notes.push(format!("TZ zone {name}"));
            } else if name.bytes().any(|b| b.is_ascii_digit()) {
                notes.push(format!("TZ={tz} is a POSIX TZ string (no zone file)"));
                if fs.is_file("/usr/share/zoneinfo/posixrules") {
                    acc.keep_glob(fs, "/usr/share/zoneinfo/posixrules", &reason);
                }
            } else {
                acc.warn(format!("tzdata: Env TZ={tz} but no zone file /usr/share/zoneinfo/{name} in the image: the app runs in UTC"));
            }
        }
    }
    if notes.is_empty() {
        None
    } else {
        Some(notes.join(", "))
    }
}

/// Breadth-first list of files under `dir` (canonical, not following symlinked dirs), skipping
/// directory names in `skip`, at most `max` files.
pub(crate) fn list_files(fs: &dyn RootFs, dir: &str, skip: &[&str], max: usize) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut q = VecDeque::from([(dir.to_string(), 0usize)]);
    while let Some((d, depth)) = q.pop_front() {
        for name in fs.read_dir(&d) {
            let p = join_path(&d, &name);
            match fs.lstat(&p) {
                Some(Node::Dir) if depth < 32 && !skip.contains(&name.as_str()) => q.push_back((p, depth + 1)),
                Some(Node::File) => {
                    if out.len() >= max {
                        return (out, true);
                    }
                    out.push(p);
                }
                _ => {}
            }
        }
    }
    (out, false)
}

/// First line of a file, if it is a `#!` line.
pub(crate) fn shebang(fs: &dyn RootFs, path: &str) -> Option<String> {
    let b = fs.read(path)?;
    if !b.starts_with(b"#!") {
        return None;
    }
    let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len()).min(256);
    Some(String::from_utf8_lossy(&b[2..end]).trim().to_string())
}
