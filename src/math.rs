//! Branch-free f64 `ln` and `sincos(2πu)` (Box–Muller) and `exp`, `tanh`, `sigmoid` in f64 and f32
//! (the mean-field activations), written so that loops over independent arguments
//! vectorise (no libm calls, no data-dependent branches: both sides of every choice are
//! computed and one is selected).
//!
//! Why not std: glibc's `log`/`sincos`/`tanh` are scalar calls that cost most of a CPU
//! path step (a mean-field neuron step is mostly σ); these are accurate to a few ulp
//! and are tested against std below.

const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;

/// ln x for finite x > 0 (normal numbers).
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    // m ∈ [1, 2)
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // Bring m into [√½, √2) so |s| ≤ 0.1716 below.
    let big = m > std::f64::consts::SQRT_2;
    m = if big { 0.5 * m } else { m };
    e += big as i64;
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // 2 atanh(s) = 2s (1 + z/3 + z²/5 + …), truncated where z^n/(2n+1) < 2^-56.
    let p = 1.0
        + z * (1.0 / 3.0
            + z * (1.0 / 5.0
                + z * (1.0 / 7.0
                    + z * (1.0 / 9.0
                        + z * (1.0 / 11.0
                            + z * (1.0 / 13.0
                                + z * (1.0 / 15.0
                                    + z * (1.0 / 17.0
                                        + z * (1.0 / 19.0
                                            + z * (1.0 / 21.0 + z * (1.0 / 23.0)))))))))));
    let ef = e as f64;
    ef * LN2_HI + (ef * LN2_LO + 2.0 * s * p)
}

/// Round to nearest (ties to even) for |x| < 2^51 without a libm call (`f64::round` is a
/// call on baseline x86-64, which also blocks vectorisation).
#[inline(always)]
fn rint(x: f64) -> f64 {
    (x + RINT_MAGIC) - RINT_MAGIC
}

/// 1.5 · 2^52: x + this, for |x| < 2^51, is x rounded to an integer in the low bits.
const RINT_MAGIC: f64 = 6_755_399_441_055_744.0;

/// (sin 2πu, cos 2πu) for u ∈ [0, 1].
#[inline(always)]
pub fn sincos_tau(u: f64) -> (f64, f64) {
    // Reduce by whole turns and quarter turns exactly: t ∈ [−½, ½], r ∈ [−⅛, ⅛].
    let t = u - rint(u);
    // q = rint(4t), as `rint` computes it; q mod 4 is the low bits of `big` (an f64 →
    // i64 cast here was scalar code, a saturating conversion per lane).
    let big = 4.0 * t + RINT_MAGIC;
    let q = big - RINT_MAGIC;
    let r = t - 0.25 * q;
    // a = 2πr ∈ [−π/4, π/4]; TAU split so the product keeps full precision.
    #[allow(clippy::approx_constant)] // the high half of a split constant, on purpose
    const TAU_HI: f64 = 6.283_185_307_179_586;
    const TAU_LO: f64 = 2.449_293_598_294_706_4e-16;
    let a = r * TAU_HI + r * TAU_LO;
    let a2 = a * a;
    // Taylor series to a^17 / a^18: truncation error < (π/4)^19/19! ≈ 1e-19.
    let s = a
        * (1.0
            + a2 * (-1.0 / 6.0
                + a2 * (1.0 / 120.0
                    + a2 * (-1.0 / 5040.0
                        + a2 * (1.0 / 362_880.0
                            + a2 * (-1.0 / 39_916_800.0
                                + a2 * (1.0 / 6_227_020_800.0
                                    + a2 * (-1.0 / 1_307_674_368_000.0
                                        + a2 * (1.0 / 355_687_428_096_000.0)))))))));
    let c = 1.0
        + a2 * (-0.5
            + a2 * (1.0 / 24.0
                + a2 * (-1.0 / 720.0
                    + a2 * (1.0 / 40_320.0
                        + a2 * (-1.0 / 3_628_800.0
                            + a2 * (1.0 / 479_001_600.0
                                + a2 * (-1.0 / 87_178_291_200.0
                                    + a2 * (1.0 / 20_922_789_888_000.0
                                        + a2 * (-1.0 / 6_402_373_705_728_000.0)))))))));
    // Rotate by q quarter turns: q mod 4 = 0: (s, c), 1: (c, −s), 2: (−s, −c), 3: (−c, s).
    let qi = (big.to_bits() & 3) as i64;
    let swap = qi & 1 == 1;
    let (ss, cc) = if swap { (c, s) } else { (s, c) };
    let sin_neg = qi >= 2;
    let cos_neg = qi == 1 || qi == 2;
    (
        if sin_neg { -ss } else { ss },
        if cos_neg { -cc } else { cc },
    )
}

