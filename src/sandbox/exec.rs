//! Starting image code inside the container (the app, and every exec probe): fork, then in the
//! child stdio, signals, capabilities, user, cwd, NO_NEW_PRIVS, the tracer's `pre_exec`, and
//! execve along the container's PATH. Everything allocated is prepared before the fork.
use super::{Hooks, Process};
use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub(super) struct Prepared {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<CString>,
    cwd: CString,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    set_groups: bool,
    shown: String,
}

/// Docker's default capability set: what root in a container has.
const ROOT_CAPS: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("NUL byte in {s:?}")))
}

/// `set_groups`: supplementary groups can be set (full id ranges are mapped: imgslim is root).
pub(super) fn prepare(p: &Process, set_groups: bool) -> io::Result<Prepared> {
    let name = p.argv.first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let candidates = if name.contains('/') {
        vec![cstr(name)?]
    } else {
        p.path_var().split(':').map(|d| cstr(&format!("{}/{name}", if d.is_empty() { "." } else { d }))).collect::<io::Result<_>>()?
    };
    Ok(Prepared {
        candidates,
        argv: p.argv.iter().map(|a| cstr(a)).collect::<io::Result<_>>()?,
        env: p.env.iter().map(|a| cstr(a)).collect::<io::Result<_>>()?,
        cwd: cstr(&p.cwd)?,
        uid: p.uid,
        gid: p.gid,
        groups: p.groups.clone(),
        set_groups,
        shown: name.clone(),
    })
}

/// The child's stdio: a fd to dup2 onto 0, 1, 2.
pub(super) type Stdio = [RawFd; 3];

/// Fork and exec. Returns the pid and, when exec failed, the error the child reported (the
/// child has then exited 127 for a missing file, 126 otherwise, as a shell would).
pub(super) fn spawn(prep: &Prepared, stdio: Stdio, hooks: &dyn Hooks) -> io::Result<(i32, Option<String>)> {
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // SAFETY: glibc's fork resets its own locks in the child; the child only makes system calls
    // on data prepared above, runs the tracer's pre_exec, then execs or _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        drop(err_r);
        let (stage, errno) = child(prep, stdio, hooks);
        let mut msg = [0u8; 5];
        msg[0] = stage;
        msg[1..].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: writing a stack buffer to our pipe, then leaving without running destructors.
        unsafe {
            libc::write(err_w.as_raw_fd(), msg.as_ptr().cast(), 5);
            libc::_exit(if errno == libc::ENOENT { 127 } else { 126 });
        }
    }
    drop(err_w);
    let mut buf = Vec::new();
    std::fs::File::from(err_r).read_to_end(&mut buf)?;
    if buf.len() < 5 {
        return Ok((pid, None));
    }
    let errno = i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let stage = ["setting up stdio", "dropping capabilities", "switching user", "entering the working directory", "setting NO_NEW_PRIVS", "the tracer's pre_exec", "exec"]
        .get(buf[0] as usize)
        .copied()
        .unwrap_or("starting");
    let what = if buf[0] == 3 { prep.cwd.to_string_lossy().into_owned() } else { prep.shown.clone() };
    Ok((pid, Some(format!("{stage} {what}: {}", io::Error::from_raw_os_error(errno)))))
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// In the forked child. Returns only on failure: (stage, errno).
fn child(p: &Prepared, stdio: Stdio, hooks: &dyn Hooks) -> (u8, i32) {
    // SAFETY: plain system calls on prepared, NUL-terminated data.
    unsafe {
        for (i, fd) in stdio.iter().enumerate() {
            if *fd != i as RawFd && libc::dup2(*fd, i as RawFd) < 0 {
                return (0, errno());
            }
        }
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        for sig in 1..32 {
            libc::signal(sig, libc::SIG_DFL);
        }
        // The bounding set limits what execve can grant: nothing for a user, Docker's set for root.
        for cap in 0..64u32 {
            if (p.uid != 0 || !ROOT_CAPS.contains(&cap)) && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) < 0 && errno() != libc::EINVAL {
                return (1, errno());
            }
        }
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0);
        if p.set_groups && libc::setgroups(p.groups.len(), p.groups.as_ptr()) < 0 {
            return (2, errno());
        }
        if libc::setgid(p.gid) < 0 || libc::setuid(p.uid) < 0 {
            return (2, errno());
        }
        if libc::chdir(p.cwd.as_ptr()) < 0 {
            return (3, errno());
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            return (4, errno());
        }
        if let Err(e) = hooks.pre_exec() {
            return (5, e.raw_os_error().unwrap_or(libc::EIO));
        }
        exec_path(p)
    }
}

/// execvp with the container's PATH: the first candidate that is not missing decides.
unsafe fn exec_path(p: &Prepared) -> (u8, i32) {
    let mut argv: Vec<*const libc::c_char> = p.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut env: Vec<*const libc::c_char> = p.env.iter().map(|a| a.as_ptr()).collect();
    env.push(std::ptr::null());
    let mut last = libc::ENOENT;
    for c in &p.candidates {
        libc::execve(c.as_ptr(), argv.as_ptr(), env.as_ptr());
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => last = libc::EACCES,
            e => return (6, e),
        }
    }
    (6, last)
}

/// Read a pipe to its end on a thread of its own; the result arrives on the channel.
pub(super) fn collect(fd: OwnedFd, limit: usize) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::fs::File::from(fd).take(limit as u64).read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}
