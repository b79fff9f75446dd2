//! imgslim: make container images small.
//!
//! The modules follow the pipeline, top to bottom:
//! `image` (formats in and out) → `layer` (tar changesets, whiteouts) → `fs` (the merged tree)
//! → `elf` / `profile` / `trace` (what the app needs) → `plan` (keep/drop with reasons)
//! → `pack` (optional executable packing) → `report` → `cli`.
pub mod cli;
pub mod digest;
pub mod elf;
pub mod error;
pub mod fs;
/// Fuzz harnesses (fuzz/ targets and tests/fuzz_regressions.rs call them); not a user API.
#[doc(hidden)]
pub mod fuzz;
pub mod image;
pub mod layer;
pub mod pack;
pub mod pkgdb;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod registry;
pub mod report;
pub mod sandbox;
pub mod sbom;
pub mod secrets;
pub mod trace;
