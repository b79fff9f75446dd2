//! Database and cache servers: what their configuration names (PostgreSQL's postgresql.conf,
//! Redis' redis.conf). The module and share dirs are declarative (profiles/*.toml); these
//! providers add the data dirs, preloaded libraries, included files and paths the config names.
use std::collections::BTreeSet;

use super::super::expand::Expander;
use super::super::{Acc, Ctx};
use crate::elf::rootfs::{dirname, join_path};
use crate::elf::{Node, RootFs};

/// Every existing path a glob names (no exclusions), canonical.
pub(crate) fn expand_all(fs: &dyn RootFs, pattern: &str) -> Vec<String> {
    let empty = globset::GlobSet::empty();
    let mut e = Expander::new(fs, &empty);
    e.add(pattern, "");
    e.finish().paths.into_keys().collect()
}

/// Config files read from `start` on, each once (at most 1000): every one is kept and handed to
/// `each` with its text; `each` queues the files it includes. Returns how many were read.
pub(crate) fn each_config(cx: &Ctx, acc: &mut Acc, start: Vec<String>, what: &str, mut each: impl FnMut(&mut Acc, &str, &str, &mut Vec<String>)) -> usize {
    let mut queue = start;
    let mut seen = BTreeSet::new();
    while let Some(f) = queue.pop() {
        if !seen.insert(f.clone()) || seen.len() > 1000 {
            continue;
        }
        acc.keep(f.clone(), format!("{what}: configuration file"));
        match cx.view.fs.read(&f) {
            Some(b) => each(acc, &f, &String::from_utf8_lossy(&b), &mut queue),
            None if cx.view.fs.resolve(&f).is_some_and(|r| r.node == Node::Dir) => {}
            None => acc.risk("config-include", f.clone(), format!("{what}: the configuration includes {f}, which is not a readable file in the image"), "--keep GLOB of the file it should be, or --trace, or --profile FILE naming it"),
        }
    }
    seen.len()
}

/// `name = value` / `name value` lines of postgresql.conf (and redis.conf-like files):
/// comments dropped, one level of single or double quotes removed ('' is a quote inside).
pub fn conf_settings(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let split = line.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(line.len());
        let (name, rest) = line.split_at(split);
        let rest = rest.trim_start().strip_prefix('=').unwrap_or(rest).trim();
        out.push((name.to_ascii_lowercase(), conf_value(rest)));
    }
    out
}

/// A setting's value: quoted (up to the closing quote) or the first word (up to a comment).
fn conf_value(rest: &str) -> String {
    let mut chars = rest.chars().peekable();
    match chars.peek().copied() {
        Some(q @ ('\'' | '"')) => {
            chars.next();
            let mut v = String::new();
            while let Some(c) = chars.next() {
                if c == q {
                    if chars.peek() == Some(&q) {
                        chars.next();
                        v.push(q);
                        continue;
                    }
                    break;
                }
                v.push(c);
            }
            v
        }
        _ => rest.split('#').next().unwrap_or("").trim().to_string(),
    }
}

/// PostgreSQL's module dirs (`$libdir`) in the image.
const PG_LIBDIRS: &[&str] = &["/usr/lib/postgresql/*/lib", "/usr/local/lib/postgresql", "/usr/local/pgsql/lib", "/usr/lib64/pgsql"];

/// Config files PostgreSQL reads, or that initdb copies into a new data dir (the official image
/// tells users to edit the sample).
const PG_CONFS: &[&str] = &[
    "/etc/postgresql/*/*/postgresql.conf",
    "/usr/share/postgresql/*/postgresql.conf.sample",
    "/usr/share/postgresql/postgresql.conf.sample",
    "/usr/local/share/postgresql/postgresql.conf.sample",
    "/usr/local/pgsql/share/postgresql.conf.sample",
    "/usr/share/pgsql/postgresql.conf.sample",
];

/// postgresql: PGDATA (the database, kept whole), and what postgresql.conf names.
pub(crate) fn postgresql(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let mut notes = Vec::new();
    let mut confs: Vec<String> = PG_CONFS.iter().flat_map(|p| expand_all(fs, p)).collect();
    if let Some(pgdata) = cx.view.env_get("PGDATA").filter(|p| p.starts_with('/')) {
        if fs.resolve(pgdata).is_some_and(|r| r.node == Node::Dir) {
            acc.keep_glob(fs, pgdata, &format!("postgresql: Env PGDATA={pgdata} (the database)"));
            confs.extend(expand_all(fs, &join_path(pgdata, "postgresql*.conf")));
            notes.push(format!("PGDATA {pgdata}"));
        }
    }
    let libdirs: Vec<String> = PG_LIBDIRS.iter().flat_map(|p| expand_all(fs, p)).collect();
    let read = each_config(cx, acc, confs, "postgresql", |acc, f, text, queue| {
        for (name, value) in conf_settings(text) {
            pg_setting(cx, acc, f, &name, &value, &libdirs, queue);
        }
    });
    notes.push(format!("{read} config file(s) read"));
    Some(notes.join(", "))
}

