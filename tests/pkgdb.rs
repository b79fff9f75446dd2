//! `--package-db`: the slimmed image's dpkg database, checked with dpkg itself and syft on a
//! real Debian image (the acceptance suite's nginx-static).
mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn accept_image(name: &str) -> PathBuf {
    let o = run_ok(Command::new("bash").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/build.sh")).arg(name));
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("oci")
}

/// Slim with `--package-db MODE`; returns (layout, rootfs, report).
fn slim(orig: &Path, dir: &Path, mode: &str) -> (PathBuf, PathBuf, Value) {
    let out = dir.join(format!("out-{mode}"));
    let report = dir.join(format!("{mode}.json"));
    run_ok(imgslim().arg("slim").arg(orig).arg("-o").arg(&out).args(["--format", "oci", "--package-db", mode, "--report"]).arg(&report));
    let root = umoci_unpack(&out, &dir.join(format!("bundle-{mode}")));
    (out, root, serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap())
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned()
}

fn dpkg_packages(root: &Path) -> BTreeSet<String> {
    stdout(Command::new("dpkg-query").arg(format!("--admindir={}/var/lib/dpkg", root.display())).args(["-W", "-f=${Package}\\n"])).lines().map(str::to_string).collect()
}

fn syft_packages(layout: &Path) -> BTreeSet<String> {
    let o = stdout(Command::new("syft").env("SYFT_CHECK_FOR_APP_UPDATE", "false").args(["scan", &format!("oci-dir:{}", layout.display()), "-o", "json", "-q"]));
    let v: Value = serde_json::from_str(&o).unwrap();
    v["artifacts"].as_array().unwrap().iter().filter(|a| a["type"] == "deb").map(|a| a["name"].as_str().unwrap().to_string()).collect()
}

fn report_packages(r: &Value, removed: bool) -> BTreeSet<String> {
    r["packages"].as_array().unwrap().iter().filter(|p| p["removed"] == removed).map(|p| p["name"].as_str().unwrap().to_string()).collect()
}

/// (package, first alternative) of each unmet Depends/PreDepends `apt-get check` prints
/// against the image's status, with no package lists (so nothing else can satisfy them).
fn apt_unmet(root: &Path) -> BTreeSet<(String, String)> {
    let t = tempfile::tempdir().unwrap();
    for d in ["lists/partial", "parts", "cache"] {
        std::fs::create_dir_all(t.path().join(d)).unwrap();
    }
    let opt = |k: &str, v: &Path| format!("{k}={}", v.display());
    let o = Command::new("apt-get")
        .arg("-o").arg(opt("Dir::State::status", &root.join("var/lib/dpkg/status")))
        .arg("-o").arg(opt("Dir::State::Lists", &t.path().join("lists")))
        .arg("-o").arg(opt("Dir::Cache", &t.path().join("cache")))
        .args(["-o", "Dir::Etc::SourceList=/dev/null"])
        .arg("-o").arg(opt("Dir::Etc::SourceParts", &t.path().join("parts")))
        .args(["-o", "Debug::NoLocking=1", "check"])
        .output()
        .unwrap();
    let mut out = BTreeSet::new();
    let mut pkg = String::new();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        let rest = match l.split_once(" : ") {
            Some((p, r)) if l.starts_with(' ') && !p.trim().contains(' ') => {
                pkg = p.trim().to_string();
                r.trim()
            }
            _ => l.trim(),
        };
        for kind in ["Depends: ", "PreDepends: "] {
            if let Some(dep) = rest.strip_prefix(kind) {
                out.insert((pkg.clone(), dep.split_whitespace().next().unwrap_or("").to_string()));
            }
        }
    }
    out
}

fn reported_unmet(report: &Value) -> BTreeSet<(String, String)> {
    let note = report["notes"].as_array().unwrap().iter().filter_map(Value::as_str).find(|n| n.starts_with("dependencies no longer in the database")).unwrap_or("");
    let list = note.split_once("): ").map_or("", |(_, l)| l);
    list.split("; ")
        .filter_map(|e| {
            let (p, rest) = e.split_once(": ")?;
            let dep = rest.split_once(": ")?.1.split(" | ").next()?;
            Some((p.to_string(), dep.to_string()))
        })
        .collect()
}

