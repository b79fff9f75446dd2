//! Acceptance suite (issue 4): realistic multi-layer images built with
//! independent tools (debootstrap/umoci/skopeo), processed by a command, then
//! probed under runc. The processed image must answer every probe byte-for-byte
//! like the original. The heavy lifting lives in tests/acceptance/*.sh so it can
//! be run by hand too; this file only orchestrates.
//!
//! Run: `cargo test --test acceptance` (or `cargo nextest run --test acceptance`).
//! Needs root, runc, umoci, skopeo, debootstrap, jq, curl, javac/jar, go.
//! With CI=true a missing tool or non-root FAILS; otherwise the test is skipped
//! with a message. Env: IMGSLIM_ACCEPT_CACHE (originals, default
//! /var/cache/imgslim-accept), IMGSLIM_ACCEPT_RESULTS (default target/acceptance),
//! IMGSLIM_ACCEPT_ONLY=name,name (run only these images).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A way to turn an original image into the processed one.
pub struct Processing {
    /// Short label used in result paths and the results table.
    pub label: &'static str,
    /// Also compare the "exact:" probes (whole-tree fingerprints). True for
    /// transformations that must not change a single file (identity, squash).
    pub exact: bool,
    /// Build the command that reads the original OCI layout `orig` (tag in its
    /// index) and writes an OCI layout at `out`.
    pub command: fn(orig: &Path, out: &Path) -> Command,
    /// A minimal image: probes marked "tools:" (programs the app does not use) are not asked.
    pub minimal: bool,
}

/// Identity: skopeo re-copies the image (re-encodes nothing, keeps layers).
/// Proves the harness itself before imgslim's commands exist.
pub const IDENTITY: Processing = Processing { minimal: false, label: "identity", exact: true, command: identity_cmd };
/// Reference squash with umoci only (tests/acceptance/refsquash.sh): merged
/// rootfs as one layer + same runtime config. The yardstick for `imgslim squash`.
pub const REF_SQUASH: Processing = Processing { minimal: false, label: "refsquash", exact: true, command: refsquash_cmd };
/// `imgslim squash ORIG -o OUT --format oci`: one layer, must be exact.
pub const SQUASH: Processing = Processing { minimal: false, label: "squash", exact: true, command: squash_cmd };
/// `imgslim slim --level clean|minimal`: files may go, answers may not change.
pub const SLIM_CLEAN: Processing = Processing { minimal: false, label: "slim-clean", exact: false, command: slim_clean_cmd };
pub const SLIM_MINIMAL: Processing = Processing { minimal: true, label: "slim-minimal", exact: false, command: slim_minimal_cmd };
/// Minimal, distroless: no shell or package manager, nonroot unless the runtime starts as root.
pub const SLIM_DISTROLESS: Processing = Processing { minimal: true, label: "slim-distroless", exact: false, command: slim_distroless_cmd };
/// Minimal plus UPX-style packing of large executables.
pub const SLIM_MINIMAL_PACK: Processing = Processing { minimal: true, label: "slim-minimal-pack", exact: false, command: slim_minimal_pack_cmd };

/// Traced (issue 11): the image's own probes drive `imgslim trace` (tests/acceptance/trace.sh),
/// then the static plan plus the traces (`minimal --from-trace`), or only what they touched in
/// the runtimes' module trees (`--level traced`). Both variants share one set of traces.
pub const SLIM_MINIMAL_TRACED: Processing = Processing { minimal: true, label: "slim-minimal-traced", exact: false, command: slim_minimal_traced_cmd };
pub const SLIM_TRACED: Processing = Processing { minimal: true, label: "slim-traced", exact: false, command: slim_traced_cmd };
/// `--level traced` plus packing: the pipeline's smallest output, for the interpreter images
/// whose own executable is large (python-web's statically linked python3.11, 6.8 MB).
pub const SLIM_TRACED_PACK: Processing = Processing { minimal: true, label: "slim-traced-pack", exact: false, command: slim_traced_pack_cmd };

