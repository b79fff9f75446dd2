//! On-disk layout of a packed executable.
//!
//! ```text
//! [Ehdr][Phdrs]                 PT_LOAD R   64 KiB below the stub (so AT_PHDR finds them)
//! [stub segments…]              PT_LOADs    copied from the linked stub, same vaddrs
//! [payload (stub/src/payload.rs)] PT_LOAD R last PT_LOAD: the stub locates it this way
//! [footer]                      not mapped; lets `unpack`/`is_packed` work without ELF parsing
//! PT_GNU_STACK RW               non-executable stack
//! ```
//!
//! e_machine is the stub's (x86_64 or aarch64). aarch64 segments are aligned
//! to 64 KiB in file and memory so the file loads on 4K, 16K and 64K kernels.

use super::elf64::{le16, le64, Phdr, EM_AARCH64, EM_X86_64, PT_GNU_STACK, PT_LOAD};
use super::PackError;

pub const FOOTER_MAGIC: [u8; 8] = *b"ISLMPAK1";
pub const FOOTER_LEN: usize = 64;

/// Address range the packed file's own segments occupy (stub linked by
/// build.rs at 0x6000_0000_0000 on x86_64, 0x8_0000_0000 on aarch64);
/// ET_EXEC programs that need it cannot be packed.
pub fn stub_region(machine: u16) -> (u64, u64) {
    match machine {
        EM_AARCH64 => (0x7_0000_0000, 0x9_0000_0000),
        _ => (0x5f00_0000_0000, 0x6100_0000_0000),
    }
}

/// Segment alignment of the packed file: the largest page size of the arch.
fn page_for(machine: u16) -> u64 {
    match machine {
        EM_AARCH64 => 0x10000,
        _ => 4096,
    }
}

pub struct Footer {
    pub payload_off: u64,
    pub orig_size: u64,
    pub comp_size: u64,
    pub sha256: [u8; 32],
}

impl Footer {
    pub fn to_bytes(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[0..8].copy_from_slice(&self.payload_off.to_le_bytes());
        b[8..16].copy_from_slice(&self.orig_size.to_le_bytes());
        b[16..24].copy_from_slice(&self.comp_size.to_le_bytes());
        b[24..56].copy_from_slice(&self.sha256);
        b[56..64].copy_from_slice(&FOOTER_MAGIC);
        b
    }

    /// Reads the footer at the end of a packed file, if there is one.
    pub fn find(file: &[u8]) -> Option<Self> {
        if file.len() < FOOTER_LEN + 64 || file[0..4] != *b"\x7fELF" {
            return None;
        }
        let b = &file[file.len() - FOOTER_LEN..];
        if b[56..64] != FOOTER_MAGIC {
            return None;
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&b[24..56]);
        Some(Footer { payload_off: le64(b, 0), orig_size: le64(b, 8), comp_size: le64(b, 16), sha256 })
    }
}

/// Appends `p` as a 56-byte ELF64 program header (p_paddr = p_vaddr).
fn write_phdr(p: &Phdr, out: &mut Vec<u8>) {
    out.extend_from_slice(&p.p_type.to_le_bytes());
    out.extend_from_slice(&p.p_flags.to_le_bytes());
    out.extend_from_slice(&p.p_offset.to_le_bytes());
    out.extend_from_slice(&p.p_vaddr.to_le_bytes());
    out.extend_from_slice(&p.p_vaddr.to_le_bytes()); // p_paddr
    out.extend_from_slice(&p.p_filesz.to_le_bytes());
    out.extend_from_slice(&p.p_memsz.to_le_bytes());
    out.extend_from_slice(&p.p_align.to_le_bytes());
}

