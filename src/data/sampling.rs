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

use crate::rng::{index_below, philox4x32_10};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    Replacement,
    Epochs,
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

#[cfg(test)]
mod tests {
    use super::*;

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
