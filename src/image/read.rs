//! Resolve an input to one image: index.json (nested indexes, platforms, attestations) or
//! docker's manifest.json (legacy and Docker 25+), verifying every document's digest.
use super::source::{Store, TarIndex};
use super::transport::{ImageName, Transport};
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
    /// The `:REF` of the name: which image of a layout or archive holding several.
    pub reference: Option<String>,
    pub platform: Platform,
    /// Whether the user chose the platform (then a single-platform image must match it).
    pub platform_explicit: bool,
}

/// Open an image named as skopeo names it. `work` is the work area: stdin and compressed
/// archives are spooled there as plain tars.
pub fn open(name: &ImageName, opts: &OpenOptions, work: &Path) -> Result<Image> {
    if name.transport == Transport::Docker {
        return Err(Error::Usage(format!("docker://{}: reading from a registry is not supported in this build", name.path)));
    }
    let (store, is_dir) = source(name, work)?;
    let input = name.path.as_str();
    let has_index = store.exists("index.json");
    let has_manifest = store.exists("manifest.json");
    let not_kind = |what: &str| Err(Error::input(input, format!("not {what}")));
    match name.transport {
        _ if is_dir && !has_index => return not_kind("an OCI image layout (no index.json)"),
        Transport::DockerArchive if !has_manifest => return not_kind("a docker-archive (no manifest.json)"),
        Transport::OciArchive if !has_index => return not_kind("an oci-archive (no index.json)"),
        _ => {}
    }
    if has_index && name.transport != Transport::DockerArchive {
        if let Some(v) = store.exists("oci-layout").then(|| store.read_small("oci-layout", 4096)).transpose()? {
            check_layout_version(&store, &v)?;
        }
        let kind = if is_dir {
            SourceKind::OciLayout
        } else if has_manifest && name.transport != Transport::OciArchive {
            SourceKind::DockerArchive
        } else {
            SourceKind::OciArchive
        };
        match open_oci(&store, kind, opts, input) {
            Ok(img) => return Ok(img),
            // Docker's manifest.json names one runnable image even when the index points at
            // blobs that were not exported; fall back to it rather than fail.
            Err(Pick::Broken(e)) if has_manifest && kind == SourceKind::DockerArchive => {
                return open_docker(&store, opts, input).map_err(|_| e);
            }
            Err(Pick::Broken(e) | Pick::NoMatch(e)) => return Err(e),
        }
    }
    if has_manifest {
        return open_docker(&store, opts, input);
    }
    Err(Error::input(input, "neither an OCI layout/archive (index.json) nor a docker save archive (manifest.json)"))
}

/// Where the image's files are: a layout directory, or a tar (stdin and compressed archives
/// decompressed into the work area first, as `docker load` does).
fn source(name: &ImageName, work: &Path) -> Result<(Store, bool)> {
    if name.path == "-" {
        let stdin = std::io::stdin().lock();
        let spooled = spool_tar(std::io::BufReader::with_capacity(1 << 20, stdin), "stdin", &work.join("stdin.tar"))?;
        return Ok((Store::Tar(TarIndex::open_as(&spooled, "stdin")?.into()), false));
    }
    let p = Path::new(&name.path);
    let md = std::fs::metadata(p).at(p)?;
    if md.is_dir() {
        if matches!(name.transport, Transport::OciArchive | Transport::DockerArchive) {
            return Err(Error::input(&name.path, "is a directory; oci-archive: and docker-archive: name a tar file (use oci: for a layout)"));
        }
        return Ok((Store::Dir(p.to_path_buf()), true));
    }
    if name.transport == Transport::Oci {
        return Err(Error::input(&name.path, "is a file; oci: names a layout directory (use oci-archive: or docker-archive: for a tar)"));
    }
    let mut f = std::io::BufReader::new(std::fs::File::open(p).at(p)?);
    if compression_of(&mut f).at(p)?.is_none() {
        return Ok((Store::Tar(TarIndex::open(p)?.into()), false));
    }
    let spooled = spool_tar(f, &name.path, &work.join("input.tar"))?;
    Ok((Store::Tar(TarIndex::open_as(&spooled, &name.path)?.into()), false))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packed {
    Gzip,
    Zstd,
}

/// Sniff the magic bytes without consuming them.
fn compression_of(r: &mut impl std::io::BufRead) -> std::io::Result<Option<Packed>> {
    let head = r.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Some(Packed::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Packed::Zstd)
    } else {
        None
    })
}

