//! Hyperbolic entropy and the minimum-entropy interpolator: the implicit bias of
//! gradient flow on a diagonal linear network (DLN).
//!
//! Source: seed 000 §5.2.1 (Woodworth et al. 2020, Thm 5.3 / eq. 35) and seed 003
//! Thm 2.1 (Even et al. 2023). Derivation (our loss `L(β) = (1/(2N))‖Xβ − y‖²`,
//! `r(t) = ∇_β L(β(t)) = Xᵀ(Xβ − y)/N ∈ range(Xᵀ)`; the normalisation of `L` only
//! rescales time and does not change the limit):
//!
//! **`β = w₊² − w₋²`, `w±(0) = α`.** GF: `w₊' = −2 w₊⊙r`, `w₋' = +2 w₋⊙r`, so
//! `w±(t) = α ⊙ e^{∓2∫r}` and `β(t) = −2α² ⊙ sinh(4∫₀ᵗ r)`. Since `4∫r = −Xᵀν` for some
//! ν, an interpolating limit has the form `β = b_α(Xᵀν) = 2α² ⊙ sinh(Xᵀν)`. It is the
//! KKT point of `min φ(β) s.t. Xβ = y` iff `∇φ = b_α^{-1}` up to a positive factor:
//! `∂ψ/∂β_i = ¼ arcsinh(β_i/(2α_i²))`, which integrates (with `ψ(0) = 0`) to
//!
//! `ψ_α(β) = ¼ Σ_i [β_i arcsinh(β_i/(2α_i²)) − sqrt(β_i² + 4α_i⁴) + 2α_i²]`.
//!
//! *Correction to seed 000 eq. (35):* as printed the bracket puts `Σ_i` on the first
//! term only and omits `+2α_i²`; the sum covers both terms, and the constant makes
//! `ψ_α(0) = 0`, `ψ_α ≥ 0` (it does not move the argmin).
//!
//! **`β = u⊙v`, `u(0) = √2α`, `v(0) = 0` (Even et al.).** GF: `u' = −v⊙r`, `v' = −u⊙r`.
//! Then `(u² − v²)' = 2u u' − 2v v' = −2uvr + 2vur = 0`: `u² − v² = 2α²` for all t.
//! With `s = u + v`, `δ = u − v`: `s' = −s⊙r`, `δ' = δ⊙r`, `s(0) = δ(0) = √2α`, so
//! `β = (s² − δ²)/4 = −α² ⊙ sinh(2∫r)`, i.e. `β = α² ⊙ sinh(Xᵀν)` at the limit.
//! Matching `2α_w² = α²` gives the **α mapping `α_w = α/√2`** (`α_w² = α²/2`): GF on
//! `u⊙v` from `(√2α, 0)` converges to `argmin ψ_{α/√2}` (see [`alpha_for_uv`]). The
//! same follows from `u = w₊ + w₋`, `v = w₊ − w₋` (then `uv = w₊² − w₋²`, the flows agree
//! up to time ×2, and `u(0) = 2α_w`).
//! *Correction to seed 003 Thm 2.1:* its potential should read
//! `ψ^{uv}_α(β) = ½ Σ_i [β_i arcsinh(β_i/α_i²) − sqrt(β_i² + α_i⁴) + α_i²]` — the `+α_i²` is
//! outside the square root (printed inside). Then `ψ^{uv}_α = 2 ψ_{α/√2}` ([`psi_uv`]).

use super::{Result, TheoryError};
use nalgebra::{DMatrix, DVector};

/// Woodworth's hyperbolic entropy `ψ_α(β)` for `β = w₊² − w₋²`, `w±(0) = α` (formula
/// in the module doc). `α` must have no zero entries.
pub fn psi(alpha: &DVector<f64>, beta: &DVector<f64>) -> f64 {
    assert_eq!(alpha.len(), beta.len(), "psi: dimension mismatch");
    alpha
        .iter()
        .zip(beta.iter())
        .map(|(&a, &b)| {
            let c = 2.0 * a * a;
            b * (b / c).asinh() - b.hypot(c) + c
        })
        .sum::<f64>()
        / 4.0
}

/// `∇ψ_α(β)_i = ¼ arcsinh(β_i/(2α_i²))`.
pub fn grad_psi(alpha: &DVector<f64>, beta: &DVector<f64>) -> DVector<f64> {
    assert_eq!(alpha.len(), beta.len(), "grad_psi: dimension mismatch");
    beta.zip_map(alpha, |b, a| 0.25 * (b / (2.0 * a * a)).asinh())
}

