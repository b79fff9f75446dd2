//! `--platform all` or a list (`linux/amd64,linux/arm64`): run the slim pipeline once per
//! platform and gather the results in one OCI index, keeping the source's annotations.
//! Attestation manifests are left out (and said so). Static analysis needs no emulation.
use super::common::InputArgs;
use super::remote;
use super::slim::{self, SlimArgs};
use super::CmdResult;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{self, Platform};
use crate::registry::{self, cache::link_or_copy, PlatformSel};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Whether `--platform` asks for several platforms.
pub fn wanted(input: &InputArgs) -> bool {
    matches!(input.platform.as_deref(), Some(p) if p == "all" || p.contains(','))
}

fn selection(s: &str) -> Result<PlatformSel> {
    if s == "all" {
        return Ok(PlatformSel::All);
    }
    Ok(PlatformSel::List(s.split(',').map(|p| Platform::parse(p.trim())).collect::<Result<_>>()?))
}

struct Part {
    platform: Value,
    annotations: Option<Value>,
    layout: PathBuf,
}

pub fn run(a: &SlimArgs) -> CmdResult {
    let out = match (&a.output.output, a.dry_run) {
        (Some(o), false) => PathBuf::from(o),
        _ => return Err(Error::Usage("--platform all/a list needs -o OUT (an OCI layout directory or docker://REF)".into())),
    };
    if a.json {
        // One document per run is the contract; a per-platform list is not designed yet.
        return Err(Error::Usage("--json with several platforms is not supported: use --report FILE (one per platform)".into()));
    }
    if a.output.format.is_some_and(|f| f != image::Format::Oci) {
        return Err(Error::Usage("several platforms are written as one OCI index: use --format oci or -o docker://REF".into()));
    }
    let work = super::common::work_area()?;
    let sel = selection(a.input.platform.as_deref().unwrap_or("all"))?;
    let (layout, index) = source(&a.input, &sel, work.path())?;
    let mut parts = Vec::new();
    for (i, desc) in chosen(&index, &sel)?.into_iter().enumerate() {
        let platform = registry::platform_of(&desc).ok_or_else(|| Error::input(&a.input.image, "index entry without a platform"))?;
        println!("== {platform}");
        let mut one = a.clone();
        one.input.image = layout.display().to_string();
        one.input.platform = Some(platform.to_string());
        one.output.output = Some(work.path().join(format!("platform-{i}")).display().to_string());
        one.output.format = Some(image::Format::Oci);
        // One report and one page per platform: report.linux-amd64.json, report.linux-amd64.html.
        let per_platform = |f: &String, ext: &str| std::path::Path::new(f).with_extension(format!("{}.{ext}", platform.to_string().replace('/', "-"))).display().to_string();
        one.report = a.report.as_ref().map(|r| per_platform(r, "json"));
        one.html = a.html.as_ref().map(|h| per_platform(h, "html"));
        slim::run(&one)?;
        parts.push(Part { platform: desc["platform"].clone(), annotations: desc.get("annotations").cloned(), layout: one.output.output.map(PathBuf::from).unwrap_or_default() });
    }
    let ref_name = a.output.tag.clone().unwrap_or_else(|| "latest".into());
    match remote::push_target(&out) {
        Some(t) => {
            let merged = work.path().join("merged");
            merge(&parts, index.get("annotations"), &ref_name, &merged)?;
            remote::push_output(&merged, &t, &a.input)
        }
        None => {
            let staging = tempfile::Builder::new().prefix(".imgslim-index-").tempdir_in(out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))).at(&out)?;
            merge(&parts, index.get("annotations"), &ref_name, staging.path())?;
            if out.exists() {
                return Err(Error::Usage(format!("{}: already exists", out.display())));
            }
            std::fs::rename(staging.keep(), &out).at(&out)?;
            println!("wrote {} ({} platforms)", out.display(), parts.len());
            Ok(())
        }
    }
}

