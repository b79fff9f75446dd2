//! imgslim pack stub: a tiny in-process ELF loader (x86_64 and aarch64 Linux,
//! no libc). Built once per architecture; each build loads only programs of
//! its own architecture (`EM`).
//!
//! The packed file is `[ELF headers][this stub's segments][payload segment][footer]`
//! (payload layout: `payload.rs`). The kernel maps all of it; we then
//!  1. find the payload through our own program headers (AT_PHDR), so neither
//!     /proc nor the file path is needed;
//!  2. reserve the original's address range from its program headers, which
//!     the payload keeps uncompressed (ET_EXEC: at their vaddr; ET_DYN: at a
//!     kernel-chosen base);
//!  3. decode every chunk that a PT_LOAD maps straight into that segment's
//!     memory, on as many threads as we have CPUs (chunks are independent
//!     streams); bytes no segment maps are never decoded;
//!  4. apply the segment protections, map PT_INTERP's loader from disk like
//!     the kernel does, unmap the payload;
//!  5. patch AT_PHDR/AT_PHNUM/AT_PHENT/AT_ENTRY/AT_BASE in the auxv on the
//!     original stack and jump to the interpreter (or entry) with that stack.
//!
//! The process image stays the packed file, so /proc/self/exe, $ORIGIN, comm,
//! argv, envp and the rest of auxv are exactly what the kernel gave us.
//! On any internal failure the stub prints one line and exits 127 (like UPX).
//!
//! aarch64 differences: the page size is the kernel's (AT_PAGESZ: 4, 16 or
//! 64 KiB) rather than a constant, no BCJ filter is ever applied (the packer
//! sets CF_E8 for x86_64 code only), and the stub is linked lower (see
//! build.rs) because a 39-bit user address space ends at 512 GiB.

#![no_std]
#![no_main]

mod bcj;
mod elf64;
mod lzma;
mod payload;
mod sys;

use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use elf64::{le16, le64, Phdr, PF_R, PF_W, PF_X, PT_LOAD, PT_PHDR};
use payload::{Chunk, Header, CF_E8, METHOD_LZMA, METHOD_ZSTD, SEG_NONE};

#[cfg(feature = "zstd")]
extern crate zstd_sys;
#[cfg(feature = "zstd")]
extern "C" {
    fn ZSTD_initStaticDCtx(workspace: *mut u8, size: usize) -> *mut u8;
    fn ZSTD_decompressDCtx(dctx: *mut u8, dst: *mut u8, cap: usize, src: *const u8, len: usize) -> usize;
    fn ZSTD_isError(code: usize) -> u32;
}

/// zstd decoder workspace per thread: ZSTD_estimateDCtxSize() is ~160 KiB for
/// zstd 1.5; leave headroom. Frames are decoded in one pass into their
/// destination, so no window buffer is needed.
#[cfg(feature = "zstd")]
const ZSTD_WS: usize = 512 << 10;
/// Stack of each helper thread (the LZMA decoder keeps ~30 KiB of state on it).
const THREAD_STACK: usize = 256 << 10;
const MAX_THREADS: usize = 16;

/// ELF machine this stub loads.
#[cfg(target_arch = "x86_64")]
const EM: u16 = elf64::EM_X86_64;
#[cfg(target_arch = "aarch64")]
const EM: u16 = elf64::EM_AARCH64;

/// Page size: x86_64 is always 4 KiB.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn page() -> usize {
    4096
}
/// aarch64 kernels run with 4, 16 or 64 KiB pages: AT_PAGESZ says which.
/// Set once in `stub_main` before any thread exists.
#[cfg(target_arch = "aarch64")]
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn page() -> usize {
    PAGE_SIZE.load(Ordering::Relaxed)
}

const AT_PHDR: usize = 3;
const AT_PHENT: usize = 4;
const AT_PHNUM: usize = 5;
const AT_BASE: usize = 7;
#[cfg(target_arch = "aarch64")]
const AT_PAGESZ: usize = 6;
const AT_ENTRY: usize = 9;

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym stub_main,
);

