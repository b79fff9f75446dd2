//! The I/O contract: outputs never destroy data, errors name the user's path and exit with the
//! documented code, human output is on stderr, interrupted or failed runs leave nothing.
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn busybox() -> PathBuf {
    shared_images().join("busybox-1.38.0-musl.oci")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file and directory under `d`, relative, sorted.
fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        walkdir::WalkDir::new(d).min_depth(1).into_iter().map(|e| e.unwrap().path().strip_prefix(d).unwrap().display().to_string()).collect();
    v.sort();
    v
}

/// A refused run: the code, one line naming `needle`, and nothing changed in `dir`.
fn refused(cmd: &mut Command, code: i32, needle: &str, dir: &Path) -> String {
    let before = tree_manifest(dir, true);
    let o = run(cmd);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{e}");
    // clap's usage errors add a hint line; our own errors are one line.
    if code != 2 {
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    }
    assert!(e.contains(needle), "the error names {needle}: {e}");
    assert!(!e.contains(".imgslim-") && !e.contains("imgslim-work-"), "no temp names: {e}");
    assert_eq!(before, tree_manifest(dir, true), "{} changed", dir.display());
    e
}

#[test]
fn existing_source_directory_is_never_destroyed() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("main.c"), "int main(){}").unwrap();
    for force in [false, true] {
        let mut c = imgslim();
        c.arg("squash").arg(busybox()).arg("-o").arg(&src);
        if force {
            c.arg("--force");
        }
        let e = refused(&mut c, 1, &src.display().to_string(), t.path());
        assert!(e.contains("not an OCI layout"), "{e}");
    }
    // The same for slim and for pack.
    refused(imgslim().arg("slim").arg(busybox()).arg("-o").arg(&src), 1, &src.display().to_string(), t.path());
    refused(imgslim().arg("pack").arg("/bin/true").arg("-o").arg(&src).arg("--force"), 1, &src.display().to_string(), t.path());
}

#[test]
fn output_overlapping_the_input_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("img");
    copy_dir(&busybox(), &img);
    let tar = t.path().join("img.tar");
    run_ok(imgslim().arg("squash").arg(&img).arg("-o").arg(&tar));
    for (input, out) in [(&img, img.clone()), (&img, img.join("blobs")), (&img, t.path().to_path_buf()), (&tar, tar.clone())] {
        for force in [false, true] {
            let mut c = imgslim();
            c.arg("squash").arg(input).arg("-o").arg(&out);
            if force {
                c.arg("--force");
            }
            let e = refused(&mut c, 1, &out.display().to_string(), t.path());
            assert!(e.contains("input image"), "{e}");
        }
    }
    // Through a relative path and a symlink too.
    std::os::unix::fs::symlink(&img, t.path().join("alias")).unwrap();
    refused(imgslim().current_dir(t.path()).args(["squash", "img", "-o", "alias", "--force"]), 1, "alias", t.path());
    refused(imgslim().arg("pack").arg(&tar).arg("-o").arg(&tar).arg("--force"), 1, &tar.display().to_string(), t.path());
}

#[test]
fn existing_file_needs_force_and_then_is_replaced_atomically() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("notes.tar");
    std::fs::write(&out, "precious").unwrap();
    let e = refused(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&out), 1, &out.display().to_string(), t.path());
    assert!(e.contains("--force"), "the line says which flag to use: {e}");
    // --report is checked before any work too: an existing report refuses the whole run.
    let rep = t.path().join("r.json");
    std::fs::write(&rep, "{}").unwrap();
    let fresh = t.path().join("fresh");
    refused(imgslim().arg("slim").arg(busybox()).arg("-o").arg(&fresh).arg("--report").arg(&rep), 1, &rep.display().to_string(), t.path());
    assert!(!fresh.exists(), "a late failure leaves none of the outputs");
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&out).arg("--force"));
    let r = run_ok(Command::new("tar").arg("-tf").arg(&out));
    assert!(String::from_utf8_lossy(&r.stdout).contains("index.json"));
    assert_eq!(listing(t.path()), ["notes.tar", "r.json"], "no temp files beside the output");
}

