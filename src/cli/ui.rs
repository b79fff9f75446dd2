//! Human output: always on stderr (stdout carries only machine output: an image with `-o -`,
//! a report with `--report -`, `inspect`). `-q` keeps only errors; `-v` adds each step with
//! its time.
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

static LEVEL: AtomicU8 = AtomicU8::new(1);

pub fn set(quiet: bool, verbose: bool) {
    LEVEL.store(if quiet { 0 } else if verbose { 2 } else { 1 }, Ordering::Relaxed);
}

/// A line of human output (not shown with -q).
pub fn info(s: &str) {
    if LEVEL.load(Ordering::Relaxed) >= 1 {
        eprintln!("{}", s.trim_end_matches('\n'));
    }
}

/// Run one step; with -v, say what it was and how long it took.
pub fn step<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let r = f();
    if LEVEL.load(Ordering::Relaxed) >= 2 {
        eprintln!("step: {name} ({:.2}s)", t0.elapsed().as_secs_f64());
    }
    r
}
