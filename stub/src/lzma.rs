//! Raw LZMA1 decoder without allocation, after the reference `LzmaSpec.cpp`
//! (public domain, Igor Pavlov).
//!
//! Shared verbatim by the stub (`no_std`) and by `imgslim::pack` (which uses it to
//! verify every packed payload and to unpack), so the bytes the packer checks are
//! decoded by exactly the code that will run at exec time.
//!
//! The whole output buffer doubles as the dictionary: the stub always decodes the
//! complete original file into one mapping, so no separate window is needed.

#![allow(dead_code)]

/// Largest `lc + lp` accepted (the LZMA2 limit, which every xz preset honours);
/// it bounds the literal probability table so it can live on the stack.
pub const MAX_LC_LP: u32 = 4;
const LIT_SIZE: usize = 0x300 << MAX_LC_LP;
const PROB_INIT: u16 = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// lc/lp/pb out of range.
    Props,
    /// The stream does not decode to a consistent result.
    Corrupt,
    /// The stream ended (marker or input exhausted) before the output was full.
    Truncated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Props {
    pub lc: u32,
    pub lp: u32,
    pub pb: u32,
}

impl Props {
    pub fn valid(&self) -> bool {
        self.lc + self.lp <= MAX_LC_LP && self.pb <= 4
    }
}

struct Rc<'a> {
    inp: &'a [u8],
    pos: usize,
    range: u32,
    code: u32,
    /// Set when the decoder had to read past the input or saw an impossible code;
    /// checked once at the end instead of on every bit.
    bad: bool,
}

impl<'a> Rc<'a> {
    fn new(inp: &'a [u8]) -> Result<Self, Error> {
        if inp.len() < 5 || inp[0] != 0 {
            return Err(Error::Corrupt);
        }
        let code = u32::from_be_bytes([inp[1], inp[2], inp[3], inp[4]]);
        Ok(Rc { inp, pos: 5, range: 0xFFFF_FFFF, code, bad: false })
    }

    #[inline(always)]
    fn normalize(&mut self) {
        if self.range < (1 << 24) {
            self.range <<= 8;
            let b = match self.inp.get(self.pos) {
                Some(&b) => b,
                None => {
                    self.bad = true;
                    0
                }
            };
            self.pos += 1;
            self.code = (self.code << 8) | b as u32;
        }
    }

    #[inline(always)]
    fn bit(&mut self, p: &mut u16) -> u32 {
        let v = *p as u32;
        let bound = (self.range >> 11) * v;
        let r = if self.code < bound {
            self.range = bound;
            *p = (v + ((2048 - v) >> 5)) as u16;
            0
        } else {
            self.range -= bound;
            self.code -= bound;
            *p = (v - (v >> 5)) as u16;
            1
        };
        self.normalize();
        r
    }

    fn direct(&mut self, n: u32) -> u32 {
        let mut res: u32 = 0;
        for _ in 0..n {
            self.range >>= 1;
            self.code = self.code.wrapping_sub(self.range);
            let t = 0u32.wrapping_sub(self.code >> 31);
            self.code = self.code.wrapping_add(self.range & t);
            if self.code == self.range {
                self.bad = true;
            }
            self.normalize();
            res = (res << 1).wrapping_add(t.wrapping_add(1));
        }
        res
    }

    #[inline(always)]
    fn tree(&mut self, p: &mut [u16], bits: u32) -> u32 {
        let mut m: usize = 1;
        for _ in 0..bits {
            m = (m << 1) + self.bit(&mut p[m]) as usize;
        }
        (m - (1 << bits)) as u32
    }

    #[inline(always)]
    fn rev_tree(&mut self, p: &mut [u16], bits: u32) -> u32 {
        let mut m: usize = 1;
        let mut sym = 0;
        for i in 0..bits {
            let b = self.bit(&mut p[m]);
            m = (m << 1) + b as usize;
            sym |= b << i;
        }
        sym
    }
}

struct LenDec {
    choice: u16,
    choice2: u16,
    low: [[u16; 8]; 16],
    mid: [[u16; 8]; 16],
    high: [u16; 256],
}

impl LenDec {
    fn new() -> Self {
        LenDec {
            choice: PROB_INIT,
            choice2: PROB_INIT,
            low: [[PROB_INIT; 8]; 16],
            mid: [[PROB_INIT; 8]; 16],
            high: [PROB_INIT; 256],
        }
    }
    #[inline(always)]
    fn decode(&mut self, rc: &mut Rc, ps: usize) -> u32 {
        if rc.bit(&mut self.choice) == 0 {
            return rc.tree(&mut self.low[ps], 3);
        }
        if rc.bit(&mut self.choice2) == 0 {
            return 8 + rc.tree(&mut self.mid[ps], 3);
        }
        16 + rc.tree(&mut self.high, 8)
    }
}

struct Probs {
    is_match: [u16; 192],
    is_rep: [u16; 12],
    is_rep_g0: [u16; 12],
    is_rep_g1: [u16; 12],
    is_rep_g2: [u16; 12],
    is_rep0_long: [u16; 192],
    pos_slot: [[u16; 64]; 4],
    pos_dec: [u16; 115],
    align: [u16; 16],
    len: LenDec,
    rep_len: LenDec,
    lit: [u16; LIT_SIZE],
}

