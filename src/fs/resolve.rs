//! The one symlink resolver of imgslim: a read-only view of an image root, with chroot
//! semantics. Everything that follows a link inside an image (the ELF search, profile globs,
//! `--explain`, script scanning, tracing) goes through [`RootFs::resolve`].
//!
//! API:
//! - implement [`RootFs`]'s three primitives (`lstat`, `read_file`, `list_dir`) on *canonical*
//!   paths (absolute, normalised, no symlink in any parent component);
//! - call [`RootFs::resolve`] (kernel rules inside a chroot: `..` at `/` stays at `/`, absolute
//!   targets restart at the image root, ELOOP after [`MAX_SYMLINKS`]), or the helpers built on
//!   it: [`RootFs::read`], [`RootFs::is_file`], [`RootFs::read_dir`];
//! - [`normalize`], [`dirname`], [`join_path`] for lexical path work; [`HostDir`] for a root
//!   that is a directory on disk.
//!
//! A symlink target is data: a layer may hold `a/b/link -> ../../../../etc/passwd` (runtimes
//! accept it) and it resolves to `/etc/passwd` here. Implementations never see `..` or a
//! symlink they would have to follow themselves, so none can escape the root.
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Linux `MAXSYMLINKS`: the kernel gives up with ELOOP after 40 links.
pub const MAX_SYMLINKS: usize = 40;

/// What `lstat` sees at a canonical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File,
    Dir,
    /// A symlink and its raw target (not resolved).
    Symlink(String),
    /// Device, fifo, socket: exists, but is neither a file nor a directory.
    Other,
}

/// Result of resolving a path inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Canonical path of the final object (absolute, no symlinks).
    pub path: String,
    /// Kind of the final object (never `Node::Symlink`).
    pub node: Node,
    /// Every symlink followed on the way, as its own canonical location, in the order followed.
    /// These must be kept in the image too, or the path stops working.
    pub symlinks: Vec<String>,
}

/// A read-only image root. Paths are absolute inside the root.
///
/// Implement the three primitives; use the provided methods (`resolve`, `read`, `is_file`,
/// `read_dir`), which follow symlinks chroot-style on top of them. The primitives are only ever
/// called by this module with canonical paths: absolute, no `.`/`..`, no symlink in any parent
/// (the last component may be a symlink for `lstat`). `lstat("/")` must return `Node::Dir`.
pub trait RootFs {
    /// `lstat` of a canonical path (no symlinks in the parents). `None` if absent.
    fn lstat(&self, canonical: &str) -> Option<Node>;
    /// Contents of the regular file at a canonical path.
    fn read_file(&self, canonical: &str) -> Option<Vec<u8>>;
    /// Entry names (not paths) of the directory at a canonical path, in any order.
    fn list_dir(&self, canonical: &str) -> Vec<String>;

    /// Resolve `path` like the kernel would inside a chroot at this root: `..` at `/` stays at
    /// `/`, absolute symlink targets start again at the root, at most [`MAX_SYMLINKS`] links.
    /// Relative `path`s are taken from `/`. `None` if a component is missing, a non-directory
    /// is used as a directory, or there are too many links.
    fn resolve(&self, path: &str) -> Option<Resolved> {
        resolve_with(self, path)
    }
    /// Contents of the file at `path`, following symlinks.
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        let r = self.resolve(path)?;
        if r.node != Node::File {
            return None;
        }
        self.read_file(&r.path)
    }
    /// Is `path` (after following symlinks) a regular file?
    fn is_file(&self, path: &str) -> bool {
        matches!(self.resolve(path), Some(Resolved { node: Node::File, .. }))
    }
    /// Sorted entry names of the directory at `path`, following symlinks. Empty if not a dir.
    fn read_dir(&self, path: &str) -> Vec<String> {
        match self.resolve(path) {
            Some(Resolved { node: Node::Dir, path, .. }) => {
                let mut v = self.list_dir(&path);
                v.sort();
                v
            }
            _ => Vec::new(),
        }
    }
}

