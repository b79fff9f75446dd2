//! The handful of raw Linux syscalls the stub needs (x86_64 and aarch64).

#![allow(dead_code)]

use core::arch::asm;

pub const PROT_NONE: usize = 0;
pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const PROT_EXEC: usize = 4;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANON: usize = 0x20;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MAP_FIXED_NOREPLACE: usize = 0x10_0000;
pub const MAP_POPULATE: usize = 0x8000;
pub const MADV_POPULATE_WRITE: usize = 23;

/// Syscall numbers: x86_64 has its own table, aarch64 the generic one.
#[cfg(target_arch = "x86_64")]
mod nr {
    pub const WRITE: usize = 1;
    pub const EXIT_GROUP: usize = 231;
    pub const EXIT: usize = 60;
    pub const MMAP: usize = 9;
    pub const MUNMAP: usize = 11;
    pub const MPROTECT: usize = 10;
    pub const MADVISE: usize = 28;
    pub const OPENAT: usize = 257;
    pub const PREAD64: usize = 17;
    pub const CLOSE: usize = 3;
    pub const FUTEX: usize = 202;
    pub const SCHED_GETAFFINITY: usize = 204;
}
#[cfg(target_arch = "aarch64")]
mod nr {
    pub const WRITE: usize = 64;
    pub const EXIT_GROUP: usize = 94;
    pub const EXIT: usize = 93;
    pub const MMAP: usize = 222;
    pub const MUNMAP: usize = 215;
    pub const MPROTECT: usize = 226;
    pub const MADVISE: usize = 233;
    pub const OPENAT: usize = 56;
    pub const PREAD64: usize = 67;
    pub const CLOSE: usize = 57;
    pub const FUTEX: usize = 98;
    pub const SCHED_GETAFFINITY: usize = 123;
    pub const CLONE: usize = 220;
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sc6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
    let r: isize;
    asm!("syscall", inlateout("rax") n as isize => r, in("rdi") a, in("rsi") b, in("rdx") c,
         in("r10") d, in("r8") e, in("r9") f, lateout("rcx") _, lateout("r11") _, options(nostack));
    r
}

/// aarch64: number in x8, arguments in x0..x5, result in x0; the kernel
/// preserves every other register.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn sc6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
    let r: isize;
    asm!("svc #0", in("x8") n, inlateout("x0") a as isize => r, in("x1") b, in("x2") c,
         in("x3") d, in("x4") e, in("x5") f, options(nostack));
    r
}

pub fn write(fd: i32, b: &[u8]) -> isize {
    unsafe { sc6(nr::WRITE, fd as usize, b.as_ptr() as usize, b.len(), 0, 0, 0) }
}
pub fn exit(code: i32) -> ! {
    unsafe {
        sc6(nr::EXIT_GROUP, code as usize, 0, 0, 0, 0, 0);
    }
    loop {}
}
pub fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: isize, off: usize) -> isize {
    unsafe { sc6(nr::MMAP, addr, len, prot, flags, fd as usize, off) }
}
pub fn munmap(addr: usize, len: usize) -> isize {
    unsafe { sc6(nr::MUNMAP, addr, len, 0, 0, 0, 0) }
}
pub fn mprotect(addr: usize, len: usize, prot: usize) -> isize {
    unsafe { sc6(nr::MPROTECT, addr, len, prot, 0, 0, 0) }
}
pub fn madvise(addr: usize, len: usize, advice: usize) -> isize {
    unsafe { sc6(nr::MADVISE, addr, len, advice, 0, 0, 0) }
}
/// openat(AT_FDCWD, path, O_RDONLY|O_CLOEXEC); `path` must be NUL-terminated.
pub fn open(path: *const u8) -> isize {
    unsafe { sc6(nr::OPENAT, -100isize as usize, path as usize, 0o2000000, 0, 0, 0) }
}
pub fn pread(fd: i32, buf: &mut [u8], off: usize) -> isize {
    unsafe { sc6(nr::PREAD64, fd as usize, buf.as_mut_ptr() as usize, buf.len(), off, 0, 0) }
}
pub fn close(fd: i32) -> isize {
    unsafe { sc6(nr::CLOSE, fd as usize, 0, 0, 0, 0, 0) }
}

