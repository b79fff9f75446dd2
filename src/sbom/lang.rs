//! Language packages in the tree: Python `*.dist-info` (METADATA, RECORD) and npm packages
//! (`node_modules/[@scope/]name/package.json`).
use super::{purl_escape, File, Package};
use crate::elf::RootFs;
use crate::fs::Node;
use crate::plan::TreeFs;
use std::collections::BTreeMap;

fn stub(path: String) -> File {
    File { path, sha1: String::new(), sha256: String::new() }
}

/// PEP 503 normalised name, as the pypi purl type wants it.
fn pypi_name(n: &str) -> String {
    let mut out = String::new();
    for c in n.to_lowercase().chars() {
        let c = if c == '_' || c == '.' { '-' } else { c };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

fn python(fs: &TreeFs, dist_info: &str) -> Option<Package> {
    let meta = String::from_utf8_lossy(&fs.read_file(&format!("{dist_info}/METADATA"))?).into_owned();
    let get = |k: &str| meta.lines().take_while(|l| !l.is_empty()).find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
    let (name, version) = (get("Name:")?, get("Version:")?);
    let site = dist_info.rsplit_once('/').map_or("", |(d, _)| d);
    let record = fs.read_file(&format!("{dist_info}/RECORD")).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    // RECORD is CSV; paths with commas are quoted, rare enough to skip.
    let files = record.lines().filter_map(|l| l.split(',').next()).filter(|p| !p.is_empty() && !p.starts_with('"')).map(|p| stub(format!("{site}/{p}"))).collect();
    Some(Package { ecosystem: "pypi", purl: format!("pkg:pypi/{}@{}", purl_escape(&pypi_name(&name)), purl_escape(&version)), name, version, files })
}

/// The package directory a path under node_modules belongs to (the innermost one).
fn npm_root(path: &str) -> Option<&str> {
    let i = path.rfind("/node_modules/")? + "/node_modules/".len();
    let rest = &path[i..];
    let mut parts = rest.splitn(3, '/');
    let first = parts.next()?;
    let len = if first.starts_with('@') { first.len() + 1 + parts.next()?.len() } else { first.len() };
    Some(&path[..i + len])
}

fn npm(fs: &TreeFs, dir: &str, files: Vec<String>) -> Option<Package> {
    let v: serde_json::Value = serde_json::from_slice(&fs.read_file(&format!("{dir}/package.json"))?).ok()?;
    let (name, version) = (v.get("name")?.as_str()?.to_string(), v.get("version")?.as_str()?.to_string());
    let purl = match name.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => format!("pkg:npm/{}/{}@{}", purl_escape(scope), purl_escape(n), purl_escape(&version)),
        _ => format!("pkg:npm/{}@{}", purl_escape(&name), purl_escape(&version)),
    };
    Some(Package { ecosystem: "npm", purl, name, version, files: files.into_iter().map(stub).collect() })
}

pub fn packages(fs: &TreeFs) -> Vec<Package> {
    let mut out = Vec::new();
    let mut npm_files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (raw, id) in fs.tree.walk() {
        let Ok(p) = String::from_utf8(raw) else { continue };
        let path = format!("/{p}");
        let dir = matches!(fs.tree.node(id), Node::Dir { .. });
        if dir && path.ends_with(".dist-info") {
            out.extend(python(fs, &path));
        } else if !dir {
            if let Some(root) = npm_root(&path) {
                npm_files.entry(root.to_string()).or_default().push(path.clone());
            }
        }
    }
    for (dir, files) in npm_files {
        if fs.lstat(&format!("{dir}/package.json")).is_some() {
            out.extend(npm(fs, &dir, files));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_roots_and_pypi_names() {
        assert_eq!(npm_root("/app/node_modules/express/lib/x.js"), Some("/app/node_modules/express"));
        assert_eq!(npm_root("/app/node_modules/@types/node/index.d.ts"), Some("/app/node_modules/@types/node"));
        assert_eq!(npm_root("/app/node_modules/a/node_modules/b/package.json"), Some("/app/node_modules/a/node_modules/b"));
        assert_eq!(npm_root("/app/index.js"), None);
        assert_eq!(pypi_name("Flask_SQLAlchemy"), "flask-sqlalchemy");
    }
}