/// Even et al.'s potential for `β = u⊙v`, `u(0) = √2α`, `v(0) = 0` (seed 003 Thm 2.1,
/// corrected): `½ Σ_i [β_i arcsinh(β_i/α_i²) − sqrt(β_i² + α_i⁴) + α_i²] = 2 ψ_{α/√2}(β)`.
pub fn psi_uv(alpha_uv: &DVector<f64>, beta: &DVector<f64>) -> f64 {
    assert_eq!(alpha_uv.len(), beta.len(), "psi_uv: dimension mismatch");
    alpha_uv
        .iter()
        .zip(beta.iter())
        .map(|(&a, &b)| {
            let c = a * a;
            b * (b / c).asinh() - b.hypot(c) + c
        })
        .sum::<f64>()
        / 2.0
}

/// The Woodworth α equivalent to the `u⊙v` initialisation `u(0) = √2α, v(0) = 0`:
/// `α_w = α/√2` (derivation in the module doc). Feed the result to [`psi`] and
/// [`min_entropy_interpolator`].
pub fn alpha_for_uv(alpha_uv: &DVector<f64>) -> DVector<f64> {
    alpha_uv * std::f64::consts::FRAC_1_SQRT_2
}

/// `argmin ψ_α(β) s.t. Xβ = y` (Woodworth α; for `u⊙v` pass [`alpha_for_uv`]).
/// Requires `X` of full row rank (typically `N < d`); errors if the dual Newton method
/// does not reach `‖Xβ − y‖ ≤ 1e-12·(‖y‖ + ‖|X||β|‖)`.
pub fn min_entropy_interpolator(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    alpha: &DVector<f64>,
) -> Result<DVector<f64>> {
    min_bregman_interpolator(x, y, alpha, &DVector::zeros(x.ncols()))
}

