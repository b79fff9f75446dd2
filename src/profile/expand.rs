//! Expanding keep globs against the image: chroot-style (via `elf::RootFs`), canonical output,
//! matched directories collapsed into one subtree entry when nothing below them is excluded,
//! and the targets of kept symlinks kept too (or the link would dangle).
use std::collections::{BTreeMap, BTreeSet};

use globset::{GlobMatcher, GlobSet};

use super::schema::glob;
use crate::elf::rootfs::{dirname, join_path};
use crate::elf::{Node, RootFs};

/// Upper bound on directory entries visited by one expansion (hostile or huge trees).
const MAX_VISITS: usize = 2_000_000;
const MAX_DEPTH: usize = 64;

/// Expansion results: canonical path → `true` when it stands for the whole subtree.
#[derive(Debug, Default)]
pub struct Expanded {
    pub paths: BTreeMap<String, String>,
    /// Paths kept because a kept symlink points at them: path → the symlink.
    pub link_targets: BTreeMap<String, String>,
    pub truncated: bool,
}

pub struct Expander<'a> {
    fs: &'a dyn RootFs,
    exclude: &'a GlobSet,
    visits: usize,
    out: Expanded,
    followed: BTreeSet<String>,
}

fn is_meta(c: &str) -> bool {
    c.contains(['*', '?', '[', '{'])
}

impl<'a> Expander<'a> {
    pub fn new(fs: &'a dyn RootFs, exclude: &'a GlobSet) -> Self {
        Expander { fs, exclude, visits: 0, out: Expanded::default(), followed: BTreeSet::new() }
    }

    pub fn finish(self) -> Expanded {
        self.out
    }

    /// Keep every path matching `pattern` (absolute glob). Returns how many matched.
    pub fn add(&mut self, pattern: &str, what: &str) -> usize {
        let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
        let lit = comps.iter().take_while(|c| !is_meta(c)).count();
        let prefix = format!("/{}", comps[..lit].join("/"));
        let Some(r) = self.fs.resolve(&prefix) else { return 0 };
        if lit == comps.len() {
            // A literal path: keep the symlinks on the way and the object itself.
            if self.exclude.is_match(&r.path) {
                return 0;
            }
            for s in &r.symlinks {
                self.out.paths.entry(s.clone()).or_insert_with(|| format!("{what} (symlink on the way to {})", r.path));
            }
            self.keep_entry(&r.path, r.node.clone(), what);
            return 1;
        }
        if r.node != Node::Dir {
            return 0;
        }
        let rest: Vec<&str> = comps[lit..].to_vec();
        let full = if r.path == "/" { format!("/{}", rest.join("/")) } else { format!("{}/{}", r.path, rest.join("/")) };
        let Ok(g) = glob(&full) else { return 0 };
        let full_m = g.compile_matcher();
        let comp_m: Vec<Option<GlobMatcher>> = rest
            .iter()
            .map(|c| if *c == "**" { None } else { glob(c).ok().map(|g| g.compile_matcher()) })
            .collect();
        let mut n = 0;
        self.walk_match(&r.path, 0, &comp_m, &full_m, what, &mut n);
        if n > 0 {
            for s in &r.symlinks {
                self.out.paths.entry(s.clone()).or_insert_with(|| format!("{what} (symlink on the way to {})", r.path));
            }
        }
        n
    }

    fn walk_match(&mut self, dir: &str, depth: usize, comps: &[Option<GlobMatcher>], full: &GlobMatcher, what: &str, n: &mut usize) {
        if depth >= MAX_DEPTH {
            return;
        }
        let mut names = self.fs.list_dir(dir);
        names.sort();
        for name in names {
            self.visits += 1;
            if self.visits > MAX_VISITS {
                self.out.truncated = true;
                return;
            }
            let p = join_path(dir, &name);
            // Prune: until the first `**`, component `depth` must match pattern component `depth`.
            let past_star = comps.iter().take(depth + 1).any(|c| c.is_none());
            if !past_star {
                match comps.get(depth) {
                    Some(Some(m)) if m.is_match(&name) => {}
                    _ => continue,
                }
            }
            let Some(node) = self.fs.lstat(&p) else { continue };
            if full.is_match(&p) {
                if !self.exclude.is_match(&p) {
                    *n += 1;
                    self.keep_entry(&p, node, what);
                }
                continue;
            }
            if node == Node::Dir && (past_star || depth + 1 < comps.len()) {
                self.walk_match(&p, depth + 1, comps, full, what, n);
            }
        }
    }

