//! Little-endian field readers and the ELF64 program header, shared verbatim
//! by the stub (`no_std`) and by `imgslim::pack`, like `payload.rs`.

#![allow(dead_code)]

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;
pub const PT_GNU_STACK: u32 = 0x6474_e551;

pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

pub fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
pub fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
pub fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

#[derive(Clone, Copy, Debug)]
pub struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

impl Phdr {
    /// The program header at byte `o` of `b` (caller checks the bounds).
    pub fn parse(b: &[u8], o: usize) -> Phdr {
        Phdr {
            p_type: le32(b, o),
            p_flags: le32(b, o + 4),
            p_offset: le64(b, o + 8),
            p_vaddr: le64(b, o + 16),
            p_filesz: le64(b, o + 32),
            p_memsz: le64(b, o + 40),
            p_align: le64(b, o + 48),
        }
    }
}
