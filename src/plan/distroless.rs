//! `--distroless` preparation: a `nonroot` user (65532, as distroless images have), a 1777
//! /tmp, and User switched to it when the image would run as root.
use crate::error::{Error, Result};
use crate::fs::{split_path, ContentStore, Data, Kind, Meta, Node, Tree};

pub const NONROOT_UID: u64 = 65532;

/// Whether a config `User` value means root.
pub fn runs_as_root(user: Option<&str>) -> bool {
    match user.map(str::trim) {
        None | Some("") => true,
        Some(u) => {
            let name = u.split(':').next().unwrap_or("");
            name == "root" || name == "0"
        }
    }
}

fn read_text(tree: &Tree, store: &ContentStore, path: &str) -> Option<(String, Meta)> {
    let id = tree.lookup_path(path.as_bytes())?;
    match tree.node(id) {
        Node::Leaf(ino) => match &tree.inode(*ino).data {
            Data::File { content } => {
                let bytes = store.read_all(content).ok()?;
                Some((String::from_utf8_lossy(&bytes).into_owned(), tree.inode(*ino).meta.clone()))
            }
            _ => None,
        },
        Node::Dir { .. } => None,
    }
}

/// Add `line` to a colon-separated database unless an entry with that name exists.
fn ensure_entry(tree: &mut Tree, store: &mut ContentStore, path: &str, name: &str, line: &str) -> Result<bool> {
    let (mut text, meta) = read_text(tree, store, path).unwrap_or_else(|| (String::new(), Meta { mode: 0o644, ..Meta::default() }));
    if text.lines().any(|l| l.split(':').next() == Some(name)) {
        return Ok(false);
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    let content = store.add_bytes(text.as_bytes()).map_err(|e| Error::Other(format!("work area: {e}")))?;
    let ino = tree.new_inode(meta, Data::File { content });
    let mut released = Vec::new();
    tree.put_leaf(&split_path(path.as_bytes()), ino, &mut released);
    Ok(true)
}

/// Returns the notes to print (what was added).
pub fn prepare(tree: &mut Tree, store: &mut ContentStore) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    if ensure_entry(tree, store, "etc/passwd", "nonroot", "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin")? {
        notes.push("added user nonroot (65532) to /etc/passwd".to_string());
    }
    if ensure_entry(tree, store, "etc/group", "nonroot", "nonroot:x:65532:")? {
        notes.push("added group nonroot (65532) to /etc/group".to_string());
    }
    let mut released = Vec::new();
    if tree.lookup_path(b"home/nonroot").is_none() {
        tree.put_dir(&split_path(b"home/nonroot"), Meta { mode: 0o700, uid: NONROOT_UID, gid: NONROOT_UID, ..Meta::default() }, &mut released);
    }
    match tree.lookup_path(b"tmp").map(|id| tree.kind(id)) {
        Some(Kind::Dir) => {}
        _ => {
            tree.put_dir(&split_path(b"tmp"), Meta { mode: 0o1777, ..Meta::default() }, &mut released);
            notes.push("created /tmp (1777)".to_string());
        }
    }
    Ok(notes)
}
