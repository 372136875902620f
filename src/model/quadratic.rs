//! `quadratic`: R(x, θ) = ½ (x − θ)ᵀ A (x − θ), θ ~ N(m, S).
//!
//! ∇R(x, θ) = A(x − θ), ∇R(x) = A(x − m), H = A, G(x, θ) = A(θ − m) = A S^{1/2} z.
//! Σ = A S A is constant, so SME/SMF are Ornstein–Uhlenbeck processes (exact moments),
//! and the cylindrical noise reduces exactly to F dW with F = A S^{1/2}, W ∈ R^d.

use super::{zero, Capabilities, ExactStep, Model, Vector, MAX_D};
use crate::lanes::Num;
use crate::observables::Observable;
use nalgebra::{DMatrix, DVector, SymmetricEigen};

#[derive(Clone, Debug)]
pub struct Quadratic {
    d: usize,
    pub a: DMatrix<f64>,
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
    /// S^{1/2} (symmetric square root), θ = m + S^{1/2} z.
    pub s_half: DMatrix<f64>,
    /// F = A S^{1/2}: G(x, θ) = F z.
    pub f: DMatrix<f64>,
    /// Σ^{1/2} = (F Fᵀ)^{1/2}.
    pub sigma_half: DMatrix<f64>,
    /// Row-major copies of A, S^{1/2}, F, Σ^{1/2} for the inner loops.
    flat: [[f64; MAX_D * MAX_D]; 4],
    /// ½ tr(A S): the loss's irreducible part.
    loss_floor: f64,
}

fn flat(m: &DMatrix<f64>) -> [f64; MAX_D * MAX_D] {
    let mut out = [0.0; MAX_D * MAX_D];
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out[i * MAX_D + j] = m[(i, j)];
        }
    }
    out
}

const A: usize = 0;
const S_HALF: usize = 1;
const F: usize = 2;
const SIGMA_HALF: usize = 3;

/// The OU step z ← mean + E (z − mean) + C ξ with C the symmetric square root of the
/// step covariance `cov` (row-major copies, as the CPU step and the WGSL read them).
fn ou_step(mean: Vec<f64>, e: &DMatrix<f64>, cov: &DMatrix<f64>) -> ExactStep {
    ExactStep::Ou {
        mean,
        e: e.transpose().as_slice().to_vec(),
        c: sym_sqrt(cov).transpose().as_slice().to_vec(),
    }
}

/// Symmetric square root of a symmetric positive semi-definite matrix.
pub fn sym_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new(m.clone());
    let s = e.eigenvalues.map(|l| l.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&s) * e.eigenvectors.transpose()
}

impl Quadratic {
    /// `a` symmetric d×d, `cov` symmetric PSD d×d (checked by the config layer).
    pub fn new(a: DMatrix<f64>, mean: DVector<f64>, cov: DMatrix<f64>) -> Self {
        let d = mean.len();
        let s_half = sym_sqrt(&cov);
        let f = &a * &s_half;
        let sigma_half = sym_sqrt(&(&f * f.transpose()));
        let flat = [flat(&a), flat(&s_half), flat(&f), flat(&sigma_half)];
        let loss_floor = 0.5 * (&a * &cov).trace();
        Self {
            d,
            a,
            mean,
            cov,
            s_half,
            f,
            sigma_half,
            flat,
            loss_floor,
        }
    }

    #[inline(always)]
    fn matvec<T: Num>(&self, which: usize, v: &[T]) -> Vector<T> {
        let m = &self.flat[which];
        let mut out = zero();
        for i in 0..self.d {
            let mut s = T::ZERO;
            for j in 0..self.d {
                s += v[j] * m[i * MAX_D + j];
            }
            out[i] = s;
        }
        out
    }

    /// B = A + cA²: the OU drift matrix, dX = −B(X − m)dt + ….
    fn drift_matrix(&self, c: f64) -> DMatrix<f64> {
        &self.a + c * (&self.a * &self.a)
    }

    /// Mean and covariance of the OU process at time t from x0.
    pub fn ou_moments(
        &self,
        x0: &[f64],
        c: f64,
        noise_var: f64,
        t: f64,
    ) -> (DVector<f64>, DMatrix<f64>) {
        let b = self.drift_matrix(c);
        let eig = SymmetricEigen::new(b);
        let v = &eig.eigenvectors;
        let lam = &eig.eigenvalues;
        let q = noise_var * (&self.f * self.f.transpose());
        let qt = v.transpose() * q * v;
        let mut pt = DMatrix::zeros(self.d, self.d);
        for i in 0..self.d {
            for j in 0..self.d {
                let l = lam[i] + lam[j];
                let phi = if l.abs() * t < 1e-12 {
                    t
                } else {
                    -(-l * t).exp_m1() / l
                };
                pt[(i, j)] = qt[(i, j)] * phi;
            }
        }
        let p = v * pt * v.transpose();
        let decay = v * DMatrix::from_diagonal(&lam.map(|l| (-l * t).exp())) * v.transpose();
        let x0 = DVector::from_column_slice(x0);
        let mu = &self.mean + decay * (x0 - &self.mean);
        (mu, p)
    }

