//! Progress: bars only on a terminal and never with -q; -v prints each step with its time (and
//! bytes and rate where the stage counts them). The terminal case runs under `script`, which
//! gives the command a pty.
mod common;
use common::*;

fn busybox() -> String {
    shared_images().join("busybox-1.38.0-musl.oci").to_str().unwrap().to_string()
}

#[test]
fn no_bars_when_stderr_is_not_a_terminal_or_with_quiet() {
    let t = tempfile::tempdir().unwrap();
    let o = run_ok(imgslim().args(["slim", &busybox(), "--dry-run"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains('\r') && !err.contains("\x1b[") && !err.contains("read and verify"), "{err}");
    assert!(err.starts_with("result (dry run"), "{err}");
    let out = t.path().join("out");
    let o = run_ok(imgslim().args(["-q", "slim", &busybox(), "-o"]).arg(&out));
    assert!(o.stderr.is_empty() && o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run_ok(imgslim().args(["-v", "squash", &busybox(), "-o"]).arg(t.path().join("sq")));
    let err = String::from_utf8_lossy(&o.stderr);
    for step in ["step: read and verify the layers (", "step: merge the layers (", "step: write the layer ("] {
        let line = err.lines().find(|l| l.starts_with(step)).unwrap_or_else(|| panic!("{step}: {err}"));
        assert!(line.ends_with("s)"), "{line}");
    }
    let read = err.lines().find(|l| l.starts_with("step: read and verify the layers")).unwrap();
    assert!(read.contains("886.2 kB") && read.contains("B/s)"), "the blob's bytes and a rate: {read}");
}

#[test]
fn bars_on_a_terminal_but_not_with_quiet() {
    assert!(have_tool("script"), "script (util-linux) gives the command a terminal");
    let cmd = |q: &str| format!("{} {q} slim {} --dry-run", env!("CARGO_BIN_EXE_imgslim"), busybox());
    let o = run_ok(std::process::Command::new("script").args(["-qec", &cmd(""), "/dev/null"]));
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(tty.contains("read and verify the layers") && tty.contains("\x1b[2K"), "a redrawn bar: {tty}");
    assert!(tty.contains("result (dry run"), "{tty}");
    let o = run_ok(std::process::Command::new("script").args(["-qec", &cmd("-q"), "/dev/null"]));
    let quiet = String::from_utf8_lossy(&o.stdout);
    assert!(!quiet.contains("read and verify") && !quiet.contains("result"), "{quiet}");
}
