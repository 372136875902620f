//! Mergeable Monte Carlo statistics of one (run, checkpoint, observable).
//!
//! Values enter shifted by a per-observable constant (its value at the initial state)
//! so that f32 partial sums on the GPU and the final variance do not suffer from
//! cancellation; sums are exact (`ExactSum`), so merging chunks, backends' partials and
//! shards in any order gives bit-identical results.

use super::exact_sum::{ExactSum, ExactSumParts};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Moments {
    /// Paths that reached the checkpoint without diverging.
    pub count: u64,
    /// Paths excluded because they diverged (non-finite or beyond the bound).
    pub diverged: u64,
    /// Σ (v − shift), Σ (v − shift)²: the observable (or its extrapolated value).
    pub s1: ExactSum,
    pub s2: ExactSum,
    /// Σ e, Σ e²: the per-path solver-error estimate (zero where there is none).
    pub e1: ExactSum,
    pub e2: ExactSum,
}

impl Moments {
    /// Adds one path's shifted value y = v − shift and solver-error estimate e.
    #[inline]
    pub fn add_path(&mut self, y: f64, e: f64) {
        self.count += 1;
        self.s1.add(y);
        self.s2.add(y * y);
        if e != 0.0 {
            self.e1.add(e);
            self.e2.add(e * e);
        }
    }

    /// Adds a block partial (e.g. one GPU workgroup): n paths with the given sums.
    pub fn add_partial(&mut self, n: u64, s1: f64, s2: f64, e1: f64, e2: f64) {
        self.count += n;
        self.s1.add(s1);
        self.s2.add(s2);
        self.e1.add(e1);
        self.e2.add(e2);
    }

    pub fn merge(&mut self, o: &Moments) {
        self.count += o.count;
        self.diverged += o.diverged;
        self.s1.merge(&o.s1);
        self.s2.merge(&o.s2);
        self.e1.merge(&o.e1);
        self.e2.merge(&o.e2);
    }

    /// Sample mean (of v − shift) and its standard error.
    pub fn mean_se(&self) -> (f64, f64) {
        mean_se(self.count, self.s1.value(), self.s2.value())
    }

    /// Mean of the solver-error estimate and its standard error.
    pub fn solver_error(&self) -> (f64, f64) {
        mean_se(self.count, self.e1.value(), self.e2.value())
    }

    pub fn to_parts(&self) -> MomentsParts {
        MomentsParts {
            count: self.count,
            diverged: self.diverged,
            sums: [
                self.s1.to_parts(),
                self.s2.to_parts(),
                self.e1.to_parts(),
                self.e2.to_parts(),
            ],
        }
    }

    pub fn from_parts(p: &MomentsParts) -> Result<Self, String> {
        Ok(Moments {
            count: p.count,
            diverged: p.diverged,
            s1: ExactSum::from_parts(&p.sums[0])?,
            s2: ExactSum::from_parts(&p.sums[1])?,
            e1: ExactSum::from_parts(&p.sums[2])?,
            e2: ExactSum::from_parts(&p.sums[3])?,
        })
    }
}

fn mean_se(n: u64, s1: f64, s2: f64) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let nf = n as f64;
    let mean = s1 / nf;
    if n < 2 {
        return (mean, 0.0);
    }
    let var = ((s2 - s1 * mean) / (nf - 1.0)).max(0.0);
    (mean, (var / nf).sqrt())
}

/// Merges `other` into `acc` statistic by statistic (chunks, threads, batches, shards):
/// exact sums, so the result is the same in any order.
pub fn merge_each(acc: &mut [Moments], other: &[Moments]) {
    acc.iter_mut().zip(other).for_each(|(a, o)| a.merge(o));
}

/// Serialisable exact state, written by `--shard` runs and read by `smflow merge`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MomentsParts {
    pub count: u64,
    pub diverged: u64,
    pub sums: [ExactSumParts; 4],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_standard_error_of_known_sample() {
        let mut m = Moments::default();
        for v in [1.0, 2.0, 3.0, 4.0] {
            m.add_path(v, 0.0);
        }
        let (mean, se) = m.mean_se();
        assert_eq!(mean, 2.5);
        // sample variance 5/3, se = sqrt(5/12)
        assert!((se - (5.0f64 / 12.0).sqrt()).abs() < 1e-15);
    }
}
