//! `imgslim run` / `verify` on real images, as root and as an unprivileged uid (rootless):
//! the config is honoured, the app is confined (host files, host loopback, hostile images),
//! and nothing is left behind when imgslim is stopped or killed.
mod common;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

fn busybox_musl() -> PathBuf {
    shared_images().join("busybox-1.38.0-musl.oci")
}
fn busybox_glibc() -> PathBuf {
    shared_images().join("busybox-1.38.0-glibc.oci")
}

/// A work dir every uid may use, as TMPDIR for imgslim (so leftovers are visible).
fn open_tmp() -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix("imgslim-sbx-test-").tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    t
}

/// imgslim as root (`None`) or as an unprivileged uid through setpriv (rootless).
fn imgslim_as(uid: Option<u32>, tmp: &Path) -> Command {
    let mut c = match uid {
        None => imgslim(),
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args([format!("--reuid={u}"), format!("--regid={u}"), "--clear-groups".into()]).arg(env!("CARGO_BIN_EXE_imgslim"));
            c
        }
    };
    c.env("TMPDIR", tmp).stdin(Stdio::null());
    c
}

fn text(o: &Output) -> (i32, String, String) {
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn must_be_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "the sandbox tests run as root under CI");
        eprintln!("SKIP: not root");
    }
    root
}

/// The uncompressed first layer of a single-layer layout.
fn first_layer(layout: &Path) -> Vec<u8> {
    let rd = |d: &str| std::fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let idx: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&rd(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&rd(m["layers"][0]["digest"].as_str().unwrap())[..]).read_to_end(&mut out).unwrap();
    out
}

/// busybox (static musl) plus one more layer, with this runtime config.
fn busybox_plus(dir: &Path, extra: &[E], runtime: serde_json::Value) -> PathBuf {
    oci_layout(dir, &[first_layer(&busybox_musl()), layer(extra)], runtime)
}

fn no_leftovers(tmp: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = std::fs::read_dir(tmp).unwrap().flatten().map(|e| e.path()).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind in TMPDIR: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&tmp.display().to_string()), "a mount under {} is left:\n{mounts}", tmp.display());
}

/// Pids of processes whose command line is `needle` (not imgslim's, which contains it).
fn processes_with(needle: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).replace('\0', " ").trim_end() == needle {
            v.push(pid);
        }
    }
    v
}

#[test]
fn run_honours_image_config_and_overrides_as_root_and_rootless() {
    if !must_be_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let runtime = json!({"User": "4242:4343", "Env": ["FOO=bar"], "WorkingDir": "/srv/app",
        "Entrypoint": ["sh", "-c"], "Cmd": ["echo $FOO; pwd; id -u; id -g; hostname; exit 5"]});
    let img = busybox_plus(t.path(), &[E::Dir("srv", 0o755)], runtime);
    for uid in [None, Some(NOBODY)] {
        let tmp = open_tmp();
        let o = imgslim_as(uid, tmp.path()).arg("run").arg(&img).output().unwrap();
        assert_eq!(text(&o), (5, "bar\n/srv/app\n4242\n4343\nimgslim\n".into(), String::new()), "as {uid:?}");
        let o = imgslim_as(uid, tmp.path()).args(["run", "--env", "FOO=baz", "--user", "0"]).arg(&img).args(["--", "echo $FOO $(id -u) $HOME"]).output().unwrap();
        assert_eq!(text(&o), (0, "baz 0 /root\n".into(), String::new()), "as {uid:?}");
        let o = imgslim_as(uid, tmp.path()).args(["run", "--entrypoint", "/bin/no-such"]).arg(&img).output().unwrap();
        assert_eq!(o.status.code(), Some(127), "{:?}", text(&o));
        no_leftovers(tmp.path());
    }
}

