//! `slim --sbom`: the slimmed image's SBOM, checked by spdx-tools (`pyspdxtools`, the SPDX
//! 2.3 validator), by the CycloneDX 1.6 JSON schema (cyclonedx-python-lib's strict
//! validator), by syft's own reader (`syft convert`), and against syft's scan of the slimmed
//! image itself and the unpacked rootfs.
mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn syft_json(args: &[&str]) -> Value {
    let o = run_ok(Command::new("syft").env("SYFT_CHECK_FOR_APP_UPDATE", "false").args(args).args(["-o", "syft-json", "-q"]));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// (type, name, version) of syft's artifacts of the given types.
fn artifacts(v: &Value, types: &[&str]) -> BTreeSet<(String, String, String)> {
    v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| types.contains(&a["type"].as_str().unwrap_or("")))
        .map(|a| (a["type"].as_str().unwrap().to_string(), a["name"].as_str().unwrap().to_string(), a["version"].as_str().unwrap().to_string()))
        .collect()
}

fn slim_with_sbom(img: &Path, dir: &Path, format: &str) -> (PathBuf, PathBuf) {
    let out = dir.join(format!("out-{format}"));
    let sbom = dir.join(format!("sbom.{format}.json"));
    run_ok(imgslim().arg("slim").arg(img).arg("-o").arg(&out).args(["--format", "oci", "--sbom"]).arg(&sbom).args(["--sbom-format", format]));
    (out, sbom)
}

/// (path, sha256) of every file the SBOM lists, for either format.
fn listed_files(v: &Value) -> Vec<(String, String)> {
    let sha = |hs: &Value, alg: &str, key: &str, val: &str| hs.as_array().unwrap().iter().find(|h| h[key] == alg).map(|h| h[val].as_str().unwrap().to_string()).unwrap();
    if let Some(files) = v.get("files") {
        files.as_array().unwrap().iter().map(|f| (f["fileName"].as_str().unwrap().trim_start_matches('.').to_string(), sha(&f["checksums"], "SHA256", "algorithm", "checksumValue"))).collect()
    } else {
        let comps = v["components"].as_array().unwrap();
        comps.iter().flat_map(|c| c["components"].as_array().cloned().unwrap_or_default()).map(|f| (f["name"].as_str().unwrap().to_string(), sha(&f["hashes"], "SHA-256", "alg", "content"))).collect()
    }
}

/// The SBOM's files exist in the unpacked image with the same content.
fn files_match_rootfs(v: &Value, root: &Path) -> usize {
    let files = listed_files(v);
    for (p, sum) in &files {
        let full = root.join(p.trim_start_matches('/'));
        let md = std::fs::symlink_metadata(&full).unwrap_or_else(|e| panic!("{p} listed but not in the image: {e}"));
        let bytes = if md.file_type().is_symlink() { std::fs::read_link(&full).unwrap().into_os_string().into_encoded_bytes() } else { std::fs::read(&full).unwrap() };
        assert_eq!(&sha256_hex(&bytes), sum, "{p}");
    }
    files.len()
}

#[test]
fn spdx_sbom_of_python_web_is_valid_and_matches_the_image() {
    if !have_tool("syft") || !have_tool("pyspdxtools") || !have_tool("umoci") {
        return;
    }
    let Some(img) = acceptance_image("python-web") else { return };
    let t = tempfile::tempdir().unwrap();
    let (out, sbom) = slim_with_sbom(&img, t.path(), "spdx-json");
    // spdx-tools checks the document against the SPDX 2.3 specification; silent when valid.
    let o = run(Command::new("pyspdxtools").arg("-i").arg(&sbom));
    assert!(o.status.success() && o.stdout.is_empty(), "{}{}", String::from_utf8_lossy(&o.stdout), &String::from_utf8_lossy(&o.stderr)[..2000.min(o.stderr.len())]);
    let v: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    assert_eq!(v["spdxVersion"], "SPDX-2.3");

    // syft reads it back, and finds the same deb and python packages in the image itself.
    let types = ["deb", "python"];
    let read_back = artifacts(&syft_json(&["convert", sbom.to_str().unwrap()]), &types);
    let scanned = artifacts(&syft_json(&["scan", &format!("oci-dir:{}", out.display())]), &types);
    assert_eq!(read_back, scanned);
    assert!(scanned.iter().any(|(t, n, _)| t == "python" && n == "six"), "{scanned:?}");
    assert!(scanned.iter().any(|(t, n, _)| t == "deb" && n == "libc6"), "{scanned:?}");
    let purls: BTreeSet<&str> = v["packages"].as_array().unwrap().iter().filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str()).collect();
    let libc = purls.iter().find(|p| p.starts_with("pkg:deb/debian/libc6@")).unwrap();
    assert!(libc.ends_with("?arch=amd64&distro=debian-12"), "{libc}");
    assert!(purls.contains("pkg:pypi/six@1.16.0"), "{purls:?}");

    // Every file listed is in the image, with that content; the packages' kept files are there.
    let root = umoci_unpack(&out, &t.path().join("bundle"));
    let n = files_match_rootfs(&v, &root);
    assert!(n > 100, "{n} files");
    assert!(listed_files(&v).iter().any(|(p, _)| p == "/usr/local/lib/python3.11/dist-packages/six.py"));
}

#[test]
fn cyclonedx_sbom_of_node_app_is_valid_and_matches_the_image() {
    if !have_tool("syft") || !have_tool("python3") || !have_tool("umoci") {
        return;
    }
    let Some(img) = acceptance_image("node-app") else { return };
    let t = tempfile::tempdir().unwrap();
    let (out, sbom) = slim_with_sbom(&img, t.path(), "cyclonedx-json");
    let check = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\n\
                 e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nprint(e or 'valid')\nsys.exit(1 if e else 0)";
    let o = run(Command::new("python3").args(["-c", check]).arg(&sbom));
    assert!(o.status.success(), "CycloneDX 1.6 schema: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    assert_eq!(v["specVersion"], "1.6");

    let types = ["deb", "npm"];
    let read_back = artifacts(&syft_json(&["convert", sbom.to_str().unwrap()]), &types);
    let scanned = artifacts(&syft_json(&["scan", &format!("oci-dir:{}", out.display())]), &types);
    let npm: Vec<_> = scanned.iter().filter(|(t, _, _)| t == "npm").collect();
    assert!(!npm.is_empty(), "{scanned:?}");
    assert_eq!(read_back, scanned);
    let root = umoci_unpack(&out, &t.path().join("bundle"));
    assert!(files_match_rootfs(&v, &root) > 100);

    // The same input gives the same SBOM.
    std::fs::create_dir(t.path().join("2")).unwrap();
    let (_, again) = slim_with_sbom(&img, &t.path().join("2"), "cyclonedx-json");
    // (The image is named by the -o path given, which differs here.)
    let unnamed = |p: &Path| {
        let mut v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["metadata"]["component"]["name"] = Value::Null;
        v
    };
    assert_eq!(unnamed(&sbom), unnamed(&again));
}
