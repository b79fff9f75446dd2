//! Java archives (jar, war, ear and syft's other Java extensions), and the archives nested in
//! them (`WEB-INF/lib`, Spring Boot's `BOOT-INF/lib`), read with the `zip` crate. Packages are
//! named the way syft's java cataloger names them, so a scanner and the SBOM agree:
//! - a `META-INF/maven/G/A/pom.properties` whose artifactId matches the file name names the
//!   archive (`pkg:maven/G/A@V`); every other pom.properties is a package of its own (shaded);
//! - otherwise the file name (`commons-lang3-3.12.0.jar`), then MANIFEST.MF's fields, give the
//!   name and version, and there is no purl since the group is not known.
//!
//! Archives are hostile input: sizes, entry counts and nesting depth are bounded, and a bad
//! archive is a warning naming its path.
use super::{purl_escape, File, Package};
use regex::Regex;
use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::LazyLock;

/// An archive read into memory (top-level or nested).
pub const MAX_ARCHIVE: u64 = 256 << 20;
/// A MANIFEST.MF or pom.properties.
const MAX_META: u64 = 1 << 20;
const MAX_ENTRIES: usize = 500_000;
/// Archives inside archives inside archives: deeper ones are not opened.
const MAX_DEPTH: usize = 3;
/// Nested archives opened under one top-level archive.
const MAX_NESTED: usize = 4096;

/// syft's archive extensions (case-sensitive, as its globs are).
const EXTENSIONS: &[&str] = &[".jar", ".war", ".ear", ".par", ".sar", ".nar", ".jpi", ".hpi", ".kar", ".lpkg"];

pub fn is_archive(name: &str) -> bool {
    EXTENSIONS.iter().any(|e| name.ends_with(e))
}

/// A package found in an archive; `group` is known only from a pom.properties.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    pub name: String,
    pub version: String,
    pub group: Option<String>,
}

impl Found {
    pub fn purl(&self) -> String {
        let Some(g) = &self.group else { return String::new() };
        let v = if self.version.is_empty() { String::new() } else { format!("@{}", purl_escape(&self.version)) };
        format!("pkg:maven/{}/{}{v}", purl_escape(g), purl_escape(&self.name))
    }
}

/// The packages of one archive file, `path` being where it is in the image.
pub fn packages(path: &str, bytes: Vec<u8>) -> Result<Vec<Package>, String> {
    let mut nested = 0;
    let mut found = Vec::new();
    read_archive(bytes, base_name(path), 0, &mut nested, &mut found)?;
    found.sort();
    found.dedup();
    let file = File { path: path.to_string(), sha1: String::new(), sha256: String::new() };
    Ok(found
        .into_iter()
        .filter(|f| !f.name.is_empty())
        .map(|f| Package { ecosystem: "maven", purl: f.purl(), name: f.name, version: f.version, files: vec![file.clone()] })
        .collect())
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

type Zip = zip::ZipArchive<Cursor<Vec<u8>>>;

/// One archive: its own package (manifest, matching pom.properties), the other pom.properties
/// (shaded dependencies), then the archives inside it. A nested archive that cannot be read
/// is skipped, as syft does; the outer one failing is the caller's warning.
pub fn read_archive(bytes: Vec<u8>, file_name: &str, depth: usize, nested: &mut usize, out: &mut Vec<Found>) -> Result<(), String> {
    let mut zip = Zip::new(Cursor::new(bytes)).map_err(|e| format!("not a zip archive: {e}"))?;
    if zip.len() > MAX_ENTRIES {
        return Err(format!("{} entries, more than {MAX_ENTRIES}", zip.len()));
    }
    // Names that are not UTF-8 cannot be a manifest, a pom.properties or a `.jar`.
    let mut names: Vec<String> = zip.file_names().filter_map(Result::ok).map(|n| n.into_owned()).collect();
    names.sort();
    let manifest = match names.iter().any(|n| n == "META-INF/MANIFEST.MF") {
        true => Some(Manifest::parse(&read_entry(&mut zip, "META-INF/MANIFEST.MF", MAX_META)?)),
        false => None,
    };
    let poms = pom_properties(&mut zip, &names)?;
    if let Some(m) = manifest.filter(|m| m.get("Weave-Classes").is_none()) {
        let mut main = main_package(&m, file_name, &poms, &names);
        let mut shaded = Vec::new();
        for p in poms.values() {
            // A pom.properties naming the archive itself completes it (syft's identity check).
            if p.name == main.name {
                main.version.clone_from(&p.version);
                main.group = main.group.or_else(|| p.group.clone());
            } else {
                shaded.push(p.clone());
            }
        }
        out.push(main);
        out.extend(shaded);
    }
    if depth + 1 < MAX_DEPTH {
        for n in names.iter().filter(|n| is_archive(n)) {
            *nested += 1;
            if *nested > MAX_NESTED {
                return Err(format!("more than {MAX_NESTED} nested archives"));
            }
            let Ok(inner) = read_entry(&mut zip, n, MAX_ARCHIVE) else { continue };
            let _ = read_archive(inner, base_name(n), depth + 1, nested, out);
        }
    }
    Ok(())
}

/// An entry's bytes, refused past `max` (by the header's size and by what is actually read,
/// since a hostile header can lie).
fn read_entry(zip: &mut Zip, name: &str, max: u64) -> Result<Vec<u8>, String> {
    let e = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    if e.size() > max {
        return Err(format!("{name}: {} bytes, more than {max}", e.size()));
    }
    let mut buf = Vec::new();
    e.take(max + 1).read_to_end(&mut buf).map_err(|e| format!("{name}: {e}"))?;
    if buf.len() as u64 > max {
        return Err(format!("{name}: more than {max} bytes"));
    }
    Ok(buf)
}

/// Every `*pom.properties` with an artifactId and a version, by directory (sorted).
fn pom_properties(zip: &mut Zip, names: &[String]) -> Result<BTreeMap<String, Found>, String> {
    let mut out = BTreeMap::new();
    for n in names.iter().filter(|n| n.ends_with("pom.properties")) {
        let text = String::from_utf8_lossy(&read_entry(zip, n, MAX_META)?).into_owned();
        let mut kv = BTreeMap::new();
        for l in text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
            if let Some(i) = l.find(['=', ':']) {
                kv.insert(l[..i].trim().to_string(), l[i + 1..].trim().to_string());
            }
        }
        let get = |k: &str| kv.get(k).filter(|v| !v.is_empty()).cloned();
        if let (Some(name), Some(version)) = (get("artifactId"), get("version")) {
            let dir = n.rsplit_once('/').map_or("", |(d, _)| d).to_string();
            out.insert(dir, Found { name, version, group: get("groupId") });
        }
    }
    Ok(out)
}

