//! The few ELF facts the loader uses to find dependencies, read with goblin.
//!
//! Only the ELF header, program headers and the dynamic section are parsed (not symbols or
//! relocations): that is all the loader looks at, and it keeps parsing cheap for whole images.
use goblin::elf::{dynamic, header, program_header, Dynamic, Elf, ProgramHeader};
use goblin::container::{Container, Ctx};
use goblin::strtab::Strtab;

/// What the dynamic loader needs to know about one ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// ELFCLASS64?
    pub is_64: bool,
    pub little_endian: bool,
    /// e_machine (EM_X86_64 = 62, EM_AARCH64 = 183, …).
    pub machine: u16,
    /// EI_OSABI; the glibc loader rejects objects with an ABI it does not know.
    pub osabi: u8,
    /// e_type (ET_EXEC = 2, ET_DYN = 3, …).
    pub e_type: u16,
    /// PT_INTERP, if any.
    pub interp: Option<String>,
    /// DT_NEEDED, in order.
    pub needed: Vec<String>,
    /// DT_RPATH strings, raw (not split on ':', tokens not expanded).
    pub rpath: Vec<String>,
    /// DT_RUNPATH strings, raw.
    pub runpath: Vec<String>,
    pub soname: Option<String>,
    /// DT_FLAGS_1 (DF_1_PIE, DF_1_NODEFLIB, …), 0 if absent.
    pub flags_1: u64,
    /// Has a PT_DYNAMIC segment.
    pub is_dynamic: bool,
}

impl ElfInfo {
    /// A position-independent executable (ET_DYN with DF_1_PIE, or anything with PT_INTERP).
    pub fn is_pie(&self) -> bool {
        self.flags_1 & dynamic::DF_1_PIE != 0
    }
    /// Something you can exec: ET_EXEC, or ET_DYN that is a PIE or carries an interpreter.
    pub fn is_executable(&self) -> bool {
        self.e_type == header::ET_EXEC
            || (self.e_type == header::ET_DYN && (self.is_pie() || self.interp.is_some()))
    }
    /// A shared library: ET_DYN that is not an executable (libc.so.6 has PT_INTERP and is both;
    /// we call it executable, which is also true).
    pub fn is_shared_lib(&self) -> bool {
        self.e_type == header::ET_DYN && !self.is_executable()
    }
    /// `-z nodeflib`: the glibc loader skips ld.so.cache and the default dirs for its deps.
    pub fn nodeflib(&self) -> bool {
        self.flags_1 & dynamic::DF_1_NODEFLIB != 0
    }
    /// Could the loader load `other` into the same process as `self`? Same class, byte order and
    /// machine (what glibc's `open_verify` checks before it accepts a candidate).
    pub fn compatible(&self, other: &ElfInfo) -> bool {
        self.is_64 == other.is_64
            && self.little_endian == other.little_endian
            && self.machine == other.machine
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF: {0}")]
    Malformed(String),
}

/// Cheap check: does this start with the ELF magic?
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4] == header::ELFMAG[..]
}

