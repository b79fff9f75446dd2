//! The ptrace loop: seize a root process, follow every fork/vfork/clone/exec, and at each
//! seccomp stop read the call's path (at entry, when cwd and fds are still what the call saw),
//! restart with PTRACE_SYSCALL to see its result, then let it run on. Events are streamed to a
//! sink as they complete; the state held is per live thread only.
use super::paths;
use super::record::{Event, RawPath};
use super::table::{Arg, Call, Op, Tables};
use nix::errno::Errno;
use nix::sys::ptrace::{self, Options};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The probe running now, set from the probe thread, stamped on each event.
pub type ProbeLabel = Arc<Mutex<Option<String>>>;

pub fn seize_options() -> Options {
    Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACESECCOMP
        | Options::PTRACE_O_TRACESYSGOOD
        // Mandatory: with the filter installed and no tracer, traced calls fail with ENOSYS.
        | Options::PTRACE_O_EXITKILL
}

/// A call seen at its seccomp stop, waiting for its result.
struct Pending {
    call: Call,
    /// The caller, named at entry (after an exec it is another program).
    pid: i32,
    exe: String,
    path: Vec<u8>,
    to: Option<Vec<u8>>,
    flags: Option<String>,
}

/// Who a thread is, read once per thread (and again after an exec).
pub struct Who {
    pub pid: i32,
    pub exe: String,
}

pub struct Tracer {
    tables: Tables,
    live: HashSet<i32>,
    /// Children announced by their parent's fork/clone event, not yet exited.
    announced: HashSet<i32>,
    /// Children whose exit was reported before their parent's fork/clone event: waitpid
    /// gives no order between the two, and re-adding such a child to `live` on the late
    /// event would wait forever for an exit already seen.
    exited_unannounced: HashSet<i32>,
    pending: HashMap<i32, Pending>,
    who: HashMap<i32, Who>,
    root: i32,
    root_status: Option<i32>,
    label: ProbeLabel,
}

pub type Sink<'a> = &'a mut dyn FnMut(&Event) -> std::io::Result<()>;

impl Tracer {
    /// Seize `root` (stopped or blocked before doing anything) from the thread that will run
    /// [`Tracer::run`]: ptrace belongs to the seizing thread.
    pub fn seize(root: i32, label: ProbeLabel) -> nix::Result<Tracer> {
        ptrace::seize(Pid::from_raw(root), seize_options())?;
        Ok(Tracer::new(root, label))
    }

    fn new(root: i32, label: ProbeLabel) -> Tracer {
        let live = HashSet::from([root]);
        Tracer { tables: Tables::default(), live, announced: HashSet::new(), exited_unannounced: HashSet::new(), pending: HashMap::new(), who: HashMap::new(), root, root_status: None, label }
    }

    /// Until every traced process is gone. Returns the root's exit code (128+signal).
    pub fn run(&mut self, sink: Sink) -> std::io::Result<Option<i32>> {
        while !self.live.is_empty() {
            let st = match wait_any() {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => break,
                Err(e) => return Err(e.into()),
            };
            self.step(st, sink)?;
        }
        Ok(self.root_status)
    }

    fn step(&mut self, st: WaitStatus, sink: Sink) -> std::io::Result<()> {
        match st {
            WaitStatus::PtraceEvent(pid, _, ev) => {
                self.live.insert(pid.as_raw());
                self.on_event(pid, ev, sink)?;
            }
            WaitStatus::PtraceSyscall(pid) => {
                self.live.insert(pid.as_raw());
                self.on_syscall_stop(pid, sink)?;
            }
            WaitStatus::Stopped(pid, sig) => {
                self.live.insert(pid.as_raw());
                // A signal for the tracee: deliver it.
                resume(ptrace::cont(pid, sig));
            }
            WaitStatus::Exited(pid, code) => self.gone(pid.as_raw(), code),
            WaitStatus::Signaled(pid, sig, _) => self.gone(pid.as_raw(), 128 + sig as i32),
            _ => {}
        }
        Ok(())
    }