// The kernel starts us with sp at argc (16-byte aligned already on aarch64).
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, xzr",
    "mov x30, xzr",
    "mov x0, sp",
    "and x1, x0, #-16",
    "mov sp, x1",
    "bl {main}",
    "brk #0",
    main = sym stub_main,
);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    die(b"internal error")
}

fn die(msg: &[u8]) -> ! {
    sys::write(2, b"imgslim-stub: ");
    sys::write(2, msg);
    sys::write(2, b"\n");
    sys::exit(127)
}

fn check(r: isize, msg: &[u8]) -> usize {
    if r < 0 && r > -4096 {
        die(msg)
    }
    r as usize
}
struct Ehdr {
    e_type: u16,
    e_entry: u64,
    e_phoff: u64,
    e_phnum: u16,
}

fn ehdr(b: &[u8]) -> Ehdr {
    if b.len() < 64
        || b[0..4] != *b"\x7fELF"
        || b[4] != 2
        || b[5] != 1
        || le16(b, 18) != EM
        || le16(b, 54) != 56
    {
        #[cfg(target_arch = "x86_64")]
        die(b"payload is not an x86_64 ELF64");
        #[cfg(target_arch = "aarch64")]
        die(b"payload is not an aarch64 ELF64");
    }
    Ehdr { e_type: le16(b, 16), e_entry: le64(b, 24), e_phoff: le64(b, 32), e_phnum: le16(b, 56) }
}

fn prot(flags: u32) -> usize {
    let mut p = 0;
    if flags & PF_R != 0 {
        p |= sys::PROT_READ;
    }
    if flags & PF_W != 0 {
        p |= sys::PROT_WRITE;
    }
    if flags & PF_X != 0 {
        p |= sys::PROT_EXEC;
    }
    p
}

fn page_down(x: usize) -> usize {
    x & !(page() - 1)
}
fn page_up(x: usize) -> usize {
    (x + page() - 1) & !(page() - 1)
}

/// Span [lo, hi) of the PT_LOADs, page-rounded, and the largest alignment.
fn load_span(ph: &[Phdr]) -> (usize, usize, usize) {
    let (mut lo, mut hi, mut align) = (usize::MAX, 0usize, page());
    for p in ph.iter().filter(|p| p.p_type == PT_LOAD) {
        lo = lo.min(page_down(p.p_vaddr as usize));
        hi = hi.max(page_up((p.p_vaddr + p.p_memsz) as usize));
        // Cap like the kernel does for huge alignments we cannot honour cheaply.
        if p.p_align as usize > align && p.p_align.is_power_of_two() && p.p_align <= 1 << 30 {
            align = p.p_align as usize;
        }
    }
    if lo >= hi {
        die(b"no PT_LOAD")
    }
    (lo, hi, align)
}

/// Reserves `len` bytes aligned to `align` at a kernel-chosen address.
fn reserve(len: usize, align: usize) -> usize {
    let raw = check(
        sys::mmap(0, len + align, sys::PROT_NONE, sys::MAP_PRIVATE | sys::MAP_ANON | sys::MAP_NORESERVE, -1, 0),
        b"mmap reserve failed",
    );
    let base = (raw + align - 1) & !(align - 1);
    if base > raw {
        sys::munmap(raw, base - raw);
    }
    let end = raw + len + align;
    if end > base + len {
        sys::munmap(base + len, end - (base + len));
    }
    base
}

/// Shared by the threads that decode chunks: everything is read-only except
/// the work counter, the failure flag and the (disjoint) destination ranges.
struct Work<'a> {
    hdr: &'a Header<'a>,
    phs: &'a [Phdr],
    bias: usize,
    next: AtomicUsize,
    failed: AtomicU32,
}

