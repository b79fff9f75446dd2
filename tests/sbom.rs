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

/// A zip archive of (name, bytes), as a jar/war is.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (n, b) in entries {
        w.start_file(*n, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(b).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A jar of the host's Debian packages (libcommons-*-java, libguava-java), by its real name.
fn debian_jar(name: &str) -> Vec<u8> {
    std::fs::read(Path::new("/usr/share/java").join(name)).unwrap_or_else(|e| panic!("/usr/share/java/{name} (Debian's lib*-java packages, .ci/run): {e}"))
}

/// (name, version) of the maven packages of our SBOM, in either format; version "" when unknown.
fn our_jars(v: &Value) -> BTreeSet<(String, String)> {
    let pkgs = v.get("packages").or_else(|| v.get("components")).unwrap().as_array().unwrap();
    pkgs.iter()
        .filter(|p| p["SPDXID"].as_str().is_some_and(|id| id.starts_with("SPDXRef-Package-maven-")) || p["bom-ref"].as_str().is_some_and(|r| r.starts_with("pkg:maven/") || r.starts_with("maven:")))
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.get("versionInfo").or_else(|| p.get("version")).and_then(Value::as_str).unwrap_or("").to_string()))
        .collect()
}

#[test]
fn java_archives_are_in_the_sbom_as_syft_finds_them() {
    if !have_tool("syft") || !have_tool("pyspdxtools") || !have_tool("umoci") || !have_tool("python3") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (lang3, guava, cli, io) = (debian_jar("commons-lang3-3.12.0.jar"), debian_jar("guava-31.1-jre.jar"), debian_jar("commons-cli-1.5.0.jar"), debian_jar("commons-io-2.11.0.jar"));
    // A war with its libraries, a Spring-Boot-style jar, a jar named only by its file name,
    // and a broken one: the slim still succeeds and says which archive it could not read.
    let war = zip_of(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nImplementation-Title: shop\nImplementation-Version: 4.2\n"), ("WEB-INF/lib/commons-cli-1.5.0.jar", &cli), ("WEB-INF/lib/commons-io-2.11.0.jar", &io)]);
    let boot = zip_of(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.JarLauncher\n"), ("BOOT-INF/lib/guava-31.1-jre.jar", &guava)]);
    let plain = zip_of(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nMain-Class: tool.Main\n")]);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(shared_images().join("alpine-minirootfs-3.20.3-x86_64.tar.gz")).unwrap()), &mut tar).unwrap();
    let jars = layer(&[
        E::Dir("usr/share/java", 0o755),
        E::File("usr/share/java/commons-lang3-3.12.0.jar", 0o644, &lang3),
        E::Symlink("usr/share/java/commons-lang3.jar", "commons-lang3-3.12.0.jar"),
        E::File("usr/share/java/guava.jar", 0o644, &guava),
        E::Dir("srv", 0o755),
        E::File("srv/shop.war", 0o644, &war),
        E::File("srv/boot-app.jar", 0o644, &boot),
        E::File("srv/plain-tool-2.3.jar", 0o644, &plain),
        E::File("srv/bad.jar", 0o644, b"PK\x03\x04 not really a zip"),
        E::Dir("opt/unused", 0o755),
        E::File("opt/unused/commons-io-2.11.0.jar", 0o644, &io),
    ]);
    let img = oci_layout(&t.path().join("in"), &[tar, jars], serde_json::json!({"Cmd": ["/bin/sh", "-c", "echo hi"]}));
    let mut ours = Vec::new();
    for format in ["spdx-json", "cyclonedx-json"] {
        let (out, sbom) = (t.path().join(format!("out-{format}")), t.path().join(format!("sbom.{format}.json")));
        let o = run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(&out).args(["--format", "oci", "--keep", "/usr/share/java/**", "--keep", "/srv/**", "--sbom"]).arg(&sbom).args(["--sbom-format", format]));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("warning: sbom: /srv/bad.jar: Java archive not read"), "{err}");
        let v: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
        ours.push((out, sbom, v));
    }
    // The gap is in the --report JSON too, and --strict refuses an SBOM with a gap.
    let (out, sbom, report) = (t.path().join("strict-out"), t.path().join("strict.json"), t.path().join("report.json"));
    let slim = |strict: bool| {
        let mut c = imgslim();
        c.arg("slim").arg(&img).arg("-o").arg(&out).args(["--format", "oci", "--keep", "/usr/share/java/**", "--keep", "/srv/**", "--sbom"]).arg(&sbom).arg("--report").arg(&report);
        if strict {
            // /opt/unused would be a dropped-tree risk, refused first: keep it, so the SBOM's gap is what --strict meets.
            c.args(["--strict", "--keep", "/opt/**"]);
        }
        run(&mut c)
    };
    assert!(slim(false).status.success());
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let warned = r["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).filter(|w| w.starts_with("sbom: /srv/bad.jar: Java archive not read")).count();
    assert_eq!(warned, 1, "{}", r["warnings"]);
    for p in [&out, &sbom, &report] {
        std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p)).unwrap();
    }
    let o = slim(true);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--strict: the SBOM would miss 1 archive(s) it could not read, nothing written; first: /srv/bad.jar"), "{err}");
    assert!(!out.exists() && !sbom.exists() && !report.exists(), "nothing written under --strict");
    // Valid documents.
    let o = run(Command::new("pyspdxtools").arg("-i").arg(&ours[0].1));
    assert!(o.status.success() && o.stdout.is_empty(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let check = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\n\
                 e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nprint(e or 'valid')\nsys.exit(1 if e else 0)";
    let o = run(Command::new("python3").args(["-c", check]).arg(&ours[1].1));
    assert!(o.status.success(), "CycloneDX 1.6 schema: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));

    // syft's java cataloger on the written image finds the same (name, version) set; its stub
    // for a missing version is "UNKNOWN".
    let scanned: BTreeSet<(String, String)> = artifacts(&syft_json(&["scan", &format!("oci-dir:{}", ours[0].0.display())]), &["java-archive"])
        .into_iter()
        .map(|(_, n, v)| (n, if v == "UNKNOWN" { String::new() } else { v }))
        .collect();
    let s = |n: &str, v: &str| (n.to_string(), v.to_string());
    for want in [s("commons-lang3", "3.12.0"), s("guava", "31.1-jre"), s("commons-cli", "1.5.0"), s("commons-io", "2.11.0"), s("shop", "4.2"), s("boot-app", ""), s("plain-tool", "2.3")] {
        assert!(scanned.contains(&want), "syft: {want:?} not in {scanned:?}");
    }
    assert_eq!(our_jars(&ours[0].2), scanned, "SPDX");
    assert_eq!(our_jars(&ours[1].2), scanned, "CycloneDX");

    // Purls only where the group is known (pom.properties); the archive is the file kept.
    let comps = ours[1].2["components"].as_array().unwrap();
    let lang3c = comps.iter().find(|c| c["name"] == "commons-lang3").unwrap();
    assert_eq!(lang3c["purl"], "pkg:maven/org.apache.commons/commons-lang3@3.12.0");
    assert_eq!(lang3c["components"][0]["name"], "/usr/share/java/commons-lang3-3.12.0.jar");
    let io_c = comps.iter().find(|c| c["name"] == "commons-io").unwrap();
    assert_eq!(io_c["purl"], "pkg:maven/commons-io/commons-io@2.11.0");
    assert_eq!(io_c["components"][0]["name"], "/srv/shop.war", "a nested jar's file is its war; the unused copy is gone");
    let plain_c = comps.iter().find(|c| c["name"] == "plain-tool").unwrap();
    assert!(plain_c.get("purl").is_none(), "{plain_c}");
    // syft reads the purls back as java packages.
    let read_back = artifacts(&syft_json(&["convert", ours[1].1.to_str().unwrap()]), &["java-archive"]);
    assert!(read_back.iter().any(|(_, n, v)| n == "guava" && v == "31.1-jre"), "{read_back:?}");
    let root = umoci_unpack(&ours[1].0, &t.path().join("bundle"));
    assert!(files_match_rootfs(&ours[1].2, &root) > 0);
}