#[test]
fn app_cannot_read_or_write_host_files_and_every_run_is_pristine() {
    if !must_be_root() {
        return;
    }
    let host = tempfile::tempdir().unwrap();
    std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let secret = host.path().join("secret");
    std::fs::write(&secret, "host-secret-42\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
    let h = host.path().display();
    for uid in [None, Some(NOBODY)] {
        let tmp = open_tmp();
        let script = format!("cat {h}/secret; echo pwned > {h}/secret; echo x > {h}/new; ls /work /root/.. /proc/1/root/work; echo mark > /etc/marker; cat /etc/marker");
        let o = imgslim_as(uid, tmp.path()).arg("run").arg(busybox_musl()).args(["--", "sh", "-c", &script]).output().unwrap();
        let (_, out, err) = text(&o);
        assert!(!out.contains("host-secret") && !err.contains("host-secret"), "{out}{err}");
        assert_eq!(out.lines().last(), Some("mark"), "the overlay is writable: {out}{err}");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host-secret-42\n");
        assert!(!host.path().join("new").exists());
        // The next run starts from the image again.
        let o = imgslim_as(uid, tmp.path()).arg("run").arg(busybox_musl()).args(["--", "cat", "/etc/marker"]).output().unwrap();
        assert_ne!(o.status.code(), Some(0), "{:?}", text(&o));
        no_leftovers(tmp.path());
    }
}

#[test]
fn isolated_network_cannot_reach_the_host_loopback_and_binds_port_80_rootless() {
    if !must_be_root() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let _ = c.write_all(b"host-service\n");
        }
    });
    let tmp = open_tmp();
    let probe = format!("echo | nc -w 2 127.0.0.1 {port}");
    for uid in [None, Some(NOBODY)] {
        let o = imgslim_as(uid, tmp.path()).arg("run").arg(busybox_musl()).args(["--", "sh", "-c", &probe]).output().unwrap();
        assert!(!text(&o).1.contains("host-service"), "isolated run reached the host: {:?}", text(&o));
        let o = imgslim_as(uid, tmp.path()).args(["run", "--network", "host"]).arg(busybox_musl()).args(["--", "sh", "-c", &probe]).output().unwrap();
        assert_eq!(text(&o).1, "host-service\n", "--network host: {:?}", text(&o));
        // A non-root server binds :80 in its own namespace; the probe reaches it from inside.
        let o = imgslim_as(uid, tmp.path())
            .args(["run", "--user", "1000", "--http", "80/hello.txt", "--ready-timeout", "10"])
            .arg(busybox_musl())
            .args(["--", "sh", "-c", "mkdir -p /tmp/www && echo hi-from-80 > /tmp/www/hello.txt && exec httpd -f -p 80 -h /tmp/www"])
            .output()
            .unwrap();
        let (code, _, err) = text(&o);
        assert!(code == 0 && err.contains("probe GET :80/hello.txt: status=200") && err.contains("hi-from-80"), "{code} {err}");
    }
    no_leftovers(tmp.path());
}

