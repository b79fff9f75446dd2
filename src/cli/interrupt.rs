//! SIGINT/SIGTERM at any moment: remove every temporary path the run registered (the work
//! area, the staging directories beside the outputs), then exit 128+signal. Creating and
//! registering a path, and committing outputs, happen under one lock, so a signal never falls
//! between creating a temp path and registering it, nor in the middle of a commit.
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start the handler thread. Without it (e.g. signal-hook cannot register) the default
/// disposition stays, and the work area is still in $TMPDIR.
pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            // Held until exit: nothing can be created or committed after the cleanup.
            let list = pending();
            for p in list.iter() {
                remove(p);
            }
            eprintln!("imgslim: interrupted by signal {sig}; nothing was written");
            std::process::exit(128 + sig);
        }
    });
}

fn remove(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// Create a temporary path with `create` and register it for removal on a signal, atomically
/// with respect to the handler.
pub fn create<T>(create: impl FnOnce() -> std::io::Result<T>, path_of: impl FnOnce(&T) -> PathBuf) -> std::io::Result<T> {
    let mut list = pending();
    let t = create()?;
    list.push(path_of(&t));
    Ok(t)
}

/// The path is gone or now belongs to the user: a signal must not remove it.
pub fn forget(p: &Path) {
    pending().retain(|x| x != p);
}

/// Run `f` with the handler held off (the commit of the outputs); `f` gets the registered
/// paths to drop those it hands over to the user.
pub fn critical<R>(f: impl FnOnce(&mut Vec<PathBuf>) -> R) -> R {
    f(&mut pending())
}