/// Parse the loader-relevant parts of an ELF file. Never panics on malformed input.
pub fn parse(bytes: &[u8]) -> Result<ElfInfo, ParseError> {
    if !is_elf(bytes) {
        return Err(ParseError::NotElf);
    }
    let bad = |e: goblin::error::Error| ParseError::Malformed(e.to_string());
    let hdr = Elf::parse_header(bytes).map_err(bad)?;
    let is_64 = match hdr.e_ident[header::EI_CLASS] {
        header::ELFCLASS64 => true,
        header::ELFCLASS32 => false,
        c => return Err(ParseError::Malformed(format!("unknown ELF class {c}"))),
    };
    let little_endian = match hdr.e_ident[header::EI_DATA] {
        header::ELFDATA2LSB => true,
        header::ELFDATA2MSB => false,
        d => return Err(ParseError::Malformed(format!("unknown ELF data encoding {d}"))),
    };
    let ctx = Ctx::new(
        if is_64 { Container::Big } else { Container::Little },
        if little_endian { goblin::container::Endian::Little } else { goblin::container::Endian::Big },
    );
    // Guard the counts before goblin allocates for them: a hostile e_phnum must not OOM us.
    let phsize = if is_64 { 56usize } else { 32 };
    let phoff = usize::try_from(hdr.e_phoff).map_err(|_| ParseError::Malformed("e_phoff".into()))?;
    let phnum = hdr.e_phnum as usize;
    if phoff.checked_add(phnum * phsize).is_none_or(|end| end > bytes.len()) {
        return Err(ParseError::Malformed("program headers beyond end of file".into()));
    }
    let phdrs = ProgramHeader::parse(bytes, phoff, phnum, ctx).map_err(bad)?;

    let mut interp = None;
    for ph in &phdrs {
        if ph.p_type == program_header::PT_INTERP && ph.p_filesz > 0 {
            let start = usize::try_from(ph.p_offset).ok();
            let len = usize::try_from(ph.p_filesz).ok();
            let raw = match (start, len) {
                (Some(s), Some(l)) => s.checked_add(l).and_then(|e| bytes.get(s..e)),
                _ => None,
            }
            .ok_or_else(|| ParseError::Malformed("PT_INTERP beyond end of file".into()))?;
            // The kernel uses the string up to the first NUL.
            let s = raw.split(|&b| b == 0).next().unwrap_or_default();
            interp = Some(String::from_utf8_lossy(s).into_owned());
        }
    }

    let mut info = ElfInfo {
        is_64,
        little_endian,
        machine: hdr.e_machine,
        osabi: hdr.e_ident[header::EI_OSABI],
        e_type: hdr.e_type,
        interp,
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
        soname: None,
        flags_1: 0,
        is_dynamic: false,
    };

    let dynamic = Dynamic::parse(bytes, &phdrs, ctx).map_err(bad)?;
    let Some(dynamic) = dynamic else {
        return Ok(info);
    };
    info.is_dynamic = true;
    let di = &dynamic.info;
    info.flags_1 = di.flags_1;
    if di.strtab.checked_add(di.strsz).is_none_or(|end| end > bytes.len()) {
        return Err(ParseError::Malformed("dynamic string table beyond end of file".into()));
    }
    let strtab = Strtab::parse(bytes, di.strtab, di.strsz, 0).map_err(bad)?;
    let get = |off: u64| -> Result<String, ParseError> {
        usize::try_from(off)
            .ok()
            .and_then(|o| strtab.get_at(o))
            .map(str::to_string)
            .ok_or_else(|| ParseError::Malformed(format!("bad dynamic string offset {off}")))
    };
    for d in &dynamic.dyns {
        match d.d_tag {
            dynamic::DT_NEEDED => info.needed.push(get(d.d_val)?),
            dynamic::DT_RPATH => info.rpath.push(get(d.d_val)?),
            dynamic::DT_RUNPATH => info.runpath.push(get(d.d_val)?),
            dynamic::DT_SONAME => info.soname = Some(get(d.d_val)?),
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_is_cheap_error() {
        assert_eq!(parse(b"#!/bin/sh\n"), Err(ParseError::NotElf));
        assert_eq!(parse(b""), Err(ParseError::NotElf));
    }

    #[test]
    fn truncated_and_garbage_never_panic() {
        let me = std::fs::read("/proc/self/exe").unwrap();
        let info = parse(&me).unwrap();
        assert!(info.is_dynamic, "the test binary is dynamically linked");
        // Every truncation point of the header region, and bit flips, must yield Ok or Err.
        for len in (0..me.len().min(8192)).step_by(7) {
            let _ = parse(&me[..len]);
        }
        let mut x = me[..me.len().min(1 << 16)].to_vec();
        let mut seed = 0x2545F4914F6CDD1Du64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % x.len();
            x[i] ^= (seed >> 32) as u8;
            let _ = parse(&x);
        }
    }
}
