//! `multiplicative`: R(x, θ) = ½ θ |x|², θ ~ N(μ, s²).
//!
//! ∇R(x, θ) = θ x, ∇R(x) = μ x, H = μ I, G(x, θ) = (μ − θ) x = −s z x, Σ = s² x xᵀ,
//! Σ^{1/2} = s x xᵀ/|x| (not smooth at 0; seed 001's example of why SMF helps).
//! Both continuous models are geometric Brownian motions along the ray of x0:
//! X_t = x0 e^{Z_t}, Z_t ~ N(−(a + σ²/2)t, σ² t), a = μ + cμ², σ² = noise_var · s².

use super::{zero, Capabilities, ExactStep, Model, Vector};
use crate::lanes::Num;
use crate::observables::Observable;

#[derive(Clone, Debug)]
pub struct Multiplicative {
    pub d: usize,
    pub mean: f64,
    pub std: f64,
}

impl Multiplicative {
    pub fn new(d: usize, mean: f64, std: f64) -> Self {
        Self { d, mean, std }
    }

    #[inline(always)]
    fn norm2<T: Num>(&self, x: &Vector<T>) -> T {
        // -0.0 first: the start value of `f64::sum`, which this once was.
        let mut s = T::splat(-0.0);
        for v in &x[..self.d] {
            s += *v * *v;
        }
        s
    }

    /// Drift and volatility of log|X| per unit time.
    fn gbm(&self, c: f64, noise_var: f64) -> (f64, f64) {
        let a = self.mean + c * self.mean * self.mean;
        let var = noise_var * self.std * self.std;
        (-(a + 0.5 * var), var.sqrt())
    }
}

/// E f(Z), Z ~ N(m, v), by the trapezoid rule over ±12 sd (spectrally accurate for
/// smooth f).
fn gaussian_expectation(m: f64, v: f64, f: impl Fn(f64) -> f64) -> f64 {
    if v <= 0.0 {
        return f(m);
    }
    let sd = v.sqrt();
    let n = 4000;
    let h = 24.0 / n as f64;
    let mut s = 0.0;
    for i in 0..=n {
        let u = -12.0 + i as f64 * h;
        let w = if i == 0 || i == n { 0.5 } else { 1.0 };
        s += w * f(m + sd * u) * (-0.5 * u * u).exp();
    }
    s * h / (2.0 * std::f64::consts::PI).sqrt()
}

impl Model for Multiplicative {
    fn dim(&self) -> usize {
        self.d
    }
    fn data_normals(&self) -> usize {
        1
    }
    #[inline(always)]
    fn sample_theta<T: Num>(&self, z: &[T]) -> Vector<T> {
        let mut t = zero();
        t[0] = z[0] * self.std + self.mean;
        t
    }
    #[inline(always)]
    fn grad_sample<T: Num>(&self, x: &Vector<T>, theta: &Vector<T>) -> Vector<T> {
        let mut g = zero();
        for i in 0..self.d {
            g[i] = theta[0] * x[i];
        }
        g
    }
    #[inline(always)]
    fn grad<T: Num>(&self, x: &Vector<T>) -> Vector<T> {
        let mut g = zero();
        for i in 0..self.d {
            g[i] = x[i] * self.mean;
        }
        g
    }
    #[inline(always)]
    fn hvp<T: Num>(&self, _x: &Vector<T>, v: &Vector<T>) -> Vector<T> {
        let mut g = zero();
        for i in 0..self.d {
            g[i] = v[i] * self.mean;
        }
        g
    }
    #[inline(always)]
    fn loss(&self, x: &Vector) -> f64 {
        0.5 * self.mean * self.norm2(x)
    }
    fn smf_noise_dim(&self) -> usize {
        1
    }
    #[inline(always)]
    fn smf_noise<T: Num>(&self, x: &Vector<T>, dw: &[T]) -> Vector<T> {
        let mut g = zero();
        for i in 0..self.d {
            g[i] = x[i] * -self.std * dw[0];
        }
        g
    }
    /// Σ^{1/2} dw = s x (x·dw)/|x|, and 0 at x = 0 (both computed, one kept per lane).
    #[inline(always)]
    fn sme_noise<T: Num>(&self, x: &Vector<T>, dw: &[T]) -> Vector<T> {
        let r = self.norm2(x).sqrt();
        let mut dot = T::splat(-0.0);
        for i in 0..self.d {
            dot += x[i] * dw[i];
        }
        let proj = dot / r;
        let mut g = zero();
        for i in 0..self.d {
            g[i] = r.select_positive(x[i] * self.std * proj, T::ZERO);
        }
        g
    }
    fn exact_step(&self, c: f64, noise_var: f64, h: f64) -> ExactStep {
        let (drift, vol) = self.gbm(c, noise_var);
        ExactStep::Gbm {
            drift: drift * h,
            vol: vol * h.sqrt(),
        }
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            exact_transition: true,
            gaussian_linear_noise: true,
            ..Capabilities::GRADIENT_AND_NOISE
        }
    }
    fn exact_sde_mean(
        &self,
        obs: Observable,
        x0: &Vector,
        c: f64,
        noise_var: f64,
        t: f64,
    ) -> Option<f64> {
        let (drift, vol) = self.gbm(c, noise_var);
        let (m, v) = (drift * t, vol * vol * t);
        let n2 = self.norm2(x0);
        match obs {
            Observable::Norm2(0) => Some(n2 * (2.0 * m + 2.0 * v).exp()),
            Observable::Loss(0) => Some(0.5 * self.mean * n2 * (2.0 * m + 2.0 * v).exp()),
            Observable::X0(0) => Some(x0[0] * (m + 0.5 * v).exp()),
            Observable::Cos(0) => Some(gaussian_expectation(m, v, |z| (x0[0] * z.exp()).cos())),
            _ => None,
        }
    }
    fn exact_sgd_mean(
        &self,
        obs: Observable,
        x0: &Vector,
        eta: f64,
        batch: usize,
        steps: u32,
    ) -> Option<f64> {
        let k = steps as i32;
        let lin = 1.0 - eta * self.mean;
        let sq = lin * lin + eta * eta * self.std * self.std / batch as f64;
        match obs {
            Observable::Norm2(0) => Some(self.norm2(x0) * sq.powi(k)),
            Observable::Loss(0) => Some(0.5 * self.mean * self.norm2(x0) * sq.powi(k)),
            Observable::X0(0) => Some(x0[0] * lin.powi(k)),
            _ => None,
        }
    }
}
