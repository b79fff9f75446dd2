//! UPX-style packing of x86_64 and aarch64 Linux executables.
//!
//! A packed file is a tiny static loader (`stub/`, no libc) plus the original
//! ELF compressed with LZMA1 (default) or zstd, after an x86 BCJ filter on
//! x86_64 code (aarch64 payloads are not filtered). At exec time the stub
//! decompresses the original and maps it *in place* (it is its own mini ELF
//! loader), so the process image stays the packed file: `/proc/self/exe`,
//! `$ORIGIN`, argv, envp and auxv behave as if the original had been exec'd.
//! No memfd, no temp file, no /proc needed.
//!
//! The LZMA and BCJ decoders are the stub's own source files, compiled in here
//! too: every `pack` decodes its output with exactly that code and compares it to
//! the input before returning, so a payload the stub cannot decode is never
//! written. `unpack` restores the original byte for byte (SHA-256 checked).
//!
//! The stub is built per architecture by build.rs: x86_64 always; aarch64
//! where rust-std for aarch64-unknown-linux-gnu is installed (its zstd variant
//! also needs aarch64-linux-gnu-gcc). A missing aarch64 stub makes aarch64
//! programs "unsupported" with the reason build.rs recorded; unpack is
//! arch-independent.

pub mod cli;
mod tree;
pub use tree::{pack_tree, PackRecord};
mod format;

#[path = "../../stub/src/bcj.rs"]
mod bcj;
#[path = "../../stub/src/lzma.rs"]
mod lzma;
#[path = "../../stub/src/elf64.rs"]
mod elf64;
#[path = "../../stub/src/payload.rs"]
mod payload;

use std::fmt;

use elf64::{le16, le32, le64, Phdr, EM_AARCH64, EM_X86_64, PF_X, PT_DYNAMIC, PT_GNU_STACK, PT_INTERP, PT_LOAD};
use format::Footer;
use sha2::{Digest, Sha256};

/// The linked loader stubs (built by build.rs from `stub/`): LZMA-only (~25 KiB)
/// and LZMA+zstd (~170 KiB, the zstd decoder is C libzstd's).
static STUB_LZMA: &[u8] = include_bytes!(env!("IMGSLIM_STUB_LZMA"));
static STUB_ZSTD: &[u8] = include_bytes!(env!("IMGSLIM_STUB_ZSTD"));
/// The aarch64 stubs: empty when build.rs could not build them (the `_WHY`
/// variable then says why).
static STUB_A64_LZMA: &[u8] = include_bytes!(env!("IMGSLIM_STUB_A64_LZMA"));
static STUB_A64_ZSTD: &[u8] = include_bytes!(env!("IMGSLIM_STUB_A64_ZSTD"));
const STUB_A64_LZMA_WHY: &str = env!("IMGSLIM_STUB_A64_LZMA_WHY");
const STUB_A64_ZSTD_WHY: &str = env!("IMGSLIM_STUB_A64_ZSTD_WHY");

/// The stub for programs of ELF machine `machine` using `method` (Lzma or
/// Zstd), or why there is none in this build.
fn stub_for(machine: u16, method: Method) -> Result<&'static [u8], String> {
    let (stub, why) = match (machine, method) {
        (EM_X86_64, Method::Zstd) => (STUB_ZSTD, ""),
        (EM_X86_64, _) => (STUB_LZMA, ""),
        (EM_AARCH64, Method::Zstd) => (STUB_A64_ZSTD, STUB_A64_ZSTD_WHY),
        (EM_AARCH64, _) => (STUB_A64_LZMA, STUB_A64_LZMA_WHY),
        (m, _) => return Err(format!("no stub for e_machine {m}")),
    };
    if stub.is_empty() {
        return Err(if why.is_empty() { format!("no {method} stub for e_machine {machine} in this build") } else { why.into() });
    }
    Ok(stub)
}

/// Whether this build can pack programs for `machine` (62 = x86_64, 183 =
/// aarch64) with `method`; Err gives the reason (e.g. the stub was not built).
pub fn supports(machine: u16, method: Method) -> Result<(), String> {
    match method {
        Method::Auto => stub_for(machine, Method::Lzma).map(|_| ()),
        m => stub_for(machine, m).map(|_| ()),
    }
}

/// Compression method of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// LZMA where it decodes within the start-up budget (at most
    /// [`AUTO_LZMA_MAX`] bytes mapped at run time), zstd above that.
    #[default]
    Auto,
    /// LZMA1 + x86 BCJ: smallest files (at or below `xz -9e`), slowest start
    /// (~40 MB/s per core: a 20 MB binary adds ~250 ms on 2 cores).
    Lzma,
    /// zstd -19 + x86 BCJ in 2 MiB chunks: ~15% larger than LZMA, decodes
    /// 6-10x faster; the stub is ~110 KiB instead of ~27 KiB, so it only pays
    /// off for multi-MB binaries.
    Zstd,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Auto => "auto",
            Method::Lzma => "lzma",
            Method::Zstd => "zstd",
        })
    }
}

