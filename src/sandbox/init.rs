//! Both sides of the clone. Host: bind the control socket, clone init into new namespaces,
//! write its id maps, call `Hooks::on_spawn`, release it, wait for "ready". Init (pid 1
//! inside): build the root, start the app, then reap every process and answer the host's
//! control requests until told to stop; its exit ends the pid namespace.
use super::control::{AppExit, Request, Response};
use super::exec::{self, Prepared};
use super::setup::{self, RootPlan};
use super::syscall::Linux;
use super::{err, Control, Hooks, Network, Running, Spec};
use crate::error::Result;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

const OUTPUT_LIMIT: usize = 64 << 20;
/// How long output is still read after a process exited (a daemon child may hold the pipe).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
const EXEC_TIMEOUT: Duration = Duration::from_secs(300);

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| err(format!("pipe: {e}")))
}

pub(super) fn start(spec: &Spec, hooks: &mut dyn Hooks) -> Result<Running> {
    let root_mode = nix::unistd::geteuid().is_root();
    let app = exec::prepare(&spec.process, root_mode).map_err(|e| err(format!("command {:?}: {e}", spec.process.argv)))?;
    let socket = spec.scratch.with_extension("sock");
    let listener = UnixListener::bind(&socket).map_err(|e| err(format!("{}: {e}", socket.display())))?;
    let plan = RootPlan {
        rootfs: spec.rootfs.clone(),
        scratch: spec.scratch.clone(),
        network: spec.network,
        hostname: spec.hostname.clone(),
        resolv_conf: resolv_conf(spec.network),
        workdir: spec.process.cwd.clone(),
    };
    let (go_r, go_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if spec.network == Network::Isolated {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: clone with fork semantics (no new stack); see the module doc of `sandbox` for why
    // the child may run Rust code. It never returns from `init_main`.
    let pid = unsafe { libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) } as i32;
    if pid < 0 {
        return Err(err(format!("clone into new namespaces: {}", std::io::Error::last_os_error())));
    }
    if pid == 0 {
        drop((go_w, status_r));
        let ctx = InitCtx { plan, app, listener, capture: spec.capture, hooks: &*hooks, set_groups: root_mode, process: spec.process.clone() };
        let code = init_main(ctx, go_r, status_w);
        // SAFETY: leave without running the host's destructors (temp dirs belong to the host).
        unsafe { libc::_exit(code) };
    }
    drop((go_r, status_w, listener));
    let running = Running { init_pid: pid, control: Control { socket }, reaped: false, reap_on_drop: true };
    release(&running, spec, hooks, go_w, status_r)?;
    Ok(running)
}

/// Map ids, let the tracer attach, let init go, and wait for its report. On error `running`
/// is dropped by the caller, which kills and reaps init.
fn release(running: &Running, spec: &Spec, hooks: &mut dyn Hooks, go: OwnedFd, status: OwnedFd) -> Result<()> {
    let pid = running.init_pid;
    map_ids(pid, spec.process.uid, spec.process.gid).map_err(|e| err(format!("writing the id maps of pid {pid}: {e}")))?;
    hooks.on_spawn(pid).map_err(|e| err(format!("tracer attach to pid {pid}: {e}")))?;
    std::fs::File::from(go).write_all(b"g").map_err(|e| err(format!("releasing init: {e}")))?;
    let mut report = String::new();
    let _ = std::fs::File::from(status).read_to_string(&mut report);
    match report.trim_end() {
        "ok" => Ok(()),
        "" => Err(err("init died while setting up the container")),
        e => Err(err(e)),
    }
}

/// As root, the full id ranges; rootless, one mapping: the image user → the caller.
fn map_ids(pid: i32, uid: u32, gid: u32) -> std::io::Result<()> {
    let (euid, egid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let dir = format!("/proc/{pid}");
    if euid == 0 {
        std::fs::write(format!("{dir}/uid_map"), "0 0 4294967295\n")?;
        return std::fs::write(format!("{dir}/gid_map"), "0 0 4294967295\n");
    }
    std::fs::write(format!("{dir}/setgroups"), "deny")?;
    std::fs::write(format!("{dir}/uid_map"), format!("{uid} {euid} 1\n"))?;
    std::fs::write(format!("{dir}/gid_map"), format!("{gid} {egid} 1\n"))
}

fn resolv_conf(network: Network) -> String {
    match network {
        Network::Host => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        Network::Isolated => "# imgslim: isolated network, no resolver\n".into(),
    }
}

/// Wait for init (untraced runs only); its exit code, or 128+signal.
pub(super) fn wait_init(pid: i32) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(err(format!("waiting for init {pid}: {e}"))),
        }
    }
}

