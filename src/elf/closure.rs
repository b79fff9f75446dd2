//! The ELF closure: every file the dynamic loader would open to start each root, found by
//! replaying the loader's own search (glibc `_dl_map_object`, musl `load_library`) against the
//! image instead of the host.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;

use super::parse::{self, ElfInfo, ParseError};
use super::rootfs::{dirname, join_path, Node, RootFs};
use super::search::{self, Flavor};

/// Inputs from the image config that change what the loader does.
#[derive(Debug, Clone)]
pub struct ClosureOptions {
    /// `LD_LIBRARY_PATH` from the image `Env`, if set.
    pub ld_library_path: Option<String>,
    /// `LD_PRELOAD` from the image `Env`, if set (space or colon separated, like the loader).
    pub ld_preload: Option<String>,
    /// Working directory, for relative search-path elements (image `WorkingDir`, default `/`).
    pub cwd: String,
}

impl Default for ClosureOptions {
    fn default() -> Self {
        ClosureOptions { ld_library_path: None, ld_preload: None, cwd: "/".into() }
    }
}

/// Why a path is needed. `of` fields name canonical paths of the object that needed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// One of the roots the caller asked about.
    Root,
    /// The program interpreter named by PT_INTERP of `of`.
    Interp { of: String },
    /// The image's standard loader, for a shared library `of` used as a root (it has no PT_INTERP).
    Loader { of: String },
    /// `name` from DT_NEEDED of `of`.
    Needed { name: String, of: String },
    /// A `glibc-hwcaps/…` (or legacy hwcap subdir) build of `name` needed by `of`: the CPU at run
    /// time decides which variant loads, so all are kept.
    HwcapsVariant { name: String, of: String },
    /// Loaded because of `LD_PRELOAD` or `/etc/ld.so.preload` (`source`).
    Preload { name: String, source: String },
    /// A loader configuration file read at run time (`/etc/ld.so.cache`, `/etc/ld.so.preload`,
    /// `/etc/ld-musl-<arch>.path`), read by the loader `of`.
    LoaderConfig { of: String },
    /// A symlink followed on the way to `to`.
    Symlink { to: String },
}

impl Reason {
    /// The path whose loading needed this one (a symlink: the path it leads to).
    pub fn requester(&self) -> Option<&str> {
        match self {
            Reason::Interp { of } | Reason::Loader { of } | Reason::Needed { of, .. } | Reason::HwcapsVariant { of, .. } | Reason::LoaderConfig { of } => Some(of),
            Reason::Symlink { to } => Some(to),
            Reason::Root | Reason::Preload { .. } => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Root => write!(f, "root"),
            Reason::Interp { of } => write!(f, "PT_INTERP of {of}"),
            Reason::Loader { of } => write!(f, "dynamic loader for shared library {of}"),
            Reason::Needed { name, of } => write!(f, "DT_NEEDED {name} of {of}"),
            Reason::HwcapsVariant { name, of } => write!(f, "hwcaps variant of DT_NEEDED {name} of {of}"),
            Reason::Preload { name, source } => write!(f, "preload {name} from {source}"),
            Reason::LoaderConfig { of } => write!(f, "loader configuration read by {of}"),
            Reason::Symlink { to } => write!(f, "symlink on the way to {to}"),
        }
    }
}

/// One kept path: the first reason found (roots in the order given) and the root it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub reason: Reason,
    /// The root (as the caller passed it) whose closure first reached this path.
    pub root: String,
}

impl fmt::Display for Kept {
    /// e.g. `DT_NEEDED libssl.so.3 of /usr/bin/python3.11 (root: /usr/bin/python3)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (root: {})", self.reason, self.root)
    }
}

