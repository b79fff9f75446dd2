//! imgslim pack stub: a tiny in-process ELF loader (x86_64 Linux, no libc).
//!
//! The packed file is `[ELF headers][this stub's segments][payload segment][footer]`.
//! The kernel maps all of it; we then
//!  1. find the payload through our own program headers (AT_PHDR), so neither
//!     /proc nor the file path is needed;
//!  2. decompress the original ELF (LZMA1 + x86 BCJ) into a scratch mapping;
//!  3. map its PT_LOADs where the kernel would (ET_EXEC: at their vaddr; ET_DYN:
//!     at a kernel-chosen base), copy the bytes, apply the segment protections;
//!  4. map PT_INTERP's loader from disk like the kernel does;
//!  5. patch AT_PHDR/AT_PHNUM/AT_PHENT/AT_ENTRY/AT_BASE in the auxv on the
//!     original stack and jump to the interpreter (or entry) with that stack.
//!
//! The process image stays the packed file, so /proc/self/exe, $ORIGIN, comm,
//! argv, envp and the rest of auxv are exactly what the kernel gave us.
//! On any internal failure the stub prints one line and exits 127 (like UPX).

#![no_std]
#![no_main]

mod bcj;
mod lzma;
mod sys;

#[cfg(feature = "zstd")]
extern crate zstd_sys;
#[cfg(feature = "zstd")]
extern "C" {
    fn ZSTD_initStaticDCtx(workspace: *mut u8, size: usize) -> *mut u8;
    fn ZSTD_decompressDCtx(dctx: *mut u8, dst: *mut u8, cap: usize, src: *const u8, len: usize) -> usize;
    fn ZSTD_isError(code: usize) -> u32;
}

/// Decompresses a zstd frame into `out` with a static workspace from mmap.
#[cfg(feature = "zstd")]
fn unzstd(comp: &[u8], out: &mut [u8]) -> bool {
    // ZSTD_estimateDCtxSize() is ~160 KiB for zstd 1.5; leave headroom.
    const WS: usize = 512 << 10;
    let ws = sys::mmap(0, WS, sys::PROT_READ | sys::PROT_WRITE, sys::MAP_PRIVATE | sys::MAP_ANON, -1, 0);
    if ws < 0 {
        return false;
    }
    unsafe {
        let d = ZSTD_initStaticDCtx(ws as *mut u8, WS);
        if d.is_null() {
            return false;
        }
        let r = ZSTD_decompressDCtx(d, out.as_mut_ptr(), out.len(), comp.as_ptr(), comp.len());
        sys::munmap(ws as usize, WS);
        ZSTD_isError(r) == 0 && r == out.len()
    }
}

use core::ptr;

const PAYLOAD_MAGIC: [u8; 8] = *b"ISPKPAY1";
/// Size of the payload header that precedes the compressed stream
/// (layout mirrored in `src/pack/format.rs`).
const PAYLOAD_HDR: usize = 48;
const FLAG_BCJ_X86: u32 = 1;
/// x86 BCJ applied by us (zstd method); decoded the same way as FLAG_BCJ_X86.
const FLAG_E8: u32 = 2;
const METHOD_LZMA: u8 = 0;
const METHOD_ZSTD: u8 = 1;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const PAGE: usize = 4096;

const AT_PHDR: usize = 3;
const AT_PHENT: usize = 4;
const AT_PHNUM: usize = 5;
const AT_BASE: usize = 7;
const AT_ENTRY: usize = 9;

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

#[derive(Clone, Copy)]
struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn rd64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

fn phdr_at(b: &[u8], o: usize) -> Phdr {
    Phdr {
        p_type: rd32(b, o),
        p_flags: rd32(b, o + 4),
        p_offset: rd64(b, o + 8),
        p_vaddr: rd64(b, o + 16),
        p_filesz: rd64(b, o + 32),
        p_memsz: rd64(b, o + 40),
        p_align: rd64(b, o + 48),
    }
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
        || rd16(b, 18) != 62
        || rd16(b, 54) != 56
    {
        die(b"payload is not an x86_64 ELF64")
    }
    Ehdr { e_type: rd16(b, 16), e_entry: rd64(b, 24), e_phoff: rd64(b, 32), e_phnum: rd16(b, 56) }
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
    x & !(PAGE - 1)
}
fn page_up(x: usize) -> usize {
    (x + PAGE - 1) & !(PAGE - 1)
}

