//! Standard normals in f32 from the same Philox bits as the f64 reference: the CPU's
//! `"precision": "f32"` option (fast, not the reference).
//!
//! The formulas are those of the GPU's f32 path (`shaders/rng/philox.wgsl`): the
//! uniform of u1 carried as hi + lo (it needs 25 bits), −ln u1 as 2 atanh(t / (2 − t))
//! with t = 1 − hi for hi > ¾ (accurate near 1), and the angle as 2π(u2 − ½), exact in
//! f32, with (cos, sin) 2πu2 = −(cos, sin) 2π(u2 − ½). Where the GPU calls its native
//! log, cos and sin, this file has branch-free polynomials (so a lane group vectorises),
//! each accurate to about an f32 ulp. Normal j of a step is therefore the f64
//! reference's normal j to f32 rounding (~1e-7 relative), path by path.

/// 2^-24 and 2^-25: the uniform's grid and its half-offset.
const GRID: f32 = 5.960_464_5e-8;
const HALF_GRID: f32 = 2.980_232_2e-8;

/// ln x for normal f32 x > 0: x = 2^e m, m ∈ [√½, √2), ln m = 2 atanh(s), s = (m−1)/(m+1).
#[inline(always)]
fn ln(x: f32) -> f32 {
    // ln 2 split so that e · LN2_HI is exact for |e| < 2^9.
    #[allow(clippy::excessive_precision)] // 0x3F317200, exact in f32
    const LN2_HI: f32 = 0.693_145_751_953_125;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    m = if big { 0.5 * m } else { m };
    e += big as i32;
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // |s| ≤ 0.1716: the series to z⁴/9 leaves z⁵/11 < 3e-9 relative.
    let p = 1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0))));
    let ef = e as f32;
    ef * LN2_HI + (ef * LN2_LO + 2.0 * s * p)
}

/// −ln(uniform(u)) (`rng::uniform`), accurate near u = 1 as well.
#[inline(always)]
fn neg_log_uniform(u: u32) -> f32 {
    let a = (u >> 8) as f32 * GRID; // exact
    let hi = a + HALF_GRID; // rounded for a ≥ ½ ...
    let lo = HALF_GRID - (hi - a); // ... and its rounding error, exactly
                                   // Near 1: t = 1 − hi exactly, ln(1 − t) = −2 atanh(t / (2 − t)), z ≤ 1/7.
    let t = 1.0 - hi;
    let z = t / (2.0 - t);
    let z2 = z * z;
    let near_one = 2.0
        * z
        * (1.0
            + z2 * (1.0 / 3.0
                + z2 * (1.0 / 5.0
                    + z2 * (1.0 / 7.0
                        + z2 * (1.0 / 9.0 + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0)))))));
    let body = if hi > 0.75 { near_one } else { -ln(hi) };
    body - lo / hi
}

/// uniform(u) − ½, exactly: (2 (u >> 8) + 1 − 2^24) 2^-25.
#[inline(always)]
fn centred_uniform(u: u32) -> f32 {
    (((u >> 8) * 2 + 1) as i32 - 16_777_216) as f32 * HALF_GRID
}

/// (sin 2πc, cos 2πc) for c ∈ [−½, ½]: reduced by quarter turns exactly, then Taylor
/// series on [−π/4, π/4] (truncation < 2e-9).
#[inline(always)]
fn sincos_turns(c: f32) -> (f32, f32) {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: (x + MAGIC) − MAGIC rounds x
    let big = 4.0 * c + MAGIC;
    let q = big - MAGIC;
    let r = c - 0.25 * q; // exact: c is a multiple of 2^-25, |r| ≤ ⅛
    #[allow(clippy::approx_constant, clippy::excessive_precision)]
    const TAU_HI: f32 = 6.283_185_5;
    const TAU_LO: f32 = -1.748_455_5e-7;
    let a = r * TAU_HI + r * TAU_LO;
    let a2 = a * a;
    let s = a
        * (1.0
            + a2 * (-1.0 / 6.0
                + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0 + a2 * (1.0 / 362_880.0)))));
    let co = 1.0
        + a2 * (-0.5
            + a2 * (1.0 / 24.0
                + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40_320.0 + a2 * (-1.0 / 3_628_800.0)))));
    // Rotate by q quarter turns (as `math::sincos_tau`).
    // q mod 4 from the low bits of `big` (as `math::sincos_tau`; no float → int cast).
    let qi = (big.to_bits() & 3) as i32;
    let (ss, cc) = if qi & 1 == 1 { (co, s) } else { (s, co) };
    (
        if qi >= 2 { -ss } else { ss },
        if qi == 1 || qi == 2 { -cc } else { cc },
    )
}

/// Box–Muller on the bits (b1, b2): (r cos 2πu2, r sin 2πu2), r = √(−2 ln u1), in f32.
#[inline(always)]
pub fn box_muller_bits(b1: u32, b2: u32) -> (f32, f32) {
    let r = (2.0 * neg_log_uniform(b1)).sqrt();
    let (s, c) = sincos_turns(centred_uniform(b2));
    (-r * c, -r * s)
}

/// The four f32 normals of one Philox block (`rng::normals4` in f32).
pub fn normals4(ctr: [u32; 4], key: [u32; 2]) -> [f32; 4] {
    let u = super::philox4x32_10(ctr, key);
    let (a, b) = box_muller_bits(u[0], u[1]);
    let (c, d) = box_muller_bits(u[2], u[3]);
    [a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f32 normal is the f64 reference's to a few f32 ulps, over Philox blocks
    /// and over the edge bits (u1 near 0 and 1, u2 at every quarter turn).
    #[test]
    fn f32_normals_follow_the_f64_reference() {
        let key = super::super::key_from_seed(0xF32_5EED);
        let mut worst: f64 = 0.0;
        let mut check = |got: f32, want: f64| {
            let err = (got as f64 - want).abs() / want.abs().max(1e-3);
            worst = worst.max(err);
        };
        for i in 0..20_000u32 {
            let f = normals4([i, 7, 0, 3], key);
            let d = super::super::normals4([i, 7, 0, 3], key);
            for j in 0..4 {
                check(f[j], d[j]);
            }
        }
        let edges = [
            0u32,
            1 << 8,
            255,
            0x8000_0000,
            0xBFFF_FF00,
            0xC000_0000,
            u32::MAX - 256,
        ];
        let quarters = [
            0u32,
            0x4000_0000,
            0x8000_0000,
            0xC000_0000,
            0x2000_0000,
            0xE000_0000,
        ];
        for &b1 in &edges {
            for &b2 in quarters.iter().chain(&edges) {
                let (a, b) = box_muller_bits(b1, b2);
                let (x, y) =
                    super::super::box_muller(super::super::uniform(b1), super::super::uniform(b2));
                check(a, x);
                check(b, y);
            }
        }
        assert!(worst < 1e-6, "worst relative error {worst:e}");
    }
}