#[test]
fn existing_layout_gets_the_image_added_under_its_tag() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    // A layout made by skopeo with an unrelated image in it.
    let other = oci_layout(&t.path().join("other"), &[layer(&[E::File("hello", 0o644, b"hi")])], json!({}));
    run_ok(Command::new("skopeo").args(["copy", "-q"]).arg(format!("oci:{}:latest", other.display())).arg(format!("oci:{}:other", lay.display())));
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&lay).args(["--tag", "bb:1"]));
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&lay).args(["--tag", "bb:1", "--compression", "none"]));
    let idx: Value = serde_json::from_slice(&std::fs::read(lay.join("index.json")).unwrap()).unwrap();
    let refs: Vec<&str> = idx["manifests"].as_array().unwrap().iter().map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap()).collect();
    assert_eq!(refs, ["other", "bb:1"], "the other image stays, the tag is replaced, not duplicated");
    for r in ["other", "bb:1"] {
        run_ok(Command::new("skopeo").args(["inspect", "--raw"]).arg(format!("oci:{}:{r}", lay.display())));
    }
    // --force replaces the whole layout.
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&lay).args(["--tag", "bb:2", "--force"]));
    let idx: Value = serde_json::from_slice(&std::fs::read(lay.join("index.json")).unwrap()).unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(listing(t.path()).iter().filter(|p| p.contains(".imgslim")).count(), 0);
}

#[test]
fn pack_refuses_a_larger_result_unless_asked() {
    let t = tempfile::tempdir().unwrap();
    // A tiny static-ish executable: packing cannot make it smaller.
    let out = t.path().join("true.packed");
    let e = refused(imgslim().args(["pack", "/bin/true", "--any-size", "-o"]).arg(&out), 1, "/bin/true", t.path());
    assert!(e.contains("--allow-larger"), "{e}");
    run_ok(imgslim().args(["pack", "/bin/true", "--any-size", "--allow-larger", "-o"]).arg(&out));
    assert!(std::fs::metadata(&out).unwrap().len() > std::fs::metadata("/bin/true").unwrap().len());
    // And --force now means overwrite, as everywhere else.
    let e = refused(imgslim().args(["pack", "/bin/true", "--any-size", "--allow-larger", "-o"]).arg(&out), 1, &out.display().to_string(), t.path());
    assert!(e.contains("--force"), "{e}");
    run_ok(imgslim().args(["pack", "/bin/true", "--any-size", "--allow-larger", "--force", "-o"]).arg(&out));
}