/// A dependency the loader would fail on (or that we could not read). Never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unresolved {
    /// DT_NEEDED / preload name / interpreter path.
    pub name: String,
    /// Canonical path of the object that asked for it.
    pub requester: String,
    /// The root whose load hit this.
    pub root: String,
    /// Why: "not found", "wrong ELF class", "invalid ELF header: …".
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    /// Every path to keep (canonical files and every symlink on the way), with its reason.
    pub kept: BTreeMap<String, Kept>,
    /// For each root (as passed): every path its load needs, the root itself included.
    pub per_root: BTreeMap<String, BTreeSet<String>>,
    pub unresolved: BTreeSet<Unresolved>,
    /// Entries of `/etc/ld.so.preload` (glibc images only), in file order.
    pub preload_file: Vec<String>,
    /// Problems that are not a missing library: a root that does not exist, malformed ELF, …
    pub warnings: BTreeSet<String>,
}

/// Compute the closure of `roots` (absolute paths inside `fs`). Roots that are not ELF (scripts,
/// data) are kept but contribute nothing else; static ELF contributes only itself.
pub fn closure(fs: &dyn RootFs, roots: &[String], opts: &ClosureOptions) -> Closure {
    let mut cx = Cx { fs, opts, out: Closure::default(), elf_cache: HashMap::new(), hwcap_cache: HashMap::new(), conf_dirs: None };
    for root in roots {
        cx.root(root);
    }
    cx.out
}

/// One loaded object in a simulated process.
struct Obj {
    /// Path the loader opened it by (what `$ORIGIN` is derived from for libraries).
    path: String,
    canonical: String,
    info: Rc<ElfInfo>,
    /// The object whose dependency list caused it to load (glibc `l_loader`, musl `needed_by`).
    loader: Option<usize>,
    /// Names it answers to when a later DT_NEEDED asks (requested names, DT_SONAME for glibc).
    names: Vec<String>,
}

struct Cx<'a> {
    fs: &'a dyn RootFs,
    opts: &'a ClosureOptions,
    out: Closure,
    /// canonical path → parse result (shared across roots: libc is parsed once).
    elf_cache: HashMap<String, Option<Result<Rc<ElfInfo>, ParseError>>>,
    hwcap_cache: HashMap<String, Rc<Vec<String>>>,
    conf_dirs: Option<Rc<Vec<String>>>,
}

/// Per-root simulation state (one process).
struct Proc {
    root: String,
    flavor: Flavor,
    /// The interpreter as named by PT_INTERP (or the default for this machine).
    interp: Option<String>,
    interp_obj: Option<usize>,
    main_info: Rc<ElfInfo>,
    objs: Vec<Obj>,
    by_canonical: HashMap<String, usize>,
    needs: BTreeSet<String>,
    queue: VecDeque<usize>,
}

impl<'a> Cx<'a> {
    fn elf(&mut self, canonical: &str) -> Option<Result<Rc<ElfInfo>, ParseError>> {
        if let Some(r) = self.elf_cache.get(canonical) {
            return r.clone();
        }
        let r = self.fs.read_file(canonical).map(|b| parse::parse(&b).map(Rc::new));
        self.elf_cache.insert(canonical.to_string(), r.clone());
        r
    }

    fn keep(&mut self, p: &mut Proc, path: &str, reason: Reason) {
        p.needs.insert(path.to_string());
        self.out.kept.entry(path.to_string()).or_insert(Kept { reason, root: p.root.clone() });
    }

    /// Keep `path` (as resolved) plus every symlink on the way; returns the canonical path.
    fn keep_resolved(&mut self, p: &mut Proc, path: &str, reason: Reason) -> Option<String> {
        let r = self.fs.resolve(path)?;
        for s in &r.symlinks {
            self.keep(p, s, Reason::Symlink { to: r.path.clone() });
        }
        self.keep(p, &r.path, reason);
        Some(r.path)
    }

    fn unresolved(&mut self, p: &Proc, name: &str, requester: &str, why: &str) {
        self.out.unresolved.insert(Unresolved {
            name: name.to_string(),
            requester: requester.to_string(),
            root: p.root.clone(),
            why: why.to_string(),
        });
    }