/// `Method::Auto` picks LZMA up to this many bytes mapped at run time: about
/// 25 ms of LZMA decoding on one core of our benchmark machine (benches/pack.sh),
/// the start-up budget; zstd decodes 6-10x faster but its stub is 83 KiB bigger.
pub const AUTO_LZMA_MAX: u64 = 1 << 20;

/// Knobs for [`assess`] and [`pack`].
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// Files smaller than this are left alone (the stub + startup cost is not worth it).
    pub min_size: u64,
    /// Minimum size reduction, in percent of the original, to keep a packed file.
    pub min_gain_percent: u32,
    /// Preset 0..=9 (LZMA preset; zstd level min(13+N, 19)). Default 6: on binaries it
    /// matched 9's ratio in our measurements (dictionary is capped at the file
    /// size anyway) with ~1/3 of the encoder memory (~100 MiB vs ~350 MiB for a
    /// 20 MB file), which matters when many files are packed in parallel.
    pub level: u32,
    /// xz's "extreme" variant of the preset: ~1-2% smaller, several times slower to pack.
    pub extreme: bool,
    pub method: Method,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions { min_size: 512 * 1024, min_gain_percent: 20, level: 6, extreme: false, method: Method::Auto }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("not an ELF file")]
    NotElf,
    #[error("cannot pack: {0}")]
    Unsupported(String),
    #[error("not a file packed by imgslim")]
    NotPacked,
    #[error("packed file is corrupt: {0}")]
    Corrupt(String),
    #[error("LZMA encoder failed: {0}")]
    Compress(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a file was not packed. `Display` gives the line shown in reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    NotElf,
    AlreadyPacked,
    NotExecutableMode,
    SetId,
    FileCaps,
    TooSmall { size: u64, min: u64 },
    /// Shared object, relocatable object, core dump…: not a program.
    NotExecutable(String),
    UnsupportedArch(String),
    /// An executable the loader cannot reproduce exactly (reason given).
    Unsupported(String),
    GainTooSmall { original: u64, packed: u64, min_gain_percent: u32 },
    Failed(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotElf => write!(f, "not an ELF file"),
            SkipReason::AlreadyPacked => write!(f, "already packed"),
            SkipReason::NotExecutableMode => write!(f, "no execute permission bit"),
            SkipReason::SetId => write!(f, "setuid/setgid program (packing would change what runs privileged)"),
            SkipReason::FileCaps => write!(f, "has file capabilities (security.capability)"),
            SkipReason::TooSmall { size, min } => write!(f, "too small ({} < {} threshold)", human(*size), human(*min)),
            SkipReason::NotExecutable(w) => write!(f, "not an executable: {w}"),
            SkipReason::UnsupportedArch(a) => write!(f, "unsupported architecture: {a} (only x86_64 and aarch64 ELF64)"),
            SkipReason::Unsupported(w) => write!(f, "unsupported: {w}"),
            SkipReason::GainTooSmall { original, packed, min_gain_percent } => write!(
                f,
                "gain too small: {} -> {} ({:.1}% saved, need {}%)",
                human(*original),
                human(*packed),
                saved_percent(*original, *packed),
                min_gain_percent
            ),
            SkipReason::Failed(e) => write!(f, "packing failed: {e}"),
        }
    }
}

/// The packed bytes and their sizes.
#[derive(Clone, Debug)]
pub struct Packed {
    pub bytes: Vec<u8>,
    pub original_size: u64,
    pub packed_size: u64,
}

#[derive(Clone, Debug)]
pub enum Decision {
    Pack(Packed),
    Skip(SkipReason),
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Pack(p) => write!(
                f,
                "packed {} -> {} ({:.1}% of original, {})",
                human(p.original_size),
                human(p.packed_size),
                100.0 * p.packed_size as f64 / p.original_size.max(1) as f64,
                layout(&p.bytes).map_or(Method::Auto, |l| l.method)
            ),
            Decision::Skip(r) => write!(f, "skipped: {r}"),
        }
    }
}

fn saved_percent(orig: u64, packed: u64) -> f64 {
    100.0 * (1.0 - packed as f64 / orig.max(1) as f64)
}

/// The report's units (SI), so pack notes read like the rest of the summary.
fn human(n: u64) -> String {
    crate::report::human(n)
}

