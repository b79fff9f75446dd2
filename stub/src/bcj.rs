//! x86 BCJ decoder (inverse of liblzma's `LZMA_FILTER_X86`), after xz-embedded's
//! `bcj_x86()` (public domain). Turns the absolute call/jump targets the encoder
//! wrote back into the relative ones of the original code.
//!
//! Shared by the stub and `imgslim::pack`, like `lzma.rs`.

#![allow(dead_code)]

#[inline(always)]
fn test_msbyte(b: u8) -> bool {
    b == 0x00 || b == 0xFF
}

/// Decodes the buffer in place, as one stream whose first byte sits at file
/// offset `start` (liblzma's `start_offset`): a packed file filters each chunk
/// on its own, with its own offset, so chunks decode independently.
pub fn x86_decode(buf: &mut [u8], start: u32) {
    x86(buf, false, start)
}

/// The encoder: liblzma runs the very same state machine for both directions
/// and only flips the sign of the position adjustment.
pub fn x86_encode(buf: &mut [u8], start: u32) {
    x86(buf, true, start)
}

/// Index of the first byte at or after `i` (and before `end`) that is an
/// E8/E9 opcode candidate. Scans a word at a time: in code these bytes are
/// ~1 in 60, and the byte-by-byte loop was most of the filter's time.
#[inline(always)]
fn next_e8(buf: &[u8], mut i: usize, end: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= end {
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[i..i + 8]);
        let x = (u64::from_le_bytes(w) & 0xFEFE_FEFE_FEFE_FEFE) ^ 0xE8E8_E8E8_E8E8_E8E8;
        // Classic has-zero-byte test; the lowest flagged byte is always a true zero.
        let z = x.wrapping_sub(LO) & !x & HI;
        if z != 0 {
            return i + (z.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < end && buf[i] & 0xFE != 0xE8 {
        i += 1;
    }
    i
}

fn x86(buf: &mut [u8], enc: bool, start: u32) {
    const ALLOWED: [bool; 8] = [true, true, true, false, true, false, false, false];
    const BIT_NUM: [u32; 8] = [0, 1, 2, 2, 3, 3, 3, 3];
    if buf.len() <= 4 {
        return;
    }
    let size = buf.len() - 4;
    let mut prev_pos: usize = usize::MAX;
    let mut prev_mask: u32 = 0;
    let mut i = 0usize;
    loop {
        i = next_e8(buf, i, size);
        if i >= size {
            break;
        }
        let d = i.wrapping_sub(prev_pos);
        if d > 3 {
            prev_mask = 0;
        } else {
            prev_mask = (prev_mask << (d - 1)) & 7;
            if prev_mask != 0 {
                let b = buf[i + 4 - BIT_NUM[prev_mask as usize] as usize];
                if !ALLOWED[prev_mask as usize] || test_msbyte(b) {
                    prev_pos = i;
                    prev_mask = (prev_mask << 1) | 1;
                    i += 1;
                    continue;
                }
            }
        }
        prev_pos = i;
        if test_msbyte(buf[i + 4]) {
            let mut src = u32::from_le_bytes([buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4]]);
            let mut dest;
            loop {
                let p = start.wrapping_add(i as u32).wrapping_add(5);
                dest = if enc { src.wrapping_add(p) } else { src.wrapping_sub(p) };
                if prev_mask == 0 {
                    break;
                }
                let j = BIT_NUM[prev_mask as usize] * 8;
                let b = (dest >> (24 - j)) as u8;
                if !test_msbyte(b) {
                    break;
                }
                src = dest ^ ((1u32 << (32 - j)) - 1);
            }
            dest &= 0x01FF_FFFF;
            dest |= 0u32.wrapping_sub(dest & 0x0100_0000);
            buf[i + 1..i + 5].copy_from_slice(&dest.to_le_bytes());
            i += 5;
        } else {
            prev_mask = (prev_mask << 1) | 1;
            i += 1;
        }
    }
}

