//! Argument groups and the load step shared by the subcommands.
use crate::error::{Error, Result};
use crate::fs::{ContentStore, Tree};
use super::interrupt;
use super::outputs::{Kind, Outputs, Slot};
use super::ui;
use crate::image::transport::{parse_tag, with_tag_suffix};
use crate::image::{self, Compression, Format, Image, ImageName, LayerStat, OpenOptions, Platform, SourceKind, Transport};
use crate::layer::{self, ApplyStats};
use std::path::Path;

#[derive(clap::Args, Debug, Clone)]
pub struct InputArgs {
    /// Image: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF], or a path (an
    /// OCI layout, an OCI archive, a `docker save` tar, gzip/zstd-compressed or not); `-` reads
    /// a tar from stdin.
    pub image: String,
    /// Platform to pick from a multi-platform index [default: linux/amd64].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Speak plain HTTP to this registry (host[:port]); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output: a path (a new directory for an OCI layout, a file for an archive), an existing
    /// OCI layout (the image is added under its tag), or `-` for an archive on stdout.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<String>,
    /// Output format [default: from OUT's name (`.tar` → an archive), else the input's kind].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Layer compression: gzip[:1-12], zstd[:1-19] or none [default: gzip (level 6); zstd is
    /// level 3; docker-archive accepts gzip or none]. See the README for sizes and speeds.
    #[arg(long, value_name = "METHOD[:LEVEL]", value_parser = Compression::parse)]
    pub compression: Option<Compression>,
    /// name:tag to record in the output [default: the input's].
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// Replace an existing file or OCI layout at OUT (never the input, never a directory that
    /// is not an OCI layout).
    #[arg(long)]
    pub force: bool,
}

/// Where and how the image goes: checked before any work.
pub struct ImageOut {
    pub slot: Slot,
    pub format: Format,
    pub compression: Compression,
    /// name:tag from --tag or docker-archive:FILE:REF, checked against Docker's grammar.
    pub tag: Option<String>,
    /// The ref name from oci:DIR:REF / oci-archive:FILE:REF.
    pub ref_name: Option<String>,
}

impl OutputArgs {
    /// The format: the transport's, else --format, else from OUT's name (`.tar` or `-` → an
    /// archive of the input's family), an existing directory → a layout, else the input's kind.
    fn format_for(&self, img: &Image, name: &ImageName) -> Result<Format> {
        let from_transport = match name.transport {
            Transport::Oci => Some(Format::Oci),
            Transport::OciArchive => Some(Format::OciArchive),
            Transport::DockerArchive => Some(Format::DockerArchive),
            Transport::Path => None,
            Transport::Docker => {
                return Err(Error::Usage(format!("-o docker://{}: pushing to a registry is not supported in this build", name.path)))
            }
        };
        if let (Some(t), Some(f)) = (from_transport, self.format) {
            if t != f {
                return Err(Error::Usage(format!("-o {}: the transport says {t:?}, --format says {f:?}", self.output.as_deref().unwrap_or(""))));
            }
        }
        let archive_of_input = || match img.kind {
            SourceKind::DockerArchive => Format::DockerArchive,
            _ => Format::OciArchive,
        };
        let out = name.path.as_str();
        Ok(from_transport.or(self.format).unwrap_or_else(|| {
            if out == "-" || out.ends_with(".tar") {
                archive_of_input()
            } else if Path::new(out).is_dir() {
                Format::Oci
            } else {
                match img.kind {
                    SourceKind::OciLayout => Format::Oci,
                    SourceKind::OciArchive => Format::OciArchive,
                    SourceKind::DockerArchive => Format::DockerArchive,
                }
            }
        }))
    }

