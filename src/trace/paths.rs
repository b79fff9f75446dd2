//! Reading a tracee's arguments and naming what they refer to, at syscall entry: strings via
//! process_vm_readv, relative paths joined to /proc/TID/cwd or /proc/TID/fd/N, magic links
//! (/proc/self/exe, /proc/self/fd/N, /dev/fd/N) translated to what they point at.
use std::os::unix::ffi::OsStrExt;

const PATH_MAX: usize = 4096;

fn read_mem(tid: i32, addr: u64, buf: &mut [u8]) -> usize {
    let local = [std::io::IoSliceMut::new(buf)];
    let remote = [libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: local[0].len() }];
    // SAFETY: reads another process's memory into `buf`, whose length bounds the copy.
    let n = unsafe { libc::process_vm_readv(tid, local.as_ptr() as *const libc::iovec, 1, remote.as_ptr(), 1, 0) };
    n.max(0) as usize
}

/// A NUL-terminated string of the tracee, page by page (a string may end just before an
/// unmapped page). `None` for a bad pointer.
pub fn read_cstr(tid: i32, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < PATH_MAX {
        let room = 4096 - (at as usize % 4096);
        let mut buf = vec![0u8; room.min(PATH_MAX - out.len())];
        let n = read_mem(tid, at, &mut buf);
        if n == 0 {
            return if out.is_empty() { None } else { Some(out) };
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    Some(out)
}

pub fn read_u64(tid: i32, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    (read_mem(tid, addr, &mut b) == 8).then(|| u64::from_ne_bytes(b))
}

fn link(p: String) -> Option<Vec<u8>> {
    std::fs::read_link(p).ok().map(|l| l.as_os_str().as_bytes().to_vec())
}

/// The file an fd refers to, if it is one (not a pipe, socket or anon inode).
pub fn fd_path(tid: i32, fd: i32) -> Option<Vec<u8>> {
    link(format!("/proc/{tid}/fd/{fd}")).filter(|p| p.starts_with(b"/"))
}

/// `path` made absolute against the dirfd (AT_FDCWD: the cwd), magic links translated. Not
/// cleaned: `..` after a symlink must be resolved physically, later, in the image.
pub fn absolute(tid: i32, dirfd: i32, path: &[u8]) -> Option<Vec<u8>> {
    if path.is_empty() {
        // AT_EMPTY_PATH: the dirfd itself.
        return fd_path(tid, dirfd);
    }
    if path.starts_with(b"/") {
        return Some(translate_magic(tid, path).unwrap_or_else(|| path.to_vec()));
    }
    let base = if dirfd == libc::AT_FDCWD { link(format!("/proc/{tid}/cwd"))? } else { fd_path(tid, dirfd)? };
    base.starts_with(b"/").then(|| crate::fs::join_path(&base, path))
}

/// /proc/self/{exe,cwd,root,fd/N}[/rest], /proc/thread-self/… and /dev/fd/N[/rest].
fn translate_magic(tid: i32, path: &[u8]) -> Option<Vec<u8>> {
    let rest = [b"/proc/self/".as_slice(), b"/proc/thread-self/"].iter().find_map(|p| path.strip_prefix(*p));
    let (target, tail) = match rest {
        Some(r) => {
            let (head, tail) = split_first(r);
            match head {
                b"exe" => (link(format!("/proc/{tid}/exe"))?, tail),
                b"cwd" => (link(format!("/proc/{tid}/cwd"))?, tail),
                b"root" => (b"/".to_vec(), tail),
                b"fd" => {
                    let (n, tail) = split_first(tail);
                    (fd_path(tid, std::str::from_utf8(n).ok()?.parse().ok()?)?, tail)
                }
                _ => return None,
            }
        }
        None => {
            let r = path.strip_prefix(b"/dev/fd/")?;
            let (n, tail) = split_first(r);
            (fd_path(tid, std::str::from_utf8(n).ok()?.parse().ok()?)?, tail)
        }
    };
    Some(if tail.is_empty() { target } else { crate::fs::join_path(&target, tail) })
}

fn split_first(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().position(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (p, &[]),
    }
}

/// The path of an AF_UNIX sockaddr (not abstract, not unnamed).
pub fn unix_sock_path(tid: i32, addr: u64, len: u64) -> Option<Vec<u8>> {
    let len = (len as usize).min(std::mem::size_of::<libc::sockaddr_un>());
    if len <= 2 {
        return None;
    }
    let mut buf = vec![0u8; len];
    if read_mem(tid, addr, &mut buf) != len || u16::from_ne_bytes([buf[0], buf[1]]) != libc::AF_UNIX as u16 || buf[2] == 0 {
        return None;
    }
    let p = &buf[2..];
    Some(p[..p.iter().position(|&b| b == 0).unwrap_or(p.len())].to_vec())
}

/// `O_RDONLY|O_CLOEXEC`-style text of the open flags that matter for the reader.
pub fn open_flags(f: u64) -> String {
    let f = f as i32;
    let mut s = vec![match f & libc::O_ACCMODE {
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_RDONLY",
    }];
    for (bit, name) in [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_PATH, "O_PATH"),
        (libc::O_TMPFILE & !libc::O_DIRECTORY, "O_TMPFILE"),
    ] {
        if f & bit == bit {
            s.push(name);
        }
    }
    s.join("|")
}

/// The thread's process id in its own pid namespace (last NStgid field: a thread's own id
/// would make each Go or Java thread look like another process) and its executable's name.
pub fn who(tid: i32) -> super::tracer::Who {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).unwrap_or_default();
    let pid = status
        .lines()
        .find_map(|l| l.strip_prefix("NStgid:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|p| p.parse().ok())
        .unwrap_or(tid);
    let exe = link(format!("/proc/{tid}/exe"))
        .and_then(|p| p.rsplit(|&b| b == b'/').next().map(|n| String::from_utf8_lossy(n).into_owned()))
        .unwrap_or_else(|| std::fs::read_to_string(format!("/proc/{tid}/comm")).unwrap_or_default().trim().to_string());
    super::tracer::Who { pid, exe }
}