/// The float types of the branch-free `exp`, `tanh` and `sigmoid`: f64 (the reference)
/// and f32 (the `"precision": "f32"` mean-field CPU path). One body serves both; this
/// carries the constants of the range reduction and the series, and the bit operations.
pub trait ExpFloat:
    'static
    + Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    const LOG2E: Self;
    /// ln 2 = C1 + C2, C1 with few mantissa bits so n·C1 is exact (Cephes).
    const C1: Self;
    const C2: Self;
    /// 1.5 · 2^(mantissa bits): adding it rounds to an integer in the low bits.
    const MAGIC: Self;
    /// |x| beyond which `exp` clamps (2^n stays a normal number, no inf).
    const EXP_MAX: Self;
    /// |x| beyond which tanh rounds to ±1.
    const TANH_MAX: Self;
    const ONE: Self;
    const TWO: Self;
    /// Horner coefficients of (e^r − 1)/r, 1/k! from the highest k down to 1/1!: the
    /// Taylor series truncated below half an ulp for |r| ≤ ½ ln 2.
    const SERIES: &'static [Self];
    /// The integer n in the low mantissa bits of `big = x log2 e + MAGIC`.
    fn int_in(big: Self) -> i64;
    /// 2^n for n in the normal exponent range.
    fn pow2(n: i64) -> Self;
    fn abs(self) -> Self;
    fn copysign(self, sign: Self) -> Self;
}

/// 1/k! for k = 13 down to 1 (f64: truncation < 2^-56 relative).
const SERIES_F64: [f64; 13] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    1.0 / 2.0,
    1.0,
];

/// 1/k! for k = 7 down to 1 (f32: truncation < 2^-25 relative).
const SERIES_F32: [f32; 7] = [
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    1.0 / 2.0,
    1.0,
];

impl ExpFloat for f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const C1: f64 = 6.931_457_519_531_25e-1;
    const C2: f64 = 1.428_606_820_309_417_232_12e-6;
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    const EXP_MAX: f64 = 708.0;
    const TANH_MAX: f64 = 20.0;
    const ONE: f64 = 1.0;
    const TWO: f64 = 2.0;
    const SERIES: &'static [f64] = &SERIES_F64;
    #[inline(always)]
    fn int_in(big: f64) -> i64 {
        big.to_bits() as i64 - Self::MAGIC.to_bits() as i64
    }
    /// Exponent bits n + 1023 (n ∈ [−1022, 1022]).
    #[inline(always)]
    fn pow2(n: i64) -> f64 {
        f64::from_bits(((n + 1023) as u64) << 52)
    }
    #[inline(always)]
    fn abs(self) -> f64 {
        f64::abs(self)
    }
    #[inline(always)]
    fn copysign(self, sign: f64) -> f64 {
        f64::copysign(self, sign)
    }
}

impl ExpFloat for f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // C1 with 9 mantissa bits: n·C1 is exact for |n| < 2^15.
    #[allow(clippy::excessive_precision)] // 355/512, exact in f32
    const C1: f32 = 0.693_359_375;
    const C2: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    const EXP_MAX: f32 = 87.0;
    const TANH_MAX: f32 = 9.0;
    const ONE: f32 = 1.0;
    const TWO: f32 = 2.0;
    const SERIES: &'static [f32] = &SERIES_F32;
    #[inline(always)]
    fn int_in(big: f32) -> i64 {
        (big.to_bits() as i32 - Self::MAGIC.to_bits() as i32) as i64
    }
    /// Exponent bits n + 127 (n ∈ [−126, 126]).
    #[inline(always)]
    fn pow2(n: i64) -> f32 {
        f32::from_bits(((n as i32 + 127) as u32) << 23)
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::abs(self)
    }
    #[inline(always)]
    fn copysign(self, sign: f32) -> f32 {
        f32::copysign(self, sign)
    }
}