#[test]
fn pruned_dpkg_database_matches_what_is_left() {
    if !have_tool("umoci") || !have_tool("debootstrap") || !have_tool("dpkg") || !have_tool("syft") || !have_tool("apt-get") {
        return;
    }
    let orig = accept_image("nginx-static");
    let t = tempfile::tempdir().unwrap();
    let (out, root, report) = slim(&orig, t.path(), "prune");
    let root_arg = format!("--root={}", root.display());
    // --verify always exits 0: its output is the answer.
    assert_eq!(stdout(Command::new("dpkg").args([&root_arg, "--verify"])), "");
    assert_eq!(stdout(Command::new("dpkg").args([&root_arg, "--audit"])), "");
    let (kept, removed) = (report_packages(&report, false), report_packages(&report, true));
    assert!(kept.contains("nginx") && kept.contains("libc6"), "{kept:?}");
    assert!(removed.contains("coreutils") && removed.contains("perl-base"), "{removed:?}");
    for p in report["packages"].as_array().unwrap() {
        assert_eq!(p["removed"] == true, p["files_kept"] == 0, "{p}");
    }
    assert_eq!(dpkg_packages(&root), kept);
    let syft = syft_packages(&out);
    assert_eq!(syft, kept);
    assert!(root.join("var/lib/dpkg/info/format").is_file() && root.join("etc/debian_version").is_file());
    assert!(!root.join("var/lib/dpkg/info/coreutils.list").exists());

    // apt-get check against the pruned status: its unmet Depends/PreDepends are exactly the
    // ones the summary reports as information.
    assert_eq!(apt_unmet(&root), reported_unmet(&report));
    assert!(!reported_unmet(&report).is_empty());

    // The oracle can fail: the unchanged database names files that are gone.
    let (_, root_keep, report_keep) = slim(&orig, t.path(), "keep");
    assert!(stdout(Command::new("dpkg").arg(format!("--root={}", root_keep.display())).arg("--verify")).contains("missing"));
    assert!(dpkg_packages(&root_keep).is_superset(&removed));
    assert!(report_packages(&report_keep, true).is_empty());
}

#[test]
fn status_d_and_drop_layouts() {
    if !have_tool("umoci") || !have_tool("debootstrap") || !have_tool("syft") {
        return;
    }
    let orig = accept_image("nginx-static");
    let t = tempfile::tempdir().unwrap();
    let (out, root, report) = slim(&orig, t.path(), "status.d");
    let kept = report_packages(&report, false);
    let d = root.join("var/lib/dpkg");
    assert!(!d.join("status").exists() && !d.join("info").exists());
    let files: BTreeSet<String> = std::fs::read_dir(d.join("status.d")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !n.ends_with(".md5sums")).collect();
    assert_eq!(files, kept);
    assert_eq!(syft_packages(&out), kept);

    let (out, root, _) = slim(&orig, t.path(), "drop");
    assert!(!root.join("var/lib/dpkg/status").exists());
    assert!(syft_packages(&out).is_empty());
}

/// (name, [paths]) per stanza of an apk `installed` file: the parser check (apk-tools itself
/// is not installable here).
fn apk_db(text: &str) -> Vec<(String, Vec<String>)> {
    text.split("\n\n")
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let (mut name, mut dir, mut files) = (String::new(), String::new(), Vec::new());
            for l in t.lines() {
                match l.split_once(':') {
                    Some(("P", v)) => name = v.to_string(),
                    Some(("F", v)) => dir = v.to_string(),
                    Some(("R", v)) => files.push(format!("{dir}/{v}")),
                    _ => {}
                }
            }
            (name, files)
        })
        .collect()
}

