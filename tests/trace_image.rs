//! `imgslim trace` and `slim --trace/--from-trace` on a real image (busybox plus an app whose
//! data file and plugin are only known at run time). Oracle: the original image's own answer
//! in the sandbox; the static slim must lose it, the traced slim must give it back, and a file
//! nothing used must still be dropped.
mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

const SCRIPT: &[u8] = b"#!/bin/sh\nset -e\nname=$(cat /app/conf)\ncat /opt/data/$name\nfor p in $(ls /opt/plugins); do cat /opt/plugins/$p; done\ncat /opt/link/inner 2>/dev/null || echo no-inner\n";

fn app_image(dir: &Path) -> PathBuf {
    let extra = layer(&[
        E::Dir("app", 0o755),
        E::File("app/run.sh", 0o755, SCRIPT),
        E::File("app/conf", 0o644, b"beta\n"),
        E::Dir("opt", 0o755),
        E::Dir("opt/data", 0o755),
        E::File("opt/data/alpha", 0o644, b"alpha-data\n"),
        E::File("opt/data/beta", 0o644, b"beta-data\n"),
        E::Dir("opt/plugins", 0o755),
        E::File("opt/plugins/p1", 0o644, b"plugin-one\n"),
        E::Dir("opt/real", 0o755),
        E::File("opt/real/inner", 0o644, b"inner-data\n"),
        E::Symlink("opt/link", "real"),
        E::File("opt/unused.bin", 0o644, &[7u8; 4096]),
        E::FileFull("opt/secret", 0o600, 0, 0, 0, b"root-only\n"),
    ]);
    let base = shared_images().join("busybox-1.38.0-musl.oci");
    oci_layout(&dir.join("img"), &[first_layer(&base), extra], json!({"Entrypoint": ["/app/run.sh"]}))
}

fn run_image(img: &Path, tmp: &Path) -> (i32, String) {
    let o = imgslim().env("TMPDIR", tmp).arg("run").arg(img).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned())
}