fn identity_cmd(orig: &Path, out: &Path) -> Command {
    let mut c = Command::new("skopeo");
    c.arg("copy").arg("-q").arg(format!("oci:{}", orig.display())).arg(format!("oci:{}:latest", out.display()));
    c
}
fn refsquash_cmd(orig: &Path, out: &Path) -> Command {
    let mut c = Command::new(accept_dir().join("refsquash.sh"));
    c.arg(orig).arg(out);
    c
}
fn imgslim(args: &[&str], orig: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgslim"));
    c.args(args).arg(orig).arg("-o").arg(out).args(["--format", "oci"]);
    c
}
fn squash_cmd(orig: &Path, out: &Path) -> Command {
    imgslim(&["squash"], orig, out)
}
fn slim_clean_cmd(orig: &Path, out: &Path) -> Command {
    imgslim(&["slim", "--level", "clean"], orig, out)
}
fn slim_minimal_cmd(orig: &Path, out: &Path) -> Command {
    imgslim(&["slim", "--level", "minimal"], orig, out)
}
fn slim_distroless_cmd(orig: &Path, out: &Path) -> Command {
    imgslim(&["slim", "--level", "minimal", "--distroless"], orig, out)
}
fn slim_minimal_pack_cmd(orig: &Path, out: &Path) -> Command {
    imgslim(&["slim", "--level", "minimal", "--pack"], orig, out)
}

fn slim_minimal_traced_cmd(orig: &Path, out: &Path) -> Command {
    let mut c = imgslim(&["slim", "--level", "minimal"], orig, out);
    c.arg("--from-trace").args(traces(orig));
    c
}
fn slim_traced_cmd(orig: &Path, out: &Path) -> Command {
    let mut c = imgslim(&["slim", "--level", "traced"], orig, out);
    c.arg("--from-trace").args(traces(orig));
    c
}

fn slim_traced_pack_cmd(orig: &Path, out: &Path) -> Command {
    let mut c = slim_traced_cmd(orig, out);
    c.arg("--pack");
    c
}

/// The traces of an original (`CACHE/NAME-HASH/oci`), recorded once per imgslim binary and
/// shared by the traced variants (a lock serialises them; a stamp names binary and image).
fn traces(orig: &Path) -> Vec<PathBuf> {
    let cache_dir = orig.parent().unwrap_or(orig);
    let dir_name = cache_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = dir_name.rsplit_once('-').map(|(n, _)| n.to_string()).unwrap_or_else(|| dir_name.clone());
    let bin = Path::new(env!("CARGO_BIN_EXE_imgslim"));
    let meta = std::fs::metadata(bin).expect("imgslim binary");
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()).unwrap_or(0);
    let stamp = format!("{} {} {mtime} {}\n", bin.display(), meta.len(), orig.display());
    let dir = results_dir().join(format!("{name}.traces"));
    std::fs::create_dir_all(results_dir()).unwrap();
    let lock = std::fs::File::create(results_dir().join(format!("{name}.traces.lock"))).unwrap();
    lock.lock().unwrap();
    if std::fs::read_to_string(dir.join("stamp")).ok().as_deref() != Some(stamp.as_str()) {
        let start = Instant::now();
        sh(Command::new(accept_dir().join("trace.sh")).arg(orig).arg(&name).arg(&dir).env("IMGSLIM", bin), &format!("trace {name}"));
        std::fs::write(dir.join("stamp"), &stamp).unwrap();
        eprintln!("{name}: traced in {:.1} s", start.elapsed().as_secs_f64());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    assert!(!files.is_empty(), "no traces in {}", dir.display());
    files
}

