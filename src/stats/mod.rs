//! Statistics: exact mergeable sums, per-point moments, weak errors and order fits.

pub mod exact_sum;
pub mod fit;
pub mod moments;

pub use moments::{merge_each, Moments, MomentsParts};

/// Upper 95% bound of |x| from an estimate `mean ± se` of x (normal approximation): how
/// large a solver's error may be, held against a tenth of the weak error it would bias.
pub fn upper_bound_95(mean: f64, se: f64) -> f64 {
    mean.abs() + 1.96 * se
}
