//! Philox4x32-10 (Salmon et al., SC'11) and the counter layout of DESIGN §6.
//!
//! The WGSL twin lives in `shaders/rng/philox.wgsl`; both are checked against the
//! Random123 known-answer vectors (`tests/philox_kat.rs`).
//!
//! Counter layout: `(replica, step, block, stream)`. One Philox call gives four u32,
//! hence four uniforms and four normals (two Box–Muller pairs). Normal number `j` of a
//! step lives in block `j / 4`, lane `j % 4`. The key is the run's 64-bit seed.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds.
#[inline]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = (M0 as u64) * (c[0] as u64);
        let p1 = (M1 as u64) * (c[2] as u64);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Splits the run's 64-bit seed into the Philox key.
pub fn key_from_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// u32 → uniform in (0, 1): `(u >> 8) * 2^-24 + 2^-25` (exact in f32 and f64).
#[inline]
pub fn uniform(u: u32) -> f64 {
    (u >> 8) as f64 * (1.0 / 16_777_216.0) + (1.0 / 33_554_432.0)
}

/// Index in [0, n) by multiply-high: `(u * n) >> 32`.
#[inline]
pub fn index_below(u: u32, n: u32) -> u32 {
    (((u as u64) * (n as u64)) >> 32) as u32
}

/// Box–Muller on the uniform pair (u1, u2): two standard normals.
#[inline]
pub fn box_muller(u1: f64, u2: f64) -> (f64, f64) {
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
    (r * c, r * s)
}

/// The four normals of one Philox block.
#[inline]
pub fn normals4(ctr: [u32; 4], key: [u32; 2]) -> [f64; 4] {
    let u = philox4x32_10(ctr, key);
    let (a, b) = box_muller(uniform(u[0]), uniform(u[1]));
    let (c, d) = box_muller(uniform(u[2]), uniform(u[3]));
    [a, b, c, d]
}

/// Normals of one (replica, step, stream): `normal(j)` is normal number `j` of the step.
/// Caches the current block's four u32 and converts each Box–Muller pair only when one
/// of its normals is asked for (a batch of 2 in 1-D costs one Philox call and one pair).
pub struct StepNormals {
    key: [u32; 2],
    replica: u32,
    step: u32,
    stream: u32,
    block: u32,
    bits: [u32; 4],
    /// Which pairs of `cache` are filled (bit 0: lanes 0–1, bit 1: lanes 2–3).
    filled: u8,
    cache: [f64; 4],
}

impl StepNormals {
    pub fn new(key: [u32; 2], replica: u32, step: u32, stream: u32) -> Self {
        let bits = philox4x32_10([replica, step, 0, stream], key);
        Self { key, replica, step, stream, block: 0, bits, filled: 0, cache: [0.0; 4] }
    }

    #[inline]
    pub fn normal(&mut self, j: u32) -> f64 {
        let block = j >> 2;
        if block != self.block {
            self.block = block;
            self.bits = philox4x32_10([self.replica, self.step, block, self.stream], self.key);
            self.filled = 0;
        }
        let lane = (j & 3) as usize;
        let pair = lane >> 1;
        if self.filled & (1 << pair) == 0 {
            let (a, b) = box_muller(uniform(self.bits[2 * pair]), uniform(self.bits[2 * pair + 1]));
            self.cache[2 * pair] = a;
            self.cache[2 * pair + 1] = b;
            self.filled |= 1 << pair;
        }
        self.cache[lane]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_is_open_interval() {
        assert!(uniform(0) > 0.0);
        assert!(uniform(u32::MAX) < 1.0);
        assert_eq!(uniform(0), 2f64.powi(-25));
    }

    #[test]
    fn index_below_covers_range() {
        assert_eq!(index_below(0, 10), 0);
        assert_eq!(index_below(u32::MAX, 10), 9);
    }
}