/// The quality bar: minimal images at least this many times smaller (uncompressed).
fn min_factor(name: &str, label: &str) -> Option<f64> {
    // Traces only add to the static plan: a traced minimal slim keeps minimal's bars.
    let label = if label == "slim-minimal-traced" { "slim-minimal" } else { label };
    match (name, label) {
        // --level traced. The issue asks 20x, 5.5x and 3.5x; the files these apps open or run
        // (by the trace) already weigh more than that allows: python-web 21.9 MB (18.4x at most;
        // the ELF files and .pyc opened alone are 20.2 MB, 19.97x), node-app 97.2 MB (libnode and
        // ICU data, 5.23x at most), jre-app 173.6 MB (lib/modules, libjvm, classes.jsa; 3.47x at
        // most). Measured: 16.9x, 5.15x, 3.44x (README, Results). These bars guard that.
        ("python-web", "slim-traced") => Some(16.5),
        ("node-app", "slim-traced") => Some(5.1),
        ("jre-app", "slim-traced") => Some(3.4),
        // The 20x for python-web is reached with the packer (measured 21.0x).
        ("python-web", "slim-traced-pack") => Some(20.0),
        // 8.1x with --package-db drop; the pruned dpkg database that scanners read (1.8 MB:
        // status and info/ of the 56 packages that keep files) is kept by default: 7.8x.
        ("python-web", "slim-minimal") => Some(7.5),
        ("nginx-static", "slim-minimal") => Some(20.0),
        ("node-app", "slim-minimal") => Some(4.0),
        ("jre-app", "slim-minimal") => Some(2.5),
        ("shell-cli", "slim-minimal") => Some(4.0),
        // Server images: the default slim (minimal) must pass every probe; the bar guards the factor.
        ("postgres", "slim-minimal") => Some(6.0),
        ("redis", "slim-minimal") => Some(10.0),
        ("apache-php", "slim-minimal") => Some(4.0),
        ("mariadb", "slim-minimal") => Some(4.0),
        ("ruby-gems", "slim-minimal") => Some(6.0),
        ("perl-xs", "slim-minimal") => Some(5.0),
        ("tomcat", "slim-minimal") => Some(2.5),
        // The Go binary is most of that image: the factor needs --pack.
        ("static-go-alpine", "slim-minimal-pack") => Some(4.0),
        _ => None,
    }
}

/// Absolute paths an app's error output names ("open /etc/x: no such file", "libfoo.so.1:
/// cannot open shared object file"), to ask imgslim why they were dropped.
fn paths_in(text: &str) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for w in text.split(|c: char| c.is_whitespace() || "\"'`:,;()[]{}<>=".contains(c)) {
        let w = w.trim_end_matches('.');
        let abs = w.starts_with('/') && w.len() > 1 && !w.starts_with("/proc") && !w.starts_with("/dev") && !w.starts_with("/tmp/");
        if abs || (w.contains(".so") && w.starts_with("lib")) {
            out.insert(w.to_string());
        }
    }
    out.into_iter().take(12).collect()
}

/// On a failed probe: `imgslim slim --dry-run --explain` for every path the failure names.
fn explain_failure(orig: &Path, dir: &Path, label: &str) -> String {
    let mut text = String::new();
    for e in walkdir::WalkDir::new(dir.join("processed")).into_iter().filter_map(|e| e.ok()) {
        if e.file_type().is_file() {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            text.push('\n');
        }
    }
    let mut paths: Vec<String> = paths_in(&text);
    // Library names become the paths they have in the original.
    for p in paths.iter_mut().filter(|p| !p.starts_with('/')) {
        *p = format!("/usr/lib/x86_64-linux-gnu/{p}");
    }
    if paths.is_empty() {
        return "no path named in the failure output".into();
    }
    let level = if label.starts_with(SLIM_TRACED.label) { "traced" } else if label.contains("minimal") { "minimal" } else { "clean" };
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgslim"));
    c.args(["slim", "--level", level, "--dry-run"]).arg(orig);
    if label.contains("traced") {
        c.arg("--from-trace").args(traces(orig));
    }
    for p in &paths {
        c.arg("--explain").arg(p);
    }
    match c.output() {
        Ok(o) => String::from_utf8_lossy(&o.stderr).lines().filter(|l| paths.iter().any(|p| l.starts_with(p.as_str()))).collect::<Vec<_>>().join("\n"),
        Err(e) => format!("imgslim --explain could not run: {e}"),
    }
}

