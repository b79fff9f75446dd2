//! Write images: one merged layer built from a tree, then an OCI layout, an OCI archive or a
//! docker-archive (OCI layout + manifest.json, like Docker ≥ 25). The caller gives fresh
//! paths in its staging area (cli::outputs puts them in place), so a failure leaves nothing.
use super::compress::{Compression, Encoder};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::fs::space::{EarlyWriteback, SpaceSink};
use crate::fs::{ContentStore, Tree};
use crate::layer::{write_tree, WriteOptions, WriteStats};
use oci_spec::image::{DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, PlatformBuilder};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use tempfile::NamedTempFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    DockerArchive,
    Oci,
    OciArchive,
}

/// A finished layer blob in a temp file next to the output.
pub struct LayerOut {
    pub file: NamedTempFile,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub uncompressed_size: u64,
    pub media_type: &'static str,
    pub stats: WriteStats,
}

pub struct OutputImage {
    pub config: Value,
    pub layers: Vec<LayerOut>,
    /// Tag recorded as org.opencontainers.image.ref.name in index.json.
    pub ref_name: String,
    /// name:tag references for docker-archive's manifest.json.
    pub repo_tags: Vec<String>,
}

/// Serialise a tree as a layer blob: tar → diff_id hash → compressor → blob hash → file.
/// The blob is a temp file in `dir`, on the output's filesystem.
pub fn build_layer(tree: &Tree, store: &ContentStore, c: Compression, dir: &Path, wopts: &WriteOptions) -> Result<LayerOut> {
    let tmp = tempfile::Builder::new().prefix(".imgslim-layer-").tempfile_in(dir).at(dir)?;
    let file = tmp.reopen().at(tmp.path())?;
    let werr = |e: std::io::Error| Error::io(tmp.path(), e);
    let blob_w = HashingWriter::new(BufWriter::with_capacity(1 << 20, SpaceSink::new(EarlyWriteback::new(file))));
    let enc = Encoder::new(c, blob_w).map_err(werr)?;
    let tar_w = HashingWriter::new(enc);
    let (tar_w, stats) = write_tree(tree, store, tar_w, wopts)?;
    let (enc, diff_id, uncompressed_size) = tar_w.finish();
    let blob_w = enc.finish().map_err(werr)?;
    let (buf, digest, size) = blob_w.finish();
    let sink = buf.into_inner().map_err(|e| werr(e.into_error()))?;
    if let Some(need) = sink.needed() {
        return Err(Error::Full { path: dir.to_path_buf(), need });
    }
    let f = sink.into_inner().into_inner();
    f.sync_all().map_err(werr)?;
    Ok(LayerOut { file: tmp, digest, size, diff_id, uncompressed_size, media_type: c.oci_media_type(), stats })
}

fn to_json_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    // Through serde_json::Value, whose maps are ordered: oci-spec's HashMaps are not.
    let v = serde_json::to_value(v).map_err(|e| Error::Other(format!("serialising JSON: {e}")))?;
    serde_json::to_vec(&v).map_err(|e| Error::Other(format!("serialising JSON: {e}")))
}

fn oci_err(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("building OCI document: {e}"))
}

struct Docs {
    /// (layout-relative path, bytes) of every small file, blobs included.
    files: Vec<(String, Vec<u8>)>,
    layer_paths: Vec<String>,
    manifest_digest: Digest,
}

fn build_docs(img: &OutputImage, format: Format) -> Result<Docs> {
    let config_bytes = serde_json::to_vec(&img.config).map_err(|e| Error::Other(format!("serialising config: {e}")))?;
    let config_digest = Digest::of_bytes(&config_bytes);
    let config_desc = DescriptorBuilder::default()
        .media_type(MediaType::ImageConfig)
        .digest(oci_digest(&config_digest)?)
        .size(config_bytes.len() as u64)
        .build()
        .map_err(oci_err)?;
    let mut layer_descs = Vec::new();
    for l in &img.layers {
        layer_descs.push(
            DescriptorBuilder::default()
                .media_type(MediaType::Other(l.media_type.to_string()))
                .digest(oci_digest(&l.digest)?)
                .size(l.size)
                .build()
                .map_err(oci_err)?,
        );
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc)
        .layers(layer_descs)
        .build()
        .map_err(oci_err)?;
    let manifest_bytes = to_json_bytes(&manifest)?;
    let manifest_digest = Digest::of_bytes(&manifest_bytes);
    let os = img.config.get("os").and_then(Value::as_str).unwrap_or("linux");
    let arch = img.config.get("architecture").and_then(Value::as_str).unwrap_or("amd64");
    let mut pb = PlatformBuilder::default();
    pb = pb.os(os).architecture(arch);
    if let Some(v) = img.config.get("variant").and_then(Value::as_str) {
        pb = pb.variant(v.to_string());
    }
    let platform = pb.build().map_err(oci_err)?;
    let mut ann = HashMap::new();
    ann.insert("org.opencontainers.image.ref.name".to_string(), img.ref_name.clone());
    if let Some(t) = img.repo_tags.first() {
        ann.insert("io.containerd.image.name".to_string(), t.clone());
    }
    let mdesc = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(oci_digest(&manifest_digest)?)
        .size(manifest_bytes.len() as u64)
        .platform(platform)
        .annotations(ann)
        .build()
        .map_err(oci_err)?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![mdesc])
        .build()
        .map_err(oci_err)?;
    let mut files = vec![
        ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json".to_string(), to_json_bytes(&index)?),
        (config_digest.blob_path(), config_bytes),
        (manifest_digest.blob_path(), manifest_bytes),
    ];
    let layer_paths: Vec<String> = img.layers.iter().map(|l| l.digest.blob_path()).collect();
    if format == Format::DockerArchive {
        let m = json!([{ "Config": config_digest.blob_path(), "RepoTags": img.repo_tags, "Layers": layer_paths }]);
        files.push(("manifest.json".to_string(), serde_json::to_vec(&m).map_err(|e| Error::Other(e.to_string()))?));
    }
    Ok(Docs { files, layer_paths, manifest_digest })
}

