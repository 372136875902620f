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
    /// self + a·b, the step of every sum of products in the drift (dot products, the
    /// forward pass's Σ a_k σ, Δa and Δw): in f64, the reference, a multiply then an add
    /// (two roundings); in f32, the speed path, one fused multiply-add (one rounding).
    /// The SIMD kernels and the scalar reference both call it, so they agree bit for
    /// bit in each precision.
    fn add_product(self, a: Self, b: Self) -> Self;
    /// self − a·b, rounded as [`Real::add_product`].
    fn sub_product(self, a: Self, b: Self) -> Self;
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
    ($t:ty, $p:expr, $tanh:path, $sigmoid:path, $fused:expr) => {
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
            #[inline(always)]
            fn add_product(self, a: Self, b: Self) -> Self {
                if $fused {
                    a.mul_add(b, self)
                } else {
                    self + a * b
                }
            }
            #[inline(always)]
            fn sub_product(self, a: Self, b: Self) -> Self {
                if $fused {
                    (-a).mul_add(b, self)
                } else {
                    self - a * b
                }
            }
        }
    };
}

// f64 is the reference: products rounded before they are added, as everywhere else in
// smflow. f32 fuses them: an FMA is one instruction on every SIMD level the kernels
// dispatch to (`rng::simd`), and rounds once where the reference's order would twice.
real_impl!(
    f64,
    Precision::F64,
    crate::math::tanh,
    crate::math::sigmoid,
    false
);
real_impl!(
    f32,
    Precision::F32,
    crate::math::tanh,
    crate::math::sigmoid,
    true
);

#[cfg(test)]
mod tests {
    use super::Real;

    /// f32 fuses the product into the sum (one rounding), f64 rounds the product first:
    /// on (1 + ε)² − 1 the two differ by the product's lost low bit.
    #[test]
    fn f32_fuses_products_and_f64_rounds_them_first() {
        let a = 1.0f32 + 2f32.powi(-12);
        assert_eq!((-1.0f32).add_product(a, a), 2f32.powi(-11) + 2f32.powi(-24));
        assert_eq!(1.0f32.sub_product(a, a), -(2f32.powi(-11) + 2f32.powi(-24)));
        assert_eq!(
            -1.0f32 + a * a,
            2f32.powi(-11),
            "unfused f32 rounds the product"
        );
        let b = 1.0f64 + 2f64.powi(-27);
        assert_eq!((-1.0f64).add_product(b, b), 2f64.powi(-26));
        assert_eq!(1.0f64.sub_product(b, b), -(2f64.powi(-26)));
    }
}
