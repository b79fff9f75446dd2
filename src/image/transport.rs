//! Image names as skopeo writes them: `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
//! `docker-archive:FILE[:REF]`, `docker://REF`, or a bare path (its kind is sniffed), with
//! `-` for stdin/stdout. Tags follow Docker's reference grammar.
use crate::error::{Error, Result};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A bare path: the kind is found from what is there.
    Path,
    Oci,
    OciArchive,
    DockerArchive,
    /// A registry (`docker://`).
    Docker,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    pub transport: Transport,
    /// The path (`-` for stdin/stdout), or the registry reference for `docker://`.
    pub path: String,
    /// The `:REF` part: a tag in a layout or archive.
    pub reference: Option<String>,
}

/// skopeo transports this build does not read or write.
const OTHER_TRANSPORTS: &[&str] = &["containers-storage", "docker-daemon", "dir", "sif", "tarball", "ostree"];

impl ImageName {
    pub fn parse(s: &str) -> Result<ImageName> {
        if let Some(r) = s.strip_prefix("docker://") {
            return Ok(ImageName { transport: Transport::Docker, path: r.to_string(), reference: None });
        }
        let Some((prefix, rest)) = s.split_once(':') else {
            return Ok(ImageName { transport: Transport::Path, path: s.to_string(), reference: None });
        };
        let transport = match prefix {
            "oci" => Transport::Oci,
            "oci-archive" => Transport::OciArchive,
            "docker-archive" => Transport::DockerArchive,
            p if OTHER_TRANSPORTS.contains(&p) => {
                return Err(Error::Usage(format!(
                    "{s}: the {p}: transport is not supported; use oci:, oci-archive:, docker-archive:, docker:// or a path"
                )))
            }
            // A path that happens to contain a colon.
            _ => return Ok(ImageName { transport: Transport::Path, path: s.to_string(), reference: None }),
        };
        // As skopeo: the path ends at the first colon; the rest is the reference.
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) if !r.is_empty() => (p, Some(r.to_string())),
            Some((p, _)) => (p, None),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(Error::Usage(format!("{s}: no path after {prefix}:")));
        }
        Ok(ImageName { transport, path: path.to_string(), reference })
    }
}

fn reference_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // github.com/distribution/reference's grammar.
        let alnum = "[a-z0-9]+";
        let sep = "(?:[._]|__|[-]+)";
        let component = format!("{alnum}(?:{sep}{alnum})*");
        let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let host = format!(r"(?:{domain_component}(?:\.{domain_component})*|\[[a-fA-F0-9:]+\])");
        let domain = format!("{host}(?::[0-9]+)?");
        let name = format!("(?:{domain}/)?{component}(?:/{component})*");
        let tag = r"[\w][\w.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        regex::Regex::new(&format!("^({name})(?::({tag}))?(?:@({digest}))?$")).expect("the reference grammar compiles")
    })
}

/// Check `s` as a Docker `name[:tag]` (no digest: a tag names what we write) and return it
/// with `:latest` when no tag is given, as docker does.
pub fn parse_tag(s: &str, flag: &str) -> Result<String> {
    let bad = |why: &str| Error::Usage(format!("{flag} '{s}': {why} (expected NAME[:TAG], e.g. myapp:1.2-slim)"));
    let caps = reference_regex().captures(s).ok_or_else(|| bad("not a valid image reference"))?;
    if caps.get(3).is_some() {
        return Err(bad("a digest cannot be written; give a tag"));
    }
    let name = &caps[1];
    if name.len() > 255 {
        return Err(bad("the name is longer than 255 characters"));
    }
    Ok(match caps.get(2) {
        Some(_) => s.to_string(),
        None => format!("{s}:latest"),
    })
}

/// `name:tag` with `suffix` added to the tag (`app:1.2` → `app:1.2-slim`); a name without a
/// tag (a registry port is not a tag) is returned unchanged.
pub fn with_tag_suffix(reference: &str, suffix: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') && !reference.contains('@') {
        format!("{reference}{suffix}")
    } else {
        reference.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_as_skopeo_names_them() {
        let p = |s| ImageName::parse(s).unwrap();
        assert_eq!(p("oci:/x/lay:v1"), ImageName { transport: Transport::Oci, path: "/x/lay".into(), reference: Some("v1".into()) });
        assert_eq!(p("oci:lay:busybox:1.38").reference.as_deref(), Some("busybox:1.38"));
        assert_eq!(p("docker-archive:a.tar").transport, Transport::DockerArchive);
        assert_eq!(p("oci-archive:-").path, "-");
        assert_eq!(p("docker://alpine:3").path, "alpine:3");
        assert_eq!(p("./weird:name").transport, Transport::Path);
        assert!(ImageName::parse("docker-daemon:x:1").is_err());
    }

    #[test]
    fn tags_follow_the_docker_grammar() {
        assert_eq!(parse_tag("app", "--tag").unwrap(), "app:latest");
        assert_eq!(parse_tag("localhost:5000/team/app:1.2-slim", "--tag").unwrap(), "localhost:5000/team/app:1.2-slim");
        for bad in ["App:1", "app:", "app:-x", "-app", "app@sha256:12", "a//b", &format!("app:{}", "t".repeat(129))] {
            assert!(parse_tag(bad, "--tag").is_err(), "{bad}");
        }
        assert!(parse_tag(&format!("app@sha256:{}", "a".repeat(64)), "--tag").is_err(), "digests are not tags");
        assert_eq!(with_tag_suffix("app:1.2", "-slim"), "app:1.2-slim");
        assert_eq!(with_tag_suffix("localhost:5000/app", "-slim"), "localhost:5000/app");
    }
}