pub fn copy_dir(from: &Path, to: &Path) {
    run_ok(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// Human output is on stderr for every subcommand; -q silences it; -v adds timed steps.
#[test]
fn human_output_is_on_stderr_quiet_and_verbose() {
    let t = tempfile::tempdir().unwrap();
    let runs: Vec<(&str, Vec<String>)> = vec![
        ("squash", vec!["squash".into(), busybox().display().to_string(), "-o".into()]),
        ("slim", vec!["slim".into(), busybox().display().to_string(), "--explain".into(), "/bin/sh".into(), "-o".into()]),
        ("pack", vec!["pack".into(), "/bin/true".into(), "--any-size".into(), "--allow-larger".into(), "-o".into()]),
    ];
    for (name, args) in &runs {
        for (flag, i) in [("", 0), ("-q", 1), ("-v", 2)] {
            let out = t.path().join(format!("{name}{i}"));
            let mut c = imgslim();
            c.args(args).arg(&out);
            if !flag.is_empty() {
                c.arg(flag);
            }
            let o = run_ok(&mut c);
            assert!(o.stdout.is_empty(), "{name} {flag}: stdout must stay empty: {}", String::from_utf8_lossy(&o.stdout));
            let e = stderr(&o);
            match flag {
                "-q" => assert!(e.is_empty(), "{name} -q: {e}"),
                "-v" => assert!(e.lines().any(|l| l.starts_with("step: ") && l.ends_with("s)")), "{name} -v: {e}"),
                _ => assert!(!e.is_empty() && !e.contains("step: "), "{name}: {e}"),
            }
        }
    }
}

#[test]
fn exit_codes_and_errors_naming_the_users_path() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("no-such-image");
    // 1: input problems, each naming what the user gave.
    refused(imgslim().arg("squash").arg(&missing).arg("-o").arg(t.path().join("o")), 1, &missing.display().to_string(), t.path());
    refused(imgslim().arg("squash").arg(busybox()).args(["--platform", "linux/s390x", "-o"]).arg(t.path().join("o")), 1, "linux/s390x", t.path());
    let bad = t.path().join("bad.toml");
    std::fs::write(&bad, "[[[").unwrap();
    refused(imgslim().arg("slim").arg(busybox()).arg("--dry-run").arg("--profile").arg(&bad), 1, &bad.display().to_string(), t.path());
    let no_dir = t.path().join("nodir/out");
    refused(imgslim().arg("squash").arg(busybox()).arg("-o").arg(&no_dir), 1, &no_dir.display().to_string(), t.path());
    // 2: usage errors.
    refused(imgslim().args(["squash", "x", "-o", "y", "--format", "floppy"]), 2, "floppy", t.path());
    refused(imgslim().arg("squash").arg(busybox()).args(["-o", "-", "--format", "oci"]), 2, "stdout", t.path());
    refused(imgslim().arg("squash").arg(busybox()).args(["-q", "-v", "-o"]).arg(t.path().join("o")), 2, "--quiet", t.path());
    // 0: help, including the help subcommand's own help; --help documents the exit codes.
    let h = run_ok(imgslim().arg("--help"));
    let h = String::from_utf8_lossy(&h.stdout);
    for code in ["130/143", "refused by policy", "usage error"] {
        assert!(h.contains(code), "--help documents exit codes: {h}");
        for sub in ["squash", "slim", "pack", "inspect"] {
            let o = run_ok(imgslim().args([sub, "--help"]));
            assert!(String::from_utf8_lossy(&o.stdout).contains(code), "{sub} --help documents exit codes");
        }
    }
    assert!(String::from_utf8_lossy(&run_ok(imgslim().args(["help", "--help"])).stdout).contains("Usage: imgslim help"));
    assert!(String::from_utf8_lossy(&run_ok(imgslim().args(["help", "pack"])).stdout).contains("--pack-level"));
    // Old spellings still work where scripts may rely on them.
    let out = t.path().join("p");
    run_ok(imgslim().args(["pack", "/bin/true", "--any-size", "--allow-larger", "--level", "1", "--method", "zstd", "-o"]).arg(&out));
}

fn glibc() -> PathBuf {
    shared_images().join("busybox-1.38.0-glibc.oci")
}

fn config_digest(image: &str) -> String {
    let o = run_ok(imgslim().args(["inspect", "--json", image]));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["config_digest"].as_str().unwrap().to_string()
}

#[test]
fn layout_with_two_refs_needs_a_ref_and_lists_them() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let two = t.path().join("two");
    for (img, r) in [(busybox(), "musl"), (glibc(), "glibc")] {
        run_ok(Command::new("skopeo").args(["copy", "-q"]).arg(format!("oci:{}", img.display())).arg(format!("oci:{}:{r}", two.display())));
    }
    let e = refused(imgslim().arg("squash").arg(&two).arg("-o").arg(t.path().join("o")), 1, &two.display().to_string(), t.path());
    assert!(e.contains("musl") && e.contains("glibc") && e.contains(":musl"), "lists the refs and how to name one: {e}");
    let e = refused(imgslim().arg("squash").arg(format!("oci:{}:alpine", two.display())).arg("-o").arg(t.path().join("o")), 1, "alpine", t.path());
    assert!(e.contains("musl, glibc"), "{e}");
    // Each ref opens its own image, never the first one.
    assert_eq!(config_digest(&format!("oci:{}:glibc", two.display())), config_digest(&glibc().display().to_string()));
    assert_eq!(config_digest(&format!("oci:{}:musl", two.display())), config_digest(&busybox().display().to_string()));
    assert_ne!(config_digest(&glibc().display().to_string()), config_digest(&busybox().display().to_string()));
}

