//! Argument groups and the load step shared by the subcommands.
use crate::error::{Error, Result};
use crate::fs::{ContentStore, Tree};
use super::interrupt;
use super::outputs::{Kind, Outputs, Slot};
use super::ui;
use crate::image::{self, Compression, Format, Image, LayerStat, OpenOptions, Platform, SourceKind};
use crate::layer::{self, ApplyStats};
use std::path::Path;

#[derive(clap::Args, Debug, Clone)]
pub struct InputArgs {
    /// Image: an OCI layout directory, an OCI archive, a `docker save` tar, or `-` for a tar on stdin.
    pub image: String,
    /// Platform to pick from a multi-platform index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
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
    /// Layer compression [default: gzip; docker-archive accepts gzip or none].
    #[arg(long, value_enum)]
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
}

impl OutputArgs {
    pub fn resolve(&self, img: &Image, out: &str) -> Result<(Format, Compression)> {
        let archive_of_input = || match img.kind {
            SourceKind::DockerArchive => Format::DockerArchive,
            _ => Format::OciArchive,
        };
        let format = self.format.unwrap_or_else(|| {
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
        });
        let compression = self.compression.unwrap_or(Compression::Gzip);
        if format == Format::DockerArchive && compression == Compression::Zstd {
            // containerd-store `docker load` labels every compressed layer gzip, zstd included.
            return Err(Error::Usage(
                "--format docker-archive with --compression zstd does not load everywhere; use gzip or none".into(),
            ));
        }
        Ok((format, compression))
    }

    /// Resolve the format and add OUT to the transaction.
    pub fn prepare(&self, img: &Image, outs: &mut Outputs) -> Result<ImageOut> {
        let Some(out) = self.output.as_deref() else {
            return Err(Error::Usage("-o OUT is required".into()));
        };
        let (format, compression) = self.resolve(img, out)?;
        let kind = if format == Format::Oci { Kind::Layout } else { Kind::File };
        let slot = outs.add("-o", out, kind)?;
        Ok(ImageOut { slot, format, compression })
    }
}

/// The summary's last line: where, in which format, which manifest.
pub fn wrote(outs: &Outputs, o: &ImageOut, manifest: &crate::digest::Digest) -> String {
    let fmt = match o.format {
        Format::Oci => "oci",
        Format::OciArchive => "oci-archive",
        Format::DockerArchive => "docker-archive",
    };
    let comp = format!("{:?}", o.compression).to_lowercase();
    let to = if outs.is_stdout(o.slot) { "stdout".to_string() } else { outs.given(o.slot).to_string() };
    format!("wrote {to} ({fmt}, {comp} layers, manifest {manifest})")
}

/// The work area: spool files live here and vanish when it is dropped (or on a signal).
pub fn work_area() -> Result<tempfile::TempDir> {
    let base = std::env::temp_dir();
    interrupt::create(|| tempfile::Builder::new().prefix("imgslim-work-").tempdir_in(&base), |t| t.path().to_path_buf())
        .map_err(|e| Error::input(format!("the work area in {} ($TMPDIR)", base.display()), e.to_string()))
}

pub struct Loaded {
    pub image: Image,
    pub tree: Tree,
    pub store: ContentStore,
    pub layer_stats: Vec<LayerStat>,
    pub apply_stats: Vec<ApplyStats>,
}

impl Loaded {
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
    ui::step("open the input", || image::open(&input.image, &OpenOptions { platform, platform_explicit: explicit }, work))
}

/// Unpack and squash an opened image.
pub fn load(image: Image, work: &Path) -> Result<Loaded> {
    let unpacked = ui::step("unpack the layers", || image::unpack(&image, work))?;
    let names: Vec<String> = image.layers.iter().map(|l| l.describe()).collect();
    let (tree, apply_stats) = ui::step("merge the layers", || layer::squash(&unpacked.changesets, &names))?;
    Ok(Loaded { image, tree, store: unpacked.store, layer_stats: unpacked.stats, apply_stats })
}

/// The input's path on this machine, when it has one (to keep outputs off it).
pub fn input_path(input: &InputArgs) -> Option<&Path> {
    (input.image != "-").then(|| Path::new(&input.image))
}

/// Tag for the output: --tag, else the input's first name:tag (with `suffix` appended to the
/// tag, so a slimmed image loaded into a store does not replace the original), else its ref
/// name.
pub fn output_refs(img: &Image, tag: Option<&str>, suffix: &str) -> (String, Vec<String>) {
    let repo_tags: Vec<String> = match tag {
        Some(t) => vec![t.to_string()],
        None => img.repo_tags.iter().filter(|t| t.contains(':')).map(|t| format!("{t}{suffix}")).collect(),
    };
    let ref_name = match (tag, &img.ref_name) {
        (Some(t), _) => t.to_string(),
        (None, Some(r)) => r.clone(),
        (None, None) => repo_tags.first().cloned().unwrap_or_else(|| "latest".into()),
    };
    (ref_name, repo_tags)
}

pub use crate::report::human;
