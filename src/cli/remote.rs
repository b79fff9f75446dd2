//! Registry references on the command line: `docker://REF` or a bare reference as IMAGE (a
//! path that exists wins), and `-o docker://REF` to push. Kept apart so the transport parsing
//! of the CLI can take these over.
use super::common::{InputArgs, OutputArgs};
use crate::error::Result;
use crate::image::Platform;
use crate::registry::{self, PlatformSel};
use std::path::{Path, PathBuf};

/// Whether IMAGE names a registry image rather than a file: `docker://…`, or a string that
/// parses as a reference, is not an existing path and does not look like one.
pub fn is_remote(image: &str) -> bool {
    if image.starts_with("docker://") {
        return true;
    }
    let looks_like_path = image == "-"
        || image.starts_with('/')
        || image.starts_with('.')
        || [".tar", ".tar.gz", ".oci", ".json"].iter().any(|s| image.ends_with(s));
    !looks_like_path && !Path::new(image).exists() && registry::parse_reference(image).is_ok()
}

pub fn registry_options(input: &InputArgs) -> registry::Options {
    registry::Options { insecure: input.insecure_registry.clone(), ..Default::default() }
}

/// The path `image::open` should read: IMAGE itself, or a layout pulled into `work`.
pub fn resolve_input(input: &InputArgs, platform: &Platform, explicit: bool, work: &Path) -> Result<String> {
    if !is_remote(&input.image) {
        return Ok(input.image.clone());
    }
    let sel = PlatformSel::One { platform: platform.clone(), explicit };
    let layout = registry::pull(&input.image, &sel, &registry_options(input), work)?;
    Ok(layout.display().to_string())
}

/// `-o docker://REF`: the reference to push to.
pub fn push_target(out: &Path) -> Option<String> {
    out.to_str().and_then(|s| s.strip_prefix("docker://")).map(str::to_string)
}

/// `-o docker://REF` writes an OCI layout in the work area (through the same output
/// transaction), which is pushed once it is complete. Returns the output to write and the
/// reference to push to.
pub fn redirect_push(out: &OutputArgs, work: &Path) -> (OutputArgs, Option<String>) {
    match out.output.as_deref().and_then(|o| push_target(Path::new(o))) {
        Some(target) => {
            let staged = OutputArgs { output: Some(staging_output(work).display().to_string()), format: Some(crate::image::Format::Oci), ..out.clone() };
            (staged, Some(target))
        }
        None => (out.clone(), None),
    }
}

/// Where to write before pushing: an OCI layout in the work area.
pub fn staging_output(work: &Path) -> PathBuf {
    work.join("to-push")
}

/// Push the written layout; blobs of a registry input in the same registry are mounted.
pub fn push_output(layout: &Path, target: &str, input: &InputArgs) -> Result<()> {
    let mut opts = registry_options(input);
    opts.mount_from = is_remote(&input.image).then(|| input.image.clone());
    let r = registry::push(layout, target, &opts)?;
    println!("pushed {}@{}", r.reference, r.digest);
    Ok(())
}