/// One postgresql.conf setting that names files, dirs or libraries.
fn pg_setting(cx: &Ctx, acc: &mut Acc, file: &str, name: &str, value: &str, libdirs: &[String], confs: &mut Vec<String>) {
    let fs = cx.view.fs;
    let reason = format!("postgresql: {name} = '{value}' in {file}");
    let rel = |v: &str| if v.starts_with('/') { v.to_string() } else { join_path(&dirname(file), v) };
    match name {
        "include" => confs.push(rel(value)),
        // Missing is fine for include_if_exists: only what is there is read.
        "include_if_exists" if fs.resolve(&rel(value)).is_some() => confs.push(rel(value)),
        "include_dir" => confs.extend(expand_all(fs, &join_path(&rel(value), "*.conf"))),
        "shared_preload_libraries" | "session_preload_libraries" | "local_preload_libraries" => {
            for lib in value.split(',').map(|l| l.trim().trim_matches('"')).filter(|l| !l.is_empty()) {
                pg_library(cx, acc, lib, libdirs, &reason);
            }
        }
        "dynamic_library_path" => {
            for d in value.split(':').filter(|d| d.starts_with('/')) {
                for so in expand_all(fs, &join_path(d, "*.so")) {
                    acc.elf_root(so, reason.clone());
                }
            }
        }
        "hba_file" | "ident_file" | "ssl_cert_file" | "ssl_key_file" | "ssl_ca_file" | "ssl_crl_file" | "ssl_dh_params_file" | "data_directory"
            if value.starts_with('/') && fs.resolve(value).is_some() =>
        {
            acc.keep_glob(fs, value, &reason);
        }
        "unix_socket_directories" | "log_directory" | "stats_temp_directory" => {
            for d in value.split(',').map(str::trim).filter(|d| d.starts_with('/')) {
                if let Some(r) = fs.resolve(d).filter(|r| r.node == Node::Dir) {
                    acc.keep_dirs.entry(r.path).or_insert_with(|| reason.clone());
                }
            }
        }
        _ => {}
    }
}

/// A preloaded library: `$libdir/name`, `name` (found in the module dirs, `.so` optional) or
/// an absolute path. One the image does not have would stop the server: a warning.
fn pg_library(cx: &Ctx, acc: &mut Acc, lib: &str, libdirs: &[String], reason: &str) {
    let fs = cx.view.fs;
    let name = lib.strip_prefix("$libdir/").unwrap_or(lib);
    let candidates: Vec<String> = if name.starts_with('/') {
        vec![name.to_string(), format!("{name}.so")]
    } else {
        libdirs.iter().flat_map(|d| [join_path(d, name), join_path(d, &format!("{name}.so")), join_path(d, &format!("plugins/{name}.so"))]).collect()
    };
    match candidates.iter().find_map(|c| fs.resolve(c).filter(|r| r.node == Node::File)) {
        Some(r) => acc.elf_root(r.path, reason.to_string()),
        None => acc.warn(format!("{reason}: library {lib} is not in the image (the server will not start without it)")),
    }
}

/// Config files Redis/Valkey images start with (Debian's, the official image's convention).
const REDIS_CONFS: &[&str] = &[
    "/etc/redis/*.conf", "/etc/valkey/*.conf", "/usr/local/etc/redis/*.conf", "/usr/local/etc/valkey/*.conf",
    "/etc/redis.conf", "/usr/local/etc/redis.conf", "/data/*.conf",
];

/// redis: what redis.conf (and its includes) names.
pub(crate) fn redis(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let confs: Vec<String> = REDIS_CONFS.iter().flat_map(|p| expand_all(fs, p)).collect();
    let mut modules = 0;
    let read = each_config(cx, acc, confs, "redis", |acc, f, text, queue| {
        for (name, value) in conf_settings(text) {
            modules += redis_setting(cx, acc, f, &name, &value, queue);
        }
    });
    Some(format!("{read} config file(s) read, {modules} module(s) loaded"))
}

/// One redis.conf directive that names files, dirs or modules; 1 for a module found.
fn redis_setting(cx: &Ctx, acc: &mut Acc, f: &str, name: &str, value: &str, queue: &mut Vec<String>) -> usize {
    let fs = cx.view.fs;
    let reason = format!("redis: `{name} {value}` in {f}");
    let abs = value.starts_with('/');
    match name {
        "include" if value.contains(['*', '?', '[']) => queue.extend(expand_all(fs, value)),
        "include" => queue.push(value.to_string()),
        "loadmodule" => match fs.resolve(value).filter(|r| abs && r.node == Node::File) {
            Some(r) => {
                acc.elf_root(r.path, reason);
                return 1;
            }
            None => acc.warn(format!("{reason}: module {value} is not in the image (the server will not start without it)")),
        },
        "aclfile" | "tls-cert-file" | "tls-key-file" | "tls-ca-cert-file" | "tls-dh-params-file" if abs => {
            acc.keep_glob(fs, value, &reason);
        }
        "dir" | "logfile" | "pidfile" | "unixsocket" if abs => {
            let d = if name == "dir" { value.to_string() } else { dirname(value) };
            if let Some(r) = fs.resolve(&d).filter(|r| r.node == Node::Dir) {
                acc.keep_dirs.entry(r.path).or_insert(reason);
            }
        }
        _ => {}
    }
    0
}

#[cfg(test)]
mod tests {
    use super::conf_settings;

    #[test]
    fn postgresql_conf_lines() {
        let text = "# c\nshared_preload_libraries = 'pg_stat_statements,auto_explain'\t# preload\n\
                    include_dir 'conf.d'\nlisten_addresses='*'\nlog_line_prefix = 'it''s %m '\nport = 5433 # x\n";
        let s = conf_settings(text);
        assert_eq!(
            s,
            vec![
                ("shared_preload_libraries".to_string(), "pg_stat_statements,auto_explain".to_string()),
                ("include_dir".to_string(), "conf.d".to_string()),
                ("listen_addresses".to_string(), "*".to_string()),
                ("log_line_prefix".to_string(), "it's %m ".to_string()),
                ("port".to_string(), "5433".to_string()),
            ]
        );
    }
}