/// Where a chunk's bytes go in memory if program header `seg` maps them:
/// (address, length); None unless that PT_LOAD's file range holds the chunk.
fn dest(phs: &[Phdr], bias: usize, c: &Chunk, seg: usize) -> Option<(usize, usize)> {
    let ph = phs.get(seg).filter(|p| p.p_type == PT_LOAD)?;
    let end = c.file_off.checked_add(c.len)?;
    if c.file_off < ph.p_offset || end > ph.p_offset + ph.p_filesz {
        return None;
    }
    Some((bias + (ph.p_vaddr + (c.file_off - ph.p_offset)) as usize, c.len as usize))
}

impl Work<'_> {
    /// Takes chunks off the shared counter until none are left.
    unsafe fn run(&self) {
        #[cfg(feature = "zstd")]
        let mut dctx: *mut u8 = ptr::null_mut();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.hdr.nchunks || self.failed.load(Ordering::Relaxed) != 0 {
                break;
            }
            let c = self.hdr.chunk(i);
            if c.seg == SEG_NONE {
                continue;
            }
            let Some((addr, len)) = dest(self.phs, self.bias, &c, c.seg as usize) else {
                self.failed.store(1, Ordering::Relaxed);
                break;
            };
            // Fault the destination in with one call (Linux 5.14+; older kernels
            // say EINVAL and the pages fault in as we write): in parallel too.
            let s = page_down(addr);
            sys::madvise(s, page_up(addr + len) - s, sys::MADV_POPULATE_WRITE);
            let out = core::slice::from_raw_parts_mut(addr as *mut u8, len);
            let comp = self.hdr.stream(&c);
            let ok = match self.hdr.method {
                METHOD_LZMA => {
                    let props = lzma::Props { lc: self.hdr.lc as u32, lp: self.hdr.lp as u32, pb: self.hdr.pb as u32 };
                    matches!(lzma::decode(comp, props, out), Ok(n) if n == len)
                }
                #[cfg(feature = "zstd")]
                METHOD_ZSTD => {
                    if dctx.is_null() {
                        let ws = sys::mmap(0, ZSTD_WS, sys::PROT_READ | sys::PROT_WRITE, sys::MAP_PRIVATE | sys::MAP_ANON, -1, 0);
                        if ws > 0 {
                            dctx = ZSTD_initStaticDCtx(ws as *mut u8, ZSTD_WS);
                        }
                    }
                    !dctx.is_null() && {
                        let r = ZSTD_decompressDCtx(dctx, out.as_mut_ptr(), len, comp.as_ptr(), comp.len());
                        ZSTD_isError(r) == 0 && r == len
                    }
                }
                _ => false,
            };
            if !ok {
                self.failed.store(1, Ordering::Relaxed);
                break;
            }
            if c.flags & CF_E8 != 0 {
                bcj::x86_decode(out, c.file_off as u32);
            }
        }
        // The zstd workspace stays mapped (a few hundred KiB): unmapping would
        // cost a TLB shootdown across threads for nothing.
    }
}

/// Helper thread body: decode, then end this thread only.
unsafe extern "C" fn worker(arg: usize) -> ! {
    (*(arg as *const Work)).run();
    sys::exit_thread()
}

/// Decodes all runtime chunks with up to one thread per CPU (the caller's
/// thread included) and waits for the helpers to be gone before returning.
unsafe fn decode_parallel(w: &Work) {
    let runtime = (0..w.hdr.nchunks).filter(|&i| w.hdr.chunk(i).seg != SEG_NONE).count();
    let n = sys::cpus().min(MAX_THREADS).min(runtime).max(1);
    let mut tids = [0u32; MAX_THREADS];
    let mut stacks = [0usize; MAX_THREADS];
    for k in 1..n {
        let st = sys::mmap(0, THREAD_STACK, sys::PROT_READ | sys::PROT_WRITE, sys::MAP_PRIVATE | sys::MAP_ANON, -1, 0);
        if st < 0 {
            break;
        }
        stacks[k] = st as usize;
        tids[k] = 1;
        // A refused clone (RLIMIT_NPROC, seccomp…) just means fewer helpers.
        if sys::spawn(st as usize + THREAD_STACK, &mut tids[k], worker, w as *const Work as usize) <= 0 {
            tids[k] = 0;
        }
    }
    w.run();
    for k in 1..n {
        let t = &tids[k] as *const u32 as *const AtomicU32;
        loop {
            let v = (*t).load(Ordering::Acquire);
            if v == 0 {
                break;
            }
            sys::futex_wait(t as *const u32, v);
        }
        if stacks[k] != 0 {
            sys::munmap(stacks[k], THREAD_STACK);
        }
    }
}

