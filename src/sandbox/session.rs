//! One sandboxed run of an image, as `run`, `verify` and `trace` share it: materialise the
//! rootfs, build the spec, (start,) drive the probes, collect the app's end. Plus the host's
//! lifecycle guards: Ctrl-C/SIGTERM kill the container, and a guardian process removes the
//! work area even when imgslim itself is SIGKILLed.
use super::probe::{drive, Answer, ProbeArgs};
use super::process::{Overrides, Process};
use super::rootfs::{self, Rootfs};
use super::{AppExit, Control, Network, Spec};
use crate::error::{Error, Result};
use crate::fs::{ContentStore, Tree};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub overrides: Overrides,
    pub network: Network,
    pub capture: bool,
}

/// How long a command-line app (no --http probe) may run when --run-for is not given.
pub const DEFAULT_APP_WAIT: Duration = Duration::from_secs(120);

/// Materialise `tree` under `work` and describe the container. `name` keeps two sandboxes of
/// one work area apart (verify runs two images).
pub fn prepare(tree: &Tree, store: &ContentStore, config: &serde_json::Value, work: &Path, name: &str, opts: &RunOptions) -> Result<(Rootfs, Spec)> {
    let process = Process::from_image(config, tree, store, &opts.overrides)?;
    let rootfs = rootfs::materialise(tree, store, &work.join(format!("{name}-rootfs")))?;
    let scratch = work.join(format!("{name}-scratch"));
    std::fs::create_dir(&scratch).map_err(|e| Error::io(&scratch, e))?;
    let spec = Spec { rootfs: rootfs.path().to_path_buf(), scratch, process, network: opts.network, hostname: "imgslim".into(), capture: opts.capture };
    Ok((rootfs, spec))
}

/// Run the probes, then wait for the app: a server (some --http probe) gets --run-for (or
/// nothing) more, a command-line app --run-for or [`DEFAULT_APP_WAIT`] to end by itself.
/// `None` for the app: it was still running.
pub fn exercise(ctl: &Control, args: &ProbeArgs, on_probe: &mut dyn FnMut(Option<&str>)) -> Result<(Vec<Answer>, Option<AppExit>)> {
    let answers = drive(ctl, args, on_probe)?;
    let wait = match (args.run_for()?, args.http.is_empty()) {
        (Some(d), _) => d,
        (None, true) => DEFAULT_APP_WAIT,
        (None, false) => Duration::ZERO,
    };
    let app = ctl.wait_app(Some(wait))?;
    Ok((answers, app))
}

static INIT_PID: AtomicI32 = AtomicI32::new(0);
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNALLED.store(sig, Ordering::SeqCst);
    let pid = INIT_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; the pid namespace dies with its init.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// SIGINT/SIGTERM/SIGHUP: remember the signal and kill the container's init (if any).
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing a handler that only touches atomics and calls kill(2).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// The init the interrupt handler kills (0: none). A signal that arrived before init was known
/// (while it was starting) kills it now.
pub fn kill_on_interrupt(pid: i32) {
    INIT_PID.store(pid, Ordering::SeqCst);
    if pid > 0 && SIGNALLED.load(Ordering::SeqCst) != 0 {
        // SAFETY: kill(2) of our own, not yet reaped, init.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// `Err(Interrupted)` once a caught signal arrived.
pub fn check_interrupted() -> Result<()> {
    match SIGNALLED.load(Ordering::SeqCst) {
        0 => Ok(()),
        s => Err(Error::Interrupted(s)),
    }
}

/// A process that removes `work` once imgslim and everything it started are gone, whatever
/// killed them (SIGKILL included). Fork it before any thread exists. Dropping the guard lets
/// it run now.
pub struct Guardian {
    _pipe: std::os::fd::OwnedFd,
}

pub fn guard_work_area(work: &Path) -> Result<Guardian> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| super::err(format!("pipe: {e}")))?;
    // SAFETY: called while single-threaded: the child is an ordinary fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(super::err(format!("fork: {}", std::io::Error::last_os_error())));
    }
    if pid == 0 {
        drop(w);
        // SAFETY: the guardian outlives a Ctrl-C of the foreground group to clean up after it.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::setsid();
        }
        let mut b = [0u8; 1];
        // Returns at EOF: every holder of the write end (imgslim, init before its exec) is gone.
        let _ = nix::unistd::read(&r, &mut b);
        rootfs::remove_tree(work);
        // SAFETY: leave without the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    drop(r);
    Ok(Guardian { _pipe: w })
}