/// Decides whether `elf_bytes` (a file with permission bits `mode` and, if
/// `has_file_caps`, a `security.capability` xattr) should be packed, and if so
/// packs it. Never panics on arbitrary input.
pub fn assess(elf_bytes: &[u8], mode: u32, has_file_caps: bool, opts: &PackOptions) -> Decision {
    if elf_bytes.len() < 4 || elf_bytes[0..4] != *b"\x7fELF" {
        return Decision::Skip(SkipReason::NotElf);
    }
    if is_packed(elf_bytes) {
        return Decision::Skip(SkipReason::AlreadyPacked);
    }
    if mode & 0o6000 != 0 {
        return Decision::Skip(SkipReason::SetId);
    }
    if has_file_caps {
        return Decision::Skip(SkipReason::FileCaps);
    }
    if mode & 0o111 == 0 {
        return Decision::Skip(SkipReason::NotExecutableMode);
    }
    let size = elf_bytes.len() as u64;
    if size < opts.min_size {
        return Decision::Skip(SkipReason::TooSmall { size, min: opts.min_size });
    }
    if let Err(r) = inspect(elf_bytes) {
        return Decision::Skip(r);
    }
    match pack(elf_bytes, opts) {
        Ok(bytes) => {
            let packed = bytes.len() as u64;
            if saved_percent(size, packed) < opts.min_gain_percent as f64 {
                return Decision::Skip(SkipReason::GainTooSmall {
                    original: size,
                    packed,
                    min_gain_percent: opts.min_gain_percent,
                });
            }
            Decision::Pack(Packed { bytes, original_size: size, packed_size: packed })
        }
        Err(e) => Decision::Skip(SkipReason::Failed(e.to_string())),
    }
}

/// True if `bytes` is a file produced by [`pack`].
pub fn is_packed(bytes: &[u8]) -> bool {
    Footer::find(bytes).is_some()
}

const DT_SONAME: u64 = 14;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DF_1_PIE: u64 = 0x0800_0000;
/// The stub copies at most this many program headers (fixed stack array).
const MAX_PHNUM: usize = 64;

/// Checks that the loader stub can run this file exactly as the kernel would.
fn inspect(b: &[u8]) -> Result<(), SkipReason> {
    let unsup = |m: &str| Err(SkipReason::Unsupported(m.to_string()));
    if b.len() < 64 || b[0..4] != *b"\x7fELF" {
        return Err(SkipReason::NotElf);
    }
    if b[4] != 2 {
        return Err(SkipReason::UnsupportedArch("32-bit ELF".into()));
    }
    if b[5] != 1 {
        return Err(SkipReason::UnsupportedArch("big-endian ELF".into()));
    }
    let machine = le16(b, 18);
    if machine != EM_X86_64 && machine != EM_AARCH64 {
        return Err(SkipReason::UnsupportedArch(format!("e_machine {machine}")));
    }
    // aarch64 only if build.rs could build its stub.
    if let Err(why) = stub_for(machine, Method::Lzma) {
        return Err(SkipReason::Unsupported(why));
    }
    let e_type = le16(b, 16);
    match e_type {
        2 | 3 => {}
        1 => return Err(SkipReason::NotExecutable("relocatable object (ET_REL)".into())),
        4 => return Err(SkipReason::NotExecutable("core dump".into())),
        t => return Err(SkipReason::NotExecutable(format!("ELF type {t}"))),
    }
    let phoff = le64(b, 32);
    let phnum = le16(b, 56) as usize;
    if le16(b, 54) != 56 || phnum == 0 {
        return unsup("no or malformed program headers");
    }
    if phnum > MAX_PHNUM {
        return unsup("more than 64 program headers");
    }
    let end = phoff.checked_add(56 * phnum as u64);
    if end.is_none_or(|e| e > b.len() as u64) {
        return unsup("program headers past end of file");
    }
    let phs: Vec<Phdr> = (0..phnum).map(|i| Phdr::parse(b, phoff as usize + i * 56)).collect();
    let in_file = |off: u64, len: u64| off.checked_add(len).is_some_and(|e| e <= b.len() as u64);
    let mut loads = 0;
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    let mut interp = false;
    let mut dynamic = None;
    for ph in &phs {
        match ph.p_type {
            PT_LOAD => {
                loads += 1;
                if ph.p_filesz > ph.p_memsz || !in_file(ph.p_offset, ph.p_filesz) {
                    return unsup("PT_LOAD outside the file or filesz > memsz");
                }
                let e = ph.p_vaddr.checked_add(ph.p_memsz);
                let Some(e) = e.filter(|&e| e < (1 << 47)) else {
                    return unsup("PT_LOAD beyond the user address space");
                };
                lo = lo.min(ph.p_vaddr);
                hi = hi.max(e);
            }
            PT_INTERP => {
                if ph.p_filesz == 0 || ph.p_filesz >= 255 || !in_file(ph.p_offset, ph.p_filesz) {
                    return unsup("PT_INTERP path missing or longer than 254 bytes");
                }
                interp = true;
            }
            PT_DYNAMIC if in_file(ph.p_offset, ph.p_filesz) => {
                dynamic = Some((ph.p_offset as usize, ph.p_filesz as usize));
            }
            PT_GNU_STACK if ph.p_flags & PF_X != 0 => {
                return unsup("needs an executable stack (PT_GNU_STACK has PF_X)");
            }
            _ => {}
        }
    }
    if loads == 0 {
        return unsup("no PT_LOAD segment");
    }
    if let Some(end) = elf_end(b, &phs) {
        // Bytes past everything the ELF describes are an overlay read back via
        // /proc/self/exe (PyInstaller, Node SEA, appended zips…); after packing
        // the program would find the stub instead.
        if (b.len() as u64) > end + 4096 {
            return unsup("data appended after the ELF image (program reads its own file)");
        }
    }
    if e_type == 3 {
        // ET_DYN is both PIE executables and shared libraries; packing a library
        // (even one with PT_INTERP, like libc.so.6) would break every user of it.
        let (mut soname, mut flags1) = (false, 0u64);
        if let Some((off, len)) = dynamic {
            for e in b[off..off + len].chunks_exact(16) {
                let tag = le64(e, 0);
                match tag {
                    0 => break,
                    DT_SONAME => soname = true,
                    DT_FLAGS_1 => flags1 = le64(e, 8),
                    _ => {}
                }
            }
        }
        let pie = flags1 & DF_1_PIE != 0 || (interp && !soname);
        if !pie {
            return Err(SkipReason::NotExecutable(if interp {
                "shared library (ET_DYN with DT_SONAME and without DF_1_PIE)".into()
            } else {
                "shared library or loader (ET_DYN without DF_1_PIE)".into()
            }));
        }
    } else if hi > format::stub_region(machine).0 && lo < format::stub_region(machine).1 {
        return unsup("fixed load addresses overlap the loader stub's region");
    }
    Ok(())
}