    fn root(&mut self, root: &str) {
        let mut needs = BTreeSet::new();
        let Some(res) = self.fs.resolve(root) else {
            self.out.warnings.insert(format!("{root}: root does not exist in the image"));
            self.out.per_root.insert(root.to_string(), needs);
            return;
        };
        let info = match self.elf(&res.path) {
            Some(Ok(i)) => i,
            other => {
                // Not ELF (script, data) or unreadable: keep the path itself, nothing more.
                if let Some(Err(e @ ParseError::Malformed(_))) = other {
                    self.out.warnings.insert(format!("{}: {e}", res.path));
                }
                for s in &res.symlinks {
                    needs.insert(s.clone());
                    self.out.kept.entry(s.clone()).or_insert(Kept { reason: Reason::Symlink { to: res.path.clone() }, root: root.into() });
                }
                needs.insert(res.path.clone());
                self.out.kept.entry(res.path.clone()).or_insert(Kept { reason: Reason::Root, root: root.into() });
                self.out.per_root.insert(root.to_string(), needs);
                return;
            }
        };
        let flavor = match &info.interp {
            Some(i) => search::flavor_of_interp(i),
            None => search::guess_flavor(self.fs, &info),
        };
        // A shared library as root (a plugin, a Python extension): whatever program loads it
        // uses the image's standard loader path, which we keep as well.
        // A static-pie executable (no PT_INTERP, DF_1_PIE) needs no loader at all.
        let default_interp = if info.interp.is_none() && info.is_dynamic && !info.is_pie() {
            search::default_interp(flavor, &info).filter(|p| self.fs.is_file(p))
        } else {
            None
        };
        let interp = info.interp.clone().or(default_interp.clone());
        let mut p = Proc {
            root: root.to_string(),
            flavor,
            interp: interp.clone(),
            interp_obj: None,
            main_info: info.clone(),
            objs: Vec::new(),
            by_canonical: HashMap::new(),
            needs,
            queue: VecDeque::new(),
        };
        for s in &res.symlinks {
            self.keep(&mut p, s, Reason::Symlink { to: res.path.clone() });
        }
        self.keep(&mut p, &res.path, Reason::Root);
        // The main program's $ORIGIN comes from /proc/self/exe, i.e. the canonical path.
        p.objs.push(Obj { path: res.path.clone(), canonical: res.path.clone(), info: info.clone(), loader: None, names: Vec::new() });
        p.by_canonical.insert(res.path.clone(), 0);

        if interp.is_none() && info.needed.is_empty() {
            self.finish(p);
            return; // static or static-pie: needs nothing else
        }

        if let Some(ip) = &interp {
            let reason = if default_interp.is_some() {
                Reason::Loader { of: res.path.clone() }
            } else {
                Reason::Interp { of: res.path.clone() }
            };
            match self.keep_resolved(&mut p, ip, reason) {
                Some(c) => match self.elf(&c) {
                    Some(Ok(ii)) => {
                        let mut names = vec![ip.clone()];
                        names.extend(ii.soname.clone());
                        p.objs.push(Obj { path: ip.clone(), canonical: c.clone(), info: ii, loader: None, names });
                        p.by_canonical.insert(c, p.objs.len() - 1);
                        p.interp_obj = Some(p.objs.len() - 1);
                    }
                    _ => self.unresolved(&p, ip, &res.path, "interpreter is not a valid ELF file"),
                },
                None => self.unresolved(&p, ip, &res.path, "interpreter not found"),
            }
            // Files the loader reads at start-up.
            let of = ip.clone();
            let cfgs: Vec<String> = match flavor {
                Flavor::Glibc => vec!["/etc/ld.so.cache".into(), "/etc/ld.so.preload".into()],
                Flavor::Musl => search::musl_arch(&info)
                    .and_then(|a| search::musl_sys_path(self.fs, ip, a).1)
                    .into_iter()
                    .collect(),
            };
            for c in cfgs {
                if self.fs.resolve(&c).is_some() {
                    self.keep_resolved(&mut p, &c, Reason::LoaderConfig { of: of.clone() });
                }
            }
        }

        // Preloads load before the main program's DT_NEEDED, with the main program as loader.
        p.queue.push_back(0);
        let mut preloads: Vec<(String, String)> = Vec::new();
        if let Some(lp) = &self.opts.ld_preload {
            for n in lp.split([' ', ':']).filter(|s| !s.is_empty()) {
                preloads.push((n.to_string(), "LD_PRELOAD".into()));
            }
        }
        if flavor == Flavor::Glibc && interp.is_some() {
            if let Some(b) = self.fs.read("/etc/ld.so.preload") {
                // Like rtld.c: '#' starts a comment to end of line; entries are separated by
                // whitespace or ':'.
                let text: String = String::from_utf8_lossy(&b)
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n");
                for e in text.split([' ', '\t', '\n', ':']).filter(|s| !s.is_empty()) {
                    if !self.out.preload_file.iter().any(|x| x == e) {
                        self.out.preload_file.push(e.to_string());
                    }
                    preloads.push((e.to_string(), "/etc/ld.so.preload".into()));
                }
            }
        }
        for (name, source) in preloads {
            let loader = if flavor == Flavor::Glibc { Some(0) } else { None };
            let reason = Reason::Preload { name: name.clone(), source: source.clone() };
            if let Err(why) = self.lookup(&mut p, &name, loader, reason) {
                // glibc prints an error for a missing preload and carries on.
                self.unresolved(&p, &name, &source, &why);
            }
        }
        if let Some(i) = p.interp_obj {
            p.queue.push_back(i);
        }

        // Breadth-first, like `_dl_map_object_deps`: load order decides l_loader and names.
        // Newly loaded objects (including hwcaps variants) are appended to the queue.
        let mut done = BTreeSet::new();
        while let Some(i) = p.queue.pop_front() {
            if !done.insert(i) {
                continue;
            }
            let needed = p.objs[i].info.needed.clone();
            let of = p.objs[i].canonical.clone();
            for name in needed {
                let reason = Reason::Needed { name: name.clone(), of: of.clone() };
                if let Err(why) = self.lookup(&mut p, &name, Some(i), reason) {
                    self.unresolved(&p, &name, &of, &why);
                }
            }
        }
        self.finish(p);
    }

