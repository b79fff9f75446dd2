//! Loader configuration inside an image: which loader (glibc or musl), its default search
//! directories, `/etc/ld.so.conf` (with includes), musl's `.path` file, and `$TOKEN` expansion.
use super::parse::ElfInfo;
use super::rootfs::{dirname, join_path, normalize, Node, RootFs};

/// Which dynamic loader semantics apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flavor {
    Glibc,
    Musl,
}

const EM_386: u16 = 3;
const EM_ARM: u16 = 40;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;

/// Debian multiarch triplet for a machine (used by Debian's glibc default dirs and `$LIB`).
pub fn multiarch_triplet(e: &ElfInfo) -> Option<&'static str> {
    Some(match (e.machine, e.is_64) {
        (EM_X86_64, true) => "x86_64-linux-gnu",
        (EM_386, false) => "i386-linux-gnu",
        (EM_AARCH64, true) => "aarch64-linux-gnu",
        (EM_ARM, false) => "arm-linux-gnueabihf",
        (EM_PPC64, true) if e.little_endian => "powerpc64le-linux-gnu",
        (EM_S390, true) => "s390x-linux-gnu",
        (EM_RISCV, true) => "riscv64-linux-gnu",
        _ => return None,
    })
}

/// AT_PLATFORM as the kernel reports it, for `$PLATFORM`.
pub fn platform(e: &ElfInfo) -> Option<&'static str> {
    Some(match (e.machine, e.is_64) {
        (EM_X86_64, true) => "x86_64",
        (EM_386, false) => "i686",
        (EM_AARCH64, true) => "aarch64",
        (EM_PPC64, true) => "powerpc64le",
        (EM_S390, true) => "s390x",
        (EM_RISCV, true) => "riscv64",
        _ => return None,
    })
}

/// musl's `LDSO_ARCH` (the `x86_64` in `ld-musl-x86_64.so.1`).
pub fn musl_arch(e: &ElfInfo) -> Option<&'static str> {
    Some(match (e.machine, e.is_64) {
        (EM_X86_64, true) => "x86_64",
        (EM_386, false) => "i386",
        (EM_AARCH64, true) => if e.little_endian { "aarch64" } else { "aarch64_be" },
        (EM_ARM, false) => "armhf",
        (EM_PPC64, true) => if e.little_endian { "powerpc64le" } else { "powerpc64" },
        (EM_S390, true) => "s390x",
        (EM_RISCV, true) => "riscv64",
        _ => return None,
    })
}

/// The loader flavour from an interpreter path (`/lib/ld-musl-x86_64.so.1` → musl).
pub fn flavor_of_interp(interp: &str) -> Flavor {
    let base = interp.rsplit('/').next().unwrap_or(interp);
    if base.starts_with("ld-musl-") {
        Flavor::Musl
    } else {
        Flavor::Glibc
    }
}

/// Guess the flavour for an object without PT_INTERP (a shared library used as a root): by its
/// own DT_NEEDED libc name, else by which loader the image has.
pub fn guess_flavor(fs: &dyn RootFs, e: &ElfInfo) -> Flavor {
    for n in &e.needed {
        if n.starts_with("libc.musl-") || n == "libc.so" {
            return Flavor::Musl;
        }
        if n == "libc.so.6" || n.starts_with("ld-linux") {
            return Flavor::Glibc;
        }
    }
    let musl = default_interp(Flavor::Musl, e).is_some_and(|p| fs.is_file(&p));
    let glibc = default_interp(Flavor::Glibc, e).is_some_and(|p| fs.is_file(&p));
    if musl && !glibc {
        Flavor::Musl
    } else {
        Flavor::Glibc
    }
}

/// The standard PT_INTERP for this machine and flavour (for roots that have none).
pub fn default_interp(f: Flavor, e: &ElfInfo) -> Option<String> {
    match f {
        Flavor::Musl => musl_arch(e).map(|a| format!("/lib/ld-musl-{a}.so.1")),
        Flavor::Glibc => Some(
            match (e.machine, e.is_64) {
                (EM_X86_64, true) => "/lib64/ld-linux-x86-64.so.2",
                (EM_386, false) => "/lib/ld-linux.so.2",
                (EM_AARCH64, true) => "/lib/ld-linux-aarch64.so.1",
                (EM_ARM, false) => "/lib/ld-linux-armhf.so.3",
                (EM_PPC64, true) => "/lib64/ld64.so.2",
                (EM_S390, true) => "/lib/ld64.so.1",
                (EM_RISCV, true) => "/lib/ld-linux-riscv64-lp64d.so.1",
                _ => return None,
            }
            .to_string(),
        ),
    }
}

