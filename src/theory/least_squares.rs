//! Least squares: gradient flow in closed form, ridge, and their exact risk.
//!
//! Source: seed 000 §5.1 (Ali, Kolter, Tibshirani 2019, "A continuous-time view of
//! early stopping for least squares"). Loss `L(β) = (1/(2N))‖Xβ − y‖²` (seed eq. 20),
//! GF `β' = Xᵀ(y − Xβ)/N` (eq. 23), ridge `(XᵀX + NλI)^{-1}Xᵀy` (eq. 22).
//!
//! Everything goes through the spectrum `Σ̂ = XᵀX/N = V diag(λ) Vᵀ`: both GF at time
//! t and ridge at λ are spectral filters `β̂ = V f(Λ) Vᵀ Xᵀy/N` with
//! `f_gf(λ) = (1 − e^{−tλ})/λ` and `f_ridge(λ) = 1/(λ + λ_ridge)`. Working in the
//! eigenbasis makes the zero eigenvalues of `n < d` harmless (`f_gf(0) = t`, the limit)
//! instead of needing a pseudo-inverse.

use nalgebra::{DMatrix, DVector};

/// Eigendecomposition of `Σ̂ = XᵀX/N`. Eigenvalues below `ε·max(N,d)·λ_max` are set
/// to exactly 0: they are rounding of the null space of X (rank truncation, as in a
/// pseudo-inverse).
struct Spectrum {
    vals: DVector<f64>,
    vecs: DMatrix<f64>,
    n: usize,
}

impl Spectrum {
    fn of(x: &DMatrix<f64>) -> Self {
        let n = x.nrows();
        assert!(n > 0, "least_squares: empty data set");
        let sigma = x.transpose() * x / n as f64;
        let eig = nalgebra::SymmetricEigen::new(sigma);
        let lmax = eig.eigenvalues.max().max(0.0);
        let tol = f64::EPSILON * n.max(x.ncols()) as f64 * lmax;
        Spectrum {
            vals: eig.eigenvalues.map(|l| if l > tol { l } else { 0.0 }),
            vecs: eig.eigenvectors,
            n,
        }
    }

    /// `V g(Λ) Vᵀ v`.
    fn apply(&self, v: &DVector<f64>, g: impl Fn(f64) -> f64) -> DVector<f64> {
        let mut c = self.vecs.transpose() * v;
        for (ci, &l) in c.iter_mut().zip(self.vals.iter()) {
            *ci *= g(l);
        }
        &self.vecs * c
    }
}

/// `(1 − e^{−tλ})/λ`, with its limit `t` at λ = 0, without cancellation for small tλ.
fn gf_filter(t: f64, l: f64) -> f64 {
    let z = t * l;
    if z.abs() < 1e-8 {
        t * (1.0 - 0.5 * z)
    } else {
        -(-z).exp_m1() / l
    }
}

/// Exact gradient flow of `L` started at β(0) = 0 (seed 000 Lemma 5.1, eq. 24):
/// `β(t) = (XᵀX)^+ (I − exp(−t XᵀX/N)) Xᵀy`.
pub fn gf_solution(x: &DMatrix<f64>, y: &DVector<f64>, t: f64) -> DVector<f64> {
    gf_from(x, y, &DVector::zeros(x.ncols()), t)
}

/// Exact gradient flow of `L` from an arbitrary start:
/// `β(t) = e^{−tΣ̂} β₀ + f_gf(Σ̂) Xᵀy/N`, `Σ̂ = XᵀX/N`, `f_gf(λ) = (1 − e^{−tλ})/λ`.
/// (Variation of constants for the linear ODE `β' = −Σ̂β + Xᵀy/N`.) Reference for the
/// `gf` dynamics on `linear_regression`.
pub fn gf_from(x: &DMatrix<f64>, y: &DVector<f64>, beta0: &DVector<f64>, t: f64) -> DVector<f64> {
    assert_eq!(
        x.nrows(),
        y.len(),
        "gf_from: X has {} rows, y has {}",
        x.nrows(),
        y.len()
    );
    assert_eq!(
        x.ncols(),
        beta0.len(),
        "gf_from: X has {} columns, beta0 has {}",
        x.ncols(),
        beta0.len()
    );
    let s = Spectrum::of(x);
    let b = x.transpose() * y / s.n as f64;
    s.apply(beta0, |l| (-t * l).exp()) + s.apply(&b, |l| on_range(l, gf_filter(t, l)))
}