/// `(2^n, e^r − 1)` with `x = n ln 2 + r`, |r| ≤ ½ ln 2, for x clamped to ±`EXP_MAX`
/// (NaN stays NaN): Cody–Waite reduction, then the Taylor series of e^r − 1
/// (`SERIES`), no division.
#[inline(always)]
fn exp_parts<F: ExpFloat>(x: F) -> (F, F) {
    // NaN-preserving clamp (comparisons with NaN are false).
    let x = if x < -F::EXP_MAX {
        -F::EXP_MAX
    } else if x > F::EXP_MAX {
        F::EXP_MAX
    } else {
        x
    };
    // n = rint(x log2 e), and its integer from the same sum's low mantissa bits.
    let big = x * F::LOG2E + F::MAGIC;
    let n = big - F::MAGIC;
    let ni = F::int_in(big);
    let r = (x - n * F::C1) - n * F::C2;
    // Horner (a constant-length loop LLVM unrolls; kept flat because rustfmt stalls on
    // deeply nested expressions).
    let mut q = F::SERIES[0];
    for c in &F::SERIES[1..] {
        q = q * r + *c;
    }
    let p = r * q;
    (F::pow2(ni), p)
}

/// e^x for every x (NaN stays NaN; below −EXP_MAX the result is e^−EXP_MAX ≈ 3e−308 in
/// f64, above EXP_MAX it is e^EXP_MAX, so callers clamp nothing and never see inf).
#[inline(always)]
pub fn exp<F: ExpFloat>(x: F) -> F {
    let (scale, p) = exp_parts(x);
    scale * p + scale
}

/// tanh x = ±m/(m + 2) with m = e^{2|x|} − 1 ≥ 0, computed as 2^n (e^r − 1) + (2^n − 1)
/// (exact parts, no cancellation anywhere); one division.
#[inline(always)]
pub fn tanh<F: ExpFloat>(x: F) -> F {
    // tanh(TANH_MAX) rounds to 1, so larger |x| change nothing; the clamp keeps NaN.
    let ax = x.abs();
    let al = if ax > F::TANH_MAX { F::TANH_MAX } else { ax };
    let (scale, p) = exp_parts(F::TWO * al);
    let m = scale * p + (scale - F::ONE);
    (m / (m + F::TWO)).copysign(x)
}