#[no_mangle]
unsafe extern "C" fn stub_main(sp: *mut usize) -> ! {
    // Kernel stack layout: argc, argv[], NULL, envp[], NULL, auxv pairs, AT_NULL.
    let argc = *sp;
    let mut p = sp.add(1 + argc + 1);
    while *p != 0 {
        p = p.add(1);
    }
    let auxv = p.add(1);
    let mut slot = [ptr::null_mut::<usize>(); 10];
    let mut a = auxv;
    while *a != 0 {
        if *a < slot.len() {
            slot[*a] = a.add(1);
        }
        a = a.add(2);
    }
    for k in [AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE, AT_ENTRY] {
        if slot[k].is_null() {
            die(b"auxv entry missing")
        }
    }
    #[cfg(target_arch = "aarch64")]
    if !slot[AT_PAGESZ].is_null() {
        let ps = *slot[AT_PAGESZ];
        if ps.is_power_of_two() && ps >= 4096 {
            PAGE_SIZE.store(ps, Ordering::Relaxed);
        }
    }

    // Our payload is the last PT_LOAD of our own headers.
    let own = core::slice::from_raw_parts(*slot[AT_PHDR] as *const u8, *slot[AT_PHNUM] * 56);
    let (mut pay_addr, mut pay_len) = (0usize, 0usize);
    for i in 0..*slot[AT_PHNUM] {
        let ph = Phdr::parse(own, i * 56);
        if ph.p_type == PT_LOAD {
            pay_addr = ph.p_vaddr as usize;
            pay_len = ph.p_filesz as usize;
        }
    }
    if pay_len == 0 {
        die(b"payload segment missing")
    }
    // Fault the whole compressed payload in at once rather than page by page.
    sys::madvise(page_down(pay_addr), page_up(pay_addr + pay_len) - page_down(pay_addr), sys::MADV_POPULATE_READ);
    let pay = core::slice::from_raw_parts(pay_addr as *const u8, pay_len);
    let hdr = match Header::parse(pay) {
        Ok(h) => h,
        Err(m) => die(m.as_bytes()),
    };
    if hdr.method != METHOD_LZMA && (cfg!(not(feature = "zstd")) || hdr.method != METHOD_ZSTD) {
        die(b"unknown compression method")
    }

    let eh = ehdr(hdr.ehdr);
    let phnum = hdr.phnum;
    if phnum == 0 || phnum != eh.e_phnum as usize {
        die(b"bad program headers")
    }
    let mut phs = [Phdr { p_type: 0, p_flags: 0, p_offset: 0, p_vaddr: 0, p_filesz: 0, p_memsz: 0, p_align: 0 }; 64];
    if phnum > phs.len() {
        die(b"too many program headers")
    }
    for i in 0..phnum {
        phs[i] = Phdr::parse(hdr.phdrs, i * 56);
        let ph = &phs[i];
        if ph.p_type == PT_LOAD
            && (ph.p_filesz > ph.p_memsz || ph.p_offset.checked_add(ph.p_filesz).map_or(true, |e| e > hdr.orig_size))
        {
            die(b"bad PT_LOAD")
        }
    }
    let phs = &phs[..phnum];

    // Reserve the program's address range.
    let (lo, hi, align) = load_span(phs);
    let bias = if eh.e_type == 3 {
        reserve(hi - lo, align) - lo
    } else {
        let r = sys::mmap(
            lo,
            hi - lo,
            sys::PROT_NONE,
            sys::MAP_PRIVATE | sys::MAP_ANON | sys::MAP_FIXED_NOREPLACE | sys::MAP_NORESERVE,
            -1,
            0,
        );
        if r as usize != lo {
            die(b"program address range is occupied")
        }
        0
    };
    // Each segment's pages RW while decoding; final protections afterwards (so
    // two segments sharing a boundary page never clobber each other).
    for ph in phs.iter().filter(|p| p.p_type == PT_LOAD) {
        let s = page_down(bias + ph.p_vaddr as usize);
        let e = page_up(bias + (ph.p_vaddr + ph.p_memsz) as usize);
        check(sys::mprotect(s, e - s, sys::PROT_READ | sys::PROT_WRITE), b"mprotect failed");
    }

    let work = Work { hdr: &hdr, phs, bias, next: AtomicUsize::new(0), failed: AtomicU32::new(0) };
    decode_parallel(&work);
    if work.failed.load(Ordering::Acquire) != 0 {
        die(b"corrupt payload")
    }
    // A chunk inside the file ranges of two PT_LOADs (rare: overlapping
    // segments) was decoded into the first; copy it to the others.
    for i in 0..hdr.nchunks {
        let c = hdr.chunk(i);
        let Some((src, len)) = dest(phs, bias, &c, c.seg as usize) else { continue };
        for k in (0..phnum).filter(|&k| k != c.seg as usize) {
            if let Some((dst, _)) = dest(phs, bias, &c, k) {
                ptr::copy(src as *const u8, dst as *mut u8, len);
            }
        }
    }

    let mut prev_end = 0usize;
    let mut prev_prot = 0usize;
    for ph in phs.iter().filter(|p| p.p_type == PT_LOAD) {
        let mut s = page_down(bias + ph.p_vaddr as usize);
        let e = page_up(bias + (ph.p_vaddr + ph.p_memsz) as usize);
        let pr = prot(ph.p_flags);
        if s < prev_end {
            // Shared boundary page keeps the union of both protections.
            sys::mprotect(s, page(), pr | prev_prot);
            s += page();
        }
        if e > s {
            check(sys::mprotect(s, e - s, pr), b"mprotect failed");
        }
        prev_end = e;
        prev_prot = pr;
    }

    // AT_PHDR must point at the program headers in the mapped image.
    let phoff = eh.e_phoff as usize;
    let mut phdr_addr = 0usize;
    for ph in phs {
        if ph.p_type == PT_PHDR {
            phdr_addr = bias + ph.p_vaddr as usize;
        }
    }
    if phdr_addr == 0 {
        for ph in phs.iter().filter(|p| p.p_type == PT_LOAD) {
            let (o, f) = (ph.p_offset as usize, ph.p_filesz as usize);
            if phoff >= o && phoff + phnum * 56 <= o + f {
                phdr_addr = bias + ph.p_vaddr as usize + (phoff - o);
                break;
            }
        }
    }
    if phdr_addr == 0 {
        // Not inside any segment: give them a page of their own.
        let pg = check(
            sys::mmap(0, page_up(phnum * 56), sys::PROT_READ | sys::PROT_WRITE, sys::MAP_PRIVATE | sys::MAP_ANON, -1, 0),
            b"out of memory",
        );
        ptr::copy_nonoverlapping(hdr.phdrs.as_ptr(), pg as *mut u8, phnum * 56);
        sys::mprotect(pg, page_up(phnum * 56), sys::PROT_READ);
        phdr_addr = pg;
    }

    let mut interp = [0u8; 256];
    let has_interp = !hdr.interp.is_empty();
    if has_interp {
        let f = hdr.interp.len();
        if f >= interp.len() {
            die(b"bad PT_INTERP")
        }
        interp[..f].copy_from_slice(hdr.interp);
    }
    let entry = bias + eh.e_entry as usize;
    // The compressed bytes are dead now: give their pages back.
    sys::munmap(page_down(pay_addr), page_up(pay_addr + pay_len) - page_down(pay_addr));

    let (jump_to, at_base) = if has_interp { load_interp(&interp) } else { (entry, 0) };

    *slot[AT_PHDR] = phdr_addr;
    *slot[AT_PHENT] = 56;
    *slot[AT_PHNUM] = phnum;
    *slot[AT_ENTRY] = entry;
    *slot[AT_BASE] = at_base;

    // Hand over the untouched original stack; rdx = 0 means "no rtld_fini".
    #[cfg(target_arch = "x86_64")]
    core::arch::asm!(
        // Fixed registers: with `in(reg)` the compiler may pick rdx/rbp, which
        // are cleared here (that bug jumped to address 0).
        "mov rsp, rdi",
        "xor edx, edx",
        "xor ebp, ebp",
        "xor edi, edi",
        "jmp rsi",
        in("rdi") sp,
        in("rsi") jump_to,
        options(noreturn)
    );
    // aarch64: x0 = 0 means "no rtld_fini" (glibc/musl _start pass x0 on to
    // __libc_start_main); fp and lr cleared so unwinders stop here.
    #[cfg(target_arch = "aarch64")]
    core::arch::asm!(
        "mov sp, x9",
        "mov x0, xzr",
        "mov x29, xzr",
        "mov x30, xzr",
        "br x10",
        in("x9") sp,
        in("x10") jump_to,
        options(noreturn)
    );
}