#[test]
fn apk_database_is_pruned_file_by_file() {
    if !have_tool("umoci") || !have_tool("syft") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(shared_images().join("alpine-minirootfs-3.20.3-x86_64.tar.gz")).unwrap()), &mut tar).unwrap();
    let img = oci_layout(&t.path().join("in"), &[tar], serde_json::json!({"Cmd": ["/bin/sh", "-c", "echo hi"]}));
    let orig = apk_db(&String::from_utf8(std::fs::read(umoci_unpack(&img, &t.path().join("b0")).join("lib/apk/db/installed")).unwrap()).unwrap());
    let (out, root, report) = slim(&img, t.path(), "prune");
    let db = apk_db(&std::fs::read_to_string(root.join("lib/apk/db/installed")).unwrap());
    let kept: BTreeSet<String> = db.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(kept, report_packages(&report, false));
    assert!(kept.contains("busybox") && kept.contains("musl"), "{kept:?}");
    assert!(report_packages(&report, true).contains("apk-tools"), "{report:#}");
    // Every file the pruned database names is in the image; every file of a removed package is gone.
    for (n, files) in &db {
        assert!(!files.is_empty(), "{n} kept with no files");
        for f in files {
            assert!(root.join(f).symlink_metadata().is_ok(), "{n}: {f} listed but gone");
        }
    }
    for (n, files) in orig.iter().filter(|(n, _)| !kept.contains(n)) {
        assert!(files.iter().all(|f| root.join(f).symlink_metadata().is_err()), "{n} removed but has files left");
    }
    // The oracle can fail: the original database names files the slimmed image lacks.
    assert!(orig.iter().flat_map(|(_, f)| f).any(|f| root.join(f).symlink_metadata().is_err()));
    let o = stdout(Command::new("syft").env("SYFT_CHECK_FOR_APP_UPDATE", "false").args(["scan", &format!("oci-dir:{}", out.display()), "-o", "json", "-q"]));
    let v: Value = serde_json::from_str(&o).unwrap();
    let syft: BTreeSet<String> = v["artifacts"].as_array().unwrap().iter().filter(|a| a["type"] == "apk").map(|a| a["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(syft, kept);

    // The SBOM lists the same apk packages, with apk purls; syft reads it back.
    let sbom = t.path().join("sbom.json");
    run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(t.path().join("out-sbom")).args(["--format", "oci", "--sbom"]).arg(&sbom).args(["--sbom-format", "cyclonedx-json"]));
    let s: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let purls: BTreeSet<String> = s["components"].as_array().unwrap().iter().filter_map(|c| c["purl"].as_str()).map(str::to_string).collect();
    assert!(purls.iter().any(|p| p.starts_with("pkg:apk/alpine/busybox@") && p.ends_with("?arch=x86_64&distro=alpine-3.20.3")), "{purls:?}");
    let o = stdout(Command::new("syft").env("SYFT_CHECK_FOR_APP_UPDATE", "false").args(["convert", sbom.to_str().unwrap(), "-o", "syft-json", "-q"]));
    let v: Value = serde_json::from_str(&o).unwrap();
    let read_back: BTreeSet<String> = v["artifacts"].as_array().unwrap().iter().filter(|a| a["type"] == "apk").map(|a| a["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(read_back, kept);
}

/// apk-tools itself, from the Alpine minirootfs (apk is not packaged for Debian), run in a
/// chroot of that rootfs against the slimmed image's rootfs placed inside it.
fn apk(chroot: &Path, root: &str, args: &[&str]) -> String {
    let o = run_ok(Command::new("chroot").arg(chroot).args(["/sbin/apk", "--root", root, "--no-network"]).args(args));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn real_apk_agrees_with_the_pruned_database() {
    if !have_tool("umoci") || !have_tool("chroot") || !must_be_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let chroot = t.path().join("alpine");
    std::fs::create_dir(&chroot).unwrap();
    let rootfs_tgz = shared_images().join("alpine-minirootfs-3.20.3-x86_64.tar.gz");
    run_ok(Command::new("tar").arg("-xzf").arg(&rootfs_tgz).arg("-C").arg(&chroot));
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(&rootfs_tgz).unwrap()), &mut tar).unwrap();
    let img = oci_layout(&t.path().join("in"), &[tar], serde_json::json!({"Cmd": ["/bin/sh", "-c", "echo hi"]}));
    // The slimmed rootfs lands in the chroot, at /bundle-prune/rootfs.
    let (_, root, report) = slim(&img, &chroot, "prune");
    let inner = "/bundle-prune/rootfs";

    // `apk info` lists exactly the packages that keep files.
    let listed: BTreeSet<String> = apk(&chroot, inner, &["info"]).lines().map(str::to_string).collect();
    let kept = report_packages(&report, false);
    assert_eq!(listed, kept);
    assert!(kept.contains("busybox") && !kept.contains("apk-tools"), "{kept:?}");
    // `apk info -L` lists only files that exist.
    for p in &kept {
        let files: Vec<String> = apk(&chroot, inner, &["info", "-L", p]).lines().skip(1).filter(|l| !l.is_empty()).map(str::to_string).collect();
        assert!(!files.is_empty(), "{p}: no files");
        for f in &files {
            assert!(root.join(f).symlink_metadata().is_ok(), "apk info -L {p}: {f} listed but not in the image");
        }
        // ... and `apk info -W` says the package owns them.
        let owner = apk(&chroot, inner, &["info", "-W", &format!("/{}", files[0])]);
        assert!(owner.contains(&format!("owned by {p}-")), "{owner}");
    }
    // `apk audit --system` reports no missing file ("X path").
    let audit = apk(&chroot, inner, &["audit", "--system"]);
    let missing: Vec<&str> = audit.lines().filter(|l| l.starts_with("X ")).collect();
    assert!(missing.is_empty(), "apk audit: {missing:?}");
    // The oracle can fail: with the original database, apk reports the dropped files missing.
    std::fs::copy(chroot.join("lib/apk/db/installed"), root.join("lib/apk/db/installed")).unwrap();
    let audit = apk(&chroot, inner, &["audit", "--system"]);
    assert!(audit.lines().any(|l| l.starts_with("X ")), "{audit}");
}
