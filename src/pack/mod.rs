//! UPX-style packing of x86_64 Linux executables.
//!
//! A packed file is a tiny static loader (`stub/`, no libc) plus the original
//! ELF compressed with LZMA1 (default) or zstd, after an x86 BCJ filter. At exec time the stub
//! decompresses the original and maps it *in place* (it is its own mini ELF
//! loader), so the process image stays the packed file: `/proc/self/exe`,
//! `$ORIGIN`, argv, envp and auxv behave as if the original had been exec'd.
//! No memfd, no temp file, no /proc needed.
//!
//! The LZMA and BCJ decoders are the stub's own source files, compiled in here
//! too: every `pack` decodes its output with exactly that code and compares it to
//! the input before returning, so a payload the stub cannot decode is never
//! written. `unpack` restores the original byte for byte (SHA-256 checked).

pub mod cli;
mod tree;
pub use tree::{pack_tree, PackRecord};
mod format;

#[path = "../../stub/src/bcj.rs"]
mod bcj;
#[path = "../../stub/src/lzma.rs"]
mod lzma;

use std::fmt;

use format::{
    le16, le32, le64, Footer, PayloadHeader, Phdr, FLAG_BCJ_X86, FLAG_E8, METHOD_LZMA, METHOD_ZSTD, PAYLOAD_HDR,
    PT_GNU_STACK, PT_LOAD,
};
use sha2::{Digest, Sha256};

/// The linked loader stubs (built by build.rs from `stub/`): LZMA-only (~25 KiB)
/// and LZMA+zstd (~170 KiB, the zstd decoder is C libzstd's).
static STUB_LZMA: &[u8] = include_bytes!(env!("IMGSLIM_STUB_LZMA"));
static STUB_ZSTD: &[u8] = include_bytes!(env!("IMGSLIM_STUB_ZSTD"));

/// Compression method of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// LZMA1 + x86 BCJ: smallest files (at or below `xz -9e`), slowest start
    /// (decodes at about `xz -d` speed; see benches/pack.sh).
    #[default]
    Lzma,
    /// zstd -19 (window up to 128 MiB, long-distance matching) + x86 BCJ:
    /// ~10-15% larger, starts 5-10x faster; the stub is ~165 KiB instead of
    /// ~25 KiB, so it only pays off for multi-MB binaries.
    Zstd,
}

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
        PackOptions { min_size: 512 * 1024, min_gain_percent: 20, level: 6, extreme: false, method: Method::Lzma }
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
            SkipReason::UnsupportedArch(a) => write!(f, "unsupported architecture: {a} (only x86_64 ELF64)"),
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
                "packed {} -> {} ({:.1}% of original)",
                human(p.original_size),
                human(p.packed_size),
                100.0 * p.packed_size as f64 / p.original_size.max(1) as f64
            ),
            Decision::Skip(r) => write!(f, "skipped: {r}"),
        }
    }
}

fn saved_percent(orig: u64, packed: u64) -> f64 {
    100.0 * (1.0 - packed as f64 / orig.max(1) as f64)
}

