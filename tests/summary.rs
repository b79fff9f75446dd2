//! The `slim` summary: a waterfall that adds up (against the layer tars the test built and the
//! layer tar imgslim wrote), `--dry-run` predicting the written layer, `--explain` chains down
//! to a root, hardlinked names folded, lines that fit a terminal, no schema jargon.
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn alpine_rootfs() -> Vec<u8> {
    let gz = std::fs::read(shared_images().join("alpine-minirootfs-3.20.3-x86_64.tar.gz")).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
    raw
}

const BIG: usize = 200_000;

/// Alpine + a layer with /opt/big (BIG bytes) + a layer that overwrites it with 5 bytes and
/// adds a doc and an apk cache file. Returns the layout and its three layer tars.
fn image(dir: &Path) -> (PathBuf, Vec<Vec<u8>>) {
    let big = vec![b'b'; BIG];
    let junk = vec![b'x'; 300_000];
    let l2 = layer(&[E::Dir("opt/", 0o755), E::File("opt/big", 0o644, &big)]);
    let l3 = layer(&[
        E::Dir("opt/", 0o755),
        E::File("opt/big", 0o644, b"small"),
        E::Dir("usr/share/doc/", 0o755),
        E::Dir("usr/share/doc/tool/", 0o755),
        E::File("usr/share/doc/tool/README", 0o644, &junk),
        E::Dir("var/cache/apk/", 0o755),
        E::File("var/cache/apk/APKINDEX.tar.gz", 0o644, &junk),
    ]);
    let layers = vec![alpine_rootfs(), l2, l3];
    let dir = oci_layout(dir, &layers, json!({"Cmd":["/bin/sh","-c","cat /opt/big"]}));
    (dir, layers)
}

/// The printed waterfall in tenths of its unit: (before, signed steps, after).
fn printed_waterfall(s: &str) -> (i64, Vec<i64>, i64) {
    let tenths = |t: &str| -> i64 {
        let (a, b) = t.split_once('.').unwrap_or_else(|| panic!("{t}"));
        a.parse::<i64>().unwrap() * 10 + b.parse::<i64>().unwrap()
    };
    let lines: Vec<&str> = s.lines().skip_while(|l| !l.starts_with("size, uncompressed")).skip(1).take_while(|l| !l.starts_with("kept because")).collect();
    let num = |l: &str, i: usize| tenths(l.split_whitespace().nth(i).unwrap());
    let before = num(lines[0], 0);
    let after = num(lines.last().unwrap(), 1);
    let steps = lines[1..lines.len() - 1].iter().map(|l| if l.trim_start().starts_with('-') { -num(l, 1) } else { num(l, 1) }).collect();
    (before, steps, after)
}

fn step(w: &Value, what: &str) -> i64 {
    w["steps"].as_array().unwrap().iter().find(|s| s["what"] == what).map(|s| s["bytes"].as_i64().unwrap()).unwrap_or(0)
}

