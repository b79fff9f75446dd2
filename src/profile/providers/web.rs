//! jvm (JAVA_HOME layout) and nginx (configuration parsing).
use std::collections::BTreeSet;

use super::app_workdir;
use crate::elf::rootfs::{dirname, join_path};
use crate::elf::{Node, RootFs};
use crate::profile::expand::Expander;
use crate::profile::{schema, Acc, Ctx};

fn is_dir(fs: &dyn RootFs, p: &str) -> bool {
    fs.resolve(p).is_some_and(|r| r.node == Node::Dir)
}

/// Shared libraries of a JDK that need a desktop (X11, ALSA): kept as files, not ELF roots, so
/// headless apps do not pull in the X11 stack. GUI apps need `--keep` for those libraries.
const JVM_GUI_LIBS: &[&str] = &["libawt_xawt.so", "libsplashscreen.so", "libjsound.so", "libjawt.so"];

/// JAVA_HOME candidates: Env JAVA_HOME, and `H` for `H/bin/java` or `H/lib[/arch]/server/libjvm.so`
/// in the closure. Canonical, deduplicated.
fn java_homes(cx: &Ctx) -> BTreeSet<(String, String)> {
    let fs = cx.view.fs;
    let mut out = BTreeSet::new();
    let mut add = |p: String, why: String| {
        if let Some(r) = fs.resolve(&p) {
            if r.node == Node::Dir && !super::SYSTEM_DIRS.contains(&r.path.as_str()) && (is_dir(fs, &format!("{}/lib", r.path)) || is_dir(fs, &format!("{}/jre", r.path))) {
                out.insert((r.path, why));
            }
        }
    };
    if let Some(h) = cx.view.env_get("JAVA_HOME") {
        add(h.to_string(), format!("Env JAVA_HOME={h}"));
    }
    for p in &cx.closure {
        let base = p.rsplit('/').next().unwrap_or(p);
        if base == "java" && p.ends_with("/bin/java") {
            let Some(r) = fs.resolve(p) else { continue };
            add(dirname(&dirname(&r.path)), format!("java launcher {}", r.path));
        } else if base == "libjvm.so" {
            // H/lib/server/libjvm.so (9+), H/jre/lib/<arch>/server/libjvm.so (8).
            let mut h = dirname(&dirname(p));
            if !h.ends_with("/lib") {
                h = dirname(&h);
            }
            add(dirname(&h), format!("libjvm.so {p}"));
        }
    }
    // A JDK 8 launcher in H/bin/java uses H/jre.
    out
}

pub(crate) fn jvm(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let homes = java_homes(cx);
    let mut notes = Vec::new();
    for (home, why) in &homes {
        let ex: Vec<String> = ["lib/src.zip", "src.zip", "jmods", "man", "docs", "demo", "sample", "include", "lib/ct.sym"]
            .iter()
            .map(|e| format!("{home}/{e}"))
            .collect();
        let Ok(exclude) = schema::globset(&ex) else { continue };
        let reason = format!("jvm: JAVA_HOME {home} ({why})");
        let mut e = Expander::new(fs, &exclude);
        e.add(home, &reason);
        acc.absorb(e.finish(), false, &reason);
        // libjvm.so and the libraries the launcher and the class library dlopen (libjava,
        // libjimage, libnet, libnio, libzip, libverify, libjli, libmanagement…): every lib/**/*.so
        // except desktop-only ones.
        let mut e = Expander::new(fs, &exclude);
        e.add(&format!("{home}/lib/**/*.so"), &reason);
        e.add(&format!("{home}/jre/lib/**/*.so"), &reason);
        let mut n = 0;
        for (p, _) in e.finish().paths {
            let base = p.rsplit('/').next().unwrap_or(&p);
            if fs.lstat(&p) == Some(Node::File) && !JVM_GUI_LIBS.contains(&base) {
                acc.elf_roots.entry(p).or_insert_with(|| format!("{reason}: JDK native library, dlopen()ed by the launcher/class library"));
                n += 1;
            }
        }
        if !is_file_any(fs, &[format!("{home}/lib/modules"), format!("{home}/jre/lib/rt.jar"), format!("{home}/lib/rt.jar")]) {
            acc.warn(format!("jvm: {home} has neither lib/modules nor rt.jar: is it a complete Java runtime?"));
        }
        notes.push(format!("JAVA_HOME {home} ({why}; {n} native libraries as ELF roots)"));
    }
    if homes.is_empty() {
        acc.warn("jvm: no JAVA_HOME found (Env JAVA_HOME, bin/java or libjvm.so in the closure)".to_string());
    }
    // The app's jars: jar roots, CLASSPATH, WorkingDir (kept whole by base).
    for r in cx.view.roots {
        if r.ends_with(".jar") || r.ends_with(".war") {
            acc.keep(r.clone(), "jvm: application archive named as a root");
        }
    }
    if let Some(cp) = cx.view.env_get("CLASSPATH") {
        for e in cp.split(':').filter(|e| e.starts_with('/')) {
            let pat = match e.strip_suffix("/*") {
                Some(dir) => format!("{dir}/*.jar"),
                None => e.to_string(),
            };
            acc.keep_glob(fs, &pat, &format!("jvm: Env CLASSPATH={cp}"));
        }
    }
    if let Some(wd) = app_workdir(cx) {
        notes.push(format!("app jars expected in WorkingDir {wd}"));
    } else if !cx.view.roots.iter().any(|r| r.ends_with(".jar")) {
        acc.warn("jvm: no application jar found (no jar root, no CLASSPATH, WorkingDir is a system dir): pass the jar with --keep".to_string());
    }
    Some(notes.join("; "))
}