/// glibc's compiled-in system dirs. Debian puts the multiarch dirs first; other distros use
/// lib64 on 64-bit. We search the union (multiarch, lib64, lib) so either layout works.
pub fn glibc_default_dirs(e: &ElfInfo) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(t) = multiarch_triplet(e) {
        v.push(format!("/lib/{t}"));
        v.push(format!("/usr/lib/{t}"));
    }
    if e.is_64 {
        v.push("/lib64".into());
        v.push("/usr/lib64".into());
    }
    v.push("/lib".into());
    v.push("/usr/lib".into());
    v
}

/// Candidate expansions of `$LIB`: Debian's multiarch dir, then lib64 (Fedora & co.), then lib.
fn lib_token(e: &ElfInfo) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(t) = multiarch_triplet(e) {
        v.push(format!("lib/{t}"));
    }
    if e.is_64 {
        v.push("lib64".into());
    }
    v.push("lib".into());
    v
}

/// Expand glibc dynamic string tokens. `$LIB` may yield several strings (we do not know which
/// convention the image's glibc was built with). Returns an empty list if a token is needed
/// but unknown (glibc then drops the element).
pub fn expand_glibc(s: &str, origin: &str, e: &ElfInfo) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let (lit, tail) = rest.split_at(i);
        for o in &mut out {
            o.push_str(lit);
        }
        let tail = &tail[1..];
        let (tok, after) = match take_token(tail) {
            Some(x) => x,
            None => {
                // Not a known token: glibc leaves it as is.
                for o in &mut out {
                    o.push('$');
                }
                rest = tail;
                continue;
            }
        };
        let repl: Vec<String> = match tok {
            "ORIGIN" => vec![origin.to_string()],
            "LIB" => lib_token(e),
            "PLATFORM" => match platform(e) {
                // glibc <= 2.36 on x86-64 reports a CPU-dependent platform ("haswell" on AVX2
                // machines, "xeon_phi"), newer ones "x86_64": all are possible at run time.
                Some("x86_64") => vec!["x86_64".into(), "haswell".into(), "xeon_phi".into()],
                Some(p) => vec![p.to_string()],
                None => return Vec::new(),
            },
            _ => unreachable!(),
        };
        out = out.iter().flat_map(|o| repl.iter().map(move |r| format!("{o}{r}"))).collect();
        rest = after;
    }
    for o in &mut out {
        o.push_str(rest);
    }
    out
}

/// Recognise `NAME` or `{NAME}` for the three glibc tokens. A bare name must end at a
/// non-identifier character (glibc's `is_dst`).
fn take_token(t: &str) -> Option<(&'static str, &str)> {
    for tok in ["ORIGIN", "PLATFORM", "LIB"] {
        if let Some(after) = t.strip_prefix('{').and_then(|x| x.strip_prefix(tok)).and_then(|x| x.strip_prefix('}')) {
            return Some((tok, after));
        }
        if let Some(after) = t.strip_prefix(tok) {
            if !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                return Some((tok, after));
            }
        }
    }
    None
}

/// musl expands only `$ORIGIN`/`${ORIGIN}`; any other `$` makes the whole rpath unusable.
pub fn expand_musl(s: &str, origin: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let t = &rest[i + 1..];
        if let Some(a) = t.strip_prefix("{ORIGIN}") {
            rest = a;
        } else if let Some(a) = t.strip_prefix("ORIGIN") {
            // musl checks only the prefix (`!strncmp(s, "$ORIGIN", 7)`), no word boundary.
            rest = a;
        } else {
            return None;
        }
        out.push_str(origin);
    }
    out.push_str(rest);
    Some(out)
}

/// Make a search-path element absolute (relative elements are relative to the cwd). No
/// lexical `..` folding: the kernel resolves `..` after symlinks physically ([`RootFs::resolve`]).
pub fn absolutize(p: &str, cwd: &str) -> String {
    let t = p.trim_end_matches('/');
    let p = if t.is_empty() && p.starts_with('/') { "/" } else { t };
    if p.starts_with('/') {
        p.to_string()
    } else {
        join_path(cwd, p)
    }
}

