//! Hostile and corrupt inputs: each gives one clear error naming the culprit, exit code 1
//! (2 for usage), nothing at the output path, no stray temp files, the input untouched.
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tar::EntryType;

fn base_layer() -> Vec<u8> {
    layer(&[E::Dir("a/", 0o755), E::Dir("a/b/", 0o755), E::File("a/b/f", 0o644, b"data"), E::File("etc-passwd", 0o644, b"x")])
}

fn dir_listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Run squash expecting failure; check code, message, and that nothing was written.
fn expect_failure(input: &Path, extra: &[&str], code: i32, needles: &[&str]) -> String {
    let outdir = tempfile::tempdir().unwrap();
    let out = outdir.path().join("out");
    let before = tree_manifest(input, true);
    let o = run(imgslim().arg("squash").arg(input).arg("-o").arg(&out).args(extra));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "stderr: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "error should mention '{n}': {stderr}");
    }
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert!(!out.exists(), "nothing may be written at the output path");
    assert!(dir_listing(outdir.path()).is_empty(), "temp files left behind: {:?}", dir_listing(outdir.path()));
    assert_eq!(before, tree_manifest(input, true), "input must be untouched");
    stderr
}

fn image_with(extra_layer: Vec<u8>) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let p = oci_layout(&t.path().join("img"), &[base_layer(), extra_layer], json!({}));
    (t, p)
}

#[test]
fn dotdot_entry_is_rejected() {
    let (_t, img) = image_with(layer(&[E::Raw(b"a/../../escape", EntryType::Regular, b"x")]));
    expect_failure(&img, &[], 1, &["a/../../escape", ".."]);
}


#[test]
fn escaping_hardlink_is_rejected() {
    let (_t, img) = image_with(layer(&[E::Raw(b"a/link", EntryType::Link, b"../../etc/passwd")]));
    expect_failure(&img, &[], 1, &["a/link", "hardlink target", "outside the layer tree"]);
}


#[test]
fn whiteout_of_dotdot_and_bare_whiteout_are_rejected() {
    let (_t, img) = image_with(layer(&[E::Raw(b"a/b/.wh...", EntryType::Regular, b"")]));
    expect_failure(&img, &[], 1, &["a/b/.wh...", "whiteout"]);
    let (_t2, img2) = image_with(layer(&[E::Raw(b"a/.wh.", EntryType::Regular, b"")]));
    expect_failure(&img2, &[], 1, &["a/.wh.", "whiteout"]);
}

#[test]
fn hardlink_to_missing_target_is_rejected() {
    let (_t, img) = image_with(layer(&[E::Raw(b"a/link", EntryType::Link, b"nowhere")]));
    expect_failure(&img, &[], 1, &["a/link", "does not exist"]);
}

fn manifest_of(img: &Path) -> (PathBuf, Value) {
    let idx: Value = serde_json::from_slice(&std::fs::read(img.join("index.json")).unwrap()).unwrap();
    let d = idx["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let p = img.join("blobs/sha256").join(d);
    let m = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    (p, m)
}

fn layer_blob(img: &Path, i: usize) -> (PathBuf, String) {
    let (_, m) = manifest_of(img);
    let d = m["layers"][i]["digest"].as_str().unwrap().to_string();
    (img.join("blobs/sha256").join(d.trim_start_matches("sha256:")), d)
}

#[test]
fn corrupt_blob_is_a_digest_mismatch_naming_the_blob() {
    let (_t, img) = image_with(layer(&[E::File("x", 0o644, &[7u8; 5000])]));
    let (p, d) = layer_blob(&img, 1);
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&p, b).unwrap();
    expect_failure(&img, &[], 1, &[&d, "digest mismatch"]);
}

#[test]
fn truncated_blob_is_reported() {
    let (_t, img) = image_with(layer(&[E::File("x", 0o644, &[7u8; 5000])]));
    let (p, d) = layer_blob(&img, 1);
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 10]).unwrap();
    expect_failure(&img, &[], 1, &[&d, "truncated"]);
}

