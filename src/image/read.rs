//! Resolve an input to one image: index.json (nested indexes, platforms, attestations) or
//! docker's manifest.json (legacy and Docker 25+), verifying every document's digest.
use super::source::{Store, TarIndex};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde_json::Value;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(Platform { os: os.to_string(), arch: arch.to_string(), variant: Some(v.to_string()) })
            }
            _ => Err(Error::Usage(format!("--platform '{s}': expected os/arch[/variant], e.g. linux/amd64"))),
        }
    }
    fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        self.os == os && self.arch == arch && (self.variant.is_none() || self.variant.as_deref() == variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    OciLayout,
    OciArchive,
    DockerArchive,
}

#[derive(Clone, Debug)]
pub struct LayerBlob {
    /// Member path inside the layout/archive.
    pub name: String,
    /// Blob digest when the format records one (legacy docker save does not).
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    pub media_type: String,
    pub diff_id: Digest,
}

impl LayerBlob {
    pub fn describe(&self) -> String {
        match &self.digest {
            Some(d) => format!("layer blob {d}"),
            None => format!("layer {} (diff_id {})", self.name, self.diff_id),
        }
    }
}

pub struct Image {
    pub store: Store,
    pub kind: SourceKind,
    /// The config as JSON, patched (never round-tripped through typed structs, which drop
    /// Docker's Healthcheck/OnBuild/Shell).
    pub config: Value,
    pub config_digest: Digest,
    pub manifest_digest: Option<Digest>,
    pub layers: Vec<LayerBlob>,
    /// org.opencontainers.image.ref.name of the chosen manifest, if any.
    pub ref_name: Option<String>,
    /// name:tag references (docker RepoTags, or io.containerd.image.name).
    pub repo_tags: Vec<String>,
}

const JSON_LIMIT: u64 = 64 << 20;

pub struct OpenOptions {
    pub platform: Platform,
    /// Whether the user chose the platform (then a single-platform image must match it).
    pub platform_explicit: bool,
}

/// Open `input` (a path or `-` for a tar on stdin). `work` is the work area for spooling stdin.
pub fn open(input: &str, opts: &OpenOptions, work: &Path) -> Result<Image> {
    let (store, is_dir) = if input == "-" {
        let spooled = work.join("stdin.tar");
        let mut f = std::fs::File::create(&spooled).at(&spooled)?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f).map_err(|e| Error::input("stdin", e.to_string()))?;
        (Store::Tar(TarIndex::open(&spooled)?.into()), false)
    } else {
        let p = Path::new(input);
        let md = std::fs::metadata(p).at(p)?;
        if md.is_dir() {
            (Store::Dir(p.to_path_buf()), true)
        } else {
            (Store::Tar(TarIndex::open(p)?.into()), false)
        }
    };
    let has_index = store.exists("index.json");
    let has_manifest = store.exists("manifest.json");
    if is_dir && !has_index {
        return Err(Error::input(input, "not an OCI image layout (no index.json)"));
    }
    if has_index {
        if let Some(v) = store.exists("oci-layout").then(|| store.read_small("oci-layout", 4096)).transpose()? {
            check_layout_version(&store, &v)?;
        }
        let kind = if is_dir {
            SourceKind::OciLayout
        } else if has_manifest {
            SourceKind::DockerArchive
        } else {
            SourceKind::OciArchive
        };
        match open_oci(&store, kind, opts) {
            Ok(img) => return Ok(img),
            // Docker's manifest.json names one runnable image even when the index points at
            // blobs that were not exported; fall back to it rather than fail.
            Err(Pick::Broken(e)) if has_manifest => {
                return open_docker(&store, opts).map_err(|_| e);
            }
            Err(Pick::Broken(e) | Pick::NoMatch(e)) => return Err(e),
        }
    }
    if has_manifest {
        return open_docker(&store, opts);
    }
    Err(Error::input(input, "neither an OCI layout/archive (index.json) nor a docker save archive (manifest.json)"))
}

fn check_layout_version(store: &Store, bytes: &[u8]) -> Result<()> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| Error::input(store.describe("oci-layout"), format!("invalid JSON: {e}")))?;
    match v.get("imageLayoutVersion").and_then(Value::as_str) {
        Some(s) if s.starts_with("1.") => Ok(()),
        other => Err(Error::input(store.describe("oci-layout"), format!("unsupported imageLayoutVersion {other:?}"))),
    }
}

/// Read a blob named by a descriptor, checking its size and digest.
fn read_verified(store: &Store, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
    let d = Digest::parse(desc.digest().as_ref())
        .ok_or_else(|| Error::input(what, format!("unsupported or malformed digest '{}'", desc.digest())))?;
    let name = d.blob_path();
    if !store.exists(&name) {
        return Err(Error::input(format!("{what} {d}"), format!("blob missing ({})", store.describe(&name))));
    }
    let bytes = store.read_small(&name, JSON_LIMIT)?;
    if bytes.len() as u64 != desc.size() {
        return Err(Error::input(
            format!("{what} {d}"),
            format!("size mismatch: descriptor says {} bytes, blob has {} (truncated?)", desc.size(), bytes.len()),
        ));
    }
    let got = Digest::of_bytes(&bytes);
    if got != d {
        return Err(Error::input(format!("{what} {d}"), format!("digest mismatch: content hashes to {got}")));
    }
    Ok(bytes)
}

