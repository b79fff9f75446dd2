//! Pull: the manifest (or index and the chosen platforms' manifests), then every blob not yet
//! cached, each hashed while it streams to a temp file and moved into the cache only if its
//! size and digest match. The result is an OCI layout linking the cached blobs.
use super::cache::{link_or_copy, Cache};
use super::{reg_err, PlatformSel};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::image::Platform;
use crate::report::human;
use futures_util::StreamExt;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];
const MANIFEST_LIMIT: usize = 4 << 20;

struct Puller<'a> {
    client: &'a Client,
    auth: &'a RegistryAuth,
    r: &'a Reference,
    cache: &'a Cache,
    layout: &'a Path,
    downloaded: (usize, u64),
    cached: usize,
}

pub async fn pull(client: &Client, auth: &RegistryAuth, r: &Reference, sel: &PlatformSel, cache: &Cache, layout: &Path) -> Result<()> {
    client.auth(r, auth, RegistryOperation::Pull).await.map_err(|e| reg_err(r, "pulling", e))?;
    let (bytes, _) = client.pull_manifest_raw(r, auth, ACCEPT).await.map_err(|e| reg_err(r, "pulling", e))?;
    let digest = Digest::of_bytes(&bytes);
    if let Some(want) = r.digest() {
        if want != digest.as_str() {
            return Err(Error::input(r.whole(), format!("manifest digest mismatch: content hashes to {digest}")));
        }
    }
    let mut p = Puller { client, auth, r, cache, layout, downloaded: (0, 0), cached: 0 };
    p.keep(&digest, &bytes)?;
    let doc = parse_doc(&bytes, &r.whole())?;
    let mt = media_type(&doc);
    if mt == OCI_INDEX || mt == DOCKER_LIST {
        for child in select(&doc, sel, r)? {
            p.image(&child).await?;
        }
    } else {
        p.blobs(&doc).await?;
    }
    write_layout(layout, &mt, &digest, bytes.len(), r)?;
    eprintln!(
        "pulled {} ({digest}): {} blob(s) downloaded ({}), {} from the cache {}",
        r.whole(),
        p.downloaded.0,
        human(p.downloaded.1),
        p.cached,
        cache.dir.display()
    );
    Ok(())
}

fn parse_doc(bytes: &[u8], what: &str) -> Result<Value> {
    if bytes.len() > MANIFEST_LIMIT {
        return Err(Error::input(what, format!("{} bytes is too large for a manifest", bytes.len())));
    }
    serde_json::from_slice(bytes).map_err(|e| Error::input(what, format!("malformed manifest JSON: {e}")))
}

/// The document's media type; an OCI index may omit it, so look at its shape.
pub fn media_type(doc: &Value) -> String {
    match doc.get("mediaType").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None if doc.get("manifests").is_some() => OCI_INDEX.into(),
        None => OCI_MANIFEST.into(),
    }
}

/// A descriptor's digest and size, checked.
fn desc_of(d: &Value, what: &str) -> Result<(Digest, u64)> {
    let digest = d
        .get("digest")
        .and_then(Value::as_str)
        .and_then(Digest::parse)
        .ok_or_else(|| Error::input(what, format!("descriptor with a missing or unsupported digest: {d}")))?;
    let size = d.get("size").and_then(Value::as_u64).ok_or_else(|| Error::input(what, format!("descriptor without a size: {d}")))?;
    Ok((digest, size))
}

pub fn platform_of(d: &Value) -> Option<Platform> {
    let p = d.get("platform")?;
    Some(Platform {
        os: p.get("os")?.as_str()?.to_string(),
        arch: p.get("architecture")?.as_str()?.to_string(),
        variant: p.get("variant").and_then(Value::as_str).map(str::to_string),
    })
}

pub fn is_attestation(d: &Value) -> bool {
    d.pointer("/annotations/vnd.docker.reference.type").and_then(Value::as_str) == Some("attestation-manifest")
        || platform_of(d).is_some_and(|p| p.os == "unknown" && p.arch == "unknown")
}

pub fn platform_matches(want: &Platform, have: &Platform) -> bool {
    want.os == have.os && want.arch == have.arch && (want.variant.is_none() || want.variant == have.variant)
}