    /// Resolve the format, check the tag, and add OUT to the transaction.
    pub fn prepare(&self, img: &Image, outs: &mut Outputs) -> Result<ImageOut> {
        let Some(out) = self.output.as_deref() else {
            return Err(Error::Usage("-o OUT is required".into()));
        };
        let name = ImageName::parse(out)?;
        let format = self.format_for(img, &name)?;
        let compression = self.compression.unwrap_or_default();
        if format == Format::DockerArchive && compression.is_zstd() {
            // containerd-store `docker load` labels every compressed layer gzip, zstd included.
            return Err(Error::Usage(
                "--format docker-archive with --compression zstd does not load everywhere; use gzip or none".into(),
            ));
        }
        if name.reference.is_some() && self.tag.is_some() {
            return Err(Error::Usage(format!("-o {out} names a reference and --tag gives another; use one")));
        }
        let (mut tag, mut ref_name) = (None, None);
        match (&name.reference, format) {
            (Some(r), Format::DockerArchive) => tag = Some(parse_tag(r, "-o docker-archive:FILE:REF")?),
            (Some(r), _) => ref_name = Some(r.clone()),
            (None, _) => tag = self.tag.as_deref().map(|t| parse_tag(t, "--tag")).transpose()?,
        }
        let kind = if format == Format::Oci { Kind::Layout } else { Kind::File };
        let slot = outs.add("-o", &name.path, kind)?;
        Ok(ImageOut { slot, format, compression, tag, ref_name })
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Oci => "oci",
        Format::OciArchive => "oci-archive",
        Format::DockerArchive => "docker-archive",
    }
}

/// The written image in `--json` and `--report` documents.
pub fn output_json(outs: &Outputs, o: &ImageOut, manifest: &crate::digest::Digest) -> serde_json::Value {
    let to = if outs.is_stdout(o.slot) { "-".to_string() } else { outs.given(o.slot).to_string() };
    serde_json::json!({"path": to, "format": format_name(o.format), "compression": o.compression.to_string(), "manifest_digest": manifest.to_string()})
}

/// `--json` prints one document on stdout: nothing else may be written there.
pub fn check_json_stdout(json: bool, stdout_users: &[(&str, Option<&str>)]) -> Result<()> {
    match stdout_users.iter().find(|(_, v)| *v == Some("-")) {
        Some((flag, _)) if json => Err(Error::Usage(format!("--json prints on stdout, and so does {flag} -: use a file for one of them"))),
        _ => Ok(()),
    }
}

/// Print a `--json` document.
pub fn print_json(v: &serde_json::Value) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Other(format!("serialising JSON: {e}")))?;
    println!("{s}");
    Ok(())
}

/// The summary's last line: where, in which format, which manifest.
pub fn wrote(outs: &Outputs, o: &ImageOut, manifest: &crate::digest::Digest) -> String {
    let fmt = format_name(o.format);
    let comp = o.compression.to_string();
    let to = if outs.is_stdout(o.slot) { "stdout".to_string() } else { outs.given(o.slot).to_string() };
    format!("wrote {to} ({fmt}, {comp} layers, manifest {manifest})")
}

/// The work area: spool files live here and vanish when it is dropped (or on a signal).
pub fn work_area() -> Result<tempfile::TempDir> {
    let base = std::env::temp_dir();
    interrupt::create(|| tempfile::Builder::new().prefix("imgslim-work-").tempdir_in(&base), |t| t.path().to_path_buf())
        .map_err(|e| Error::input(format!("the work area in {} ($TMPDIR)", base.display()), super::outputs::plain(e).to_string()))
}

pub struct Loaded {
    pub image: Image,
    pub tree: Tree,
    pub store: ContentStore,
    pub layer_stats: Vec<LayerStat>,
    pub apply_stats: Vec<ApplyStats>,
    /// The layers as read (metadata only), for per-layer analyses such as `inspect --ci`;
    /// empty unless loaded with `load_with_layers` (they cost memory per entry of every layer).
    pub changesets: Vec<layer::Changeset>,
    /// Bytes of regular-file content in all layers, overwritten copies included.
    pub content_bytes: u64,
}

impl Loaded {
    /// The input's layer bytes, summed: uncompressed and as stored.
    pub fn sizes(&self) -> crate::report::Sizes {
        crate::report::Sizes {
            uncompressed: self.layer_stats.iter().map(|s| s.uncompressed).sum(),
            compressed: self.layer_stats.iter().map(|s| s.compressed).sum(),
        }
    }