/// The logistic function 1/(1 + e^{−x}).
#[inline(always)]
pub fn sigmoid<F: ExpFloat>(x: F) -> F {
    F::ONE / (F::ONE + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        (a - b).abs() / (b.abs().max(1e-300) * f64::EPSILON)
    }

    #[test]
    fn ln_within_two_ulp_of_std() {
        let mut worst: f64 = 0.0;
        for i in 1..200_000u32 {
            let u = crate::rng::uniform(i.wrapping_mul(2_654_435_761));
            worst = worst.max(ulps(ln(u), u.ln()));
        }
        for x in [
            1e-300,
            2.9802322387695312e-8,
            0.5,
            0.7071067811865476,
            0.9999999701976776,
            1.0,
            3.0,
            1e300,
        ] {
            assert!(
                ulps(ln(x), x.ln()) <= 2.0 || (ln(x) - x.ln()).abs() < 1e-16,
                "ln({x})"
            );
        }
        assert!(worst <= 2.0, "worst {worst} ulp");
    }

    #[test]
    fn sincos_tau_matches_std_to_1e_15() {
        let mut worst: f64 = 0.0;
        for i in 0..200_000u32 {
            let u = crate::rng::uniform(i.wrapping_mul(2_654_435_761));
            let (s, c) = sincos_tau(u);
            let (s0, c0) = (std::f64::consts::TAU * u).sin_cos();
            worst = worst.max((s - s0).abs()).max((c - c0).abs());
        }
        // std's argument 2πu is itself rounded (≤ 2^-50 absolute), so compare absolutely.
        assert!(worst < 2e-15, "worst {worst}");
        for (u, s, c) in [
            (0.0, 0.0, 1.0),
            (0.25, 1.0, 0.0),
            (0.5, 0.0, -1.0),
            (0.75, -1.0, 0.0),
            (1.0, 0.0, 1.0),
        ] {
            let (ss, cc) = sincos_tau(u);
            assert!(
                (ss - s).abs() < 1e-15 && (cc - c).abs() < 1e-15,
                "u={u}: {ss} {cc}"
            );
        }
    }

    #[test]
    fn exp_tanh_sigmoid_within_a_few_ulp_of_std() {
        let (mut we, mut wt, mut ws) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..400_000u32 {
            let u = crate::rng::uniform(i.wrapping_mul(2_654_435_761));
            // Arguments spread over [−40, 40], denser near 0, and tiny ones.
            let x = (u - 0.5)
                * if i % 3 == 0 {
                    80.0
                } else if i % 3 == 1 {
                    4.0
                } else {
                    1e-6
                };
            we = we.max(ulps(exp(x), x.exp()));
            wt = wt.max(ulps(tanh(x), x.tanh()));
            ws = ws.max(ulps(sigmoid(x), 1.0 / (1.0 + (-x).exp())));
        }
        assert!(we <= 2.0, "exp: worst {we} ulp");
        assert!(wt <= 3.0, "tanh: worst {wt} ulp");
        assert!(ws <= 3.0, "sigmoid: worst {ws} ulp");
        for x in [
            0.0,
            -0.0,
            0.625,
            -0.625,
            0.624_999_999_999_999_9,
            19.0,
            25.0,
            -1e300,
            1e300,
        ] {
            assert!(
                ulps(tanh(x), x.tanh()) <= 3.0,
                "tanh({x}) = {} vs {}",
                tanh(x),
                x.tanh()
            );
        }
        assert!(tanh(f64::NAN).is_nan() && exp(f64::NAN).is_nan() && sigmoid(f64::NAN).is_nan());
        assert_eq!(tanh(-0.0f64).to_bits(), (-0.0f64).to_bits());
        assert!((exp(700.0) / 700f64.exp() - 1.0).abs() < 4e-16);
        assert!((exp(-700.0) / (-700f64).exp() - 1.0).abs() < 4e-16);
    }

    #[test]
    fn f32_exp_tanh_sigmoid_within_a_few_f32_ulp() {
        // ulps in f32 units, against the f64 functions (accurate to 1e-16).
        let ulp32 =
            |a: f32, b: f64| (a as f64 - b).abs() / (b.abs().max(1e-37) * f32::EPSILON as f64);
        let (mut we, mut wt, mut ws) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..400_000u32 {
            let u = crate::rng::uniform(i.wrapping_mul(2_654_435_761));
            let x = ((u - 0.5)
                * if i % 3 == 0 {
                    160.0
                } else if i % 3 == 1 {
                    4.0
                } else {
                    1e-6
                }) as f32;
            let xd = x as f64;
            if xd.abs() < 87.0 {
                we = we.max(ulp32(exp::<f32>(x), xd.exp()));
            }
            wt = wt.max(ulp32(tanh::<f32>(x), xd.tanh()));
            ws = ws.max(ulp32(sigmoid::<f32>(x), 1.0 / (1.0 + (-xd).exp())));
        }
        assert!(we <= 3.0, "exp_f32: worst {we} ulp");
        assert!(wt <= 4.0, "tanh_f32: worst {wt} ulp");
        assert!(ws <= 4.0, "sigmoid_f32: worst {ws} ulp");
        assert!(tanh::<f32>(f32::NAN).is_nan() && sigmoid::<f32>(f32::NAN).is_nan());
        assert_eq!(tanh::<f32>(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh::<f32>(1e30), 1.0);
        assert_eq!(sigmoid::<f32>(-1e30), 1.0 / (1.0 + exp::<f32>(87.0)));
    }
}