/// Directories ldconfig would put into ld.so.cache: `/etc/ld.so.conf` and its `include`s
/// (globs, sorted like glob(3); relative includes are relative to the including file's dir).
/// Returned in file order, deduplicated.
pub fn ld_so_conf_dirs(fs: &dyn RootFs) -> Vec<String> {
    let mut dirs = Vec::new();
    parse_conf(fs, "/etc/ld.so.conf", 0, &mut dirs);
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

fn parse_conf(fs: &dyn RootFs, file: &str, depth: usize, dirs: &mut Vec<String>) {
    if depth > 16 {
        return; // include loop; ldconfig would recurse forever, we just stop
    }
    let Some(bytes) = fs.read(file) else { return };
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("include").filter(|r| r.starts_with([' ', '\t'])) {
            for pat in rest.split([' ', '\t']).filter(|p| !p.is_empty()) {
                let pat = if pat.starts_with('/') { pat.to_string() } else { format!("{}/{}", dirname(file), pat) };
                for inc in glob(fs, &pat) {
                    parse_conf(fs, &inc, depth + 1, dirs);
                }
            }
        } else if line.starts_with("hwcap") && line[5..].starts_with([' ', '\t']) {
            // Legacy hwcap directive: not a directory.
        } else {
            // `dir=TYPE` is old libc5 syntax; the type is not part of the path.
            let d = line.split('=').next().unwrap_or("").trim_end();
            if d.starts_with('/') {
                dirs.push(normalize(d));
            }
        }
    }
}

/// Minimal glob(3) over the image: `*`, `?`, `[...]` per component; a leading `.` must be
/// matched explicitly; results sorted.
pub fn glob(fs: &dyn RootFs, pattern: &str) -> Vec<String> {
    let mut cur = vec!["/".to_string()];
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for c in &comps {
        let mut next = Vec::new();
        let is_pat = c.contains(['*', '?', '[']);
        for d in &cur {
            let join = |n: &str| if d == "/" { format!("/{n}") } else { format!("{d}/{n}") };
            if !is_pat {
                next.push(join(c));
                continue;
            }
            let Ok(g) = globset::GlobBuilder::new(c).literal_separator(true).build() else { continue };
            let m = g.compile_matcher();
            for name in fs.read_dir(d) {
                if name.starts_with('.') && !c.starts_with('.') {
                    continue;
                }
                if m.is_match(&name) {
                    next.push(join(&name));
                }
            }
        }
        cur = next;
    }
    let mut out: Vec<String> = cur.into_iter().filter(|p| fs.resolve(p).is_some()).collect();
    out.sort();
    out
}

/// musl's system path: `<prefix>/etc/ld-musl-<arch>.path` where prefix is the loader path minus
/// its last two components; default when absent; empty when present but unreadable/empty.
/// Returns (dirs, path file if it exists).
pub fn musl_sys_path(fs: &dyn RootFs, interp: &str, arch: &str) -> (Vec<String>, Option<String>) {
    let prefix = dirname(&dirname(interp));
    let prefix = if prefix == "/" { String::new() } else { prefix };
    let file = format!("{prefix}/etc/ld-musl-{arch}.path");
    match fs.resolve(&file) {
        None => (
            ["/lib", "/usr/local/lib", "/usr/lib"].iter().map(|s| s.to_string()).collect(),
            None,
        ),
        Some(r) => {
            let text = if r.node == Node::File { fs.read_file(&r.path).unwrap_or_default() } else { Vec::new() };
            let text = String::from_utf8_lossy(&text);
            let dirs = text.split([':', '\n']).filter(|s| !s.is_empty()).map(str::to_string).collect();
            (dirs, Some(file))
        }
    }
}

