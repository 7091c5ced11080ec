//! Per-byte classes of a text as bit masks, 64 bytes at a time, for the word splitter's chunk
//! scan: bit k of a block's mask says what byte 64·block + k is. The scan then finds a chunk's
//! end with one `trailing_zeros` instead of a byte loop whose exit at every word's end was
//! mispredicted (the largest cost of the splitter). With AVX-512BW a block's masks are a few
//! byte compares; elsewhere a byte loop computes the same bits.
#![allow(unsafe_code)]

/// What the bytes of one 64-byte block are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Masks {
    /// ASCII whitespace: \t, \n, \x0b, \x0c, \r, ' '.
    pub space: u64,
    /// 0xC2, 0xE1, 0xE2, 0xE3: the lead bytes every non-ASCII whitespace char starts with.
    pub lead: u64,
    /// Not an ASCII letter or digit.
    pub not_alphanumeric: u64,
    /// An ASCII letter.
    pub letter: u64,
}

/// Bits of [`CLASS`].
const SPACE: u8 = 1;
const LEAD: u8 = 2;
const NOT_ALPHANUMERIC: u8 = 4;
const LETTER: u8 = 8;

/// Per byte, its [`Masks`] bits (the portable path).
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ') {
            table[b] |= SPACE;
        }
        if matches!(c, 0xc2 | 0xe1 | 0xe2 | 0xe3) {
            table[b] |= LEAD;
        }
        if !c.is_ascii_alphanumeric() {
            table[b] |= NOT_ALPHANUMERIC;
        }
        if c.is_ascii_alphabetic() {
            table[b] |= LETTER;
        }
        b += 1;
    }
    table
};

/// The masks of `block`, byte by byte.
pub(super) fn portable(block: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (k, &b) in block.iter().enumerate() {
        let c = CLASS[usize::from(b)];
        m.space |= u64::from(c & SPACE != 0) << k;
        m.lead |= u64::from(c & LEAD != 0) << k;
        m.not_alphanumeric |= u64::from(c & NOT_ALPHANUMERIC != 0) << k;
        m.letter |= u64::from(c & LETTER != 0) << k;
    }
    m
}

/// Whether this CPU runs [`avx512`].
#[cfg(target_arch = "x86_64")]
pub(super) fn avx512_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

/// Whether this CPU runs [`avx512`] (never off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn avx512_available() -> bool {
    false
}

/// [`portable`] with AVX-512BW: each mask is one or two unsigned range compares of all 64
/// bytes.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512BW ([`avx512_available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn avx512(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    // SAFETY: `block` is 64 readable bytes; the load is unaligned.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    let splat = |b: u8| _mm512_set1_epi8(b as i8);
    // lo <= b <= lo + span, as one unsigned compare of b − lo (wrapping).
    let within = |x: __m512i, lo: u8, span: u8| {
        _mm512_cmple_epu8_mask(_mm512_sub_epi8(x, splat(lo)), splat(span))
    };
    let space = within(v, b'\t', b'\r' - b'\t') | _mm512_cmpeq_epi8_mask(v, splat(b' '));
    let lead = _mm512_cmpeq_epi8_mask(v, splat(0xc2)) | within(v, 0xe1, 2);
    // Setting bit 5 maps 'A'..='Z' onto 'a'..='z' and no other byte into that range.
    let letter = within(_mm512_or_si512(v, splat(0x20)), b'a', 25);
    let digit = within(v, b'0', 9);
    Masks {
        space,
        lead,
        not_alphanumeric: !(letter | digit),
        letter,
    }
}

/// [`avx512`] on other targets: never called ([`avx512_available`] is false).
///
/// # Safety
/// None needed; `unsafe` only to match the x86-64 signature.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn avx512(block: &[u8; 64]) -> Masks {
    portable(block)
}

/// The masks of a text's blocks, computed when first asked for; the last block is padded with
/// spaces, so that a chunk ends at the text's end like at any whitespace.
pub(super) struct BlockMasks<'a> {
    bytes: &'a [u8],
    simd: bool,
    /// The block whose masks `masks` holds (`usize::MAX`: none yet).
    at: usize,
    masks: Masks,
}

impl<'a> BlockMasks<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            simd: avx512_available(),
            at: usize::MAX,
            masks: Masks::default(),
        }
    }

    /// The masks of block `index` (its bytes start at 64·index < the text's length).
    #[inline(always)]
    pub(super) fn get(&mut self, index: usize) -> Masks {
        if index != self.at {
            self.at = index;
            let start = index * 64;
            let mut padded = [b' '; 64];
            let block: &[u8; 64] = match self.bytes.get(start..start + 64) {
                Some(full) => full.try_into().unwrap_or(&padded),
                None => {
                    let rest = &self.bytes[start..];
                    padded[..rest.len()].copy_from_slice(rest);
                    &padded
                }
            };
            self.masks = if self.simd {
                // SAFETY: `simd` is true only when `avx512_available` said the CPU runs it.
                unsafe { avx512(block) }
            } else {
                portable(block)
            };
        }
        self.masks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The AVX-512 masks are the byte loop's, on any bytes (where the CPU has AVX-512).
        #[test]
        fn simd_masks_are_the_byte_loop(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 64)) {
            let block: [u8; 64] = bytes.try_into().unwrap();
            if avx512_available() {
                // SAFETY: checked just above.
                let simd = unsafe { avx512(&block) };
                proptest::prop_assert_eq!(simd, portable(&block));
            }
        }
    }

    #[test]
    fn every_byte_value_in_both_paths() {
        for start in (0..256).step_by(64) {
            let block: [u8; 64] = std::array::from_fn(|k| (start + k) as u8);
            let m = portable(&block);
            for (k, &b) in block.iter().enumerate() {
                let bit = |mask: u64| mask >> k & 1 == 1;
                assert_eq!(bit(m.space), b.is_ascii_whitespace() || b == 0x0b, "{b:#x}");
                assert_eq!(bit(m.lead), matches!(b, 0xc2 | 0xe1..=0xe3), "{b:#x}");
                assert_eq!(
                    bit(m.not_alphanumeric),
                    !b.is_ascii_alphanumeric(),
                    "{b:#x}"
                );
                assert_eq!(bit(m.letter), b.is_ascii_alphabetic(), "{b:#x}");
            }
            if avx512_available() {
                // SAFETY: checked just above.
                assert_eq!(unsafe { avx512(&block) }, m);
            }
        }
    }
}
