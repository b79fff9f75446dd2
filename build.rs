//! Builds the `stub/` loader (no_std, no libc) and hands its paths to
//! `src/pack` via `IMGSLIM_STUB_*`. x86_64 needs nothing beyond the stable
//! x86_64-unknown-linux-gnu toolchain (rustc's bundled lld links it) and must
//! always build. aarch64 is built where a toolchain is available:
//!  - LZMA stub: needs rust-std for aarch64-unknown-linux-gnu; linked with
//!    rustc's bundled rust-lld, so no cross gcc is needed;
//!  - zstd stub: additionally needs a C cross compiler for zstd-sys's libzstd:
//!    `CC_aarch64_unknown_linux_gnu` (and `AR_…`) if set, else
//!    aarch64-linux-gnu-gcc from PATH.
//!
//! A stub that is not built is exported as an empty file, with the reason in
//! `IMGSLIM_STUB_A64_{LZMA,ZSTD}_WHY`; the packer then refuses aarch64 (or
//! aarch64 zstd) with that reason.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const A64: &str = "aarch64-unknown-linux-gnu";

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    for p in ["stub/src", "stub/Cargo.toml", "stub/Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=PATH");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    // x86_64: static, non-PIE, linked far above where ET_EXEC programs live
    // (0x400000…) and below the kernel's PIE/mmap areas; large code model
    // because of that address. Keep in sync with `stub_region` in src/pack/format.rs.
    let x86 = [
        "-Crelocation-model=static",
        "-Ccode-model=large",
        "-Ctarget-feature=+crt-static",
        "-Clink-arg=-nostartfiles",
        "-Clink-arg=-nostdlib",
        "-Clink-arg=-static",
        "-Clink-arg=-Wl,--build-id=none",
        "-Clink-arg=-Wl,--image-base=0x600000000000",
    ];
    // Two variants: LZMA-only (small) and LZMA+zstd (fast-startup method).
    for (var, features) in [("IMGSLIM_STUB_LZMA", ""), ("IMGSLIM_STUB_ZSTD", "zstd")] {
        let r = build_stub(&cargo, &root, &out, "x86_64-unknown-linux-gnu", features, &x86, &[]);
        let bin = r.unwrap_or_else(|e| panic!("building stub/ ({var}) failed: {e}"));
        println!("cargo:rustc-env={var}={}", bin.display());
    }

    // aarch64: linked at 0x8_0000_0000 (32 GiB). Why there:
    //  - user address spaces on arm64 kernels are 48 bits, but 39 (512 GiB,
    //    common with 4K pages) and even 36 (64 GiB, 16K pages) exist: the
    //    x86_64 stub's 0x6000_0000_0000 would not map, 32 GiB maps on all;
    //  - below ELF_ET_DYN_BASE (2/3 of the address space: >= ~42 GiB) where
    //    PIEs and their interpreter go, and below the top-down mmap area;
    //  - above ET_EXEC programs (GNU ld puts aarch64 text at 0x400000), whose
    //    brk heap still has ~32 GiB to grow into before reaching us;
    //  - clear of Go's arm64 heap hints (0x40_0000_0000 + k<<40), of
    //    qemu-user's mmap base (1 << 38) and inside ASan's aarch64 "low"
    //    application memory (< 1 << 36).
    // Small code model suffices (everything is PC-relative within 4 GiB).
    // 64 KiB max page size: the segments then load on 4K, 16K and 64K kernels.
    // Outline atomics would call helpers that expect libc's HWCAP probe.
    let a64 = [
        "-Crelocation-model=static",
        "-Ctarget-feature=+crt-static,-outline-atomics",
        "-Clinker=rust-lld",
        "-Clinker-flavor=ld.lld",
        "-Clink-arg=-static",
        "-Clink-arg=-nostdlib",
        "-Clink-arg=--build-id=none",
        "-Clink-arg=--image-base=0x800000000",
        "-Clink-arg=-zmax-page-size=65536",
    ];
    let empty = out.join("stub-not-built");
    std::fs::write(&empty, b"").expect("write marker");
    let export = |var: &str, r: Result<PathBuf, String>| match r {
        Ok(bin) => {
            println!("cargo:rustc-env={var}={}", bin.display());
            println!("cargo:rustc-env={var}_WHY=");
        }
        Err(why) => {
            println!("cargo:warning={why}");
            println!("cargo:rustc-env={var}={}", empty.display());
            println!("cargo:rustc-env={var}_WHY={why}");
        }
    };
    if !have_rust_std(A64) {
        let why = format!("aarch64 stub not built: rust-std for {A64} missing (rustup target add {A64})");
        export("IMGSLIM_STUB_A64_LZMA", Err(why.clone()));
        export("IMGSLIM_STUB_A64_ZSTD", Err(why));
        return;
    }
    let lzma = build_stub(&cargo, &root, &out, A64, "", &a64, &[])
        .map_err(|e| format!("aarch64 stub not built: {e}"));
    let lzma_ok = lzma.is_ok();
    export("IMGSLIM_STUB_A64_LZMA", lzma);
    // The C cross compiler: the cc crate's own variables if set, else the
    // Debian/Ubuntu one (gcc-aarch64-linux-gnu) if on PATH.
    println!("cargo:rerun-if-env-changed=CC_aarch64_unknown_linux_gnu");
    println!("cargo:rerun-if-env-changed=AR_aarch64_unknown_linux_gnu");
    let cc = env::var_os("CC_aarch64_unknown_linux_gnu")
        .or_else(|| on_path("aarch64-linux-gnu-gcc").then(|| "aarch64-linux-gnu-gcc".into()));
    let zstd = if !lzma_ok {
        Err("aarch64 zstd stub not built: the aarch64 LZMA stub failed".to_string())
    } else if let Some(cc) = cc {
        let ar = env::var_os("AR_aarch64_unknown_linux_gnu").unwrap_or_else(|| {
            if on_path("aarch64-linux-gnu-ar") { "aarch64-linux-gnu-ar" } else { "aarch64-linux-gnu-gcc-ar" }.into()
        });
        let cc_env: [(&str, OsString); 2] = [("CC_aarch64_unknown_linux_gnu", cc), ("AR_aarch64_unknown_linux_gnu", ar)];
        build_stub(&cargo, &root, &out, A64, "zstd", &a64, &cc_env)
            .map_err(|e| format!("aarch64 zstd stub not built: {e}"))
    } else {
        Err("aarch64 zstd stub not built: no C cross compiler (aarch64-linux-gnu-gcc) for libzstd".to_string())
    };
    export("IMGSLIM_STUB_A64_ZSTD", zstd);
}