#[test]
fn waterfall_adds_up_and_dry_run_predicts_the_layer() {
    let t = tempfile::tempdir().unwrap();
    let (img, layers) = image(&t.path().join("img"));
    let o = run_ok(imgslim().arg("slim").arg(&img).args(["--dry-run", "--report", "-"]));
    let dry: Value = serde_json::from_slice(&o.stdout).unwrap();
    let dry_text = String::from_utf8_lossy(&o.stderr).into_owned();
    let w = &dry["waterfall"];
    let before = w["before"].as_i64().unwrap();
    assert_eq!(before, layers.iter().map(|l| l.len() as i64).sum::<i64>(), "before is the input's layer tars");
    let sum: i64 = w["steps"].as_array().unwrap().iter().map(|s| s["bytes"].as_i64().unwrap()).sum();
    assert_eq!(before + sum, w["after"].as_i64().unwrap(), "{w}");
    assert_eq!(step(w, "overwritten or deleted by upper layers"), -(BIG as i64), "{w}");
    assert!(step(w, "dropped: docs") <= -300_000 && step(w, "dropped: caches") <= -300_000, "{w}");
    assert_eq!(dry["schema"], 1);
    assert!(dry_text.contains("result (dry run, nothing written): level minimal,"), "{dry_text}");

    let out = t.path().join("out");
    let o = run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(&out).args(["--report", "-"]));
    let real: Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = String::from_utf8_lossy(&o.stderr).into_owned();
    let written = first_layer(&out).len() as i64;
    assert_eq!(real["waterfall"]["after"].as_i64().unwrap(), written, "after is the written layer tar");
    assert_eq!(w["after"], real["waterfall"]["after"], "the dry run counted the layer it would write");
    // The printed lines add up too (rounding included).
    let (b, steps, a) = printed_waterfall(&text);
    assert_eq!(b + steps.iter().sum::<i64>(), a, "{text}");
    assert!(text.starts_with("result: level minimal, "), "the result comes first: {text}");
    let order: Vec<usize> = ["result:", "size, uncompressed", "kept because:", "dropped, by rule:", "note: ", "risks"].iter().map(|h| text.find(h).unwrap_or_else(|| panic!("{h}: {text}"))).collect();
    assert!(order.windows(2).all(|p| p[0] < p[1]), "sections out of order: {text}");
    for bad in ["Minimal", "keep.globs", "elf_names", "elf_roots", "drop_exclusions", "MiB", "KiB"] {
        assert!(!text.contains(bad), "{bad} in the summary: {text}");
    }
    // Lines fit 80 columns, unless one word (a path) alone is too long.
    for l in text.lines() {
        assert!(l.chars().count() <= 80 || l.split_whitespace().any(|w| w.chars().count() > 40), "too long: {l}");
    }
}

#[test]
fn dry_run_writes_no_report_file() {
    let t = tempfile::tempdir().unwrap();
    let (img, _) = image(&t.path().join("img"));
    let r = t.path().join("r.json");
    let o = run(imgslim().arg("slim").arg(&img).arg("--dry-run").arg("--report").arg(&r));
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!r.exists());
}

#[test]
fn explain_without_output_prints_the_chain_to_the_root() {
    let t = tempfile::tempdir().unwrap();
    let (img, _) = image(&t.path().join("img"));
    let o = run_ok(imgslim().env("TMPDIR", t.path()).arg("slim").arg(&img).args(["--keep", "/sbin/apk", "--explain", "/lib/libssl.so.3"]));
    assert!(o.stdout.is_empty());
    let s = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!s.contains("result"), "only the explanation: {s}");
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].starts_with("/lib/libssl.so.3: kept: "), "{s}");
    // Each line names the path the line above says needs it, once, down to --keep.
    let paths: Vec<&str> = lines[1..].iter().map(|l| l.trim_start_matches([' ', '└', '─']).split(':').next().unwrap()).collect();
    assert!(paths.contains(&"/lib/libapk.so.2.14.0"), "{s}");
    assert_eq!(*paths.last().unwrap(), "/sbin/apk", "{s}");
    assert!(lines.last().unwrap().ends_with("/sbin/apk: --keep /sbin/apk"), "{s}");
    let mut uniq = paths.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), paths.len(), "a path twice: {s}");
    for (above, p) in lines.iter().zip(&paths) {
        assert!(above.contains(p), "'{above}' does not name {p}");
    }
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1, "nothing but the image is left");
}

#[test]
fn hardlinked_names_fold_into_one() {
    let img = shared_images().join("busybox-1.38.0-musl.oci");
    let layer = first_layer(&img);
    let mut links = 0;
    for e in tar::Archive::new(&layer[..]).entries().unwrap() {
        let e = e.unwrap();
        if e.header().entry_type() == tar::EntryType::Link && e.link_name().unwrap().unwrap().to_str() == Some("bin/[") {
            links += 1;
        }
    }
    assert!(links > 300, "{links}");
    let o = run_ok(imgslim().arg("slim").arg(&img).arg("--dry-run"));
    let s = String::from_utf8_lossy(&o.stderr);
    assert!(s.contains(&format!(" /bin/sh (+{links} links) (root: Cmd)")), "{s}");
    assert!(!s.lines().any(|l| l.contains("/bin/[ ")), "{s}");
}

