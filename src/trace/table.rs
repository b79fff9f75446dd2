//! Which syscalls the tracer stops on, per architecture, and where their path arguments are.
//! Numbers: `libc::SYS_*` for the native arch; the i386 table is written out (libc has no
//! foreign-arch numbers) for 32-bit programs running on x86_64.

/// What a syscall's arguments name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A path relative to the cwd: argument index.
    Path(usize),
    /// `(dirfd, path)` argument indices; an empty path means the dirfd itself (AT_EMPTY_PATH).
    At(usize, usize),
    /// A file descriptor (fchdir, getdents64): the object it refers to.
    Fd(usize),
    /// `connect`/`bind`: `(sockaddr, len)`; AF_UNIX paths only.
    Sock(usize, usize),
}

/// What the call does with the path: the resolution step treats them differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Open,
    Stat,
    Exec,
    Chdir,
    /// getdents64: the directory was listed, its entries are needed.
    List,
    Socket,
    /// mkdir/unlink/rename/rmdir: the image's original is kept, a new name keeps its parents.
    Change,
}

#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub nr: u32,
    pub name: &'static str,
    pub arg: Arg,
    pub op: Op,
    /// Index of the open flags argument (open family), for the trace's `flags` field.
    pub flags: Option<usize>,
}

const fn c(nr: i64, name: &'static str, arg: Arg, op: Op, flags: Option<usize>) -> Call {
    Call { nr: nr as u32, name, arg, op, flags }
}

use Arg::*;
use Op::*;

/// Native (x86_64 or aarch64) file syscalls.
pub fn native() -> Vec<Call> {
    use libc::*;
    let mut v = vec![
        c(SYS_openat, "openat", At(0, 1), Open, Some(2)),
        c(SYS_openat2, "openat2", At(0, 1), Open, None),
        c(SYS_newfstatat, "newfstatat", At(0, 1), Stat, None),
        c(SYS_statx, "statx", At(0, 1), Stat, None),
        c(SYS_faccessat, "faccessat", At(0, 1), Stat, None),
        c(SYS_faccessat2, "faccessat2", At(0, 1), Stat, None),
        c(SYS_readlinkat, "readlinkat", At(0, 1), Stat, None),
        c(SYS_execve, "execve", Path(0), Exec, None),
        c(SYS_execveat, "execveat", At(0, 1), Exec, None),
        c(SYS_chdir, "chdir", Path(0), Chdir, None),
        c(SYS_fchdir, "fchdir", Fd(0), Chdir, None),
        c(SYS_getxattr, "getxattr", Path(0), Stat, None),
        c(SYS_lgetxattr, "lgetxattr", Path(0), Stat, None),
        c(SYS_listxattr, "listxattr", Path(0), Stat, None),
        c(SYS_llistxattr, "llistxattr", Path(0), Stat, None),
        c(SYS_setxattr, "setxattr", Path(0), Change, None),
        c(SYS_lsetxattr, "lsetxattr", Path(0), Change, None),
        c(SYS_removexattr, "removexattr", Path(0), Change, None),
        c(SYS_lremovexattr, "lremovexattr", Path(0), Change, None),
        c(SYS_connect, "connect", Sock(1, 2), Socket, None),
        c(SYS_bind, "bind", Sock(1, 2), Socket, None),
        c(SYS_getdents64, "getdents64", Fd(0), List, None),
        c(SYS_mkdirat, "mkdirat", At(0, 1), Change, None),
        c(SYS_unlinkat, "unlinkat", At(0, 1), Change, None),
        c(SYS_renameat2, "renameat2", At(0, 1), Change, None),
        c(SYS_truncate, "truncate", Path(0), Change, None),
        c(SYS_statfs, "statfs", Path(0), Stat, None),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        c(SYS_open, "open", Path(0), Open, Some(1)),
        c(SYS_creat, "creat", Path(0), Open, None),
        c(SYS_stat, "stat", Path(0), Stat, None),
        c(SYS_lstat, "lstat", Path(0), Stat, None),
        c(SYS_access, "access", Path(0), Stat, None),
        c(SYS_readlink, "readlink", Path(0), Stat, None),
        c(SYS_getdents, "getdents", Fd(0), List, None),
        c(SYS_mkdir, "mkdir", Path(0), Change, None),
        c(SYS_rmdir, "rmdir", Path(0), Change, None),
        c(SYS_unlink, "unlink", Path(0), Change, None),
        c(SYS_rename, "rename", Path(0), Change, None),
        c(SYS_renameat, "renameat", At(0, 1), Change, None),
    ]);
    v
}

/// i386 programs on an x86_64 kernel (the filter traces every foreign-arch call; these are the
/// ones decoded). Numbers from arch/x86/entry/syscalls/syscall_32.tbl.
pub fn i386() -> Vec<Call> {
    vec![
        c(5, "open", Path(0), Open, Some(1)),
        c(8, "creat", Path(0), Open, None),
        c(10, "unlink", Path(0), Change, None),
        c(11, "execve", Path(0), Exec, None),
        c(12, "chdir", Path(0), Chdir, None),
        c(33, "access", Path(0), Stat, None),
        c(38, "rename", Path(0), Change, None),
        c(39, "mkdir", Path(0), Change, None),
        c(40, "rmdir", Path(0), Change, None),
        c(85, "readlink", Path(0), Stat, None),
        c(106, "stat", Path(0), Stat, None),
        c(107, "lstat", Path(0), Stat, None),
        c(133, "fchdir", Fd(0), Chdir, None),
        c(195, "stat64", Path(0), Stat, None),
        c(196, "lstat64", Path(0), Stat, None),
        c(220, "getdents64", Fd(0), List, None),
        c(229, "getxattr", Path(0), Stat, None),
        c(230, "lgetxattr", Path(0), Stat, None),
        c(295, "openat", At(0, 1), Open, Some(2)),
        c(296, "mkdirat", At(0, 1), Change, None),
        c(300, "fstatat64", At(0, 1), Stat, None),
        c(301, "unlinkat", At(0, 1), Change, None),
        c(302, "renameat", At(0, 1), Change, None),
        c(305, "readlinkat", At(0, 1), Stat, None),
        c(307, "faccessat", At(0, 1), Stat, None),
        c(358, "execveat", At(0, 1), Exec, None),
        c(383, "statx", At(0, 1), Stat, None),
        c(437, "openat2", At(0, 1), Open, None),
        c(439, "faccessat2", At(0, 1), Stat, None),
    ]
}

pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

#[cfg(target_arch = "x86_64")]
pub const NATIVE_ARCH: u32 = AUDIT_ARCH_X86_64;
#[cfg(target_arch = "aarch64")]
pub const NATIVE_ARCH: u32 = AUDIT_ARCH_AARCH64;

/// Syscall tables by audit arch, looked up at each stop.
pub struct Tables {
    native: Vec<Option<Call>>,
    i386: Vec<Option<Call>>,
}

fn index(calls: Vec<Call>) -> Vec<Option<Call>> {
    let max = calls.iter().map(|c| c.nr as usize).max().unwrap_or(0);
    let mut v = vec![None; max + 1];
    for call in calls {
        v[call.nr as usize] = Some(call);
    }
    v
}

impl Default for Tables {
    fn default() -> Self {
        Tables { native: index(native()), i386: index(i386()) }
    }
}

impl Tables {
    pub fn get(&self, arch: u32, nr: u64) -> Option<&Call> {
        let t = match arch {
            NATIVE_ARCH => &self.native,
            AUDIT_ARCH_I386 => &self.i386,
            _ => return None,
        };
        t.get(nr as usize).and_then(|c| c.as_ref())
    }
}