fn is_file_any(fs: &dyn RootFs, ps: &[String]) -> bool {
    ps.iter().any(|p| fs.is_file(p))
}

/// nginx.conf tokens → statements: (directive, args). Blocks are flattened (context ignored).
/// Handles `#` comments, single/double quotes and backslash escapes.
pub fn nginx_statements(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut tok = String::new();
    let mut in_tok = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    let flush = |tok: &mut String, in_tok: &mut bool, cur: &mut Vec<String>| {
        if *in_tok {
            cur.push(std::mem::take(tok));
            *in_tok = false;
        }
    };
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    tok.push(n);
                }
            } else if c == q {
                quote = None;
            } else {
                tok.push(c);
            }
            continue;
        }
        match c {
            '#' => {
                flush(&mut tok, &mut in_tok, &mut cur);
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                quote = Some(c);
                in_tok = true;
            }
            ';' | '{' | '}' => {
                flush(&mut tok, &mut in_tok, &mut cur);
                if !cur.is_empty() {
                    let d = cur.remove(0);
                    out.push((d, std::mem::take(&mut cur)));
                }
                cur.clear();
            }
            c if c.is_whitespace() => flush(&mut tok, &mut in_tok, &mut cur),
            '\\' => {
                if let Some(n) = chars.next() {
                    tok.push(n);
                    in_tok = true;
                }
            }
            _ => {
                tok.push(c);
                in_tok = true;
            }
        }
    }
    out
}

/// nginx's prefixes for relative paths: conf dir for include/ssl files, prefix for the rest.
const NGINX_PREFIXES: &[&str] = &["/etc/nginx", "/usr/share/nginx", "/usr/lib/nginx", "/usr/local/nginx", "/usr/local/openresty/nginx"];

fn abs_candidates(p: &str) -> Vec<String> {
    if p.starts_with('/') {
        vec![p.to_string()]
    } else {
        NGINX_PREFIXES.iter().map(|pre| join_path(pre, p)).collect()
    }
}