// core expects these from libc; we have none. Written with `rep` string ops so
// the compiler cannot turn them back into calls to themselves.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _, options(nostack, preserves_flags));
    d
}
#[cfg(target_arch = "x86_64")]
#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) <= (s as usize) || (d as usize) >= (s as usize) + n {
        memcpy(d, s, n)
    } else {
        // Overlap with dest after src: copy backwards.
        asm!("std", "rep movsb", "cld", inout("rcx") n => _, inout("rdi") d.add(n - 1) => _,
             inout("rsi") s.add(n - 1) => _, options(nostack));
        d
    }
}
#[cfg(target_arch = "x86_64")]
#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    asm!("rep stosb", inout("rcx") n => _, inout("rdi") d => _, in("al") c as u8, options(nostack, preserves_flags));
    d
}
// aarch64: plain ldp/stp and ldrb/strb loops in asm, for the same reason (a
// Rust loop here may be "optimised" into a call to memcpy itself). Unaligned
// ldp/stp are fine on Normal memory, which is all the stub ever touches.
#[cfg(target_arch = "aarch64")]
#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    asm!(
        "2:",
        "cmp {n}, #16",
        "b.lo 3f",
        "ldp {a}, {b}, [{s}], #16",
        "stp {a}, {b}, [{d}], #16",
        "sub {n}, {n}, #16",
        "b 2b",
        "3:",
        "cbz {n}, 4f",
        "ldrb {a:w}, [{s}], #1",
        "strb {a:w}, [{d}], #1",
        "sub {n}, {n}, #1",
        "b 3b",
        "4:",
        d = inout(reg) d => _, s = inout(reg) s => _, n = inout(reg) n => _,
        a = out(reg) _, b = out(reg) _, options(nostack),
    );
    d
}
#[cfg(target_arch = "aarch64")]
#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) <= (s as usize) || (d as usize) >= (s as usize) + n {
        memcpy(d, s, n)
    } else {
        // Overlap with dest after src: copy backwards, a byte at a time.
        asm!(
            "2:",
            "cbz {n}, 3f",
            "sub {n}, {n}, #1",
            "ldrb {a:w}, [{s}, {n}]",
            "strb {a:w}, [{d}, {n}]",
            "b 2b",
            "3:",
            d = in(reg) d, s = in(reg) s, n = inout(reg) n => _, a = out(reg) _, options(nostack),
        );
        d
    }
}
#[cfg(target_arch = "aarch64")]
#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    let pat = (c as u8 as u64).wrapping_mul(0x0101_0101_0101_0101);
    asm!(
        "2:",
        "cmp {n}, #16",
        "b.lo 3f",
        "stp {p}, {p}, [{d}], #16",
        "sub {n}, {n}, #16",
        "b 2b",
        "3:",
        "cbz {n}, 4f",
        "strb {p:w}, [{d}], #1",
        "sub {n}, {n}, #1",
        "b 3b",
        "4:",
        d = inout(reg) d => _, n = inout(reg) n => _, p = in(reg) pat, options(nostack),
    );
    d
}
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        let (x, y) = (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i)));
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    memcmp(a, b, n)
}

#[cfg(feature = "zstd")]
mod alloc_stubs {
// The zstd C library references the allocator from code paths a static DCtx
// never takes (ZSTD_initStaticDCtx). Satisfy the linker; fail if ever called.
#[no_mangle]
pub extern "C" fn malloc(_: usize) -> *mut u8 {
    core::ptr::null_mut()
}
#[no_mangle]
pub extern "C" fn calloc(_: usize, _: usize) -> *mut u8 {
    core::ptr::null_mut()
}
#[no_mangle]
pub extern "C" fn free(_: *mut u8) {}
}

pub const MADV_HUGEPAGE: usize = 14;
pub const MADV_POPULATE_READ: usize = 22;

/// Number of CPUs this process may run on (sched_getaffinity), at least 1.
pub fn cpus() -> usize {
    let mut mask = [0u64; 16];
    let r = unsafe { sc6(nr::SCHED_GETAFFINITY, 0, core::mem::size_of_val(&mask), mask.as_mut_ptr() as usize, 0, 0, 0) };
    if r <= 0 {
        return 1;
    }
    let words = (r as usize / 8).min(mask.len());
    (mask[..words].iter().map(|w| w.count_ones() as usize).sum::<usize>()).max(1)
}

/// Ends the calling thread only (SYS_exit, not exit_group).
pub fn exit_thread() -> ! {
    unsafe {
        sc6(nr::EXIT, 0, 0, 0, 0, 0, 0);
    }
    loop {}
}

/// futex(FUTEX_WAIT) on a shared futex: the kernel's CLONE_CHILD_CLEARTID
/// wake-up is not a private one.
pub fn futex_wait(addr: *const u32, val: u32) {
    unsafe {
        sc6(nr::FUTEX, addr as usize, 0, val as usize, 0, 0, 0);
    }
}

/// Starts a thread sharing everything with us, running `f(arg)` on the stack
/// ending at `stack_top`. The kernel zeroes `*ctid` and wakes its futex when the
/// thread is gone (CLONE_CHILD_CLEARTID): that is how we join it.
/// Returns the tid, or a negative errno.
#[cfg(target_arch = "x86_64")]
pub unsafe fn spawn(stack_top: usize, ctid: *mut u32, f: unsafe extern "C" fn(usize) -> !, arg: usize) -> isize {
    const FLAGS: usize = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x200000;
    // VM | FS | FILES | SIGHAND | THREAD | SYSVSEM | CHILD_CLEARTID
    let r: isize;
    asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        // Child: fresh stack, nothing to return to.
        "xor ebp, ebp",
        "mov rdi, r12",
        "and rsp, -16",
        "call r13",
        "ud2",
        "2:",
        inlateout("rax") 56isize => r,
        in("rdi") FLAGS,
        in("rsi") stack_top,
        in("rdx") 0usize,
        in("r10") ctid,
        in("r8") 0usize,
        in("r12") arg,
        in("r13") f,
        lateout("rcx") _,
        lateout("r11") _,
    );
    r
}

/// aarch64 `spawn`: clone(flags, stack, parent_tid, tls, child_tid). Both
/// threads come back from `svc` with every register but x0 intact, so the
/// child finds `arg` and `f` in x9/x10 and its new stack in sp.
#[cfg(target_arch = "aarch64")]
pub unsafe fn spawn(stack_top: usize, ctid: *mut u32, f: unsafe extern "C" fn(usize) -> !, arg: usize) -> isize {
    const FLAGS: usize = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x200000;
    // VM | FS | FILES | SIGHAND | THREAD | SYSVSEM | CHILD_CLEARTID
    let r: isize;
    asm!(
        "svc #0",
        "cbnz x0, 2f",
        // Child: fresh (16-byte aligned) stack, nothing to return to.
        "mov x29, xzr",
        "mov x30, xzr",
        "mov x0, x9",
        "blr x10",
        "brk #0",
        "2:",
        in("x8") nr::CLONE,
        inlateout("x0") FLAGS as isize => r,
        in("x1") stack_top & !15,
        in("x2") 0usize,
        in("x3") 0usize,
        in("x4") ctid,
        in("x9") arg,
        in("x10") f,
    );
    r
}