struct InitCtx<'a> {
    plan: RootPlan,
    app: Prepared,
    listener: UnixListener,
    capture: bool,
    hooks: &'a dyn Hooks,
    set_groups: bool,
    process: super::Process,
}

/// What the reaper shares with the request handlers.
#[derive(Default)]
struct State {
    app: Mutex<Option<i32>>,
    app_done: Condvar,
    /// Exec probes waiting for their child's status. Locked across fork+insert so the reaper
    /// never sees a child before its waiter is registered.
    waiters: Mutex<HashMap<i32, Sender<i32>>>,
}

fn init_main(ctx: InitCtx, go: OwnedFd, status: OwnedFd) -> i32 {
    // SAFETY: prctl on ourselves: die with the host (SIGKILL of imgslim ends the container).
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let mut b = [0u8; 1];
    if std::fs::File::from(go).read_exact(&mut b).is_err() {
        return 1; // the host died or gave up before releasing us
    }
    let mut status = std::fs::File::from(status);
    let started = setup::build_root(&Linux, &ctx.plan).map_err(|e| e.to_string()).and_then(|()| start_app(&ctx));
    let (app_pid, outputs) = match started {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(status, "{e}");
            return 1;
        }
    };
    let _ = writeln!(status, "ok");
    drop(status);
    let served = Served {
        state: State::default(),
        app_pid,
        outputs: Mutex::new(Some(outputs)),
        app_result: Mutex::new(None),
        process: ctx.process.clone(),
        set_groups: ctx.set_groups,
        hooks: SharedHooks(ctx.hooks),
    };
    std::thread::scope(|s| {
        let served = &served;
        let listener = &ctx.listener;
        s.spawn(move || {
            for conn in listener.incoming().flatten() {
                s.spawn(move || handle(served, conn));
            }
        });
        reap(served)
    })
}

/// The app's captured output (or nothing, when it writes to the host's stdio) and the exec
/// error its child reported.
struct AppOutput {
    stdout: Option<Receiver<Vec<u8>>>,
    stderr: Option<Receiver<Vec<u8>>>,
    exec_error: Option<String>,
}

fn start_app(ctx: &InitCtx) -> std::result::Result<(i32, AppOutput), String> {
    let e = |what: &str, x: &dyn std::fmt::Display| format!("{what}: {x}");
    if !ctx.capture {
        let (pid, exec_error) = exec::spawn(&ctx.app, [0, 1, 2], ctx.hooks).map_err(|x| e("starting the app", &x))?;
        return Ok((pid, AppOutput { stdout: None, stderr: None, exec_error }));
    }
    let null = std::fs::File::open("/dev/null").map_err(|x| e("/dev/null", &x))?;
    let (out_r, out_w) = pipe().map_err(|x| e("pipe", &x))?;
    let (err_r, err_w) = pipe().map_err(|x| e("pipe", &x))?;
    let (pid, exec_error) = exec::spawn(&ctx.app, [null.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()], ctx.hooks).map_err(|x| e("starting the app", &x))?;
    drop((out_w, err_w));
    Ok((pid, AppOutput { stdout: Some(exec::collect(out_r, OUTPUT_LIMIT)), stderr: Some(exec::collect(err_r, OUTPUT_LIMIT)), exec_error }))
}

/// `pre_exec` runs only in a freshly forked child, on that child's own copy of the hooks, so
/// sharing the reference between init's threads never calls it concurrently on one object.
struct SharedHooks<'a>(&'a dyn Hooks);
// SAFETY: see above: the reference is only dereferenced in forked children.
unsafe impl Sync for SharedHooks<'_> {}

/// Init's state shared by the reaper and the request handlers.
struct Served<'a> {
    state: State,
    app_pid: i32,
    outputs: Mutex<Option<AppOutput>>,
    app_result: Mutex<Option<AppExit>>,
    process: super::Process,
    set_groups: bool,
    hooks: SharedHooks<'a>,
}