    fn finish(&mut self, p: Proc) {
        self.out.per_root.insert(p.root.clone(), p.needs);
    }

    /// `$ORIGIN` of a loaded object: its directory as loaded (main program: canonical).
    fn origin(p: &Proc, i: usize) -> String {
        dirname(&p.objs[i].path)
    }

    /// Find (or reuse) the object the loader would load for `name` requested by `req`, keeping
    /// the path it opens (and its symlinks) for `reason`.
    fn lookup(&mut self, p: &mut Proc, name: &str, req: Option<usize>, reason: Reason) -> Result<usize, String> {
        match p.flavor {
            Flavor::Glibc => self.lookup_glibc(p, name, req, reason),
            Flavor::Musl => self.lookup_musl(p, name, req, reason),
        }
    }

    fn lookup_glibc(&mut self, p: &mut Proc, name: &str, req: Option<usize>, reason: Reason) -> Result<usize, String> {
        let main = p.main_info.clone();
        let req_origin = req.map(|r| Self::origin(p, r)).unwrap_or_else(|| self.opts.cwd.clone());
        // DT_NEEDED itself may contain tokens.
        let names = if name.contains('$') { search::expand_glibc(name, &req_origin, &main) } else { vec![name.to_string()] };
        // Several expansions ($LIB/$PLATFORM alternatives): which one applies depends on the
        // image's glibc and the CPU, so every one that loads is kept; the first is the answer.
        let mut first: Option<Result<usize, String>> = None;
        for n in names {
            let r = self.lookup_glibc_one(p, &n, req, reason.clone());
            match (&first, &r) {
                (None, _) | (Some(Err(_)), Ok(_)) => first = Some(r),
                _ => {}
            }
        }
        first.unwrap_or_else(|| Err("not found".into()))
    }