/// Span [lo, hi) of the PT_LOADs, page-rounded, and the largest alignment.
fn load_span(ph: &[Phdr]) -> (usize, usize, usize) {
    let (mut lo, mut hi, mut align) = (usize::MAX, 0usize, PAGE);
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

    // Our payload is the last PT_LOAD of our own headers.
    let own = core::slice::from_raw_parts(*slot[AT_PHDR] as *const u8, *slot[AT_PHNUM] * 56);
    let (mut pay_addr, mut pay_len) = (0usize, 0usize);
    for i in 0..*slot[AT_PHNUM] {
        let ph = phdr_at(own, i * 56);
        if ph.p_type == PT_LOAD {
            pay_addr = ph.p_vaddr as usize;
            pay_len = ph.p_filesz as usize;
        }
    }
    if pay_len < PAYLOAD_HDR {
        die(b"payload segment missing")
    }
    let hdr = core::slice::from_raw_parts(pay_addr as *const u8, PAYLOAD_HDR);
    if hdr[0..8] != PAYLOAD_MAGIC {
        die(b"payload header not found")
    }
    let flags = rd32(hdr, 8);
    let props = lzma::Props { lc: hdr[12] as u32, lp: hdr[13] as u32, pb: hdr[14] as u32 };
    let orig_size = rd64(hdr, 16) as usize;
    let comp_size = rd64(hdr, 24) as usize;
    if comp_size > pay_len - PAYLOAD_HDR {
        die(b"payload truncated")
    }
    let comp = core::slice::from_raw_parts((pay_addr + PAYLOAD_HDR) as *const u8, comp_size);

    // Scratch buffer for the whole original file (also the LZMA dictionary).
    let scratch_len = page_up(orig_size);
    let scratch = check(
        // Populate up front: one kernel call instead of a page fault per 4 KiB.
        sys::mmap(0, scratch_len, sys::PROT_READ | sys::PROT_WRITE, sys::MAP_PRIVATE | sys::MAP_ANON | sys::MAP_POPULATE, -1, 0),
        b"out of memory",
    );
    let img = core::slice::from_raw_parts_mut(scratch as *mut u8, orig_size);
    let ok = match hdr[15] {
        METHOD_LZMA => matches!(lzma::decode(comp, props, img), Ok(n) if n == orig_size),
        #[cfg(feature = "zstd")]
        METHOD_ZSTD => unzstd(comp, img),
        _ => false,
    };
    if !ok {
        die(b"corrupt payload")
    }
    if flags & (FLAG_BCJ_X86 | FLAG_E8) != 0 {
        bcj::x86_decode(img);
    }

    let img: &[u8] = img;

    let eh = ehdr(img);
    let phoff = eh.e_phoff as usize;
    let phnum = eh.e_phnum as usize;
    if phnum == 0 || phnum > 512 || phoff.checked_add(phnum * 56).map_or(true, |e| e > img.len()) {
        die(b"bad program headers")
    }
    let mut phs = [Phdr { p_type: 0, p_flags: 0, p_offset: 0, p_vaddr: 0, p_filesz: 0, p_memsz: 0, p_align: 0 }; 64];
    if phnum > phs.len() {
        die(b"too many program headers")
    }
    for i in 0..phnum {
        phs[i] = phdr_at(img, phoff + i * 56);
    }
    let phs = &phs[..phnum];

    // Map the program.
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
    // One RW anonymous mapping over each segment's pages; copy; protect later
    // (so two segments sharing a boundary page never clobber each other).
    for ph in phs.iter().filter(|p| p.p_type == PT_LOAD) {
        let s = page_down(bias + ph.p_vaddr as usize);
        let e = page_up(bias + (ph.p_vaddr + ph.p_memsz) as usize);
        check(
            sys::mprotect(s, e - s, sys::PROT_READ | sys::PROT_WRITE),
            b"mprotect failed",
        );
        // Pre-fault the pages we are about to fill (Linux 5.14+; older kernels
        // return EINVAL and we simply fault them in while copying).
        let fe = page_up(bias + (ph.p_vaddr + ph.p_filesz) as usize);
        if fe > s {
            sys::madvise(s, fe - s, sys::MADV_POPULATE_WRITE);
        }
        let off = ph.p_offset as usize;
        let fsz = ph.p_filesz as usize;
        if ph.p_filesz > ph.p_memsz || off.checked_add(fsz).map_or(true, |x| x > img.len()) {
            die(b"bad PT_LOAD")
        }
        ptr::copy_nonoverlapping(img.as_ptr().add(off), (bias + ph.p_vaddr as usize) as *mut u8, fsz);
    }
    let mut prev_end = 0usize;
    let mut prev_prot = 0usize;
    for ph in phs.iter().filter(|p| p.p_type == PT_LOAD) {
        let mut s = page_down(bias + ph.p_vaddr as usize);
        let e = page_up(bias + (ph.p_vaddr + ph.p_memsz) as usize);
        let pr = prot(ph.p_flags);
        if s < prev_end {
            // Shared boundary page keeps the union of both protections.
            sys::mprotect(s, PAGE, pr | prev_prot);
            s += PAGE;
        }
        if e > s {
            check(sys::mprotect(s, e - s, pr), b"mprotect failed");
        }
        prev_end = e;
        prev_prot = pr;
    }

    // AT_PHDR must point at the program headers in the mapped image.
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
        ptr::copy_nonoverlapping(img.as_ptr().add(phoff), pg as *mut u8, phnum * 56);
        sys::mprotect(pg, page_up(phnum * 56), sys::PROT_READ);
        phdr_addr = pg;
    }

    let mut interp = [0u8; 256];
    let mut has_interp = false;
    for ph in phs.iter().filter(|p| p.p_type == PT_INTERP) {
        let (o, f) = (ph.p_offset as usize, ph.p_filesz as usize);
        if f == 0 || f >= interp.len() || o.checked_add(f).map_or(true, |x| x > img.len()) {
            die(b"bad PT_INTERP")
        }
        interp[..f].copy_from_slice(&img[o..o + f]);
        interp[f] = 0; // the path is NUL-terminated already; be sure anyway
        has_interp = true;
    }
    let entry = bias + eh.e_entry as usize;
    sys::munmap(scratch, scratch_len);

    let (jump_to, at_base) = if has_interp { load_interp(&interp) } else { (entry, 0) };

    *slot[AT_PHDR] = phdr_addr;
    *slot[AT_PHENT] = 56;
    *slot[AT_PHNUM] = phnum;
    *slot[AT_ENTRY] = entry;
    *slot[AT_BASE] = at_base;

    // Hand over the untouched original stack; rdx = 0 means "no rtld_fini".
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
        phs[i] = phdr_at(&hbuf, phoff + i * 56);
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
            if ph.p_filesz > 0 && file_end & (PAGE - 1) != 0 {
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