/// The layout to read (pulled into `work` for a registry reference) and the index listing the
/// platforms (a nested index when the layout's index.json points at one).
fn source(input: &InputArgs, sel: &PlatformSel, work: &Path) -> Result<(PathBuf, Value)> {
    let layout = if remote::is_remote(&input.image) {
        registry::pull(&input.image, sel, &remote::registry_options(input), work)?
    } else {
        PathBuf::from(&input.image)
    };
    let read = |p: PathBuf| -> Result<Value> {
        let bytes = std::fs::read(&p).at(&p)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::input(p.display().to_string(), format!("malformed JSON: {e}")))
    };
    let top = read(layout.join("index.json"))?;
    let nested = top["manifests"]
        .as_array()
        .filter(|m| m.len() == 1)
        .and_then(|m| m[0].get("digest"))
        .and_then(Value::as_str)
        .and_then(Digest::parse)
        .filter(|_| top["manifests"][0]["mediaType"].as_str().is_some_and(|m| m.contains("index") || m.contains("list")));
    let index = match nested {
        Some(d) => read(layout.join(d.blob_path()))?,
        None => top,
    };
    Ok((layout, index))
}

/// Index entries for the selection, attestations left out (and said so).
fn chosen(index: &Value, sel: &PlatformSel) -> Result<Vec<Value>> {
    let all = index["manifests"].as_array().cloned().unwrap_or_default();
    let (att, images): (Vec<Value>, Vec<Value>) = all.into_iter().partition(registry::is_attestation);
    if !att.is_empty() {
        println!("left out {} attestation manifest(s)", att.len());
    }
    let pick = |p: &Platform| images.iter().find(|d| registry::platform_of(d).is_some_and(|h| registry::platform_matches(p, &h))).cloned();
    match sel {
        PlatformSel::List(ps) => ps
            .iter()
            .map(|p| pick(p).ok_or_else(|| Error::Usage(format!("no image for platform {p} in the input"))))
            .collect(),
        _ => Ok(images.into_iter().filter(|d| registry::platform_of(d).is_some()).collect()),
    }
}

/// One OCI layout whose index.json names one index of the per-platform manifests.
fn merge(parts: &[Part], annotations: Option<&Value>, ref_name: &str, dst: &Path) -> Result<()> {
    let mut manifests = Vec::new();
    for p in parts {
        let idx_path = p.layout.join("index.json");
        let idx: Value = serde_json::from_slice(&std::fs::read(&idx_path).at(&idx_path)?).map_err(|e| Error::Other(e.to_string()))?;
        let d = &idx["manifests"][0];
        let mut desc = Map::new();
        for k in ["mediaType", "digest", "size"] {
            desc.insert(k.into(), d[k].clone());
        }
        desc.insert("platform".into(), p.platform.clone());
        if let Some(a) = &p.annotations {
            desc.insert("annotations".into(), a.clone());
        }
        manifests.push(Value::Object(desc));
        let blobs = p.layout.join("blobs/sha256");
        for e in std::fs::read_dir(&blobs).at(&blobs)? {
            let e = e.at(&blobs)?;
            link_or_copy(&e.path(), &dst.join("blobs/sha256").join(e.file_name()))?;
        }
    }
    let mut index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    if let Some(a) = annotations {
        index["annotations"] = a.clone();
    }
    let bytes = serde_json::to_vec(&index).map_err(|e| Error::Other(e.to_string()))?;
    let d = Digest::of_bytes(&bytes);
    let p = dst.join(d.blob_path());
    std::fs::write(&p, &bytes).at(&p)?;
    let top = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_INDEX, "digest": d.as_str(), "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": ref_name}}]});
    let p = dst.join("index.json");
    std::fs::write(&p, top.to_string()).at(&p)?;
    let p = dst.join("oci-layout");
    std::fs::write(&p, br#"{"imageLayoutVersion":"1.0.0"}"#).at(&p)
}