    /// Mean and covariance of the SGD iterate after `steps` steps (Gaussian recursion).
    pub fn sgd_moments(
        &self,
        x0: &[f64],
        eta: f64,
        batch: usize,
        steps: u32,
    ) -> (DVector<f64>, DMatrix<f64>) {
        let id = DMatrix::<f64>::identity(self.d, self.d);
        let k = &id - eta * &self.a;
        let q = (eta * eta / batch as f64) * (&self.f * self.f.transpose());
        let mut mu = DVector::from_column_slice(x0);
        let mut p = DMatrix::zeros(self.d, self.d);
        for _ in 0..steps {
            mu = &k * (mu - &self.mean) + &self.mean;
            p = &k * p * k.transpose() + &q;
        }
        (mu, p)
    }

    /// Mean and covariance of x under heavy ball (DESIGN §3b) from (x0, p0 = 0) after
    /// `steps` steps of size η: msgd, or (`sde`) msme1 at t = steps·η. With y = x − m,
    /// msgd is the Gaussian recursion (y, p)' = M (y, p) + N ξ, ξ = θ̄ − m ~ N(0, S/b);
    /// msme1 is the OU pair d(y, p) = B (y, p) dt + (0, sqrt(η/b) Σ^{1/2} dW), whose
    /// covariance comes from one matrix exponential (Van Loan 1978).
    pub fn momentum_moments(
        &self,
        x0: &[f64],
        eta: f64,
        friction: f64,
        batch: usize,
        steps: u32,
        sde: bool,
    ) -> (DVector<f64>, DMatrix<f64>) {
        let d = self.d;
        let id = DMatrix::<f64>::identity(d, d);
        let sigma = &self.f * self.f.transpose(); // Σ = A S A
        let mut z0 = DVector::zeros(2 * d);
        for i in 0..d {
            z0[i] = x0[i] - self.mean[i];
        }
        let (mu, cov) = if sde {
            let (phi, cov) = self.momentum_ou(friction, eta / batch as f64, steps as f64 * eta);
            (&phi * z0, cov)
        } else {
            let keep = 1.0 - eta * friction;
            let mut m = DMatrix::zeros(2 * d, 2 * d);
            m.view_mut((0, 0), (d, d))
                .copy_from(&(&id - eta * eta * &self.a));
            m.view_mut((0, d), (d, d)).copy_from(&(eta * keep * &id));
            m.view_mut((d, 0), (d, d)).copy_from(&(-eta * &self.a));
            m.view_mut((d, d), (d, d)).copy_from(&(keep * &id));
            // N (S/b) Nᵀ with N = (η² A; η A): blocks η^{4,3,2} Σ / b.
            let mut q = DMatrix::zeros(2 * d, 2 * d);
            let s = &sigma / batch as f64;
            q.view_mut((0, 0), (d, d)).copy_from(&(eta.powi(4) * &s));
            q.view_mut((0, d), (d, d)).copy_from(&(eta.powi(3) * &s));
            q.view_mut((d, 0), (d, d)).copy_from(&(eta.powi(3) * &s));
            q.view_mut((d, d), (d, d)).copy_from(&(eta * eta * &s));
            let mut mu = z0;
            let mut cov = DMatrix::zeros(2 * d, 2 * d);
            for _ in 0..steps {
                mu = &m * mu;
                cov = &m * cov * m.transpose() + &q;
            }
            (mu, cov)
        };
        let x_mean = DVector::from_fn(d, |i, _| mu[i] + self.mean[i]);
        (x_mean, cov.view((0, 0), (d, d)).into_owned())
    }

    /// The heavy-ball SDE as an OU pair in z = (X − m, P): dz = B z dt + (0, sqrt(q) Σ^{1/2}
    /// dW) with B = [[0, I], [−A, −γI]]; returns e^{Bt} and the covariance of z_t from
    /// z_0 = 0, both by Van Loan's block exponential (B is not symmetric).
    fn momentum_ou(&self, friction: f64, noise_var: f64, t: f64) -> (DMatrix<f64>, DMatrix<f64>) {
        let d = self.d;
        let n = 2 * d;
        let id = DMatrix::<f64>::identity(d, d);
        let sigma = &self.f * self.f.transpose(); // Σ = A S A
        let mut b = DMatrix::zeros(n, n);
        b.view_mut((0, d), (d, d)).copy_from(&id);
        b.view_mut((d, 0), (d, d)).copy_from(&(-&self.a));
        b.view_mut((d, d), (d, d)).copy_from(&(-friction * &id));
        let mut q = DMatrix::zeros(n, n);
        q.view_mut((d, d), (d, d)).copy_from(&(noise_var * &sigma));
        let mut h = DMatrix::zeros(2 * n, 2 * n);
        h.view_mut((0, 0), (n, n)).copy_from(&(-&b * t));
        h.view_mut((0, n), (n, n)).copy_from(&(&q * t));
        h.view_mut((n, n), (n, n)).copy_from(&(b.transpose() * t));
        let e = h.exp();
        let phi = e.view((n, n), (n, n)).transpose(); // e^{Bt}
        let cov = &phi * e.view((0, n), (n, n));
        // Symmetrise: the product is symmetric up to rounding, and the step's C is its
        // symmetric square root.
        let cov = 0.5 * (&cov + cov.transpose());
        (phi, cov)
    }

