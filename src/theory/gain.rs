//! Effective initialisation of (S)GD on a diagonal linear network (Even, Pesme,
//! Gunasekar, Flammarion 2023; seed 003 Thm 2.2 and appendix A).
//!
//! Parametrisation: `β = u⊙v`, `u₀ = √2α`, `v₀ = 0` (Even et al.'s; **not**
//! Woodworth's `w₊² − w₋²`). Iterates `u ← u − γ v⊙g_k`, `v ← v − γ u⊙g_k` with
//! `g_k = ∇_β L_{B_k}(β_k) = (1/b) Σ_{i∈B_k} x_i (x_iᵀβ_k − y_i)`, where
//! `L_B(β) = (1/(2b)) Σ_{i∈B} (y_i − ⟨β, x_i⟩)²`. With `B = [N]` this is exactly smflow's
//! `L(β) = (1/(2N))‖Xβ − y‖²`, so no conversion is needed (beware: seed 000 eq. 36,
//! Pesme et al., uses `1/(4n)`, i.e. half our gradient).
//!
//! Why the formula holds, exactly and for any step: with `s = u + v`, `δ = u − v`,
//! `s_{k+1} = (1 − x_k)⊙s_k`, `δ_{k+1} = (1 + x_k)⊙δ_k`, `x_k = γ g_k`, and
//! `β = (s² − δ²)/4`. Writing `(1 ∓ x)² = exp(−q±(x) ∓ 2x)` with
//! `q±(x) = ∓2x − ln((1 ∓ x)²)` gives `β_k = ½[α₊² e^{−2Σx} − α₋² e^{2Σx}]`,
//! `α±² = α² ⊙ exp(−Σ_k q±(x_k))`. Since `Σ_k x_k ∈ range(Xᵀ)`, an interpolating limit is
//! `β = α_∞² ⊙ sinh(arcsinh(β̃₀/α_∞²) + Xᵀν)` with
//! `α_∞² = α₊α₋ = α² ⊙ exp(−Gain)`, `Gain = Σ_k q(x_k)`, `q = (q₊ + q₋)/2 = −½ln((1 − x²)²)`
//! and `β̃₀ = ½(α₊² − α₋²)`: the KKT point of `min D_ψ(β, β̃₀) s.t. Xβ = y` for the `u⊙v`
//! potential at `α_∞`. In smflow's (Woodworth) convention that is
//! `hyperbolic_entropy::min_bregman_interpolator(X, y, alpha_for_uv(α_∞), β̃₀)`;
//! dropping `β̃₀` (small for small α) gives Even et al.'s `argmin ψ_{α_∞}`.

use nalgebra::{DMatrix, DVector};

/// `q(x) = −½ ln((1 − x²)²) = −ln|1 − x²|` (≈ x² near 0, +∞ at |x| = 1).
pub fn q(x: f64) -> f64 {
    let x2 = x * x;
    if x2 < 1.0 {
        -(-x2).ln_1p()
    } else {
        -(x2 - 1.0).ln()
    }
}

/// `q₊(x) = −2x − ln((1 − x)²)` (seed 003 appendix A).
pub fn q_plus(x: f64) -> f64 {
    -2.0 * x - 2.0 * ln_abs_1p(-x)
}

/// `q₋(x) = 2x − ln((1 + x)²)` (seed 003 appendix A).
pub fn q_minus(x: f64) -> f64 {
    2.0 * x - 2.0 * ln_abs_1p(x)
}

/// `ln|1 + x|`, accurate for small x.
fn ln_abs_1p(x: f64) -> f64 {
    if x > -1.0 {
        x.ln_1p()
    } else {
        (-1.0 - x).ln()
    }
}

/// Running sums `Gain = Σ_k q(γ_k g_k)` and `Gain± = Σ_k q±(γ_k g_k)`, coordinate-wise.
#[derive(Clone, Debug, PartialEq)]
pub struct Gain {
    pub gain: DVector<f64>,
    pub plus: DVector<f64>,
    pub minus: DVector<f64>,
}

impl Gain {
    pub fn new(d: usize) -> Self {
        Gain {
            gain: DVector::zeros(d),
            plus: DVector::zeros(d),
            minus: DVector::zeros(d),
        }
    }

    /// Record one step of size `gamma` with stochastic gradient `grad = ∇_β L_{B_k}(β_k)`.
    pub fn add_step(&mut self, gamma: f64, grad: &DVector<f64>) {
        assert_eq!(
            grad.len(),
            self.gain.len(),
            "Gain::add_step: dimension mismatch"
        );
        for (i, &g) in grad.iter().enumerate() {
            let x = gamma * g;
            self.gain[i] += q(x);
            self.plus[i] += q_plus(x);
            self.minus[i] += q_minus(x);
        }
    }