/// The hwcaps subdirectories glibc probes below each search dir, that exist in this image:
/// `glibc-hwcaps/*` (2.33+) and the legacy `tls`/platform/`x86_64` combinations (≤ 2.36).
/// All of them are kept: the CPU at run time decides which one wins.
pub fn hwcap_subdirs(fs: &dyn RootFs, dir: &str) -> Vec<String> {
    let mut v = Vec::new();
    let hw = format!("{dir}/glibc-hwcaps");
    for n in fs.read_dir(&hw) {
        v.push(format!("glibc-hwcaps/{n}"));
    }
    let platforms = ["haswell", "xeon_phi", "avx512_1", "i686", "i586", "aarch64"];
    for tls in ["tls/", ""] {
        for p in platforms.iter().map(|p| format!("{p}/")).chain([String::new()]) {
            for h in ["x86_64", ""] {
                let sub = format!("{tls}{p}{h}");
                let sub = sub.trim_end_matches('/');
                if sub.is_empty() {
                    continue;
                }
                if matches!(fs.resolve(&format!("{dir}/{sub}")), Some(r) if r.node == Node::Dir) {
                    v.push(sub.to_string());
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86() -> ElfInfo {
        ElfInfo {
            is_64: true,
            little_endian: true,
            machine: EM_X86_64,
            osabi: 0,
            e_type: 3,
            interp: None,
            needed: vec![],
            rpath: vec![],
            runpath: vec![],
            soname: None,
            flags_1: 0,
            is_dynamic: true,
        }
    }

    #[test]
    fn glibc_tokens() {
        let e = x86();
        assert_eq!(expand_glibc("$ORIGIN/../lib", "/opt/a/bin", &e), vec!["/opt/a/bin/../lib"]);
        assert_eq!(expand_glibc("${ORIGIN}/x", "/o", &e), vec!["/o/x"]);
        assert_eq!(
            expand_glibc("/opt/$LIB", "/o", &e),
            vec!["/opt/lib/x86_64-linux-gnu", "/opt/lib64", "/opt/lib"]
        );
        assert_eq!(expand_glibc("/p/${PLATFORM}/z", "/o", &e), vec!["/p/x86_64/z", "/p/haswell/z", "/p/xeon_phi/z"]);
        assert_eq!(expand_glibc("/a/$ORIGINX", "/o", &e), vec!["/a/$ORIGINX"]);
        assert_eq!(expand_glibc("/a/$FOO", "/o", &e), vec!["/a/$FOO"]);
    }

    #[test]
    fn musl_tokens() {
        assert_eq!(expand_musl("$ORIGIN/../lib", "/b").as_deref(), Some("/b/../lib"));
        assert_eq!(expand_musl("${ORIGIN}:/x", "/b").as_deref(), Some("/b:/x"));
        assert_eq!(expand_musl("$LIB/x", "/b"), None);
    }
}

#[cfg(test)]
mod conf_tests {
    use super::*;
    use crate::elf::HostDir;

    #[test]
    fn ld_so_conf_includes_globs_and_syntax() {
        let tmp = tempfile::tempdir().unwrap();
        let w = |p: &str, s: &str| {
            let p = tmp.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w("etc/ld.so.conf", "/first\ninclude /etc/ld.so.conf.d/*.conf other/*.conf\n  # comment\n/last/ # trailing\n");
        w("etc/ld.so.conf.d/b.conf", "/b\n/usr/lib=libc5\nhwcap 0 nosegneg\n");
        w("etc/ld.so.conf.d/a.conf", "/a\ninclude ../nested.conf\n");
        w("etc/ld.so.conf.d/.hidden.conf", "/hidden\n");
        w("etc/ld.so.conf.d/c.txt", "/not-conf\n");
        w("etc/nested.conf", "/nested\n/first\n");
        w("etc/other/x.conf", "relative/ignored\n/x\n");
        w("etc/loop.conf", "include loop.conf\n");
        let fs = HostDir::new(tmp.path());
        assert_eq!(ld_so_conf_dirs(&fs), ["/first", "/a", "/nested", "/b", "/usr/lib", "/x", "/last"]);
        // An include loop terminates.
        w("etc/ld.so.conf", "include loop.conf\n/y\n");
        assert_eq!(ld_so_conf_dirs(&fs), ["/y"]);
        // No ld.so.conf at all: nothing.
        std::fs::remove_file(tmp.path().join("etc/ld.so.conf")).unwrap();
        assert!(ld_so_conf_dirs(&fs).is_empty());
    }

    #[test]
    fn musl_path_file() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = HostDir::new(tmp.path());
        let (d, f) = musl_sys_path(&fs, "/lib/ld-musl-x86_64.so.1", "x86_64");
        assert_eq!((d, f), (vec!["/lib".to_string(), "/usr/local/lib".into(), "/usr/lib".into()], None));
        std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
        std::fs::write(tmp.path().join("etc/ld-musl-x86_64.path"), "").unwrap();
        assert_eq!(musl_sys_path(&fs, "/lib/ld-musl-x86_64.so.1", "x86_64").0, Vec::<String>::new(), "empty file: empty path");
        // Prefix is the loader path minus two components.
        std::fs::create_dir_all(tmp.path().join("opt/m/etc")).unwrap();
        std::fs::write(tmp.path().join("opt/m/etc/ld-musl-x86_64.path"), "/p1:/p2\n/p3").unwrap();
        assert_eq!(musl_sys_path(&fs, "/opt/m/lib/ld-musl-x86_64.so.1", "x86_64").0, ["/p1", "/p2", "/p3"]);
    }
}