#[test]
fn compressed_docker_save_is_read_like_docker_load() {
    if !have_tool("skopeo") || !have_tool("zstd") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tar = t.path().join("save.tar");
    run_ok(Command::new("skopeo").args(["copy", "-q"]).arg(format!("oci:{}", busybox().display())).arg(format!("docker-archive:{}:bb:1", tar.display())));
    run_ok(Command::new("gzip").arg("-k").arg(&tar));
    run_ok(Command::new("zstd").arg("-q").arg(&tar).arg("-o").arg(t.path().join("save.tar.zst")));
    let plain = t.path().join("plain.tar");
    run_ok(imgslim().arg("squash").arg(&tar).arg("-o").arg(&plain));
    for (i, input) in ["save.tar.gz", "save.tar.zst"].iter().enumerate() {
        let out = t.path().join(format!("o{i}.tar"));
        run_ok(imgslim().arg("squash").arg(t.path().join(input)).arg("-o").arg(&out));
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&plain).unwrap(), "{input}");
    }
    // From stdin too, gzip-compressed, and a corrupt one names the user's file.
    let gz = std::fs::File::open(t.path().join("save.tar.gz")).unwrap();
    let o = imgslim().args(["squash", "-", "-o"]).arg(t.path().join("stdin.tar")).stdin(gz).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(t.path().join("stdin.tar")).unwrap(), std::fs::read(&plain).unwrap());
    let mut bytes = std::fs::read(t.path().join("save.tar.gz")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let cut = t.path().join("cut.tar.gz");
    std::fs::write(&cut, bytes).unwrap();
    refused(imgslim().arg("squash").arg(&cut).arg("-o").arg(t.path().join("never")), 1, &cut.display().to_string(), t.path());
}

/// podman with its own store in `dir`, no daemon, runc as its runtime.
fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root").arg(dir.join("root")).arg("--runroot").arg(dir.join("run")).args(["--storage-driver", "vfs", "--runtime", "runc"]);
    c
}