/// Maps the ELF interpreter (ld.so) like the kernel's `load_elf_interp`.
/// Returns (entry, load base).
unsafe fn load_interp(path: &[u8]) -> (usize, usize) {
    let fd = sys::open(path.as_ptr());
    if fd < 0 {
        die(b"cannot open the program interpreter (PT_INTERP)")
    }
    let fd = fd as i32;
    let mut hbuf = [0u8; 64 + 56 * 32];
    let n = sys::pread(fd, &mut hbuf, 0);
    if n < 64 {
        die(b"cannot read the program interpreter")
    }
    let eh = ehdr(&hbuf[..n as usize]);
    let phoff = eh.e_phoff as usize;
    let phnum = eh.e_phnum as usize;
    if eh.e_type != 3 || phnum == 0 || phnum > 32 || phoff + phnum * 56 > n as usize {
        die(b"unsupported program interpreter")
    }
    let mut phs = [Phdr { p_type: 0, p_flags: 0, p_offset: 0, p_vaddr: 0, p_filesz: 0, p_memsz: 0, p_align: 0 }; 32];
    for i in 0..phnum {
        phs[i] = Phdr::parse(&hbuf, phoff + i * 56);
    }
    let phs = &phs[..phnum];
    let (lo, hi, align) = load_span(phs);
    let bias = reserve(hi - lo, align) - lo;
    for ph in phs.iter().filter(|p| p.p_type == PT_LOAD) {
        let va = bias + ph.p_vaddr as usize;
        let s = page_down(va);
        let off = ph.p_offset as usize - (va - s);
        let file_end = va + ph.p_filesz as usize;
        let mem_end = page_up(va + ph.p_memsz as usize);
        let pr = prot(ph.p_flags);
        if ph.p_filesz > 0 {
            check(
                sys::mmap(s, page_up(file_end) - s, pr, sys::MAP_PRIVATE | sys::MAP_FIXED, fd as isize, off),
                b"cannot map the program interpreter",
            );
        }
        if ph.p_memsz > ph.p_filesz {
            // .bss: zero the tail of the last file page, then anonymous pages.
            if ph.p_filesz > 0 && file_end & (page() - 1) != 0 {
                if pr & sys::PROT_WRITE == 0 {
                    die(b"interpreter has .bss in a read-only segment")
                }
                ptr::write_bytes(file_end as *mut u8, 0, page_up(file_end) - file_end);
            }
            let zs = page_up(file_end);
            if mem_end > zs {
                check(
                    sys::mmap(zs, mem_end - zs, pr, sys::MAP_PRIVATE | sys::MAP_FIXED | sys::MAP_ANON, -1, 0),
                    b"cannot map the interpreter's .bss",
                );
            }
        }
    }
    sys::close(fd);
    (bias + eh.e_entry as usize, bias + lo)
}
