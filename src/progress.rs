//! Byte counts from the long stages (reading layer blobs, writing the new layer) for whoever
//! shows progress (the CLI's bars). Stages call `add` and know nothing of terminals; when no
//! one watches, `add` is one relaxed atomic load.
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static WATCHED: AtomicBool = AtomicBool::new(false);
static BYTES: AtomicU64 = AtomicU64::new(0);

pub fn add(n: u64) {
    if WATCHED.load(Ordering::Relaxed) {
        BYTES.fetch_add(n, Ordering::Relaxed);
    }
}

/// Start counting from 0 (the CLI, around one step).
pub fn watch() {
    BYTES.store(0, Ordering::Relaxed);
    WATCHED.store(true, Ordering::Relaxed);
}

pub fn unwatch() {
    WATCHED.store(false, Ordering::Relaxed);
}

pub fn bytes() -> u64 {
    BYTES.load(Ordering::Relaxed)
}

/// A reader whose bytes count as progress.
pub struct Counted<R>(pub R);

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        add(n as u64);
        Ok(n)
    }
}
