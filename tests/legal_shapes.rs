//! Legal layer shapes that runtimes accept: each must squash to exactly the tree umoci unpacks
//! from the original, and squash and slim to images that answer like the original under runc.
//! One image (busybox musl + three layers in gzip (multi-member), zstd and uncompressed media
//! types) holds every shape, so one set of runs checks them all.
mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use tar::EntryType;

const LONG_DIR: &str = "shapes/long";

fn long_path() -> String {
    // 300 bytes: past ustar's 100/155 split, needs a GNU long name or PAX record.
    let mut p = format!("{LONG_DIR}/");
    while p.len() < 290 {
        p.push_str("segment-0123456789/");
    }
    p.push_str(&"f".repeat(300 - p.len()));
    assert_eq!(p.len(), 300);
    p
}

/// The script the image runs: builtins only, so the slimmed image needs nothing but /bin/sh.
fn script() -> Vec<u8> {
    format!(
        "#!/bin/sh
show() {{ while IFS= read -r l || [ -n \"$l\" ]; do echo \"$1: $l\"; done < \"$1\"; }}
show /shapes/dup
show /shapes/dotslash
show /shapes/late/child
show /shapes/abs
show /shapes/hl
show /shapes/a/b/link | head -1
show /shapes/a/b/link2
show /{long}
echo gone: /shapes/gone/*
for f in /shapes/caf*; do show \"$f\"; done
[ -e /shapes/lower ] && echo lower still there || echo lower whited out
",
        long = long_path()
    )
    .into_bytes()
}

fn shapes_layers() -> Vec<Vec<u8>> {
    let long = long_path();
    let non_utf8: &[u8] = b"shapes/caf\xe9";
    let l1 = layer(&[
        E::Dir("shapes/", 0o755),
        E::Raw(b"./shapes/dotslash", EntryType::Regular, b"dot-slash name"),
        E::File("shapes/run.sh", 0o755, Box::leak(script().into_boxed_slice())),
        // Children before their parent directory: the later dir entry only sets attributes.
        E::File("shapes/late/child", 0o644, b"child first"),
        E::Dir("shapes/late/", 0o750),
        // A duplicate path within one layer: the last entry wins.
        E::File("shapes/dup", 0o644, b"first"),
        E::File("shapes/dup", 0o600, b"second"),
        E::File("shapes/lower", 0o644, b"lower content"),
        E::Dir("shapes/gone/", 0o755),
        E::File("shapes/gone/old", 0o644, b"old"),
        E::Dir("shapes/a/", 0o755),
        E::Dir("shapes/a/b/", 0o755),
        // Climbs above the root: resolves to /etc/passwd inside the image (chroot semantics).
        E::Symlink("shapes/a/b/link", "../../../../etc/passwd"),
        E::Symlink("shapes/a/b/link2", "../../../../../opt/only-via-link"),
        E::Dir("opt/", 0o755),
        E::File("opt/only-via-link", 0o644, b"reached through a climbing link"),
        E::Raw(b"/shapes/abs", EntryType::Regular, b"absolute name"),
        E::File(Box::leak(long.into_boxed_str()), 0o644, b"300-byte path"),
        E::Raw(non_utf8, EntryType::Regular, b"latin-1 name"),
    ]);
    let l2 = layer(&[
        // A hardlink to a lower-layer file (whose name the next layer whites out).
        E::Hardlink("shapes/hl", "shapes/lower"),
        // A directory whited out and recreated in the same layer.
        E::File("shapes/.wh.gone", 0o644, b""),
        E::Dir("shapes/gone/", 0o700),
        E::File("shapes/gone/new", 0o644, b"new"),
    ]);
    let l3 = layer(&[E::File("shapes/.wh.lower", 0o644, b"")]);
    vec![l1, l2, l3]
}

#[derive(Clone, Copy)]
enum Media {
    /// Two gzip members back to back (what `pigz --independent`-style tools and concatenation give).
    MultiGzip,
    Zstd,
    None,
}

fn encode(tar: &[u8], m: Media) -> (Vec<u8>, &'static str) {
    match m {
        Media::MultiGzip => {
            let half = tar.len() / 2;
            let mut v = gzip(&tar[..half]);
            v.extend(gzip(&tar[half..]));
            (v, "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        Media::Zstd => (zstd::encode_all(tar, 3).unwrap(), "application/vnd.oci.image.layer.v1.tar+zstd"),
        Media::None => (tar.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
    }
}

fn busybox_base_tar() -> Vec<u8> {
    let dir = shared_images().join("busybox-1.38.0-musl.oci");
    let blob = |d: &str| std::fs::read(dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let idx: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let man: Value = serde_json::from_slice(&blob(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let layers = man["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "busybox musl image is one layer");
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob(layers[0]["digest"].as_str().unwrap())[..]).read_to_end(&mut out).unwrap();
    out
}

/// An OCI layout of `layers` (uncompressed tars), each stored with its own media type.
fn layout(dir: &Path, layers: &[(Vec<u8>, Media)], runtime: Value) -> PathBuf {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| -> (String, u64) {
        let h = sha256_hex(bytes);
        std::fs::write(dir.join("blobs/sha256").join(&h), bytes).unwrap();
        (format!("sha256:{h}"), bytes.len() as u64)
    };
    let (mut descs, mut diff_ids) = (vec![], vec![]);
    for (tar, media) in layers {
        diff_ids.push(format!("sha256:{}", sha256_hex(tar)));
        let (bytes, mt) = encode(tar, *media);
        let (d, s) = put(&bytes);
        descs.push(json!({"mediaType": mt, "digest": d, "size": s}));
    }
    let config = json!({"architecture":"amd64","os":"linux","config":runtime,"rootfs":{"type":"layers","diff_ids":diff_ids}});
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":cs},"layers":descs});
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    let index = json!({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "digest":md,"size":ms,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir.to_path_buf()
}

/// The shapes image, and its twin with the same layer tars all gzip-compressed: umoci 0.4.7
/// cannot read zstd layers, so it unpacks (and runc runs) the twin as the oracle's view.
fn shapes_image(dir: &Path, for_umoci: bool) -> PathBuf {
    let [l1, l2, l3]: [Vec<u8>; 3] = shapes_layers().try_into().unwrap();
    let zstd = if for_umoci { Media::MultiGzip } else { Media::Zstd };
    let layers = [(busybox_base_tar(), Media::MultiGzip), (l1, Media::MultiGzip), (l2, zstd), (l3, Media::None)];
    layout(dir, &layers, json!({"Cmd": ["/bin/sh", "/shapes/run.sh"]}))
}

/// What the script prints must pin each shape's meaning, not just match between images.
fn assert_expected_answers(out: &str) {
    for line in [
        "/shapes/dup: second",
        "/shapes/dotslash: dot-slash name",
        "/shapes/late/child: child first",
        "/shapes/abs: absolute name",
        "/shapes/hl: lower content",
        "/shapes/a/b/link: root:x:0:0:root:/root:/bin/sh",
        "/shapes/a/b/link2: reached through a climbing link",
        "fff: 300-byte path",
        "gone: /shapes/gone/new",
        ": latin-1 name",
        "lower whited out",
    ] {
        assert!(out.contains(line), "expected '{line}' in:\n{out}");
    }
}

/// The image and its umoci twin in a fresh temp dir; None (outside CI) without the tools.
fn fixture(tools: &[&str]) -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    if let Some(missing) = tools.iter().find(|t| !have_tool(t)) {
        assert!(std::env::var("CI").is_err(), "{missing} missing under CI");
        return None;
    }
    let t = tempfile::tempdir().unwrap();
    let orig = shapes_image(&t.path().join("orig"), false);
    let twin = shapes_image(&t.path().join("twin"), true);
    Some((t, orig, twin))
}

#[test]
fn legal_shapes_squash_exactly_like_umoci() {
    let Some((t, orig, twin)) = fixture(&["umoci"]) else { return };
    let out = t.path().join("sq");
    run_ok(imgslim().arg("squash").arg(&orig).arg("-o").arg(&out));
    let expected = tree_manifest(&umoci_unpack(&twin, &t.path().join("b1")), true);
    let got = tree_manifest(&umoci_unpack(&out, &t.path().join("b2")), true);
    assert_same_tree(&expected, &got, "umoci unpack of original vs of squashed");
    let get = |p: &str| got.get(p).cloned().unwrap_or_else(|| panic!("{p} missing: {:?}", got.keys().filter(|k| k.starts_with("shapes")).collect::<Vec<_>>()));
    assert!(get("shapes/dup").contains("mode=600") && get("shapes/dup").contains(&sha256_hex(b"second")));
    assert!(get("shapes/late").contains("mode=750"));
    assert!(get("shapes/gone").contains("mode=700") && got.contains_key("shapes/gone/new") && !got.contains_key("shapes/gone/old"));
    assert!(get("shapes/hl").contains(&sha256_hex(b"lower content")) && !got.contains_key("shapes/lower"));
    assert!(get("shapes/a/b/link").contains("../../../../etc/passwd"), "symlink target kept verbatim");
    assert!(get(&long_path()).starts_with("file"));
    assert!(get("shapes/caf\u{fffd}").starts_with("file"), "non-UTF-8 name (shown lossily) kept");
}

#[test]
fn legal_shapes_squash_and_slim_run_like_the_original() {
    let Some((t, orig, twin)) = fixture(&["umoci", "runc"]) else { return };
    let sq = t.path().join("sq");
    let slim = t.path().join("slim");
    run_ok(imgslim().arg("squash").arg(&orig).arg("-o").arg(&sq));
    run_ok(imgslim().arg("slim").arg(&orig).arg("-o").arg(&slim).args(["--keep", "/shapes/**"]));
    let cmd = ["/bin/sh", "/shapes/run.sh"];
    let (c0, o0) = runc_run(&twin, &t.path().join("r0"), &cmd);
    assert_eq!(c0, 0, "original: {o0}");
    assert_expected_answers(&o0);
    for (img, name) in [(&sq, "squashed"), (&slim, "slimmed")] {
        let (c, o) = runc_run(img, &t.path().join(format!("r-{name}")), &cmd);
        assert_eq!((c, &o), (c0, &o0), "{name} image answers differently");
    }
    // The slimmed image kept the symlink's target, resolved inside the image.
    let root = umoci_unpack(&slim, &t.path().join("bs"));
    assert!(root.join("opt/only-via-link").is_file(), "target of the kept symlink (resolved inside the image) kept");
}
