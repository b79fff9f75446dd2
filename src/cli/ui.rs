//! Human output: always on stderr (stdout carries only machine output: an image with `-o -`,
//! a report with `--report -`, `--json`). `-q` keeps only errors; `-v` adds each step with
//! its time. On a terminal (and without `-q`) each long step shows an indicatif spinner, with
//! bytes and rate where the stage counts them (`crate::progress`); elsewhere no bars at all.
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

static LEVEL: AtomicU8 = AtomicU8::new(1);
/// A bar is on screen: a step inside a step (a trace run inside planning) draws none.
static DRAWING: AtomicBool = AtomicBool::new(false);

pub fn set(quiet: bool, verbose: bool) {
    LEVEL.store(if quiet { 0 } else if verbose { 2 } else { 1 }, Ordering::Relaxed);
}

/// A line of human output (not shown with -q).
pub fn info(s: &str) {
    if LEVEL.load(Ordering::Relaxed) >= 1 {
        eprintln!("{}", s.trim_end_matches('\n'));
    }
}

fn bars() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 1 && std::io::stderr().is_terminal()
}

/// Run one step; on a terminal a spinner names it; with -v, say how long it took.
pub fn step<T>(name: &str, f: impl FnOnce() -> T) -> T {
    run(name, None, false, f)
}

/// A step whose stage counts bytes (`crate::progress`): a bar of `total` bytes when known
/// (else a spinner with the count), and the rate.
pub fn step_bytes<T>(name: &str, total: Option<u64>, f: impl FnOnce() -> T) -> T {
    run(name, total, true, f)
}

fn run<T>(name: &str, total: Option<u64>, counted: bool, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    if counted {
        crate::progress::watch();
    }
    let r = if bars() && !DRAWING.swap(true, Ordering::Relaxed) {
        let r = with_bar(name, total, counted, f);
        DRAWING.store(false, Ordering::Relaxed);
        r
    } else {
        f()
    };
    let bytes = crate::progress::bytes();
    crate::progress::unwatch();
    if LEVEL.load(Ordering::Relaxed) >= 2 {
        let secs = t0.elapsed().as_secs_f64();
        if counted {
            let rate = bytes as f64 / secs.max(1e-3);
            eprintln!("step: {name} ({secs:.2}s, {}, {}/s)", crate::report::human(bytes), crate::report::human(rate as u64));
        } else {
            eprintln!("step: {name} ({secs:.2}s)");
        }
    }
    r
}

fn with_bar<T>(name: &str, total: Option<u64>, counted: bool, f: impl FnOnce() -> T) -> T {
    let (pb, template) = match total.filter(|t| *t > 0 && counted) {
        Some(t) => (ProgressBar::new(t), "{spinner} {msg} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} ({decimal_bytes_per_sec}, {eta})"),
        None if counted => (ProgressBar::no_length(), "{spinner} {msg} {decimal_bytes} ({decimal_bytes_per_sec}, {elapsed})"),
        None => (ProgressBar::no_length(), "{spinner} {msg} ({elapsed})"),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(name.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    let done = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        if counted {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    pb.set_position(crate::progress::bytes());
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let r = f();
        done.store(true, Ordering::Relaxed);
        r
    });
    pb.finish_and_clear();
    r
}