struct Candidate {
    desc: Descriptor,
    platform: Option<(String, String, Option<String>)>,
    present: bool,
}

fn is_index_type(mt: &str) -> bool {
    mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

fn is_manifest_type(mt: &str) -> bool {
    mt == "application/vnd.oci.image.manifest.v1+json" || mt == "application/vnd.docker.distribution.manifest.v2+json"
}

fn collect(store: &Store, index: &ImageIndex, depth: usize, out: &mut Vec<Candidate>) -> Result<()> {
    for desc in index.manifests() {
        let mt = desc.media_type().to_string();
        let ann = desc.annotations().clone().unwrap_or_default();
        if ann.get("vnd.docker.reference.type").map(String::as_str) == Some("attestation-manifest") {
            continue;
        }
        let platform = desc
            .platform()
            .as_ref()
            .map(|p| (p.os().to_string(), p.architecture().to_string(), p.variant().clone()));
        if matches!(&platform, Some((os, arch, _)) if os == "unknown" && arch == "unknown") {
            continue;
        }
        let present = Digest::parse(desc.digest().as_ref()).map(|d| store.exists(&d.blob_path())).unwrap_or(false);
        if is_index_type(&mt) {
            if depth >= 4 {
                return Err(Error::input("index.json", "image indexes nested too deeply"));
            }
            if !present {
                continue;
            }
            let bytes = read_verified(store, desc, "image index")?;
            let nested: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| Error::input(format!("image index {}", desc.digest()), format!("malformed: {e}")))?;
            collect(store, &nested, depth + 1, out)?;
        } else if is_manifest_type(&mt) {
            out.push(Candidate { desc: desc.clone(), platform, present });
        }
        // Unknown media types (artifacts, signatures) must not cause an error.
    }
    Ok(())
}

/// Why the index gave no image: nothing matches what the user asked for (final), or a
/// document is broken (docker's manifest.json may still name the image).
enum Pick {
    NoMatch(Error),
    Broken(Error),
}

impl From<Error> for Pick {
    fn from(e: Error) -> Pick {
        Pick::Broken(e)
    }
}