/// The archive's own package: a pom.properties whose artifactId matches the file name, else
/// the name and version from the file name, then the manifest. `names` is sorted.
fn main_package(m: &Manifest, file_name: &str, poms: &BTreeMap<String, Found>, names: &[String]) -> Found {
    let (fname, fversion) = split_file_name(file_name);
    let exact = poms.values().any(|p| p.name == fname);
    let matches = |a: &str| !a.is_empty() && !fname.is_empty() && if exact { a == fname } else { a.starts_with(&fname) || fname.ends_with(a) };
    // syft's order: the first match (by directory) with a pom.xml beside it, else the last match.
    let mut chosen = None;
    for (dir, p) in poms.iter().filter(|(_, p)| matches(&p.name)) {
        chosen = Some(p);
        if names.binary_search(&format!("{dir}/pom.xml")).is_ok() {
            break;
        }
    }
    if let Some(p) = chosen {
        return p.clone();
    }
    let name = bundle_plugin_name(m).or_else(|| Some(name_from_file(&fname)).filter(|n| !n.is_empty()));
    let name = name.or_else(|| ["Name", "Bundle-Name", "Short-Name", "Extension-Name", "Implementation-Title"].iter().find_map(|k| m.get(k).map(str::to_string)));
    let version = Some(fversion).filter(|v| !v.is_empty());
    let version = version.or_else(|| ["Implementation-Version", "Specification-Version", "Plugin-Version", "Bundle-Version"].iter().find_map(|k| m.get_any(k).map(str::to_string)));
    Found { name: name.unwrap_or_default(), version: version.unwrap_or_default(), group: None }
}

/// Maven's bundle plugin writes `Bundle-SymbolicName` = `${groupId}.${artifactId}`.
fn bundle_plugin_name(m: &Manifest) -> Option<String> {
    if !m.get("Created-By")?.contains("Apache Maven Bundle Plugin") {
        return None;
    }
    let sym = m.get("Bundle-SymbolicName")?;
    if m.get("Implementation-Vendor-Id") == Some(sym) {
        return None;
    }
    sym.rsplit('.').next().map(str::to_string)
}

/// `org.example.thing` may be group + artifact: then the artifact is the name.
fn name_from_file(name: &str) -> String {
    let fields: Vec<&str> = name.split('.').collect();
    let ident = |f: &&str| f.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$');
    if fields.len() > 1 && !name.starts_with("org.eclipse.") && fields.iter().all(ident) {
        return fields.last().map_or(String::new(), |f| f.to_string());
    }
    name.to_string()
}

static NAME_VERSION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?Ui)^(?P<name>(?:[[:alpha:]][[:word:].]*(?:\.[[:alpha:]][[:word:].]*)*-?)+)(?:-(?P<version>(\d.*|(build\d+.*)|(rc?\d+(?:^[[:alpha:]].*)?))))?$").ok()
});
static TRAILING_VERSION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?:[._-](?P<version>(\d.*|(build\d+.*)|(rc?\d+(?:^[[:alpha:]].*)?))))?$").ok());

