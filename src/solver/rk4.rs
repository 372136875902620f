//! The classical fourth-order Runge–Kutta step, x ← x + (h/6)(k₁ + 2k₂ + 2k₃ + k₄) with
//! k₁ = f(x), k₂ = f(x + (h/2)k₁), k₃ = f(x + (h/2)k₂), k₄ = f(x + h k₃).
//!
//! One order of operations for every engine (the weights summed left to right,
//! ((k₁ + 2k₂) + 2k₃) + k₄, then one multiply by h/6), so a flow gives the same bits
//! wherever it runs on the CPU. Its WGSL twin is `rk4_coord` (`shaders/solver/rk4.wgsl`),
//! which the three engines' shaders call one coordinate at a time.

use super::AddScaled;

/// Stage `s` is evaluated at x + `STAGE[s]`·h·k_{s−1}; its slope enters the sum with
/// weight `WEIGHT[s]` (then × h/6).
const STAGE: [f64; 4] = [0.0, 0.5, 0.5, 1.0];
const WEIGHT: [f64; 4] = [1.0, 2.0, 2.0, 1.0];

/// The work space of a step: the stage point, the slope, the weighted sum of slopes.
/// Any container of numbers: a fixed-size `Vector` for a small-d replica (on the
/// stack), a `Vec` for a trainer's weights or a mean-field network.
#[derive(Clone, Debug, Default)]
pub struct Work<S> {
    pub stage: S,
    pub slope: S,
    pub sum: S,
}

impl<S: Clone> Work<S> {
    /// Work space shaped like `like` (its values are overwritten before they are read).
    pub fn like(like: &S) -> Self {
        Work {
            stage: like.clone(),
            slope: like.clone(),
            sum: like.clone(),
        }
    }
}

/// One RK4 step of size `h` on the first `len` numbers of `x`, in place. `f(y, k)`
/// writes the right-hand side at `y` into `k` (the first `len` numbers of each count;
/// `f` may leave the rest alone).
#[inline(always)]
pub fn step<T, S>(x: &mut S, h: f64, len: usize, w: &mut Work<S>, mut f: impl FnMut(&S, &mut S))
where
    T: AddScaled,
    S: AsRef<[T]> + AsMut<[T]>,
{
    for s in 0..4 {
        let at = if s == 0 { &*x } else { &w.stage };
        f(at, &mut w.slope);
        let (xs, k) = (&x.as_ref()[..len], &w.slope.as_ref()[..len]);
        let sum = &mut w.sum.as_mut()[..len];
        if s == 0 {
            sum.copy_from_slice(k);
        } else {
            for (a, &ki) in sum.iter_mut().zip(k) {
                T::lane_loop();
                *a = a.add_scaled(ki, WEIGHT[s]);
            }
        }
        if s < 3 {
            let c = STAGE[s + 1] * h;
            for ((y, &xi), &ki) in w.stage.as_mut()[..len].iter_mut().zip(xs).zip(k) {
                T::lane_loop();
                *y = xi.add_scaled(ki, c);
            }
        }
    }
    let c = h / 6.0;
    for (xi, &a) in x.as_mut()[..len].iter_mut().zip(&w.sum.as_ref()[..len]) {
        T::lane_loop();
        *xi = xi.add_scaled(a, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x' = λx: one step multiplies by the degree-4 Taylor polynomial of e^{λh}.
    #[test]
    fn linear_growth_is_the_fourth_order_taylor_factor() {
        let (lam, h) = (-0.7, 0.3);
        let mut x = vec![1.5, -2.0];
        let mut w = Work::like(&x);
        step(&mut x, h, 2, &mut w, |y: &Vec<f64>, k: &mut Vec<f64>| {
            for (ki, yi) in k.iter_mut().zip(y) {
                *ki = lam * yi;
            }
        });
        let z: f64 = lam * h;
        let factor = 1.0 + z + z * z / 2.0 + z.powi(3) / 6.0 + z.powi(4) / 24.0;
        assert!((x[0] - 1.5 * factor).abs() < 1e-15);
        assert!((x[1] + 2.0 * factor).abs() < 1e-15);
    }

    /// Global error of order 4: halving h divides the error at t = 1 by about 16.
    #[test]
    fn order_four_on_a_nonlinear_ode() {
        // x' = −x², x(0) = 1: x(t) = 1/(1 + t).
        let err = |n: usize| {
            let mut x = [1.0f64];
            let mut w = Work::like(&x);
            for _ in 0..n {
                step(&mut x, 1.0 / n as f64, 1, &mut w, |y, k| {
                    k[0] = -y[0] * y[0]
                });
            }
            (x[0] - 0.5).abs()
        };
        let ratio = err(8) / err(16);
        assert!((14.0..18.0).contains(&ratio), "error ratio {ratio}");
    }

    /// Only the first `len` numbers move.
    #[test]
    fn numbers_past_len_are_left_alone() {
        let mut x = [1.0f64, 7.0];
        let mut w = Work::like(&x);
        step(&mut x, 0.1, 1, &mut w, |_, k| *k = [1.0, 1.0]);
        assert!((x[0] - 1.1).abs() < 1e-15);
        assert_eq!(x[1], 7.0);
    }
}
