//! Solvers written once for every engine (DESIGN §3): the small-d flows (gf, mgf), the
//! finite-data trainer's and the mean-field flows all take their RK4 step from here, and
//! the engines with coupled levels combine them in `levels` (Talay–Tubaro).
//! A solver sees a state as a slice of numbers and its right-hand side as a closure;
//! it does not know which model or engine it serves.

pub mod levels;
pub mod rk4;

use crate::lanes::Num;

/// The one operation the solvers need of a number type: `self + k·s` with the step
/// coefficient `s` rounded to the type's precision first, as every engine's update did
/// before the solvers were shared (so their numbers stay bit for bit the same). The
/// lanes' `Num` types (`f64`, `Lanes`, `Lanes32`) and mean-field's `f32` have it.
pub trait AddScaled: Copy {
    fn add_scaled(self, k: Self, s: f64) -> Self;
    /// Called at the top of each loop over a state's numbers: `lanes::lane_loop` for
    /// lane groups (keeps the loop vectoriser off them), nothing for plain floats.
    #[inline(always)]
    fn lane_loop() {}
}

impl<T: Num> AddScaled for T {
    #[inline(always)]
    fn add_scaled(self, k: Self, s: f64) -> Self {
        self + k * s
    }
    #[inline(always)]
    fn lane_loop() {
        crate::lanes::lane_loop::<T>()
    }
}

impl AddScaled for f32 {
    #[inline(always)]
    fn add_scaled(self, k: Self, s: f64) -> Self {
        self + k * s as f32
    }
}
