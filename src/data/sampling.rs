//! Which samples a minibatch uses. Both schemes are stateless functions of the Philox
//! counter (replica, step, draw), so the GPU computes the same indices without storing
//! a permutation per replica.
//!
//! - `Replacement` (DESIGN §2 default): draw j of step k is `index_below(u, N)` with u
//!   lane j % 4 of `philox((replica, k, j / 4, tag))`.
//! - `Epochs` (without replacement, reshuffled every epoch): the sample stream of a
//!   replica is the concatenation of permutations π_e of 0..N, position p = k·b + j
//!   being `π_{p / N}(p mod N)`. π_e is a 4-round balanced Feistel network on
//!   2·h bits (2^{2h} ≥ N) keyed by (replica, epoch, tag), restricted to 0..N by
//!   cycle walking — a bijection, so every epoch visits every sample exactly once.

use crate::rng::{index_below, philox4x32_10, philox4x32_10_lanes};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    #[default]
    Replacement,
    Epochs,
}

impl Sampling {
    /// The default (configs leave it out of their echo, so outputs of configs that do
    /// not name it are as before).
    pub fn is_replacement(&self) -> bool {
        *self == Sampling::Replacement
    }

    /// Loop iterations one index draw may take in a shader (the Feistel network's 4
    /// rounds, times its cycle walks, which stay few: 4^h < 4N), for the loop guard.
    pub fn loop_iterations(self) -> u64 {
        match self {
            Sampling::Replacement => 1,
            Sampling::Epochs => 64,
        }
    }
}

pub const FEISTEL_ROUNDS: u32 = 4;

/// Half-width h (bits) of the Feistel network for a set of n samples: 4^h ≥ n.
pub fn feistel_half_bits(n: u32) -> u32 {
    let mut h = 1;
    while (1u64 << (2 * h)) < n as u64 {
        h += 1;
    }
    h
}

/// π_{(replica, epoch)}(pos) for pos < n.
pub fn permute(key: [u32; 2], tag: u32, replica: u32, epoch: u32, pos: u32, n: u32) -> u32 {
    let h = feistel_half_bits(n);
    let mask = (1u32 << h) - 1;
    let mut v = pos;
    loop {
        let (mut l, mut r) = (v >> h, v & mask);
        for round in 0..FEISTEL_ROUNDS {
            let f = philox4x32_10([replica, epoch, r | (round << 16), tag ^ 0x5EED_0000], key)[0];
            let nl = r;
            r = l ^ (f & mask);
            l = nl;
        }
        v = (l << h) | r;
        if v < n {
            return v;
        }
    }
}

/// Index of draw j (< b) of step k for one replica.
#[allow(clippy::too_many_arguments)]
pub fn sample_index(
    sampling: Sampling,
    key: [u32; 2],
    tag: u32,
    replica: u32,
    k: u32,
    j: u32,
    b: u32,
    n: u32,
) -> u32 {
    match sampling {
        Sampling::Replacement => {
            let u = philox4x32_10([replica, k, j / 4, tag], key)[(j % 4) as usize];
            index_below(u, n)
        }
        Sampling::Epochs => {
            let p = k * b + j;
            permute(key, tag, replica, p / n, p % n, n)
        }
    }
}

/// Lanes per vectorised Philox call in `batch_indices`.
const IDX_LANES: usize = 8;

/// `sample_index` of every draw j < b of step k for `width` consecutive replicas
/// `first, first + 1, …` (wrapping), into `out[j * width + l]`: the same bits, with
/// each Philox block computed once (its 4 words are 4 draws) and 8 replicas per
/// vectorised Philox call.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn batch_indices(
    sampling: Sampling,
    key: [u32; 2],
    tag: u32,
    first: u32,
    width: usize,
    k: u32,
    b: u32,
    n: u32,
    out: &mut [u32],
) {
    if sampling == Sampling::Epochs || width == 1 {
        for j in 0..b {
            for l in 0..width {
                let r = first.wrapping_add(l as u32);
                out[j as usize * width + l] = sample_index(sampling, key, tag, r, k, j, b, n);
            }
        }
        return;
    }
    for l0 in (0..width).step_by(IDX_LANES) {
        for q in 0..b.div_ceil(4) {
            let mut c = [[0u32; IDX_LANES]; 4];
            for i in 0..IDX_LANES {
                c[0][i] = first.wrapping_add((l0 + i) as u32);
            }
            c[1] = [k; IDX_LANES];
            c[2] = [q; IDX_LANES];
            c[3] = [tag; IDX_LANES];
            philox4x32_10_lanes(&mut c, key);
            for j in 4 * q..(4 * q + 4).min(b) {
                let words = &c[(j % 4) as usize];
                for i in 0..IDX_LANES.min(width - l0) {
                    out[j as usize * width + l0 + i] = index_below(words[i], n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_indices_are_sample_index_per_replica() {
        let key = [7, 8];
        for sampling in [Sampling::Replacement, Sampling::Epochs] {
            for width in [1usize, 8, 16] {
                for b in [1u32, 3, 4, 10] {
                    let first = u32::MAX - 5; // wraps inside the group
                    let mut out = vec![0; b as usize * width];
                    batch_indices(sampling, key, 11, first, width, 9, b, 1000, &mut out);
                    for j in 0..b {
                        for l in 0..width {
                            let r = first.wrapping_add(l as u32);
                            let want = sample_index(sampling, key, 11, r, 9, j, b, 1000);
                            assert_eq!(
                                out[j as usize * width + l],
                                want,
                                "{sampling:?} w{width} b{b}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_epoch_is_a_permutation_and_epochs_differ() {
        let key = [3, 4];
        for n in [1u32, 2, 7, 20, 64, 1000] {
            let mut prev = Vec::new();
            for epoch in 0..3 {
                let mut seen: Vec<u32> = (0..n).map(|p| permute(key, 9, 5, epoch, p, n)).collect();
                let order = seen.clone();
                seen.sort();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n {n} epoch {epoch}");
                if n >= 20 {
                    assert_ne!(
                        order, prev,
                        "n {n}: epoch {epoch} repeats the previous order"
                    );
                }
                prev = order;
            }
        }
    }

    #[test]
    fn epoch_positions_are_uniform() {
        // Where sample 0 lands over 4000 (replica, epoch) keys: a χ² test over n = 10
        // positions at the 99.9% level (χ²_9 quantile 27.9).
        let n = 10u32;
        let mut counts = vec![0f64; n as usize];
        for r in 0..400 {
            for e in 0..10 {
                let pos = (0..n)
                    .find(|&p| permute([1, 2], 0, r, e, p, n) == 0)
                    .unwrap();
                counts[pos as usize] += 1.0;
            }
        }
        let exp = 4000.0 / n as f64;
        let chi2: f64 = counts.iter().map(|c| (c - exp) * (c - exp) / exp).sum();
        assert!(chi2 < 27.9, "χ² = {chi2}, counts {counts:?}");
    }
}
