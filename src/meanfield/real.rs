//! The float type of the CPU mean-field drift: `f64` (the reference, the default on the
//! CPU) or `f32` (`"precision": "f32"`, for speed: half the memory traffic, twice the
//! SIMD lanes; like the GPU's f32, not the reference). One generic code path serves
//! both; this trait carries what differs: the conversions and the branch-free σ of
//! `math`.
//!
//! What stays f64 whatever the precision: the random numbers and batches (`fill_batch`
//! draws in f64 and rounds once), the initial neurons (rounded once), and the
//! observables (computed in f64 from the neurons).

use crate::backend::Precision;
use num_traits::Float;
use std::iter::Sum;
use std::ops::{AddAssign, MulAssign, SubAssign};

pub trait Real:
    crate::solver::AddScaled
    + Float
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + Default
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    const PRECISION: Precision;
    /// `x` rounded to this type.
    fn of(x: f64) -> Self;
    fn as_f64(self) -> f64;
    fn tanh_fast(self) -> Self;
    fn sigmoid_fast(self) -> Self;
}

/// `dst[i] = src[i]` rounded to `R` (a copy for f64).
pub fn round_into<R: Real>(dst: &mut [R], src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = R::of(*s);
    }
}

/// `src` rounded to `R`.
pub fn rounded<R: Real>(src: &[f64]) -> Vec<R> {
    src.iter().map(|v| R::of(*v)).collect()
}

/// `src` widened to f64 (exact).
pub fn widened<R: Real>(src: &[R]) -> Vec<f64> {
    src.iter().map(|v| v.as_f64()).collect()
}

macro_rules! real_impl {
    ($t:ty, $p:expr, $tanh:path, $sigmoid:path) => {
        impl Real for $t {
            const PRECISION: Precision = $p;
            #[inline(always)]
            fn of(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn as_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn tanh_fast(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn sigmoid_fast(self) -> Self {
                $sigmoid(self)
            }
        }
    };
}

real_impl!(f64, Precision::F64, crate::math::tanh, crate::math::sigmoid);
real_impl!(f32, Precision::F32, crate::math::tanh, crate::math::sigmoid);
