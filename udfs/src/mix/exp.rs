//! e^x with the same bits on every machine, and fast over whole columns.
//!
//! Why not libm's: glibc picks its `exp` at run time by CPU (a fused multiply-add variant where
//! the CPU has FMA), so a rare softmax term of `samplemix_weights` could differ in its last bit
//! from one machine to the next. This one uses only +, −, × and ÷, each correctly rounded by
//! IEEE 754 and never fused (Rust does not contract a·b + c), so its result depends on x alone;
//! and its main loop has no branch or table lookup, so it vectorises (over a column in SQL it
//! costs about 60% of what `exp` costs here, with SSE2 alone).
//!
//! Method: fdlibm's `e_exp.c` (Sun Microsystems, 1993; the same method and coefficients as musl
//! and FreeBSD): x = k·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two parts so k·ln2_hi is
//! exact), e^r from a rational approximation R(r) whose error is below 2^-59, and
//! e^x = 2^k · e^r. The error is below 1 ulp (a test checks it against libm).

/// ln 2, high part: its low 32 bits are zero, so k·LN2_HI is exact for |k| < 2^20.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// ln 2 − LN2_HI.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const INV_LN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
/// Coefficients of R(r) = r − r²·(P1 + r²·(P2 + ...)) (fdlibm's minimax fit).
const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e);
const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93);
const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c);
const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1);
const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0);
/// 1.5·2^52: adding it rounds a value below 2^51 to an integer (ties to even), which then sits
/// in the low bits of the sum's mantissa.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// Above this e^x overflows to +∞; below `UNDERFLOW` it rounds to 0.
const OVERFLOW: f64 = f64::from_bits(0x4086_2e42_fefa_39ef);
const UNDERFLOW: f64 = f64::from_bits(0xc087_4910_d52d_3051);
/// Where 2^k of the fast path is a normal number and y·2^k cannot overflow (k in −1021..=1022).
const FAST_MIN: f64 = -707.0;
const FAST_MAX: f64 = 708.0;

/// y = e^r (in [0.7, 1.42]) and k with e^x = y·2^k, for x with |x·log2 e| < 2^51.
#[inline(always)]
fn reduce(x: f64) -> (f64, u64) {
    let shifted = x * INV_LN2 + SHIFT;
    let kf = shifted - SHIFT;
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // k as a two's-complement integer: the low bits of `shifted`'s pattern minus SHIFT's.
    (y, shifted.to_bits().wrapping_sub(SHIFT.to_bits()))
}

/// 2^k for k in −1022..=1023, as its bit pattern.
#[inline(always)]
fn pow2(k: u64) -> f64 {
    f64::from_bits(k.wrapping_add(1023) << 52)
}

/// e^x, the same bits on every IEEE 754 machine (error below 1 ulp). NaN gives NaN, +∞ gives
/// +∞, −∞ gives 0.
pub fn exp(x: f64) -> f64 {
    if (FAST_MIN..=FAST_MAX).contains(&x) {
        let (y, k) = reduce(x);
        return y * pow2(k);
    }
    if x.is_nan() {
        return x;
    }
    if x > OVERFLOW {
        return f64::INFINITY;
    }
    if x < UNDERFLOW {
        return 0.0;
    }
    // Near the ends 2^k itself is not a normal number: scale in two exact steps, so that only
    // the last product rounds (once, also into the subnormals).
    let (y, k) = reduce(x);
    let k = k as i64;
    if k > 0 {
        y * 2.0 * pow2((k - 1) as u64)
    } else {
        y * pow2((k + 1000) as u64) * f64::from_bits(0x0170_0000_0000_0000) // 2^-1000
    }
}

