//! Closed-form and convex-analytic references for the implicit-bias experiments.
//!
//! Pure math, f64, no I/O. These are the "theory" curves that the simulated
//! dynamics (GF, GD, SGD on linear regression and diagonal linear networks) are
//! compared with.
//!
//! Conventions (smflow): data `X ∈ R^{N×d}` (rows = samples), `y ∈ R^N`,
//! training loss `L(β) = (1/(2N)) ‖Xβ − y‖²`, so `∇L(β) = Xᵀ(Xβ − y)/N`.
//!
//! * [`least_squares`]: GF of `L` in closed form, ridge, exact bias/variance/risk
//!   over label noise (seed 000 §5.1, Ali et al. 2019).
//! * [`hyperbolic_entropy`]: Woodworth et al.'s potential and the minimum-entropy
//!   interpolator that GF on a diagonal linear network converges to (seed 000 §5.2.1,
//!   seed 003 Thm 2.1), with the α mapping between the `w₊²−w₋²` and `u⊙v`
//!   parametrisations.
//! * [`gain`]: Even et al.'s effective initialisation `α_∞` of (S)GD (seed 003 Thm 2.2).

pub mod gain;
pub mod hyperbolic_entropy;
pub mod least_squares;

/// Failures of the iterative solvers in this module.
#[derive(Debug, thiserror::Error)]
pub enum TheoryError {
    #[error("dimension mismatch: {0}")]
    Dimension(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("dual Newton did not converge after {iters} iterations (residual {residual:e}, target {target:e})")]
    NotConverged {
        iters: usize,
        residual: f64,
        target: f64,
    },
}

pub type Result<T> = std::result::Result<T, TheoryError>;

/// Deterministic Gaussian test data (Box–Muller on a seeded `StdRng`), shared by the
/// tests of the submodules. Tests only: the library itself draws nothing.
#[cfg(test)]
pub(crate) mod testdata {
    use nalgebra::{DMatrix, DVector};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    pub struct Gauss(StdRng);

    impl Gauss {
        pub fn new(seed: u64) -> Self {
            Gauss(StdRng::seed_from_u64(seed))
        }
        pub fn normal(&mut self) -> f64 {
            // u1 ∈ (0,1] so the log is finite.
            let u1: f64 = 1.0 - self.0.random::<f64>();
            let u2: f64 = self.0.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
        pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.0.random::<f64>()
        }
        pub fn index(&mut self, n: usize) -> usize {
            self.0.random_range(0..n)
        }
        pub fn matrix(&mut self, n: usize, d: usize) -> DMatrix<f64> {
            DMatrix::from_fn(n, d, |_, _| self.normal())
        }
        pub fn vector(&mut self, n: usize) -> DVector<f64> {
            DVector::from_fn(n, |_, _| self.normal())
        }
    }
}