    /// E g(X) for X ~ N(mu, p).
    fn gaussian_mean(&self, obs: Observable, mu: &DVector<f64>, p: &DMatrix<f64>) -> Option<f64> {
        match obs {
            Observable::Norm2(0) => Some(mu.norm_squared() + p.trace()),
            Observable::X0(0) => Some(mu[0]),
            Observable::Cos(0) => Some(mu[0].cos() * (-0.5 * p[(0, 0)]).exp()),
            Observable::Loss(0) => {
                let dm = mu - &self.mean;
                let quad = (dm.transpose() * &self.a * &dm)[(0, 0)];
                Some(0.5 * (quad + (&self.a * p).trace() + (&self.a * &self.cov).trace()))
            }
            _ => None,
        }
    }
}

impl Model for Quadratic {
    fn dim(&self) -> usize {
        self.d
    }
    fn data_normals(&self) -> usize {
        self.d
    }
    #[inline(always)]
    fn sample_theta<T: Num>(&self, z: &[T]) -> Vector<T> {
        let mut t = self.matvec(S_HALF, z);
        for i in 0..self.d {
            t[i] = t[i] + self.mean[i];
        }
        t
    }
    #[inline(always)]
    fn grad_sample<T: Num>(&self, x: &Vector<T>, theta: &Vector<T>) -> Vector<T> {
        let mut diff = zero();
        for i in 0..self.d {
            diff[i] = x[i] - theta[i];
        }
        self.matvec(A, &diff)
    }
    #[inline(always)]
    fn grad<T: Num>(&self, x: &Vector<T>) -> Vector<T> {
        let mut diff = zero();
        for i in 0..self.d {
            diff[i] = x[i] - self.mean[i];
        }
        self.matvec(A, &diff)
    }
    #[inline(always)]
    fn hvp<T: Num>(&self, _x: &Vector<T>, v: &Vector<T>) -> Vector<T> {
        self.matvec(A, v)
    }
    #[inline(always)]
    fn loss(&self, x: &Vector) -> f64 {
        let g = self.grad(x);
        let mut quad = 0.0;
        for i in 0..self.d {
            quad += (x[i] - self.mean[i]) * g[i];
        }
        0.5 * quad + self.loss_floor
    }
    fn smf_noise_dim(&self) -> usize {
        self.d
    }
    #[inline(always)]
    fn smf_noise<T: Num>(&self, _x: &Vector<T>, dw: &[T]) -> Vector<T> {
        self.matvec(F, dw)
    }
    #[inline(always)]
    fn sme_noise<T: Num>(&self, _x: &Vector<T>, dw: &[T]) -> Vector<T> {
        self.matvec(SIGMA_HALF, dw)
    }
    fn exact_step(&self, c: f64, noise_var: f64, h: f64) -> ExactStep {
        // One OU step from x is m + e^{−Bh}(x − m) + N(0, P(h)); P(h) from x0 = m.
        let (_, p) = self.ou_moments(self.mean.as_slice(), c, noise_var, h);
        let b = self.drift_matrix(c);
        let eig = SymmetricEigen::new(b);
        let e = &eig.eigenvectors
            * DMatrix::from_diagonal(&eig.eigenvalues.map(|l| (-l * h).exp()))
            * eig.eigenvectors.transpose();
        ou_step(self.mean.as_slice().to_vec(), &e, &p)
    }
    fn exact_momentum_step(&self, friction: f64, noise_var: f64, h: f64) -> ExactStep {
        // (X, P) ← (m, 0) + e^{Bh} ((X, P) − (m, 0)) + N(0, cov(h)).
        let (phi, cov) = self.momentum_ou(friction, noise_var, h);
        let mut mean = self.mean.as_slice().to_vec();
        mean.resize(2 * self.d, 0.0);
        ou_step(mean, &phi, &cov)
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            exact_transition: true,
            exact_momentum_transition: true,
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
        let (mu, p) = self.ou_moments(&x0[..self.d], c, noise_var, t);
        self.gaussian_mean(obs, &mu, &p)
    }
    fn exact_sgd_mean(
        &self,
        obs: Observable,
        x0: &Vector,
        eta: f64,
        batch: usize,
        steps: u32,
    ) -> Option<f64> {
        let (mu, p) = self.sgd_moments(&x0[..self.d], eta, batch, steps);
        self.gaussian_mean(obs, &mu, &p)
    }
    fn exact_momentum_mean(
        &self,
        obs: Observable,
        x0: &Vector,
        eta: f64,
        friction: f64,
        batch: usize,
        steps: u32,
        sde: bool,
    ) -> Option<f64> {
        let (mu, p) = self.momentum_moments(&x0[..self.d], eta, friction, batch, steps, sde);
        self.gaussian_mean(obs, &mu, &p)
    }
}