/// Assembles the packed file from the linked stub, the payload (header +
/// compressed stream) and the footer.
pub fn build(stub: &[u8], payload: &[u8], mut footer: Footer) -> Result<Vec<u8>, PackError> {
    let bad = |m: &str| PackError::Internal(format!("embedded stub: {m}"));
    if stub.len() < 64 || stub[0..4] != *b"\x7fELF" || le16(stub, 16) != 2 || le16(stub, 54) != 56 {
        return Err(bad("not a static ELF64 executable"));
    }
    let machine = le16(stub, 18);
    if machine != EM_X86_64 && machine != EM_AARCH64 {
        return Err(bad("unknown e_machine"));
    }
    let page = page_for(machine);
    let entry = le64(stub, 24);
    let phoff = le64(stub, 32) as usize;
    let phnum = le16(stub, 56) as usize;
    if phoff + phnum * 56 > stub.len() {
        return Err(bad("program headers out of bounds"));
    }
    let mut loads = Vec::new();
    for i in 0..phnum {
        let ph = Phdr::parse(stub, phoff + i * 56);
        match ph.p_type {
            PT_LOAD => {
                if ph.p_offset + ph.p_filesz > stub.len() as u64 {
                    return Err(bad("segment out of bounds"));
                }
                loads.push(ph)
            }
            // Anything the kernel would have to act on (INTERP, TLS, DYNAMIC…) is a build bug.
            2 | 3 | 5 | 7 => return Err(bad("unexpected program header type")),
            _ => {}
        }
    }
    let lo = loads.iter().map(|p| p.p_vaddr & !(page - 1)).min().ok_or_else(|| bad("no PT_LOAD"))?;
    let hi = loads.iter().map(|p| (p.p_vaddr + p.p_memsz + page - 1) & !(page - 1)).max().unwrap_or(lo);
    // One 64 KiB gap (at least a page on every arch) on either side.
    let hdr_vaddr = lo - 0x10000.max(page);
    let pay_vaddr = hi + 0x10000.max(page);

    let n_ph = loads.len() + 3;
    let hdr_len = 64 + 56 * n_ph;
    let mut out = vec![0u8; hdr_len];
    let mut placed = Vec::new();
    for ph in &loads {
        let cur = out.len() as u64;
        let pad = (ph.p_vaddr % page + page - cur % page) % page;
        out.resize((cur + pad) as usize, 0);
        let off = out.len() as u64;
        out.extend_from_slice(&stub[ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize]);
        placed.push(Phdr { p_offset: off, p_align: page, ..*ph });
    }
    let pay_off = (out.len() as u64).div_ceil(page) * page;
    out.resize(pay_off as usize, 0);
    out.extend_from_slice(payload);
    footer.payload_off = pay_off;
    out.extend_from_slice(&footer.to_bytes());

    let mut ph = Vec::with_capacity(56 * n_ph);
    let hdr_seg = Phdr {
        p_type: PT_LOAD,
        p_flags: 4,
        p_offset: 0,
        p_vaddr: hdr_vaddr,
        p_filesz: hdr_len as u64,
        p_memsz: hdr_len as u64,
        p_align: page,
    };
    write_phdr(&hdr_seg, &mut ph);
    for p in &placed {
        write_phdr(p, &mut ph);
    }
    let len = payload.len() as u64;
    let pay_seg =
        Phdr { p_type: PT_LOAD, p_flags: 4, p_offset: pay_off, p_vaddr: pay_vaddr, p_filesz: len, p_memsz: len, p_align: page };
    write_phdr(&pay_seg, &mut ph);
    let stack = Phdr { p_type: PT_GNU_STACK, p_flags: 6, p_offset: 0, p_vaddr: 0, p_filesz: 0, p_memsz: 0, p_align: 16 };
    write_phdr(&stack, &mut ph);

    let mut eh = Vec::with_capacity(64);
    eh.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    eh.extend_from_slice(&[0u8; 8]);
    eh.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    eh.extend_from_slice(&machine.to_le_bytes()); // the stub's: EM_X86_64 or EM_AARCH64
    eh.extend_from_slice(&1u32.to_le_bytes());
    eh.extend_from_slice(&entry.to_le_bytes());
    eh.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    eh.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    eh.extend_from_slice(&0u32.to_le_bytes());
    eh.extend_from_slice(&64u16.to_le_bytes());
    eh.extend_from_slice(&56u16.to_le_bytes());
    eh.extend_from_slice(&(n_ph as u16).to_le_bytes());
    eh.extend_from_slice(&64u16.to_le_bytes());
    eh.extend_from_slice(&0u16.to_le_bytes());
    eh.extend_from_slice(&0u16.to_le_bytes());
    debug_assert_eq!(eh.len(), 64);
    out[..64].copy_from_slice(&eh);
    out[64..hdr_len].copy_from_slice(&ph);
    Ok(out)
}
