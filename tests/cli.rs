//! The I/O contract: outputs never destroy data, errors name the user's path and exit with the
//! documented code, human output is on stderr, interrupted or failed runs leave nothing.
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn busybox() -> PathBuf {
    shared_images().join("busybox-1.38.0-musl.oci")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file and directory under `d`, relative, sorted.
fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        walkdir::WalkDir::new(d).min_depth(1).into_iter().map(|e| e.unwrap().path().strip_prefix(d).unwrap().display().to_string()).collect();
    v.sort();
    v
}

/// A refused run: the code, one line naming `needle`, and nothing changed in `dir`.
fn refused(cmd: &mut Command, code: i32, needle: &str, dir: &Path) -> String {
    let before = tree_manifest(dir, true);
    let o = run(cmd);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    assert!(e.contains(needle), "the error names {needle}: {e}");
    assert!(!e.contains(".imgslim-") && !e.contains("imgslim-work-"), "no temp names: {e}");
    assert_eq!(before, tree_manifest(dir, true), "{} changed", dir.display());
    e
}

#[test]
fn existing_source_directory_is_never_destroyed() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("main.c"), "int main(){}").unwrap();
    for force in [false, true] {
        let mut c = imgslim();
        c.arg("squash").arg(busybox()).arg("-o").arg(&src);
        if force {
            c.arg("--force");
        }
        let e = refused(&mut c, 1, &src.display().to_string(), t.path());
        assert!(e.contains("not an OCI layout"), "{e}");
    }
    // The same for slim and for pack.
    refused(imgslim().arg("slim").arg(busybox()).arg("-o").arg(&src), 1, &src.display().to_string(), t.path());
    refused(imgslim().arg("pack").arg("/bin/true").arg("-o").arg(&src).arg("--force"), 1, &src.display().to_string(), t.path());
}

#[test]
fn output_overlapping_the_input_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("img");
    copy_dir(&busybox(), &img);
    let tar = t.path().join("img.tar");
    run_ok(imgslim().arg("squash").arg(&img).arg("-o").arg(&tar));
    for (input, out) in [(&img, img.clone()), (&img, img.join("blobs")), (&img, t.path().to_path_buf()), (&tar, tar.clone())] {
        for force in [false, true] {
            let mut c = imgslim();
            c.arg("squash").arg(input).arg("-o").arg(&out);
            if force {
                c.arg("--force");
            }
            let e = refused(&mut c, 1, &out.display().to_string(), t.path());
            assert!(e.contains("input image"), "{e}");
        }
    }
    // Through a relative path and a symlink too.
    std::os::unix::fs::symlink(&img, t.path().join("alias")).unwrap();
    refused(imgslim().current_dir(t.path()).args(["squash", "img", "-o", "alias", "--force"]), 1, "alias", t.path());
    refused(imgslim().arg("pack").arg(&tar).arg("-o").arg(&tar).arg("--force"), 1, &tar.display().to_string(), t.path());
}

#[test]
fn existing_file_needs_force_and_then_is_replaced_atomically() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("notes.tar");
    std::fs::write(&out, "precious").unwrap();
    let e = refused(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&out), 1, &out.display().to_string(), t.path());
    assert!(e.contains("--force"), "the line says which flag to use: {e}");
    // --report is checked before any work too: an existing report refuses the whole run.
    let rep = t.path().join("r.json");
    std::fs::write(&rep, "{}").unwrap();
    let fresh = t.path().join("fresh");
    refused(imgslim().arg("slim").arg(busybox()).arg("-o").arg(&fresh).arg("--report").arg(&rep), 1, &rep.display().to_string(), t.path());
    assert!(!fresh.exists(), "a late failure leaves none of the outputs");
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&out).arg("--force"));
    let r = run_ok(Command::new("tar").arg("-tf").arg(&out));
    assert!(String::from_utf8_lossy(&r.stdout).contains("index.json"));
    assert_eq!(listing(t.path()), ["notes.tar", "r.json"], "no temp files beside the output");
}

#[test]
fn existing_layout_gets_the_image_added_under_its_tag() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    // A layout made by skopeo with an unrelated image in it.
    let other = oci_layout(&t.path().join("other"), &[layer(&[E::File("hello", 0o644, b"hi")])], json!({}));
    run_ok(Command::new("skopeo").args(["copy", "-q"]).arg(format!("oci:{}:latest", other.display())).arg(format!("oci:{}:other", lay.display())));
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&lay).args(["--tag", "bb:1"]));
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&lay).args(["--tag", "bb:1", "--compression", "none"]));
    let idx: Value = serde_json::from_slice(&std::fs::read(lay.join("index.json")).unwrap()).unwrap();
    let refs: Vec<&str> = idx["manifests"].as_array().unwrap().iter().map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap()).collect();
    assert_eq!(refs, ["other", "bb:1"], "the other image stays, the tag is replaced, not duplicated");
    for r in ["other", "bb:1"] {
        run_ok(Command::new("skopeo").args(["inspect", "--raw"]).arg(format!("oci:{}:{r}", lay.display())));
    }
    // --force replaces the whole layout.
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&lay).args(["--tag", "bb:2", "--force"]));
    let idx: Value = serde_json::from_slice(&std::fs::read(lay.join("index.json")).unwrap()).unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(listing(t.path()).iter().filter(|p| p.contains(".imgslim")).count(), 0);
}

#[test]
fn pack_refuses_a_larger_result_unless_asked() {
    let t = tempfile::tempdir().unwrap();
    // A tiny static-ish executable: packing cannot make it smaller.
    let out = t.path().join("true.packed");
    let e = refused(imgslim().args(["pack", "/bin/true", "--any-size", "-o"]).arg(&out), 1, "/bin/true", t.path());
    assert!(e.contains("--allow-larger"), "{e}");
    run_ok(imgslim().args(["pack", "/bin/true", "--any-size", "--allow-larger", "-o"]).arg(&out));
    assert!(std::fs::metadata(&out).unwrap().len() > std::fs::metadata("/bin/true").unwrap().len());
    // And --force now means overwrite, as everywhere else.
    let e = refused(imgslim().args(["pack", "/bin/true", "--any-size", "--allow-larger", "-o"]).arg(&out), 1, &out.display().to_string(), t.path());
    assert!(e.contains("--force"), "{e}");
    run_ok(imgslim().args(["pack", "/bin/true", "--any-size", "--allow-larger", "--force", "-o"]).arg(&out));
}

pub fn copy_dir(from: &Path, to: &Path) {
    run_ok(Command::new("cp").arg("-a").arg(from).arg(to));
}