    fn gone(&mut self, tid: i32, code: i32) {
        if tid != self.root && !self.announced.remove(&tid) {
            self.exited_unannounced.insert(tid);
        }
        if self.live.remove(&tid) {
            self.pending.remove(&tid);
            self.who.remove(&tid);
            if tid == self.root {
                self.root_status = Some(code);
            }
        }
    }

    fn on_event(&mut self, pid: Pid, ev: i32, sink: Sink) -> std::io::Result<()> {
        match ev {
            libc::PTRACE_EVENT_SECCOMP => return self.on_seccomp(pid),
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(child) = ptrace::getevent(pid) {
                    self.announce(child as i32);
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                // An exec from a non-leader thread: that thread now has the leader's id; its
                // old id vanishes without an exit report.
                if let Ok(former) = ptrace::getevent(pid) {
                    let former = former as i32;
                    if former != pid.as_raw() {
                        self.live.remove(&former);
                        self.announced.remove(&former);
                        self.who.remove(&former);
                    }
                    // The exec succeeded: its event is complete (no exit stop is awaited).
                    if let Some(p) = self.pending.remove(&former).or_else(|| self.pending.remove(&pid.as_raw())) {
                        sink(&self.event(p, "ok".into()))?;
                    }
                }
                self.who.remove(&pid.as_raw());
            }
            _ => {}
        }
        // Initial stops of new tracees, group-stops and the events above: run on.
        resume(ptrace::cont(pid, None));
        Ok(())
    }

    /// A new child named by its parent's event: live until its exit, unless that came first.
    fn announce(&mut self, child: i32) {
        if !self.exited_unannounced.remove(&child) {
            self.announced.insert(child);
            self.live.insert(child);
        }
    }

    fn on_seccomp(&mut self, pid: Pid) -> std::io::Result<()> {
        let Ok(info) = ptrace::syscall_info(pid) else {
            resume(ptrace::cont(pid, None));
            return Ok(());
        };
        // SAFETY: op is SECCOMP at a seccomp stop, so `seccomp` is the union's live member.
        let (nr, args) = unsafe { (info.u.seccomp.nr, info.u.seccomp.args) };
        match self.tables.get(info.arch, nr).copied() {
            Some(call) => match decode(pid.as_raw(), &call, &args) {
                Some((path, to, flags)) => {
                    let who = self.who.entry(pid.as_raw()).or_insert_with(|| paths::who(pid.as_raw()));
                    let p = Pending { call, pid: who.pid, exe: who.exe.clone(), path, to, flags };
                    self.pending.insert(pid.as_raw(), p);
                    // Stop again at the exit to see the result.
                    resume(ptrace::syscall(pid, None));
                }
                None => resume(ptrace::cont(pid, None)),
            },
            // A foreign-arch call that is not about files.
            None => resume(ptrace::cont(pid, None)),
        }
        Ok(())
    }

    fn on_syscall_stop(&mut self, pid: Pid, sink: Sink) -> std::io::Result<()> {
        let info = ptrace::syscall_info(pid).ok();
        match info.map(|i| i.op) {
            Some(libc::PTRACE_SYSCALL_INFO_EXIT) => {
                // SAFETY: op is EXIT, so `exit` is the union's live member.
                let (sval, is_error) = unsafe { (info.map(|i| i.u.exit.sval).unwrap_or(0), info.map(|i| i.u.exit.is_error).unwrap_or(0)) };
                if let Some(p) = self.pending.remove(&pid.as_raw()) {
                    let result = if is_error != 0 { format!("{:?}", Errno::from_raw(-sval as i32)) } else { "ok".into() };
                    let ev = self.event(p, result);
                    sink(&ev)?;
                }
                resume(ptrace::cont(pid, None));
            }
            // An entry stop (kernels that stop at entry after the seccomp stop): go to the exit.
            Some(libc::PTRACE_SYSCALL_INFO_ENTRY) => resume(ptrace::syscall(pid, None)),
            _ => resume(ptrace::cont(pid, None)),
        }
        Ok(())
    }

