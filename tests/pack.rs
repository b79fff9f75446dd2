//! End-to-end tests for `imgslim::pack`: real executables are packed, run, and
//! compared with the original run from the *same path* (so argv[0],
//! /proc/self/exe, AT_EXECFN and comm must match byte for byte).
//!
//! Tests that need a tool (gcc, musl-gcc, go, python3, rustc) skip when it is
//! missing, except under CI=true where a missing tool is a failure.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use imgslim::pack::{self, assess, is_packed, unpack, Decision, Method, PackOptions, SkipReason};

const PROBE_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pack_data/probe.c");
const PROBELIB_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pack_data/probelib.c");

fn have(tool: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required under CI=true (install it in .ci/run)");
        }
        eprintln!("SKIP: {tool} not installed");
    }
    found
}

fn sh(cmd: &mut Command) {
    let o = cmd.output().expect("spawn");
    assert!(o.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn opts() -> PackOptions {
    // Level 6 keeps the tests quick; the format and stub do not depend on it.
    PackOptions { level: 6, ..PackOptions::default() }
}

/// Runs `exe args…` with a fixed environment.
fn run(exe: &Path, args: &[&str]) -> Output {
    probe_output(Command::new(exe).args(args), exe, &[])
}

/// Runs `cmd` as every probe runs: only PROBE_VAR and PATH in the
/// environment (plus `extra`), in the directory of `exe`.
fn probe_output(cmd: &mut Command, exe: &Path, extra: &[(&str, &str)]) -> Output {
    cmd.env_clear().env("PROBE_VAR", "häßlich value=with spaces").env("PATH", "/usr/bin:/bin");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.current_dir(exe.parent().unwrap()).output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}


/// Replaces `exe` by its packed form (asserting it really is packed) and
/// returns the original bytes.
fn pack_in_place(exe: &Path, method: Method) -> Vec<u8> {
    let orig = fs::read(exe).unwrap();
    let packed = pack::pack(&orig, &PackOptions { method, ..opts() }).unwrap_or_else(|e| panic!("pack {}: {e}", exe.display()));
    assert!(is_packed(&packed));
    assert_ne!(packed, orig);
    assert_eq!(unpack(&packed).expect("unpack"), orig, "unpack must restore the original");
    let mode = fs::metadata(exe).unwrap().permissions().mode();
    fs::write(exe, &packed).unwrap();
    fs::set_permissions(exe, fs::Permissions::from_mode(mode)).unwrap();
    orig
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs the probe original vs packed for each scenario and demands identical
/// stdout, exit code and signal. Returns the original runs' outputs.
fn compare(exe: &Path, scenarios: &[&[&str]]) -> Vec<Output> {
    compare_m(exe, scenarios, Method::Lzma)
}

fn compare_m(exe: &Path, scenarios: &[&[&str]], method: Method) -> Vec<Output> {
    compare_with(exe, scenarios, method, run)
}

/// How a scenario is run: natively, or under qemu in one of its set-ups.
type Runner = fn(&Path, &[&str]) -> Output;

/// [`compare_m`] with the runs made by `runner` (native, or under qemu).
fn compare_with(exe: &Path, scenarios: &[&[&str]], method: Method, runner: Runner) -> Vec<Output> {
    let runs: Vec<(&[&str], Runner)> = scenarios.iter().map(|a| (*a, runner)).collect();
    compare_runs(exe, &runs, method)
}

/// Runs each scenario with its runner, packs `exe` in place, runs them again
/// and demands identical stdout, exit code and signal. Returns the original
/// runs' outputs.
fn compare_runs(exe: &Path, scenarios: &[(&[&str], Runner)], method: Method) -> Vec<Output> {
    let before: Vec<Output> = scenarios.iter().map(|(a, r)| r(exe, a)).collect();
    pack_in_place(exe, method);
    for ((args, runner), b) in scenarios.iter().zip(&before) {
        let a = runner(exe, args);
        assert_eq!(text(&a), text(b), "{method}: stdout differs for {args:?}; stderr: {}", String::from_utf8_lossy(&a.stderr));
        assert_eq!(a.status.code(), b.status.code(), "{method}: exit code differs for {args:?}");
        assert_eq!(a.status.signal(), b.status.signal(), "{method}: signal differs for {args:?}");
    }
    before
}

struct Probe {
    _dir: tempfile::TempDir,
    exe: PathBuf,
}

fn build_probe(cc: &str, flags: &[&str]) -> Option<Probe> {
    if !have(cc) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let exe = bin.join("probe");
    sh(Command::new(cc).args(["-O1", "-o"]).arg(&exe).arg(PROBE_C).args(flags));
    Some(Probe { _dir: dir, exe })
}

/// What the probe's `plain arg with space ""` run must print under any
/// runner: argv, environment, the exe path and the auxv facts.
fn probe_facts(exe: &str, dynamic: bool) -> Vec<String> {
    vec![
        format!("argv[0]={exe}\n"),
        "argv[2]=arg with space\n".into(),
        "argv[3]=\n".into(),
        "PROBE_VAR=häßlich value=with spaces\n".into(),
        "envc=2\n".into(),
        format!("exe={exe}\n"),
        format!("execfn={exe}\n"),
        "entry_is_start=1\n".into(),
        "phdr_covers_main=1\n".into(),
        format!("base_set={}\n", dynamic as u8),
        "malloc_ok=1\n".into(),
    ]
}

/// The common battery for a probe build: argv/env/auxv, exit code, signal,
/// /proc/self/exe re-exec. Also checks the outputs really carry the facts.
fn battery(p: &Probe, dynamic: bool) {
    battery_m(p, dynamic, Method::Lzma)
}

fn battery_m(p: &Probe, dynamic: bool, method: Method) {
    let out = compare_m(
        &p.exe,
        &[&["plain", "arg with space", ""], &["exit", "42"], &["kill", "10"], &["reexec", "again"]],
        method,
    );
    let first = text(&out[0]);
    let exe = p.exe.to_str().unwrap();
    // Native only: qemu-user has no vDSO, its own comm and one thread of its own.
    let native = ["random_set=1 sysinfo_set=1\n", "comm=probe\n", "threads=1\n"].map(String::from);
    for want in probe_facts(exe, dynamic).into_iter().chain(native) {
        assert!(first.contains(&want), "expected {want:?} in:\n{first}");
    }
    assert_eq!(out[1].status.code(), Some(42));
    assert_eq!(out[2].status.signal(), Some(10));
    let re = text(&out[3]);
    assert!(re.contains("reexec:\n") && re.contains("depth=1\n"), "re-exec did not run the program again:\n{re}");
    assert_eq!(re.matches(&format!("exe={exe}\n")).count(), 2, "re-exec'd image must still be the packed file:\n{re}");
}

#[test]
fn glibc_pie_dynamic() {
    if let Some(p) = build_probe("gcc", &["-fPIE", "-pie"]) {
        battery(&p, true);
    }
}

#[test]
fn glibc_non_pie_dynamic() {
    if let Some(p) = build_probe("gcc", &["-fno-PIE", "-no-pie"]) {
        battery(&p, true);
    }
}

#[test]
fn glibc_static() {
    if let Some(p) = build_probe("gcc", &["-static"]) {
        battery(&p, false);
    }
}

#[test]
fn glibc_static_pie() {
    if let Some(p) = build_probe("gcc", &["-static-pie", "-fPIE"]) {
        battery(&p, false);
    }
}

#[test]
fn zstd_glibc_pie_dynamic() {
    if let Some(p) = build_probe("gcc", &["-fPIE", "-pie"]) {
        battery_m(&p, true, Method::Zstd);
    }
}

#[test]
fn zstd_glibc_static() {
    if let Some(p) = build_probe("gcc", &["-static"]) {
        battery_m(&p, false, Method::Zstd);
    }
}

#[test]
fn zstd_musl_static_and_unpack() {
    if let Some(p) = build_probe("musl-gcc", &["-static"]) {
        let orig = fs::read(&p.exe).unwrap();
        let z = pack::pack(&orig, &PackOptions { method: Method::Zstd, ..opts() }).unwrap();
        assert_eq!(unpack(&z).unwrap(), orig);
        let mut c = z.clone();
        let mid = c.len() - 200;
        c[mid] ^= 0x11;
        assert!(unpack(&c).is_err());
        battery_m(&p, false, Method::Zstd);
    }
}

#[test]
fn musl_static() {
    if let Some(p) = build_probe("musl-gcc", &["-static"]) {
        battery(&p, false);
    }
}

#[test]
fn musl_pie_dynamic() {
    if let Some(p) = build_probe("musl-gcc", &["-fPIE", "-pie"]) {
        battery(&p, true);
    }
}

/// Builds `dir/bin/probe` with `cc`, linked against `dir/lib/libprobelib.so`
/// through `$ORIGIN/../lib` (`dtags` picks DT_RPATH or DT_RUNPATH).
fn build_origin_tree(cc: &str, dir: &Path, dtags: &str) -> PathBuf {
    let (bin, lib) = (dir.join("bin"), dir.join("lib"));
    fs::create_dir(&bin).unwrap();
    fs::create_dir(&lib).unwrap();
    sh(Command::new(cc).args(["-shared", "-fPIC", "-o"]).arg(lib.join("libprobelib.so")).arg(PROBELIB_C));
    let exe = bin.join("probe");
    sh(Command::new(cc)
        .args(["-O1", "-DWITH_LIB", "-o"])
        .arg(&exe)
        .arg(PROBE_C)
        .arg("-L")
        .arg(&lib)
        .args(["-lprobelib", "-Wl,-rpath,$ORIGIN/../lib", dtags]));
    exe
}

/// Packs the tree's probe, compares its runs, then proves the library is found
/// through $ORIGIN of the *packed* file: the moved tree must still work.
fn check_origin(cc: &str, method: Method, runner: fn(&Path, &[&str]) -> Output) {
    for dtags in ["-Wl,--disable-new-dtags", "-Wl,--enable-new-dtags"] {
        let dir = tempfile::tempdir().unwrap();
        let exe = build_origin_tree(cc, dir.path(), dtags);
        let out = compare_with(&exe, &[&["x"]], method, runner);
        assert!(text(&out[0]).contains("lib=42\n"), "{dtags}: {}", text(&out[0]));
        let moved = tempfile::tempdir().unwrap();
        let dst = moved.path().join("t");
        fs::rename(dir.path(), &dst).unwrap();
        let o = runner(&dst.join("bin/probe"), &["x"]);
        assert!(o.status.success() && text(&o).contains("lib=42\n"), "{method} {dtags} after move: {o:?}");
        fs::rename(&dst, dir.path()).unwrap();
    }
}

/// `$ORIGIN/../lib` must resolve relative to the packed file, for both
/// DT_RPATH and DT_RUNPATH (glibc derives $ORIGIN from /proc/self/exe).
#[test]
fn origin_rpath_and_runpath() {
    if have("gcc") {
        check_origin("gcc", Method::Lzma, run);
    }
}

/// A Go program: prints its args, /proc/self/exe and an env var; `reexec`
/// runs /proc/self/exe again, `exit` exits 7.
const GO_PROBE: &str = r#"package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
)

func main() {
	exe, err := os.Executable()
	fmt.Println("args", os.Args, "exe", exe, err, "var", os.Getenv("PROBE_VAR"))
	signal.Ignore()
	if len(os.Args) > 1 && os.Args[1] == "reexec" {
		out, err := exec.Command("/proc/self/exe", "child").CombinedOutput()
		fmt.Printf("child: %s %v\n", out, err)
	}
	if len(os.Args) > 1 && os.Args[1] == "exit" {
		os.Exit(7)
	}
}
"#;

/// Builds [`GO_PROBE`] static (CGO off) for `goarch` into `dir/gohello`.
fn build_go(dir: &Path, goarch: &str) -> PathBuf {
    let src = dir.join("main.go");
    fs::write(&src, GO_PROBE).unwrap();
    let exe = dir.join("gohello");
    let gohome = dir.join("gohome");
    sh(Command::new("go")
        .args(["build", "-o"])
        .arg(&exe)
        .arg(&src)
        .env("GOARCH", goarch)
        .env("CGO_ENABLED", "0")
        .env("HOME", &gohome)
        .env("GOCACHE", gohome.join("cache"))
        .env("GOPATH", gohome.join("path"))
        .env("GO111MODULE", "off"));
    exe
}

/// A static Go binary (ET_EXEC, own runtime, reads auxv itself).
#[test]
fn go_static() {
    if !have("go") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = build_go(dir.path(), "amd64");
    let out = compare(&exe, &[&["plain"], &["exit"], &["reexec"]]);
    let t = text(&out[2]);
    assert!(t.contains(&format!("child: args [/proc/self/exe child] exe {}", exe.display())), "{t}");
    assert_eq!(out[1].status.code(), Some(7));
}

/// A large real dynamic C program from the system.
#[test]
fn python3_real_binary() {
    if !have("python3") {
        return;
    }
    // The ELF itself, not a wrapper script (pyenv shims, etc.).
    let real = if Path::new("/usr/bin/python3").exists() {
        fs::canonicalize("/usr/bin/python3").unwrap()
    } else {
        let o = Command::new("python3").args(["-c", "import os, sys; print(os.path.realpath(sys.executable))"]).output().unwrap();
        PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
    };
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join(real.file_name().unwrap());
    fs::copy(&real, &exe).unwrap();
    let out = compare(
        &exe,
        &[
            &["-c", "import sys, os, json, hashlib; print(sys.argv, os.environ['PROBE_VAR'], json.dumps({'a': 1}), hashlib.sha256(b'x').hexdigest())"],
            &["-c", "raise SystemExit(3)"],
            &["-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"],
            &["-c", "import os; print(os.readlink('/proc/self/exe'))"],
        ],
    );
    assert!(text(&out[0]).contains("häßlich"), "{}", text(&out[0]));
    assert_eq!(out[1].status.code(), Some(3));
    assert_eq!(out[2].status.signal(), Some(15));
    assert_eq!(text(&out[3]).trim(), exe.to_str().unwrap());
}

/// A Rust program (std, glibc, PIE) compiled here with rustc.
#[test]
fn rust_binary() {
    if !have("rustc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("r.rs");
    fs::write(
        &src,
        r#"fn main() {
    let a: Vec<String> = std::env::args().collect();
    println!("{:?} {:?} {:?}", a, std::env::current_exe().unwrap(), std::env::var("PROBE_VAR"));
    let t = std::thread::spawn(|| 40 + 2).join().unwrap();
    println!("thread {t}");
    if a.len() > 1 && a[1] == "panic" { panic!("boom") }
    std::process::exit(if a.len() > 1 { 5 } else { 0 });
}
"#,
    )
    .unwrap();
    let exe = dir.path().join("rbin");
    sh(Command::new("rustc").args(["-O", "-o"]).arg(&exe).arg(&src));
    let out = compare(&exe, &[&[], &["x"], &["panic"]]);
    assert!(text(&out[0]).contains("thread 42"));
    assert_eq!(out[1].status.code(), Some(5));
    assert_eq!(out[2].status.code(), Some(101));
}

/// Writes big.c (and the ro.bin/rw.bin it includes) into `dir`: a program
/// with 24 MiB of rodata and 16 MiB of initialised .data that prints a hash of
/// every byte and its thread count. Segments that big are cut into several
/// chunks, which the stub decodes on several threads.
fn write_big_program(dir: &Path) -> PathBuf {
    let (n_ro, n_rw) = (24 << 20, 16 << 20);
    // The bytes come in through .incbin (compiling C initialisers this big
    // takes minutes); counters so they compress quickly but not to nothing.
    let c = format!(
        r#"#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#define NRO {n_ro}
#define NRW {n_rw}
extern const unsigned char ro[NRO];
extern unsigned char rw[NRW];
__asm__(".section .rodata\n.globl ro\n.balign 64\nro: .incbin \"ro.bin\"\n"
        ".data\n.globl rw\n.balign 64\nrw: .incbin \"rw.bin\"\n.text\n");
int main(void) {{
    unsigned long h = 1469598103934665603ul;
    for (long i = 0; i < NRO; i++) h = (h ^ ro[i]) * 1099511628211ul;
    for (long i = 0; i < NRW; i++) h = (h ^ rw[i]) * 1099511628211ul;
    char buf[256]; int threads = 0;
    FILE *st = fopen("/proc/self/status", "r");
    while (st && fgets(buf, sizeof buf, st)) if (!strncmp(buf, "Threads:", 8)) threads = atoi(buf + 8);
    printf("hash=%016lx threads=%d\n", h, threads);
    return 0;
}}
"#
    );
    let src = dir.join("big.c");
    fs::write(&src, c).unwrap();
    let gen = |n: usize, seed: u32| -> Vec<u8> {
        (0..n as u32 / 4).flat_map(|i| (i.wrapping_mul(seed) >> 7 ^ i).to_le_bytes()).collect()
    };
    fs::write(dir.join("ro.bin"), gen(n_ro, 2_654_435_761)).unwrap();
    fs::write(dir.join("rw.bin"), gen(n_rw, 40_503)).unwrap();
    src
}

/// A program whose segments are large enough to be cut into several chunks
/// (decoded on several threads): every byte of its 40 MB of data and code must
/// arrive, with one CPU or all of them, and no helper thread may survive.
#[test]
fn large_segments_parallel_decode() {
    if !have("gcc") || !have("taskset") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = write_big_program(dir.path());
    for (name, flags) in [("big-pie", &["-fPIE", "-pie"][..]), ("big-static", &["-static"][..])] {
        let exe = dir.path().join(name);
        sh(Command::new("gcc").args(["-O1", "-o"]).arg(&exe).arg(&src).args(flags).current_dir(dir.path()));
        let want = run(&exe, &[]);
        assert!(want.status.success());
        let orig = fs::read(&exe).unwrap();
        // Auto: 40 MiB mapped at run time is far beyond LZMA's start-up budget.
        let packed = pack::pack(&orig, &PackOptions { method: Method::Auto, level: 0, ..opts() }).unwrap();
        assert_eq!(unpack(&packed).unwrap(), orig);
        let l = pack::layout(&packed).unwrap();
        assert!(l.runtime_chunks >= 4, "{name}: expected the 24 and 16 MiB segments cut in pieces: {l:?}");
        assert_eq!(l.method, Method::Zstd, "{name}");
        let pexe = dir.path().join(format!("{name}.packed"));
        fs::write(&pexe, &packed).unwrap();
        fs::set_permissions(&pexe, fs::Permissions::from_mode(0o755)).unwrap();
        let all = run(&pexe, &[]);
        let one = Command::new("taskset").args(["-c", "0"]).arg(&pexe).output().unwrap();
        for got in [&all, &one] {
            assert!(got.status.success(), "{name}: {}", String::from_utf8_lossy(&got.stderr));
            assert_eq!(text(got), text(&want), "{name}: packed program saw different bytes");
        }
        assert!(text(&want).contains("threads=1"), "{}", text(&want));
    }
}

#[test]
fn deterministic_and_unpack_roundtrip() {
    let Some(p) = build_probe("gcc", &["-static"]) else { return };
    let orig = fs::read(&p.exe).unwrap();
    let a = pack::pack(&orig, &opts()).unwrap();
    let b = pack::pack(&orig, &opts()).unwrap();
    assert_eq!(a, b, "same input must give the same bytes");
    // Auto: a static probe maps well under 1 MiB, so LZMA (smallest) is chosen.
    assert!(orig.len() as u64 <= pack::AUTO_LZMA_MAX);
    assert_eq!(pack::layout(&a).map(|l| l.method), Some(Method::Lzma));
    assert_eq!(unpack(&a).unwrap(), orig);
    assert!(matches!(unpack(&orig), Err(pack::PackError::NotPacked)));
    // Corrupting the compressed stream must be detected, never returned.
    for pos in [a.len() / 2, a.len() - 100] {
        let mut c = a.clone();
        c[pos] ^= 0x55;
        assert!(unpack(&c).is_err(), "corruption at {pos} not detected");
    }
    // Truncation.
    assert!(unpack(&a[..a.len() - 1]).is_err());
    let mut t = a[..a.len() / 2].to_vec();
    t.extend_from_slice(&a[a.len() - 64..]);
    assert!(unpack(&t).is_err());
}

fn skip_reason(d: Decision) -> SkipReason {
    match d {
        Decision::Skip(r) => r,
        Decision::Pack(p) => panic!("unexpectedly packed ({} bytes)", p.packed_size),
    }
}

#[test]
fn assess_rules() {
    let Some(p) = build_probe("gcc", &["-static"]) else { return };
    let small = fs::read(&p.exe).unwrap();
    assert!(small.len() > 500_000, "static glibc probe should be ~800 KiB");
    let o = PackOptions::default();

    // Packs: a static executable well above the threshold with a good gain.
    match assess(&small, 0o755, false, &o) {
        Decision::Pack(pk) => {
            assert!(pk.packed_size * 100 < pk.original_size * 80);
            assert!(Decision::Pack(pk).to_string().starts_with("packed "));
        }
        Decision::Skip(r) => panic!("should pack: {r}"),
    }
    assert_eq!(skip_reason(assess(&small, 0o4755, false, &o)), SkipReason::SetId);
    assert_eq!(skip_reason(assess(&small, 0o2755, false, &o)), SkipReason::SetId);
    assert_eq!(skip_reason(assess(&small, 0o755, true, &o)), SkipReason::FileCaps);
    assert_eq!(skip_reason(assess(&small, 0o644, false, &o)), SkipReason::NotExecutableMode);
    assert_eq!(skip_reason(assess(b"#!/bin/sh\necho hi\n", 0o755, false, &o)), SkipReason::NotElf);
    let big_min = PackOptions { min_size: 64 << 20, ..o.clone() };
    assert!(matches!(skip_reason(assess(&small, 0o755, false, &big_min)), SkipReason::TooSmall { .. }));
    let packed = pack::pack(&small, &opts()).unwrap();
    assert_eq!(skip_reason(assess(&packed, 0o755, false, &o)), SkipReason::AlreadyPacked);
    assert!(pack::pack(&packed, &opts()).is_err());
    let greedy = PackOptions { min_gain_percent: 95, ..o.clone() };
    let r = skip_reason(assess(&small, 0o755, false, &greedy));
    assert!(matches!(r, SkipReason::GainTooSmall { .. }));
    assert!(r.to_string().contains("need 95%"), "{r}");

    // Shared libraries are ET_DYN like PIEs and must never be packed.
    let no_min = PackOptions { min_size: 0, min_gain_percent: 0, ..o.clone() };
    let dir = tempfile::tempdir().unwrap();
    let so = dir.path().join("libprobelib.so");
    sh(Command::new("gcc").args(["-shared", "-fPIC", "-o"]).arg(&so).arg(PROBELIB_C));
    assert!(matches!(skip_reason(assess(&fs::read(&so).unwrap(), 0o755, false, &no_min)), SkipReason::NotExecutable(_)));
    assert!(pack::pack(&fs::read(&so).unwrap(), &opts()).is_err());
    // libc.so.6 has PT_INTERP (it is runnable) but is a library: DT_SONAME, no DF_1_PIE.
    for libc in ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"] {
        if let Ok(b) = fs::read(libc) {
            let r = skip_reason(assess(&b, 0o755, false, &no_min));
            assert!(matches!(r, SkipReason::NotExecutable(_)), "{libc}: {r}");
        }
    }
    // Executable stack cannot be honoured by the stub: refuse.
    let exe = dir.path().join("execstack");
    sh(Command::new("gcc").args(["-O1", "-z", "execstack", "-o"]).arg(&exe).arg(PROBE_C));
    let r = skip_reason(assess(&fs::read(&exe).unwrap(), 0o755, false, &no_min));
    assert!(r.to_string().contains("executable stack"), "{r}");
    // An overlay (data appended after the ELF, read back via /proc/self/exe)
    // would be hidden by packing: refuse.
    let mut overlay = small.clone();
    overlay.extend_from_slice(&vec![7u8; 100_000]);
    let r = skip_reason(assess(&overlay, 0o755, false, &no_min));
    assert!(r.to_string().contains("appended"), "{r}");
    // Relocatable object.
    let obj = dir.path().join("p.o");
    sh(Command::new("gcc").args(["-c", "-o"]).arg(&obj).arg(PROBE_C));
    assert!(matches!(skip_reason(assess(&fs::read(&obj).unwrap(), 0o755, false, &no_min)), SkipReason::NotExecutable(_)));
    // Garbage after a valid ELF magic must not panic.
    let mut junk = b"\x7fELF\x02\x01\x01".to_vec();
    junk.resize(4096, 0xff);
    let _ = assess(&junk, 0o755, false, &no_min);
    assert!(pack::pack(&junk, &opts()).is_err());
}

/// Incompressible content: the gain rule must keep the original.
#[test]
fn assess_incompressible_is_skipped() {
    if !have("gcc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("rnd.c");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut body = String::from("const unsigned char blob[1048576] = {");
    for _ in 0..1_048_576 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push_str(&format!("{},", x & 0xff));
    }
    body.push_str("};\nint main(int c, char **v) { return blob[c]; }\n");
    fs::write(&src, body).unwrap();
    let exe = dir.path().join("rnd");
    sh(Command::new("gcc").args(["-O1", "-o"]).arg(&exe).arg(&src));
    let r = skip_reason(assess(&fs::read(&exe).unwrap(), 0o755, false, &PackOptions::default()));
    assert!(matches!(r, SkipReason::GainTooSmall { .. }), "{r}");
}

#[test]
fn cli_pack_and_unpack() {
    let Some(p) = build_probe("gcc", &["-static"]) else { return };
    fs::set_permissions(&p.exe, fs::Permissions::from_mode(0o750)).unwrap();
    let out = p.exe.with_file_name("probe.packed");
    let args = pack::cli::PackArgs {
        file: p.exe.clone(),
        output: out.display().to_string(),
        unpack: false,
        level: 6,
        extreme: false,
        force: false,
        any_size: false,
        allow_larger: false,
        method: pack::cli::MethodArg::Lzma,
    };
    pack::cli::run(&args).unwrap();
    assert!(is_packed(&fs::read(&out).unwrap()));
    assert_eq!(fs::metadata(&out).unwrap().permissions().mode() & 0o7777, 0o750);
    let o = run(&out, &["exit", "3"]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let back = p.exe.with_file_name("probe.back");
    pack::cli::run(&pack::cli::PackArgs { file: out.clone(), output: back.display().to_string(), unpack: true, ..args.clone() }).unwrap();
    assert_eq!(fs::read(&back).unwrap(), fs::read(&p.exe).unwrap());
    // No temp files left behind.
    let left: Vec<_> = fs::read_dir(p.exe.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".imgslim-"))
        .collect();
    assert!(left.is_empty());
    // Refusals are errors and write nothing.
    let so_out = p.exe.with_file_name("nope");
    let err = pack::cli::run(&pack::cli::PackArgs { file: out.clone(), output: so_out.display().to_string(), ..args.clone() });
    assert!(err.unwrap_err().to_string().contains("already packed"));
    assert!(!so_out.exists());
}

// ---------------------------------------------------------------------------
// aarch64: probe.c cross-compiled with aarch64-linux-gnu-gcc (static, static-pie,
// dynamic PIE and non-PIE; the dynamic ones load /lib/ld-linux-aarch64.so.1
// through qemu's -L sysroot, which also applies to the stub's openat), packed with the
// aarch64 stub and run (original and packed) under qemu-aarch64-static. qemu
// emulates /proc/self/exe, comm, AT_SYSINFO_EHDR and adds its own thread, so
// the packed run is compared with the original run rather than with absolute
// values wherever qemu differs from a kernel.

const QEMU_A64: &str = "qemu-aarch64-static";
const CC_A64: &str = "aarch64-linux-gnu-gcc";
/// Where libc6-dev-arm64-cross puts the aarch64 ld.so and libc (qemu -L).
const A64_SYSROOT: &str = "/usr/aarch64-linux-gnu";
const EM_AARCH64: u16 = 183;

/// The aarch64 stub is built (else skip, or fail under CI=true) and the cross
/// tools are installed.
fn a64_ready() -> bool {
    if let Err(why) = pack::supports(EM_AARCH64, Method::Lzma) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("aarch64 packing is required under CI=true: {why}");
        }
        eprintln!("SKIP: {why}");
        return false;
    }
    have(QEMU_A64) && have(CC_A64)
}

