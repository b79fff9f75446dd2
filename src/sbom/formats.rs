//! SPDX 2.3 and CycloneDX 1.6 JSON documents. Identifiers are derived from the slimmed layer's
//! diff_id and the package order, so the same image always gives the same bytes.
use super::{Package, Subject};
use serde_json::{json, Value};
use sha2::Digest as _;
use std::collections::BTreeMap;

const TOOL: &str = concat!("imgslim-", env!("CARGO_PKG_VERSION"));

/// A name-based UUID (version 5 layout) from the diff_id: a stable serial number.
fn uuid(seed: &str) -> String {
    let h = sha2::Sha256::digest(seed.as_bytes());
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

fn spdx_package(id: &str, p: &Package) -> Value {
    let mut v = json!({
        "SPDXID": id,
        "name": p.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": !p.files.is_empty(),
        "primaryPackagePurpose": if matches!(p.ecosystem, "deb" | "apk") { "OPERATING-SYSTEM" } else { "LIBRARY" },
    });
    if !p.version.is_empty() {
        v["versionInfo"] = json!(p.version);
    }
    if !p.purl.is_empty() {
        v["externalRefs"] = json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}]);
    }
    if !p.files.is_empty() {
        // SPDX 2.3 §7.9: SHA-1 of the sorted, concatenated SHA-1s of the package's files.
        let mut sums: Vec<&str> = p.files.iter().map(|f| f.sha1.as_str()).collect();
        sums.sort_unstable();
        v["packageVerificationCode"] = json!({"packageVerificationCodeValue": hex::encode(sha1::Sha1::digest(sums.concat().as_bytes()))});
    }
    v
}

fn relationship(a: &str, kind: &str, b: &str) -> Value {
    json!({"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b})
}

pub fn spdx(s: &Subject, pkgs: &[Package]) -> Value {
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id, "name": s.image, "versionInfo": s.diff_id, "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false, "primaryPackagePurpose": "CONTAINER",
    })];
    let mut rels = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", image_id)];
    let mut file_ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut files = Vec::new();
    for (i, p) in pkgs.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{i}", p.ecosystem);
        packages.push(spdx_package(&id, p));
        rels.push(relationship(image_id, "CONTAINS", &id));
        for f in &p.files {
            let fid = file_ids.entry(f.path.as_str()).or_insert_with(|| {
                let fid = format!("SPDXRef-File-{}", files.len());
                files.push(json!({"SPDXID": fid, "fileName": format!(".{}", f.path), "checksums": [
                    {"algorithm": "SHA1", "checksumValue": f.sha1}, {"algorithm": "SHA256", "checksumValue": f.sha256}]}));
                fid
            });
            rels.push(relationship(&id, "CONTAINS", fid));
        }
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": s.image,
        "documentNamespace": format!("https://imgslim.invalid/spdxdocs/{}", uuid(&s.diff_id)),
        "creationInfo": {"created": s.created, "creators": [format!("Tool: {TOOL}")]},
        "packages": packages,
        "files": files,
        "relationships": rels,
    })
}

/// The purl, or for a package without one (a jar of unknown group) its name, version and
/// first file, which tell apart the same jar kept at two places.
fn bom_ref(p: &Package) -> String {
    match p.purl.is_empty() {
        false => p.purl.clone(),
        true => format!("{}:{}@{}#{}", p.ecosystem, p.name, p.version, p.files.first().map_or("", |f| f.path.as_str())),
    }
}

fn cdx_component(p: &Package) -> Value {
    let r = bom_ref(p);
    let files: Vec<Value> = p
        .files
        .iter()
        .map(|f| json!({"type": "file", "bom-ref": format!("{r}#{}", f.path), "name": f.path,
            "hashes": [{"alg": "SHA-1", "content": f.sha1}, {"alg": "SHA-256", "content": f.sha256}]}))
        .collect();
    let mut c = json!({"type": "library", "bom-ref": r, "name": p.name});
    if !p.version.is_empty() {
        c["version"] = json!(p.version);
    }
    if !p.purl.is_empty() {
        c["purl"] = json!(p.purl);
    }
    if !files.is_empty() {
        c["components"] = Value::Array(files);
    }
    c
}

pub fn cyclonedx(s: &Subject, pkgs: &[Package]) -> Value {
    let mut components: Vec<Value> = Vec::new();
    if let Some((id, v)) = &s.distro {
        components.push(json!({"type": "operating-system", "bom-ref": format!("os:{id}-{v}"), "name": id, "version": v}));
    }
    components.extend(pkgs.iter().map(cdx_component));
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid(&s.diff_id)),
        "version": 1,
        "metadata": {
            "timestamp": s.created,
            "tools": {"components": [{"type": "application", "name": "imgslim", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {"type": "container", "bom-ref": "image", "name": s.image, "version": s.diff_id},
        },
        "components": components,
    })
}