/// End of the last byte covered by a segment, a section or the section header
/// table; None if the section headers are unreadable (then we do not judge).
fn elf_end(b: &[u8], phs: &[Phdr]) -> Option<u64> {
    let mut end = phs.iter().map(|p| p.p_offset.saturating_add(p.p_filesz)).max().unwrap_or(0);
    let shoff = le64(b, 40);
    let shnum = le16(b, 60) as u64;
    if shoff == 0 || shnum == 0 {
        return Some(end);
    }
    if le16(b, 58) != 64 {
        return None;
    }
    let table_end = shoff.checked_add(shnum * 64)?;
    if table_end > b.len() as u64 {
        return None;
    }
    end = end.max(table_end);
    for i in 0..shnum as usize {
        let o = shoff as usize + i * 64;
        let sh_type = le32(b, o + 4);
        if sh_type != 8 {
            // not SHT_NOBITS: occupies file bytes
            end = end.max(le64(b, o + 24).saturating_add(le64(b, o + 32)));
        }
    }
    Some(end)
}

/// Largest chunk the stub decodes in one go, per method. Chunks are
/// independent streams so the stub can decode them on several threads, taking
/// the next chunk off a shared counter; smaller ones cost ratio (zstd -19 on
/// rustup, 20.8 MB: 12 MiB pieces 28.4%, 4 MiB 29.4%, 2 MiB 29.8%, 1 MiB 30.9%).
/// zstd is chosen for start-up, so its pieces are small: with 2 MiB pieces the
/// two threads finish together and each piece is still in cache when it is
/// BCJ-filtered (rustup: 6-10 ms less added start-up than with 12 MiB pieces
/// in three interleaved runs on the 2-vCPU dev VM). LZMA is chosen for ratio.
/// Segments are cut into an even number of equal pieces no larger than this.
const MAX_RUNTIME_CHUNK_ZSTD: usize = 2 << 20;
const MAX_RUNTIME_CHUNK_LZMA: usize = 12 << 20;
/// Bytes no segment maps (symbols, debug info) are decoded only by `unpack`;
/// pieces are capped to keep the zstd window at its 128 MiB default limit.
const MAX_COLD_CHUNK: usize = 64 << 20;

/// One independently compressed piece of the original file.
struct Piece {
    off: usize,
    len: usize,
    /// Program header index of a PT_LOAD whose file range holds the piece.
    seg: Option<usize>,
    /// x86_64 code (inside an executable segment): worth the x86 BCJ filter.
    code: bool,
}