/// The index entries to fetch. Attestation manifests are left out, and that is said.
fn select(index: &Value, sel: &PlatformSel, r: &Reference) -> Result<Vec<Value>> {
    let all: Vec<Value> = index.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
    let (att, images): (Vec<Value>, Vec<Value>) = all.into_iter().partition(is_attestation);
    if !att.is_empty() {
        eprintln!("{}: left out {} attestation manifest(s)", r.whole(), att.len());
    }
    let wanted = |p: &Platform| images.iter().filter(|d| platform_of(d).is_some_and(|h| platform_matches(p, &h))).cloned().collect::<Vec<_>>();
    let chosen: Vec<Value> = match sel {
        PlatformSel::All => images.clone(),
        PlatformSel::One { platform, .. } => wanted(platform).into_iter().take(1).collect(),
        PlatformSel::List(ps) => {
            let mut v = Vec::new();
            for p in ps {
                match wanted(p).into_iter().next() {
                    Some(d) => v.push(d),
                    None => return Err(no_platform(p, &images, r)),
                }
            }
            v
        }
    };
    match (chosen.is_empty(), sel) {
        (true, PlatformSel::One { platform, .. }) => Err(no_platform(platform, &images, r)),
        (true, _) => Err(Error::input(r.whole(), "the index lists no image manifest")),
        _ => Ok(chosen),
    }
}

fn no_platform(p: &Platform, images: &[Value], r: &Reference) -> Error {
    let have: Vec<String> = images.iter().filter_map(platform_of).map(|p| p.to_string()).collect();
    Error::Usage(format!(
        "no image for platform {p} in {}; it has: {} (choose one with --platform os/arch[/variant])",
        r.whole(),
        have.join(", ")
    ))
}

impl Puller<'_> {
    /// Put verified bytes in the cache and link them into the layout.
    fn keep(&self, d: &Digest, bytes: &[u8]) -> Result<()> {
        let p = self.cache.put_bytes(d, bytes)?;
        link_or_copy(&p, &self.layout.join(d.blob_path()))
    }

    /// One platform's manifest (from the cache when present) and its blobs.
    async fn image(&mut self, desc: &Value) -> Result<()> {
        let (d, size) = desc_of(desc, &self.r.whole())?;
        let path = match self.cache.get(&d, Some(size)) {
            Some(p) => p,
            None => {
                let by_digest = self.r.clone_with_digest(d.to_string());
                let (bytes, _) = self
                    .client
                    .pull_manifest_raw(&by_digest, self.auth, ACCEPT)
                    .await
                    .map_err(|e| reg_err(self.r, "pulling", e))?;
                check(&d, size, &bytes, &by_digest.whole())?;
                self.cache.put_bytes(&d, &bytes)?
            }
        };
        let bytes = std::fs::read(&path).at(&path)?;
        link_or_copy(&path, &self.layout.join(d.blob_path()))?;
        let doc = parse_doc(&bytes, &format!("manifest {d}"))?;
        self.blobs(&doc).await
    }

    /// The config and layers of one image manifest.
    async fn blobs(&mut self, manifest: &Value) -> Result<()> {
        let what = self.r.whole();
        let config = manifest.get("config").ok_or_else(|| Error::input(&what, "manifest without a config"))?;
        let mut descs = vec![desc_of(config, &what)?];
        for l in manifest.get("layers").and_then(Value::as_array).into_iter().flatten() {
            descs.push(desc_of(l, &what)?);
        }
        for (d, size) in descs {
            let path = match self.cache.get(&d, Some(size)) {
                Some(p) => {
                    self.cached += 1;
                    p
                }
                None => self.download(&d, size).await?,
            };
            link_or_copy(&path, &self.layout.join(d.blob_path()))?;
        }
        Ok(())
    }

    /// Stream one blob into the cache, hashing as it arrives; refuse it on a size or digest
    /// mismatch (nothing enters the cache then).
    async fn download(&mut self, d: &Digest, size: u64) -> Result<PathBuf> {
        let what = format!("blob {d} of {}", self.r.whole());
        eprintln!("downloading {} ({})", d.short(), human(size));
        let mut stream = self.client.pull_blob_stream(self.r, d.as_str()).await.map_err(|e| reg_err(self.r, &format!("pulling blob {d} of"), e))?;
        let tmp = self.cache.temp()?;
        let file = tmp.reopen().at(tmp.path())?;
        let mut w = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
        let mut got: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| broken(self.r, d, got, size, &e))?;
            got += chunk.len() as u64;
            if got > size {
                return Err(Error::input(&what, format!("more than the {size} bytes the manifest declares")));
            }
            w.write_all(&chunk).at(tmp.path())?;
            crate::progress::add(chunk.len() as u64);
        }
        let (buf, digest, n) = w.finish();
        buf.into_inner().map_err(|e| Error::io(tmp.path(), e.into_error()))?;
        if n != size {
            return Err(Error::input(&what, format!("size mismatch: the manifest says {size} bytes, got {n} (truncated?)")));
        }
        if &digest != d {
            return Err(Error::input(&what, format!("digest mismatch: content hashes to {digest}")));
        }
        self.downloaded.0 += 1;
        self.downloaded.1 += n;
        self.cache.commit(tmp, d)
    }
}

