//! Squash exactness against independent oracles: umoci's unpack of the original image must
//! give exactly the tree that umoci's unpack of our squashed image gives; skopeo must accept
//! every output format; runc must run the squashed busybox.
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Every case of the exactness list in one three-layer image.
fn tricky_layers() -> Vec<Vec<u8>> {
    let long_dir = "long/".to_string() + &"d".repeat(90) + "/";
    let long_name: &'static str = Box::leak((long_dir.clone() + &"n".repeat(80)).into_boxed_str());
    let long_pax: &'static str = Box::leak((long_dir.clone() + &"p".repeat(120)).into_boxed_str());
    let long_target: &'static str = Box::leak(("../".to_string() + &"t".repeat(150)).into_boxed_str());
    let cap = vec![1u8, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let l1 = layer(&[
        E::Dir("etc/", 0o755),
        E::File("etc/a", 0o644, b"A1"),
        E::File("etc/keep", 0o600, b"keep"),
        E::Dir("bin/", 0o755),
        E::File("bin/tool", 0o755, b"tool-v1"),
        E::Hardlink("bin/tool-link", "bin/tool"),
        E::FileFull("bin/su", 0o4755, 0, 0, 1_500_000_000, b"setuid"),
        E::FileFull("bin/sg", 0o2755, 0, 42, 1_500_000_000, b"setgid"),
        E::Symlink("bin/sh", "busybox"),
        E::Symlink("lib64", "lib"),
        E::Dir("tmp/", 0o1777),
        E::Dir("srv/", 0o2775),
        E::Dir("home/", 0o755),
        E::Dir("home/u/", 0o700),
        E::FileFull("home/u/file", 0o640, 1000, 1000, 1_234_567_890, b"user file"),
        E::Dir("dev/", 0o755),
        E::Char("dev/null", 1, 3),
        E::Block("dev/sda", 8, 0),
        E::Dir("run/", 0o755),
        E::Fifo("run/fifo"),
        E::File(long_name, 0o644, b"gnu long name"),
        E::Pax(long_pax, vec![("path", long_pax.as_bytes().to_vec()), ("mtime", b"1700000000.123456".to_vec())], 0o644, b"pax long name"),
        E::Pax("bin/ping", vec![("SCHILY.xattr.security.capability", cap)], 0o755, b"ping"),
        E::Symlink("long/lnk", long_target),
        E::Dir("opq/", 0o755),
        E::File("opq/old1", 0o644, b"old1"),
        E::Dir("opq/sub/", 0o755),
        E::File("opq/sub/old2", 0o644, b"old2"),
        E::Dir("wh/", 0o755),
        E::File("wh/gone", 0o644, b"gone"),
        E::Dir("wh/dir/", 0o755),
        E::File("wh/dir/deep", 0o644, b"deep"),
        E::File("wh/stays", 0o644, b"stays"),
        E::File("f2d", 0o644, b"file that becomes a dir"),
        E::Dir("d2f/", 0o755),
        E::File("d2f/child", 0o644, b"child"),
        E::Dir("lowerlink/", 0o755),
        E::File("lowerlink/target", 0o644, b"T1"),
    ]);
    let l2 = layer(&[
        E::Dir("opq/", 0o750),
        E::File("opq/new", 0o644, b"new"),
        // The opaque marker comes after a new entry: it must still apply first.
        E::File("opq/.wh..wh..opq", 0o644, b""),
        E::File("wh/.wh.gone", 0o644, b""),
        E::File("wh/.wh.dir", 0o644, b""),
        E::Dir("f2d/", 0o755),
        E::File("f2d/inner", 0o644, b"inner"),
        E::File("d2f", 0o644, b"dir became a file"),
        E::File("etc/a", 0o644, b"A2"),
        E::Hardlink("newlink", "lowerlink/target"),
        E::File("bin/.wh.tool", 0o644, b""),
        // An entry whose parent has no entry in this layer.
        E::File("implicit/parent/file", 0o644, b"implicit"),
    ]);
    let l3 = layer(&[E::File("lowerlink/target", 0o644, b"T3 replaced"), E::File("etc/.wh.keep", 0o644, b"")]);
    vec![l1, l2, l3]
}

fn squash(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    run(imgslim().arg("squash").arg(input).arg("-o").arg(out).args(extra))
}

fn squash_ok(input: &Path, out: &Path, extra: &[&str]) {
    run_ok(imgslim().arg("squash").arg(input).arg("-o").arg(out).args(extra));
}

#[test]
fn squash_matches_umoci_on_every_tricky_case() {
    if !have_tool("umoci") {
        return;
    }
    let t = tmp();
    let orig = oci_layout(&t.path().join("orig"), &tricky_layers(), json!({"Cmd":["/bin/sh"]}));
    let out = t.path().join("squashed");
    let o = squash(&orig, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = tree_manifest(&umoci_unpack(&orig, &t.path().join("b1")), true);
    let got = tree_manifest(&umoci_unpack(&out, &t.path().join("b2")), true);
    assert_same_tree(&expected, &got, "umoci unpack of original vs of squashed");
    // Spot checks that pin the semantics independently of umoci.
    let get = |p: &str| got.get(p).cloned().unwrap_or_else(|| panic!("{p} missing"));
    assert!(get("opq/new").contains("size=3"));
    assert!(!got.contains_key("opq/old1") && !got.contains_key("opq/sub"), "opaque dir must hide lower children");
    assert!(!got.contains_key("wh/gone") && !got.contains_key("wh/dir/deep") && got.contains_key("wh/stays"));
    assert!(get("f2d").starts_with("dir") && get("d2f").starts_with("file"));
    assert!(get("bin/tool-link").contains(&sha256_hex(b"tool-v1")), "link survives whiteout of its twin");
    assert!(get("newlink").contains(&sha256_hex(b"T1")), "a link keeps its content when the target path is replaced");
    assert!(get("lowerlink/target").contains(&sha256_hex(b"T3 replaced")));
    assert!(get("bin/su").contains("mode=4755") && get("bin/sg").contains("mode=2755") && get("tmp").contains("mode=1777"));
    assert!(get("home/u/file").contains("uid=1000 gid=1000") && get("home/u/file").contains("mtime=1234567890"));
    assert!(get("dev/null").starts_with("char") && get("dev/null").contains("1:3") && get("dev/sda").contains("8:0"));
    assert!(get("run/fifo").starts_with("fifo"));
    assert!(!got.contains_key("etc/keep"));
}

/// Read our squashed layer tar directly: hardlink targets precede links, the capability xattr
/// and PAX mtime survive, names are sorted parents-first.
#[test]
fn squashed_layer_tar_is_well_formed() {
    let t = tmp();
    let orig = oci_layout(&t.path().join("orig"), &tricky_layers(), json!({}));
    let out = t.path().join("sq");
    squash_ok(&orig, &out, &["--compression", "none"]);
    let idx: Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let mdig = idx["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let man: Value = serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(mdig)).unwrap()).unwrap();
    assert_eq!(man["layers"].as_array().unwrap().len(), 1);
    assert_eq!(man["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    let ldig = man["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let cdig = man["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let cfg: Value = serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(&cdig)).unwrap()).unwrap();
    let blob = std::fs::read(out.join("blobs/sha256").join(&ldig)).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"][0].as_str().unwrap(), format!("sha256:{}", sha256_hex(&blob)));
    let hist = cfg["history"].as_array().unwrap();
    assert_eq!(hist.len(), 4);
    assert!(hist[..3].iter().all(|h| h["empty_layer"] == true) && hist[3].get("empty_layer").is_none());
    let mut ar = tar::Archive::new(&blob[..]);
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        if e.header().entry_type() == tar::EntryType::Link {
            let target = String::from_utf8(e.link_name_bytes().unwrap().into_owned()).unwrap();
            assert!(seen.contains(&target), "hardlink {p} before its target {target}");
        }
        if p == "bin/ping" {
            let exts: Vec<(String, Vec<u8>)> = e
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|x| x.unwrap())
                .map(|x| (x.key().unwrap().to_string(), x.value_bytes().to_vec()))
                .collect();
            assert!(exts.iter().any(|(k, v)| k == "SCHILY.xattr.security.capability" && v.len() == 20), "{exts:?}");
        }
        if p.contains("pppp") {
            assert_eq!(e.header().mtime().unwrap(), 1_700_000_000, "PAX mtime must be applied");
        }
        let parent = p.trim_end_matches('/').rsplit_once('/').map(|x| x.0.to_string() + "/");
        if let Some(parent) = parent {
            assert!(seen.contains(&parent), "{p} before its parent");
        }
        seen.push(p);
    }
}

#[test]
fn output_is_deterministic_in_every_format() {
    let t = tmp();
    let orig = oci_layout(&t.path().join("orig"), &tricky_layers(), json!({}));
    for (fmt, comp) in [("oci-archive", "gzip"), ("docker-archive", "gzip"), ("oci-archive", "zstd"), ("docker-archive", "none")] {
        let a = t.path().join(format!("a-{fmt}-{comp}.tar"));
        let b = t.path().join(format!("b-{fmt}-{comp}.tar"));
        for p in [&a, &b] {
            let o = squash(&orig, p, &["--format", fmt, "--compression", comp]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{fmt}/{comp} not byte-identical");
    }
    // SOURCE_DATE_EPOCH sets `created` and clamps later mtimes.
    let o = run(imgslim().env("SOURCE_DATE_EPOCH", "1000000000").arg("squash").arg(&orig).arg("-o").arg(t.path().join("sde")).args(["--compression", "none"]));
    assert!(o.status.success());
    let inspect = run_ok(imgslim().arg("inspect").arg("--json").arg(t.path().join("sde")));
    let v: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 1);
}

#[test]
fn skopeo_accepts_every_output_format() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tmp();
    let orig = oci_layout(&t.path().join("orig"), &tricky_layers(), json!({"Cmd":["sh"]}));
    for (fmt, transport, name) in [("oci", "oci", "o"), ("oci-archive", "oci-archive", "o.tar"), ("docker-archive", "docker-archive", "d.tar")] {
        let out = t.path().join(name);
        let o = squash(&orig, &out, &["--format", fmt]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r = run_ok(Command::new("skopeo").args(["inspect", "--raw"]).arg(format!("{transport}:{}", out.display())));
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(v["layers"].as_array().map(|a| a.len()), Some(1), "{fmt}");
        // A full copy re-reads and verifies every blob.
        run_ok(Command::new("skopeo").args(["copy", "--quiet"]).arg(format!("{transport}:{}", out.display())).arg(format!("oci:{}:x", t.path().join(format!("copy-{name}")).display())));
    }
}

#[test]
fn docker_save_inputs_legacy_and_oci_layout_round_trip() {
    if !have_tool("skopeo") || !have_tool("umoci") {
        return;
    }
    let t = tmp();
    let orig = oci_layout(&t.path().join("orig"), &tricky_layers(), json!({}));
    // skopeo writes the legacy docker-save layout (manifest.json, <hex>.tar layers).
    let legacy = t.path().join("legacy.tar");
    run_ok(Command::new("skopeo").args(["copy", "--quiet"]).arg(format!("oci:{}:latest", orig.display())).arg(format!("docker-archive:{}:img:v1", legacy.display())));
    // Our docker-archive is the Docker 25+ layout (OCI layout + manifest.json).
    let d25 = t.path().join("d25.tar");
    squash_ok(&orig, &d25, &["--format", "docker-archive", "--compression", "none"]);
    let expected = tree_manifest(&umoci_unpack(&orig, &t.path().join("b0")), true);
    for (i, input) in [&legacy, &d25].iter().enumerate() {
        let out = t.path().join(format!("out{i}"));
        let o = squash(input, &out, &["--format", "oci"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = tree_manifest(&umoci_unpack(&out, &t.path().join(format!("b{}", i + 1))), true);
        assert_same_tree(&expected, &got, &format!("input {}", input.display()));
    }
    // The legacy archive's tag is carried over.
    let o = squash(&legacy, &t.path().join("l2.tar"), &[]);
    assert!(o.status.success());
    let m = run_ok(Command::new("tar").arg("-xOf").arg(t.path().join("l2.tar")).arg("manifest.json"));
    assert!(String::from_utf8_lossy(&m.stdout).contains("img:v1"));
    // And stdin works.
    let f = std::fs::File::open(&legacy).unwrap();
    let o = imgslim().args(["squash", "-", "-o"]).arg(t.path().join("stdin-out")).args(["--format", "oci"]).stdin(f).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn real_busybox_images_squash_exactly_and_run_under_runc() {
    if !have_tool("umoci") || !have_tool("runc") {
        return;
    }
    for flavor in ["glibc", "musl"] {
        let t = tmp();
        let orig = shared_images().join(format!("busybox-1.38.0-{flavor}.oci"));
        let out = t.path().join("sq");
        let o = squash(&orig, &out, &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let expected = tree_manifest(&umoci_unpack(&orig, &t.path().join("b1")), true);
        let got = tree_manifest(&umoci_unpack(&out, &t.path().join("b2")), true);
        assert_same_tree(&expected, &got, flavor);
        let (code, output) = runc_run(&out, t.path(), &["sh", "-c", "echo ok; ls /bin | wc -l"]);
        assert_eq!(code, 0, "{output}");
        assert!(output.starts_with("ok\n"), "{output}");
    }
}

#[test]
fn alpine_minirootfs_squashes_exactly() {
    if !have_tool("umoci") {
        return;
    }
    let t = tmp();
    let gz = std::fs::read(shared_images().join("alpine-minirootfs-3.20.3-x86_64.tar.gz")).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
    // Two layers: the rootfs, then a layer deleting apk's cache dir and a binary.
    let l2 = layer(&[E::File("etc/.wh.motd", 0o644, b""), E::File("sbin/.wh.apk", 0o644, b""), E::File("etc/added", 0o644, b"x")]);
    let orig = oci_layout(&t.path().join("orig"), &[raw, l2], json!({"Cmd":["/bin/sh"]}));
    // Debian's umoci cannot read zstd layers: write zstd, read it back with imgslim into gzip.
    let zst = t.path().join("zst");
    squash_ok(&orig, &zst, &["--compression", "zstd"]);
    let out = t.path().join("sq");
    squash_ok(&zst, &out, &["--compression", "gzip"]);
    let expected = tree_manifest(&umoci_unpack(&orig, &t.path().join("b1")), true);
    let got = tree_manifest(&umoci_unpack(&out, &t.path().join("b2")), true);
    assert_same_tree(&expected, &got, "alpine");
    assert!(!got.contains_key("sbin/apk") && got.contains_key("etc/added"));
}

/// The acceptance suite's cached image builder (debootstrap + apt in a chroot + umoci layers).
fn accept_image(name: &str) -> std::path::PathBuf {
    let o = run_ok(Command::new("bash").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/build.sh")).arg(name));
    std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

#[test]
fn real_debian_multilayer_image_squashes_exactly() {
    if !have_tool("umoci") || !have_tool("debootstrap") || !have_tool("runc") || !have_tool("skopeo") {
        return;
    }
    let dir = accept_image("debian-layers");
    let t = tmp();
    let orig = dir.join("oci");
    // Both input kinds: the OCI layout and skopeo's docker-archive of the same image.
    for (i, input) in [orig.clone(), dir.join("docker-archive.tar")].iter().enumerate() {
        let out = t.path().join(format!("sq{i}"));
        squash_ok(input, &out, &["--format", "oci"]);
        let expected = tree_manifest(&umoci_unpack(&orig, &t.path().join(format!("a{i}"))), true);
        let got = tree_manifest(&umoci_unpack(&out, &t.path().join(format!("b{i}"))), true);
        assert_same_tree(&expected, &got, &format!("debian-layers from {}", input.display()));
        assert!(expected.len() > 3000, "a real Debian tree ({} paths)", expected.len());
    }
    let (c1, o1) = runc_run(&orig, &t.path().join("r1"), &["/usr/local/bin/report"]);
    let (c2, o2) = runc_run(&t.path().join("sq0"), &t.path().join("r2"), &["/usr/local/bin/report"]);
    assert_eq!(c1, 0, "{o1}");
    assert_eq!((c2, o2), (c1, o1));
    // inspect counts wasted bytes from the deleting layers, once per wasted copy.
    let v: Value = serde_json::from_slice(&run_ok(imgslim().arg("inspect").arg("--json").arg(&orig)).stdout).unwrap();
    assert!(v["wasted_bytes"].as_u64().unwrap() > 100_000, "{}", v["wasted_bytes"]);
    assert!(v["layers"].as_array().unwrap().len() >= 4);
}

/// Compressible but not trivial content: runs of text between stretches of noise.
fn mixed_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i / 3000) % 3 == 0 { x as u8 } else { b"the quick brown fox "[i % 20] ^ (x as u8 & 1) }
        })
        .collect()
}

/// (manifest digest, layer digest) of a single-manifest OCI layout.
fn layout_digests(layout: &Path) -> (String, String) {
    let rd = |d: &str| std::fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let idx: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let md = idx["manifests"][0]["digest"].as_str().unwrap().to_string();
    let m: Value = serde_json::from_slice(&rd(&md)).unwrap();
    (md, m["layers"][0]["digest"].as_str().unwrap().to_string())
}

/// gzip layers are many 1 MiB members compressed in parallel and pipelined with the tar
/// writer: the image must be byte-identical whatever the thread count, and the layer exactly
/// what the unpipelined encoder wrote: its tar cut in 1 MiB chunks, each one libdeflate
/// level-6 gzip member, in order (rebuilt here from the decompressed layer).
#[test]
fn gzip_output_is_identical_for_any_thread_count() {
    let t = tmp();
    let data: Vec<(String, Vec<u8>)> = (0..7).map(|i| (format!("data/f{i}"), mixed_bytes(i, 700_000 + 99_991 * i as usize))).collect();
    let mut entries = vec![E::Dir("data/", 0o755)];
    entries.extend(data.iter().map(|(n, d)| E::File(n, 0o644, d)));
    let orig = oci_layout(&t.path().join("orig"), &[layer(&entries)], json!({}));
    let runs: Vec<(String, String)> = ["1", "2", "5"]
        .iter()
        .map(|n| {
            let out = t.path().join(format!("out-{n}"));
            run_ok(imgslim().env("RAYON_NUM_THREADS", n).arg("squash").arg(&orig).arg("-o").arg(&out).args(["--format", "oci"]));
            layout_digests(&out)
        })
        .collect();
    assert!(runs.iter().all(|r| *r == runs[0]), "thread counts 1/2/5 differ: {runs:?}");
    let out = t.path().join("out-1");
    let blob = std::fs::read(out.join("blobs/sha256").join(runs[0].1.trim_start_matches("sha256:"))).unwrap();
    let tar = first_layer(&out);
    assert!(tar.len() > 5 << 20, "several members ({} bytes)", tar.len());
    let mut expected = Vec::new();
    for chunk in tar.chunks(1 << 20) {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(6).unwrap());
        let mut m = vec![0; c.gzip_compress_bound(chunk.len())];
        let n = c.gzip_compress(chunk, &mut m).unwrap();
        expected.extend_from_slice(&m[..n]);
    }
    assert!(blob == expected, "the gzip layer is not the 1 MiB libdeflate members of its tar");
}