    /// `α_∞` for the `u⊙v` initialisation `α` ([`effective_alpha`]).
    pub fn effective_alpha(&self, alpha: &DVector<f64>) -> DVector<f64> {
        effective_alpha(alpha, &self.gain)
    }

    /// The perturbation `β̃₀ = ½(α₊² − α₋²)`, `α±² = α² ⊙ exp(−Gain±)` (appendix A).
    pub fn perturbation(&self, alpha: &DVector<f64>) -> DVector<f64> {
        assert_eq!(
            alpha.len(),
            self.gain.len(),
            "Gain::perturbation: dimension mismatch"
        );
        DVector::from_fn(alpha.len(), |i, _| {
            0.5 * alpha[i] * alpha[i] * ((-self.plus[i]).exp() - (-self.minus[i]).exp())
        })
    }
}

/// `α_∞ = α ⊙ exp(−Gain/2)`, i.e. `α_∞² = α² ⊙ exp(−Gain)` (seed 003 Thm 2.2). Both in the
/// `u⊙v` convention (`u₀ = √2α`); use `hyperbolic_entropy::alpha_for_uv` before
/// `min_entropy_interpolator`.
pub fn effective_alpha(alpha: &DVector<f64>, gain: &DVector<f64>) -> DVector<f64> {
    assert_eq!(
        alpha.len(),
        gain.len(),
        "effective_alpha: dimension mismatch"
    );
    alpha.zip_map(gain, |a, g| a * (-0.5 * g).exp())
}