    pub fn wasted(&self) -> (u64, u64) {
        self.apply_stats.iter().fold((0, 0), |a, s| (a.0 + s.wasted_bytes, a.1 + s.wasted_files))
    }
}

/// Open and verify an image (documents only; layers are read by `load`).
pub fn open(input: &InputArgs, work: &Path) -> Result<Image> {
    let (platform, explicit) = match &input.platform {
        Some(p) => (Platform::parse(p)?, true),
        None => (Platform { os: "linux".into(), arch: "amd64".into(), variant: None }, false),
    };
    // A registry reference is pulled (verified, cached) into an OCI layout in the work area.
    let local = ui::step_bytes("pull the input", None, || super::remote::resolve_input(input, &platform, explicit, work))?;
    let name = ImageName::parse(&local)?;
    let opts = OpenOptions { reference: name.reference.clone(), platform, platform_explicit: explicit };
    ui::step("open the input", || image::open(&name, &opts, work))
}

/// Unpack and squash an opened image; each layer's changeset is freed once merged.
pub fn load(image: Image, work: &Path) -> Result<Loaded> {
    load_keeping(image, work, false)
}

/// `load`, keeping every layer's changeset in `Loaded::changesets` (inspect's per-layer views).
pub fn load_with_layers(image: Image, work: &Path) -> Result<Loaded> {
    load_keeping(image, work, true)
}

fn load_keeping(image: Image, work: &Path, keep: bool) -> Result<Loaded> {
    let total: u64 = image.layers.iter().filter_map(|l| l.size).sum();
    let unpacked = ui::step_bytes("read and verify the layers", Some(total), || image::unpack(&image, work))?;
    let names: Vec<String> = image.layers.iter().map(|l| l.describe()).collect();
    let content_bytes = unpacked.changesets.iter().map(|c| c.content_bytes).sum();
    let (tree, apply_stats, changesets) = ui::step("merge the layers", || {
        if keep {
            layer::squash(&unpacked.changesets, &names).map(|(t, s)| (t, s, unpacked.changesets))
        } else {
            layer::squash(unpacked.changesets, &names).map(|(t, s)| (t, s, Vec::new()))
        }
    })?;
    Ok(Loaded { image, tree, store: unpacked.store, layer_stats: unpacked.stats, apply_stats, changesets, content_bytes })
}

/// The input's path on this machine, when it has one (to keep outputs off it).
pub fn input_path(input: &InputArgs) -> Option<std::path::PathBuf> {
    let name = ImageName::parse(&input.image).ok()?;
    (name.path != "-" && name.transport != Transport::Docker).then(|| name.path.into())
}

/// Names for the output: (ref name in index.json, name:tag references). The tag is the one
/// the user gave, else the input's name:tag with `suffix` appended to the tag (so a slimmed
/// image loaded into a store does not replace the original); the ref name is the user's,
/// else the tag, else the input's.
pub fn output_refs(img: &Image, out: &ImageOut, suffix: &str) -> (String, Vec<String>) {
    let tag = out.tag.as_deref();
    let repo_tags: Vec<String> = match tag {
        Some(t) => vec![t.to_string()],
        None => img.repo_tags.iter().filter(|t| t.contains(':')).map(|t| with_tag_suffix(t, suffix)).collect(),
    };
    if let Some(r) = &out.ref_name {
        return (r.clone(), repo_tags);
    }
    let ref_name = match (tag, &img.ref_name) {
        (Some(t), _) => t.to_string(),
        (None, Some(r)) => r.clone(),
        (None, None) => repo_tags.first().cloned().unwrap_or_else(|| "latest".into()),
    };
    (ref_name, repo_tags)
}

pub use crate::report::human;

/// Open, verify, unpack and squash an input in one step (commands that write no image).
pub fn load_input(input: &InputArgs, work: &Path) -> Result<Loaded> {
    load(open(input, work)?, work)
}
