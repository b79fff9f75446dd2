//! Shared helpers for the integration tests: building images from hand-made layers, the
//! independent oracles (umoci, skopeo, runc), and tree manifests to compare.
#![allow(dead_code)]
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn imgslim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imgslim"))
}

/// True when the tool is on PATH. Under CI=true a missing tool fails the test instead of
/// skipping it: CI installs every tool the tests need.
pub fn have_tool(name: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().map(|o| o.status.success()).unwrap_or(false);
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("required tool '{name}' is missing (CI=true: tests must not skip)");
    }
    if !found {
        eprintln!("SKIP: '{name}' not installed");
    }
    found
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    out
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn shared_images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/images")
}

/// A layer entry for hand-made layers.
pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    /// path, mode, uid, gid, mtime, content
    FileFull(&'a str, u32, u64, u64, u64, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Block(&'a str, u32, u32),
    Fifo(&'a str),
    /// A file with PAX records (path/linkpath/xattrs/mtime) written before it.
    Pax(&'a str, Vec<(&'a str, Vec<u8>)>, u32, &'a [u8]),
    /// A raw name, written without any normalisation (for hostile names).
    Raw(&'a [u8], tar::EntryType, &'a [u8]),
}

/// Build an uncompressed layer tar from entries, in the given order.
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, m, c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_size(c.len() as u64);
                b.append_data(&mut h, p, *c).unwrap();
            }
            E::FileFull(p, m, u, g, t, c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_uid(*u);
                h.set_gid(*g);
                h.set_mtime(*t);
                h.set_size(c.len() as u64);
                b.append_data(&mut h, p, *c).unwrap();
            }
            E::Symlink(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Hardlink(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Char(p, ma, mi) | E::Block(p, ma, mi) => {
                h.set_entry_type(if matches!(e, E::Char(..)) { tar::EntryType::Char } else { tar::EntryType::Block });
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::Pax(p, recs, m, c) => {
                b.append_pax_extensions(recs.iter().map(|(k, v)| (*k, v.as_slice()))).unwrap();
                let mut h = tar::Header::new_ustar();
                h.set_mtime(1_600_000_000);
                h.set_uid(0);
                h.set_gid(0);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_size(c.len() as u64);
                // The real name is in the PAX record; the header holds a short stand-in.
                let short = &p[..p.len().min(99)];
                h.as_old_mut().name[..short.len()].copy_from_slice(short.as_bytes());
                h.set_cksum();
                b.append(&h, *c).unwrap();
            }
            E::Raw(name, t, c) => {
                let mut h = tar::Header::new_old();
                h.set_entry_type(*t);
                h.set_mode(0o644);
                h.set_mtime(1_600_000_000);
                h.set_size(c.len() as u64);
                let n = name.len().min(100);
                h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
                if *t == tar::EntryType::Link || *t == tar::EntryType::Symlink {
                    let l = c.len().min(100);
                    h.as_old_mut().linkname[..l].copy_from_slice(&c[..l]);
                    h.set_size(0);
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                } else {
                    h.set_cksum();
                    b.append(&h, *c).unwrap();
                }
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Write an OCI layout with gzip layers built from uncompressed tars. Returns the layout dir.
pub fn oci_layout(dir: &Path, layers: &[Vec<u8>], runtime: Value) -> PathBuf {
    let history: Vec<Value> = layers.iter().map(|_| json!({"created":"2024-01-01T00:00:00Z","created_by":"test layer"})).collect();
    oci_layout_with_history(dir, layers, runtime, history)
}

/// `oci_layout` with the config's history given (as many non-empty entries as layers).
pub fn oci_layout_with_history(dir: &Path, layers: &[Vec<u8>], runtime: Value, history: Vec<Value>) -> PathBuf {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| -> (String, u64) {
        let h = sha256_hex(bytes);
        std::fs::write(dir.join("blobs/sha256").join(&h), bytes).unwrap();
        (format!("sha256:{h}"), bytes.len() as u64)
    };
    let mut descs = vec![];
    let mut diff_ids = vec![];
    for l in layers {
        diff_ids.push(format!("sha256:{}", sha256_hex(l)));
        let (d, s) = put(&gzip(l));
        descs.push(json!({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":d,"size":s}));
    }
    let config = json!({"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":runtime,
        "rootfs":{"type":"layers","diff_ids":diff_ids},"history":history});
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":cs},"layers":descs});
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    write_index(dir, &md, ms)
}

/// index.json (one amd64 manifest tagged `latest`) and oci-layout; returns the layout dir.
pub fn write_index(dir: &Path, manifest_digest: &str, manifest_size: u64) -> PathBuf {
    let index = json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
        "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":manifest_digest,"size":manifest_size,
        "platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"latest"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir.to_path_buf()
}

/// The tag umoci needs to address the (single) manifest of a layout.
pub fn ref_name(layout: &Path) -> String {
    let idx: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or("latest").to_string()
}

/// `umoci unpack` a layout into `bundle`; returns the rootfs path.
pub fn umoci_unpack(layout: &Path, bundle: &Path) -> PathBuf {
    let image = format!("{}:{}", layout.display(), ref_name(layout));
    run_ok(Command::new("umoci").args(["unpack", "--image", &image]).arg(bundle));
    bundle.join("rootfs")
}

/// An umoci-unpacked tree as path -> comparable line (hardlink counts dropped: removing one
/// name of a hardlink group is not a change of the others).
pub fn umoci_listing(layout: &Path, work: &Path) -> BTreeMap<String, String> {
    let root = umoci_unpack(layout, work);
    tree_manifest(&root, false)
        .into_iter()
        .map(|(p, v)| (format!("/{p}"), v.split(" nlink=").next().unwrap().to_string()))
        .collect()
}

/// One line per path: type, mode, uid, gid, size, link target, content hash (and mtime for
/// non-directories). The comparison key for "exactly the same tree".
pub fn tree_manifest(root: &Path, with_mtime: bool) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let ft = md.file_type();
        let (t, extra) = if ft.is_dir() {
            ("dir", String::new())
        } else if ft.is_symlink() {
            ("symlink", std::fs::read_link(e.path()).unwrap().display().to_string())
        } else if ft.is_file() {
            let mut f = std::fs::File::open(e.path()).unwrap();
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            ("file", format!("{} nlink={}", hex(&h.finalize()), md.nlink()))
        } else if ft.is_char_device() {
            ("char", format!("{}:{}", libc_major(md.rdev()), libc_minor(md.rdev())))
        } else if ft.is_block_device() {
            ("block", format!("{}:{}", libc_major(md.rdev()), libc_minor(md.rdev())))
        } else if ft.is_fifo() {
            ("fifo", String::new())
        } else {
            ("other", String::new())
        };
        let size = if ft.is_file() { md.len() } else { 0 };
        let mtime = if with_mtime && !ft.is_dir() && !ft.is_symlink() { format!(" mtime={}", md.mtime()) } else { String::new() };
        m.insert(
            rel.display().to_string(),
            format!("{t} mode={:o} uid={} gid={} size={size} {extra}{mtime}", md.mode() & 0o7777, md.uid(), md.gid()),
        );
    }
    m
}

fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)
}
fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)
}

/// Assert two manifests are equal, printing only the differing paths.
pub fn assert_same_tree(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>, what: &str) {
    let mut diffs = vec![];
    for k in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
        if a.get(k) != b.get(k) {
            diffs.push(format!("  {k}\n    expected: {:?}\n    got:      {:?}", a.get(k), b.get(k)));
        }
    }
    assert!(diffs.is_empty(), "{what}: {} path(s) differ:\n{}", diffs.len(), diffs.iter().take(40).cloned().collect::<Vec<_>>().join("\n"));
}