/// Cuts `[0, len)` at every PT_LOAD file boundary, then splits what segments
/// map into pieces of at most `max_runtime` bytes (see [`MAX_RUNTIME_CHUNK_ZSTD`]).
/// `x86`: the program is x86_64, so its executable segments get the BCJ filter.
fn plan_pieces(len: usize, phs: &[Phdr], x86: bool, max_runtime: usize) -> Vec<Piece> {
    let loads: Vec<(usize, &Phdr)> =
        phs.iter().enumerate().filter(|(_, p)| p.p_type == PT_LOAD && p.p_filesz > 0).collect();
    let mut cuts = vec![0, len];
    for (_, p) in &loads {
        cuts.push(p.p_offset as usize);
        cuts.push((p.p_offset + p.p_filesz) as usize);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let inside = |p: &Phdr| p.p_offset as usize <= a && b <= (p.p_offset + p.p_filesz) as usize;
        let seg = loads.iter().find(|(_, p)| inside(p)).map(|(i, _)| *i);
        let code = x86 && loads.iter().any(|(_, p)| inside(p) && p.p_flags & PF_X != 0);
        let mut n = if seg.is_some() { (b - a).div_ceil(max_runtime) } else { (b - a).div_ceil(MAX_COLD_CHUNK) };
        if seg.is_some() && n > 1 && n % 2 == 1 {
            n += 1;
        }
        let n = n.max(1);
        for k in 0..n {
            let (s, e) = (a + (b - a) * k / n, a + (b - a) * (k + 1) / n);
            out.push(Piece { off: s, len: e - s, seg, code });
        }
    }
    out
}

/// File bytes inside some PT_LOAD's file range (the union: overlaps count once).
fn mapped_bytes(len: usize, phs: &[Phdr]) -> u64 {
    plan_pieces(len, phs, false, usize::MAX).iter().filter(|p| p.seg.is_some()).map(|p| p.len as u64).sum()
}

/// Packs an executable. Fails (never produces a file) for anything [`assess`]
/// would call unsupported; size/mode/gain policy is left to `assess`.
pub fn pack(bytes: &[u8], opts: &PackOptions) -> Result<Vec<u8>, PackError> {
    use rayon::prelude::*;
    match inspect(bytes) {
        Ok(()) => {}
        Err(SkipReason::NotElf) => return Err(PackError::NotElf),
        Err(r) => return Err(PackError::Unsupported(r.to_string())),
    }
    if is_packed(bytes) {
        return Err(PackError::Unsupported("already packed".into()));
    }
    // `inspect` checked the ELF header and program headers are in bounds.
    let phoff = le64(bytes, 32) as usize;
    let phnum = le16(bytes, 56) as usize;
    let phdrs = &bytes[phoff..phoff + 56 * phnum];
    let phs: Vec<Phdr> = (0..phnum).map(|i| Phdr::parse(phdrs, i * 56)).collect();
    let interp = phs
        .iter()
        .find(|p| p.p_type == PT_INTERP)
        .map(|p| &bytes[p.p_offset as usize..(p.p_offset + p.p_filesz) as usize])
        .unwrap_or(&[]);
    let (lc, lp, pb) = (3u32, 0u32, 2u32);
    let machine = le16(bytes, 18);
    // Bytes some PT_LOAD maps: what the stub decodes at exec time.
    let mapped = mapped_bytes(bytes.len(), &phs);
    let chosen = match opts.method {
        Method::Auto if mapped <= AUTO_LZMA_MAX => Method::Lzma,
        // Without a zstd stub for this arch (aarch64 built without a C cross
        // compiler), LZMA: slower start-up, but it runs.
        Method::Auto if stub_for(machine, Method::Zstd).is_err() => Method::Lzma,
        Method::Auto => Method::Zstd,
        m => m,
    };
    let max_runtime = if chosen == Method::Zstd { MAX_RUNTIME_CHUNK_ZSTD } else { MAX_RUNTIME_CHUNK_LZMA };
    let pieces = plan_pieces(bytes.len(), &phs, machine == EM_X86_64, max_runtime);
    let stub = stub_for(machine, chosen).map_err(PackError::Unsupported)?;
    let method = match chosen {
        Method::Zstd => payload::METHOD_ZSTD,
        _ => payload::METHOD_LZMA,
    };

    let streams: Vec<Vec<u8>> = pieces
        .par_iter()
        .map(|pc| {
            let mut data = bytes[pc.off..pc.off + pc.len].to_vec();
            if pc.code {
                bcj::x86_encode(&mut data, pc.off as u32);
            }
            match chosen {
                Method::Zstd => compress_zstd(&data, opts),
                _ => compress_lzma(&data, opts, lc, lp, pb),
            }
        })
        .collect::<Result<_, _>>()?;

    let hlen = payload::header_len(phnum, interp.len(), pieces.len());
    let mut chunks = Vec::with_capacity(pieces.len());
    let mut at = hlen as u64;
    for (pc, st) in pieces.iter().zip(&streams) {
        let comp_len = u32::try_from(st.len()).map_err(|_| PackError::Internal("compressed chunk over 4 GiB".into()))?;
        chunks.push(payload::Chunk {
            file_off: pc.off as u64,
            len: pc.len as u64,
            comp_off: at,
            comp_len,
            flags: if pc.code { payload::CF_E8 } else { 0 },
            seg: pc.seg.map_or(payload::SEG_NONE, |s| s as u16),
        });
        at += st.len() as u64;
    }
    let mut pay = vec![0u8; hlen];
    let props = if method == payload::METHOD_LZMA { [lc as u8, lp as u8, pb as u8] } else { [0; 3] };
    payload::write_header(&mut pay, method, props, bytes.len() as u64, &bytes[..64], phdrs, interp, &chunks);
    for st in &streams {
        pay.extend_from_slice(st);
    }
    // Decode with the stub's own header parser, LZMA and BCJ code (zstd: the
    // same C library) before trusting the result.
    match decode_payload(&pay) {
        Ok(check) if check == bytes => {}
        Ok(_) => return Err(PackError::Internal("self-check: decoded payload differs from the input".into())),
        Err(e) => return Err(PackError::Internal(format!("self-check decode failed: {e}"))),
    }
    let footer = Footer {
        payload_off: 0, // filled in by format::build
        orig_size: bytes.len() as u64,
        comp_size: pay.len() as u64,
        sha256: Sha256::digest(bytes).into(),
    };
    format::build(stub, &pay, footer)
}