/// Builds one stub variant; returns the path of the linked binary.
fn build_stub(
    cargo: &OsString,
    root: &Path,
    out: &Path,
    target: &str,
    features: &str,
    flags: &[&str],
    extra_env: &[(&str, OsString)],
) -> Result<PathBuf, String> {
    let arch = target.split('-').next().unwrap_or(target);
    let variant = if features.is_empty() { "lzma" } else { features };
    // The x86_64 dirs keep their historical names (no rebuild from scratch).
    let tdir = if arch == "x86_64" {
        out.join(format!("stub-target-{variant}"))
    } else {
        out.join(format!("stub-target-{arch}-{variant}"))
    };
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "--target", target, "--features", features, "--manifest-path"])
        .arg(root.join("stub/Cargo.toml"))
        .arg("--target-dir")
        .arg(&tdir)
        // The outer build's flags (coverage, sanitizers, -C target-cpu…) must
        // not leak into a binary that runs before any libc exists.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    if !features.is_empty() {
        // zstd decoder trimmed for the stub (173 -> 110 KiB on x86_64): only the
        // single-symbol Huffman decoder and the short-offset sequence decoder.
        // Frames stay standard; decoding rustup's 20 MB measured no slower
        // (31-33 ms either way). DYNAMIC_BMI2 stays on: dropping it saved 48 KiB
        // more but cost ~8% decode speed.
        let var = format!("CFLAGS_{}", target.replace('-', "_"));
        cmd.env(var, "-DHUF_FORCE_DECOMPRESS_X1 -DZSTD_FORCE_DECOMPRESS_SEQUENCES_SHORT");
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let o = cmd.output().map_err(|e| format!("failed to run cargo for stub/: {e}"))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        // The error lines (cargo/cc-rs/linker), else the last few.
        let lines: Vec<&str> = err.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let errs: Vec<&str> = lines.iter().copied().filter(|l| l.contains("error")).take(3).collect();
        let tail = if errs.is_empty() { lines[lines.len().saturating_sub(3)..].join(" | ") } else { errs.join(" | ") };
        return Err(format!("cargo build --target {target} --features '{features}' failed: {tail}"));
    }
    Ok(tdir.join(target).join("release").join("imgslim-stub"))
}

/// rust-std for `target` is installed (rustup target add).
fn have_rust_std(target: &str) -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .and_then(|d| std::fs::read_dir(d).ok())
        .is_some_and(|mut r| r.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore-"))))
}

fn on_path(tool: &str) -> bool {
    env::var_os("PATH").is_some_and(|p| env::split_paths(&p).any(|d| d.join(tool).is_file()))
}