    fn event(&self, p: Pending, result: String) -> Event {
        Event {
            syscall: p.call.name.into(),
            op: p.call.op,
            path: RawPath::from_bytes(p.path),
            to: p.to.map(RawPath::from_bytes),
            flags: p.flags,
            result,
            pid: p.pid,
            exe: p.exe,
            probe: self.label.lock().ok().and_then(|l| l.clone()),
        }
    }
}

/// A tracee may die (SIGKILL of its namespace) between its stop and our restart: not an error.
/// `waitpid(-1, __WALL)`. A tracee stopped by a real-time signal (Go's per-thread setuid
/// signal, glibc's SIGSETXID and SIGCANCEL are 32–34) is resumed with it here: nix's `Signal`
/// has no real-time signals, so `WaitStatus` cannot carry that stop. `Ok(None)`: handled.
fn wait_any() -> nix::Result<Option<WaitStatus>> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes one int through a valid pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
    if pid < 0 {
        return Err(Errno::last());
    }
    if libc::WIFSTOPPED(status) && (status >> 16) == 0 {
        let sig = libc::WSTOPSIG(status);
        if sig >= 32 && sig != libc::SIGTRAP | 0x80 {
            // SAFETY: PTRACE_CONT on our stopped tracee, delivering its own signal.
            unsafe { libc::ptrace(libc::PTRACE_CONT, pid, std::ptr::null_mut::<libc::c_void>(), sig as libc::c_long) };
            return Ok(None);
        }
    }
    WaitStatus::from_raw(Pid::from_raw(pid), status).map(Some)
}

fn resume(r: nix::Result<()>) {
    let _ = r;
}

/// Read the call's path(s) at its entry. `None`: nothing to record (an fd that is a pipe, an
/// abstract or non-Unix socket).
type Decoded = (Vec<u8>, Option<Vec<u8>>, Option<String>);

fn decode(tid: i32, call: &Call, args: &[u64; 6]) -> Option<Decoded> {
    let path = match call.arg {
        Arg::Path(i) => paths::absolute(tid, libc::AT_FDCWD, &paths::read_cstr(tid, args[i])?)?,
        Arg::At(d, i) => paths::absolute(tid, args[d] as i32, &paths::read_cstr(tid, args[i])?)?,
        Arg::Fd(i) => paths::fd_path(tid, args[i] as i32)?,
        Arg::Sock(a, l) => paths::absolute(tid, libc::AT_FDCWD, &paths::unix_sock_path(tid, args[a], args[l])?)?,
    };
    let to = match (call.op, call.arg) {
        (Op::Change, Arg::Path(_)) if call.name == "rename" => paths::read_cstr(tid, args[1]).and_then(|p| paths::absolute(tid, libc::AT_FDCWD, &p)),
        (Op::Change, Arg::At(..)) if call.name.starts_with("rename") => paths::read_cstr(tid, args[3]).and_then(|p| paths::absolute(tid, args[2] as i32, &p)),
        _ => None,
    };
    let flags = match (call.flags, call.name) {
        (Some(i), _) => Some(paths::open_flags(args[i])),
        (None, "openat2") => paths::read_u64(tid, args[2]).map(paths::open_flags),
        (None, "creat") => Some(paths::open_flags((libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64)),
        _ => None,
    };
    Some((path, to, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order a loaded machine produced (1 run in 30): the child's initial stop and exit
    /// reach waitpid before its parent's fork event. The tracer hung waiting for that exit.
    #[test]
    fn a_child_that_exits_before_its_fork_event_is_not_waited_for() {
        let mut t = Tracer::new(100, ProbeLabel::default());
        t.live.insert(101); // its initial stop
        t.gone(101, 0);
        t.announce(101); // the parent's late PTRACE_EVENT_FORK
        t.gone(100, 0);
        assert!(t.live.is_empty(), "{:?}", t.live);
    }

    #[test]
    fn an_announced_child_is_waited_for_until_it_exits() {
        let mut t = Tracer::new(100, ProbeLabel::default());
        t.announce(101);
        t.gone(100, 3);
        assert_eq!(t.live, HashSet::from([101]));
        t.gone(101, 0);
        assert!(t.live.is_empty() && t.announced.is_empty() && t.exited_unannounced.is_empty());
        assert_eq!(t.root_status, Some(3));
    }
}
