//! One step of each kind of dynamics, written once over `T: Num` (one replica in f64,
//! or a lane group): the discrete SGD/GD update, RK4 for the flows, Euler–Maruyama on
//! coupled solver levels (with the Brownian bridge of a coupled run), and the exact
//! Gaussian transition. `path` drives them; the normals' layout of each step is
//! `path::normals_per_step`'s.

use super::path::{State, MAX_LEVELS, MAX_NOISE, MAX_P};
use super::RunSpec;
use crate::lanes::Num;
use crate::model::{drift, zero, ExactStep, Model, Vector, MAX_D};
use crate::solver::rk4;

/// The per-substep noise arrays of `em_step`, kept across steps (so that a step does
/// not clear 4 × `MAX_NOISE` lanes; each is written before it is read).
pub(super) struct EmScratch<T> {
    shift: [T; MAX_NOISE],
    dw: [T; MAX_NOISE],
    acc: [[T; MAX_NOISE]; MAX_LEVELS - 1],
}

impl<T: Num> EmScratch<T> {
    pub(super) fn new() -> Self {
        Self {
            shift: [T::ZERO; MAX_NOISE],
            dw: [T::ZERO; MAX_NOISE],
            acc: [[T::ZERO; MAX_NOISE]; MAX_LEVELS - 1],
        }
    }
}

/// gd / sgd: x ← x − η (1/b) Σ_j ∇R(x, θ_j); the batch θ_1..θ_b is shared by the
/// particles (same data). θ_j uses normals j·n_θ .. (j+1)·n_θ of the step.
#[inline(always)]
pub(super) fn discrete_step<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    normals: &[T],
    x: &mut [Vector<T>],
) {
    let d = m.dim();
    if spec.dynamics == super::Dynamics::Gd {
        for xp in x.iter_mut() {
            let g = m.grad(xp);
            for i in 0..d {
                xp[i] -= g[i] * spec.eta;
            }
        }
        return;
    }
    let scale = spec.eta / spec.batch as f64;
    // Particle-outer: each particle re-reads the same θ_j (same normals), so the batch
    // never has to be stored; with one particle this is a single pass.
    for xp in x.iter_mut() {
        let gs = batch_gradient_sum(m, spec, normals, xp);
        for i in 0..d {
            xp[i] -= gs[i] * scale;
        }
    }
}

/// Σ_j ∇R(x, θ_j) over the step's batch (θ_j from normals j·n_θ .. (j+1)·n_θ).
#[inline(always)]
pub(super) fn batch_gradient_sum<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    normals: &[T],
    x: &Vector<T>,
) -> Vector<T> {
    let (d, nt) = (m.dim(), m.data_normals());
    let mut gs = zero::<T>();
    for j in 0..spec.batch as usize {
        let theta = m.sample_theta(&normals[j * nt..(j + 1) * nt]);
        let g = m.grad_sample(x, &theta);
        for i in 0..d {
            gs[i] += g[i];
        }
    }
    gs
}

/// gf / mgf: RK4 (`solver::rk4`) on the drift, `substeps >> level` steps per SGD step
/// on each level.
#[inline(always)]
pub(super) fn ode_step<M: Model, T: Num>(m: &M, spec: &RunSpec, levels: usize, x: &mut State<T>) {
    let d = m.dim();
    let c = spec.drift_c();
    let mut work = rk4::Work::like(&zero::<T>());
    for (l, lv) in x[..levels].iter_mut().enumerate() {
        let n = spec.substeps() >> l;
        let h = spec.eta / n as f64;
        for xp in lv[..spec.particles()].iter_mut() {
            for _ in 0..n {
                rk4::step(xp, h, d, &mut work, |y, k| *k = drift(m, y, c));
            }
        }
    }
}

/// Whether the SDE's noise is the reduced cylindrical noise ∫ G W(dθ, dt) (`smf_noise`):
/// SMF, and a coupled run (SME with one particle, where SME and SMF have the same law,
/// or SMF with several; the coupling needs SGD's own noise factor G, DESIGN §7b — the
/// symmetric root Σ^{1/2} would decorrelate the pair).
pub fn uses_smf_noise(spec: &RunSpec) -> bool {
    spec.dynamics.shared_noise() || spec.coupling.is_some()
}