#[test]
fn stdout_output_loads_into_podman_and_skopeo_without_shadowing_the_original() {
    if !have_tool("podman") || !have_tool("skopeo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let orig = t.path().join("orig.tar");
    run_ok(Command::new("skopeo").args(["copy", "-q"]).arg(format!("oci:{}", busybox().display())).arg(format!("docker-archive:{}:bb:1", orig.display())));
    run_ok(podman(t.path()).arg("load").arg("-i").arg(&orig));
    // imgslim slim ORIG -o - | podman load
    let mut slim = imgslim().arg("slim").arg(&orig).args(["-o", "-"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let load = podman(t.path()).arg("load").stdin(slim.stdout.take().unwrap()).output().unwrap();
    assert!(slim.wait().unwrap().success());
    assert!(load.status.success(), "{}", stderr(&load));
    let said = String::from_utf8_lossy(&load.stdout);
    assert!(said.contains("bb:1-slim"), "the slimmed image is bb:1-slim: {said}");
    // Both are in the store under their own names (podman run cannot set rlimits on this
    // machine; the slim tests run slimmed images under runc).
    let id = |image: &str| {
        let o = run_ok(podman(t.path()).args(["image", "inspect", "--format", "{{.Id}} {{.Config.Cmd}}", image]));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let (a, b) = (id("docker.io/library/bb:1"), id("docker.io/library/bb:1-slim"));
    assert_ne!(a.split(' ').next(), b.split(' ').next(), "the original is not shadowed: {a} / {b}");
    assert_eq!(a.split_once(' ').map(|x| x.1), b.split_once(' ').map(|x| x.1), "same Cmd: {a} / {b}");
    // skopeo reads our stream from stdin (skopeo 1.9 needs a seekable stdin even for its own
    // archives, so the stream goes through a file here), with the tag given as docker-archive:-:REF.
    let streamed = t.path().join("streamed.tar");
    let o = run_ok(imgslim().arg("squash").arg(busybox()).args(["-o", "docker-archive:-:me/bb:2"]).stdout(std::fs::File::create(&streamed).unwrap()));
    assert!(stderr(&o).contains("wrote stdout (docker-archive"), "{}", stderr(&o));
    let copy = t.path().join("copy");
    run_ok(Command::new("skopeo").args(["copy", "-q", "docker-archive:/dev/stdin"]).arg(format!("oci:{}:x", copy.display())).stdin(std::fs::File::open(&streamed).unwrap()));
    let m = run_ok(Command::new("tar").arg("-xOf").arg(&streamed).arg("manifest.json"));
    assert!(String::from_utf8_lossy(&m.stdout).contains("\"me/bb:2\""));
}

#[test]
fn tags_and_transports_are_checked_before_any_work() {
    let t = tempfile::tempdir().unwrap();
    for bad in ["Upper:1", "a:b:c", "x@sha256:00", "app:-x"] {
        let e = refused(imgslim().arg("squash").arg(busybox()).arg("-o").arg(t.path().join("o")).args(["--tag", bad]), 2, bad, t.path());
        assert!(e.contains("NAME[:TAG]"), "{e}");
    }
    // docker:// inputs and outputs are pulled and pushed: tests/registry.rs covers them against a
    // registry on loopback (never a public one).
    refused(imgslim().arg("squash").arg(format!("oci-archive:{}", busybox().display())).arg("-o").arg(t.path().join("o")), 1, &busybox().display().to_string(), t.path());
    // The format follows the name: `.tar` is an archive, a transport says which.
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(t.path().join("a.tar")));
    assert!(t.path().join("a.tar").is_file());
    run_ok(imgslim().arg("squash").arg(busybox()).arg("-o").arg(format!("oci:{}:v9", t.path().join("lay").display())));
    let idx: Value = serde_json::from_slice(&std::fs::read(t.path().join("lay/index.json")).unwrap()).unwrap();
    assert_eq!(idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v9");
}

/// An image that takes a second or more to squash: 48 MiB of poorly compressible files.
fn big_image(dir: &Path) -> PathBuf {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let files: Vec<(String, Vec<u8>)> = (0..48)
        .map(|i| {
            let data: Vec<u8> = (0..1 << 20)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 56) as u8 & 0x7f
                })
                .collect();
            (format!("data/f{i:02}"), data)
        })
        .collect();
    let mut entries = vec![E::Dir("data/", 0o755)];
    entries.extend(files.iter().map(|(n, d)| E::File(n, 0o644, d)));
    oci_layout(dir, &[layer(&entries)], json!({"Cmd": ["/bin/true"]}))
}

/// Everything left in `dir` whose name says imgslim made it.
fn leftovers(dir: &Path) -> Vec<String> {
    listing(dir).into_iter().filter(|p| p.contains("imgslim")).collect()
}

#[test]
fn sigint_and_sigterm_leave_nothing_behind() {
    let t = tempfile::tempdir().unwrap();
    let img = big_image(&t.path().join("img"));
    let (tmp, outdir) = (t.path().join("tmp"), t.path().join("out"));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&outdir).unwrap();
    let runs: Vec<(&str, Vec<String>)> = vec![
        ("squash", vec!["squash".into(), img.display().to_string()]),
        ("slim", vec!["slim".into(), img.display().to_string(), "--report".into(), outdir.join("r.json").display().to_string()]),
        ("pack", vec!["pack".into(), "/usr/bin/podman".into(), "--any-size".into(), "--pack-method".into(), "lzma".into()]),
    ];
    let mut interrupted = 0;
    for (name, args) in &runs {
        for (i, delay_ms) in [20u64, 150, 400, 900, 1600].iter().enumerate() {
            let sig = if i % 2 == 0 { libc::SIGINT } else { libc::SIGTERM };
            let out = outdir.join(format!("{name}-{i}"));
            let child = imgslim().args(args).arg("-o").arg(&out).env("TMPDIR", &tmp).stderr(std::process::Stdio::piped()).spawn().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(*delay_ms));
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, sig) };
            let o = child.wait_with_output().unwrap();
            match o.status.code() {
                Some(0) => {
                    // Finished before the signal: a complete output.
                    assert!(out.exists(), "{name} at {delay_ms} ms");
                    let _ = std::fs::remove_dir_all(&out).or_else(|_| std::fs::remove_file(&out));
                    let _ = std::fs::remove_file(outdir.join("r.json"));
                }
                code => {
                    assert_eq!(code, Some(128 + sig), "{name} at {delay_ms} ms: {}", stderr(&o));
                    interrupted += 1;
                    assert!(!out.exists(), "{name} at {delay_ms} ms: nothing at OUT");
                    assert!(!outdir.join("r.json").exists(), "{name} at {delay_ms} ms: no report");
                }
            }
            assert_eq!(leftovers(&outdir), Vec::<String>::new(), "{name} at {delay_ms} ms: temp files beside OUT");
            assert_eq!(listing(&tmp), Vec::<String>::new(), "{name} at {delay_ms} ms: the work area is left behind");
        }
    }
    eprintln!("{interrupted} of 15 runs interrupted");
    assert!(interrupted >= 8, "most runs must really be interrupted ({interrupted} were)");
}

/// A small tmpfs at `dir`, unmounted when dropped. None when we may not mount (not root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str, opts: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}{opts}"), "tmpfs"]).arg(dir).output().unwrap();
        if !o.status.success() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root and must mount a tmpfs: {}", stderr(&o));
            eprintln!("SKIP: cannot mount a tmpfs: {}", stderr(&o));
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

