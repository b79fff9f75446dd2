//! The `elf` stage: which files the dynamic loader needs to start a program in the image.
//!
//! - [`RootFs`]: read-only view of the image root with chroot-like symlink resolution
//!   ([`HostDir`] for a directory on disk).
//! - [`parse`]: the loader-relevant facts of one ELF file (goblin).
//! - [`closure`]: replay the image's loader (glibc or musl, picked from PT_INTERP) from some
//!   roots and return every needed path with the reason it is needed.
//!
//! What static analysis cannot see (dlopen: NSS modules, gconv, Python extensions, …) is left
//! to runtime tracing; see the reference dossier.
pub mod closure;
pub mod parse;
pub mod rootfs;
pub mod search;

pub use closure::{closure, Closure, ClosureOptions, Kept, Reason, Unresolved};
pub use parse::{is_elf, parse, ElfInfo, ParseError};
pub use rootfs::{HostDir, Node, Resolved, RootFs};
pub use search::Flavor;
