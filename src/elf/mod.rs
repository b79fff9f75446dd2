//! The `elf` stage: which files the dynamic loader needs to start a program in the image.
//!
//! - [`RootFs`]: read-only view of the image root with chroot-like symlink resolution
//!   ([`HostDir`] for a directory on disk; the in-memory image tree implements the 3 primitives).
//! - [`parse()`]: the loader-relevant facts of one ELF file (goblin; header, phdrs, dynamic only).
//! - [`closure()`]: replay the image's own loader (glibc or musl, picked from PT_INTERP) from some
//!   roots and return every needed path (canonical files and every symlink on the way) with the
//!   reason it is needed, plus unresolved DT_NEEDED as warnings.
//!
//! ```no_run
//! use imgslim::elf::{closure, ClosureOptions, HostDir};
//! let fs = HostDir::new("/path/to/rootfs");
//! let opts = ClosureOptions { ld_library_path: Some("/opt/app/lib".into()), ..Default::default() };
//! let c = closure(&fs, &["/usr/bin/python3".to_string()], &opts);
//! for (path, kept) in &c.kept {
//!     println!("{path}: kept: {kept}"); // e.g. "DT_NEEDED libz.so.1 of /usr/bin/python3.11 (root: /usr/bin/python3)"
//! }
//! for u in &c.unresolved {
//!     eprintln!("warning: {} needed by {} not found: {}", u.name, u.requester, u.why);
//! }
//! ```
//!
//! Not visible to static analysis, left to runtime tracing: `dlopen()` (NSS modules, gconv,
//! Python/Perl/Ruby extensions, OpenSSL engines/providers, libgcc_s for pthread_cancel), and
//! DT_AUDIT/LD_AUDIT.
pub mod closure;
pub mod parse;
pub mod rootfs;
pub mod search;

pub use closure::{closure, Closure, ClosureOptions, Kept, Reason, Unresolved};
pub use parse::{is_elf, parse, ElfInfo, ParseError};
pub use rootfs::{HostDir, Node, Resolved, RootFs};
pub use search::Flavor;
