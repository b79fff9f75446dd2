//! Registries: pull an image into the blob cache and an OCI layout the `image` stage reads, and
//! push a written layout back. The distribution protocol is oci-client's; its async runtime
//! (tokio, current-thread) lives only inside this module, so callers stay synchronous.
mod auth;
pub mod cache;
mod pull;
mod push;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Platform;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::Reference;
use std::path::{Path, PathBuf};

pub use cache::Cache;
pub use pull::{is_attestation, platform_matches, platform_of};

/// Which platforms of a multi-platform index to fetch.
#[derive(Clone, Debug)]
pub enum PlatformSel {
    /// One platform; `explicit` when the user named it (a single-platform image must then match).
    One { platform: Platform, explicit: bool },
    List(Vec<Platform>),
    All,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Registries (`host[:port]`) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Blob cache; `None` uses `Cache::from_env()`.
    pub cache: Option<Cache>,
    /// Push: a reference whose blobs may be cross-repo mounted (same registry only).
    pub mount_from: Option<String>,
}

pub struct PushResult {
    /// Digest of the pushed manifest or index (what `REF@digest` pulls).
    pub digest: Digest,
    /// The normalised reference pushed to.
    pub reference: String,
    pub uploaded: usize,
    pub mounted: usize,
    pub skipped: usize,
}

/// `docker://REF` → REF; anything else is returned as is.
pub fn strip_transport(s: &str) -> &str {
    s.strip_prefix("docker://").unwrap_or(s)
}

/// Parse a reference with Docker's normalisation (`docker.io/library/`, tag `latest`).
pub fn parse_reference(s: &str) -> Result<Reference> {
    strip_transport(s)
        .parse::<Reference>()
        .map_err(|e| Error::Usage(format!("'{s}' is not a registry reference: {e}")))
}

/// Pull `reference` (its chosen platforms) into the cache and return an OCI layout directory
/// under `work` whose blobs are links to cached, digest-verified blobs.
pub fn pull(reference: &str, sel: &PlatformSel, opts: &Options, work: &Path) -> Result<PathBuf> {
    let r = parse_reference(reference)?;
    let cache = match &opts.cache {
        Some(c) => c.clone(),
        None => Cache::from_env()?,
    };
    let layout = tempfile::Builder::new().prefix("pulled-").tempdir_in(work).map_err(|e| Error::io(work, e))?.keep();
    let client = client(opts);
    let auth = auth::for_registry(r.resolve_registry())?;
    let lock = cache.lock_shared()?;
    block_on(pull::pull(&client, &auth, &r, sel, &cache, &layout))?;
    // The layout now holds its own links (or copies) of the blobs: pruning cannot hurt it.
    drop(lock);
    cache.enforce_bound()?;
    Ok(layout)
}

/// Push the image of an OCI layout (one manifest or one index in its index.json) to
/// `reference`: blobs the registry has are skipped, a cross-repo mount is tried when
/// `opts.mount_from` is in the same registry, manifests go as the exact bytes in the layout,
/// and the tag is written last, so an interrupted push publishes nothing under it.
pub fn push(layout: &Path, reference: &str, opts: &Options) -> Result<PushResult> {
    let r = parse_reference(reference)?;
    if r.digest().is_some() {
        return Err(Error::Usage(format!("push to '{reference}': give a tag, not a digest")));
    }
    let mount = opts
        .mount_from
        .as_deref()
        .map(parse_reference)
        .transpose()?
        .filter(|m| m.resolve_registry() == r.resolve_registry() && m.repository() != r.repository());
    let client = client(opts);
    let auth = auth::for_registry(r.resolve_registry())?;
    block_on(push::push(&client, &auth, layout, &r, mount.as_ref()))
}

fn client(opts: &Options) -> oci_client::Client {
    oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(opts.insecure.clone()),
        // We choose platforms ourselves, from the raw index.
        platform_resolver: None,
        ..Default::default()
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => panic!("cannot start the registry runtime: {e}"),
    }
}

/// One line naming the registry, what we were doing, and the reason.
fn reg_err(r: &Reference, what: &str, e: OciDistributionError) -> Error {
    let host = r.resolve_registry();
    let reason = match &e {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            format!("authentication failed ({})", auth::hint(host))
        }
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .map(|x| match x.code {
                oci_client::errors::OciErrorCode::Unauthorized | oci_client::errors::OciErrorCode::Denied => {
                    format!("authentication failed: {} ({})", x.message, auth::hint(host))
                }
                _ => format!("{:?}: {}", x.code, x.message),
            })
            .collect::<Vec<_>>()
            .join("; "),
        OciDistributionError::RequestError(re) => innermost(re),
        OciDistributionError::ServerError { code, message, .. } => format!("HTTP {code}: {}", message.trim()),
        other => other.to_string(),
    };
    Error::Other(format!("registry {host}: {what} {}: {reason}", r.whole()))
}

/// reqwest nests the useful reason ("Connection refused", "invalid peer certificate") deep.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    let msg = cur.to_string();
    if msg.contains("InvalidContentType") || msg.contains("corrupt message") || msg.contains("wrong version number") {
        return format!("{msg} (a plain-HTTP registry? pass --insecure-registry HOST)");
    }
    msg
}