pub(crate) fn nginx(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let mut files: Vec<String> = Vec::new();
    for c in ["/etc/nginx/nginx.conf", "/usr/local/nginx/conf/nginx.conf", "/usr/local/openresty/nginx/conf/nginx.conf"] {
        if fs.is_file(c) {
            files.push(c.to_string());
        }
    }
    if files.is_empty() {
        acc.warn("nginx: no nginx.conf found (/etc/nginx/nginx.conf)".to_string());
        return None;
    }
    let mut seen = BTreeSet::new();
    let mut users = BTreeSet::new();
    let mut modules = 0;
    while let Some(f) = files.pop() {
        if !seen.insert(f.clone()) || seen.len() > 1000 {
            continue;
        }
        acc.keep(f.clone(), "nginx: configuration file");
        let Some(b) = fs.read(&f) else { continue };
        let conf_dir = dirname(&f);
        for (d, args) in nginx_statements(&String::from_utf8_lossy(&b)) {
            let Some(a0) = args.first() else { continue };
            if a0.contains('$') {
                if ["root", "alias", "include", "load_module"].contains(&d.as_str()) {
                    acc.warn(format!("nginx: {f}: `{d} {a0}` uses variables; the paths it names are not known statically — use --keep"));
                }
                continue;
            }
            let reason = format!("nginx: `{d} {a0}` in {f}");
            match d.as_str() {
                "include" => {
                    let pat = if a0.starts_with('/') { a0.clone() } else { join_path(&conf_dir, a0) };
                    let empty = globset::GlobSet::empty();
                    let mut e = Expander::new(fs, &empty);
                    e.add(&pat, &reason);
                    let x = e.finish();
                    // `include` reads files: a directory matched (hostile `include /;`) is not kept.
                    for (p, r) in x.paths.into_iter().chain(x.link_targets) {
                        match fs.lstat(&p) {
                            Some(Node::File) => {
                                files.push(p.clone());
                                acc.keep(p, r);
                            }
                            Some(Node::Symlink(_)) => acc.keep(p, r),
                            _ => {}
                        }
                    }
                }
                "root" | "alias" | "pid" | "error_log" | "access_log" | "client_body_temp_path" | "proxy_temp_path" | "fastcgi_temp_path"
                | "uwsgi_temp_path" | "scgi_temp_path" | "proxy_cache_path" | "fastcgi_cache_path" => {
                    if a0 == "off" || a0 == "stderr" || a0.starts_with("syslog:") || a0.starts_with("memory:") || a0 == "/dev/stdout" || a0 == "/dev/stderr" {
                        continue;
                    }
                    for c in abs_candidates(a0) {
                        let target = if matches!(d.as_str(), "pid" | "error_log" | "access_log") { dirname(&c) } else { c };
                        if fs.resolve(&target).is_some() {
                            acc.keep_glob(fs, &target, &reason);
                            break;
                        }
                    }
                }
                "ssl_certificate" | "ssl_certificate_key" | "ssl_trusted_certificate" | "ssl_client_certificate" | "ssl_dhparam" | "ssl_crl" | "auth_basic_user_file" => {
                    let p = if a0.starts_with('/') { a0.clone() } else { join_path(&conf_dir, a0) };
                    if fs.resolve(&p).is_some() {
                        acc.keep_glob(fs, &p, &reason);
                    } else {
                        acc.warn(format!("nginx: {f}: `{d} {a0}` names a file that is not in the image (mounted at run time?)"));
                    }
                }
                "load_module" => {
                    let found = abs_candidates(a0).into_iter().find_map(|c| fs.resolve(&c).filter(|r| r.node == Node::File).map(|r| (c, r)));
                    match found {
                        Some((c, r)) => {
                            for s in r.symlinks {
                                acc.keep(s, format!("{reason} (symlink on the way to {})", r.path));
                            }
                            acc.elf_root(r.path, reason);
                            let _ = c;
                            modules += 1;
                        }
                        None => acc.warn(format!("nginx: {f}: module {a0} not found in the image")),
                    }
                }
                "user" => {
                    users.insert(a0.clone());
                }
                _ => {}
            }
        }
    }
    let mut notes = vec![format!("{} config files, {modules} dynamic modules", seen.len())];
    if users.is_empty() {
        notes.push("no `user` directive (workers run as the master's user, or nobody when root)".into());
    }
    let passwd = fs.read("/etc/passwd").map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    for u in users {
        if !passwd.lines().any(|l| l.split(':').next() == Some(u.as_str())) {
            acc.warn(format!("nginx: `user {u}` but {u} is not in /etc/passwd: nginx will refuse to start (as before slimming)"));
        }
        notes.push(format!("workers run as user {u} (needs its /etc/passwd and /etc/group entries, kept by base)"));
    }
    Some(notes.join("; "))
}