fn resolve_with<F: RootFs + ?Sized>(fs: &F, path: &str) -> Option<Resolved> {
    let mut todo: VecDeque<String> = split(path).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut node = Node::Dir; // the root
    let mut symlinks = Vec::new();
    while let Some(comp) = todo.pop_front() {
        if node != Node::Dir {
            return None; // ENOTDIR: a file used as a directory
        }
        match comp.as_str() {
            "." => continue,
            ".." => {
                cur.pop(); // chroot semantics: `..` of `/` is `/`
                node = Node::Dir;
                continue;
            }
            _ => {}
        }
        cur.push(comp);
        let here = join(&cur);
        match fs.lstat(&here)? {
            Node::Symlink(target) => {
                if symlinks.len() >= MAX_SYMLINKS {
                    return None; // ELOOP
                }
                symlinks.push(here);
                cur.pop();
                if target.starts_with('/') {
                    cur.clear(); // absolute targets are relative to the image root
                }
                for (i, c) in split(&target).enumerate() {
                    todo.insert(i, c);
                }
                node = Node::Dir; // `cur` is a directory again
            }
            n => node = n,
        }
    }
    Some(Resolved { path: join(&cur), node, symlinks })
}

fn split(p: &str) -> impl Iterator<Item = String> + '_ {
    p.split('/').filter(|c| !c.is_empty()).map(str::to_string)
}

fn join(comps: &[String]) -> String {
    if comps.is_empty() {
        "/".to_string()
    } else {
        let mut s = String::new();
        for c in comps {
            s.push('/');
            s.push_str(c);
        }
        s
    }
}

/// Lexically normalise an absolute path (`.`/`..`/`//`), chroot style. Does not touch the fs.
pub fn normalize(path: &str) -> String {
    let mut cur: Vec<String> = Vec::new();
    for c in split(path) {
        match c.as_str() {
            "." => {}
            ".." => {
                cur.pop();
            }
            _ => cur.push(c),
        }
    }
    join(&cur)
}

/// Parent directory of a path, textually (like the loaders' `strrchr(path, '/')`): `..` is
/// kept, because after a symlink the kernel resolves `..` physically, not lexically.
/// `/` for `/x` and `/`.
pub fn dirname(path: &str) -> String {
    let t = path.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => t[..i].to_string(),
    }
}

/// `dir` + `/` + `name` without doubling the slash.
pub fn join_path(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// A directory on the host used as the image root. Only `lstat`, `readlink`, `open(O_NOFOLLOW)`
/// and `readdir` on canonical paths below the root are used, so nothing outside it is touched.
#[derive(Debug, Clone)]
pub struct HostDir {
    root: PathBuf,
}

impl HostDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    fn host(&self, canonical: &str) -> PathBuf {
        // Per the trait contract `canonical` has no `..` and no symlinked parents. Fold `..`
        // lexically anyway, so a caller breaking the contract still cannot climb out of the root.
        self.root.join(normalize(canonical).trim_start_matches('/'))
    }
}