fn open_oci(store: &Store, kind: SourceKind, opts: &OpenOptions) -> Result<Image, Pick> {
    let idx_bytes = store.read_small("index.json", JSON_LIMIT)?;
    let index: ImageIndex = serde_json::from_slice(&idx_bytes)
        .map_err(|e| Error::input(store.describe("index.json"), format!("malformed image index: {e}")))?;
    let mut cands = Vec::new();
    collect(store, &index, 0, &mut cands)?;
    let listing = |c: &[Candidate]| {
        c.iter()
            .map(|c| match &c.platform {
                Some((os, arch, v)) => format!("{os}/{arch}{}{}", v.as_deref().map(|v| format!("/{v}")).unwrap_or_default(), if c.present { "" } else { " (blobs not present)" }),
                None => format!("{} (no platform)", c.desc.digest()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if cands.is_empty() {
        return Err(Error::input(store.describe("index.json"), "lists no image manifest").into());
    }
    let p = &opts.platform;
    let chosen = if cands.len() == 1 && cands[0].platform.is_none() {
        0
    } else {
        let matching: Vec<usize> = (0..cands.len())
            .filter(|i| match &cands[*i].platform {
                Some((os, arch, v)) => p.matches(os, arch, v.as_deref()),
                None => false,
            })
            .collect();
        match matching.iter().copied().find(|i| cands[*i].present) {
            Some(i) => i,
            None => {
                return Err(Pick::NoMatch(Error::input(
                    store.describe("index.json"),
                    format!("no image for platform {p}; it has: {} (choose one with --platform os/arch[/variant])", listing(&cands)),
                )))
            }
        }
    };
    let cand = &cands[chosen];
    let man_bytes = read_verified(store, &cand.desc, "manifest")?;
    let manifest: ImageManifest = serde_json::from_slice(&man_bytes)
        .map_err(|e| Error::input(format!("manifest {}", cand.desc.digest()), format!("malformed: {e}")))?;
    let cfg_bytes = read_verified(store, manifest.config(), "config")?;
    let config: Value = serde_json::from_slice(&cfg_bytes)
        .map_err(|e| Error::input(format!("config {}", manifest.config().digest()), format!("malformed JSON: {e}")))?;
    let config_digest = Digest::of_bytes(&cfg_bytes);
    check_config_platform(&config, opts, &config_digest.to_string()).map_err(Pick::NoMatch)?;
    let diff_ids = diff_ids(&config, &config_digest.to_string())?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::input(
            format!("manifest {}", cand.desc.digest()),
            format!("{} layers but the config lists {} diff_ids", manifest.layers().len(), diff_ids.len()),
        )
        .into());
    }
    let mut layers = Vec::new();
    for (l, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let d = Digest::parse(l.digest().as_ref())
            .ok_or_else(|| Error::input(format!("manifest {}", cand.desc.digest()), format!("layer digest '{}' unsupported", l.digest())))?;
        layers.push(LayerBlob { name: d.blob_path(), digest: Some(d), size: Some(l.size()), media_type: l.media_type().to_string(), diff_id });
    }
    let ann = cand.desc.annotations().clone().unwrap_or_default();
    let mut repo_tags = Vec::new();
    if let Some(n) = ann.get("io.containerd.image.name") {
        repo_tags.push(n.clone());
    }
    if kind == SourceKind::DockerArchive {
        if let Ok(entries) = docker_manifest(store) {
            for e in entries {
                for t in e.repo_tags.unwrap_or_default() {
                    if !repo_tags.contains(&t) {
                        repo_tags.push(t);
                    }
                }
            }
        }
    }
    Ok(Image {
        store: store.clone(),
        kind,
        config,
        config_digest,
        manifest_digest: Digest::parse(cand.desc.digest().as_ref()),
        layers,
        ref_name: ann.get("org.opencontainers.image.ref.name").cloned(),
        repo_tags,
    })
}

fn check_config_platform(config: &Value, opts: &OpenOptions, what: &str) -> Result<()> {
    if !opts.platform_explicit {
        return Ok(());
    }
    let os = config.get("os").and_then(Value::as_str).unwrap_or("");
    let arch = config.get("architecture").and_then(Value::as_str).unwrap_or("");
    let variant = config.get("variant").and_then(Value::as_str);
    if opts.platform.matches(os, arch, variant) {
        Ok(())
    } else {
        Err(Error::input(
            format!("config {what}"),
            format!("no image for platform {} in the input: it has {os}/{arch}{}", opts.platform, variant.map(|v| format!("/{v}")).unwrap_or_default()),
        ))
    }
}

fn diff_ids(config: &Value, what: &str) -> Result<Vec<Digest>> {
    let arr = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::input(format!("config {what}"), "no rootfs.diff_ids"))?;
    arr.iter()
        .map(|v| {
            v.as_str()
                .and_then(Digest::parse)
                .ok_or_else(|| Error::input(format!("config {what}"), format!("malformed diff_id {v}")))
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn docker_manifest(store: &Store) -> Result<Vec<DockerManifestEntry>> {
    let bytes = store.read_small("manifest.json", JSON_LIMIT)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::input(store.describe("manifest.json"), format!("malformed: {e}")))
}

/// The digest a docker-save member name implies: `blobs/sha256/<hex>` or `<hex>.json`.
fn implied_digest(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    if name.starts_with("blobs/sha256/") || name.ends_with(".json") {
        Digest::parse(&format!("sha256:{hex}"))
    } else {
        None
    }
}

fn open_docker(store: &Store, opts: &OpenOptions) -> Result<Image> {
    let mut entries = docker_manifest(store)?;
    if entries.len() != 1 {
        let tags: Vec<String> = entries.iter().map(|e| e.repo_tags.clone().unwrap_or_default().join(" ")).collect();
        return Err(Error::input(
            store.describe("manifest.json"),
            format!("holds {} images ({}); imgslim reads archives of exactly one image", entries.len(), tags.join(", ")),
        ));
    }
    let e = entries.remove(0);
    let cfg_bytes = store.read_small(&e.config, JSON_LIMIT)?;
    let config_digest = Digest::of_bytes(&cfg_bytes);
    if let Some(want) = implied_digest(&e.config) {
        if want != config_digest {
            return Err(Error::input(store.describe(&e.config), format!("digest mismatch: content hashes to {config_digest}")));
        }
    }
    let config: Value = serde_json::from_slice(&cfg_bytes)
        .map_err(|err| Error::input(store.describe(&e.config), format!("malformed JSON: {err}")))?;
    check_config_platform(&config, opts, &config_digest.to_string())?;
    let diff_ids = diff_ids(&config, &config_digest.to_string())?;
    if diff_ids.len() != e.layers.len() {
        return Err(Error::input(
            store.describe("manifest.json"),
            format!("{} layers but the config lists {} diff_ids", e.layers.len(), diff_ids.len()),
        ));
    }
    let layers = e
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(name, diff_id)| LayerBlob {
            name: name.clone(),
            digest: implied_digest(name),
            size: None,
            media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
            diff_id,
        })
        .collect();
    Ok(Image {
        store: store.clone(),
        kind: SourceKind::DockerArchive,
        config,
        config_digest,
        manifest_digest: None,
        layers,
        ref_name: None,
        repo_tags: e.repo_tags.unwrap_or_default(),
    })
}