/// Dictionary no larger than the input (rounded up to a power of two): same
/// ratio as the preset's 64 MiB for smaller files, far less encoder memory.
fn dict_size(len: usize) -> u32 {
    (len.max(4096) as u64).next_power_of_two().min(64 << 20) as u32
}

/// Raw LZMA1 (the BCJ filter is ours, applied per chunk with its file offset).
fn compress_lzma(bytes: &[u8], opts: &PackOptions, lc: u32, lp: u32, pb: u32) -> Result<Vec<u8>, PackError> {
    use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream, PRESET_EXTREME};
    let err = |e: liblzma::stream::Error| PackError::Compress(e.to_string());
    let preset = opts.level.min(9) | if opts.extreme { PRESET_EXTREME } else { 0 };
    let mut lo = LzmaOptions::new_preset(preset).map_err(err)?;
    lo.dict_size(dict_size(bytes.len())).literal_context_bits(lc).literal_position_bits(lp).position_bits(pb);
    let mut filters = Filters::new();
    filters.lzma1(&lo);
    let mut s = Stream::new_raw_encoder(&filters).map_err(err)?;
    let mut out = Vec::with_capacity(bytes.len() / 3 + 4096);
    loop {
        let consumed = s.total_in() as usize;
        if out.capacity() - out.len() < 1 << 16 {
            out.reserve(1 << 20);
        }
        match s.process_vec(&bytes[consumed..], &mut out, Action::Finish).map_err(err)? {
            Status::StreamEnd => break,
            _ => continue,
        }
    }
    Ok(out)
}

fn compress_zstd(bytes: &[u8], opts: &PackOptions) -> Result<Vec<u8>, PackError> {
    use zstd::zstd_safe::CParameter;
    let err = |e: std::io::Error| PackError::Compress(format!("zstd: {e}"));
    // Preset N maps to zstd 13+N capped at 19, so the default 6 is zstd -19
    // (16 was measurably larger: 30.4% vs 28.5% on rustup); above 19 buys little.
    let level = (13 + opts.level as i32).min(19);
    let mut c = zstd::bulk::Compressor::new(level).map_err(err)?;
    // Window covering the whole chunk plus long-distance matching: binaries
    // repeat far apart.
    let wlog = (usize::BITS - bytes.len().max(1 << 10).leading_zeros()).clamp(10, 27);
    c.set_parameter(CParameter::WindowLog(wlog)).map_err(err)?;
    c.set_parameter(CParameter::EnableLongDistanceMatching(true)).map_err(err)?;
    c.set_parameter(CParameter::ContentSizeFlag(true)).map_err(err)?;
    c.compress(bytes).map_err(err)
}

/// Decodes a whole payload back into the original file (chunks in parallel).
fn decode_payload(pay: &[u8]) -> Result<Vec<u8>, PackError> {
    use rayon::prelude::*;
    let h = payload::Header::parse(pay).map_err(|e| PackError::Corrupt(e.into()))?;
    // Guard the allocation: neither codec expands beyond a few 10^4:1 (LZMA
    // ~7000:1); a header claiming more is corrupt and must not make us
    // allocate terabytes.
    let orig = usize::try_from(h.orig_size)
        .ok()
        .filter(|&n| n as u64 <= (pay.len() as u64 + 64) << 16)
        .ok_or_else(|| PackError::Corrupt("implausible original size".into()))?;
    let mut out = vec![0u8; orig];
    // `parse` checked that the chunks tile [0, orig) in order.
    let mut slices = Vec::with_capacity(h.nchunks);
    let mut rest = &mut out[..];
    for i in 0..h.nchunks {
        let c = h.chunk(i);
        let (a, b) = rest.split_at_mut(c.len as usize);
        slices.push((c, a));
        rest = b;
    }
    slices.into_par_iter().try_for_each(|(c, dst)| {
        let comp = h.stream(&c);
        match h.method {
            payload::METHOD_LZMA => {
                let props = lzma::Props { lc: h.lc as u32, lp: h.lp as u32, pb: h.pb as u32 };
                match lzma::decode(comp, props, dst) {
                    Ok(n) if n == dst.len() => {}
                    r => return Err(PackError::Corrupt(format!("LZMA stream at offset {}: {r:?}", c.file_off))),
                }
            }
            payload::METHOD_ZSTD => match zstd::bulk::decompress_to_buffer(comp, dst) {
                Ok(n) if n == dst.len() => {}
                Ok(_) => return Err(PackError::Corrupt(format!("zstd chunk at offset {} has the wrong length", c.file_off))),
                Err(e) => return Err(PackError::Corrupt(format!("zstd chunk at offset {}: {e}", c.file_off))),
            },
            m => return Err(PackError::Corrupt(format!("unknown method {m}"))),
        }
        if c.flags & payload::CF_E8 != 0 {
            bcj::x86_decode(dst, c.file_off as u32);
        }
        Ok(())
    })?;
    Ok(out)
}