    fn lookup_glibc_one(&mut self, p: &mut Proc, n: &str, req: Option<usize>, reason: Reason) -> Result<usize, String> {
        if n.contains('/') {
            let path = search::absolutize(n, &self.opts.cwd);
            return match self.open_candidate(p, &path, true) {
                Cand::Ok(c) => Ok(self.add_obj(p, &path, c, req, n, reason)),
                Cand::Fatal(w) | Cand::Skip(w) => Err(w),
                Cand::Absent => Err("not found".into()),
            };
        }
        // Already loaded under this name or DT_SONAME? Then nothing is opened.
        if let Some(i) = p.objs.iter().position(|o| o.names.iter().any(|x| x == n)) {
            return Ok(i);
        }
        let groups = self.glibc_search_dirs(p, req);
        self.search_dirs(p, n, &groups, req, true, &reason)
    }

    /// glibc `_dl_map_object` search order for a lookup from `req`.
    fn glibc_search_dirs(&mut self, p: &Proc, req: Option<usize>) -> Vec<Vec<String>> {
        let main = p.main_info.clone();
        let cwd = self.opts.cwd.clone();
        // One group per path element: its token expansions are alternatives (see search_dirs).
        let mut dirs: Vec<Vec<String>> = Vec::new();
        let push = |dirs: &mut Vec<Vec<String>>, list: &[String], origin: &str| {
            for s in list {
                for el in s.split(':') {
                    if el.is_empty() {
                        continue;
                    }
                    let g: Vec<String> = search::expand_glibc(el, origin, &main).iter().map(|e| search::absolutize(e, &cwd)).collect();
                    if !g.is_empty() {
                        dirs.push(g);
                    }
                }
            }
        };
        let req_has_runpath = req.is_some_and(|r| !p.objs[r].info.runpath.is_empty());
        if !req_has_runpath {
            // RPATH of the requester, its loader, … up to the main program (objects that have a
            // RUNPATH have their RPATH ignored), then the main program's if not yet searched.
            let mut did_main = false;
            let mut cur = req;
            while let Some(i) = cur {
                let o = &p.objs[i];
                if o.info.runpath.is_empty() {
                    push(&mut dirs, &o.info.rpath, &dirname(&o.path));
                }
                did_main |= i == 0;
                cur = o.loader;
            }
            let m = &p.objs[0];
            if !did_main && m.info.runpath.is_empty() {
                push(&mut dirs, &m.info.rpath, &dirname(&m.path));
            }
        }
        if let Some(llp) = &self.opts.ld_library_path {
            // ':' and ';' separate; an empty element is the cwd. $ORIGIN is the main program's.
            let origin = dirname(&p.objs[0].path);
            for el in llp.split([':', ';']) {
                let el = if el.is_empty() { "." } else { el };
                let g: Vec<String> = search::expand_glibc(el, &origin, &main).iter().map(|e| search::absolutize(e, &cwd)).collect();
                if !g.is_empty() {
                    dirs.push(g);
                }
            }
        }
        if let Some(r) = req {
            // DT_RUNPATH of the requester only: not inherited by its dependencies.
            let o = &p.objs[r];
            push(&mut dirs, &o.info.runpath, &dirname(&o.path));
        }
        let nodeflib = req.is_some_and(|r| p.objs[r].info.nodeflib());
        if !nodeflib {
            // ld.so.cache, modelled by the directories ldconfig would index, then the defaults.
            let conf = match &self.conf_dirs {
                Some(c) => c.clone(),
                None => {
                    let c = Rc::new(search::ld_so_conf_dirs(self.fs));
                    self.conf_dirs = Some(c.clone());
                    c
                }
            };
            dirs.extend(conf.iter().map(|d| vec![d.clone()]));
            dirs.extend(search::glibc_default_dirs(&main).into_iter().map(|d| vec![d]));
        }
        dirs
    }

