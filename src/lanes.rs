//! The number type the small-d engine computes in: `f64` (one replica, the reference),
//! `Lanes` (8 replicas side by side, structure of arrays) or `Lanes32` (16 replicas in
//! f32, the fast `"precision": "f32"` option).
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
    /// Each lane carries the bits of the scalar f64 reference (`f64`, `Lanes`), so a
    /// driver may run a few replicas on `f64` instead with the same numbers.
    const REFERENCE_BITS: bool;
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
    const REFERENCE_BITS: bool = true;
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

/// Call once per iteration of a loop over many lane vectors (a data row's d
/// coordinates, say). LLVM's loop vectoriser otherwise vectorises such a loop *across*
/// iterations, 8 coordinates at a time, with stride-`WIDTH` gathers and scatters of the
/// lanes, instead of each lane vector's own operations becoming one vector
/// instruction (measured on the trainer's minibatch gradient, d = 100: 1.4× slower
/// than the scalar reference). An empty `asm!` is a call the loop vectoriser cannot
/// widen, so it leaves the loop to the SLP vectoriser, which does the right thing; it
/// touches no memory or flags, so nothing else is held back. A no-op for `f64` (the
/// scalar reference, whose loops should vectorise across coordinates).
#[inline(always)]
pub fn lane_loop<T: Num>() {
    if T::WIDTH > 1 {
        // SAFETY: an empty instruction sequence that reads and writes nothing.
        unsafe { std::arch::asm!("", options(nomem, nostack, preserves_flags)) }
    }
}

/// Most replicas a lane group carries (`Lanes32`).
pub const MAX_WIDTH: usize = 16;

/// A lane group's values: `$n` floats of type `$f`, one per replica, operated on lane
/// by lane. The f64 operands of the mixed operations (a run's constants) are rounded
/// to `$f` first (no-ops for f64).
macro_rules! lane_type {
    ($(#[$meta:meta])* $name:ident, $f:ty, $n:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[repr(C, align(64))]
        pub struct $name(pub [$f; $n]);

        impl $name {
            #[inline(always)]
            fn map(self, f: impl Fn($f) -> $f) -> Self {
                $name(std::array::from_fn(|i| f(self.0[i])))
            }
            #[inline(always)]
            fn zip(self, o: Self, f: impl Fn($f, $f) -> $f) -> Self {
                $name(std::array::from_fn(|i| f(self.0[i], o.0[i])))
            }
        }

        lane_op!($name, $f, Add, add, +, AddAssign, add_assign);
        lane_op!($name, $f, Sub, sub, -, SubAssign, sub_assign);
        lane_op!($name, $f, Mul, mul, *, MulAssign, mul_assign);

        impl Div for $name {
            type Output = $name;
            #[inline(always)]
            fn div(self, o: $name) -> $name {
                self.zip(o, |a, b| a / b)
            }
        }
        impl Div<f64> for $name {
            type Output = $name;
            #[inline(always)]
            fn div(self, o: f64) -> $name {
                let o = o as $f;
                self.map(|a| a / o)
            }
        }
        impl Neg for $name {
            type Output = $name;
            #[inline(always)]
            fn neg(self) -> $name {
                self.map(|a| -a)
            }
        }

        impl Num for $name {
            const WIDTH: usize = $n;
            const REFERENCE_BITS: bool = std::mem::size_of::<$f>() == 8;
            const ZERO: Self = $name([0.0; $n]);
            #[inline(always)]
            fn splat(v: f64) -> Self {
                $name([v as $f; $n])
            }
            #[inline(always)]
            fn lane(self, i: usize) -> f64 {
                self.0[i] as f64
            }
            #[inline(always)]
            fn from_fn(mut f: impl FnMut(usize) -> f64) -> Self {
                // A loop, not `std::array::from_fn`, which is not always inlined: for
                // 16 lanes it stayed a call, outside the SIMD level's target features
                // (25% of the f32 trainer's minibatch gather).
                let mut a = [0.0; $n];
                for (i, v) in a.iter_mut().enumerate() {
                    *v = f(i) as $f;
                }
                $name(a)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                self.map(<$f>::sqrt)
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                self.zip(o, <$f>::max)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                self.map(<$f>::exp)
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
                $name(std::array::from_fn(|i| {
                    if self.0[i] > 0.0 {
                        then.0[i]
                    } else {
                        otherwise.0[i]
                    }
                }))
            }
        }
    };
}

macro_rules! lane_op {
    ($name:ident, $f:ty, $tr:ident, $fn_:ident, $op:tt, $tra:ident, $fa:ident) => {
        impl $tr for $name {
            type Output = $name;
            #[inline(always)]
            fn $fn_(self, o: $name) -> $name {
                self.zip(o, |a, b| a $op b)
            }
        }
        impl $tr<f64> for $name {
            type Output = $name;
            #[inline(always)]
            fn $fn_(self, o: f64) -> $name {
                let o = o as $f;
                self.map(|a| a $op o)
            }
        }
        impl $tra for $name {
            #[inline(always)]
            fn $fa(&mut self, o: $name) {
                *self = self.zip(o, |a, b| a $op b);
            }
        }
    };
}

lane_type!(
    /// `LANES` f64 values, one per replica of a lane group: the reference, lane i
    /// bit-identical to the scalar f64 run of replica i.
    Lanes, f64, LANES
);
lane_type!(
    /// 16 f32 values, one per replica: the CPU's `"precision": "f32"` option (one
    /// AVX-512 register, two AVX2 ones). Not the reference: each operation is rounded to
    /// f32, and the normals are `rng::single`'s.
    Lanes32, f32, MAX_WIDTH
);

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