    /// Keep one matched canonical entry (not excluded).
    fn keep_entry(&mut self, p: &str, node: Node, what: &str) {
        match node {
            Node::Dir => {
                let mut items = Vec::new();
                let mut links = Vec::new();
                if self.subtree(p, 0, &mut items, &mut links) {
                    self.out.paths.entry(p.to_string()).or_insert_with(|| what.to_string());
                } else {
                    for i in items {
                        self.out.paths.entry(i).or_insert_with(|| what.to_string());
                    }
                }
                for l in links {
                    self.follow(&l);
                }
            }
            Node::Symlink(_) => {
                self.out.paths.entry(p.to_string()).or_insert_with(|| what.to_string());
                self.follow(p);
            }
            _ => {
                self.out.paths.entry(p.to_string()).or_insert_with(|| what.to_string());
            }
        }
    }

    /// Walk a kept directory. Returns true when nothing below is excluded (keep it whole);
    /// otherwise `items` gets the largest clean pieces. Symlinks inside go to `links`.
    fn subtree(&mut self, dir: &str, depth: usize, items: &mut Vec<String>, links: &mut Vec<String>) -> bool {
        if depth >= MAX_DEPTH {
            return true;
        }
        let mut names = self.fs.list_dir(dir);
        names.sort();
        let mut clean = true;
        let mut mine = Vec::new();
        for name in names {
            self.visits += 1;
            if self.visits > MAX_VISITS {
                self.out.truncated = true;
                return clean;
            }
            let p = join_path(dir, &name);
            if self.exclude.is_match(&p) {
                clean = false;
                continue;
            }
            match self.fs.lstat(&p) {
                Some(Node::Dir) => {
                    let mut sub = Vec::new();
                    if self.subtree(&p, depth + 1, &mut sub, links) {
                        mine.push(p);
                    } else {
                        clean = false;
                        mine.extend(sub);
                    }
                }
                Some(Node::Symlink(_)) => {
                    links.push(p.clone());
                    mine.push(p);
                }
                Some(_) => mine.push(p),
                None => {}
            }
        }
        items.extend(mine);
        clean
    }

    /// Keep what a kept symlink points at (and every symlink on the way), unless excluded.
    fn follow(&mut self, link: &str) {
        if !self.followed.insert(link.to_string()) {
            return;
        }
        let Some(r) = self.fs.resolve(link) else { return };
        if self.exclude.is_match(&r.path) || self.covered(&r.path) {
            return;
        }
        let why = format!("target of kept symlink {link}");
        for s in r.symlinks.iter().skip(1) {
            self.out.link_targets.entry(s.clone()).or_insert_with(|| why.clone());
        }
        match r.node {
            Node::Dir => {
                let mut items = Vec::new();
                let mut links = Vec::new();
                if self.subtree(&r.path, 0, &mut items, &mut links) {
                    self.out.link_targets.entry(r.path.clone()).or_insert(why);
                } else {
                    for i in items {
                        self.out.link_targets.entry(i).or_insert_with(|| why.clone());
                    }
                }
                for l in links {
                    self.follow(&l);
                }
            }
            _ => {
                self.out.link_targets.entry(r.path).or_insert(why);
            }
        }
    }

    /// Is `p` or one of its ancestors already kept?
    fn covered(&self, p: &str) -> bool {
        let mut cur = p.to_string();
        loop {
            if self.out.paths.contains_key(&cur) || self.out.link_targets.contains_key(&cur) {
                return true;
            }
            if cur == "/" {
                return false;
            }
            cur = dirname(&cur);
        }
    }
}

/// Does any path matching `pattern` exist? (First match found.)
pub fn exists(fs: &dyn RootFs, pattern: &str) -> Option<String> {
    let empty = GlobSet::empty();
    let mut e = Expander::new(fs, &empty);
    e.add(pattern, "");
    let out = e.finish();
    out.paths.into_keys().find(|p| fs.lstat(p).is_some())
}
