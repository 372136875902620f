//! Models of DESIGN §4: per-sample gradient, full gradient, Hessian-vector product and
//! the noise factor G(x, θ) = ∇R(x) − ∇R(x, θ), written once per model in Rust (here)
//! and once in WGSL (`shaders/models/<name>.wgsl`).
//!
//! Vectors are fixed-size stack arrays (`Vector`, d ≤ `MAX_D`) so the CPU inner loops
//! never allocate.

pub mod capability;
pub mod config;
pub mod multiplicative;
pub mod quadratic;
pub mod toy_sgd;

pub use capability::{Capabilities, Capability};
pub use multiplicative::Multiplicative;
pub use quadratic::Quadratic;
pub use toy_sgd::{ToyLoss, ToySgd};

use crate::lanes::Num;

/// Largest parameter dimension d supported by the path simulators.
pub const MAX_D: usize = 8;
/// A point of R^d (d ≤ `MAX_D`), in f64 or in lanes of replicas (`Num`).
pub type Vector<T = f64> = [T; MAX_D];
pub const ZERO: Vector = [0.0; MAX_D];

/// The zero vector in `T`.
#[inline(always)]
pub fn zero<T: Num>() -> Vector<T> {
    [T::ZERO; MAX_D]
}

/// Parameters of the exact one-step transition of the continuous model over a time h
/// (OU for `quadratic`, geometric BM for `multiplicative`), precomputed per run.
#[derive(Clone, Debug)]
pub enum ExactStep {
    /// z ← m + E (z − m) + C ξ, with C Cᵀ the step covariance, on the n = `mean.len()`
    /// coordinates of z: X (n = d), or msme1's pair (X, P) stacked (n = 2d). E and C
    /// row-major n×n; ξ: n standard normals.
    Ou {
        mean: Vec<f64>,
        e: Vec<f64>,
        c: Vec<f64>,
    },
    /// X ← X · exp(drift + vol ξ), ξ scalar.
    Gbm { drift: f64, vol: f64 },
    /// The model has no closed-form transition (config rejects the exact solver).
    Unavailable,
}

impl ExactStep {
    /// Standard normals one particle's step consumes.
    pub fn normals(&self) -> usize {
        match self {
            ExactStep::Ou { mean, .. } => mean.len(),
            ExactStep::Gbm { .. } => 1,
            ExactStep::Unavailable => 0,
        }
    }
}