/// Filter value on `range(Xᵀ)` only: `b = Xᵀy/N` has no component along null(X), so
/// the (numerically polluted) null-space coordinates of `b` are dropped rather than
/// amplified by `f(0) = t` at long times.
fn on_range(l: f64, f: f64) -> f64 {
    if l == 0.0 {
        0.0
    } else {
        f
    }
}

/// Ridge estimator `(XᵀX + NλI)^{-1} Xᵀy` (seed 000 eq. 22), the minimiser of
/// `(1/N)‖y − Xβ‖² + λ‖β‖²`. Panics unless λ > 0.
pub fn ridge(x: &DMatrix<f64>, y: &DVector<f64>, lambda: f64) -> DVector<f64> {
    assert!(lambda > 0.0, "ridge: lambda must be > 0, got {lambda}");
    assert_eq!(
        x.nrows(),
        y.len(),
        "ridge: X has {} rows, y has {}",
        x.nrows(),
        y.len()
    );
    let s = Spectrum::of(x);
    let b = x.transpose() * y / s.n as f64;
    s.apply(&b, |l| on_range(l, 1.0 / (l + lambda)))
}

/// Bias–variance decomposition of `E‖β̂ − β₀‖²` over label noise `y = Xβ₀ + ε`,
/// `ε ~ (0, σ² I)` (seed 000 §5.1: Risk = Bias² + Var).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiskParts {
    /// `‖E β̂ − β₀‖²`.
    pub bias2: f64,
    /// `tr Cov β̂`.
    pub var: f64,
    /// `bias2 + var`.
    pub risk: f64,
}

/// Risk of a spectral filter `β̂ = S y`, `S = V f(Λ) Vᵀ Xᵀ/N`:
/// `Bias² = ‖S Xβ₀ − β₀‖² = Σ_i (1 − λ_i f(λ_i))² (V ᵀβ₀)_i²` (since `S X = V fΛ Vᵀ`),
/// `Var = σ² tr(S Sᵀ) = (σ²/N) Σ_i λ_i f(λ_i)²`.
fn filter_risk(
    s: &Spectrum,
    beta0: &DVector<f64>,
    sigma: f64,
    f: impl Fn(f64) -> f64,
) -> RiskParts {
    let c = s.vecs.transpose() * beta0;
    let (mut bias2, mut var) = (0.0, 0.0);
    for (&l, &ci) in s.vals.iter().zip(c.iter()) {
        let fl = f(l);
        bias2 += ((1.0 - l * fl) * ci).powi(2);
        var += l * fl * fl;
    }
    let var = sigma * sigma * var / s.n as f64;
    RiskParts {
        bias2,
        var,
        risk: bias2 + var,
    }
}

/// Exact Bias², Var, Risk of GF at time t from β(0) = 0 (Ali et al. 2019, seed 000
/// Theorem 5.1), for truth β₀ and noise level σ, X fixed.
pub fn gf_risk(x: &DMatrix<f64>, beta0: &DVector<f64>, sigma: f64, t: f64) -> RiskParts {
    assert_eq!(x.ncols(), beta0.len(), "gf_risk: dimension mismatch");
    filter_risk(&Spectrum::of(x), beta0, sigma, |l| gf_filter(t, l))
}