/// (name, version) from an archive's file name, by syft's patterns: `commons-lang3-3.12.0.jar`
/// gives (`commons-lang3`, `3.12.0`).
pub fn split_file_name(file: &str) -> (String, String) {
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let cap = |re: &Option<Regex>, s: &str, g: &str| re.as_ref().and_then(|r| r.captures(s)).and_then(|c| c.name(g)).map_or(String::new(), |m| m.as_str().to_string());
    let mut name = cap(&NAME_VERSION, stem, "name");
    let mut version = cap(&NAME_VERSION, stem, "version");
    if version.is_empty() {
        version = cap(&TRAILING_VERSION, &name, "version");
        if !version.is_empty() {
            name.truncate(name.len() - version.len() - 1);
        }
    }
    (name, version)
}

/// MANIFEST.MF: a main section and named sections, `Key: value` with continuation lines.
struct Manifest {
    sections: Vec<Vec<(String, String)>>,
}

impl Manifest {
    fn parse(bytes: &[u8]) -> Manifest {
        let text = String::from_utf8_lossy(bytes);
        let mut sections: Vec<Vec<(String, String)>> = Vec::new();
        let mut in_section = false;
        for line in text.lines() {
            if line.is_empty() {
                in_section = false;
            } else if let Some(more) = line.strip_prefix(' ') {
                if let Some(last) = sections.last_mut().filter(|_| in_section).and_then(|s| s.last_mut()) {
                    last.1.push_str(more.trim());
                }
            } else if let Some((k, v)) = line.split_once(':').filter(|(k, _)| !k.trim().is_empty()) {
                if !in_section {
                    sections.push(Vec::new());
                    in_section = true;
                }
                if let Some(s) = sections.last_mut() {
                    s.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
        }
        Manifest { sections }
    }
    /// A main-section value, if not empty.
    fn get(&self, key: &str) -> Option<&str> {
        Self::lookup(self.sections.first()?, key)
    }
    /// The main section's value, else the first named section's.
    fn get_any(&self, key: &str) -> Option<&str> {
        self.sections.iter().find_map(|s| Self::lookup(s, key))
    }
    fn lookup<'a>(s: &'a [(String, String)], key: &str) -> Option<&'a str> {
        s.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (n, b) in entries {
            w.start_file(*n, zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)).unwrap();
            w.write_all(b).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn file_names_split_like_syft() {
        let s = |f: &str| split_file_name(f);
        assert_eq!(s("commons-lang3-3.12.0.jar"), ("commons-lang3".into(), "3.12.0".into()));
        assert_eq!(s("tomcat10-i18n-pt-BR-10.1.55.jar"), ("tomcat10-i18n-pt-BR".into(), "10.1.55".into()));
        assert_eq!(s("jrt-fs.jar"), ("jrt-fs".into(), String::new()));
        assert_eq!(s("spring-core-5.3.20.RELEASE.jar"), ("spring-core".into(), "5.3.20.RELEASE".into()));
        assert_eq!(name_from_file("org.apache.felix.main"), "main");
        assert_eq!(name_from_file("org.eclipse.osgi"), "org.eclipse.osgi");
    }

    #[test]
    fn pom_names_the_archive_and_shaded_poms_are_packages() {
        let pom = |g: &str, a: &str, v: &str| format!("groupId={g}\nartifactId={a}\nversion={v}\n").into_bytes();
        let (p1, p2) = (pom("org.apache.commons", "commons-lang3", "3.12.0"), pom("com.google.guava", "guava", "31.1"));
        let mf = b"Manifest-Version: 1.0\nImplementation-Title: Apache Commons Lang\nImplementation-\n Version: 9\n".as_slice();
        let inner = jar(&[("META-INF/MANIFEST.MF", mf), ("META-INF/maven/org.apache.commons/commons-lang3/pom.properties", &p1), ("META-INF/maven/com.google.guava/guava/pom.properties", &p2)]);
        let war = jar(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nImplementation-Version: 2.0\n"), ("WEB-INF/lib/commons-lang3-3.12.0.jar", &inner), ("WEB-INF/lib/bad.jar", b"not a zip")]);
        let got = packages("/srv/app.war", war).unwrap();
        let ids: Vec<(&str, &str, &str)> = got.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str())).collect();
        assert_eq!(ids, [("app", "2.0", ""), ("commons-lang3", "3.12.0", "pkg:maven/org.apache.commons/commons-lang3@3.12.0"), ("guava", "31.1", "pkg:maven/com.google.guava/guava@31.1")]);
        assert!(got.iter().all(|p| p.files[0].path == "/srv/app.war"));
        assert!(packages("/x.jar", b"PK\x03\x04garbage".to_vec()).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let mut a = jar(&[("META-INF/MANIFEST.MF", b"Implementation-Version: 1\n")]);
        for i in 0..6 {
            a = jar(&[("META-INF/MANIFEST.MF", b"Implementation-Version: 1\n"), (&format!("lib/n{i}.jar"), &a)]);
        }
        let got = packages("/top.jar", a).unwrap();
        assert_eq!(got.len(), MAX_DEPTH, "{got:?}");
    }
}