/// The interface every model implements (the WGSL twin mirrors it function by function).
///
/// The per-step methods are generic over the number type `T` (`f64`, or `Lanes` of
/// replicas advanced side by side): one body, so a lane carries exactly the scalar
/// path's bits (`crate::lanes`).
pub trait Model: Sync + Send {
    /// Parameter dimension d.
    fn dim(&self) -> usize;
    /// Standard normals consumed to draw one data sample θ.
    fn data_normals(&self) -> usize;
    /// θ from `data_normals()` standard normals.
    fn sample_theta<T: Num>(&self, z: &[T]) -> Vector<T>
    where
        Self: Sized;
    /// ∇_x R(x, θ).
    fn grad_sample<T: Num>(&self, x: &Vector<T>, theta: &Vector<T>) -> Vector<T>
    where
        Self: Sized;
    /// ∇R(x) = E_θ ∇_x R(x, θ).
    fn grad<T: Num>(&self, x: &Vector<T>) -> Vector<T>
    where
        Self: Sized;
    /// Hessian of R at x applied to v.
    fn hvp<T: Num>(&self, x: &Vector<T>, v: &Vector<T>) -> Vector<T>
    where
        Self: Sized;
    /// Population loss R(x).
    fn loss(&self, x: &Vector) -> f64;
    /// Dimension of the finite-dimensional reduction of the cylindrical noise
    /// ∫ G(x, θ) W(dθ, dt) (exact for G linear in θ).
    fn smf_noise_dim(&self) -> usize;
    /// ∫ G(x, θ) W(dθ, dt) for the reduced increment `dw` (length `smf_noise_dim`).
    fn smf_noise<T: Num>(&self, x: &Vector<T>, dw: &[T]) -> Vector<T>
    where
        Self: Sized;
    /// Σ^{1/2}(x) dw, `dw` ∈ R^d (symmetric square root).
    fn sme_noise<T: Num>(&self, x: &Vector<T>, dw: &[T]) -> Vector<T>
    where
        Self: Sized;
    /// Exact transition of `dX = −∇(R + c|∇R|²/2)dt + sqrt(noise_var) Σ^{1/2} dW` over
    /// time h, where c = η/2 for the modified (order-2) drift and 0 otherwise.
    fn exact_step(&self, c: f64, noise_var: f64, h: f64) -> ExactStep;
    /// Exact transition of the heavy-ball SDE `dX = P dt, dP = −(γP + ∇R(X)) dt +
    /// sqrt(noise_var) Σ^{1/2}(X) dW` (msme1, DESIGN §3b) over time h, on the pair (X, P);
    /// declared by `Capabilities::exact_momentum_transition`.
    fn exact_momentum_step(&self, _friction: f64, _noise_var: f64, _h: f64) -> ExactStep {
        ExactStep::Unavailable
    }
    /// What the model offers beyond this interface (each model declares it; jobs are
    /// checked against it before they run).
    fn capabilities(&self) -> Capabilities;
    /// Exact E g(X_t) for the model's SDE started at x0, for the observables it can
    /// integrate in closed form or by quadrature; `None` otherwise.
    fn exact_sde_mean(
        &self,
        obs: crate::observables::Observable,
        x0: &Vector,
        c: f64,
        noise_var: f64,
        t: f64,
    ) -> Option<f64>;
    /// Exact E g(x_K) for SGD with step η, batch b after K steps, where available.
    fn exact_sgd_mean(
        &self,
        obs: crate::observables::Observable,
        x0: &Vector,
        eta: f64,
        batch: usize,
        steps: u32,
    ) -> Option<f64>;
    /// Exact E g of the heavy-ball dynamics (DESIGN §3b, friction γ, from x0 with p0 = 0)
    /// after K steps: msgd with step η and batch b, or (`sde`) msme1 at t = Kη; `None`
    /// where the model has no closed form.
    #[allow(clippy::too_many_arguments)]
    fn exact_momentum_mean(
        &self,
        _obs: crate::observables::Observable,
        _x0: &Vector,
        _eta: f64,
        _friction: f64,
        _batch: usize,
        _steps: u32,
        _sde: bool,
    ) -> Option<f64> {
        None
    }
}

/// Drift of gf/sme1/smf1 (c = 0) and of mgf/sme2/smf2 (c = η/2):
/// −∇(R + (η/4)|∇R|²) = −(∇R + (η/2) H∇R).
#[inline(always)]
pub fn drift<M: Model, T: Num>(m: &M, x: &Vector<T>, c: f64) -> Vector<T> {
    let g = m.grad(x);
    if c == 0.0 {
        return neg(&g, m.dim());
    }
    let hg = m.hvp(x, &g);
    let mut out = zero();
    for i in 0..m.dim() {
        out[i] = -(g[i] + hg[i] * c);
    }
    out
}

#[inline(always)]
fn neg<T: Num>(v: &Vector<T>, d: usize) -> Vector<T> {
    let mut out = zero();
    for i in 0..d {
        out[i] = -v[i];
    }
    out
}

/// Copies a slice into a `Vector`.
pub fn vector(v: &[f64]) -> Vector {
    let mut out = ZERO;
    out[..v.len()].copy_from_slice(v);
    out
}

/// A configured model (closed set: adding a model adds a variant here).
#[derive(Clone, Debug)]
pub enum AnyModel {
    Quadratic(Quadratic),
    Multiplicative(Multiplicative),
    ToySgd(ToySgd),
}

/// Runs `$body` with `$m` bound to the concrete model, so generic code is
/// monomorphised per model (no dynamic dispatch in inner loops).
#[macro_export]
macro_rules! with_model {
    ($model:expr, $m:ident => $body:expr) => {
        match $model {
            $crate::model::AnyModel::Quadratic($m) => $body,
            $crate::model::AnyModel::Multiplicative($m) => $body,
            $crate::model::AnyModel::ToySgd($m) => $body,
        }
    };
}

impl AnyModel {
    pub fn name(&self) -> &'static str {
        match self {
            AnyModel::Quadratic(_) => "quadratic",
            AnyModel::Multiplicative(_) => "multiplicative",
            AnyModel::ToySgd(_) => "toy_sgd",
        }
    }
    pub fn as_dyn(&self) -> &dyn Model {
        with_model!(self, m => m as &dyn Model)
    }
}
