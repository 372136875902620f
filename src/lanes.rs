//! The number type the small-d engine computes in: `f64` (one replica, the reference)
//! or `Lanes` (8 replicas side by side, structure of arrays).
//!
//! Models and dynamics are written once over `T: Num`. Every `Lanes` operation is the
//! same IEEE f64 operation applied to each lane in turn, written as a plain loop that
//! LLVM turns into vector instructions (AVX-512: one register, AVX2: two); Rust never
//! contracts a·b + c into an FMA, so lane i of a `Lanes` run carries exactly the bits
//! of the scalar run of replica i. Branches of the scalar code become `select_positive`
//! (both sides computed, one kept per lane), which keeps those bits too.

use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// Replicas per lane group. 8 f64 fill one AVX-512 register (two AVX2 ones); the
/// width is the same at every SIMD level, so the level never changes the numbers.
pub const LANES: usize = 8;

/// The arithmetic the small-d models and dynamics use.
pub trait Num:
    Copy
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// Replicas carried side by side.
    const WIDTH: usize;
    const ZERO: Self;
    fn splat(v: f64) -> Self;
    /// Lane `i`'s value.
    fn lane(self, i: usize) -> f64;
    /// The value whose lane i is `f(i)`.
    fn from_fn(f: impl FnMut(usize) -> f64) -> Self;
    fn sqrt(self) -> Self;
    /// `f64::max` per lane (NaN loses).
    fn max(self, o: Self) -> Self;
    /// `f64::exp` per lane.
    fn exp(self) -> Self;
    /// Per lane: `then` where `self > 0`, else `otherwise` (NaN counts as not > 0).
    fn select_positive(self, then: Self, otherwise: Self) -> Self;
    /// `rng::fill_normals` of replica `first + lane` (wrapping) for each lane.
    #[allow(clippy::too_many_arguments)]
    fn fill_normals(
        key: [u32; 2],
        first: u32,
        stream: u32,
        k0: u32,
        n_steps: usize,
        per_step: usize,
        out: &mut [Self],
    );
}

impl Num for f64 {
    const WIDTH: usize = 1;
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn splat(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn lane(self, _: usize) -> f64 {
        self
    }
    #[inline(always)]
    fn from_fn(mut f: impl FnMut(usize) -> f64) -> Self {
        f(0)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        f64::max(self, o)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn fill_normals(
        key: [u32; 2],
        first: u32,
        stream: u32,
        k0: u32,
        n_steps: usize,
        per_step: usize,
        out: &mut [Self],
    ) {
        crate::rng::fill_normals(key, first, stream, k0, n_steps, per_step, out)
    }
    #[inline(always)]
    fn select_positive(self, then: Self, otherwise: Self) -> Self {
        if self > 0.0 {
            then
        } else {
            otherwise
        }
    }
}

/// `LANES` f64 values, one per replica of a lane group.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Lanes(pub [f64; LANES]);

impl Lanes {
    #[inline(always)]
    fn map(self, f: impl Fn(f64) -> f64) -> Self {
        Lanes(std::array::from_fn(|i| f(self.0[i])))
    }
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(f64, f64) -> f64) -> Self {
        Lanes(std::array::from_fn(|i| f(self.0[i], o.0[i])))
    }
}

macro_rules! lane_op {
    ($tr:ident, $f:ident, $op:tt, $tra:ident, $fa:ident) => {
        impl $tr for Lanes {
            type Output = Lanes;
            #[inline(always)]
            fn $f(self, o: Lanes) -> Lanes {
                self.zip(o, |a, b| a $op b)
            }
        }
        impl $tr<f64> for Lanes {
            type Output = Lanes;
            #[inline(always)]
            fn $f(self, o: f64) -> Lanes {
                self.map(|a| a $op o)
            }
        }
        impl $tra for Lanes {
            #[inline(always)]
            fn $fa(&mut self, o: Lanes) {
                *self = self.zip(o, |a, b| a $op b);
            }
        }
    };
}
lane_op!(Add, add, +, AddAssign, add_assign);
lane_op!(Sub, sub, -, SubAssign, sub_assign);
lane_op!(Mul, mul, *, MulAssign, mul_assign);

impl Div for Lanes {
    type Output = Lanes;
    #[inline(always)]
    fn div(self, o: Lanes) -> Lanes {
        self.zip(o, |a, b| a / b)
    }
}
impl Div<f64> for Lanes {
    type Output = Lanes;
    #[inline(always)]
    fn div(self, o: f64) -> Lanes {
        self.map(|a| a / o)
    }
}
impl Neg for Lanes {
    type Output = Lanes;
    #[inline(always)]
    fn neg(self) -> Lanes {
        self.map(|a| -a)
    }
}

impl Num for Lanes {
    const WIDTH: usize = LANES;
    const ZERO: Self = Lanes([0.0; LANES]);
    #[inline(always)]
    fn splat(v: f64) -> Self {
        Lanes([v; LANES])
    }
    #[inline(always)]
    fn lane(self, i: usize) -> f64 {
        self.0[i]
    }
    #[inline(always)]
    fn from_fn(f: impl FnMut(usize) -> f64) -> Self {
        Lanes(std::array::from_fn(f))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        self.map(f64::sqrt)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.zip(o, f64::max)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        self.map(f64::exp)
    }
    fn fill_normals(
        key: [u32; 2],
        first: u32,
        stream: u32,
        k0: u32,
        n_steps: usize,
        per_step: usize,
        out: &mut [Self],
    ) {
        crate::rng::fill_normals_lanes(key, first, stream, k0, n_steps, per_step, out)
    }
    #[inline(always)]
    fn select_positive(self, then: Self, otherwise: Self) -> Self {
        Lanes(std::array::from_fn(|i| {
            if self.0[i] > 0.0 {
                then.0[i]
            } else {
                otherwise.0[i]
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation gives, lane by lane, the bits of the scalar operation, on
    /// values that include zeros of both signs, infinities and NaN.
    #[test]
    fn lanes_are_the_scalar_operations_per_lane() {
        let a = Lanes([1.5, -0.0, 0.0, f64::INFINITY, f64::NAN, -3.25, 1e-310, 7.0]);
        let b = Lanes([0.1, 2.0, -0.0, -1.0, 1.0, f64::NEG_INFINITY, 3.0, 0.0]);
        let same = |l: Lanes, f: &dyn Fn(f64, f64) -> f64| {
            for i in 0..LANES {
                assert_eq!(l.0[i].to_bits(), f(a.0[i], b.0[i]).to_bits(), "lane {i}");
            }
        };
        same(a + b, &|x, y| x + y);
        same(a - b, &|x, y| x - y);
        same(a * b, &|x, y| x * y);
        same(a / b, &|x, y| x / y);
        same(-a, &|x, _| -x);
        same(a * 0.3, &|x, _| x * 0.3);
        same(a.sqrt(), &|x, _| x.sqrt());
        same(a.max(b), &|x, y| x.max(y));
        same(a.exp(), &|x, _| x.exp());
        same(a.select_positive(a, b), &|x, y| x.select_positive(x, y));
        let mut c = a;
        c += b;
        c *= b;
        c -= a;
        same(c, &|x, y| (x + y) * y - x);
    }
}
