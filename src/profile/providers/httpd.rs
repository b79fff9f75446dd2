//! Apache httpd (its config: LoadModule, Include, DocumentRoot/Alias, log dirs) and PHP (php.ini
//! and conf.d: `extension=`/`zend_extension=`). Module and extension dirs are declarative
//! (profiles/apache.toml, php.toml); these providers add what the configuration names.
use super::super::{Acc, Ctx};
use super::servers::{conf_settings, each_config, expand_all};
use crate::elf::rootfs::{dirname, join_path};
use crate::elf::Node;

/// Main config file and the ServerRoot its relative paths start from.
const APACHE_CONFS: &[(&str, &str)] = &[
    ("/etc/apache2/apache2.conf", "/etc/apache2"),
    ("/usr/local/apache2/conf/httpd.conf", "/usr/local/apache2"),
    ("/etc/httpd/conf/httpd.conf", "/etc/httpd"),
];

/// Words of one httpd.conf line, quotes removed.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// apache: every config file reached from the main one through Include(Optional).
pub(crate) fn apache(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let (main, mut root) = APACHE_CONFS.iter().find(|(c, _)| fs.is_file(c)).map(|(c, r)| (c.to_string(), r.to_string()))?;
    let mut modules = 0;
    let read = each_config(cx, acc, vec![main], "apache", |acc, f, text, files| {
        for (n, line) in text.lines().enumerate() {
            let w = words(line.trim());
            let (Some(d), Some(a0)) = (w.first(), w.get(1)) else { continue };
            if d.starts_with('#') || d.starts_with('<') {
                continue;
            }
            let d = d.to_ascii_lowercase();
            let reason = format!("apache: `{} {}` in {f}", w[0], w[1..].join(" "));
            let last = w.last().map(String::as_str).unwrap_or(a0);
            let path = |p: &str| if p.starts_with('/') { p.to_string() } else { join_path(&root, p) };
            if d == "include" && a0.contains("${") {
                let fix = "--keep GLOB of the files it names, or --trace";
                acc.risk("config-include", format!("{f}:{}", n + 1), format!("apache: `{}` names a file through a variable set at run time: not read", line.trim()), fix);
            }
            if last.contains("${") || (d != "loadmodule" && a0.contains("${")) {
                continue; // Set by envvars at run time: the dirs are kept declaratively.
            }
            match d.as_str() {
                "serverroot" => root = a0.clone(),
                "include" | "includeoptional" => {
                    for p in expand_all(fs, &path(a0)) {
                        match fs.lstat(&p) {
                            Some(Node::Dir) => files.extend(expand_all(fs, &join_path(&p, "*"))),
                            Some(_) => files.push(p),
                            None => {}
                        }
                    }
                }
                "loadmodule" | "loadfile" => match fs.resolve(&path(last)).filter(|r| r.node == Node::File) {
                    Some(r) => {
                        modules += 1;
                        acc.elf_root(r.path, reason);
                    }
                    None => acc.warn(format!("{reason}: {} is not in the image (httpd will not start without it)", path(last))),
                },
                "documentroot" | "alias" | "scriptalias" if fs.resolve(&path(last)).is_some() => {
                    acc.keep_glob(fs, &path(last), &reason);
                }
                "errorlog" | "customlog" | "transferlog" | "pidfile" if !a0.starts_with('|') => {
                    if let Some(r) = fs.resolve(&dirname(&path(a0))).filter(|r| r.node == Node::Dir) {
                        acc.keep_dirs.entry(r.path).or_insert(reason);
                    }
                }
                _ => {}
            }
        }
    });
    Some(format!("{read} config file(s) read, {modules} LoadModule/LoadFile"))
}

/// php.ini files of every SAPI and their scan dirs.
const PHP_INIS: &[&str] = &[
    "/etc/php/*/*/php.ini", "/etc/php/*/*/conf.d/*.ini", "/usr/local/etc/php/php.ini", "/usr/local/etc/php/conf.d/*.ini",
    "/etc/php.ini", "/etc/php.d/*.ini",
];
/// Where `extension=name` is looked up when extension_dir is not set.
const PHP_EXT_DIRS: &[&str] = &["/usr/lib/php/2*", "/usr/local/lib/php/extensions/*", "/usr/lib64/php/modules"];

/// php: the extensions the ini files load, found by name in the extension dirs.
pub(crate) fn php(cx: &Ctx, acc: &mut Acc) -> Option<String> {
    let fs = cx.view.fs;
    let inis: Vec<String> = PHP_INIS.iter().flat_map(|p| expand_all(fs, p)).collect();
    let mut dirs: Vec<String> = PHP_EXT_DIRS.iter().flat_map(|p| expand_all(fs, p)).collect();
    let mut exts = Vec::new();
    for f in &inis {
        acc.keep(f.clone(), "php: ini file");
        let Some(b) = fs.read(f) else { continue };
        for (name, value) in conf_settings(&String::from_utf8_lossy(&b)) {
            let value = value.split(';').next().unwrap_or("").trim().to_string();
            match name.as_str() {
                "extension_dir" if value.starts_with('/') => dirs.insert(0, value),
                "extension" | "zend_extension" if !value.is_empty() => exts.push((f.clone(), value)),
                _ => {}
            }
        }
    }
    for (f, ext) in &exts {
        let candidates: Vec<String> = if ext.starts_with('/') {
            vec![ext.clone()]
        } else {
            dirs.iter().flat_map(|d| [join_path(d, ext), join_path(d, &format!("{ext}.so"))]).collect()
        };
        let reason = format!("php: extension={ext} in {f}");
        match candidates.iter().find_map(|c| fs.resolve(c).filter(|r| r.node == Node::File)) {
            Some(r) => acc.elf_root(r.path, reason),
            None => acc.warn(format!("{reason}: the extension is not in the image (PHP warns at startup and runs without it)")),
        }
    }
    Some(format!("{} ini file(s), {} extension line(s)", inis.len(), exts.len()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn httpd_words() {
        assert_eq!(super::words(r#"Alias "/icons/" "/usr/share/apache2/icons/""#), vec!["Alias", "/icons/", "/usr/share/apache2/icons/"]);
        assert_eq!(super::words("LoadModule php_module  /usr/lib/apache2/modules/libphp8.2.so"), vec!["LoadModule", "php_module", "/usr/lib/apache2/modules/libphp8.2.so"]);
    }
}