/// What a packed file holds, for reports: method and chunk counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub method: Method,
    /// Chunks the stub decodes at exec time (into the program's segments).
    pub runtime_chunks: usize,
    /// Chunks only `unpack` decodes (bytes no segment maps: symbols, debug info…).
    pub cold_chunks: usize,
    pub original_size: u64,
}

/// The payload bytes the footer points at (None if out of bounds).
fn payload_of<'a>(bytes: &'a [u8], f: &Footer) -> Option<&'a [u8]> {
    let o = usize::try_from(f.payload_off).ok()?;
    bytes.get(o..o.checked_add(usize::try_from(f.comp_size).ok()?)?)
}

/// Reads the layout of a packed file (None if it is not one or is malformed).
pub fn layout(bytes: &[u8]) -> Option<Layout> {
    let f = Footer::find(bytes)?;
    let pay = payload_of(bytes, &f)?;
    let h = payload::Header::parse(pay).ok()?;
    let runtime = (0..h.nchunks).filter(|&i| h.chunk(i).seg != payload::SEG_NONE).count();
    let method = match h.method {
        payload::METHOD_LZMA => Method::Lzma,
        payload::METHOD_ZSTD => Method::Zstd,
        _ => return None,
    };
    Some(Layout { method, runtime_chunks: runtime, cold_chunks: h.nchunks - runtime, original_size: h.orig_size })
}

