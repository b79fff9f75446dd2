//! Layout of the payload segment of a packed file, shared verbatim by the stub
//! (`no_std`) and by `imgslim::pack` (which writes it), so the two cannot drift.
//!
//! ```text
//! 0    magic "ISPKPAY2"
//! 8    method u8, lc u8, lp u8, pb u8    (LZMA properties; 0 for zstd)
//! 12   nchunks u32
//! 16   orig_size u64                     (size of the original file)
//! 24   phnum u16, interp_len u16, 0u32
//! 32   the original's ELF header (64 bytes), uncompressed
//! 96   its program headers (56 * phnum), uncompressed
//! ..   its PT_INTERP path (interp_len bytes, NUL included), padded to 8
//! ..   chunk table: nchunks * 32 bytes, in file order, covering [0, orig_size)
//! ..   the compressed chunks (each an independent LZMA1 raw stream / zstd frame)
//! ```
//!
//! A chunk entry: `file_off u64, len u64, comp_off u64 (from the payload start),
//! comp_len u32, flags u16, seg u16`. `seg` is the index of a PT_LOAD whose file
//! range contains the whole chunk (the stub decodes it straight into that
//! segment's memory) or [`SEG_NONE`] for bytes no segment maps (section
//! headers, symbols: only `unpack` decodes those). The packer cuts chunks at
//! every segment boundary, so a chunk is either inside a segment or outside it.
//!
//! Headers are stored uncompressed so the stub can lay out the address space
//! before decoding anything, and decode the chunks in parallel.

#![allow(dead_code)]

use super::elf64::{le16 as u16_at, le32 as u32_at, le64 as u64_at};

pub const MAGIC: [u8; 8] = *b"ISPKPAY2";
pub const FIXED: usize = 32;
pub const EHDR: usize = 64;
pub const PHENT: usize = 56;
pub const ENTRY: usize = 32;
pub const METHOD_LZMA: u8 = 0;
pub const METHOD_ZSTD: u8 = 1;
/// Chunk flag: x86 BCJ (E8/E9) filter applied with start offset `file_off`.
pub const CF_E8: u16 = 1;
pub const SEG_NONE: u16 = 0xFFFF;

#[derive(Clone, Copy)]
pub struct Chunk {
    pub file_off: u64,
    pub len: u64,
    pub comp_off: u64,
    pub comp_len: u32,
    pub flags: u16,
    pub seg: u16,
}

impl Chunk {
    pub fn to_bytes(self) -> [u8; ENTRY] {
        let mut b = [0u8; ENTRY];
        b[0..8].copy_from_slice(&self.file_off.to_le_bytes());
        b[8..16].copy_from_slice(&self.len.to_le_bytes());
        b[16..24].copy_from_slice(&self.comp_off.to_le_bytes());
        b[24..28].copy_from_slice(&self.comp_len.to_le_bytes());
        b[28..30].copy_from_slice(&self.flags.to_le_bytes());
        b[30..32].copy_from_slice(&self.seg.to_le_bytes());
        b
    }
}

pub struct Header<'a> {
    pub method: u8,
    pub lc: u8,
    pub lp: u8,
    pub pb: u8,
    pub orig_size: u64,
    pub ehdr: &'a [u8],
    pub phdrs: &'a [u8],
    pub phnum: usize,
    /// PT_INTERP path with its NUL, or empty.
    pub interp: &'a [u8],
    pub nchunks: usize,
    table: &'a [u8],
    payload: &'a [u8],
}

/// Byte length of everything before the compressed chunks.
pub fn header_len(phnum: usize, interp_len: usize, nchunks: usize) -> usize {
    FIXED + EHDR + PHENT * phnum + interp_len.div_ceil(8) * 8 + ENTRY * nchunks
}

