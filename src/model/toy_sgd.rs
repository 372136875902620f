//! `toy_sgd` (DESIGN §4, seed 002): a loss f ≥ 0 with isotropic gradient noise whose
//! variance is proportional to the loss, `x ← x − η(∇f(x) + sqrt(σ f(x)) ξ)`, ξ ~ N(0, I_d).
//!
//! In the `Model` interface: θ = ξ (d normals), ∇R(x, θ) = ∇f + sqrt(σ f) θ, ∇R = ∇f,
//! G = −sqrt(σ f) θ, Σ = σ f I, Σ^{1/2} dw = sqrt(σ f) dw. G is linear in θ, so the SMF
//! reduction to d Brownian motions is exact and has the same form as the SME noise.
//! The SME is `dX = −∇f dt + sqrt(s f) dW` with s = ησ/b.
//!
//! Invariant density (derived here, the convention used everywhere in smflow). The
//! Fokker–Planck equation of `dX = b dt + sqrt(2D) dW` (scalar D) is
//! `∂ρ/∂t = −div(b ρ) + Δ(D ρ)`; with b = −∇f and D = s f/2 the zero-flux condition is
//! `∇(D ρ) = −ρ ∇f`, i.e. `(s/2)(f ∇ρ + ρ ∇f) = −ρ ∇f`, so ∇log ρ = −(1 + 2/s) ∇log f and
//! `ρ ∝ f^{−p}, p = 1 + 2/s = 1 + 2b/(ησ)` (`stationary_exponent`). It is a probability
//! density iff ∫ f^{−p} < ∞: inf f > 0 on bounded sets (or a zero set of f of high
//! enough codimension) and f growing fast enough at infinity. For the losses here,
//! f ~ |x|^γ (γ = 4 for `double_well`, 2 for `ring`), so the condition is γ p > d:
//! always true (p > 1) except `ring` in d ≥ 3 with p ≤ d/2.
//!
//! Seed 002 writes `ρ = c f^{−1−1/(ησ)}` for `dθ = −∇f dt + sqrt(η Σ) dB`, Σ = σ f I,
//! but its Fokker–Planck line is `∂ρ = div(ρ∇f) + ∂i∂j(ρ Σij)` (times η), which lacks the
//! ½ of Itô's formula: it is the Fokker–Planck equation of `dθ = −∇f dt + sqrt(2ησ f) dB`.
//! Its exponent is right in that convention (noise variance 2ησf per unit time, i.e. the
//! gradient estimator's variance read as 2σf) and is `1 + 2/(ησ)` in ours (the SDE that
//! SGD's own noise gives, variance ησf). Its constant-noise comparison
//! `exp(−f/(ησ))` has the same factor 2 (ours: exp(−2f/(ησ))).
//!
//! Matched constant-noise (Gibbs) comparison: `dX = −∇f dt + sqrt(s f̄) dW` with f̄ =
//! E_ρ f (the same mean noise variance as toy SGD in equilibrium) has invariant density
//! `∝ exp(−2 f/(s f̄))` (`log_gibbs`).
//!
//! Losses (a closed set, `ToyLoss`), both written for any d with r = |x|:
//! - `double_well`: f = c0 + ¼(r² − 1)², c0 > 0 (d = 1: wells at ±1 with f'' = 2).
//! - `ring`: f = c0 + ½ k0 (1 + a u(x)) (r − 1)², u = 2x₁/(1 + r²), 0 ≤ a < 1. On the unit
//!   sphere u = cos φ (φ the angle to e₁), so the minima form the unit circle (d = 2)
//!   and the curvature across it is k(φ) = k0(1 + a cos φ): sharp at φ = 0, flat at
//!   φ = π. u is smooth and |u| ≤ 1 everywhere, so f ≥ c0 > 0 and f grows like r²
//!   (bounded Hessian away from 0, so SGD stays stable where f is large). r is not
//!   smooth at 0 (a local maximum of f, cone tip): there ∇r and the Hessian's 1/r term
//!   are taken as 0.

use super::{zero, Capabilities, ExactStep, Model, Vector};
use crate::lanes::Num;
use crate::observables::Observable;