fn oci_digest(d: &Digest) -> Result<oci_spec::image::Digest> {
    d.as_str().parse().map_err(oci_err)
}

/// Write `img` at `out` (a path that does not exist yet) in `format`; returns the manifest
/// digest.
pub fn write_image(img: OutputImage, format: Format, out: &Path) -> Result<Digest> {
    let docs = build_docs(&img, format)?;
    match format {
        Format::Oci => write_layout(img, &docs, out)?,
        Format::OciArchive | Format::DockerArchive => write_archive(&img, &docs, out)?,
    }
    Ok(docs.manifest_digest)
}

fn write_layout(img: OutputImage, docs: &Docs, root: &Path) -> Result<()> {
    std::fs::create_dir_all(root.join("blobs/sha256")).at(root)?;
    for (name, bytes) in &docs.files {
        let p = root.join(name);
        std::fs::write(&p, bytes).at(&p)?;
    }
    for (l, name) in img.layers.into_iter().zip(&docs.layer_paths) {
        let p = root.join(name);
        l.file.persist(&p).map_err(|e| Error::io(&p, e.error))?;
        set_mode(&p, 0o644)?;
    }
    for d in [root.join("blobs/sha256"), root.join("blobs"), root.to_path_buf()] {
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).at(&d)?;
    }
    Ok(())
}

fn write_archive(img: &OutputImage, docs: &Docs, out: &Path) -> Result<()> {
    let f = std::fs::File::create(out).at(out)?;
    let werr = |e: std::io::Error| Error::io(out, e);
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, SpaceSink::new(EarlyWriteback::new(f))));
    // Members in byte order of their names, fixed metadata: byte-identical archives.
    let mut members: Vec<(String, Member)> = docs.files.iter().map(|(n, b)| (n.clone(), Member::Bytes(b))).collect();
    for (l, name) in img.layers.iter().zip(&docs.layer_paths) {
        members.push((name.clone(), Member::File(l.file.path(), l.size)));
    }
    members.push(("blobs/".into(), Member::Dir));
    members.push(("blobs/sha256/".into(), Member::Dir));
    members.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, m) in members {
        append_member(&mut b, &name, m).map_err(werr)?;
    }
    let w = b.into_inner().map_err(werr)?;
    let sink = w.into_inner().map_err(|e| werr(e.into_error()))?;
    if let Some(need) = sink.needed() {
        // The layer blobs sit on the same filesystem until the archive holds them.
        let layers: u64 = img.layers.iter().map(|l| l.size).sum();
        return Err(Error::Full { path: out.to_path_buf(), need: need + layers });
    }
    let f = sink.into_inner().into_inner();
    f.sync_all().map_err(werr)?;
    set_mode(out, 0o644)
}

fn append_member<W: Write>(b: &mut tar::Builder<W>, name: &str, m: Member) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    let (kind, mode, size) = match m {
        Member::Dir => (tar::EntryType::Directory, 0o755, 0),
        Member::Bytes(bytes) => (tar::EntryType::Regular, 0o644, bytes.len() as u64),
        Member::File(_, size) => (tar::EntryType::Regular, 0o644, size),
    };
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_path(name)?;
    h.set_cksum();
    match m {
        Member::Dir => b.append(&h, std::io::empty()),
        Member::Bytes(bytes) => b.append(&h, bytes),
        Member::File(p, _) => b.append(&h, std::fs::File::open(p)?),
    }
}

enum Member<'a> {
    Dir,
    Bytes(&'a [u8]),
    File(&'a Path, u64),
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).at(p)
}