fn slim(img: &Path, out: &Path, tmp: &Path, extra: &[&str]) -> String {
    let o = run_ok(imgslim().env("TMPDIR", tmp).arg("slim").arg(img).arg("-o").arg(out).args(["--explain", "/opt/data/beta", "--explain", "/opt/unused.bin"]).args(extra));
    // --explain is human output: stderr (the CLI contract).
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn traced_slim_answers_like_the_original_and_still_drops_unused_files() {
    if !must_be_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tmp = t.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let img = app_image(t.path());
    let (code, want) = run_image(&img, &tmp);
    assert_eq!((code, want.as_str()), (0, "beta-data\nplugin-one\ninner-data\n"));

    // Static analysis cannot know the data file named in /app/conf.
    let stat = slim(&img, &t.path().join("static"), &tmp, &[]);
    assert!(stat.contains("/opt/data/beta: dropped"), "{stat}");
    assert_ne!(run_image(&t.path().join("static"), &tmp), (0, want.clone()));

    let trace = t.path().join("trace.json");
    run_ok(imgslim().env("TMPDIR", &tmp).arg("trace").arg(&img).arg("-o").arg(&trace));
    let tf: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    assert!(tf["config_digest"].as_str().unwrap().starts_with("sha256:"));
    let evs = tf["events"].as_array().unwrap();
    assert!(evs.iter().any(|e| e["path"] == "/opt/data/beta" && e["result"] == "ok" && e["exe"] == "cat"), "{}", serde_json::to_string_pretty(evs).unwrap());

    let out = t.path().join("traced");
    let report = slim(&img, &out, &tmp, &["--from-trace", trace.to_str().unwrap()]);
    assert!(report.contains("/opt/data/beta: kept: traced: open O_RDONLY by cat (pid "), "{report}");
    assert!(report.contains("/opt/unused.bin: dropped"), "a file nothing used is gone\n{report}");
    assert_eq!(run_image(&out, &tmp), (0, want.clone()), "traced slim answers like the original");

    // Traced in place: the same answer.
    let out2 = t.path().join("traced2");
    slim(&img, &out2, &tmp, &["--trace"]);
    assert_eq!(run_image(&out2, &tmp), (0, want));
    assert!(std::fs::read_dir(&tmp).unwrap().next().is_none(), "work areas left in TMPDIR");
}

/// `slim --trace` runs the app as `run` would with the same flags: what the traced run read
/// decides what stays. Each command below reads /opt/data/alpha only if the flag is honoured
/// (the image's own entrypoint reads beta; the name comes from `$(echo $F)`, which only the run
/// decides: static analysis resolves `$F` itself, but not a command's output).
#[test]
fn slim_trace_runs_the_app_with_entrypoint_cmd_args_env_and_user() {
    if !must_be_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = app_image(t.path());
    let sh = ["--entrypoint", r#"["/bin/sh","-c"]"#];
    let cases: [(&str, Vec<&str>); 3] = [
        ("--cmd and --env", [&sh[..], &["--cmd", r#"["cat /opt/data/$(echo $F)"]"#, "--env", "F=alpha"]].concat()),
        // As root /opt/secret (0600 root) is readable and alpha is never opened.
        ("--user", [&sh[..], &["--cmd", r#"["cat /opt/secret || cat /opt/data/$(echo $F)"]"#, "--env", "F=alpha", "--user", "65534"]].concat()),
        ("-- ARGS", vec!["--entrypoint", r#"["/bin/cat"]"#, "--", "/opt/data/alpha"]),
    ];
    for (what, flags) in cases {
        let (before, after) = match flags.iter().position(|f| *f == "--") {
            Some(i) => flags.split_at(i),
            None => (&flags[..], &[][..]),
        };
        let o = run_ok(imgslim().arg("slim").arg(&img).args(["--dry-run", "--trace", "--explain", "/opt/data/alpha", "--explain", "/opt/data/beta"]).args(before).args(after));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("/opt/data/alpha: kept: traced: open"), "{what}: alpha must be traced\n{err}");
        assert!(err.contains("/opt/data/beta: dropped"), "{what}: the image's own command must not have run\n{err}");
    }
}

#[test]
fn a_trace_of_another_image_is_refused() {
    if !must_be_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = app_image(t.path());
    let trace = t.path().join("other.json");
    let bb = shared_images().join("busybox-1.38.0-musl.oci");
    run_ok(imgslim().arg("trace").arg(&bb).arg("-o").arg(&trace).args(["--", "true"]));
    let o = run(imgslim().arg("slim").arg(&img).arg("--dry-run").arg("--from-trace").arg(&trace));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("other.json: traced on another image"), "{err}");
}

/// Uncompressed bytes of a slim's output, from its summary line.
fn slim_size(out: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with("result: ")).unwrap_or_else(|| panic!("{out}"));
    let after = line.split("-> ").nth(1).unwrap();
    let mut w = after.split_whitespace();
    let n: f64 = w.next().unwrap().parse().unwrap();
    n * match w.next().unwrap() {
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => 1.0,
    }
}

/// python-web: the acceptance suite's probes drive the trace, then `slim --verify` with the
/// same probes proves the traced slims answer like the original (minimal and --level traced),
/// and --level traced keeps only the stdlib modules that ran.
#[test]
fn python_web_traced_slims_pass_verify_and_level_traced_drops_unimported_stdlib() {
    if !must_be_root() {
        return;
    }
    let Some(img) = acceptance_image("python-web") else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "umoci missing under CI");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let probes = [
        "--http", "18081/health", "--http", "18081/data", "--http", "18081/static", "--http", "18081/nope",
        "--exec", "whoami", "--exec", "id",
        "--exec", "python3 -c 'import ssl, sqlite3, hashlib; print(ssl.create_default_context().cert_store_stats())'",
    ];
    let trace = t.path().join("t.json");
    run_ok(imgslim().arg("trace").arg(&img).arg("-o").arg(&trace).args(probes));
    let slim = |name: &str, extra: &[&str]| {
        let o = run(imgslim().arg("slim").arg(&img).arg("-o").arg(t.path().join(name)).args(["--format", "oci"]).args(extra));
        let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{name}\n{text}");
        text
    };
    let stat = slim_size(&slim("static", &[]));
    let mut args = vec!["--from-trace", trace.to_str().unwrap(), "--verify"];
    args.extend(probes);
    let minimal = slim("minimal", &args);
    assert!(minimal.contains("verify: the candidate answered every probe"), "{minimal}");
    assert!(slim_size(&minimal) >= stat, "a traced minimal slim is never smaller than the static one");
    args.extend(["--level", "traced", "--explain", "/usr/lib/python3.11/turtle.py", "--explain", "/usr/lib/python3.11/encodings/__pycache__/aliases.cpython-311.pyc"]);
    let traced = slim("traced", &args);
    assert!(traced.contains("verify: the candidate answered every probe"), "{traced}");
    assert!(traced.contains("aliases.cpython-311.pyc: kept: traced: openat O_RDONLY by python3.11"), "{traced}");
    assert!(traced.contains("/usr/lib/python3.11/turtle.py: dropped"), "{traced}");
    // Measured 50.0 MB static minimal -> 24.6 MB at --level traced (16.4x of the original).
    assert!(slim_size(&traced) * 1.8 < stat, "--level traced {} vs static {}", slim_size(&traced), stat);
}

/// SIGKILL cannot be caught: the trace is written unnamed (O_TMPFILE) and linked in at the end,
/// so a killed `trace -o FILE` leaves nothing beside FILE (before, a `.tmpXXXX` stayed there).
#[test]
fn a_killed_trace_leaves_nothing_next_to_its_output() {
    if !must_be_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (out, tmp) = (t.path().join("out"), t.path().join("tmp"));
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    let img = shared_images().join("busybox-1.38.0-musl.oci");
    let mut child = imgslim().env("TMPDIR", &tmp).arg("trace").arg(&img).arg("-o").arg(out.join("t.json")).args(["--", "sleep", "3003"]).spawn().unwrap();
    // Mid-trace: the traced app runs (visible in the host's /proc).
    let running = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x003003\x00"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !running() {
        assert!(std::time::Instant::now() < deadline, "the traced app never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left beside the output: {left:?}");
    // The guardian removes the work area; the app dies with imgslim.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_dir(&tmp).unwrap().next().is_some() || running() {
        assert!(std::time::Instant::now() < deadline, "work area or traced app left after SIGKILL");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