/// Mini-batch gradient `∇_β L_B(β) = (1/b) Σ_{i∈B} x_i (x_iᵀβ − y_i)` (indices may repeat:
/// smflow samples with replacement).
pub fn batch_grad(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    beta: &DVector<f64>,
    batch: &[usize],
) -> DVector<f64> {
    assert!(!batch.is_empty(), "batch_grad: empty batch");
    let mut g = DVector::zeros(x.ncols());
    for &i in batch {
        let row = x.row(i);
        let r = row.dot(&beta.transpose()) - y[i];
        g.axpy(r, &row.transpose(), 1.0);
    }
    g / batch.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory::hyperbolic_entropy::{
        alpha_for_uv, min_bregman_interpolator, min_entropy_interpolator,
    };
    use crate::theory::testdata::Gauss;

    #[test]
    fn q_functions_match_their_definitions() {
        for &x in &[
            -1.7f64, -0.9, -0.3, -1e-5, 0.0, 1e-5, 0.2, 0.6, 0.99, 1.3, 2.5,
        ] {
            let qq = -0.5 * ((1.0 - x * x) * (1.0 - x * x)).ln();
            assert!((q(x) - qq).abs() <= 1e-12 * (1.0 + qq.abs()), "q({x})");
            let qp = -2.0 * x - ((1.0 - x) * (1.0 - x)).ln();
            let qm = 2.0 * x - ((1.0 + x) * (1.0 + x)).ln();
            assert!(
                (q_plus(x) - qp).abs() <= 1e-12 * (1.0 + qp.abs()),
                "q+({x})"
            );
            assert!(
                (q_minus(x) - qm).abs() <= 1e-12 * (1.0 + qm.abs()),
                "q-({x})"
            );
            assert!((q(x) - 0.5 * (q_plus(x) + q_minus(x))).abs() <= 1e-12 * (1.0 + q(x).abs()));
        }
        // q(x) = x² + x⁴/2 + …, kept accurate where 1 − x² rounds to 1.
        assert!((q(1e-9) / 1e-18 - 1.0).abs() < 1e-12);
        assert!((q_plus(1e-5) / 1e-10 - 1.0).abs() < 1e-4);
        assert_eq!(q(1.0), f64::INFINITY);
    }

    #[test]
    fn batch_grad_full_batch_is_grad_of_our_loss() {
        let mut g = Gauss::new(20);
        let x = g.matrix(6, 4);
        let y = g.vector(6);
        let b = g.vector(4);
        let full = batch_grad(&x, &y, &b, &[0, 1, 2, 3, 4, 5]);
        let ours = x.transpose() * (&x * &b - &y) / 6.0;
        assert!((full - ours).norm() < 1e-13);
        let one = batch_grad(&x, &y, &b, &[2, 2]);
        let r = x.row(2).dot(&b.transpose()) - y[2];
        assert!((one - x.row(2).transpose() * r).norm() < 1e-13);
    }

    struct Run {
        beta: DVector<f64>,
        gain: Gain,
    }

    /// (S)GD on `β = u⊙v` from `(√2α, 0)`, batch size `b` (`b = N`: GD over all samples
    /// in order), run to `L < 1e-26` while accumulating the gain.
    fn run_sgd(
        x: &DMatrix<f64>,
        y: &DVector<f64>,
        alpha: &DVector<f64>,
        gamma: f64,
        b: usize,
        seed: u64,
    ) -> Run {
        let (n, d) = x.shape();
        let mut rng = Gauss::new(seed);
        let mut u = alpha * std::f64::consts::SQRT_2;
        let mut v = DVector::zeros(d);
        let mut gain = Gain::new(d);
        for _ in 0..2_000_000 {
            let beta = u.component_mul(&v);
            if (x * &beta - y).norm_squared() / (2.0 * n as f64) < 1e-26 {
                return Run { beta, gain };
            }
            let batch: Vec<usize> = if b == n {
                (0..n).collect()
            } else {
                (0..b).map(|_| rng.index(n)).collect()
            };
            let grad = batch_grad(x, y, &beta, &batch);
            gain.add_step(gamma, &grad);
            let du = v.component_mul(&grad) * gamma;
            let dv = u.component_mul(&grad) * gamma;
            u -= du;
            v -= dv;
        }
        panic!("(S)GD did not converge");
    }

    fn instance() -> (DMatrix<f64>, DVector<f64>, DVector<f64>) {
        let mut g = Gauss::new(21);
        let (n, d) = (5, 10);
        let x = g.matrix(n, d);
        let mut truth = DVector::zeros(d);
        truth[2] = 1.0;
        truth[7] = -0.8;
        let y = &x * truth;
        let alpha = DVector::from_fn(d, |_, _| g.uniform(0.05, 0.3));
        (x, y, alpha)
    }

    #[test]
    fn tiny_steps_give_vanishing_gain_and_alpha_inf_to_alpha() {
        let (x, y, alpha) = instance();
        for &b in &[5usize, 1] {
            let mut prev = f64::INFINITY;
            for &gamma in &[1e-2, 1e-3] {
                let run = run_sgd(&x, &y, &alpha, gamma, b, 7);
                let gmax = run.gain.gain.amax();
                let a_inf = run.gain.effective_alpha(&alpha);
                let rel = (&a_inf - &alpha).norm() / alpha.norm();
                eprintln!("b={b} γ={gamma}: max Gain {gmax:e}, |α∞−α|/|α| {rel:e}");
                assert!(run.gain.gain.iter().all(|&g| g >= 0.0));
                // Gain ≈ γ² Σ_k g_k² ≈ γ ∫ g² dt: O(γ) as γ → 0.
                assert!(gmax < prev / 5.0, "Gain not shrinking with γ");
                prev = gmax;
                if gamma == 1e-3 {
                    assert!(rel < 1e-3, "α∞ not close to α: {rel:e}");
                }
            }
            assert!(prev < 1e-2);
        }
        let a_inf = effective_alpha(&alpha, &DVector::zeros(alpha.len()));
        assert_eq!(a_inf, alpha);
    }

    #[test]
    fn large_step_limit_is_bregman_interpolator_at_alpha_inf() {
        // The identity behind Thm 2.2 is exact for every step size, so the (S)GD limit
        // must equal the Bregman projection of β̃₀ for ψ at α_∞ to solver accuracy,
        // while the GF prediction (α) is visibly different.
        let (x, y, alpha) = instance();
        let lmax = nalgebra::SymmetricEigen::new(x.transpose() * &x / 5.0)
            .eigenvalues
            .max();
        for &(b, gamma) in &[(5usize, 0.5 / lmax), (1, 0.15 / lmax)] {
            let run = run_sgd(&x, &y, &alpha, gamma, b, 8);
            let a_inf = run.gain.effective_alpha(&alpha);
            let tilde = run.gain.perturbation(&alpha);
            let th = min_bregman_interpolator(&x, &y, &alpha_for_uv(&a_inf), &tilde).unwrap();
            let err = (&run.beta - &th).norm() / th.norm();
            let gf = min_entropy_interpolator(&x, &y, &alpha_for_uv(&alpha)).unwrap();
            let gf_gap = (&run.beta - &gf).norm() / th.norm();
            let no_tilde = min_entropy_interpolator(&x, &y, &alpha_for_uv(&a_inf)).unwrap();
            let tilde_gap = (&run.beta - &no_tilde).norm() / th.norm();
            eprintln!(
                "b={b}: max Gain {:.3e}, Bregman err {err:e}, without β̃₀ {tilde_gap:e}, GF(α) {gf_gap:e}",
                run.gain.gain.amax()
            );
            assert!(err < 1e-9, "b={b}: {err:e}");
            assert!(
                gf_gap > 1e3 * err.max(1e-12),
                "test not sensitive: GF gap {gf_gap:e}"
            );
            // Even et al.'s approximate form (β̃₀ dropped) already beats GF's prediction.
            assert!(tilde_gap < gf_gap);
        }
    }
}