    fn lookup_musl(&mut self, p: &mut Proc, name: &str, req: Option<usize>, reason: Reason) -> Result<usize, String> {
        // Reserved libc names ("libc.", "libpthread.", …) are the loader itself: no file opened.
        if let Some(stem) = name.strip_prefix("lib") {
            const RESERVED: [&str; 7] = ["c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet."];
            if RESERVED.iter().any(|r| stem.starts_with(r)) {
                return p.interp_obj.ok_or_else(|| "reserved libc name, but no musl loader found".to_string());
            }
        }
        if name.contains('/') {
            let path = search::absolutize(name, &self.opts.cwd);
            return match self.open_candidate(p, &path, false) {
                Cand::Ok(c) => Ok(self.add_obj(p, &path, c, req, name, reason)),
                Cand::Fatal(w) | Cand::Skip(w) => Err(w),
                Cand::Absent => Err("not found".into()),
            };
        }
        if let Some(i) = p.objs.iter().position(|o| o.names.iter().any(|x| x == name)) {
            return Ok(i);
        }
        let cwd = self.opts.cwd.clone();
        let mut dirs = Vec::new();
        if let Some(llp) = &self.opts.ld_library_path {
            dirs.extend(llp.split([':', '\n']).filter(|s| !s.is_empty()).map(|s| search::absolutize(s, &cwd)));
        }
        let mut cur = req;
        while let Some(i) = cur {
            let o = &p.objs[i];
            // RUNPATH overrides RPATH; either acts like RPATH (inherited down the needed_by chain).
            let rp = if !o.info.runpath.is_empty() { &o.info.runpath } else { &o.info.rpath };
            let origin = dirname(&o.path);
            for s in rp {
                if let Some(x) = search::expand_musl(s, &origin) {
                    dirs.extend(x.split([':', '\n']).filter(|s| !s.is_empty()).map(|s| search::absolutize(s, &cwd)));
                }
            }
            cur = o.loader;
        }
        match (search::musl_arch(&p.main_info), p.interp.clone()) {
            (Some(a), Some(ip)) => {
                dirs.extend(search::musl_sys_path(self.fs, &ip, a).0.iter().map(|s| search::absolutize(s, &cwd)))
            }
            _ => dirs.extend(["/lib", "/usr/local/lib", "/usr/lib"].map(String::from)),
        }
        let groups: Vec<Vec<String>> = dirs.into_iter().map(|d| vec![d]).collect();
        self.search_dirs(p, name, &groups, req, false, &reason)
    }