/// Number of Brownian components per substep: the reduced cylindrical noise shared by
/// all particles (SMF, coupled runs), or d independent components per particle (SME).
pub fn noise_components<M: Model>(m: &M, spec: &RunSpec) -> usize {
    if uses_smf_noise(spec) {
        m.smf_noise_dim()
    } else {
        spec.particles() * m.dim()
    }
}

/// The constant part of a coupled step's Brownian increments (DESIGN §7b): with ζ =
/// b^{-1/2} Σ_j z_j from SGD's data normals `sgd` and the mean ξ̄ of the SDE's own
/// normals over the S substeps, ΔW_s = sqrt(dt) ξ_s + (sqrt(η)/S ζ − sqrt(dt) ξ̄) =
/// sqrt(dt)(ξ_s − ξ̄) + (sqrt(η)/S) ζ. The bridge part is independent of ξ̄, so the
/// increments are exact Brownian increments whose sum over the step is sqrt(η) ζ.
#[inline(always)]
pub fn bridge_shift<T: Num>(spec: &RunSpec, nc: usize, normals: &[T], sgd: &[T], out: &mut [T]) {
    let s_fine = spec.substeps() as usize;
    let sqrt_dt = (spec.eta / s_fine as f64).sqrt();
    let root_b = (spec.batch as f64).sqrt();
    for (j, o) in out[..nc].iter_mut().enumerate() {
        let mut zeta = T::ZERO;
        for i in 0..spec.batch as usize {
            zeta += sgd[i * nc + j];
        }
        let mut xi = T::ZERO;
        for s in 0..s_fine {
            xi += normals[s * nc + j];
        }
        *o = zeta / root_b * (spec.eta.sqrt() / s_fine as f64) - xi / s_fine as f64 * sqrt_dt;
    }
}

/// sme* / smf*: Euler–Maruyama on the coupled levels (`em_levels`), one `em_level`
/// per level's step.
#[inline(always)]
pub(super) fn em_step<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    levels: usize,
    normals: &[T],
    sgd: Option<&[T]>,
    x: &mut State<T>,
    scratch: &mut EmScratch<T>,
) {
    let em = EmConsts::of(m, spec);
    em_levels(
        m,
        spec,
        levels,
        normals,
        sgd,
        scratch,
        #[inline(always)]
        |l, dw, dt| em_level(m, &em, &mut x[l], dw, dt),
    );
}

/// The Brownian increments of an SDE step on coupled levels, handed to
/// `level_step(l, ΔW, dt)` in order: fine substep s uses normals s·n_c .. (s+1)·n_c of
/// the step; level l steps every 2^l fine substeps with the sum of their increments.
/// With `sgd` (a coupled run: SGD's data normals of the step) the increments are pinned
/// to SGD's noise (`bridge_shift`).
#[inline(always)]
pub(super) fn em_levels<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    levels: usize,
    normals: &[T],
    sgd: Option<&[T]>,
    scratch: &mut EmScratch<T>,
    mut level_step: impl FnMut(usize, &[T], f64),
) {
    let nc = noise_components(m, spec);
    let s_fine = spec.substeps();
    let dt = spec.eta / s_fine as f64;
    let sqrt_dt = dt.sqrt();
    // The scratch arrays are used only over the nc components.
    let EmScratch { shift, dw, acc } = scratch;
    if let Some(z) = sgd {
        bridge_shift(spec, nc, normals, z, shift);
    }
    for a in acc[..levels.saturating_sub(1)].iter_mut() {
        a[..nc].iter_mut().for_each(|v| *v = T::ZERO);
    }
    for s in 0..s_fine {
        let z = &normals[s as usize * nc..(s as usize + 1) * nc];
        for ((w, &zj), &sh) in dw[..nc].iter_mut().zip(z).zip(&shift[..nc]) {
            *w = zj * sqrt_dt;
            if sgd.is_some() {
                *w += sh;
            }
        }
        level_step(0, &dw[..nc], dt);
        for l in 1..levels {
            let a = &mut acc[l - 1];
            for j in 0..nc {
                a[j] += dw[j];
            }
            let span = 1u32 << l;
            if s % span == span - 1 {
                level_step(l, &a[..nc], dt * span as f64);
                a[..nc].iter_mut().for_each(|v| *v = T::ZERO);
            }
        }
    }
}