/// Start `imgslim run … sleep <marker>`, wait for the sleep to run, signal imgslim.
fn kill_run(uid: Option<u32>, sig: i32, marker: &str) {
    let tmp = open_tmp();
    let mut child = imgslim_as(uid, tmp.path()).arg("run").arg(busybox_musl()).args(["--", "sleep", marker]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_with(&format!("sleep {marker}")).is_empty() {
        assert!(Instant::now() < deadline, "the app never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // setpriv execs imgslim: the child pid is imgslim's.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::try_from(sig).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("imgslim did not exit after signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if sig == libc::SIGTERM {
        assert_eq!(status.code(), Some(128 + sig));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&format!("sleep {marker}")).is_empty() {
        assert!(Instant::now() < deadline, "the app survived imgslim's signal {sig}");
        std::thread::sleep(Duration::from_millis(50));
    }
    no_leftovers(tmp.path());
}

#[test]
fn sigterm_or_sigkill_of_imgslim_leaves_no_process_mount_or_temp_file() {
    if !must_be_root() {
        return;
    }
    kill_run(None, libc::SIGTERM, "86401");
    kill_run(None, libc::SIGKILL, "86402");
    kill_run(Some(NOBODY), libc::SIGTERM, "86403");
    kill_run(Some(NOBODY), libc::SIGKILL, "86404");
}

#[test]
fn run_for_ends_a_running_app_and_everything_it_started() {
    if !must_be_root() {
        return;
    }
    let tmp = open_tmp();
    let t0 = Instant::now();
    let o = imgslim_as(None, tmp.path()).args(["run", "--run-for", "1"]).arg(busybox_musl()).args(["--", "sh", "-c", "sleep 86405 & sleep 86406"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(processes_with("sleep 86405").is_empty() && processes_with("sleep 86406").is_empty());
    no_leftovers(tmp.path());
}

#[test]
fn hostile_image_gains_nothing() {
    if !must_be_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let shadow_before = std::fs::read("/etc/shadow").unwrap();
    let host_root_line = String::from_utf8_lossy(&shadow_before).lines().next().unwrap().to_string();
    let busybox = {
        let mut ar = tar::Archive::new(std::io::Cursor::new(first_layer(&busybox_musl())));
        // The one regular file with content among busybox's 400 hardlinked names.
        let mut e = ar.entries().unwrap().flatten().find(|e| e.header().entry_type().is_file() && e.size() > 100_000).unwrap();
        let mut v = Vec::new();
        e.read_to_end(&mut v).unwrap();
        v
    };
    let extra = [
        E::Symlink("shadow", "/etc/shadow"),
        E::Symlink("etc/hosts", "/etc/shadow"),
        E::Char("mem", 1, 1),
        E::Block("disk", 8, 0),
        E::FileFull("bin/busybox-suid", 0o4755, 0, 0, 1_600_000_000, &busybox),
    ];
    let img = busybox_plus(t.path(), &extra, json!({"User": "1000", "Cmd": ["sh"]}));
    for uid in [None, Some(NOBODY)] {
        let tmp = open_tmp();
        let script = "cat /shadow; head -c 8 /mem; test -c /mem && echo DEVICE; test -b /disk && echo DEVICE; /bin/busybox-suid id -u; /bin/busybox-suid cat /shadow; cat /etc/hosts";
        let o = imgslim_as(uid, tmp.path()).arg("run").arg(&img).args(["--", "sh", "-c", script]).output().unwrap();
        let (_, out, err) = text(&o);
        // The symlink resolves inside the container (the image's own shadow, never the host's).
        assert!(!out.contains(&host_root_line), "host /etc/shadow leaked: {out}");
        assert!(out.contains("\n1000\n") || out.starts_with("1000\n"), "setuid gave root: {out}{err}");
        assert!(out.contains("localhost"), "generated /etc/hosts: {out}{err}");
        assert!(!out.contains("DEVICE"), "an image device node was created: {out}");
        assert_eq!(std::fs::read("/etc/shadow").unwrap(), shadow_before);
        no_leftovers(tmp.path());
    }
}

#[test]
fn verify_passes_on_a_good_candidate_and_fails_on_one_missing_a_library() {
    if !must_be_root() || !have_tool("umoci") || !have_tool("skopeo") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (good, broken) = (t.path().join("good"), t.path().join("broken"));
    let mutate = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/mutate.sh");
    run_ok(Command::new("skopeo").args(["copy", "-q"]).arg(format!("oci:{}", busybox_glibc().display())).arg(format!("oci:{}:latest", good.display())));
    run_ok(Command::new(&mutate).arg(busybox_glibc()).arg(&broken).args(["/lib/libc.so.6", "/lib64/libc.so.6"]));
    run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(t.path()));
    let probes = ["--exec", "ls /bin/ls", "--exec", "sh -c 'echo $((6*7))'", "--", "sh", "-c", "echo app-out"];
    for uid in [None, Some(NOBODY)] {
        let tmp = open_tmp();
        let o = imgslim_as(uid, tmp.path()).arg("verify").arg(busybox_glibc()).arg(&good).args(probes).output().unwrap();
        let (code, out, err) = text(&o);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(out.matches(" same ").count(), 3, "{out}");
        let o = imgslim_as(uid, tmp.path()).arg("verify").arg(busybox_glibc()).arg(&broken).args(probes).output().unwrap();
        let (code, out, err) = text(&o);
        assert_eq!(code, 3, "{out}{err}");
        assert_eq!(out.matches("DIFFER").count(), 3, "{out}");
        assert!(err.contains("3 of 3 probes answered differently: exec ls /bin/ls"), "{err}");
        // The candidate re-run under the tracer: the library it looked for and the original has.
        assert!(err.contains("keep them: --keep /lib/libc.so.6") || err.contains("keep them: --keep /lib64/libc.so.6"), "as {uid:?}: {err}");
        no_leftovers(tmp.path());
    }
}

fn acceptance_image(name: &str) -> Option<PathBuf> {
    if !have_tool("umoci") {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acceptance/build.sh");
    let o = run_ok(Command::new(script).arg(name));
    Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("oci"))
}

#[test]
fn http_probes_against_real_server_images_match_runc() {
    if !must_be_root() || !have_tool("runc") {
        return;
    }
    let Some(cached) = acceptance_image("static-go-alpine") else { return };
    let t = tempfile::tempdir().unwrap();
    // A copy every uid can read (the cache is root's).
    let go = t.path().join("oci");
    run_ok(Command::new("cp").arg("-r").arg(&cached).arg(&go));
    run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(t.path()));
    // The oracle: the same image's answers under runc (host network, port 18085).
    let ids = ["sh", "-c", "id -u; id -g; id -un; id -gn"];
    let (code, runc_id) = runc_run(&go, t.path(), &ids);
    assert_eq!(code, 0, "{runc_id}");
    for uid in [None, Some(NOBODY)] {
        let tmp = open_tmp();
        let o = imgslim_as(uid, tmp.path())
            .arg("verify")
            .arg(&go)
            .arg(&go)
            .args(["--http", "18085/health", "--http", "18085/data", "--http", "18085/missing", "--exec", "id"])
            .output()
            .unwrap();
        let (code, out, err) = text(&o);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("GET :18085/health") && out.contains("status=200"), "{out}");
        assert!(out.contains("status=404"), "{out}");
        // The user and group answer as under runc: the image's user, resolved from its own /etc/passwd.
        let o = imgslim_as(uid, tmp.path()).arg("run").arg(&go).args(["--entrypoint", "sh", "--"]).args(&ids[1..]).output().unwrap();
        assert_eq!(text(&o).1, runc_id, "as {uid:?}");
        no_leftovers(tmp.path());
    }
}

#[test]
fn slim_verify_passes_a_good_slim_and_names_the_probe_a_broken_one_fails() {
    if !must_be_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tmp = open_tmp();
    let slim = |out: &str, extra: &[&str]| {
        imgslim_as(None, tmp.path()).arg("slim").arg(busybox_glibc()).arg("-o").arg(t.path().join(out)).args(["--format", "oci", "--verify", "--exec", "sh -c 'echo $((6*7))'"]).args(extra).output().unwrap()
    };
    let (code, out, err) = text(&slim("good", &[]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verify: the candidate answered every probe (2) like the original"), "{out}");
    // libm is DT_NEEDED by busybox: dropping it breaks every command.
    let (code, out, err) = text(&slim("broken", &["--drop", "/lib/libm.so.6"]));
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("probes answered differently: exec sh -c 'echo $((6*7))'"), "{err}");
    assert!(out.contains("libm.so.6: cannot open shared object file"), "{out}");
    assert!(err.contains("failed to open 1 path(s) the original has, keep them: --keep /lib/libm.so.6"), "{err}");
    no_leftovers(tmp.path());
}