/// Exact Bias², Var, Risk of ridge at λ > 0 (same setting as [`gf_risk`]).
pub fn ridge_risk(x: &DMatrix<f64>, beta0: &DVector<f64>, sigma: f64, lambda: f64) -> RiskParts {
    assert!(lambda > 0.0, "ridge_risk: lambda must be > 0, got {lambda}");
    assert_eq!(x.ncols(), beta0.len(), "ridge_risk: dimension mismatch");
    filter_risk(&Spectrum::of(x), beta0, sigma, |l| 1.0 / (l + lambda))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory::testdata::Gauss;

    fn grad(x: &DMatrix<f64>, y: &DVector<f64>, b: &DVector<f64>) -> DVector<f64> {
        x.transpose() * (x * b - y) / x.nrows() as f64
    }

    /// Classical RK4 on β' = −∇L(β), independent of the spectral formula.
    fn rk4_gf(
        x: &DMatrix<f64>,
        y: &DVector<f64>,
        b0: &DVector<f64>,
        t: f64,
        steps: usize,
    ) -> DVector<f64> {
        let h = t / steps as f64;
        let mut b = b0.clone();
        for _ in 0..steps {
            let k1 = -grad(x, y, &b);
            let k2 = -grad(x, y, &(&b + &k1 * (h / 2.0)));
            let k3 = -grad(x, y, &(&b + &k2 * (h / 2.0)));
            let k4 = -grad(x, y, &(&b + &k3 * h));
            b += (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
        }
        b
    }

    #[test]
    fn gf_solution_matches_rk4() {
        let mut g = Gauss::new(1);
        for &(n, d) in &[(12, 5), (5, 12)] {
            let x = g.matrix(n, d);
            let y = g.vector(n);
            for &t in &[0.0, 0.3, 2.0, 7.0] {
                let exact = gf_solution(&x, &y, t);
                let num = rk4_gf(&x, &y, &DVector::zeros(d), t, 4000);
                let err = (&exact - &num).norm() / num.norm().max(1e-300);
                assert!(
                    t == 0.0 || err < 1e-10,
                    "n={n} d={d} t={t}: rel err {err:e}"
                );
                if t == 0.0 {
                    assert_eq!(exact.norm(), 0.0);
                }
            }
        }
    }

    #[test]
    fn gf_from_matches_rk4_and_is_a_semigroup() {
        let mut g = Gauss::new(2);
        let (n, d) = (6, 9);
        let x = g.matrix(n, d);
        let y = g.vector(n);
        let b0 = g.vector(d);
        let exact = gf_from(&x, &y, &b0, 1.7);
        let num = rk4_gf(&x, &y, &b0, 1.7, 4000);
        assert!((&exact - &num).norm() < 1e-10 * num.norm());
        // Flow property: φ_{s+t}(β) = φ_t(φ_s(β)); the null-space part of β₀ is kept.
        let two_step = gf_from(&x, &y, &gf_from(&x, &y, &b0, 0.6), 1.1);
        assert!((&exact - &two_step).norm() < 1e-12 * exact.norm());
    }

    #[test]
    fn gf_long_time_limit_is_min_norm_interpolator() {
        // n < d: GF from 0 stays in range(Xᵀ) and converges to Xᵀ(XXᵀ)^{-1}y.
        let mut g = Gauss::new(3);
        let x = g.matrix(4, 10);
        let y = g.vector(4);
        let xxt = &x * x.transpose();
        let mn = x.transpose() * xxt.lu().solve(&y).unwrap();
        let b = gf_solution(&x, &y, 1e6);
        assert!(
            (&b - &mn).norm() < 1e-10 * mn.norm(),
            "{:e}",
            (&b - &mn).norm() / mn.norm()
        );
    }

    #[test]
    fn ridge_matches_normal_equations() {
        let mut g = Gauss::new(4);
        for &(n, d) in &[(15, 6), (6, 15)] {
            let x = g.matrix(n, d);
            let y = g.vector(n);
            for &lam in &[1e-3, 0.1, 10.0] {
                let a = x.transpose() * &x + DMatrix::identity(d, d) * (n as f64 * lam);
                let direct = a.lu().solve(&(x.transpose() * &y)).unwrap();
                let r = ridge(&x, &y, lam);
                assert!(
                    (&r - &direct).norm() < 1e-10 * direct.norm(),
                    "n={n} d={d} λ={lam}"
                );
            }
        }
    }

    #[test]
    fn theorem_5_1_gf_vs_ridge_at_lambda_one_over_t() {
        // Seed 000 Thm 5.1 (Ali et al. 2019 Thm 1): Bias²(gf t) ≤ Bias²(ridge 1/t),
        // Var(gf t) ≤ 1.6862 Var(ridge 1/t), hence Risk likewise.
        let mut g = Gauss::new(5);
        let mut worst_var_ratio: f64 = 0.0;
        for rep in 0..10 {
            let (n, d) = if rep % 2 == 0 { (8, 20) } else { (25, 10) };
            let x = g.matrix(n, d) * g.uniform(0.3, 3.0);
            let b0 = g.vector(d);
            let sigma = g.uniform(0.1, 2.0);
            for k in -20..=20 {
                let t = 10f64.powf(k as f64 / 5.0);
                let gf = gf_risk(&x, &b0, sigma, t);
                let rr = ridge_risk(&x, &b0, sigma, 1.0 / t);
                assert!(
                    gf.bias2 <= rr.bias2 * (1.0 + 1e-12),
                    "bias t={t}: {gf:?} vs {rr:?}"
                );
                assert!(gf.var <= 1.6862 * rr.var * (1.0 + 1e-12), "var t={t}");
                assert!(gf.risk <= 1.6862 * rr.risk * (1.0 + 1e-12), "risk t={t}");
                worst_var_ratio = worst_var_ratio.max(gf.var / rr.var);
            }
        }
        assert!(worst_var_ratio > 1.5, "ratio {worst_var_ratio}");
        // The bound is nearly attained with one eigenvalue λ at tλ = 1.79328:
        // sup_x (1−e^{−x})²(1+x)²/x² = 1.685909… (Ali et al. round it up to 1.6862).
        let x = DMatrix::from_column_slice(3, 1, &[1.0, 2.0, -0.5]);
        let lam = x.norm_squared() / 3.0;
        let t = 1.7933 / lam;
        let one = DVector::from_element(1, 1.0);
        let r = gf_risk(&x, &one, 1.0, t).var / ridge_risk(&x, &one, 1.0, 1.0 / t).var;
        assert!(r > 1.68590 && r <= 1.6862, "1-d ratio {r}");
    }

    #[test]
    fn closed_form_risk_matches_monte_carlo() {
        let mut g = Gauss::new(6);
        for &(n, d) in &[(7, 4), (4, 7)] {
            let x = g.matrix(n, d);
            let b0 = g.vector(d);
            let sigma = 0.7;
            let (t, lam) = (1.3, 0.2);
            let gf = gf_risk(&x, &b0, sigma, t);
            let rr = ridge_risk(&x, &b0, sigma, lam);
            let m = 20000;
            let (mut s1, mut s2, mut r1, mut r2) = (0.0, 0.0, 0.0, 0.0);
            let xb = &x * &b0;
            for _ in 0..m {
                let y = &xb + g.vector(n) * sigma;
                let e = (gf_solution(&x, &y, t) - &b0).norm_squared();
                let f = (ridge(&x, &y, lam) - &b0).norm_squared();
                s1 += e;
                s2 += e * e;
                r1 += f;
                r2 += f * f;
            }
            let mf = m as f64;
            for (name, sum, sq, exact) in [("gf", s1, s2, gf.risk), ("ridge", r1, r2, rr.risk)] {
                let mean = sum / mf;
                let se = ((sq / mf - mean * mean) / (mf - 1.0)).sqrt();
                assert!(
                    (mean - exact).abs() < 4.0 * se,
                    "{name} n={n} d={d}: MC {mean} ± {se}, exact {exact}"
                );
            }
            assert!((gf.risk - gf.bias2 - gf.var).abs() < 1e-14 * gf.risk);
        }
    }
}