/// Reap everything (init is pid 1: orphans land here too); hand statuses to their waiters.
fn reap(s: &Served) -> i32 {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        let (pid, code) = match waitpid(None::<nix::unistd::Pid>, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(p, c)) => (p.as_raw(), c),
            Ok(WaitStatus::Signaled(p, sig, _)) => (p.as_raw(), 128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if pid == s.app_pid {
            *lock(&s.state.app) = Some(code);
            s.state.app_done.notify_all();
        } else if let Some(tx) = lock(&s.state.waiters).remove(&pid) {
            let _ = tx.send(code);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn handle(s: &Served, conn: UnixStream) {
    let mut line = String::new();
    let Ok(mut w) = conn.try_clone() else { return };
    if BufReader::new(conn).read_line(&mut line).is_err() {
        return;
    }
    let resp = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::Error(format!("bad request: {e}")),
        Ok(Request::Exec { argv }) => exec_probe(s, argv).map(Response::Exec).unwrap_or_else(Response::Error),
        Ok(Request::Http { port, path, ready_timeout_ms }) => super::http::get(port, &path, Duration::from_millis(ready_timeout_ms))
            .map(Response::Http)
            .unwrap_or_else(|e| Response::Error(format!("GET :{port}{path}: {e}"))),
        Ok(Request::WaitApp { timeout_ms }) => Response::App(app_exit(s, timeout_ms.map(Duration::from_millis))),
        Ok(Request::Stop) => {
            let _ = w.write_all(b"\"Stopped\"\n");
            let code = (*lock(&s.state.app)).unwrap_or(128 + libc::SIGKILL);
            // SAFETY: exit_group: pid 1 leaving makes the kernel kill the whole namespace.
            unsafe { libc::_exit(code) };
        }
    };
    if let Ok(mut v) = serde_json::to_vec(&resp) {
        v.push(b'\n');
        let _ = w.write_all(&v);
    }
}

/// The app's exit, waiting up to `timeout` (forever with `None`); its output is gathered once.
fn app_exit(s: &Served, timeout: Option<Duration>) -> Option<AppExit> {
    let guard = lock(&s.state.app);
    let guard = match timeout {
        Some(t) => s.state.app_done.wait_timeout_while(guard, t, |c| c.is_none()).unwrap_or_else(|p| p.into_inner()).0,
        None => s.state.app_done.wait_while(guard, |c| c.is_none()).unwrap_or_else(|p| p.into_inner()),
    };
    let code = (*guard)?;
    drop(guard);
    let mut result = lock(&s.app_result);
    if result.is_none() {
        let out = lock(&s.outputs).take();
        let (stdout, mut stderr) = match &out {
            Some(o) => (gather(o.stdout.as_ref()), gather(o.stderr.as_ref())),
            None => (Vec::new(), Vec::new()),
        };
        if let Some(e) = out.as_ref().and_then(|o| o.exec_error.as_ref()) {
            stderr.extend_from_slice(format!("imgslim: {e}\n").as_bytes());
        }
        *result = Some(AppExit { code, stdout, stderr });
    }
    result.clone()
}

fn gather(rx: Option<&Receiver<Vec<u8>>>) -> Vec<u8> {
    rx.and_then(|r| r.recv_timeout(OUTPUT_GRACE).ok()).unwrap_or_default()
}

/// `docker exec`: the app's user, env and cwd; stdin /dev/null; output captured.
fn exec_probe(s: &Served, argv: Vec<String>) -> std::result::Result<super::ExecAnswer, String> {
    let process = super::Process { argv, ..s.process.clone() };
    let prep = exec::prepare(&process, s.set_groups).map_err(|e| e.to_string())?;
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let (out_r, out_w) = pipe().map_err(|e| e.to_string())?;
    let (err_r, err_w) = pipe().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    let (pid, exec_error) = {
        let mut waiters = lock(&s.state.waiters);
        let r = exec::spawn(&prep, [null.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()], s.hooks.0).map_err(|e| e.to_string())?;
        waiters.insert(r.0, tx);
        r
    };
    drop((out_w, err_w, null));
    let (out, err) = (exec::collect(out_r, OUTPUT_LIMIT), exec::collect(err_r, OUTPUT_LIMIT));
    let code = match rx.recv_timeout(EXEC_TIMEOUT) {
        Ok(c) => c,
        Err(_) => {
            // SAFETY: kill(2) of our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            rx.recv().unwrap_or(128 + libc::SIGKILL)
        }
    };
    let mut stderr = gather(Some(&err));
    if let Some(e) = exec_error {
        stderr.extend_from_slice(format!("imgslim: {e}\n").as_bytes());
    }
    Ok(super::ExecAnswer { code, stdout: gather(Some(&out)), stderr })
}
