use super::*;
use crate::trace::record::RawPath;
use std::collections::BTreeMap;

/// An in-memory image: path -> node, file contents.
#[derive(Default)]
struct Fake(BTreeMap<String, (Node, Vec<u8>)>);

impl Fake {
    fn dir(mut self, p: &str) -> Self {
        self.0.insert(p.into(), (Node::Dir, vec![]));
        self
    }
    fn file(mut self, p: &str, body: &[u8]) -> Self {
        self.0.insert(p.into(), (Node::File, body.to_vec()));
        self
    }
    fn link(mut self, p: &str, t: &str) -> Self {
        self.0.insert(p.into(), (Node::Symlink(t.into()), vec![]));
        self
    }
}

impl RootFs for Fake {
    fn lstat(&self, p: &str) -> Option<Node> {
        if p == "/" {
            return Some(Node::Dir);
        }
        self.0.get(p).map(|x| x.0.clone())
    }
    fn read_file(&self, p: &str) -> Option<Vec<u8>> {
        self.0.get(p).map(|x| x.1.clone())
    }
    fn list_dir(&self, p: &str) -> Vec<String> {
        let pre = format!("{}/", p.trim_end_matches('/'));
        self.0.keys().filter_map(|k| k.strip_prefix(&pre)).filter(|r| !r.contains('/')).map(str::to_string).collect()
    }
}

fn image() -> Fake {
    Fake::default()
        .dir("/usr")
        .dir("/usr/lib")
        .dir("/usr/bin")
        .link("/lib", "usr/lib")
        .link("/bin", "usr/bin")
        .file("/usr/lib/libz.so.1", b"\x7fELF")
        .dir("/data")
        .dir("/data/x")
        .file("/data/x/f", b"")
        .link("/lnk", "/data/x")
        .link("/loop", "/loop")
        .link("/dangling", "/nowhere/file")
        .dir("/etc")
        .dir("/etc/alternatives")
        .link("/etc/alternatives/py", "/usr/bin/python3")
        .link("/usr/bin/py", "/etc/alternatives/py")
        .file("/usr/bin/python3", b"\x7fELF")
        .file("/usr/bin/env", b"\x7fELF")
        .file("/app.sh", b"#!/usr/bin/env python3\n")
        .dir("/plugins")
        .file("/plugins/a.py", b"")
        .dir("/plugins/sub")
        .file("/plugins/sub/deep.py", b"")
}

fn ev(syscall: &str, op: Op, path: &str, result: &str) -> Event {
    Event { syscall: syscall.into(), op, path: RawPath::Text(path.into()), to: None, flags: None, result: result.into(), pid: 7, exe: "python3".into(), probe: Some("GET /db".into()) }
}

fn kept(n: &Needs) -> Vec<String> {
    let mut v: Vec<String> = n.reads.iter().chain(&n.dirs).chain(&n.elf_roots).map(|x| x.path.clone()).collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn dotdot_after_a_symlink_is_physical() {
    let fs = image();
    // /lnk -> /data/x, so /lnk/.. is /data, not /.
    let w = walk(&fs, "/lnk/../x/f");
    assert_eq!(w.links, vec!["/lnk"]);
    assert_eq!(w.found, Some(("/data/x/f".into(), Node::File)));
    // Merged /usr: /lib/libz.so.1 keeps the /lib symlink and the file.
    let w = walk(&fs, "/lib/libz.so.1");
    assert_eq!(w.links, vec!["/lib"]);
    assert_eq!(w.found.unwrap().0, "/usr/lib/libz.so.1");
    // .. at / stays at / (chroot).
    assert_eq!(walk(&fs, "/../../data/x/f").found.unwrap().0, "/data/x/f");
}

#[test]
fn loops_dangling_and_alternatives_chains() {
    let fs = image();
    assert_eq!(walk(&fs, "/loop").found, None);
    let w = walk(&fs, "/dangling");
    assert_eq!((w.links.clone(), w.found.clone()), (vec!["/dangling".to_string()], None));
    let w = walk(&fs, "/bin/py");
    assert_eq!(w.links, vec!["/bin", "/usr/bin/py", "/etc/alternatives/py"]);
    assert_eq!(w.found.unwrap().0, "/usr/bin/python3");
}

#[test]
fn needs_keep_existing_paths_whatever_the_result_and_only_parents_of_created_ones() {
    let fs = image();
    let trace = vec![
        ev("openat", Op::Open, "/lnk/f", "EACCES"),
        ev("openat", Op::Open, "/data/x/new.log", "ok"),
        ev("newfstatat", Op::Stat, "/data/absent/y", "ENOENT"),
        ev("openat", Op::Open, "/proc/self/status", "ok"),
        ev("openat", Op::Open, "/lib/libz.so.1", "ok"),
    ];
    let n = needs(&fs, &[TraceFile { header: Header { config_digest: "x".into(), imgslim_version: "0".into() }, events: trace }]);
    assert_eq!(kept(&n), vec!["/data/x", "/data/x/f", "/lib", "/lnk", "/usr/lib/libz.so.1"]);
    // The directory kept for a created file is kept as a directory only.
    assert!(n.dirs.iter().any(|d| d.path == "/data/x") && !n.reads.iter().any(|d| d.path == "/data/x"));
    assert_eq!(n.reads[0].reason, "traced: openat by python3 (pid 7) during GET /db");
    assert!(n.elf_roots.iter().any(|d| d.path == "/usr/lib/libz.so.1"));
}

#[test]
fn listed_directories_keep_entries_and_shebang_chains_keep_interpreters() {
    let fs = image();
    let trace = vec![ev("getdents64", Op::List, "/plugins", "ok"), ev("execve", Op::Exec, "/app.sh", "ok")];
    let n = needs(&fs, &[TraceFile { header: Header { config_digest: "x".into(), imgslim_version: "0".into() }, events: trace }]);
    let k = kept(&n);
    for p in ["/plugins", "/plugins/a.py", "/plugins/sub", "/app.sh", "/usr/bin/env"] {
        assert!(k.contains(&p.to_string()), "{p} in {k:?}");
    }
    // A listed subdirectory is kept as a directory, not its contents.
    assert!(!k.contains(&"/plugins/sub/deep.py".to_string()));
    assert!(n.elf_roots.iter().any(|d| d.path == "/usr/bin/env"), "the #! interpreter's ELF closure");
}
