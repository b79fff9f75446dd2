//! Trace → needs: each recorded path resolved inside the image the way the kernel resolved it
//! inside the container (chroot semantics, component by component, physical `..`), keeping
//! every symlink met. No ptrace here: this reads trace files and the image tree only.
//!
//! What a path keeps: the object if it exists in the image, whatever the traced result (an
//! EACCES under a uid mapping may hide a needed file); for a path created at run time (the
//! call succeeded, the image has no such path) its nearest existing directory; for a failed
//! lookup of an absent path, only the symlinks crossed. A listed directory keeps its entries.
use super::record::{Event, TraceFile};
#[cfg(test)]
use super::record::Header;
use super::table::Op;
use crate::elf::{Node, RootFs};
use crate::plan::{Need, Needs};
use std::collections::{HashSet, VecDeque};

const MAX_SYMLINKS: usize = 40;

/// Where a path led in the image.
#[derive(Debug, Default, PartialEq)]
pub struct Walk {
    /// Each symlink crossed, at its own canonical location, in order.
    pub links: Vec<String>,
    /// The canonical path of the final object and its kind, if it exists.
    pub found: Option<(String, Node)>,
    /// The deepest existing directory reached (the parent of a path that is not there).
    pub parent: String,
}

fn join(comps: &[String]) -> String {
    if comps.is_empty() {
        "/".into()
    } else {
        format!("/{}", comps.join("/"))
    }
}

fn comps(p: &str) -> impl Iterator<Item = String> + '_ {
    p.split('/').filter(|c| !c.is_empty()).map(str::to_string)
}

/// Resolve `path` (absolute) inside `fs`, following every symlink, the last one included.
pub fn walk(fs: &dyn RootFs, path: &str) -> Walk {
    let mut todo: VecDeque<String> = comps(path).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut w = Walk::default();
    let mut node = Node::Dir;
    let mut failed = false;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => continue,
            // Physical: `cur` is always a symlink-free path, so popping it is the real parent.
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        if node != Node::Dir {
            failed = true; // ENOTDIR
            break;
        }
        cur.push(c);
        match fs.lstat(&join(&cur)) {
            None => {
                cur.pop();
                w.parent = join(&cur);
                return w;
            }
            Some(Node::Symlink(target)) => {
                if w.links.len() >= MAX_SYMLINKS {
                    failed = true; // ELOOP
                    break;
                }
                w.links.push(join(&cur));
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                for (i, t) in comps(&target).enumerate() {
                    todo.insert(i, t);
                }
                node = Node::Dir;
            }
            Some(n) => node = n,
        }
    }
    if !failed {
        w.found = Some((join(&cur), node));
    }
    w.parent = join(&cur[..cur.len().saturating_sub(1)]);
    w
}

/// Paths the tracer reports but that are not the image's files.
fn virtual_fs(path: &str) -> bool {
    ["/proc", "/sys", "/dev"].iter().any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// The reason `--explain` shows: `traced: openat O_RDONLY by python3 (pid 7) during GET /db`.
pub fn reason(e: &Event) -> String {
    let mut s = format!("traced: {}", e.syscall);
    if let Some(f) = &e.flags {
        s.push(' ');
        s.push_str(f);
    }
    s.push_str(&format!(" by {} (pid {})", e.exe, e.pid));
    if let Some(p) = &e.probe {
        s.push_str(&format!(" during {p}"));
    }
    s
}

/// Accumulates the needs of a union of traces, each path once (first reason wins).
pub struct Collector<'a> {
    fs: &'a dyn RootFs,
    seen: HashSet<(String, u8)>,
    pub needs: Needs,
}

const FILE: u8 = 0;
const DIR: u8 = 1;
const ELF: u8 = 2;
/// A listed directory's entries are their own needs: `--level traced` drops them in module
/// trees, and a path also touched directly must keep that need.
const LISTED_FILE: u8 = 3;
const LISTED_DIR: u8 = 4;

