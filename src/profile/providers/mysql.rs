//! MariaDB/MySQL: what my.cnf and the files it includes name (`!include`, `!includedir`,
//! plugin_dir, plugin-load-add, datadir, socket and log dirs, message and charset dirs). The
//! server binaries, plugin and share dirs are declarative (profiles/mariadb.toml).
use super::super::{Acc, Ctx};
use super::servers::{conf_settings, each_config, expand_all};
use crate::elf::rootfs::{dirname, join_path};
use crate::elf::Node;

/// Config files the server and its clients read first (Debian's alternatives link, the
/// official image's and RPM layouts).
const MY_CNFS: &[&str] = &["/etc/my.cnf", "/etc/mysql/my.cnf", "/etc/mysql/mariadb.cnf", "/usr/local/mysql/etc/my.cnf", "/usr/etc/my.cnf"];

/// Plugin dirs used when no plugin_dir is set.
const PLUGIN_DIRS: &[&str] = &["/usr/lib/mysql/plugin", "/usr/lib64/mysql/plugin", "/usr/lib/mariadb/plugin", "/usr/local/mysql/lib/plugin"];

/// One `key = value` of a my.cnf, with the file it is in.
struct Setting {
    file: String,
    key: String,
    value: String,
}

/// mariadb: read my.cnf and what it includes, then act on the settings that name files.
pub(crate) fn mariadb(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let confs: Vec<String> = MY_CNFS.iter().flat_map(|p| expand_all(fs, p)).collect();
    let mut settings = Vec::new();
    let read = each_config(cx, acc, confs, "mariadb", |acc, f, text, queue| {
        for (key, value) in conf_settings(text) {
            match key.as_str() {
                "!include" => queue.push(value),
                // The server reads *.cnf (and *.ini) of an included dir.
                "!includedir" => {
                    for ext in ["*.cnf", "*.ini"] {
                        queue.extend(expand_all(fs, &join_path(&value, ext)));
                    }
                    if fs.resolve(&value).is_none_or(|r| r.node != Node::Dir) {
                        acc.warn(format!("mariadb: `!includedir {value}` in {f}: not a directory in the image"));
                    }
                }
                _ => settings.push(Setting { file: f.to_string(), key: option_name(&key), value }),
            }
        }
    });
    let plugin_dirs = plugin_dirs(cx, &settings);
    let mut loaded = 0;
    for s in &settings {
        loaded += setting(cx, acc, s, &plugin_dirs);
    }
    Some(format!("{read} config file(s) read, {loaded} plugin(s) loaded by config"))
}

/// An option's canonical name: `-` and `_` are the same, `loose-` only silences unknown options.
fn option_name(key: &str) -> String {
    let k = key.replace('-', "_");
    k.strip_prefix("loose_").unwrap_or(&k).to_string()
}

/// The plugin dirs: the last plugin_dir set (as the server does), else the packaged ones.
fn plugin_dirs(cx: &Ctx, settings: &[Setting]) -> Vec<String> {
    let fs = cx.view.fs;
    match settings.iter().rev().find(|s| s.key == "plugin_dir" && s.value.starts_with('/')) {
        Some(s) => vec![s.value.trim_end_matches('/').to_string()],
        None => PLUGIN_DIRS.iter().filter(|d| fs.resolve(d).is_some_and(|r| r.node == Node::Dir)).map(|d| d.to_string()).collect(),
    }
}

/// One setting that names files, dirs or plugins; returns how many plugins it loads.
fn setting(cx: &Ctx, acc: &mut Acc, s: &Setting, plugin_dirs: &[String]) -> usize {
    let fs = cx.view.fs;
    let reason = format!("mariadb: {} = {} in {}", s.key, s.value, s.file);
    let abs = s.value.starts_with('/');
    match s.key.as_str() {
        "plugin_dir" if abs => {
            for so in expand_all(fs, &join_path(&s.value, "*.so")) {
                acc.elf_root(so, reason.clone());
            }
        }
        "plugin_load" | "plugin_load_add" => return plugins(cx, acc, &s.value, plugin_dirs, &reason),
        "datadir" | "lc_messages_dir" | "character_sets_dir" | "ssl_cert" | "ssl_key" | "ssl_ca" | "ssl_capath" | "ssl_crl" | "init_file" | "file_key_management_filename"
            if abs && fs.resolve(&s.value).is_some() =>
        {
            acc.keep_glob(fs, &s.value, &reason);
        }
        "socket" | "pid_file" | "log_error" | "general_log_file" | "slow_query_log_file" | "log_bin" | "tmpdir" | "secure_file_priv" if abs => {
            let dir = if matches!(s.key.as_str(), "tmpdir" | "secure_file_priv") { s.value.clone() } else { dirname(&s.value) };
            if let Some(r) = fs.resolve(&dir).filter(|r| r.node == Node::Dir) {
                acc.keep_dirs.entry(r.path).or_insert(reason);
            }
        }
        _ => {}
    }
    0
}

/// `plugin-load-add = [name=]lib.so[;…]`: each library from the plugin dir. One the image does
/// not have stops the server at start: a warning.
fn plugins(cx: &Ctx, acc: &mut Acc, value: &str, plugin_dirs: &[String], reason: &str) -> usize {
    let fs = cx.view.fs;
    let mut n = 0;
    for item in value.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let lib = item.rsplit('=').next().unwrap_or(item);
        let lib = if lib.ends_with(".so") { lib.to_string() } else { format!("{lib}.so") };
        match plugin_dirs.iter().find_map(|d| fs.resolve(&join_path(d, &lib)).filter(|r| r.node == Node::File)) {
            Some(r) => {
                acc.elf_root(r.path, reason.to_string());
                n += 1;
            }
            None => acc.warn(format!("{reason}: plugin {lib} is not in the image (the server will not start without it)")),
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::option_name;

    #[test]
    fn option_names_are_canonical() {
        assert_eq!(option_name("plugin-load-add"), "plugin_load_add");
        assert_eq!(option_name("loose-plugin_dir"), "plugin_dir");
        assert_eq!(option_name("lc_messages_dir"), "lc_messages_dir");
    }
}