#[test]
fn full_output_or_work_filesystem_is_one_line_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let img = big_image(&t.path().join("img"));
    let Some(small_out) = Tmpfs::mount(&t.path().join("small-out"), "4m", "") else { return };
    let Some(small_tmp) = Tmpfs::mount(&t.path().join("small-tmp"), "4m", "") else { return };
    let mount_of = |p: &Path| p.display().to_string();
    // What each step really needs, measured by the same runs on a roomy filesystem: the
    // error must name exactly that many bytes.
    let roomy = |cmd: &str, name: &str, extra: &[&str]| -> u64 {
        let out = t.path().join(name);
        run_ok(imgslim().arg(cmd).arg(&img).arg("-o").arg(&out).args(["--format", "oci"]).args(extra));
        let idx: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let m = idx["manifests"][0]["digest"].as_str().unwrap().replace("sha256:", "");
        let man: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(m)).unwrap()).unwrap();
        man["layers"][0]["size"].as_u64().unwrap()
    };
    let need = |e: &str| -> u64 {
        let tail = e.split("needed ").nth(1).unwrap_or_else(|| panic!("no 'needed' in: {e}"));
        tail.split('(').nth(1).and_then(|b| b.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no byte count in: {e}"))
    };
    let report = t.path().join("report.json");
    let report_arg = report.display().to_string();
    for (cmd, out, extra) in [("squash", small_out.0.join("o"), vec![]), ("slim", small_out.0.join("o.tar"), vec!["--keep", "/data/**", "--report", &report_arg])] {
        let e = refused(imgslim().arg(cmd).arg(&img).arg("-o").arg(&out).args(extra), 1, &out.display().to_string(), t.path().join("img").as_path());
        assert!(e.contains(&format!("filesystem mounted at {} is full", mount_of(&small_out.0))) && e.contains("MB was free there"), "{e}");
        let extra: &[&str] = if cmd == "slim" { &["--keep", "/data/**"] } else { &[] };
        assert_eq!(need(&e), roomy(cmd, &format!("roomy-{cmd}"), extra), "the layer blob's size: {e}");
        assert_eq!(listing(&small_out.0), Vec::<String>::new(), "nothing left on the full filesystem");
        assert!(!report.exists(), "a late failure of -o leaves no --report either");
    }
    let out = t.path().join("fine");
    let e = refused(imgslim().arg("squash").arg(&img).arg("-o").arg(&out).env("TMPDIR", &small_tmp.0), 1, "$TMPDIR", t.path().join("img").as_path());
    assert!(e.contains(&format!("filesystem mounted at {} is full", mount_of(&small_tmp.0))) && e.contains("unpacking"), "{e}");
    // Unpacking spools every regular file's content: big_image has 48 files of 1 MiB.
    assert_eq!(need(&e), 48 << 20, "{e}");
    assert!(!out.exists());
    assert_eq!(listing(&small_tmp.0), Vec::<String>::new(), "the work area is gone");
    // stdin spooled into a full work area: the same line, nothing left.
    let big_tar = t.path().join("big.tar");
    run_ok(imgslim().arg("squash").arg(&img).arg("-o").arg(&big_tar).args(["--compression", "none"]));
    let o = imgslim().args(["squash", "-", "-o"]).arg(&out).env("TMPDIR", &small_tmp.0).stdin(std::fs::File::open(&big_tar).unwrap()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("is full"), "{}", stderr(&o));
    assert_eq!(need(&stderr(&o)), std::fs::metadata(&big_tar).unwrap().len(), "stdin is spooled whole: {}", stderr(&o));
    assert_eq!(listing(&small_tmp.0), Vec::<String>::new());
}