/// What an Euler–Maruyama level step needs of the run, read once per step (the same
/// values, so the same bits, as reading them per substep).
pub(super) struct EmConsts {
    pub(super) d: usize,
    pub(super) p: usize,
    pub(super) c: f64,
    pub(super) scale: f64,
    pub(super) shared: bool,
}

impl EmConsts {
    #[inline(always)]
    pub(super) fn of<M: Model>(m: &M, spec: &RunSpec) -> Self {
        Self {
            d: m.dim(),
            p: spec.particles(),
            c: spec.drift_c(),
            scale: spec.noise_var().sqrt(),
            shared: uses_smf_noise(spec),
        }
    }

    /// The noise of particle p for the level's increments `dw`: the shared reduced
    /// noise G·dW (SMF, coupled runs) or Σ^{1/2} dW_p (SME), before the sqrt(η/b) scale.
    #[inline(always)]
    pub(super) fn noise<M: Model, T: Num>(
        &self,
        m: &M,
        p: usize,
        x: &Vector<T>,
        dw: &[T],
    ) -> Vector<T> {
        if self.shared {
            m.smf_noise(x, dw)
        } else {
            m.sme_noise(x, &dw[p * self.d..(p + 1) * self.d])
        }
    }
}

/// One Euler–Maruyama step of every particle of one level.
#[inline(always)]
fn em_level<M: Model, T: Num>(m: &M, em: &EmConsts, x: &mut [Vector<T>; MAX_P], dw: &[T], dt: f64) {
    let d = em.d;
    for (p, xp) in x[..em.p].iter_mut().enumerate() {
        let b = drift(m, xp, em.c);
        let noise = em.noise(m, p, xp, dw);
        for i in 0..d {
            xp[i] += b[i] * dt + noise[i] * em.scale;
        }
    }
}

/// Exact transition over one SGD step (OU / GBM) of every particle: of x, or (msme1,
/// `v` its momenta) of the pair (x, p) stacked. Particle p uses normals p·n_e ..
/// (p+1)·n_e (SME) or the shared normals 0..n_e (SMF), n_e = `ex.normals()`.
#[inline(always)]
pub(super) fn exact_step<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    ex: &ExactStep,
    normals: &[T],
    x: &mut [Vector<T>],
    mut v: Option<&mut [Vector<T>]>,
) {
    let d = m.dim();
    let ne = ex.normals();
    let shared = spec.dynamics.shared_noise();
    for (p, xp) in x.iter_mut().enumerate() {
        let base = if shared { 0 } else { p * ne };
        let xi = &normals[base..base + ne];
        match ex {
            ExactStep::Ou { mean, e, c } => {
                // z = x, or (x, p): n = ne coordinates.
                let mut z = [T::ZERO; 2 * MAX_D];
                z[..d].copy_from_slice(&xp[..d]);
                if let Some(v) = v.as_deref() {
                    z[d..2 * d].copy_from_slice(&v[p][..d]);
                }
                let mut out = [T::ZERO; 2 * MAX_D];
                for (i, o) in out[..ne].iter_mut().enumerate() {
                    let mut s = T::splat(mean[i]);
                    for j in 0..ne {
                        s += (z[j] - mean[j]) * e[i * ne + j] + xi[j] * c[i * ne + j];
                    }
                    *o = s;
                }
                xp[..d].copy_from_slice(&out[..d]);
                if let Some(v) = v.as_deref_mut() {
                    v[p][..d].copy_from_slice(&out[d..2 * d]);
                }
            }
            ExactStep::Gbm { drift, vol } => {
                debug_assert!(v.is_none(), "no exact heavy-ball transition for GBM");
                let f = (xi[0] * *vol + *drift).exp();
                for coord in xp[..d].iter_mut() {
                    *coord *= f;
                }
            }
            ExactStep::Unavailable => {
                unreachable!("config rejects the exact solver for models without one")
            }
        }
    }
}