/// The fixed part plus headers, interp and table (chunk entries filled by the caller).
pub fn write_header(out: &mut [u8], method: u8, lzma_props: [u8; 3], orig_size: u64, ehdr: &[u8], phdrs: &[u8], interp: &[u8], chunks: &[Chunk]) {
    let phnum = phdrs.len() / PHENT;
    out[0..8].copy_from_slice(&MAGIC);
    out[8] = method;
    out[9..12].copy_from_slice(&lzma_props);
    out[12..16].copy_from_slice(&(chunks.len() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&orig_size.to_le_bytes());
    out[24..26].copy_from_slice(&(phnum as u16).to_le_bytes());
    out[26..28].copy_from_slice(&(interp.len() as u16).to_le_bytes());
    let mut o = FIXED;
    out[o..o + EHDR].copy_from_slice(&ehdr[..EHDR]);
    o += EHDR;
    out[o..o + phdrs.len()].copy_from_slice(phdrs);
    o += phdrs.len();
    out[o..o + interp.len()].copy_from_slice(interp);
    o += interp.len().div_ceil(8) * 8;
    for c in chunks {
        out[o..o + ENTRY].copy_from_slice(&c.to_bytes());
        o += ENTRY;
    }
}

impl<'a> Header<'a> {
    /// Parses and bounds-checks the header and every chunk entry against `payload`.
    pub fn parse(payload: &'a [u8]) -> Result<Header<'a>, &'static str> {
        if payload.len() < FIXED + EHDR || payload[0..8] != MAGIC {
            return Err("payload header not found");
        }
        let phnum = u16_at(payload, 24) as usize;
        let interp_len = u16_at(payload, 26) as usize;
        let nchunks = u32_at(payload, 12) as usize;
        if nchunks > 1 << 20 {
            return Err("payload chunk table too large");
        }
        let hlen = header_len(phnum, interp_len, nchunks);
        if hlen > payload.len() {
            return Err("payload header truncated");
        }
        let ph_at = FIXED + EHDR;
        let in_at = ph_at + PHENT * phnum;
        let tab_at = in_at + interp_len.div_ceil(8) * 8;
        let h = Header {
            method: payload[8],
            lc: payload[9],
            lp: payload[10],
            pb: payload[11],
            orig_size: u64_at(payload, 16),
            ehdr: &payload[FIXED..FIXED + EHDR],
            phdrs: &payload[ph_at..in_at],
            phnum,
            interp: &payload[in_at..in_at + interp_len],
            nchunks,
            table: &payload[tab_at..tab_at + ENTRY * nchunks],
            payload,
        };
        // Chunks must tile [0, orig_size) in order and their streams must lie
        // inside the payload: checked once here, so users can index freely.
        let mut next = 0u64;
        for i in 0..nchunks {
            let c = h.chunk(i);
            if c.file_off != next || c.len == 0 {
                return Err("payload chunks do not tile the file");
            }
            next = match c.file_off.checked_add(c.len) {
                Some(n) => n,
                None => return Err("payload chunk overflows"),
            };
            let end = c.comp_off.checked_add(c.comp_len as u64);
            if c.comp_off < hlen as u64 || end.is_none_or(|e| e > payload.len() as u64) {
                return Err("payload chunk stream out of bounds");
            }
        }
        if next != h.orig_size {
            return Err("payload chunks do not cover the file");
        }
        Ok(h)
    }

    pub fn chunk(&self, i: usize) -> Chunk {
        let o = i * ENTRY;
        let t = self.table;
        Chunk {
            file_off: u64_at(t, o),
            len: u64_at(t, o + 8),
            comp_off: u64_at(t, o + 16),
            comp_len: u32_at(t, o + 24),
            flags: u16_at(t, o + 28),
            seg: u16_at(t, o + 30),
        }
    }

    /// The compressed stream of a chunk (in bounds: checked by `parse`).
    pub fn stream(&self, c: &Chunk) -> &'a [u8] {
        &self.payload[c.comp_off as usize..c.comp_off as usize + c.comp_len as usize]
    }
}