/// The transfer of a blob broke off (connection dropped, reset, timed out): say where.
fn broken(r: &Reference, d: &Digest, got: u64, size: u64, e: &std::io::Error) -> Error {
    Error::Other(format!(
        "registry {}: pulling blob {d} of {}: the transfer broke off after {got} of {size} bytes ({})",
        r.resolve_registry(),
        r.whole(),
        super::innermost(e)
    ))
}

fn check(d: &Digest, size: u64, bytes: &[u8], what: &str) -> Result<()> {
    if bytes.len() as u64 != size {
        return Err(Error::input(what, format!("size mismatch: the index says {size} bytes, got {}", bytes.len())));
    }
    let got = Digest::of_bytes(bytes);
    if &got != d {
        return Err(Error::input(what, format!("digest mismatch: content hashes to {got}")));
    }
    Ok(())
}

/// index.json naming the pulled document, with the reference as its names.
fn write_layout(layout: &Path, mt: &str, d: &Digest, size: usize, r: &Reference) -> Result<()> {
    let mut ann = serde_json::Map::new();
    if let Some(t) = r.tag() {
        ann.insert("org.opencontainers.image.ref.name".into(), json!(t));
        ann.insert("io.containerd.image.name".into(), json!(format!("{}/{}:{t}", r.registry(), r.repository())));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": mt, "digest": d.as_str(), "size": size, "annotations": ann }],
    });
    let p = layout.join("index.json");
    std::fs::write(&p, serde_json::to_vec(&index).unwrap_or_default()).at(&p)?;
    let p = layout.join("oci-layout");
    std::fs::write(&p, br#"{"imageLayoutVersion":"1.0.0"}"#).at(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, attestation: bool) -> Value {
        let mut d = json!({"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", "a".repeat(64)), "size": 1,
            "platform": {"os": if attestation { "unknown" } else { "linux" }, "architecture": if attestation { "unknown" } else { arch }}});
        if attestation {
            d["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
        }
        d
    }

    #[test]
    fn select_leaves_attestations_out_and_names_missing_platforms() {
        let r: Reference = "127.0.0.1:5000/x:1".parse().unwrap();
        let index = json!({"manifests": [entry("amd64", false), entry("", true), entry("arm64", false), entry("", true)]});
        let all = select(&index, &PlatformSel::All, &r).unwrap();
        let archs: Vec<_> = all.iter().map(|d| d["platform"]["architecture"].as_str().unwrap()).collect();
        assert_eq!(archs, ["amd64", "arm64"]);
        let one = PlatformSel::One { platform: Platform::parse("linux/arm64").unwrap(), explicit: true };
        assert_eq!(select(&index, &one, &r).unwrap()[0]["platform"]["architecture"], "arm64");
        let list = PlatformSel::List(vec![Platform::parse("linux/s390x").unwrap()]);
        let e = select(&index, &list, &r).unwrap_err().to_string();
        assert!(e.contains("linux/s390x") && e.contains("linux/amd64, linux/arm64"), "{e}");
    }
}