fn human(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
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

const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;
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
    if machine != 62 {
        return Err(SkipReason::UnsupportedArch(format!("e_machine {machine}")));
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
            PT_GNU_STACK if ph.p_flags & 1 != 0 => {
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
    } else if hi > format::STUB_REGION.0 && lo < format::STUB_REGION.1 {
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

/// Packs an executable. Fails (never produces a file) for anything [`assess`]
/// would call unsupported; size/mode/gain policy is left to `assess`.
pub fn pack(bytes: &[u8], opts: &PackOptions) -> Result<Vec<u8>, PackError> {
    match inspect(bytes) {
        Ok(()) => {}
        Err(SkipReason::NotElf) => return Err(PackError::NotElf),
        Err(r) => return Err(PackError::Unsupported(r.to_string())),
    }
    if is_packed(bytes) {
        return Err(PackError::Unsupported("already packed".into()));
    }
    let (lc, lp, pb) = (3u32, 0u32, 2u32);
    let (hdr, comp, stub) = match opts.method {
        Method::Lzma => {
            let comp = compress(bytes, opts, lc, lp, pb)?;
            // Decode with the stub's own decoder before trusting the result.
            let props = lzma::Props { lc, lp, pb };
            let mut check = vec![0u8; bytes.len()];
            match lzma::decode(&comp, props, &mut check) {
                Ok(n) if n == bytes.len() => {}
                r => return Err(PackError::Internal(format!("self-check decode failed: {r:?}"))),
            }
            bcj::x86_decode(&mut check);
            if check != bytes {
                return Err(PackError::Internal("self-check: decoded payload differs from the input".into()));
            }
            let hdr = PayloadHeader {
                flags: FLAG_BCJ_X86,
                method: METHOD_LZMA,
                lc: lc as u8,
                lp: lp as u8,
                pb: pb as u8,
                orig_size: bytes.len() as u64,
                comp_size: comp.len() as u64,
                dict_size: dict_size(bytes.len()),
            };
            (hdr, comp, STUB_LZMA)
        }
        Method::Zstd => {
            let mut filtered = bytes.to_vec();
            bcj::x86_encode(&mut filtered);
            let comp = compress_zstd(&filtered, opts)?;
            // Same C decoder as the stub links; plus our own inverse filter.
            let mut check = zstd::bulk::decompress(&comp, bytes.len())
                .map_err(|e| PackError::Internal(format!("self-check zstd decode failed: {e}")))?;
            bcj::x86_decode(&mut check);
            if check != bytes {
                return Err(PackError::Internal("self-check: decoded payload differs from the input".into()));
            }
            let hdr = PayloadHeader {
                flags: FLAG_E8,
                method: METHOD_ZSTD,
                lc: 0,
                lp: 0,
                pb: 0,
                orig_size: bytes.len() as u64,
                comp_size: comp.len() as u64,
                dict_size: 0,
            };
            (hdr, comp, STUB_ZSTD)
        }
    };
    let mut payload = Vec::with_capacity(PAYLOAD_HDR + comp.len());
    payload.extend_from_slice(&hdr.to_bytes());
    payload.extend_from_slice(&comp);
    let footer = Footer {
        payload_off: 0, // filled in by format::build
        orig_size: bytes.len() as u64,
        comp_size: comp.len() as u64,
        sha256: Sha256::digest(bytes).into(),
    };
    format::build(stub, &payload, footer)
}

/// Dictionary no larger than the input (rounded up to a power of two): same
/// ratio as the preset's 64 MiB for smaller files, far less encoder memory.
fn dict_size(len: usize) -> u32 {
    (len.max(4096) as u64).next_power_of_two().min(64 << 20) as u32
}

fn compress(bytes: &[u8], opts: &PackOptions, lc: u32, lp: u32, pb: u32) -> Result<Vec<u8>, PackError> {
    use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream, PRESET_EXTREME};
    let err = |e: liblzma::stream::Error| PackError::Compress(e.to_string());
    let preset = opts.level.min(9) | if opts.extreme { PRESET_EXTREME } else { 0 };
    let mut lo = LzmaOptions::new_preset(preset).map_err(err)?;
    lo.dict_size(dict_size(bytes.len())).literal_context_bits(lc).literal_position_bits(lp).position_bits(pb);
    let mut filters = Filters::new();
    filters.x86().lzma1(&lo);
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
    // Window covering the whole file (capped at 128 MiB, the decoder default
    // limit) plus long-distance matching: binaries repeat far apart.
    let wlog = (usize::BITS - bytes.len().max(1 << 10).leading_zeros()).clamp(10, 27);
    c.set_parameter(CParameter::WindowLog(wlog)).map_err(err)?;
    c.set_parameter(CParameter::EnableLongDistanceMatching(true)).map_err(err)?;
    c.set_parameter(CParameter::ContentSizeFlag(true)).map_err(err)?;
    c.compress(bytes).map_err(err)
}

/// Restores the original executable byte for byte from a packed file.
pub fn unpack(bytes: &[u8]) -> Result<Vec<u8>, PackError> {
    let f = Footer::find(bytes).ok_or(PackError::NotPacked)?;
    let off = usize::try_from(f.payload_off).map_err(|_| PackError::Corrupt("payload offset".into()))?;
    let hdr_bytes = bytes.get(off..).ok_or_else(|| PackError::Corrupt("payload offset past end".into()))?;
    let h = PayloadHeader::parse(hdr_bytes)?;
    if h.orig_size != f.orig_size || h.comp_size != f.comp_size {
        return Err(PackError::Corrupt("payload header and footer disagree".into()));
    }
    let comp = usize::try_from(h.comp_size)
        .ok()
        .and_then(|n| hdr_bytes.get(PAYLOAD_HDR..PAYLOAD_HDR.checked_add(n)?))
        .ok_or_else(|| PackError::Corrupt("compressed stream truncated".into()))?;
    // Guard the allocation: neither codec expands beyond a few 10^4:1 (LZMA
    // ~7000:1); a header claiming more is corrupt and must not make us
    // allocate terabytes.
    let orig = usize::try_from(h.orig_size)
        .ok()
        .filter(|&n| n as u64 <= (comp.len() as u64 + 64) << 16)
        .ok_or_else(|| PackError::Corrupt("implausible original size".into()))?;
    let mut out = match h.method {
        METHOD_LZMA => {
            let props = lzma::Props { lc: h.lc as u32, lp: h.lp as u32, pb: h.pb as u32 };
            let mut out = vec![0u8; orig];
            match lzma::decode(comp, props, &mut out) {
                Ok(n) if n == orig => {}
                r => return Err(PackError::Corrupt(format!("LZMA stream: {r:?}"))),
            }
            out
        }
        METHOD_ZSTD => match zstd::bulk::decompress(comp, orig) {
            Ok(o) if o.len() == orig => o,
            Ok(_) => return Err(PackError::Corrupt("zstd stream has the wrong length".into())),
            Err(e) => return Err(PackError::Corrupt(format!("zstd stream: {e}"))),
        },
        m => return Err(PackError::Corrupt(format!("unknown method {m}"))),
    };
    if h.flags & FLAG_BCJ_X86 != 0 {
        bcj::x86_decode(&mut out);
    }
    if h.flags & FLAG_E8 != 0 {
        bcj::x86_decode(&mut out);
    }
    let sum: [u8; 32] = Sha256::digest(&out).into();
    if sum != f.sha256 {
        return Err(PackError::Corrupt("SHA-256 of the unpacked file does not match".into()));
    }
    Ok(out)
}
