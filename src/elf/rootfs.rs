//! The image-root view and its chroot-style resolver live in [`crate::fs::resolve`] (one
//! resolver for the ELF search, profiles, `--explain`, script scanning and tracing); this
//! module keeps the `elf::rootfs` paths its callers already use.
pub use crate::fs::resolve::*;