fn accept_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance")
}
fn results_dir() -> PathBuf {
    std::env::var_os("IMGSLIM_ACCEPT_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/acceptance"))
}
fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// None = run; Some(reason) = skip (only outside CI; in CI this panics).
fn preflight(name: &str) -> Option<String> {
    if let Ok(only) = std::env::var("IMGSLIM_ACCEPT_ONLY") {
        if !only.split(',').any(|n| n.trim() == name) {
            return Some(format!("{name} not in IMGSLIM_ACCEPT_ONLY"));
        }
    }
    let mut missing = Vec::new();
    if unsafe_euid() != 0 {
        missing.push("root".to_string());
    }
    for t in ["runc", "umoci", "skopeo", "jq", "curl", "flock", "timeout", "debootstrap", "javac", "jar", "go"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {t}")).output().map(|o| o.status.success());
        if !found.unwrap_or(false) {
            missing.push(t.to_string());
        }
    }
    if missing.is_empty() {
        return None;
    }
    let msg = format!("acceptance needs: {}", missing.join(", "));
    assert!(!ci(), "CI=true: {msg} (the acceptance suite must not be skipped in CI)");
    Some(msg)
}
/// Effective uid without a libc dependency: /proc/self/status "Uid: r e s f".
fn unsafe_euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(2).and_then(|u| u.parse().ok()))
        .unwrap_or(u32::MAX)
}

