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

/// A `*.dist-info` (METADATA, RECORD) or `*.egg-info` (PKG-INFO; Debian's python3-* packages
/// install these, their files listed by dpkg) directory.
fn python(fs: &TreeFs, dist_info: &str) -> Option<Package> {
    let egg = dist_info.ends_with(".egg-info");
    let meta = String::from_utf8_lossy(&fs.read_file(&format!("{dist_info}/{}", if egg { "PKG-INFO" } else { "METADATA" }))?).into_owned();
    let get = |k: &str| meta.lines().take_while(|l| !l.is_empty()).find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
    let (name, version) = (get("Name:")?, get("Version:")?);
    let site = dist_info.rsplit_once('/').map_or("", |(d, _)| d);
    let record = fs.read_file(&format!("{dist_info}/RECORD")).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    // RECORD is CSV; paths with commas are quoted, rare enough to skip.
    let own = || fs.list_dir(dist_info).into_iter().map(|n| stub(format!("{dist_info}/{n}"))).collect();
    let files = if egg { own() } else { record.lines().filter_map(|l| l.split(',').next()).filter(|p| !p.is_empty() && !p.starts_with('"')).map(|p| stub(format!("{site}/{p}"))).collect() };
    Some(Package { ecosystem: "pypi", purl: format!("pkg:pypi/{}@{}", purl_escape(&pypi_name(&name)), purl_escape(&version)), name, version, files })
}

/// The nearest directory above `path` that is an npm package root.
fn npm_root<'a>(path: &'a str, roots: &BTreeMap<String, Vec<String>>) -> Option<&'a str> {
    let mut p = path;
    while let Some((dir, _)) = p.rsplit_once('/') {
        if roots.contains_key(dir) {
            return Some(dir);
        }
        p = dir;
    }
    None
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

/// A directory with a `package.json` that names a package (name and version), as syft's
/// JavaScript cataloger reads them: under node_modules or not (`/app`, `/usr/share/nodejs/x`).
fn npm_named(fs: &TreeFs, dir: &str) -> bool {
    let Some(b) = fs.read_file(&format!("{dir}/package.json")) else { return false };
    serde_json::from_slice::<serde_json::Value>(&b).is_ok_and(|v| v.get("name").is_some_and(|n| n.is_string()) && v.get("version").is_some_and(|n| n.is_string()))
}

pub fn packages(fs: &TreeFs) -> Vec<Package> {
    let mut out = Vec::new();
    let mut leaves = Vec::new();
    let mut roots: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (raw, id) in fs.tree.walk() {
        let Ok(p) = String::from_utf8(raw) else { continue };
        let path = format!("/{p}");
        if matches!(fs.tree.node(id), Node::Dir { .. }) {
            if path.ends_with(".dist-info") || path.ends_with(".egg-info") {
                out.extend(python(fs, &path));
            }
            continue;
        }
        if let Some(dir) = path.strip_suffix("/package.json").filter(|d| npm_named(fs, d)) {
            roots.insert(dir.to_string(), Vec::new());
        }
        leaves.push(path);
    }
    for path in leaves {
        if let Some(root) = npm_root(&path, &roots).map(str::to_string) {
            roots.entry(root).or_default().push(path);
        }
    }
    out.extend(roots.into_iter().filter_map(|(dir, files)| npm(fs, &dir, files)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_roots_and_pypi_names() {
        let roots: BTreeMap<String, Vec<String>> = ["/app", "/app/node_modules/express", "/app/node_modules/@types/node"].iter().map(|r| (r.to_string(), Vec::new())).collect();
        assert_eq!(npm_root("/app/node_modules/express/lib/x.js", &roots), Some("/app/node_modules/express"));
        assert_eq!(npm_root("/app/node_modules/@types/node/index.d.ts", &roots), Some("/app/node_modules/@types/node"));
        assert_eq!(npm_root("/app/node_modules/a/b.js", &roots), Some("/app"));
        assert_eq!(npm_root("/usr/bin/node", &roots), None);
        assert_eq!(pypi_name("Flask_SQLAlchemy"), "flask-sqlalchemy");
    }
}