/// `argmin D_ψα(β, β_ref) s.t. Xβ = y`, the Bregman projection of `β_ref` onto the
/// interpolators (`β_ref = 0` gives [`min_entropy_interpolator`]; a nonzero `β_ref` is
/// the `β̃₀` of seed 003 Thm 2.2).
///
/// Method: the KKT conditions are `Xβ = y`, `∇ψ_α(β) − ∇ψ_α(β_ref) ∈ range(Xᵀ)`. With
/// `Φ = 4ψ_α` (so `∇Φ = arcsinh(β/a)`, `a = 2α²`) they read
/// `β(ν) = a ⊙ sinh(Xᵀν + c)`, `c = arcsinh(β_ref/a)`, and ν maximises the concave dual
/// `g(ν) = yᵀν − Σ_i Φ*_i((Xᵀν)_i + c_i)`, `Φ*_i(z) = a_i cosh z` (+const). We minimise
/// `h = −g` by Newton (`∇h = Xβ(ν) − y`, `∇²h = X diag(a cosh(Xᵀν + c)) Xᵀ`, positive
/// definite for full-row-rank X) with backtracking. A step is accepted if it satisfies
/// Armijo on `h` or decreases `‖∇h‖`: near the optimum `h` changes by less than its
/// rounding, while the residual still measures progress.
pub fn min_bregman_interpolator(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    alpha: &DVector<f64>,
    beta_ref: &DVector<f64>,
) -> Result<DVector<f64>> {
    let (n, d) = x.shape();
    if y.len() != n || alpha.len() != d || beta_ref.len() != d {
        return Err(TheoryError::Dimension(format!(
            "X is {n}×{d}, y has {}, alpha has {}, beta_ref has {}",
            y.len(),
            alpha.len(),
            beta_ref.len()
        )));
    }
    if alpha.iter().any(|&a| !(a.is_finite() && a != 0.0)) {
        return Err(TheoryError::Invalid(
            "alpha must be finite with no zero entries".into(),
        ));
    }
    let a = alpha.map(|al| 2.0 * al * al);
    let c = beta_ref.zip_map(&a, |b, ai| (b / ai).asinh());
    let xt = x.transpose();
    let abs_x = x.abs();

    // β(ν), h(ν), ∇h(ν); h is shifted so that h = 0 at z = 0.
    let eval = |nu: &DVector<f64>| {
        let z = &xt * nu + &c;
        let beta = z.zip_map(&a, |zi, ai| ai * zi.sinh());
        let h = z
            .iter()
            .zip(c.iter())
            .zip(a.iter())
            .map(|((&zi, &ci), &ai)| ai * (zi.cosh() - ci.cosh()))
            .sum::<f64>()
            - y.dot(nu);
        let grad = x * &beta - y;
        (z, beta, h, grad)
    };

    let mut nu = DVector::zeros(n);
    let (mut z, mut beta, mut h, mut grad) = eval(&nu);
    let max_iter = 500;
    let mut target = 0.0;
    for _ in 0..max_iter {
        target = 1e-12 * (y.norm() + (&abs_x * beta.abs()).norm());
        if grad.norm() <= target {
            return Ok(beta);
        }
        let w = z.zip_map(&a, |zi, ai| ai * zi.cosh());
        let hess = x * DMatrix::from_diagonal(&w) * &xt;
        let step = newton_step(hess, &grad)?;
        let slope = grad.dot(&step);
        let gnorm = grad.norm();
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..80 {
            let cand = &nu + &step * t;
            let (z2, b2, h2, g2) = eval(&cand);
            let finite = h2.is_finite() && g2.iter().all(|v| v.is_finite());
            if finite && (h2 <= h + 1e-4 * t * slope || g2.norm() <= (1.0 - 1e-4 * t) * gnorm) {
                (nu, z, beta, h, grad) = (cand, z2, b2, h2, g2);
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    Err(TheoryError::NotConverged {
        iters: max_iter,
        residual: grad.norm(),
        target,
    })
}

/// Solve `H s = −g` for the SPD Hessian by Cholesky, adding a tiny multiple of the
/// identity if rounding made it numerically indefinite (extreme α).
fn newton_step(hess: DMatrix<f64>, grad: &DVector<f64>) -> Result<DVector<f64>> {
    let n = hess.nrows();
    let scale = hess.diagonal().max().max(f64::MIN_POSITIVE);
    let mut jitter = 0.0;
    for _ in 0..8 {
        let m = &hess + DMatrix::identity(n, n) * jitter;
        if let Some(ch) = m.cholesky() {
            return Ok(-ch.solve(grad));
        }
        jitter = if jitter == 0.0 {
            1e-15 * scale
        } else {
            jitter * 100.0
        };
    }
    Err(TheoryError::Invalid(
        "dual Hessian X diag(·) Xᵀ is singular: X must have full row rank".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory::testdata::Gauss;

    /// Component of `v` orthogonal to range(Xᵀ).
    fn off_range(x: &DMatrix<f64>, v: &DVector<f64>) -> DVector<f64> {
        let mu = (x * x.transpose()).lu().solve(&(x * v)).unwrap();
        v - x.transpose() * mu
    }

    fn min_l2(x: &DMatrix<f64>, y: &DVector<f64>) -> DVector<f64> {
        x.transpose() * (x * x.transpose()).lu().solve(y).unwrap()
    }

    #[test]
    fn psi_gradient_and_uv_identity() {
        let mut g = Gauss::new(10);
        let d = 6;
        let alpha = DVector::from_fn(d, |_, _| g.uniform(0.05, 2.0));
        let beta = g.vector(d) * 3.0;
        assert_eq!(psi(&alpha, &DVector::zeros(d)), 0.0);
        assert!(psi(&alpha, &beta) > 0.0);
        // Central differences of ψ against the closed-form gradient.
        let gr = grad_psi(&alpha, &beta);
        for i in 0..d {
            let h = 1e-5;
            let mut bp = beta.clone();
            let mut bm = beta.clone();
            bp[i] += h;
            bm[i] -= h;
            let fd = (psi(&alpha, &bp) - psi(&alpha, &bm)) / (2.0 * h);
            assert!((fd - gr[i]).abs() < 1e-8, "i={i}: fd {fd} vs {}", gr[i]);
        }
        // Even et al.'s (corrected) ψ for u⊙v is 2ψ at α/√2.
        let a_uv = alpha.clone();
        let lhs = psi_uv(&a_uv, &beta);
        let rhs = 2.0 * psi(&alpha_for_uv(&a_uv), &beta);
        assert!((lhs - rhs).abs() < 1e-12 * lhs.abs(), "{lhs} vs {rhs}");
    }

    #[test]
    fn interpolator_satisfies_kkt_and_is_minimal_on_the_affine_set() {
        let mut g = Gauss::new(11);
        for &(n, d, lo, hi) in &[(5, 12, 0.05, 2.0), (3, 8, 1e-3, 1e-2), (8, 9, 1.0, 10.0)] {
            let x = g.matrix(n, d);
            let y = g.vector(n);
            let alpha = DVector::from_fn(d, |_, _| g.uniform(lo, hi));
            let beta = min_entropy_interpolator(&x, &y, &alpha).unwrap();
            assert!((&x * &beta - &y).norm() <= 1e-10 * y.norm(), "feasibility");
            let gr = grad_psi(&alpha, &beta);
            let off = off_range(&x, &gr).norm();
            assert!(off <= 1e-9 * gr.norm(), "∇ψ off range(Xᵀ) by {off:e}");
            // Moving along null(X) never lowers ψ.
            let p0 = psi(&alpha, &beta);
            for _ in 0..20 {
                let dir = off_range(&x, &g.vector(d));
                for &e in &[1e-3, 1e-1] {
                    assert!(psi(&alpha, &(&beta + &dir * e)) >= p0);
                }
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut g = Gauss::new(15);
        let x = g.matrix(6, 3);
        let y = g.vector(6); // generically not in range(X): no interpolator exists
        let alpha = DVector::from_element(3, 0.5);
        assert!(min_entropy_interpolator(&x, &y, &alpha).is_err());
        let x = g.matrix(2, 3);
        let y = g.vector(2);
        let zero = DVector::from_vec(vec![0.5, 0.0, 0.5]);
        assert!(matches!(
            min_entropy_interpolator(&x, &y, &zero),
            Err(TheoryError::Invalid(_))
        ));
        assert!(matches!(
            min_entropy_interpolator(&x, &g.vector(3), &alpha),
            Err(TheoryError::Dimension(_))
        ));
    }

    #[test]
    fn small_alpha_gives_min_l1_and_large_alpha_min_l2() {
        // N=20, d=30, 3-sparse truth: the ℓ1 minimiser is the truth, certified by the
        // dual vector ν = X_S(X_SᵀX_S)^{-1}sign(β_S) with |X_{Sᶜ}ᵀν| < 1.
        // Instances are drawn until the certificate holds (most do), so that the
        // comparison below is with a provable ℓ1 minimiser.
        let (n, d) = (20, 30);
        let supp = [3usize, 11, 25];
        let (x, truth) = (12..62)
            .find_map(|seed| {
                let mut g = Gauss::new(seed);
                let x = g.matrix(n, d);
                let mut truth = DVector::<f64>::zeros(d);
                for (&i, v) in supp.iter().zip([1.5, -2.0, 0.8]) {
                    truth[i] = v;
                }
                let xs = x.select_columns(&supp);
                let sgn = DVector::from_iterator(3, supp.iter().map(|&i| truth[i].signum()));
                let nu = &xs * (xs.transpose() * &xs).lu().solve(&sgn).unwrap();
                let cert = x.transpose() * nu;
                let off_max = (0..d)
                    .filter(|i| !supp.contains(i))
                    .map(|i| cert[i].abs())
                    .fold(0.0, f64::max);
                (off_max < 1.0).then_some((x, truth))
            })
            .expect("no instance with an ℓ1 recovery certificate");
        let y = &x * &truth;

        let mut prev = f64::INFINITY;
        for &a in &[1e-2, 1e-4, 1e-6, 1e-8] {
            let alpha = DVector::from_element(d, a);
            let b = min_entropy_interpolator(&x, &y, &alpha).unwrap();
            let err = (&b - &truth).norm() / truth.norm();
            eprintln!("alpha {a:e}: rel dist to min-l1 {err:e}");
            assert!(err < prev, "not approaching ℓ1 as α ↓ 0");
            prev = err;
        }
        assert!(prev < 1e-10, "{prev:e}");

        let l2 = min_l2(&x, &y);
        let mut prev = f64::INFINITY;
        for &a in &[1.0, 10.0, 100.0] {
            let alpha = DVector::from_element(d, a);
            let b = min_entropy_interpolator(&x, &y, &alpha).unwrap();
            let err = (&b - &l2).norm() / l2.norm();
            eprintln!("alpha {a:e}: rel dist to min-l2 {err:e}");
            assert!(err < prev, "not approaching ℓ2 as α ↑ ∞");
            prev = err;
        }
        assert!(prev < 1e-8, "{prev:e}");
    }

    /// RK4 on GF of a 2d-dimensional state `(p, q)` with `β = beta(p, q)` and vector
    /// field `field`, run until `L < 1e-26`. The step adapts to a bound on the local
    /// Lipschitz constant so that the RK4 error in the limit stays far below 1e-6.
    fn run_gf(
        x: &DMatrix<f64>,
        y: &DVector<f64>,
        p0: DVector<f64>,
        q0: DVector<f64>,
        beta: impl Fn(&DVector<f64>, &DVector<f64>) -> DVector<f64>,
        field: impl Fn(&DVector<f64>, &DVector<f64>, &DVector<f64>) -> (DVector<f64>, DVector<f64>),
        lip_scale: f64,
    ) -> DVector<f64> {
        let n = x.nrows() as f64;
        let lmax = nalgebra::SymmetricEigen::new(x.transpose() * x / n)
            .eigenvalues
            .max();
        let r = |p: &DVector<f64>, q: &DVector<f64>| x.transpose() * (x * beta(p, q) - y) / n;
        let f = |p: &DVector<f64>, q: &DVector<f64>| field(p, q, &r(p, q));
        let (mut p, mut q) = (p0, q0);
        for _ in 0..5_000_000 {
            let res = x * beta(&p, &q) - y;
            if res.norm_squared() / (2.0 * n) < 1e-26 {
                return beta(&p, &q);
            }
            let w2 = p.iter().chain(q.iter()).map(|v| v * v).fold(0.0, f64::max);
            let lip = lip_scale * (w2 * lmax + r(&p, &q).amax());
            let h = 0.02 / lip;
            let (k1p, k1q) = f(&p, &q);
            let (k2p, k2q) = f(&(&p + &k1p * (h / 2.0)), &(&q + &k1q * (h / 2.0)));
            let (k3p, k3q) = f(&(&p + &k2p * (h / 2.0)), &(&q + &k2q * (h / 2.0)));
            let (k4p, k4q) = f(&(&p + &k3p * h), &(&q + &k3q * h));
            p += (k1p + k2p * 2.0 + k3p * 2.0 + k4p) * (h / 6.0);
            q += (k1q + k2q * 2.0 + k3q * 2.0 + k4q) * (h / 6.0);
        }
        panic!("GF did not reach L < 1e-26");
    }

    fn dln_instance(seed: u64) -> (DMatrix<f64>, DVector<f64>, DVector<f64>) {
        let mut g = Gauss::new(seed);
        let (n, d) = (5, 10);
        let x = g.matrix(n, d);
        let mut truth = DVector::zeros(d);
        truth[1] = 1.0;
        truth[6] = -0.7;
        let y = &x * truth + g.vector(n) * 0.1;
        let alpha = DVector::from_fn(d, |_, _| g.uniform(0.1, 0.5));
        (x, y, alpha)
    }

    #[test]
    fn dln_gf_limit_is_min_entropy_interpolator_w_plus_minus() {
        // β = w₊² − w₋², w±(0) = α: the limit is argmin ψ_α with the same α.
        let (x, y, alpha) = dln_instance(13);
        let lim = run_gf(
            &x,
            &y,
            alpha.clone(),
            alpha.clone(),
            |p, q| p.component_mul(p) - q.component_mul(q),
            |p, q, r| (p.component_mul(r) * -2.0, q.component_mul(r) * 2.0),
            8.0,
        );
        let th = min_entropy_interpolator(&x, &y, &alpha).unwrap();
        let err = (&lim - &th).norm() / th.norm();
        eprintln!("w±: rel dist {err:e}");
        assert!(err <= 1e-6, "w±: rel dist {err:e}");
        // A factor 2 in α² is far outside the tolerance: the test pins the scale.
        let wrong = min_entropy_interpolator(&x, &y, &(&alpha * std::f64::consts::SQRT_2)).unwrap();
        assert!((&lim - &wrong).norm() / th.norm() > 1e-3);
    }

    #[test]
    fn dln_gf_limit_is_min_entropy_interpolator_u_times_v() {
        // β = u⊙v, u(0) = √2α, v(0) = 0: the limit is argmin ψ_{α/√2}, and u² − v² = 2α².
        let (x, y, alpha) = dln_instance(14);
        let d = alpha.len();
        let u0 = &alpha * std::f64::consts::SQRT_2;
        let lim = run_gf(
            &x,
            &y,
            u0,
            DVector::zeros(d),
            |u, v| u.component_mul(v),
            |u, v, r| (-v.component_mul(r), -u.component_mul(r)),
            4.0,
        );
        let th = min_entropy_interpolator(&x, &y, &alpha_for_uv(&alpha)).unwrap();
        let err = (&lim - &th).norm() / th.norm();
        eprintln!("u⊙v: rel dist {err:e}");
        assert!(err <= 1e-6, "u⊙v: rel dist {err:e}");
        let wrong = min_entropy_interpolator(&x, &y, &alpha).unwrap();
        assert!(
            (&lim - &wrong).norm() / th.norm() > 1e-3,
            "α mapping not pinned"
        );
    }
}
