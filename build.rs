//! Builds the `stub/` loader (no_std, no libc) and hands its path to
//! `src/pack` via `IMGSLIM_STUB`. It needs nothing beyond the stable
//! x86_64-unknown-linux-gnu toolchain: rustc's bundled lld links it.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    for p in ["stub/src", "stub/Cargo.toml", "stub/Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = "x86_64-unknown-linux-gnu";
    // Static, non-PIE, linked far above where ET_EXEC programs live (0x400000…)
    // and below the kernel's PIE/mmap areas; large code model because of that
    // address. Keep in sync with `STUB_REGION` in src/pack/format.rs.
    let flags = [
        "-Crelocation-model=static",
        "-Ccode-model=large",
        "-Ctarget-feature=+crt-static",
        "-Clink-arg=-nostartfiles",
        "-Clink-arg=-nostdlib",
        "-Clink-arg=-static",
        "-Clink-arg=-Wl,--build-id=none",
        "-Clink-arg=-Wl,--image-base=0x600000000000",
    ]
    .join("\x1f");
    // Two variants: LZMA-only (small) and LZMA+zstd (fast-startup method).
    for (var, features) in [("IMGSLIM_STUB_LZMA", ""), ("IMGSLIM_STUB_ZSTD", "zstd")] {
        let tdir = out.join(format!("stub-target-{}", if features.is_empty() { "lzma" } else { features }));
        let status = Command::new(&cargo)
            .args(["build", "--release", "--quiet", "--target", target, "--features", features, "--manifest-path"])
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
            .env("CARGO_ENCODED_RUSTFLAGS", &flags)
            .status()
            .expect("failed to run cargo for stub/");
        assert!(status.success(), "building stub/ ({var}) failed");
        let bin = tdir.join(target).join("release").join("imgslim-stub");
        println!("cargo:rustc-env={var}={}", bin.display());
    }
}
