//! The slimmed image's SBOM: OS packages from its (rewritten) dpkg database, and the language
//! packages the profiles know (Python dist-info, node_modules, Java archives), each with the files it kept
//! and their SHA-1/SHA-256. Written as SPDX 2.3 or CycloneDX 1.6 JSON with serde_json (the
//! typed SBOM crates cover older CycloneDX only, or are stale); checked in tests by syft's
//! reader and by spdx-tools / the CycloneDX 1.6 schema.
mod formats;
mod java;
mod lang;

use crate::fs::{ContentStore, Data, Node, Tree};
use crate::plan::TreeFs;
use crate::elf::RootFs;
use sha2::Digest as _;

pub use formats::{cyclonedx, spdx};
/// The packages of one Java archive (for the fuzz harness).
pub use java::packages as jar_packages;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// SPDX 2.3 JSON.
    #[value(name = "spdx-json")]
    SpdxJson,
    /// CycloneDX 1.6 JSON.
    #[value(name = "cyclonedx-json")]
    CyclonedxJson,
}

#[derive(Debug, Clone)]
pub struct File {
    pub path: String,
    pub sha1: String,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct Package {
    /// `deb`, `apk`, `pypi`, `npm`, `maven`.
    pub ecosystem: &'static str,
    pub name: String,
    pub version: String,
    /// Empty when it is not known (a Java archive without pom.properties has no group).
    pub purl: String,
    pub files: Vec<File>,
}

/// What the SBOM describes beside its packages.
pub struct Subject {
    pub image: String,
    /// The slimmed layer's diff_id: names the document (namespace, serial number).
    pub diff_id: String,
    /// RFC 3339, the image's `created` (so the same input gives the same SBOM).
    pub created: String,
    /// (`debian`, `12`) from /etc/os-release.
    pub distro: Option<(String, String)>,
}

/// purl components are percent-encoded except the unreserved characters (purl spec).
pub fn purl_escape(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// `ID` and `VERSION_ID` of /etc/os-release (or /usr/lib/os-release).
pub fn distro(fs: &TreeFs) -> Option<(String, String)> {
    let b = fs.read_file("/etc/os-release").or_else(|| fs.read_file("/usr/lib/os-release"))?;
    let text = String::from_utf8_lossy(&b);
    let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('='))).map(|v| v.trim().trim_matches('"').to_string());
    Some((get("ID")?, get("VERSION_ID").unwrap_or_default()))
}

fn hashed(fs: &TreeFs, path: &str) -> Option<File> {
    let id = fs.node_at(path)?;
    let Node::Leaf(ino) = fs.tree.node(id) else { return None };
    let bytes = match &fs.tree.inode(*ino).data {
        Data::File { content } => fs.store.read_all(content).ok()?,
        Data::Symlink { target } => target.clone(),
        _ => return None,
    };
    Some(File { path: path.to_string(), sha1: hex::encode(sha1::Sha1::digest(&bytes)), sha256: hex::encode(sha2::Sha256::digest(&bytes)) })
}

/// Files by canonical path (the lists name `/bin/ls` on merged-/usr images), hashed.
fn files(fs: &TreeFs, paths: &[String]) -> Vec<File> {
    let mut out: Vec<File> = paths.iter().filter_map(|p| fs.location(p).map(|(loc, _)| loc)).filter_map(|p| hashed(fs, &p)).collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// Every Java archive file (not symlinks to one) of the tree, read for its packages. An
/// archive that cannot be read is a warning naming it.
fn java_archives(fs: &TreeFs, warnings: &mut Vec<String>) -> Vec<Package> {
    let mut out = Vec::new();
    for (raw, id) in fs.tree.walk() {
        let Ok(p) = String::from_utf8(raw) else { continue };
        let Node::Leaf(ino) = fs.tree.node(id) else { continue };
        let Data::File { content } = &fs.tree.inode(*ino).data else { continue };
        if !java::is_archive(&p) {
            continue;
        }
        let path = format!("/{p}");
        let read = match content.len > java::MAX_ARCHIVE {
            true => Err(format!("{} bytes, more than {}", content.len, java::MAX_ARCHIVE)),
            false => fs.store.read_all(content).map_err(|e| e.to_string()).and_then(|b| java::packages(&path, b)),
        };
        match read {
            Ok(pkgs) => out.extend(pkgs),
            Err(e) => warnings.push(format!("{path}: Java archive not read: {e}")),
        }
    }
    out
}

/// Every package of the slimmed tree, OS packages first, each group by name, and the
/// warnings about files that could not be read.
pub fn collect(tree: &Tree, store: &ContentStore) -> (Subject, Vec<Package>, Vec<String>) {
    let fs = TreeFs { tree, store };
    let distro = distro(&fs);
    let distro_q = distro.as_ref().map(|(id, v)| format!("&distro={}", purl_escape(&format!("{id}-{v}")))).unwrap_or_default();
    // The purl namespace is the distribution (`debian`, `alpine`).
    let ns = distro.as_ref().map_or("debian".to_string(), |(id, _)| id.clone());
    let mut pkgs: Vec<Package> = crate::pkgdb::installed(tree, store)
        .into_iter()
        .map(|p| Package {
            ecosystem: p.ecosystem,
            purl: format!("pkg:{}/{}/{}@{}?arch={}{distro_q}", p.ecosystem, purl_escape(&ns), purl_escape(&p.name), purl_escape(&p.version), purl_escape(&p.arch)),
            files: files(&fs, &p.files),
            name: p.name,
            version: p.version,
        })
        .collect();
    pkgs.sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
    let mut warnings = Vec::new();
    let mut langs = lang::packages(&fs);
    langs.extend(java_archives(&fs, &mut warnings));
    for l in &mut langs {
        l.files = files(&fs, &l.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>());
    }
    langs.sort_by(|a, b| (a.ecosystem, &a.name, &a.version, &a.files.first().map(|f| &f.path)).cmp(&(b.ecosystem, &b.name, &b.version, &b.files.first().map(|f| &f.path))));
    // The same jar kept at two places is one package with two files.
    langs.dedup_by(|b, a| {
        let same = a.ecosystem == "maven" && (a.ecosystem, &a.name, &a.version, &a.purl) == (b.ecosystem, &b.name, &b.version, &b.purl);
        if same {
            a.files.append(&mut b.files);
        }
        same
    });
    pkgs.extend(langs);
    let subject = Subject { image: String::new(), diff_id: String::new(), created: String::new(), distro };
    (subject, pkgs, warnings)
}

pub fn render(format: Format, subject: &Subject, pkgs: &[Package]) -> serde_json::Value {
    match format {
        Format::SpdxJson => spdx(subject, pkgs),
        Format::CyclonedxJson => cyclonedx(subject, pkgs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_parts_are_escaped() {
        assert_eq!(purl_escape("1:2.36-9+deb12u7"), "1%3A2.36-9%2Bdeb12u7");
        assert_eq!(purl_escape("@types/node"), "%40types%2Fnode");
    }
}