/// Run `args` in the image with runc (umoci-unpacked bundle, config patched for this machine:
/// no rlimits, no cgroup namespace or resources, host network). Returns (exit code, stdout).
pub fn runc_run(layout: &Path, work: &Path, args: &[&str]) -> (i32, String) {
    let bundle = work.join("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    umoci_unpack(layout, &bundle);
    let cfg_path = bundle.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(args);
    if let Some(p) = cfg["process"].as_object_mut() {
        p.remove("rlimits");
    }
    if let Some(l) = cfg["linux"].as_object_mut() {
        l.remove("resources");
        if let Some(ns) = l.get_mut("namespaces").and_then(Value::as_array_mut) {
            ns.retain(|n| n["type"] != "cgroup" && n["type"] != "network");
        }
    }
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let id = format!("imgslim-test-{}-{}", std::process::id(), work.file_name().unwrap().to_string_lossy());
    let out = Command::new("runc").args(["run", "--bundle"]).arg(&bundle).arg(&id).stdin(std::process::Stdio::null()).output().unwrap();
    let _ = Command::new("runc").args(["delete", "-f", &id]).output();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Root-only tests skip elsewhere, and fail under CI when not root.
pub fn must_be_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "these tests run as root under CI");
        eprintln!("SKIP: not root");
    }
    root
}

/// The uncompressed first layer of a single-manifest layout.
pub fn first_layer(layout: &Path) -> Vec<u8> {
    let rd = |d: &str| std::fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let idx: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m: Value = serde_json::from_slice(&rd(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&rd(m["layers"][0]["digest"].as_str().unwrap())[..]).read_to_end(&mut out).unwrap();
    out
}

/// An acceptance image's OCI layout, built (or taken from the cache) by tests/acceptance/build.sh.
pub fn acceptance_image(name: &str) -> Option<PathBuf> {
    if !have_tool("umoci") {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/build.sh");
    let o = run_ok(Command::new(script).arg(name));
    Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("oci"))
}