/// `out[i] = exp(xs[i])`, the same bits as [`exp`], in a loop the compiler vectorises (its
/// inputs clamped to the fast range, which keeps the loop free of branches); values outside
/// that range (rare) are redone one by one.
///
/// On x86-64 the loop is compiled a second time for AVX-512 (8 lanes, not SSE2's 2) and
/// picked at run time: the same IEEE operations in the same order, each correctly rounded and
/// never fused (enabling a target feature does not let Rust contract a·b + c), so the bits do
/// not depend on which copy runs.
pub fn exp_into(xs: &[f64], out: &mut [f64]) {
    assert_eq!(xs.len(), out.len(), "exp_into: slices of different lengths");
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, the only feature the function enables; the function
        // itself is safe code (slices, no pointers).
        return unsafe { exp_into_avx512(xs, out) };
    }
    exp_into_portable(xs, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn exp_into_avx512(xs: &[f64], out: &mut [f64]) {
    exp_into_portable(xs, out)
}

#[inline(always)]
fn exp_into_portable(xs: &[f64], out: &mut [f64]) {
    let mut outside = false;
    for (x, o) in xs.iter().zip(out.iter_mut()) {
        // A NaN stays NaN and, unequal to itself, is marked as outside.
        let inside = x.clamp(FAST_MIN, FAST_MAX);
        outside |= inside != *x;
        let (y, k) = reduce(inside);
        *o = y * pow2(k);
    }
    if outside {
        for (x, o) in xs.iter().zip(out.iter_mut()) {
            if !(FAST_MIN..=FAST_MAX).contains(x) {
                *o = exp(*x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Distance in ulps between two finite positive doubles (or 0 for identical patterns).
    fn ulps(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn special_values() {
        assert_eq!(exp(0.0).to_bits(), 1.0f64.to_bits());
        assert_eq!(exp(-0.0).to_bits(), 1.0f64.to_bits());
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(f64::NEG_INFINITY).to_bits(), 0.0f64.to_bits());
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-746.0), 0.0);
        // e itself comes out one ulp high (0.67 ulp from the true value), as in fdlibm.
        assert!(ulps(exp(1.0), std::f64::consts::E) <= 1);
        // The largest finite result and the smallest subnormal one.
        assert!(exp(OVERFLOW).is_finite() && exp(OVERFLOW) > 1.79e308);
        assert!(exp(-745.0) > 0.0 && exp(-745.0) < 1e-320);
    }

    #[test]
    fn within_one_ulp_of_libm_across_the_range() {
        // Every 1/1000 from −708 to 709 and then the ends into the subnormals and to overflow.
        let mut worst = 0;
        let mut x = -745.1;
        while x < 709.78 {
            let (ours, libm) = (exp(x), x.exp());
            if libm >= f64::MIN_POSITIVE {
                worst = worst.max(ulps(ours, libm));
            } else {
                // Subnormal results keep fewer bits: compare absolutely, within one of their ulps.
                assert!((ours - libm).abs() <= 5e-324, "{x}: {ours} vs {libm}");
            }
            x += if (-700.0..705.0).contains(&x) {
                0.001
            } else {
                0.0001
            };
        }
        assert!(worst <= 1, "worst error {worst} ulps");
    }

    #[test]
    fn the_column_loop_gives_the_scalar_bits() {
        let xs: Vec<f64> = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1e-300,
            -1e-20,
            0.5,
            707.9,
            708.0,
            708.1,
            709.5,
            709.8,
            -707.0,
            -707.1,
            -744.0,
            -745.2,
            1e6,
            -1e6,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]
        .into_iter()
        .chain((0..1000).map(|i| (i as f64 - 500.0) * 0.0137))
        .collect();
        let mut out = vec![0.0; xs.len()];
        exp_into(&xs, &mut out);
        for (x, o) in xs.iter().zip(&out) {
            assert_eq!(o.to_bits(), exp(*x).to_bits(), "{x}");
        }
    }

    proptest! {
        #[test]
        fn matches_libm_within_one_ulp(x in -707.0f64..708.0) {
            let (ours, libm) = (exp(x), x.exp());
            prop_assert!(ulps(ours, libm) <= 1, "{}: {} vs {}", x, ours, libm);
        }

        #[test]
        fn column_equals_scalar(xs in proptest::collection::vec(-800.0f64..800.0, 0..64)) {
            // exp_into runs the AVX-512 copy where the CPU has it: both copies, same bits.
            let (mut out, mut portable) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
            exp_into(&xs, &mut out);
            exp_into_portable(&xs, &mut portable);
            for ((x, o), p) in xs.iter().zip(&out).zip(&portable) {
                prop_assert_eq!(o.to_bits(), exp(*x).to_bits());
                prop_assert_eq!(p.to_bits(), exp(*x).to_bits());
            }
        }
    }
}