#[test]
fn max_size_and_min_factor_refuse_with_exit_3_and_write_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (img, _) = image(&t.path().join("img"));
    let (out, r) = (t.path().join("out"), t.path().join("r.json"));
    for gate in [["--max-size", "1kB"], ["--min-factor", "1000"]] {
        let o = run(imgslim().env("TMPDIR", t.path()).arg("slim").arg(&img).arg("-o").arg(&out).arg("--report").arg(&r).args(gate));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{gate:?}: {err}");
        assert!(err.contains(gate[0]) && err.contains("nothing written"), "{err}");
        assert!(!out.exists() && !r.exists(), "{gate:?} wrote something");
        let left: Vec<_> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
    for (flag, bad) in [("--max-size", "lots"), ("--min-factor", "0")] {
        assert_eq!(run(imgslim().arg("slim").arg(&img).arg("-o").arg(&out).args([flag, bad])).status.code(), Some(2), "{flag} {bad}");
    }
    // Met: written as usual; the dry run checks the same numbers.
    run_ok(imgslim().arg("slim").arg(&img).arg("--dry-run").args(["--max-size", "100MB", "--min-factor", "1.5"]));
    assert_eq!(run(imgslim().arg("slim").arg(&img).arg("--dry-run").args(["--max-size", "1kB"])).status.code(), Some(3));
    run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(&out).args(["--max-size", "100MB", "--min-factor", "1.5"]));
    assert!(out.join("index.json").exists());
}

/// The layer blob of a one-layer layout, and its manifest entry.
fn blob(layout: &Path) -> (Vec<u8>, Value, String) {
    let rd = |d: &str| std::fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let idx: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m: Value = serde_json::from_slice(&rd(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let cfg: Value = serde_json::from_slice(&rd(m["config"]["digest"].as_str().unwrap())).unwrap();
    let l = m["layers"][0].clone();
    (rd(l["digest"].as_str().unwrap()), l, cfg["rootfs"]["diff_ids"][0].as_str().unwrap().to_string())
}

#[test]
fn compression_levels_give_the_same_tar_in_smaller_blobs() {
    let t = tempfile::tempdir().unwrap();
    let (img, _) = image(&t.path().join("img"));
    let mut sizes = std::collections::BTreeMap::new();
    for (c, tool) in [("gzip:1", "gzip"), ("gzip:12", "gzip"), ("zstd:1", "zstd"), ("zstd:19", "zstd")] {
        let out = t.path().join(c.replace(':', "-"));
        let o = run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(&out).args(["--compression", c]));
        assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("{c} layers")), "{}", String::from_utf8_lossy(&o.stderr));
        let (bytes, desc, diff_id) = blob(&out);
        assert!(desc["mediaType"].as_str().unwrap().ends_with(&format!("+{tool}")), "{desc}");
        // The system's own decompressor gives back the tar the config names.
        let mut child = std::process::Command::new(tool).arg("-dc").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes).unwrap());
        let tar = child.wait_with_output().unwrap().stdout;
        feed.join().unwrap();
        assert_eq!(format!("sha256:{}", sha256_hex(&tar)), diff_id, "{c}");
        sizes.insert(c, desc["size"].as_u64().unwrap());
    }
    assert!(sizes["gzip:12"] < sizes["gzip:1"] && sizes["zstd:19"] < sizes["zstd:1"], "{sizes:?}");
    for bad in ["gzip:13", "zstd:0", "lz4", "none:3"] {
        assert_eq!(run(imgslim().arg("slim").arg(&img).arg("--dry-run").args(["--compression", bad])).status.code(), Some(2), "{bad}");
    }
}

#[test]
fn dry_run_shows_the_pack_decisions_and_counts_them_in_the_waterfall() {
    let img = shared_images().join("busybox-1.38.0-musl.oci");
    let o = run_ok(imgslim().arg("slim").arg(&img).args(["--dry-run", "--pack", "--report", "-"]));
    let s = String::from_utf8_lossy(&o.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let packed: Vec<&Value> = r["pack"].as_array().unwrap().iter().filter(|p| p["packed"].is_u64()).collect();
    assert_eq!(packed.len(), 1, "{}", r["pack"]);
    let saved = packed[0]["original"].as_i64().unwrap() - packed[0]["packed"].as_i64().unwrap();
    assert_eq!(step(&r["waterfall"], "packing (1 executable)"), -saved, "{}", r["waterfall"]);
    assert!(s.contains("note: pack /bin/sh (+404 links): packed 1.2 MB ->"), "{s}");
    assert!(s.contains("note: pack /bin/getconf: skipped: too small"), "{s}");
}