/// Methods the aarch64 stub supports in this build (zstd needs the cross gcc
/// at build time; under CI=true it must be there).
fn a64_methods() -> Vec<Method> {
    let mut m = vec![Method::Lzma];
    match pack::supports(EM_AARCH64, Method::Zstd) {
        Ok(()) => m.push(Method::Zstd),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("aarch64 zstd stub required under CI=true: {why}"),
        Err(why) => eprintln!("SKIP zstd: {why}"),
    }
    m
}

fn run_a64(exe: &Path, args: &[&str]) -> Output {
    run_a64_with(exe, args, &[])
}

/// Under qemu's `-p`: the guest sees 16K / 64K pages (AT_PAGESZ, sysconf), as
/// on arm64 kernels built with those page sizes, so the stub runs its 16K/64K
/// rounding (a range it then maps or protects wrongly fails here) and the
/// program must see that page size. qemu-user does not hold mmap/mprotect to
/// that granularity as such a kernel would: a stub that ignored AT_PAGESZ
/// still passes (checked by mutation). Real 16K/64K kernels stay unverified.
fn run_a64_16k(exe: &Path, args: &[&str]) -> Output {
    run_a64_with(exe, args, &["-p", "16384"])
}

fn run_a64_64k(exe: &Path, args: &[&str]) -> Output {
    run_a64_with(exe, args, &["-p", "65536"])
}

