//! The seccomp filter: SECCOMP_RET_TRACE for the file syscalls only, so the app runs at full
//! speed between them. Built by hand rather than with `seccompiler`: its generated filter kills
//! a process calling from a foreign arch (i386 on x86_64), where we must trace every call.
use super::table;
use libc::{sock_filter, BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};

const RET_TRACE: u32 = libc::SECCOMP_RET_TRACE;
const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter { code: code as u16, jt: 0, jf: 0, k }
}
fn jeq(k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code: (BPF_JMP | BPF_JEQ | BPF_K) as u16, jt, jf, k }
}

/// The BPF program (kept in memory, installed by [`install`] just before each exec).
pub fn program() -> Vec<sock_filter> {
    let nrs: Vec<u32> = table::native().iter().map(|c| c.nr).collect();
    let mut p = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH),
        // Native arch: go on to the number checks; anything else: trace it all.
        jeq(table::NATIVE_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, RET_TRACE),
        stmt(BPF_LD | BPF_W | BPF_ABS, OFF_NR),
    ];
    // x32 ABI numbers have bit 30 set: traced like a foreign arch.
    #[cfg(target_arch = "x86_64")]
    p.push(sock_filter { code: (BPF_JMP | libc::BPF_JGE | BPF_K) as u16, jt: (nrs.len() + 3) as u8, jf: 0, k: 0x4000_0000 });
    // io_uring does file I/O without syscalls the tracer sees: refuse it like Docker's profile.
    p.push(jeq(libc::SYS_io_uring_setup as u32, 0, 1));
    p.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    let n = nrs.len();
    for (i, nr) in nrs.iter().enumerate() {
        // Jump to the RET_TRACE after the final ALLOW.
        p.push(jeq(*nr, (n - i) as u8, 0));
    }
    p.push(stmt(BPF_RET | BPF_K, RET_ALLOW));
    p.push(stmt(BPF_RET | BPF_K, RET_TRACE));
    p
}

/// Install `prog` in the calling thread (inherited by its children and execs). Async-signal
/// safe: only prctl and seccomp, so it may run between fork and exec.
pub fn install(prog: &[sock_filter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut sock_filter };
    // SAFETY: prctl/seccomp read `fprog` and the program it points to, both alive here.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