fn sh(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    assert!(out.status.success(), "{what} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Build (or reuse from cache) the original image; returns its cache dir
/// containing `oci/` and `docker-archive.tar`.
pub fn original(name: &str) -> PathBuf {
    let out = sh(Command::new(accept_dir().join("build.sh")).arg(name), &format!("build {name}"));
    PathBuf::from(out.trim().lines().last().unwrap_or_default())
}

/// Run `processing` on the original and compare probe answers; panics with the
/// probe diff on any difference. Sizes/timings land in results_dir()/NAME.LABEL/result.tsv.
pub fn accept(name: &str, processing: &Processing) {
    if let Some(why) = preflight(name) {
        eprintln!("SKIP {name}/{}: {why}", processing.label);
        return;
    }
    let orig = original(name).join("oci");
    let dir = results_dir().join(format!("{name}.{}", processing.label));
    let processed = dir.join("image");
    let _ = std::fs::remove_dir_all(&processed);
    std::fs::create_dir_all(&dir).unwrap();

    let start = Instant::now();
    sh(&mut (processing.command)(&orig, &processed), &format!("process {name} with {}", processing.label));
    let secs = start.elapsed().as_secs_f64();

    let out = Command::new(accept_dir().join("run.sh"))
        .arg(&orig)
        .arg(&processed)
        .arg(name)
        .env("IMGSLIM_ACCEPT_VARIANT", processing.label)
        .env("IMGSLIM_ACCEPT_PROCESS_SECONDS", format!("{secs:.1}"))
        .env("IMGSLIM_ACCEPT_RESULTS", results_dir())
        .env("IMGSLIM_ACCEPT_EXACT", if processing.exact { "1" } else { "0" })
        .env("IMGSLIM_ACCEPT_MINIMAL", if processing.minimal { "1" } else { "0" })
        .output()
        .expect("run.sh");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let explain = if out.status.success() { String::new() } else { explain_failure(&orig, &dir, processing.label) };
    // The processed layout is large; keep it only when something went wrong.
    if out.status.success() {
        let _ = std::fs::remove_dir_all(&processed);
    }
    assert!(
        out.status.success(),
        "{name}/{}: probes differ or original broken:\n{}\nimgslim --explain for the paths the failure names:\n{explain}",
        processing.label,
        String::from_utf8_lossy(&out.stdout)
    );
    if let Some(min) = min_factor(name, processing.label) {
        let tsv = std::fs::read_to_string(dir.join("result.tsv")).unwrap_or_default();
        let f: Vec<&str> = tsv.trim().split('\t').collect();
        let (orig_u, proc_u): (f64, f64) = (f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0.0), f.get(5).and_then(|v| v.parse().ok()).unwrap_or(f64::MAX));
        let factor = orig_u / proc_u;
        eprintln!("{name}/{}: {orig_u} -> {proc_u} bytes uncompressed ({factor:.1}x, bar {min}x)", processing.label);
        assert!(factor >= min, "{name}/{}: only {factor:.2}x smaller (uncompressed), the bar is {min}x", processing.label);
    }
}

/// Harness self-test: a processed image with the CA bundle deleted must FAIL
/// (python-web reports the CA count over HTTP). Guards against a harness that
/// passes vacuously.
mod harness {
    use super::*;
    fn drop_ca_certs(orig: &Path, out: &Path) -> Command {
        let mut c = Command::new(accept_dir().join("mutate.sh"));
        c.arg(orig).arg(out).args(["/etc/ssl/certs", "/usr/share/ca-certificates"]);
        c
    }
    #[test]
    fn detects_missing_ca_certs() {
        let broken = Processing { minimal: false, label: "selftest-no-certs", exact: false, command: drop_ca_certs };
        let r = std::panic::catch_unwind(|| accept("python-web", &broken));
        if preflight("python-web").is_none() {
            assert!(r.is_err(), "run.sh accepted an image without CA certificates");
            // accept() keeps a failing processed image for debugging; this one is expected.
            let _ = std::fs::remove_dir_all(results_dir().join("python-web.selftest-no-certs/image"));
        }
    }
}

/// The squash-exactness image through the independent reference squash: proves
/// the exact: probes (tree + content fingerprints) survive 4 layers -> 1.
#[test]
fn refsquash_debian_layers() {
    accept("debian-layers", &REF_SQUASH)
}

macro_rules! images {
    ($($fn:ident => $name:literal),* $(,)?) => {
        // The harness itself is proven by harness::detects_missing_ca_certs and by the
        // squash variant (which must keep even the whole-tree fingerprints).
        mod squash { use super::*; $( #[test] fn $fn() { accept($name, &SQUASH) } )* }
        mod slim_clean { use super::*; $( #[test] fn $fn() { accept($name, &SLIM_CLEAN) } )* }
        mod slim_minimal { use super::*; $( #[test] fn $fn() { accept($name, &SLIM_MINIMAL) } )* }
        mod slim_minimal_traced { use super::*; $( #[test] fn $fn() { accept($name, &SLIM_MINIMAL_TRACED) } )* }
        mod slim_traced { use super::*; $( #[test] fn $fn() { accept($name, &SLIM_TRACED) } )* }
    };
}

mod slim_distroless {
    use super::*;
    #[test]
    fn python_web() {
        accept("python-web", &SLIM_DISTROLESS)
    }
    #[test]
    fn nginx_static() {
        accept("nginx-static", &SLIM_DISTROLESS)
    }
}

mod slim_traced_pack {
    use super::*;
    #[test]
    fn python_web() {
        accept("python-web", &SLIM_TRACED_PACK)
    }
}

mod slim_minimal_pack {
    use super::*;
    #[test]
    fn static_go_alpine() {
        accept("static-go-alpine", &SLIM_MINIMAL_PACK)
    }
}

images! {
    debian_layers => "debian-layers",
    python_web => "python-web",
    nginx_static => "nginx-static",
    node_app => "node-app",
    jre_app => "jre-app",
    shell_cli => "shell-cli",
    static_go_alpine => "static-go-alpine",
    busybox_glibc => "busybox-glibc",
    busybox_musl => "busybox-musl",
    postgres => "postgres",
    redis => "redis",
    apache_php => "apache-php",
    ruby_gems => "ruby-gems",
    perl_xs => "perl-xs",
    tomcat => "tomcat",
    mariadb => "mariadb",
}
