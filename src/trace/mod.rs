//! Runtime tracing: what the app touches, recorded by ptrace with a seccomp filter that stops
//! only on file syscalls (see docs in README "Tracing").
//!
//! - [`filter`]/[`table`]: which calls stop, per arch;
//! - [`tracer`]: the ptrace loop, streaming [`record::Event`]s;
//! - [`record`]: the trace file;
//! - [`resolve`]: trace paths → needs inside the image tree (no ptrace there).
//!
//! Two ways in: [`trace_command`] traces a host program (tests, benches); [`SandboxTracer`]
//! plugs into `sandbox::Hooks` and runs the loop on its own thread, because `Sandbox::start`
//! blocks until init reports, and init stops at its fork events until a tracer resumes it.
pub mod filter;
pub mod paths;
pub mod record;
pub mod resolve;
pub mod table;
pub mod tracer;

pub use record::{Event, Header, RawPath, TraceFile, Writer};
pub use tracer::ProbeLabel;

use std::ffi::CString;
use std::sync::mpsc;
use tracer::Tracer;

/// The sink the tracer thread owns: events go to the trace file as they complete.
pub type BoxSink = Box<dyn FnMut(&Event) -> std::io::Result<()> + Send>;

/// Run `argv` on the host, traced from the calling thread; returns its exit code (128+sig).
/// For tests and benches only: image code never runs outside the sandbox.
pub fn trace_command(argv: &[String], label: ProbeLabel, sink: tracer::Sink) -> std::io::Result<Option<i32>> {
    let cargs: Vec<CString> = argv.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<_, _>>()?;
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let prog = filter::program();
    let (r, w) = nix::unistd::pipe()?;
    // SAFETY: the child only calls async-signal-safe functions (read, prctl, seccomp, execvp,
    // _exit) on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        drop(w);
        let mut b = [0u8; 1];
        // Blocks until the parent has seized us and closed its end.
        let _ = nix::unistd::read(&r, &mut b);
        if filter::install(&prog).is_ok() {
            // SAFETY: argv pointers are NUL-terminated strings kept alive by `cargs`.
            unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
        }
        // SAFETY: leave the forked child without running the parent's destructors.
        unsafe { libc::_exit(127) };
    }
    drop(r);
    let mut t = Tracer::seize(pid, label);
    drop(w);
    t.as_mut().map_err(|e| std::io::Error::from(*e))?.run(sink)
}

/// `sandbox::Hooks` for a traced run: `on_spawn` hands init's pid to the tracer thread, which
/// seizes it and then runs the loop until every process of the container is gone.
pub struct SandboxTracer {
    prog: Vec<libc::sock_filter>,
    to_thread: Option<mpsc::Sender<i32>>,
    seized: mpsc::Receiver<std::io::Result<()>>,
}

// SAFETY: the filter is plain data (the raw pointer type is only used by the install call).
unsafe impl Send for SandboxTracer {}

/// What the tracer thread returns: the root's exit code and the sink, to be finished.
pub type Outcome = std::io::Result<(Option<i32>, BoxSink)>;

impl SandboxTracer {
    pub fn start(label: ProbeLabel, mut sink: BoxSink) -> (SandboxTracer, std::thread::JoinHandle<Outcome>) {
        let (tx, rx) = mpsc::channel::<i32>();
        let (stx, srx) = mpsc::channel();
        let h = std::thread::spawn(move || {
            let Ok(pid) = rx.recv() else { return Ok((None, sink)) };
            let mut t = match Tracer::seize(pid, label) {
                Ok(t) => t,
                Err(e) => {
                    let _ = stx.send(Err(e.into()));
                    return Err(e.into());
                }
            };
            let _ = stx.send(Ok(()));
            let code = t.run(&mut *sink)?;
            Ok((code, sink))
        });
        (SandboxTracer { prog: filter::program(), to_thread: Some(tx), seized: srx }, h)
    }
}

/// How long the tracer thread may take to see every process exit once the container was told
/// to stop (the kernel kills the whole pid namespace with its init: milliseconds).
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Join the tracer thread, giving up after `timeout`: a tracer that waits for an exit that
/// never comes must fail the run, not hang it (the thread is left blocked; the caller exits).
pub fn join_tracer(h: std::thread::JoinHandle<Outcome>, timeout: std::time::Duration) -> std::io::Result<(Option<i32>, BoxSink)> {
    let until = std::time::Instant::now() + timeout;
    while !h.is_finished() {
        if std::time::Instant::now() >= until {
            return Err(std::io::Error::other(format!("traced processes still unaccounted for {}s after the container stopped", timeout.as_secs())));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    h.join().map_err(|_| std::io::Error::other("tracer thread panicked"))?
}

impl crate::sandbox::Hooks for SandboxTracer {
    fn on_spawn(&mut self, init_host_pid: i32) -> std::io::Result<()> {
        let tx = self.to_thread.take().ok_or_else(|| std::io::Error::other("tracer: on_spawn called twice"))?;
        tx.send(init_host_pid).map_err(|_| std::io::Error::other("tracer thread is gone"))?;
        self.seized.recv().map_err(|_| std::io::Error::other("tracer thread is gone"))?
    }
    fn pre_exec(&self) -> std::io::Result<()> {
        filter::install(&self.prog)
    }
}