/// Decodes a raw LZMA1 stream (no header; properties passed separately) until
/// `out` is full or the end marker is met. Returns the number of bytes produced,
/// which equals `out.len()` on success.
pub fn decode(inp: &[u8], props: Props, out: &mut [u8]) -> Result<usize, Error> {
    if !props.valid() {
        return Err(Error::Props);
    }
    let lc = props.lc;
    let lp_mask = (1usize << props.lp) - 1;
    let pb_mask = (1usize << props.pb) - 1;
    let mut p = Probs {
        is_match: [PROB_INIT; 192],
        is_rep: [PROB_INIT; 12],
        is_rep_g0: [PROB_INIT; 12],
        is_rep_g1: [PROB_INIT; 12],
        is_rep_g2: [PROB_INIT; 12],
        is_rep0_long: [PROB_INIT; 192],
        pos_slot: [[PROB_INIT; 64]; 4],
        pos_dec: [PROB_INIT; 115],
        align: [PROB_INIT; 16],
        len: LenDec::new(),
        rep_len: LenDec::new(),
        lit: [PROB_INIT; LIT_SIZE],
    };
    let mut rc = Rc::new(inp)?;
    let (mut rep0, mut rep1, mut rep2, mut rep3) = (0u32, 0u32, 0u32, 0u32);
    let mut state: usize = 0;
    let mut pos: usize = 0;
    let n = out.len();

    while pos < n {
        let ps = pos & pb_mask;
        if rc.bit(&mut p.is_match[(state << 4) + ps]) == 0 {
            let prev = if pos > 0 { out[pos - 1] as usize } else { 0 };
            let base = 0x300 * (((pos & lp_mask) << lc) + (prev >> (8 - lc)));
            let lit = &mut p.lit[base..base + 0x300];
            let mut sym: usize = 1;
            if state >= 7 {
                // rep0 < pos was checked when this distance was decoded.
                let mut mb = out[pos - rep0 as usize - 1] as usize;
                loop {
                    let mbit = (mb >> 7) & 1;
                    mb <<= 1;
                    let b = rc.bit(&mut lit[((1 + mbit) << 8) + sym]) as usize;
                    sym = (sym << 1) | b;
                    if mbit != b || sym >= 0x100 {
                        break;
                    }
                }
            }
            while sym < 0x100 {
                sym = (sym << 1) | rc.bit(&mut lit[sym]) as usize;
            }
            out[pos] = sym as u8;
            pos += 1;
            state = if state < 4 {
                0
            } else if state < 10 {
                state - 3
            } else {
                state - 6
            };
            continue;
        }

        let len;
        if rc.bit(&mut p.is_rep[state]) != 0 {
            if pos == 0 {
                return Err(Error::Corrupt);
            }
            if rc.bit(&mut p.is_rep_g0[state]) == 0 {
                if rc.bit(&mut p.is_rep0_long[(state << 4) + ps]) == 0 {
                    state = if state < 7 { 9 } else { 11 };
                    out[pos] = out[pos - rep0 as usize - 1];
                    pos += 1;
                    continue;
                }
            } else {
                let dist;
                if rc.bit(&mut p.is_rep_g1[state]) == 0 {
                    dist = rep1;
                } else {
                    if rc.bit(&mut p.is_rep_g2[state]) == 0 {
                        dist = rep2;
                    } else {
                        dist = rep3;
                        rep3 = rep2;
                    }
                    rep2 = rep1;
                }
                rep1 = rep0;
                rep0 = dist;
            }
            len = p.rep_len.decode(&mut rc, ps);
            state = if state < 7 { 8 } else { 11 };
        } else {
            rep3 = rep2;
            rep2 = rep1;
            rep1 = rep0;
            len = p.len.decode(&mut rc, ps);
            state = if state < 7 { 7 } else { 10 };
            // Distance.
            let ls = if len > 3 { 3 } else { len as usize };
            let slot = rc.tree(&mut p.pos_slot[ls], 6);
            rep0 = if slot < 4 {
                slot
            } else {
                let ndb = (slot >> 1) - 1;
                let mut d = (2 | (slot & 1)) << ndb;
                if slot < 14 {
                    d += rc.rev_tree(&mut p.pos_dec[(d - slot) as usize..], ndb);
                } else {
                    d = d.wrapping_add(rc.direct(ndb - 4) << 4);
                    d = d.wrapping_add(rc.rev_tree(&mut p.align, 4));
                }
                d
            };
            if rep0 == 0xFFFF_FFFF {
                // End marker: only acceptable once the output is complete, which
                // the loop condition already rules out here.
                return Err(Error::Truncated);
            }
            if rep0 as usize >= pos {
                return Err(Error::Corrupt);
            }
        }
        let len = len as usize + 2;
        let dist = rep0 as usize + 1;
        let end = if pos + len > n { n } else { pos + len };
        if dist >= len {
            out.copy_within(pos - dist..end - dist, pos);
        } else {
            // Overlapping copy (run-length style): must go byte by byte.
            for i in pos..end {
                out[i] = out[i - dist];
            }
        }
        pos = end;
    }
    if rc.bad {
        return Err(Error::Corrupt);
    }
    Ok(pos)
}
