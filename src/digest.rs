//! sha256 helpers