/// The toy losses (closed set; parameters checked in `config`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ToyLoss {
    DoubleWell { c0: f64 },
    Ring { k0: f64, a: f64, c0: f64 },
}

impl ToyLoss {
    pub const NAMES: [&'static str; 2] = ["double_well", "ring"];

    pub fn name(&self) -> &'static str {
        match self {
            ToyLoss::DoubleWell { .. } => "double_well",
            ToyLoss::Ring { .. } => "ring",
        }
    }

    /// inf f.
    pub fn c0(&self) -> f64 {
        match *self {
            ToyLoss::DoubleWell { c0 } | ToyLoss::Ring { c0, .. } => c0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ToySgd {
    pub d: usize,
    pub loss: ToyLoss,
    pub sigma: f64,
}

/// a·b, summed from -0.0 in index order (as `f64::sum`, which it once was).
#[inline(always)]
fn dot<T: Num>(a: &Vector<T>, b: &Vector<T>, d: usize) -> T {
    let mut s = T::splat(-0.0);
    for i in 0..d {
        s += a[i] * b[i];
    }
    s
}

/// p = 1 + 2/s: toy SGD's invariant density is ∝ f^{−p} for the SDE
/// dX = −∇f dt + sqrt(s f) dW, s = ησ/b (module docs). The one source of this formula.
pub fn stationary_exponent(s: f64) -> f64 {
    1.0 + 2.0 / s
}

/// The exponent seed 002 writes, 1 + 1/s: right only for noise sqrt(2 s f) dW. Kept to
/// show (experiment and tests) that our runs reject it.
pub fn seed_convention_exponent(s: f64) -> f64 {
    1.0 + 1.0 / s
}

impl ToySgd {
    pub fn new(d: usize, loss: ToyLoss, sigma: f64) -> Self {
        Self { d, loss, sigma }
    }

    /// f(x), clamped at 0 (rounding only; both losses are ≥ c0 > 0 analytically).
    #[inline(always)]
    pub fn f<T: Num>(&self, x: &Vector<T>) -> T {
        let d = self.d;
        let r2 = dot(x, x, d);
        let v = match self.loss {
            ToyLoss::DoubleWell { c0 } => (r2 - 1.0) * 0.25 * (r2 - 1.0) + c0,
            ToyLoss::Ring { k0, a, c0 } => {
                let r = r2.sqrt();
                let u = x[0] * 2.0 / (r2 + 1.0);
                (u * a + 1.0) * (0.5 * k0) * (r - 1.0) * (r - 1.0) + c0
            }
        };
        v.max(T::ZERO)
    }

    /// sqrt(σ f(x)): the noise amplitude of one sample.
    #[inline(always)]
    fn amp<T: Num>(&self, x: &Vector<T>) -> T {
        (self.f(x) * self.sigma).sqrt()
    }

    /// log of the unnormalised density f^{−p} (p = `stationary_exponent(s)` for toy
    /// SGD; other p only to test that they are rejected).
    pub fn log_power_density(&self, x: &Vector, p: f64) -> f64 {
        -p * self.f(x).ln()
    }

    /// log of the unnormalised Gibbs density exp(−2f/(s f̄)) of the matched
    /// constant-noise SDE dX = −∇f dt + sqrt(s f̄) dW.
    pub fn log_gibbs(&self, x: &Vector, s: f64, fbar: f64) -> f64 {
        -2.0 * self.f(x) / (s * fbar)
    }
}

impl Model for ToySgd {
    fn dim(&self) -> usize {
        self.d
    }
    fn data_normals(&self) -> usize {
        self.d
    }
    #[inline(always)]
    fn sample_theta<T: Num>(&self, z: &[T]) -> Vector<T> {
        let mut t = zero();
        t[..self.d].copy_from_slice(&z[..self.d]);
        t
    }
    #[inline(always)]
    fn grad_sample<T: Num>(&self, x: &Vector<T>, theta: &Vector<T>) -> Vector<T> {
        let mut g = self.grad(x);
        let a = self.amp(x);
        for i in 0..self.d {
            g[i] += a * theta[i];
        }
        g
    }
    // Branches on r become `select_positive` (lanes); products are written with the
    // f64 constant on the right (the same bits: IEEE products commute).
    #[inline(always)]
    fn grad<T: Num>(&self, x: &Vector<T>) -> Vector<T> {
        let d = self.d;
        let r2 = dot(x, x, d);
        let mut g = zero();
        match self.loss {
            ToyLoss::DoubleWell { .. } => {
                for i in 0..d {
                    g[i] = (r2 - 1.0) * x[i];
                }
            }
            ToyLoss::Ring { k0, a, .. } => {
                let r = r2.sqrt();
                let p = r2 + 1.0;
                let u = x[0] * 2.0 / p;
                let q = (r - 1.0) * (r - 1.0);
                // ∇q = 2(r − 1) x/r; ∇u = 2(e₁ − u x)/(1 + r²).
                let cq = r.select_positive((r - 1.0) * 2.0 / r, T::ZERO);
                for i in 0..d {
                    let e1 = T::splat(if i == 0 { 1.0 } else { 0.0 });
                    let du = (e1 - u * x[i]) * 2.0 / p;
                    g[i] = (q * a * du + (u * a + 1.0) * cq * x[i]) * (0.5 * k0);
                }
            }
        }
        g
    }
    #[inline(always)]
    fn hvp<T: Num>(&self, x: &Vector<T>, v: &Vector<T>) -> Vector<T> {
        let d = self.d;
        let r2 = dot(x, x, d);
        let xv = dot(x, v, d);
        let mut h = zero();
        match self.loss {
            ToyLoss::DoubleWell { .. } => {
                // H = 2 x xᵀ + (r² − 1) I.
                for i in 0..d {
                    h[i] = xv * 2.0 * x[i] + (r2 - 1.0) * v[i];
                }
            }
            ToyLoss::Ring { k0, a, .. } => {
                let r = r2.sqrt();
                let p = r2 + 1.0;
                let u = x[0] * 2.0 / p;
                let q = (r - 1.0) * (r - 1.0);
                let cq = r.select_positive((r - 1.0) * 2.0 / r, T::ZERO);
                let inv_r = r.select_positive(T::splat(1.0) / r, T::ZERO);
                let mut du = zero();
                for i in 0..d {
                    let e1 = T::splat(if i == 0 { 1.0 } else { 0.0 });
                    du[i] = (e1 - u * x[i]) * 2.0 / p;
                }
                let duv = dot(&du, v, d);
                let dqv = cq * xv;
                // x̂·v; H_q = 2 x̂x̂ᵀ + 2(r − 1)/r (I − x̂x̂ᵀ);
                // H_u v = −(2(∇u·v) x + 2u v + 2(x·v) ∇u)/(1 + r²).
                let hv = xv * inv_r;
                for i in 0..d {
                    let xh = x[i] * inv_r;
                    let hq = hv * 2.0 * xh + cq * (v[i] - hv * xh);
                    let hu = -(duv * 2.0 * x[i] + u * 2.0 * v[i] + xv * 2.0 * du[i]) / p;
                    h[i] =
                        (duv * a * cq * x[i] + dqv * a * du[i] + q * a * hu + (u * a + 1.0) * hq)
                            * (0.5 * k0);
                }
            }
        }
        h
    }
    #[inline(always)]
    fn loss(&self, x: &Vector) -> f64 {
        self.f(x)
    }
    fn smf_noise_dim(&self) -> usize {
        self.d
    }
    /// ∫ G W(dθ, dt) with G = −sqrt(σ f) θ, θ ~ N(0, I): exactly −sqrt(σ f) dw.
    #[inline(always)]
    fn smf_noise<T: Num>(&self, x: &Vector<T>, dw: &[T]) -> Vector<T> {
        let a = self.amp(x);
        let mut g = zero();
        for i in 0..self.d {
            g[i] = -a * dw[i];
        }
        g
    }
    #[inline(always)]
    fn sme_noise<T: Num>(&self, x: &Vector<T>, dw: &[T]) -> Vector<T> {
        let a = self.amp(x);
        let mut g = zero();
        for i in 0..self.d {
            g[i] = a * dw[i];
        }
        g
    }
    /// No closed-form transition; `config` rejects `sde.solver = "exact"` for toy_sgd.
    fn exact_step(&self, _c: f64, _noise_var: f64, _h: f64) -> ExactStep {
        ExactStep::Unavailable
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            gaussian_linear_noise: true,
            ..Capabilities::GRADIENT_AND_NOISE
        }
    }
    fn exact_sde_mean(&self, _: Observable, _: &Vector, _: f64, _: f64, _: f64) -> Option<f64> {
        None
    }
    fn exact_sgd_mean(&self, _: Observable, _: &Vector, _: f64, _: usize, _: u32) -> Option<f64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> Vec<ToySgd> {
        vec![
            ToySgd::new(1, ToyLoss::DoubleWell { c0: 0.25 }, 2.0),
            ToySgd::new(2, ToyLoss::DoubleWell { c0: 0.1 }, 2.0),
            ToySgd::new(
                2,
                ToyLoss::Ring {
                    k0: 3.0,
                    a: 0.7,
                    c0: 0.2,
                },
                1.0,
            ),
            ToySgd::new(
                3,
                ToyLoss::Ring {
                    k0: 2.0,
                    a: 0.5,
                    c0: 0.2,
                },
                1.0,
            ),
        ]
    }

    /// The analytic gradient and HVP against central differences (tests only).
    #[test]
    fn gradient_and_hvp_match_finite_differences() {
        let pts = [
            [0.7, -0.4, 0.3],
            [-1.2, 0.5, -0.2],
            [0.1, 1.3, 0.9],
            [1.0, 0.0, 0.0],
        ];
        let v = crate::model::vector(&[0.3, -0.8, 0.5]);
        let h = 1e-5;
        for m in models() {
            for p in pts {
                let x = crate::model::vector(&p[..m.d]);
                let g = m.grad(&x);
                let hv = m.hvp(&x, &v);
                for i in 0..m.d {
                    let (mut xp, mut xm) = (x, x);
                    xp[i] += h;
                    xm[i] -= h;
                    let fd = (m.f(&xp) - m.f(&xm)) / (2.0 * h);
                    assert!((fd - g[i]).abs() < 1e-6, "{m:?} grad {i} at {p:?}");
                }
                let (mut xp, mut xm) = (x, x);
                for i in 0..m.d {
                    xp[i] += h * v[i];
                    xm[i] -= h * v[i];
                }
                let (gp, gm) = (m.grad(&xp), m.grad(&xm));
                for i in 0..m.d {
                    let fd = (gp[i] - gm[i]) / (2.0 * h);
                    assert!((fd - hv[i]).abs() < 1e-5, "{m:?} hvp {i} at {p:?}");
                }
            }
        }
    }

    #[test]
    fn ring_curvature_across_the_circle_is_k_of_phi() {
        let (k0, a) = (3.0, 0.7);
        let m = ToySgd::new(2, ToyLoss::Ring { k0, a, c0: 0.2 }, 1.0);
        for phi in [0.0, 1.0, 2.0, std::f64::consts::PI] {
            let x = crate::model::vector(&[phi.cos(), phi.sin()]);
            let hv = m.hvp(&x, &x); // radial direction
            let k = dot(&hv, &x, 2);
            assert!((k - k0 * (1.0 + a * phi.cos())).abs() < 1e-12);
            assert!(m.grad(&x).iter().all(|g| g.abs() < 1e-15));
        }
    }

    #[test]
    fn stationary_density_has_zero_flux() {
        // 1-D: the probability flux J = −f' ρ − (D ρ)', D = s f/2, vanishes for ρ = f^{−p}.
        let m = ToySgd::new(1, ToyLoss::DoubleWell { c0: 0.25 }, 1.0);
        let s = 0.7;
        let p = stationary_exponent(s);
        let rho = |x: f64| m.log_power_density(&crate::model::vector(&[x]), p).exp();
        let dr = |x: f64| 0.5 * s * m.f(&crate::model::vector(&[x])) * rho(x);
        let h = 1e-5;
        for x in [-1.7, -0.3, 0.4, 1.1] {
            let flux = -m.grad(&crate::model::vector(&[x]))[0] * rho(x)
                - (dr(x + h) - dr(x - h)) / (2.0 * h);
            assert!(flux.abs() < 1e-6 * rho(x).max(1.0), "flux {flux} at {x}");
        }
    }
}
