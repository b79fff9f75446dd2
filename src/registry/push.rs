//! Push: blobs first (skipped when the registry has them, mounted from a sibling repository
//! when it can, uploaded otherwise), then platform manifests by digest, and the tag last, as
//! the exact bytes of the layout so the digest is the one we wrote.
use super::pull::{media_type, DOCKER_LIST, OCI_INDEX};
use super::{reg_err, PushResult};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::report::human;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

struct Pusher<'a> {
    client: &'a Client,
    target: &'a Reference,
    mount: Option<&'a Reference>,
    layout: &'a Path,
    res: PushResult,
}

pub async fn push(client: &Client, auth: &RegistryAuth, layout: &Path, target: &Reference, mount: Option<&Reference>) -> Result<PushResult> {
    let (top, mt) = top_descriptor(layout)?;
    for op in [RegistryOperation::Pull, RegistryOperation::Push] {
        client.auth(target, auth, op).await.map_err(|e| reg_err(target, "pushing to", e))?;
    }
    if let Some(m) = mount {
        // Without a pull token for the source the mount is refused; the upload fallback covers it.
        let _ = client.auth(m, auth, RegistryOperation::Pull).await;
    }
    let res = PushResult { digest: top.clone(), reference: target.whole(), uploaded: 0, mounted: 0, skipped: 0 };
    let mut p = Pusher { client, target, mount, layout, res };
    let bytes = p.read_doc(&top)?;
    if mt == OCI_INDEX || mt == DOCKER_LIST {
        let doc = parse(&bytes, &top)?;
        for child in doc.get("manifests").and_then(Value::as_array).into_iter().flatten() {
            let d = child.get("digest").and_then(Value::as_str).and_then(Digest::parse).ok_or_else(|| Error::input(format!("index {top}"), "bad child digest"))?;
            let child_bytes = p.read_doc(&d)?;
            let child_mt = media_type(&parse(&child_bytes, &d)?);
            p.image(&child_bytes, &d).await?;
            p.manifest(&target.clone_with_digest(d.to_string()), child_bytes, &child_mt).await?;
        }
    } else {
        p.image(&bytes, &top).await?;
    }
    // The tag moves only now: everything it names is already in the registry.
    p.manifest(&tag_ref(target), bytes, &mt).await?;
    eprintln!(
        "pushed {}@{}: {} blob(s) uploaded, {} mounted, {} already there",
        target.whole(),
        p.res.digest,
        p.res.uploaded,
        p.res.mounted,
        p.res.skipped
    );
    Ok(p.res)
}

fn tag_ref(r: &Reference) -> Reference {
    Reference::with_tag(r.registry().to_string(), r.repository().to_string(), r.tag().unwrap_or("latest").to_string())
}

fn parse(bytes: &[u8], d: &Digest) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::input(format!("manifest {d}"), format!("malformed JSON: {e}")))
}

/// The one document the layout's index.json names, and its media type.
fn top_descriptor(layout: &Path) -> Result<(Digest, String)> {
    let p = layout.join("index.json");
    let index: Value = serde_json::from_slice(&std::fs::read(&p).at(&p)?).map_err(|e| Error::input(p.display().to_string(), e.to_string()))?;
    let m = index.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
    let [desc] = m.as_slice() else {
        return Err(Error::input(p.display().to_string(), format!("names {} images; push needs exactly one", m.len())));
    };
    let d = desc.get("digest").and_then(Value::as_str).and_then(Digest::parse).ok_or_else(|| Error::input(p.display().to_string(), "bad digest"))?;
    let mt = desc.get("mediaType").and_then(Value::as_str).unwrap_or(OCI_INDEX).to_string();
    Ok((d, mt))
}

impl Pusher<'_> {
    fn blob_file(&self, d: &Digest) -> std::path::PathBuf {
        self.layout.join(d.blob_path())
    }

    fn read_doc(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_file(d);
        let bytes = std::fs::read(&p).at(&p)?;
        let got = Digest::of_bytes(&bytes);
        if &got != d {
            return Err(Error::input(p.display().to_string(), format!("digest mismatch: content hashes to {got}")));
        }
        Ok(bytes)
    }

    /// Config and layers of one image manifest.
    async fn image(&mut self, bytes: &[u8], d: &Digest) -> Result<()> {
        let doc = parse(bytes, d)?;
        let layers = doc.get("layers").and_then(Value::as_array).cloned().unwrap_or_default();
        for desc in doc.get("config").into_iter().chain(layers.iter()) {
            let b = desc.get("digest").and_then(Value::as_str).and_then(Digest::parse).ok_or_else(|| Error::input(format!("manifest {d}"), "bad blob digest"))?;
            self.blob(&b).await?;
        }
        Ok(())
    }

    async fn blob(&mut self, d: &Digest) -> Result<()> {
        let t = self.target;
        if self.client.blob_exists(t, d.as_str()).await.map_err(|e| reg_err(t, "checking a blob of", e))? {
            self.res.skipped += 1;
            return Ok(());
        }
        if let Some(src) = self.mount {
            match self.client.mount_blob(t, src, d.as_str()).await {
                Ok(()) => {
                    self.res.mounted += 1;
                    return Ok(());
                }
                Err(e) => eprintln!("mounting {} from {} failed ({e}); uploading it", d.short(), src.whole()),
            }
        }
        let p = self.blob_file(d);
        let size = std::fs::metadata(&p).at(&p)?.len();
        eprintln!("uploading {} ({})", d.short(), human(size));
        let stream = file_stream(std::fs::File::open(&p).at(&p)?);
        self.client
            .push_blob_stream(t, stream, d.as_str(), Some(size))
            .await
            .map_err(|e| reg_err(t, &format!("uploading blob {d} to"), e))?;
        self.res.uploaded += 1;
        Ok(())
    }

    async fn manifest(&mut self, r: &Reference, bytes: Vec<u8>, mt: &str) -> Result<()> {
        let ct = mt.parse().map_err(|_| Error::input(r.whole(), format!("bad media type {mt}")))?;
        self.client.push_manifest_raw(r, bytes, ct).await.map_err(|e| reg_err(r, "pushing manifest to", e))?;
        Ok(())
    }
}

/// A blob file as a stream of 4 MiB chunks (read synchronously: the runtime is ours alone).
fn file_stream(f: std::fs::File) -> impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(f), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 4 << 20];
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Some((Err(e.into()), None)),
            }
        }
        if n == 0 {
            return None;
        }
        buf.truncate(n);
        Some((Ok(bytes::Bytes::from(buf)), Some(f)))
    })
}
