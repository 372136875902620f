//! Exact, order-independent summation of f64 values (a small "superaccumulator").
//!
//! Why not Welford + Chan as DESIGN §7 sketches: floating-point merges depend on the
//! order in which chunks, threads and shards are combined, so "same config and seed
//! give the same numbers whatever the chunk size, thread count or sharding" would only
//! hold to rounding. Summing exactly makes every merge order give bit-identical sums;
//! moments are formed from the (shifted) exact sums at the very end, in f64.
//!
//! Representation: v = m · 2^e with a 53-bit integer m and e ∈ [−1074, 971]; with
//! u = e + 1074, m·2^(u mod 64) is added to the i128 bucket u / 64 (weight 2^(64·i −
//! 1074)). Carries are propagated every `NORMALIZE_EVERY` additions so no bucket can
//! overflow; after normalisation every bucket but the top one lies in [0, 2^64), which
//! makes the state canonical.

use serde::{Deserialize, Serialize};

const BUCKETS: usize = 33;
const NORMALIZE_EVERY: u32 = 1 << 9;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactSum {
    b: [i128; BUCKETS],
    pending: u32,
    /// Set when a non-finite value was offered: the sum is then meaningless.
    pub poisoned: bool,
}

impl Default for ExactSum {
    fn default() -> Self {
        Self {
            b: [0; BUCKETS],
            pending: 0,
            poisoned: false,
        }
    }
}

impl ExactSum {
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            self.poisoned = true;
            return;
        }
        if v == 0.0 {
            return;
        }
        let bits = v.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), exp - 1075)
        };
        let u = (e + 1074) as usize;
        let term = (m as i128) << (u % 64);
        if bits >> 63 == 1 {
            self.b[u / 64] -= term;
        } else {
            self.b[u / 64] += term;
        }
        self.pending += 1;
        if self.pending >= NORMALIZE_EVERY {
            self.normalize();
        }
    }

    pub fn merge(&mut self, other: &ExactSum) {
        let mut o = other.clone();
        o.normalize();
        self.normalize();
        for (a, b) in self.b.iter_mut().zip(o.b.iter()) {
            *a += *b;
        }
        self.poisoned |= other.poisoned;
        self.normalize();
    }

    fn normalize(&mut self) {
        for i in 0..BUCKETS - 1 {
            let carry = self.b[i] >> 64;
            self.b[i] -= carry << 64;
            self.b[i + 1] += carry;
        }
        self.pending = 0;
    }

    /// The sum rounded to f64 (deterministic: computed from the canonical state).
    pub fn value(&self) -> f64 {
        if self.poisoned {
            return f64::NAN;
        }
        let mut s = self.clone();
        s.normalize();
        // Canonical form keeps buckets 0..top in [0, 2^64) and the sign in the top
        // bucket; a negative total would cancel catastrophically below, so sum |total|.
        if s.b[BUCKETS - 1] < 0 {
            s.b.iter_mut().for_each(|v| *v = -*v);
            s.normalize();
            return -s.magnitude();
        }
        s.magnitude()
    }

    /// Value of a normalised, non-negative sum.
    fn magnitude(&self) -> f64 {
        let s = self;
        let mut total = 0.0;
        for i in (0..BUCKETS).rev() {
            if s.b[i] != 0 {
                let hi = (s.b[i] >> 64) as f64 * 2f64.powi(64);
                let lo = (s.b[i] & ((1i128 << 64) - 1)) as f64;
                total += (hi + lo) * 2f64.powi(64 * i as i32 - 1074);
            }
        }
        total
    }

    /// Compact serialisable form (non-zero buckets as decimal strings).
    pub fn to_parts(&self) -> ExactSumParts {
        let mut s = self.clone();
        s.normalize();
        ExactSumParts {
            buckets: s
                .b
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0)
                .map(|(i, v)| (i, v.to_string()))
                .collect(),
            poisoned: s.poisoned,
        }
    }

    pub fn from_parts(p: &ExactSumParts) -> Result<Self, String> {
        let mut s = ExactSum {
            poisoned: p.poisoned,
            ..Default::default()
        };
        for (i, v) in &p.buckets {
            let slot =
                s.b.get_mut(*i)
                    .ok_or_else(|| format!("bucket index {i} out of range"))?;
            *slot = v
                .parse()
                .map_err(|e| format!("bad bucket value {v:?}: {e}"))?;
        }
        Ok(s)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExactSumParts {
    pub buckets: Vec<(usize, String)>,
    pub poisoned: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_where_naive_summation_loses_digits() {
        let mut s = ExactSum::default();
        for v in [1e20, 1.0, -1e20, 1e-300, 3.5] {
            s.add(v);
        }
        assert_eq!(s.value(), 4.5); // naive f64: 3.5
    }

    #[test]
    fn order_and_grouping_do_not_matter() {
        let vals: Vec<f64> = (0..5000)
            .map(|i| ((i as f64) * 0.7311).sin() * 10f64.powi(i % 17 - 8))
            .collect();
        let mut a = ExactSum::default();
        vals.iter().for_each(|v| a.add(*v));
        let mut parts: Vec<ExactSum> = vec![ExactSum::default(); 7];
        for (i, v) in vals.iter().rev().enumerate() {
            parts[i % 7].add(*v);
        }
        let mut b = ExactSum::default();
        parts.iter().rev().for_each(|p| b.merge(p));
        assert_eq!(a.value().to_bits(), b.value().to_bits());
        assert_eq!(
            ExactSum::from_parts(&a.to_parts()).unwrap().value(),
            a.value()
        );
    }

    #[test]
    fn subnormals_negatives_and_poison() {
        let mut s = ExactSum::default();
        s.add(f64::from_bits(1));
        s.add(-f64::from_bits(1));
        s.add(-2.25);
        assert_eq!(s.value(), -2.25);
        let mut t = ExactSum::default();
        t.add(-1.0);
        t.add(0.5);
        assert_eq!(t.value(), -0.5);
        t.add(1e-13);
        t.add(-3e-13);
        assert_eq!(t.value(), -0.5 - 2e-13);
        s.add(f64::NAN);
        assert!(s.value().is_nan());
    }
}
