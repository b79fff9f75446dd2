//! Path rules for layer entries. Names are bytes (images are not obliged to use UTF-8).
//! A hostile name must never address anything outside the image root.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("absolute path (entries must be relative to the image root)")]
    Absolute,
    #[error("'..' component (would escape the image root)")]
    DotDot,
    #[error("NUL byte in path")]
    Nul,
}

/// Normalise a tar entry name: drop `./` and `.` components, duplicate and trailing slashes.
/// Rejects absolute names and any `..` component. The root itself normalises to "".
pub fn normalize_entry_path(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    if raw.contains(&0) {
        return Err(PathError::Nul);
    }
    if raw.first() == Some(&b'/') {
        return Err(PathError::Absolute);
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => continue,
            b".." => return Err(PathError::DotDot),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

/// Normalise a hardlink target the way runtimes do: a leading `/` means the layer root
/// (Docker and containerd join the name under the root), `..` is folded lexically, and only
/// a target that climbs above the layer root is refused (`DotDot`).
pub fn clean_link_target(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    if raw.contains(&0) {
        return Err(PathError::Nul);
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop().ok_or(PathError::DotDot)?;
            }
            c => out.push(c),
        }
    }
    Ok(out.join(&b'/'))
}

/// Split a normalised path into components ("" gives none).
pub fn split_path(p: &[u8]) -> Vec<&[u8]> {
    p.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").collect()
}

pub fn join_path(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut v = Vec::with_capacity(dir.len() + 1 + name.len());
    v.extend_from_slice(dir);
    v.push(b'/');
    v.extend_from_slice(name);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(normalize_entry_path(b"./usr//bin/").unwrap(), b"usr/bin");
        assert_eq!(normalize_entry_path(b"./").unwrap(), b"");
        assert_eq!(normalize_entry_path(b"/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(normalize_entry_path(b"a/../../etc"), Err(PathError::DotDot));
        assert_eq!(normalize_entry_path(b".."), Err(PathError::DotDot));
        assert_eq!(clean_link_target(b"/usr/./bin//x").unwrap(), b"usr/bin/x");
        assert_eq!(clean_link_target(b"a/../b").unwrap(), b"b");
        assert_eq!(clean_link_target(b"a/../../etc/passwd"), Err(PathError::DotDot));
    }
}