/// Copy a (possibly compressed) tar stream to `to` as a plain tar.
fn spool_tar(mut r: impl std::io::BufRead, what: &str, to: &Path) -> Result<std::path::PathBuf> {
    let mut f = crate::fs::space::SpaceSink::new(std::fs::File::create(to).at(to)?);
    let bad = |e: std::io::Error| -> Error {
        if e.raw_os_error().is_some() {
            Error::io(to, e)
        } else {
            Error::input(what, format!("reading the archive: {e}"))
        }
    };
    match compression_of(&mut r).map_err(|e| Error::input(what, e.to_string()))? {
        Some(Packed::Gzip) => std::io::copy(&mut flate2::bufread::MultiGzDecoder::new(r), &mut f),
        Some(Packed::Zstd) => zstd::stream::read::Decoder::with_buffer(r).and_then(|mut d| std::io::copy(&mut d, &mut f)),
        None => std::io::copy(&mut r, &mut f),
    }
    .map_err(bad)?;
    if let Some(need) = f.needed() {
        return Err(Error::Full { path: to.to_path_buf(), need });
    }
    Ok(to.to_path_buf())
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

fn collect(store: &Store, manifests: &[Descriptor], depth: usize, out: &mut Vec<Candidate>) -> Result<()> {
    for desc in manifests {
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
            collect(store, nested.manifests(), depth + 1, out)?;
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

/// The names a top-level index entry is known by.
fn refs_of(d: &Descriptor) -> Vec<String> {
    let ann = d.annotations().clone().unwrap_or_default();
    ["org.opencontainers.image.ref.name", "io.containerd.image.name"].iter().filter_map(|k| ann.get(*k).cloned()).collect()
}

/// The transport prefix a user would write for this kind of input.
fn transport_word(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::OciLayout => "oci",
        SourceKind::OciArchive => "oci-archive",
        SourceKind::DockerArchive => "docker-archive",
    }
}

/// The top-level entries to choose from: those named `want`, or all of them when they are
/// one image (one name, or platforms of one). Several named images need `:REF`; never the
/// first one silently.
fn select_ref(store: &Store, index: &ImageIndex, want: Option<&str>, hint: &str) -> Result<Vec<Descriptor>, Pick> {
    let all = index.manifests();
    let mut names: Vec<String> = Vec::new();
    for d in all {
        if let Some(r) = d.annotations().as_ref().and_then(|a| a.get("org.opencontainers.image.ref.name")) {
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
    }
    let listing = names.join(", ");
    match want {
        Some(r) => {
            let chosen: Vec<Descriptor> = all.iter().filter(|d| refs_of(d).iter().any(|x| x == r)).cloned().collect();
            if chosen.is_empty() {
                return Err(Pick::NoMatch(Error::input(store.describe("index.json"), format!("no image named '{r}'; it has: {listing}"))));
            }
            Ok(chosen)
        }
        None => {
            let digests: std::collections::BTreeSet<String> =
                all.iter().filter(|d| !refs_of(d).is_empty()).map(|d| d.digest().to_string()).collect();
            if names.len() > 1 && digests.len() > 1 {
                return Err(Pick::NoMatch(Error::input(
                    store.describe("index.json"),
                    format!("holds several images ({listing}); name one, e.g. {hint}:{}", names[0]),
                )));
            }
            Ok(all.clone())
        }
    }
}

fn open_oci(store: &Store, kind: SourceKind, opts: &OpenOptions, input: &str) -> Result<Image, Pick> {
    let idx_bytes = store.read_small("index.json", JSON_LIMIT)?;
    let index: ImageIndex = serde_json::from_slice(&idx_bytes)
        .map_err(|e| Error::input(store.describe("index.json"), format!("malformed image index: {e}")))?;
    let hint = format!("{}:{input}", transport_word(kind));
    let top = select_ref(store, &index, opts.reference.as_deref(), &hint)?;
    let mut cands = Vec::new();
    collect(store, &top, 0, &mut cands)?;
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

/// The manifest.json entry named `want` (a name:tag, or `@N` as skopeo writes an index).
fn pick_docker_entry(store: &Store, mut entries: Vec<DockerManifestEntry>, want: Option<&str>, input: &str) -> Result<DockerManifestEntry> {
    let tags: Vec<String> = entries.iter().enumerate().map(|(i, e)| format!("@{i} {}", e.repo_tags.clone().unwrap_or_default().join(" "))).collect();
    let i = match want {
        Some(w) => {
            let by_index = w.strip_prefix('@').and_then(|n| n.parse::<usize>().ok()).filter(|n| *n < entries.len());
            by_index.or_else(|| entries.iter().position(|e| e.repo_tags.as_ref().is_some_and(|t| t.iter().any(|t| t == w)))).ok_or_else(|| {
                Error::input(store.describe("manifest.json"), format!("no image named '{w}'; it has: {}", tags.join(", ")))
            })?
        }
        None if entries.len() == 1 => 0,
        None => {
            return Err(Error::input(
                store.describe("manifest.json"),
                format!("holds {} images ({}); name one, e.g. docker-archive:{input}:@0", entries.len(), tags.join(", ")),
            ))
        }
    };
    Ok(entries.swap_remove(i))
}

fn open_docker(store: &Store, opts: &OpenOptions, input: &str) -> Result<Image> {
    let e = pick_docker_entry(store, docker_manifest(store)?, opts.reference.as_deref(), input)?;
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