/// Restores the original executable byte for byte from a packed file.
pub fn unpack(bytes: &[u8]) -> Result<Vec<u8>, PackError> {
    let f = Footer::find(bytes).ok_or(PackError::NotPacked)?;
    let pay = payload_of(bytes, &f).ok_or_else(|| PackError::Corrupt("payload out of bounds".into()))?;
    let out = decode_payload(pay)?;
    if out.len() as u64 != f.orig_size {
        return Err(PackError::Corrupt("payload header and footer disagree on the size".into()));
    }
    let sum: [u8; 32] = Sha256::digest(&out).into();
    if sum != f.sha256 {
        return Err(PackError::Corrupt("SHA-256 of the unpacked file does not match".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(off: u64, filesz: u64, flags: u32) -> Phdr {
        Phdr { p_type: PT_LOAD, p_flags: flags, p_offset: off, p_vaddr: off + 0x1000, p_filesz: filesz, p_memsz: filesz, p_align: 4096 }
    }

    #[test]
    fn pieces_tile_and_respect_segment_boundaries() {
        // Overlapping segments (the second starts inside the first), a gap, and
        // a 30 MiB segment that must be cut into an even number of pieces.
        let phs = [load(0, 5000, 5), load(4000, 3000, 6), load(10_000, 30 << 20, 5)];
        let len = 10_000 + (30 << 20) + 777;
        let p = plan_pieces(len, &phs, true, MAX_RUNTIME_CHUNK_LZMA);
        let mut at = 0;
        for pc in &p {
            assert_eq!(pc.off, at, "pieces must tile the file");
            at += pc.len;
            for (i, ph) in phs.iter().enumerate() {
                let (a, b) = (ph.p_offset as usize, (ph.p_offset + ph.p_filesz) as usize);
                let inside = a <= pc.off && pc.off + pc.len <= b;
                let outside = pc.off + pc.len <= a || b <= pc.off;
                assert!(inside || outside, "piece {}+{} straddles segment {i}", pc.off, pc.len);
                if inside {
                    assert!(pc.seg.is_some(), "a mapped piece must name a segment");
                }
            }
            assert!(pc.len <= MAX_RUNTIME_CHUNK_LZMA);
        }
        assert_eq!(at, len);
        let big: Vec<_> = p.iter().filter(|pc| pc.seg == Some(2)).collect();
        assert_eq!(big.len(), 4, "30 MiB: 3 pieces of <= 12 MiB, rounded up to an even count");
        assert!(big.iter().all(|pc| pc.code));
        // aarch64 (or any non-x86 program): same cuts, never the x86 filter.
        let q = plan_pieces(len, &phs, false, MAX_RUNTIME_CHUNK_LZMA);
        assert_eq!(q.iter().map(|pc| (pc.off, pc.len, pc.seg)).collect::<Vec<_>>(), p.iter().map(|pc| (pc.off, pc.len, pc.seg)).collect::<Vec<_>>());
        assert!(q.iter().all(|pc| !pc.code));
        assert_eq!(p.last().map(|pc| (pc.seg, pc.len)), Some((None, 777)), "trailing bytes are cold");
        // zstd: 2 MiB pieces, 15 for 30 MiB rounded up to 16; same outer cuts.
        let z = plan_pieces(len, &phs, true, MAX_RUNTIME_CHUNK_ZSTD);
        assert_eq!(z.iter().filter(|pc| pc.seg == Some(2)).count(), 16);
        assert!(z.iter().all(|pc| pc.seg.is_none() || pc.len <= MAX_RUNTIME_CHUNK_ZSTD));
        assert_eq!(z.iter().map(|pc| pc.len).sum::<usize>(), len);
        // Overlapping segments count once: [0, 7000) and the 30 MiB one.
        assert_eq!(mapped_bytes(len, &phs), 7000 + (30 << 20));
    }

    #[test]
    fn bcj_matches_liblzma_and_roundtrips_per_chunk() {
        use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream};
        // Code-like bytes: many E8/E9 with plausible and implausible targets.
        let mut b = Vec::new();
        let mut x = 0x1234_5678u32;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b.push(match i % 7 {
                0 => 0xE8,
                3 => 0xE9,
                5 => [0x00, 0xFF][(x & 1) as usize],
                _ => x as u8,
            });
        }
        // liblzma: x86 filter + LZMA1, decoded without the filter = filtered bytes.
        let lo = LzmaOptions::new_preset(0).unwrap();
        let mut f = Filters::new();
        f.x86().lzma1(&lo);
        let mut enc = Stream::new_raw_encoder(&f).unwrap();
        let mut c = Vec::with_capacity(b.len() * 2);
        while !matches!(enc.process_vec(&b[enc.total_in() as usize..], &mut c, Action::Finish).unwrap(), Status::StreamEnd) {
            c.reserve(1 << 20);
        }
        let mut want = vec![0u8; b.len()];
        assert_eq!(lzma::decode(&c, lzma::Props { lc: 3, lp: 0, pb: 2 }, &mut want), Ok(b.len()));
        let mut ours = b.clone();
        bcj::x86_encode(&mut ours, 0);
        assert_eq!(ours, want, "our encoder must equal liblzma's x86 filter");
        // Chunks filtered separately with their file offsets decode back exactly.
        let mut m = b.clone();
        for (k, ch) in m.chunks_mut(4099).enumerate() {
            bcj::x86_encode(ch, (k * 4099) as u32);
        }
        for (k, ch) in m.chunks_mut(4099).enumerate() {
            bcj::x86_decode(ch, (k * 4099) as u32);
        }
        assert_eq!(m, b);
    }

    #[test]
    fn payload_header_rejects_inconsistent_tables() {
        let ehdr = [0u8; 64];
        let chunk = |file_off, len, comp_off, comp_len| payload::Chunk { file_off, len, comp_off, comp_len, flags: 0, seg: payload::SEG_NONE };
        let build = |chunks: &[payload::Chunk], orig: u64, extra: usize| {
            let h = payload::header_len(0, 0, chunks.len());
            let mut b = vec![0u8; h + extra];
            payload::write_header(&mut b, payload::METHOD_ZSTD, [0; 3], orig, &ehdr, &[], &[], chunks);
            (h as u64, b)
        };
        let (h, ok) = build(&[chunk(0, 10, 0, 0)], 10, 4);
        let mut fixed = ok.clone();
        payload::write_header(&mut fixed, payload::METHOD_ZSTD, [0; 3], 10, &ehdr, &[], &[], &[chunk(0, 10, h, 4)]);
        assert!(payload::Header::parse(&fixed).is_ok());
        for (what, chunks, orig, extra) in [
            ("gap between chunks", vec![chunk(0, 4, h, 1), chunk(5, 5, h + 1, 1)], 10, 2),
            ("short of the file", vec![chunk(0, 4, h, 1)], 10, 1),
            ("stream past the end", vec![chunk(0, 10, h, 9)], 10, 4),
            ("stream inside the header", vec![chunk(0, 10, 0, 1)], 10, 1),
            ("empty chunk", vec![chunk(0, 0, h, 0), chunk(0, 10, h, 1)], 10, 1),
        ] {
            let (_, b) = build(&chunks, orig, extra);
            assert!(payload::Header::parse(&b).is_err(), "{what} accepted");
        }
        assert!(payload::Header::parse(&fixed[..fixed.len() - 5]).is_err(), "truncated payload accepted");
        assert!(payload::Header::parse(&fixed[..40]).is_err());
    }
}
