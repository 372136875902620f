//! Statistics: exact mergeable sums, per-point moments, weak errors and order fits.

pub mod exact_sum;
pub mod fit;
pub mod moments;

pub use moments::{Moments, MomentsParts};
