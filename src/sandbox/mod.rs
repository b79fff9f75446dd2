//! A daemonless, rootless sandbox for an image's app: user+mount+pid+ipc+uts (+net) namespaces,
//! an overlay root (the squashed rootfs, materialised once, read-only under a tmpfs upper),
//! `/proc`, a minimal `/dev`, `/sys` read-only, `pivot_root`, no capabilities beyond the image
//! user's, `NO_NEW_PRIVS`.
//!
//! The host clones the sandbox's init (pid 1 inside) with fork semantics, not a re-exec of
//! `/proc/self/exe`: `Hooks::pre_exec` must run in the sandbox's processes with the tracer's
//! state (its prepared seccomp filter) in memory, which a re-exec would lose. The clone happens
//! after the image is loaded, when the only other threads are rayon's idle workers, which hold
//! no lock; the child only runs our own setup code before it execs or forks.
//!
//! Host side: [`Sandbox::start`] returns a [`Running`]; its [`Control`] handle (Send + Clone)
//! asks init for probes over a Unix socket from any thread; [`Running::wait`] reaps init when
//! no tracer does.
mod control;
mod exec;
mod http;
mod init;
pub mod probe;
pub mod process;
pub mod rootfs;
pub mod session;
mod setup;
pub mod syscall;

pub use control::{AppExit, Control, ExecAnswer, HttpAnswer};
pub use probe::{Probe, ProbeArgs};
pub use process::Process;

use crate::error::{Error, Result};
use std::path::PathBuf;

/// What a tracer plugs into the sandbox (the `trace` branch implements it).
pub trait Hooks: Send {
    /// Host side, once: the host pid of init, after clone and BEFORE init does anything (init
    /// blocks on a pipe until this returns). The tracer PTRACE_SEIZEs init here with
    /// TRACEFORK/VFORK/CLONE/EXEC/SECCOMP/EXITKILL, so every process init forks is traced.
    fn on_spawn(&mut self, _init_host_pid: i32) -> std::io::Result<()> {
        Ok(())
    }
    /// Inside the sandbox, in each process about to exec image code (the app and every exec
    /// probe), after NO_NEW_PRIVS and dropping caps, immediately before execve. The tracer
    /// installs its seccomp filter.
    fn pre_exec(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// No tracer: `imgslim run` and `imgslim verify`.
pub struct NoHooks;
impl Hooks for NoHooks {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum Network {
    /// Its own network namespace with loopback up (a server may bind :80 without root).
    #[default]
    Isolated,
    /// The host's network namespace.
    Host,
}

/// Everything init needs to build the container and start the app.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The squashed rootfs materialised on disk (see [`rootfs::materialise`]): the overlay's
    /// read-only lower layer.
    pub rootfs: PathBuf,
    /// An empty directory in the work area: init mounts its tmpfs (overlay upper, new root)
    /// there, inside its own mount namespace, and binds the control socket next to it.
    pub scratch: PathBuf,
    pub process: Process,
    pub network: Network,
    pub hostname: String,
    /// Capture the app's stdout/stderr (for `verify`) instead of passing the host's through.
    pub capture: bool,
}

/// The started sandbox (host side).
pub struct Running {
    init_pid: i32,
    control: Control,
    /// Init was reaped (by `wait`, or by a tracer that said so): its pid may be reused.
    reaped: bool,
    /// Untraced: `Drop` reaps init itself. A tracer that reaps turns this off.
    reap_on_drop: bool,
}

pub struct Sandbox;

impl Sandbox {
    /// Clone init into new namespaces, map the ids, call `hooks.on_spawn`, let init build the
    /// container and start the app. Returns once the app has been started (or setup failed).
    pub fn start(spec: &Spec, hooks: &mut dyn Hooks) -> Result<Running> {
        init::start(spec, hooks)
    }
}

impl Running {
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }
    /// A handle for probes, usable from any thread.
    pub fn control(&self) -> Control {
        self.control.clone()
    }
    /// A tracer reaps every process with `waitpid(-1, __WALL)`: `Running` must not.
    pub fn reaped_by_tracer(&mut self) {
        self.reap_on_drop = false;
    }
    /// Tell `Running` that init was reaped elsewhere (the tracer saw it exit).
    pub fn mark_reaped(&mut self) {
        self.reaped = true;
    }
    /// Ask init to end the container (every process in it dies with the pid namespace).
    pub fn stop(&self) {
        let _ = self.control.stop();
    }
    /// Untraced only: wait for init to exit; returns its exit code (the app's, or 128+signal).
    pub fn wait(mut self) -> Result<i32> {
        let code = init::wait_init(self.init_pid)?;
        self.reaped = true;
        Ok(code)
    }
    /// SIGKILL init: the kernel kills every process of the pid namespace with it.
    pub fn kill(&self) {
        if !self.reaped {
            // SAFETY: plain kill(2) of our own child, which has not been reaped.
            unsafe { libc::kill(self.init_pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        self.kill();
        if self.reap_on_drop {
            let _ = init::wait_init(self.init_pid);
        }
    }
}

/// An error of the sandbox's own machinery (not the app's).
pub(crate) fn err(msg: impl std::fmt::Display) -> Error {
    Error::Other(format!("sandbox: {msg}"))
}
