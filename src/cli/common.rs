//! Argument groups and the load step shared by the subcommands.
use crate::error::{Error, IoContext, Result};
use crate::fs::{ContentStore, Tree};
use crate::image::{self, Compression, Format, Image, LayerStat, OpenOptions, Platform, SourceKind};
use crate::layer::{self, ApplyStats};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct InputArgs {
    /// Image: an OCI layout directory, an OCI archive, a `docker save` tar, `-` for a tar on
    /// stdin, or a registry reference: `docker://REF` or a bare one (`nginx:1.27`,
    /// `localhost:5000/x:y`, `ghcr.io/o/r@sha256:…`). A path that exists on disk always wins
    /// over a bare reference.
    pub image: String,
    /// Platform to pick from a multi-platform index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Speak plain HTTP to this registry (host[:port]); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registry: Vec<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output path (a directory for --format oci, a tar file otherwise), or docker://REF to push.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Output format; defaults to the input's kind.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Layer compression (default gzip; docker-archive accepts gzip or none).
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// name:tag to record in the output (default: the input's).
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
}

impl OutputArgs {
    pub fn resolve(&self, img: &Image) -> Result<(Format, Compression)> {
        let format = self.format.unwrap_or(match img.kind {
            SourceKind::OciLayout => Format::Oci,
            SourceKind::OciArchive => Format::OciArchive,
            SourceKind::DockerArchive => Format::DockerArchive,
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
}

/// The work area: spool files live here and vanish when it is dropped.
pub fn work_area() -> Result<tempfile::TempDir> {
    let base = std::env::temp_dir();
    tempfile::Builder::new().prefix("imgslim-work-").tempdir_in(&base).at(&base)
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

/// Open, verify, unpack and squash an image.
pub fn load(input: &InputArgs, work: &Path) -> Result<Loaded> {
    let (platform, explicit) = match &input.platform {
        Some(p) => (Platform::parse(p)?, true),
        None => (Platform { os: "linux".into(), arch: "amd64".into(), variant: None }, false),
    };
    let path = super::remote::resolve_input(input, &platform, explicit, work)?;
    let image = image::open(&path, &OpenOptions { platform, platform_explicit: explicit }, work)?;
    let unpacked = image::unpack(&image, work)?;
    let names: Vec<String> = image.layers.iter().map(|l| l.describe()).collect();
    let (tree, apply_stats) = layer::squash(&unpacked.changesets, &names)?;
    Ok(Loaded { image, tree, store: unpacked.store, layer_stats: unpacked.stats, apply_stats })
}

/// Tag for the output: --tag, else the input's first name:tag, else its ref name.
pub fn output_refs(img: &Image, tag: Option<&str>) -> (String, Vec<String>) {
    let repo_tags: Vec<String> = match tag {
        Some(t) => vec![t.to_string()],
        None => img.repo_tags.iter().filter(|t| t.contains(':')).cloned().collect(),
    };
    let ref_name = match (tag, &img.ref_name) {
        (Some(t), _) => t.to_string(),
        (None, Some(r)) => r.clone(),
        (None, None) => repo_tags.first().cloned().unwrap_or_else(|| "latest".into()),
    };
    (ref_name, repo_tags)
}

pub use crate::report::human;