#[test]
fn missing_blob_is_reported() {
    let (_t, img) = image_with(layer(&[E::File("x", 0o644, b"x")]));
    let (p, d) = layer_blob(&img, 0);
    std::fs::remove_file(&p).unwrap();
    expect_failure(&img, &[], 1, &[&d, "missing"]);
}

/// Rewrite a document blob and fix up every digest that points at it.
fn replace_manifest(img: &Path, bytes: Vec<u8>) {
    let (old, _) = manifest_of(img);
    std::fs::remove_file(&old).unwrap();
    let h = sha256_hex(&bytes);
    std::fs::write(img.join("blobs/sha256").join(&h), &bytes).unwrap();
    let mut idx: Value = serde_json::from_slice(&std::fs::read(img.join("index.json")).unwrap()).unwrap();
    idx["manifests"][0]["digest"] = json!(format!("sha256:{h}"));
    idx["manifests"][0]["size"] = json!(bytes.len());
    std::fs::write(img.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
}

#[test]
fn malformed_manifest_and_index_are_reported() {
    let (_t, img) = image_with(layer(&[]));
    replace_manifest(&img, b"{\"schemaVersion\": 2, \"layers\": 7}".to_vec());
    expect_failure(&img, &[], 1, &["manifest sha256:", "malformed"]);
    let (_t2, img2) = image_with(layer(&[]));
    std::fs::write(img2.join("index.json"), b"[not json").unwrap();
    expect_failure(&img2, &[], 1, &["index.json", "malformed"]);
}

#[test]
fn diff_id_mismatch_is_reported() {
    let (_t, img) = image_with(layer(&[E::File("x", 0o644, b"x")]));
    let (_, m) = manifest_of(&img);
    let cd = m["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(img.join("blobs/sha256").join(&cd)).unwrap()).unwrap();
    cfg["rootfs"]["diff_ids"][1] = json!(format!("sha256:{}", "0".repeat(64)));
    let bytes = serde_json::to_vec(&cfg).unwrap();
    let h = sha256_hex(&bytes);
    std::fs::write(img.join("blobs/sha256").join(&h), &bytes).unwrap();
    let mut m2 = m.clone();
    m2["config"]["digest"] = json!(format!("sha256:{h}"));
    m2["config"]["size"] = json!(bytes.len());
    replace_manifest(&img, serde_json::to_vec(&m2).unwrap());
    expect_failure(&img, &[], 1, &["diff_id mismatch"]);
}

#[test]
fn missing_platform_is_an_input_error_listing_what_is_there() {
    let (_t, img) = image_with(layer(&[]));
    // The flag is well-formed; the image lacks the platform: exit 1, like any input problem.
    expect_failure(&img, &["--platform", "linux/arm64"], 1, &["linux/arm64", "linux/amd64"]);
}

#[test]
fn hostile_docker_manifest_paths_are_rejected() {
    let t = tempfile::tempdir().unwrap();
    let archive = t.path().join("evil.tar");
    let cfg = json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[format!("sha256:{}", "1".repeat(64))]}});
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let cfg_name = format!("{}.json", sha256_hex(&cfg_bytes));
    let manifest = json!([{"Config": cfg_name, "RepoTags": ["evil:1"], "Layers": ["../../../../etc/passwd"]}]);
    let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    for (name, bytes) in [("manifest.json", serde_json::to_vec(&manifest).unwrap()), (cfg_name.as_str(), cfg_bytes.clone())] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    b.finish().unwrap();
    drop(b);
    let outdir = tempfile::tempdir().unwrap();
    let out = outdir.path().join("o.tar");
    let o = run(imgslim().arg("squash").arg(&archive).arg("-o").arg(&out));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("../../../../etc/passwd"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.exists());
}

#[test]
fn usage_errors_exit_2() {
    let o = run(imgslim().args(["squash", "x", "-o", "y", "--format", "floppy"]));
    assert_eq!(o.status.code(), Some(2));
    let o = run(imgslim().args(["frobnicate"]));
    assert_eq!(o.status.code(), Some(2));
    let (_t, img) = image_with(layer(&[]));
    let o = run(imgslim().arg("squash").arg(&img).args(["-o", "/tmp/never-written.tar", "--format", "docker-archive", "--compression", "zstd"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(!Path::new("/tmp/never-written.tar").exists());
}
