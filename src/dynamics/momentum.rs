//! Heavy-ball momentum in friction form (DESIGN §3b), written once over `T: Num`: the
//! state of each particle is (x, p), p₀ = 0, friction γ (`RunSpec::friction`).
//!
//! - `msgd`: p ← p − η(γ p + (1/b) Σ_j ∇R(x, θ_j)), then x ← x + η p (symplectic
//!   Euler; PyTorch's `SGD(momentum = 1 − γη)` with learning rate η²). The batch is the
//!   one `sgd` would draw at the step (same normals), shared by the particles.
//! - `msme1`: dX = P dt, dP = −(γP + ∇R(X)) dt + sqrt(η/b) Σ^{1/2}(X) dW, by
//!   symplectic Euler–Maruyama on the coupled levels of `em_levels`: P first, then X
//!   with the new P. It is msgd's own update with the minibatch noise replaced by a
//!   Gaussian one, so a level with one substep per SGD step is msgd in law up to the
//!   noise's higher moments; weak order 1 in dt, like Euler–Maruyama, and Talay–Tubaro
//!   extrapolation applies. (Explicit Euler–Maruyama, which moves X with the old P,
//!   gains energy on an undamped oscillator; symplectic Euler does not.)
//!
//! GPU twins: `shaders/dynamics/msme1.wgsl` and `msgd_update` in
//! `shaders/dynamics/sgd_update.wgsl`; the finite-data trainer's (`train::ops`,
//! `shaders/train/train.wgsl`) and mean-field's (`meanfield::cpu::Net::step`,
//! `apply` in `shaders/meanfield/kernels.wgsl`, a momentum per neuron) use [`heavy_ball`]
//! too.

use super::path::{State, MAX_P};
use super::steps::{batch_gradient_sum, em_levels, EmConsts, EmScratch};
use super::{Dynamics, RunSpec};
use crate::config::{err, ConfigError};
use crate::lanes::Num;
use crate::model::{Model, Vector};
use serde::{Deserialize, Serialize};

/// `"momentum": {"friction": γ}` of a config that lists msgd or msme1.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MomentumConfig {
    pub friction: f64,
}

/// The friction γ of the run's heavy-ball dynamics (0 when it lists none): the block
/// is required by msgd / msme1 and refused without them.
pub fn check_momentum(
    cfg: Option<&MomentumConfig>,
    dynamics: &[Dynamics],
) -> Result<f64, ConfigError> {
    let uses = dynamics.iter().any(|d| d.has_momentum());
    match cfg {
        None if uses => err(
            "momentum",
            "missing: msgd and msme1 need {\"friction\": γ} with γ > 0 (momentum 1 − γη per step)",
        ),
        None => Ok(0.0),
        Some(_) if !uses => err(
            "momentum",
            "only msgd and msme1 use it; list one of them in dynamics or leave momentum out",
        ),
        Some(c) if !(c.friction.is_finite() && c.friction > 0.0) => err(
            "momentum.friction",
            format!("must be a finite number > 0, got {}", c.friction),
        ),
        Some(c) => Ok(c.friction),
    }
}

/// The friction form's momentum update over a step dt with force −g (g the gradient):
/// v − (γ v + g) dt, the formula every heavy-ball update (msgd with dt = η, msme1's
/// drift with its substep) is written with; the position then moves by the new v·dt.
/// Generic over the scalar `S` of γ and dt, so that lanes (`Num`, with f64 constants)
/// and the mean-field's f32 neurons (`meanfield::real::Real`, with f32 ones) share it.
#[inline(always)]
pub fn heavy_ball<T, S>(v: T, g: T, gamma: S, dt: S) -> T
where
    T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T> + std::ops::Mul<S, Output = T>,
{
    v - (v * gamma + g) * dt
}

/// One msgd step of every particle: positions `x`, momenta `v`.
#[inline(always)]
pub(super) fn msgd_step<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    normals: &[T],
    x: &mut [Vector<T>],
    v: &mut [Vector<T>],
) {
    let d = m.dim();
    let (gamma, eta, inv_b) = (spec.friction, spec.eta, 1.0 / spec.batch as f64);
    for (xp, vp) in x.iter_mut().zip(v.iter_mut()) {
        let gs = batch_gradient_sum(m, spec, normals, xp);
        for i in 0..d {
            vp[i] = heavy_ball(vp[i], gs[i] * inv_b, gamma, eta);
            xp[i] += vp[i] * eta;
        }
    }
}

/// One msme1 step (`substeps` symplectic Euler–Maruyama substeps on the fine level,
/// fewer on the coarse ones) of every particle on every level; `partner`: a coupled
/// run's msgd normals of the step, which pin the increments (`steps::bridge_shift`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn msme1_step<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    levels: usize,
    normals: &[T],
    partner: Option<&[T]>,
    x: &mut State<T>,
    v: &mut State<T>,
    scratch: &mut EmScratch<T>,
) {
    let em = EmConsts::of(m, spec);
    let gamma = spec.friction;
    em_levels(
        m,
        spec,
        levels,
        normals,
        partner,
        scratch,
        #[inline(always)]
        |l, dw, dt| msme1_level(m, &em, gamma, &mut x[l], &mut v[l], dw, dt),
    );
}

/// One symplectic Euler–Maruyama step of size dt of every particle of one level.
#[inline(always)]
fn msme1_level<M: Model, T: Num>(
    m: &M,
    em: &EmConsts,
    gamma: f64,
    x: &mut [Vector<T>; MAX_P],
    v: &mut [Vector<T>; MAX_P],
    dw: &[T],
    dt: f64,
) {
    let d = em.d;
    for (p, (xp, vp)) in x[..em.p].iter_mut().zip(v[..em.p].iter_mut()).enumerate() {
        let g = m.grad(xp);
        let noise = em.noise(m, p, xp, dw);
        for i in 0..d {
            vp[i] = heavy_ball(vp[i], g[i], gamma, dt) + noise[i] * em.scale;
            xp[i] += vp[i] * dt;
        }
    }
}
