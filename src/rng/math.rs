//! Branch-free f64 `ln` and `sincos(2πu)` for Box–Muller, written so that loops over
//! independent draws vectorise (no libm calls, no data-dependent branches).
//!
//! Why not std: glibc's `log`/`sincos` are scalar calls that cost most of a CPU path
//! step; these are accurate to a few ulp on the arguments Box–Muller needs (u ∈ (0, 1))
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
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    (x + MAGIC) - MAGIC
}

/// (sin 2πu, cos 2πu) for u ∈ [0, 1].
#[inline(always)]
pub fn sincos_tau(u: f64) -> (f64, f64) {
    // Reduce by whole turns and quarter turns exactly: t ∈ [−½, ½], r ∈ [−⅛, ⅛].
    let t = u - rint(u);
    let q = rint(4.0 * t);
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
    let qi = (q as i64) & 3;
    let swap = qi & 1 == 1;
    let (ss, cc) = if swap { (c, s) } else { (s, c) };
    let sin_neg = qi >= 2;
    let cos_neg = qi == 1 || qi == 2;
    (
        if sin_neg { -ss } else { ss },
        if cos_neg { -cc } else { cc },
    )
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
}