fn run_a64_with(exe: &Path, args: &[&str], qemu_args: &[&str]) -> Output {
    probe_output(Command::new(QEMU_A64).args(qemu_args).arg("-L").arg(A64_SYSROOT).arg(exe).args(args), exe, &[])
}

/// The packed file's own segments must load on 4K, 16K and 64K page kernels.
fn assert_a64_layout(packed: &[u8]) {
    assert_eq!(u16::from_le_bytes([packed[18], packed[19]]), EM_AARCH64);
    let phoff = u64::from_le_bytes(packed[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes([packed[56], packed[57]]) as usize;
    let mut loads = 0;
    for i in 0..phnum {
        let o = phoff + i * 56;
        let f = |k: usize| u64::from_le_bytes(packed[o + k..o + k + 8].try_into().unwrap());
        if u32::from_le_bytes(packed[o..o + 4].try_into().unwrap()) == 1 {
            loads += 1;
            assert_eq!(f(8) % 0x10000, f(16) % 0x10000, "PT_LOAD {i}: offset and vaddr differ modulo 64 KiB");
            assert_eq!(f(48), 0x10000, "PT_LOAD {i}: p_align");
            assert!(f(16) + f(40) < 1 << 36, "PT_LOAD {i} beyond a 36-bit address space");
        }
    }
    assert!(loads >= 3);
}

/// Debian's binfmt rule for aarch64 ELF executables (/usr/lib/binfmt.d/
/// qemu-aarch64.conf), with the static qemu as interpreter; `F` opens it now.
const A64_BINFMT: &str = r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F";

/// Runs the aarch64 `exe` by a plain execve, in a user + mount namespace with
/// its own binfmt_misc (Linux 6.7+) where the rule above hands it to qemu. A
/// re-exec through /proc/self/exe is only real this way: plain qemu-user
/// execs the guest file itself, which an x86_64 kernel refuses (ENOEXEC).
/// The machine's own binfmt_misc is never touched.
fn run_a64_exec(exe: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && printf '%s' "$REG" > /proc/sys/fs/binfmt_misc/register && exec env -u REG "$@""#)
        .arg("sh")
        .arg(exe)
        .args(args);
    probe_output(&mut cmd, exe, &[("QEMU_LD_PREFIX", A64_SYSROOT), ("REG", A64_BINFMT)])
}

/// [`run_a64_exec`] works here (else skip; under CI=true, fail).
fn a64_exec_ready() -> bool {
    let o = run_a64_exec(Path::new("/bin/true"), &[]);
    if o.status.success() {
        return true;
    }
    let why = format!("no private binfmt_misc for aarch64 re-exec tests: {}", String::from_utf8_lossy(&o.stderr).trim());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("SKIP: {why}");
    false
}

/// Builds probe.c for aarch64 with `flags`, then for each method packs it and
/// compares the packed run with the original one under qemu.
fn a64_battery(flags: &[&str], dynamic: bool) {
    if !a64_ready() {
        return;
    }
    for method in a64_methods() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("probe");
        sh(Command::new(CC_A64).args(["-O1", "-o"]).arg(&exe).arg(PROBE_C).args(flags));
        let mut scenarios: Vec<(&[&str], Runner)> =
            vec![(&["plain", "arg with space", ""], run_a64), (&["exit", "42"], run_a64), (&["kill", "10"], run_a64),
                 (&["pages"], run_a64_16k), (&["pages"], run_a64_64k)];
        if a64_exec_ready() {
            scenarios.push((&["reexec", "again"], run_a64_exec));
        }
        // pack_in_place also checks that unpack restores the original.
        let before = compare_runs(&exe, &scenarios, method);
        let packed = fs::read(&exe).unwrap();
        assert_a64_layout(&packed);
        assert_eq!(pack::layout(&packed).map(|l| l.method), Some(method), "{flags:?}");
        // The facts qemu reports like a kernel must really be there.
        let first = text(&before[0]);
        for want in probe_facts(exe.to_str().unwrap(), dynamic) {
            assert!(first.contains(&want), "expected {want:?} in:\n{first}");
        }
        // qemu-user has one thread of its own; the stub's helpers must be gone.
        assert!(first.contains("threads=1\n") || first.contains("threads=2\n"), "{first}");
        assert_eq!(before[1].status.code(), Some(42));
        assert_eq!(before[2].status.signal(), Some(10));
        assert!(text(&before[3]).contains("pagesz=16384 ") && text(&before[4]).contains("pagesz=65536 "));
        if let Some(re) = before.get(5).map(text) {
            assert!(re.contains("depth=1\n"), "re-exec did not run the program again:\n{re}");
        }
    }
}

/// `$ORIGIN` on aarch64: the cross-built tree, run under qemu (whose
/// /proc/self/exe is the guest file, as the kernel's would be).
#[test]
fn aarch64_origin_rpath_and_runpath() {
    if a64_ready() {
        for m in a64_methods() {
            check_origin(CC_A64, m, run_a64);
        }
    }
}

/// A static Go binary for arm64: Go's runtime reads the auxv (AT_PAGESZ,
/// AT_HWCAP, AT_RANDOM) and starts its own threads right away.
#[test]
fn aarch64_go_static() {
    if !a64_ready() || !have("go") {
        return;
    }
    let exec = a64_exec_ready();
    for m in a64_methods() {
        let dir = tempfile::tempdir().unwrap();
        let exe = build_go(dir.path(), "arm64");
        // Re-exec through /proc/self/exe (kernel exec via binfmt), before and after.
        let re_before = exec.then(|| text(&run_a64_exec(&exe, &["reexec"])));
        let out = compare_with(&exe, &[&["plain"], &["exit"]], m, run_a64);
        let t = text(&out[0]);
        assert!(t.contains(&format!("args [{} plain] exe {} <nil> var häßlich value=with spaces", exe.display(), exe.display())), "{t}");
        assert_eq!(out[1].status.code(), Some(7));
        if let Some(b) = re_before {
            // The child line proves the program ran again (its argv[0] is the
            // path binfmt_misc hands qemu; the waitid error is qemu-user's).
            assert!(b.contains(&format!("child: args [{} child] exe {}", exe.display(), exe.display())), "{b}");
            assert_eq!(text(&run_a64_exec(&exe, &["reexec"])), b, "{m}: re-exec differs");
        }
    }
}

#[test]
fn aarch64_glibc_static() {
    a64_battery(&["-static"], false);
}

#[test]
fn aarch64_glibc_static_pie() {
    a64_battery(&["-static-pie", "-fPIE"], false);
}

#[test]
fn aarch64_glibc_pie_dynamic() {
    a64_battery(&["-fPIE", "-pie"], true);
}

#[test]
fn aarch64_glibc_non_pie_dynamic() {
    a64_battery(&["-fno-PIE", "-no-pie"], true);
}

/// aarch64 programs are never BCJ-filtered and Auto/Zstd follow the stubs
/// that exist; x86_64 packing is unaffected by the aarch64 stub's absence.
#[test]
fn aarch64_pack_rules() {
    if !have(CC_A64) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("probe");
    sh(Command::new(CC_A64).args(["-O1", "-static", "-o"]).arg(&exe).arg(PROBE_C));
    let orig = fs::read(&exe).unwrap();
    if let Err(why) = pack::supports(EM_AARCH64, Method::Lzma) {
        let e = pack::pack(&orig, &opts()).unwrap_err().to_string();
        assert!(e.contains(&why), "{e}");
        return;
    }
    let auto = pack::pack(&orig, &opts()).unwrap();
    assert_eq!(pack::layout(&auto).map(|l| l.method), Some(Method::Lzma));
    match pack::supports(EM_AARCH64, Method::Zstd) {
        Ok(()) => assert!(pack::pack(&orig, &PackOptions { method: Method::Zstd, ..opts() }).is_ok()),
        Err(why) => {
            let e = pack::pack(&orig, &PackOptions { method: Method::Zstd, ..opts() }).unwrap_err();
            assert!(matches!(e, pack::PackError::Unsupported(_)) && e.to_string().contains(&why), "{e}");
        }
    }
    assert!(matches!(assess(&orig, 0o755, false, &PackOptions::default()), Decision::Pack(_)));
}

/// Segments big enough to be cut into several chunks: the aarch64 stub's
/// helper threads (raw clone) decode them, with all CPUs and with one.
#[test]
fn aarch64_large_segments_parallel_decode() {
    if !a64_ready() || !have("taskset") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = write_big_program(dir.path());
    for (name, flags) in [("big-static", &["-static"][..]), ("big-pie", &["-fPIE", "-pie"][..])] {
        let exe = dir.path().join(name);
        sh(Command::new(CC_A64).args(["-O1", "-o"]).arg(&exe).arg(&src).args(flags).current_dir(dir.path()));
        let want = run_a64(&exe, &[]);
        assert!(want.status.success() && text(&want).starts_with("hash="), "{want:?}");
        let orig = fs::read(&exe).unwrap();
        // Both stubs on the static program; the PIE with the fastest one only
        // (LZMA decoding under qemu is slow).
        let mut methods = a64_methods();
        if name == "big-pie" {
            methods.drain(..methods.len() - 1);
        }
        for method in methods {
            let packed = pack::pack(&orig, &PackOptions { method, level: 0, ..opts() }).unwrap();
            assert_a64_layout(&packed);
            let l = pack::layout(&packed).unwrap();
            assert!(l.runtime_chunks >= 4, "{name}: expected the 24 and 16 MiB segments cut in pieces: {l:?}");
            let pexe = dir.path().join(format!("{name}.{method}"));
            fs::write(&pexe, &packed).unwrap();
            fs::set_permissions(&pexe, fs::Permissions::from_mode(0o755)).unwrap();
            let all = run_a64(&pexe, &[]);
            let one = Command::new("taskset")
                .args(["-c", "0", QEMU_A64, "-L", A64_SYSROOT])
                .arg(&pexe)
                .current_dir(dir.path())
                .output()
                .unwrap();
            for got in [&all, &one] {
                assert!(got.status.success(), "{name} {method}: {}", String::from_utf8_lossy(&got.stderr));
                assert_eq!(text(got), text(&want), "{name} {method}: packed program saw different bytes");
            }
        }
        if name == "big-static" {
            // Auto: 40 MiB mapped is beyond LZMA's budget: zstd if built, else LZMA.
            let auto = pack::pack(&orig, &PackOptions { method: Method::Auto, level: 0, ..opts() }).unwrap();
            let want_m = if pack::supports(EM_AARCH64, Method::Zstd).is_ok() { Method::Zstd } else { Method::Lzma };
            assert_eq!(pack::layout(&auto).map(|l| l.method), Some(want_m));
        }
    }
}