#[test]
fn concurrent_runs_on_one_output_both_finish_with_one_valid_image() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = big_image(&t.path().join("img"));
    let tmp = t.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // Reference outputs, one per tag: OUT must be byte-identical to one of them.
    let refs: Vec<Vec<u8>> = ["a:1", "b:2"]
        .iter()
        .map(|tag| {
            let p = t.path().join(format!("ref-{tag}.tar"));
            run_ok(imgslim().arg("squash").arg(&img).arg("-o").arg(&p).args(["--tag", tag, "--compression", "none"]));
            std::fs::read(&p).unwrap()
        })
        .collect();
    for round in 0..3 {
        let (file, layout) = (t.path().join(format!("same-{round}.tar")), t.path().join(format!("lay-{round}")));
        let spawn = |out: &Path, tag: &str| {
            imgslim().arg("squash").arg(&img).arg("-o").arg(out).args(["--tag", tag, "--compression", "none"]).env("TMPDIR", &tmp).spawn().unwrap()
        };
        let kids = [spawn(&file, "a:1"), spawn(&file, "b:2"), spawn(&layout, "a:1"), spawn(&layout, "b:2")];
        for k in kids {
            let o = k.wait_with_output().unwrap();
            assert!(o.status.success(), "both runs finish");
        }
        let got = std::fs::read(&file).unwrap();
        assert!(refs.contains(&got), "round {round}: OUT is one complete image, never a mixture");
        // Both images are in the layout, each under its tag, and each is valid.
        for tag in ["a:1", "b:2"] {
            run_ok(Command::new("skopeo").args(["copy", "-q"]).arg(format!("oci:{}:{tag}", layout.display())).arg(format!("oci:{}:x", t.path().join(format!("check-{round}-{tag}")).display())));
        }
        assert_eq!(leftovers(t.path()), Vec::<String>::new(), "no temp files");
        assert_eq!(listing(&tmp), Vec::<String>::new(), "two runs sharing a work area clean up after themselves");
    }
}

#[test]
fn read_only_input_is_never_modified() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    copy_dir(&busybox(), &src);
    let ro = t.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let bind = Command::new("mount").arg("--bind").arg(&src).arg(&ro).output().unwrap();
    if !bind.status.success() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root: {}", stderr(&bind));
        return;
    }
    let _guard = Tmpfs(ro.clone());
    run_ok(Command::new("mount").args(["-o", "remount,ro,bind"]).arg(&ro));
    let before = tree_manifest(&ro, true);
    let atimes = tree_manifest(&src, true);
    run_ok(imgslim().arg("squash").arg(&ro).arg("-o").arg(t.path().join("sq")));
    run_ok(imgslim().arg("slim").arg(&ro).arg("-o").arg(t.path().join("sl.tar")).arg("--report").arg(t.path().join("r.json")));
    run_ok(imgslim().arg("inspect").arg(&ro));
    assert_eq!(before, tree_manifest(&ro, true));
    assert_eq!(atimes, tree_manifest(&src, true));
    // An output on a read-only filesystem: one line naming it, exit 1.
    let Some(rofs) = Tmpfs::mount(&t.path().join("rofs"), "1m", ",ro") else { return };
    let out = rofs.0.join("out");
    let e = refused(imgslim().arg("squash").arg(&ro).arg("-o").arg(&out), 1, &out.display().to_string(), &src);
    assert!(e.to_lowercase().contains("read-only"), "{e}");
}

#[test]
fn report_streams_to_stdout() {
    let o = run_ok(imgslim().arg("slim").arg(busybox()).args(["--dry-run", "--report", "-"]));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is the JSON report alone");
    assert!(v["paths"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(stderr(&o).contains("dry run"), "the summary is on stderr");
    refused(imgslim().arg("slim").arg(busybox()).args(["-o", "-", "--report", "-"]), 2, "stdout", &busybox());
}

#[test]
fn a_reader_that_goes_away_leaves_no_work_area() {
    let t = tempfile::tempdir().unwrap();
    let img = big_image(&t.path().join("img"));
    let tmp = t.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = imgslim().arg("squash").arg(&img).args(["-o", "-"]).env("TMPDIR", &tmp).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut head = [0u8; 512];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "a closed stdout is an error, not a SIGPIPE death: {}", stderr(&o));
    assert!(stderr(&o).contains("stdout"), "{}", stderr(&o));
    assert_eq!(listing(&tmp), Vec::<String>::new(), "the work area is removed");
}

#[test]
fn a_directory_that_appears_at_out_during_the_run_is_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let img = big_image(&t.path().join("img"));
    for name in ["out.tar", "out-layout"] {
        let out = t.path().join(name);
        let child = imgslim().arg("squash").arg(&img).arg("-o").arg(&out).stderr(std::process::Stdio::piped()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("precious.c"), "int main(){}").unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("changed while imgslim ran"), "{name}: {}", stderr(&o));
        assert_eq!(listing(&out), ["precious.c"], "{name}: the user's directory is untouched");
        assert_eq!(leftovers(t.path()), Vec::<String>::new());
    }
}