    /// Search `groups` of directories for `name`. A group is one search-path element; several
    /// entries in a group are its token alternatives (`$PLATFORM` is `haswell` or `x86_64`
    /// depending on the CPU, `$LIB` on the distro). Every candidate that some CPU could load is
    /// kept: hwcaps subdirs (glibc) and alternatives. The search stops at the first group where
    /// every alternative has the file. glibc skips incompatible files; musl takes the first file
    /// it can open.
    fn search_dirs(&mut self, p: &mut Proc, name: &str, groups: &[Vec<String>], req: Option<usize>, glibc: bool, reason: &Reason) -> Result<usize, String> {
        let mut why = "not found".to_string();
        let mut variants: Vec<(String, CandOk)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut result = None;
        'search: for g in groups {
            let mut found: Vec<(String, CandOk)> = Vec::new();
            let mut complete = true;
            for d in g {
                if !seen.insert(d.clone()) {
                    complete = false; // probed already, without success
                    continue;
                }
                if glibc {
                    for sub in self.hwcaps(d).iter() {
                        let path = join_path(&join_path(d, sub), name);
                        if let Cand::Ok(c) = self.open_candidate(p, &path, true) {
                            variants.push((path, c));
                        }
                    }
                }
                let path = join_path(d, name);
                match self.open_candidate(p, &path, glibc) {
                    Cand::Ok(c) => found.push((path, c)),
                    Cand::Fatal(w) if g.len() == 1 => {
                        result = Some(Err(w));
                        break 'search;
                    }
                    Cand::Fatal(w) | Cand::Skip(w) => {
                        why = w;
                        complete = false;
                    }
                    Cand::Absent => complete = false,
                }
            }
            if complete && !found.is_empty() {
                let (path, c) = found.remove(0);
                variants.extend(found);
                result = Some(Ok(self.add_obj(p, &path, c, req, name, reason.clone())));
                break;
            }
            variants.extend(found);
        }
        let of = req.map(|r| p.objs[r].canonical.clone()).unwrap_or_default();
        let result = match result {
            Some(r) => r,
            None if !variants.is_empty() => {
                // Only CPU-/platform-specific builds exist: the loader finds one on CPUs that
                // match and fails elsewhere. Keep them, answer with the first, and say so.
                let list: Vec<&str> = variants.iter().map(|(p, _)| p.as_str()).collect();
                self.out.warnings.insert(format!(
                    "{name} (needed by {of}): only CPU-specific builds found ({}); the loader fails on other CPUs",
                    list.join(", ")
                ));
                let (path, c) = variants.remove(0);
                Ok(self.add_obj(p, &path, c, req, name, reason.clone()))
            }
            None => Err(why),
        };
        let vreason = match reason {
            Reason::Needed { name, of } => Reason::HwcapsVariant { name: name.clone(), of: of.clone() },
            r => r.clone(),
        };
        for (path, c) in variants {
            // Not answerable by name (the chosen one is), but loaded on some CPUs: keep it and
            // its own dependencies.
            self.add_obj(p, &path, c, req, "", vreason.clone());
        }
        result
    }

    fn hwcaps(&mut self, dir: &str) -> Rc<Vec<String>> {
        if let Some(v) = self.hwcap_cache.get(dir) {
            return v.clone();
        }
        let v = Rc::new(search::hwcap_subdirs(self.fs, dir));
        self.hwcap_cache.insert(dir.to_string(), v.clone());
        v
    }

    /// Try to open `path` as a library for this process. `check_class`: glibc's `open_verify`
    /// skips files of another class/machine and directories; musl takes what it opens.
    fn open_candidate(&mut self, p: &Proc, path: &str, check_class: bool) -> Cand {
        let Some(r) = self.fs.resolve(path) else { return Cand::Absent };
        if r.node != Node::File {
            return if check_class { Cand::Absent } else { Cand::Fatal(format!("{path}: not a regular file")) };
        }
        match self.elf(&r.path) {
            None => Cand::Absent,
            Some(Err(ParseError::NotElf)) => Cand::Fatal(format!("{path}: invalid ELF header")),
            Some(Err(ParseError::Malformed(m))) => Cand::Fatal(format!("{path}: {m}")),
            Some(Ok(info)) if !p.main_info.compatible(&info) => {
                if check_class {
                    Cand::Skip(format!("not found (skipped {path}: wrong ELF class/machine)"))
                } else {
                    Cand::Fatal(format!("{path}: wrong ELF class/machine"))
                }
            }
            Some(Ok(info)) => Cand::Ok(CandOk { canonical: r.path, info }),
        }
    }

    /// Register an opened file as a loaded object, keeping the opened path for `reason`. The
    /// same file opened again by another path is the same object (both loaders compare
    /// device/inode), but that other path and its symlinks were still used, so they are kept.
    fn add_obj(&mut self, p: &mut Proc, path: &str, c: CandOk, req: Option<usize>, name: &str, reason: Reason) -> usize {
        self.keep_resolved(p, path, reason);
        if let Some(&i) = p.by_canonical.get(&c.canonical) {
            if !name.is_empty() && !p.objs[i].names.iter().any(|x| x == name) {
                p.objs[i].names.push(name.to_string());
            }
            return i;
        }
        let mut names = Vec::new();
        if !name.is_empty() {
            names.push(name.to_string());
            if p.flavor == Flavor::Glibc {
                names.extend(c.info.soname.clone());
            }
        }
        p.objs.push(Obj { path: path.to_string(), canonical: c.canonical.clone(), info: c.info, loader: req, names });
        let i = p.objs.len() - 1;
        p.by_canonical.insert(c.canonical, i);
        p.queue.push_back(i);
        i
    }
}

/// An accepted candidate.
struct CandOk {
    canonical: String,
    info: Rc<ElfInfo>,
}

enum Cand {
    Ok(CandOk),
    /// Nothing usable there: keep searching.
    Absent,
    /// The loader skips this file and keeps searching (wrong class); the message is used if
    /// nothing else is found.
    Skip(String),
    /// The loader stops with an error here.
    Fatal(String),
}