impl<'a> Collector<'a> {
    pub fn new(fs: &'a dyn RootFs) -> Collector<'a> {
        Collector { fs, seen: HashSet::new(), needs: Needs::default() }
    }

    fn push(&mut self, what: u8, path: &str, why: &str) {
        if !self.seen.insert((path.to_string(), what)) {
            return;
        }
        let n = Need::new(path, why);
        match what {
            FILE | LISTED_FILE => self.needs.reads.push(n),
            DIR | LISTED_DIR => self.needs.dirs.push(n),
            _ => {
                self.needs.elf_roots.push(n.clone());
                self.needs.runs.push(n);
            }
        }
    }

    /// Keep what one path reached: its symlinks, and the object (a directory as itself only).
    fn keep_path(&mut self, path: &str, ok: bool, why: &str) -> Option<(String, Node)> {
        self.keep_as(path, ok, why, (FILE, DIR))
    }

    fn keep_as(&mut self, path: &str, ok: bool, why: &str, (file, dir): (u8, u8)) -> Option<(String, Node)> {
        let w = walk(self.fs, path);
        for l in &w.links {
            self.push(dir, l, why);
        }
        match &w.found {
            Some((p, Node::Dir)) => self.push(dir, p, why),
            Some((p, _)) => self.push(file, p, why),
            // Created at run time: its parents only.
            None if ok => self.push(dir, &w.parent, why),
            None => {}
        }
        w.found
    }

    pub fn add(&mut self, e: &Event) {
        let Ok(path) = std::str::from_utf8(e.path.as_bytes()) else { return };
        if virtual_fs(path) {
            return;
        }
        let why = reason(e);
        let ok = e.result == "ok";
        let found = self.keep_path(path, ok, &why);
        if let Some(to) = e.to.as_ref().and_then(|t| std::str::from_utf8(t.as_bytes()).ok()) {
            self.keep_path(to, ok, &why);
        }
        match (e.op, found) {
            (Op::List, Some((dir, Node::Dir))) => self.entries(&dir, &why),
            (Op::Exec, Some((file, Node::File))) => self.exec(&file, &why, 0),
            (Op::Open, Some((file, Node::File))) if is_shared_object(&file) => self.push(ELF, &file, &why),
            _ => {}
        }
    }

    /// A listed directory: an app that lists a plugin directory needs what it listed.
    fn entries(&mut self, dir: &str, why: &str) {
        let why = format!("{why}{}{dir})", crate::plan::traced::LISTED);
        let mut names = self.fs.list_dir(dir);
        names.sort();
        for name in names {
            let p = if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") };
            match self.fs.lstat(&p) {
                Some(Node::Dir) => self.push(LISTED_DIR, &p, &why),
                Some(_) => {
                    self.keep_as(&p, true, &why, (LISTED_FILE, LISTED_DIR));
                }
                None => {}
            }
        }
    }

    /// An executed file: its ELF closure (PT_INTERP included), or its `#!` interpreter, which
    /// the kernel opens without a syscall the tracer sees.
    fn exec(&mut self, file: &str, why: &str, depth: usize) {
        if self.seen.contains(&(file.to_string(), ELF)) {
            return;
        }
        let Some(head) = self.fs.read_file(file) else { return };
        if head.starts_with(b"\x7fELF") {
            self.push(ELF, file, why);
            return;
        }
        if depth < 4 && head.starts_with(b"#!") {
            let line = head[2..].split(|&b| b == b'\n').next().unwrap_or_default();
            let line = String::from_utf8_lossy(line);
            if let Some(interp) = line.split_whitespace().next() {
                let why = format!("{why} (#! of {file})");
                if let Some((p, Node::File)) = self.keep_path(interp, true, &why) {
                    self.exec(&p, &why, depth + 1);
                }
            }
        }
    }
}

fn is_shared_object(p: &str) -> bool {
    let name = p.rsplit('/').next().unwrap_or(p);
    name.ends_with(".so") || name.contains(".so.")
}

/// The needs of several traces (their union).
pub fn needs(fs: &dyn RootFs, traces: &[TraceFile]) -> Needs {
    let mut c = Collector::new(fs);
    for t in traces {
        for e in &t.events {
            c.add(e);
        }
    }
    c.needs
}

/// What `verify` tells the user to `--keep`: the paths the candidate's traced run failed to
/// reach that exist in the original and not in the candidate, canonical in the original,
/// sorted, each once.
pub fn missing(events: &[Event], original: &dyn RootFs, candidate: &dyn RootFs) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for e in events.iter().filter(|e| e.result != "ok") {
        let Ok(path) = std::str::from_utf8(e.path.as_bytes()) else { continue };
        if virtual_fs(path) || walk(candidate, path).found.is_some() {
            continue;
        }
        if let Some((p, _)) = walk(original, path).found {
            out.insert(p);
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests;