impl RootFs for HostDir {
    fn lstat(&self, canonical: &str) -> Option<Node> {
        let p = self.host(canonical);
        let md = std::fs::symlink_metadata(&p).ok()?;
        let ft = md.file_type();
        Some(if ft.is_symlink() {
            let t = std::fs::read_link(&p).ok()?;
            Node::Symlink(t.to_string_lossy().into_owned())
        } else if ft.is_dir() {
            Node::Dir
        } else if ft.is_file() {
            Node::File
        } else {
            Node::Other
        })
    }
    fn read_file(&self, canonical: &str) -> Option<Vec<u8>> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW: if the tree changed under us since lstat, refuse rather than follow.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nofollow())
            .open(self.host(canonical))
            .ok()?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).ok()?;
        Some(buf)
    }
    fn list_dir(&self, canonical: &str) -> Vec<String> {
        match std::fs::read_dir(self.host(canonical)) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// O_NOFOLLOW without a libc dependency (value is per-arch in Linux's uapi headers).
const fn libc_o_nofollow() -> i32 {
    if cfg!(any(target_arch = "aarch64", target_arch = "arm", target_arch = "powerpc", target_arch = "powerpc64")) {
        0o100000
    } else {
        0o400000 // x86, x86_64, riscv, s390x, loongarch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Tiny in-memory fs for unit tests.
    struct Mem(BTreeMap<String, Node>);
    impl RootFs for Mem {
        fn lstat(&self, p: &str) -> Option<Node> {
            if p == "/" {
                return Some(Node::Dir);
            }
            self.0.get(p).cloned()
        }
        fn read_file(&self, _: &str) -> Option<Vec<u8>> {
            Some(Vec::new())
        }
        fn list_dir(&self, _: &str) -> Vec<String> {
            Vec::new()
        }
    }
    fn mem(entries: &[(&str, Node)]) -> Mem {
        Mem(entries.iter().map(|(p, n)| (p.to_string(), n.clone())).collect())
    }
    fn sl(t: &str) -> Node {
        Node::Symlink(t.into())
    }

    #[test]
    fn merged_usr_interpreter() {
        let fs = mem(&[
            ("/lib64", sl("usr/lib64")),
            ("/lib", sl("usr/lib")),
            ("/usr", Node::Dir),
            ("/usr/lib", Node::Dir),
            ("/usr/lib64", Node::Dir),
            ("/usr/lib64/ld-linux-x86-64.so.2", sl("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")),
            ("/usr/lib/x86_64-linux-gnu", Node::Dir),
            ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Node::File),
        ]);
        let r = fs.resolve("/lib64/ld-linux-x86-64.so.2").unwrap();
        assert_eq!(r.path, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        assert_eq!(r.node, Node::File);
        assert_eq!(r.symlinks, vec!["/lib64", "/usr/lib64/ld-linux-x86-64.so.2", "/lib"]);
    }

    #[test]
    fn dotdot_and_absolute_targets_stay_inside() {
        let fs = mem(&[
            ("/a", Node::Dir),
            ("/a/up", sl("../../../../../etc/passwd")),
            ("/a/abs", sl("/etc/passwd")),
            ("/etc", Node::Dir),
            ("/etc/passwd", Node::File),
        ]);
        assert_eq!(fs.resolve("/a/up").unwrap().path, "/etc/passwd");
        assert_eq!(fs.resolve("/a/abs").unwrap().path, "/etc/passwd");
        assert_eq!(fs.resolve("/../../a/../etc/passwd").unwrap().path, "/etc/passwd");
    }

    #[test]
    fn loops_and_enotdir() {
        let fs = mem(&[("/x", sl("y")), ("/y", sl("x")), ("/f", Node::File)]);
        assert!(fs.resolve("/x").is_none());
        assert!(fs.resolve("/f/g").is_none());
        assert!(fs.resolve("/f/..").is_none(), "a file is not a directory, even for ..");
        assert!(fs.resolve("/missing").is_none());
        // 40 links are allowed, 41 are not.
        let mut e: Vec<(String, Node)> = (0..41).map(|i| (format!("/l{i}"), sl(&format!("l{}", i + 1)))).collect();
        e.push(("/l41".into(), Node::File));
        let fs = Mem(e.into_iter().collect());
        assert!(fs.resolve("/l1").is_some());
        assert!(fs.resolve("/l0").is_none());
    }

    #[test]
    fn normalize_and_dirname() {
        assert_eq!(normalize("/a/./b/../c//d"), "/a/c/d");
        assert_eq!(normalize("/../.."), "/");
        assert_eq!(dirname("/usr/bin/x"), "/usr/bin");
        assert_eq!(dirname("/x"), "/");
        assert_eq!(dirname("/"), "/");
        assert_eq!(dirname("/a/b/../c"), "/a/b/..");
        assert_eq!(join_path("/", "x"), "/x");
    }
}

#[cfg(test)]
mod hostdir_tests {
    use super::*;

    #[test]
    fn hostdir_never_leaves_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(tmp.path().join("secret"), "host").unwrap();
        std::fs::write(root.join("secret"), "inside").unwrap();
        std::os::unix::fs::symlink("../../../../secret", root.join("etc/rel")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("etc/abs")).unwrap();
        let fs = HostDir::new(&root);
        assert_eq!(fs.read("/etc/rel").unwrap(), b"inside");
        let r = fs.resolve("/etc/rel").unwrap();
        assert_eq!((r.path.as_str(), r.symlinks), ("/secret", vec!["/etc/rel".to_string()]));
        // The absolute target names a host path; inside the root it does not exist.
        assert!(fs.resolve("/etc/abs").is_none());
        assert!(fs.read("/../secret").unwrap() == b"inside");
        // Even the raw primitives fold `..` inside the root.
        assert_eq!(fs.read_file("/../secret").unwrap(), b"inside");
        assert_eq!(fs.lstat("/"), Some(Node::Dir));
        assert_eq!(fs.read_dir("/etc"), ["abs", "rel"]);
    }
}
