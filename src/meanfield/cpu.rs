//! The CPU reference of the mean-field dynamics, in f64 (or f32 for speed, `Real`):
//! replicas in parallel (rayon), each advanced by `Net`. Results do not depend on the
//! thread count or block size: every replica's draws come from its own Philox counters.

use super::kernels;
use super::model::{dot, init_neurons, Activation};
use super::real::{rounded, widened, Real};
use super::{fill_batch, Batch, Block, MeanFieldBackend, MfDynamics, MfJob, MfSink, OBSERVABLES};
use crate::backend::Precision;
use rayon::prelude::*;
use std::ops::Range;

pub struct CpuMeanField {
    /// Replicas per block handed to the sink.
    pub block: u64,
    /// F64 (the reference, the default) or F32 (faster; not the reference).
    pub precision: Precision,
}

impl Default for CpuMeanField {
    fn default() -> Self {
        CpuMeanField {
            block: 256,
            precision: Precision::F64,
        }
    }
}

impl CpuMeanField {
    pub fn with_precision(precision: Precision) -> Self {
        CpuMeanField {
            precision,
            ..Self::default()
        }
    }
}

/// `r_j = f_n(θ_j) − y_j` for every sample (rows of `x`, labels `y`), at neurons `z`.
pub fn residuals<R: Real>(act: Activation, z: &[R], d: usize, x: &[R], y: &[R], out: &mut Vec<R>) {
    let (mut u, mut s, mut ds) = (Vec::new(), Vec::new(), Vec::new());
    forward(act, z, d, x, y, BLOCK, [&mut u, &mut s, &mut ds], out);
}

/// u_kj = w_k·θ_j (GEMM), σ(u_kj), σ'(u_kj) of neurons k0..k1 into the first
/// (k1 − k0)·B entries of `u`, `s`, `ds`.
#[allow(clippy::too_many_arguments)]
fn block_activations<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    x: &[R],
    (k0, k1): (usize, usize),
    u: &mut [R],
    s: &mut [R],
    ds: &mut [R],
) {
    let (per, len) = (d + 1, (k1 - k0) * (x.len() / d));
    kernels::pre_activations(&z[k0 * per + 1..], per, k1 - k0, d, x, &mut u[..len]);
    kernels::activations(act, &u[..len], &mut s[..len], &mut ds[..len]);
}

/// The blocks (k0, k1) of `blk` neurons out of n.
fn blocks(n: usize, blk: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(blk.max(1))
        .map(move |k0| (k0, (k0 + blk).min(n)))
}

/// The forward pass over blocks of `blk` neurons: r_j = (1/n) Σ_k a_k σ(u_kj) − y_j into
/// `r`. The buffers `[u, s, ds]` are sized to one block and end holding the last one's
/// values (every neuron's when blk ≥ n).
#[allow(clippy::too_many_arguments)]
fn forward<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    x: &[R],
    y: &[R],
    blk: usize,
    [u, s, ds]: [&mut Vec<R>; 3],
    r: &mut Vec<R>,
) {
    let (n, b) = (z.len() / (d + 1), y.len());
    let blk = blk.min(n);
    for v in [&mut *u, &mut *s, &mut *ds] {
        v.resize(blk * b, R::zero());
    }
    r.clear();
    r.resize(b, R::zero());
    for (k0, k1) in blocks(n, blk) {
        block_activations(act, z, d, x, (k0, k1), u, s, ds);
        kernels::add_weighted_rows(&z[k0 * (d + 1)..], d + 1, &s[..(k1 - k0) * b], r);
    }
    let nf = R::of(n as f64);
    for (r, yj) in r.iter_mut().zip(y) {
        *r = *r / nf - *yj;
    }
}

/// `residuals` by scalar loops (dot products in order), for `drift_reference`.
pub fn residuals_reference<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    x: &[R],
    y: &[R],
    out: &mut Vec<R>,
) {
    let per = d + 1;
    let n = z.len() / per;
    out.clear();
    for (j, yj) in y.iter().enumerate() {
        let th = &x[j * d..(j + 1) * d];
        let s: R = z
            .chunks_exact(per)
            .map(|zk| zk[0] * act.f(dot(&zk[1..], th)))
            .sum();
        out.push(s / R::of(n as f64) - *yj);
    }
}

/// Largest n × B whose activations `drift` keeps (three floats each) for the update pass
/// and `add_correction`, instead of recomputing them block by block.
const CACHE_MAX: usize = 1 << 20;

/// Neurons per block when the activations are recomputed (n × B > `cache_max`).
const BLOCK: usize = 512;

/// Work buffers of `drift`.
pub struct DriftScratch<R = f64> {
    /// Keep the activations when n × B is at most this (`CACHE_MAX`).
    pub cache_max: usize,
    /// Use `drift_reference` (scalar loops, dot products in order) instead of the GEMM
    /// path; for tests that hold the two together.
    pub reference: bool,
    /// The residuals r_j of the last `drift`.
    pub r: Vec<R>,
    /// Whether `u`, `s`, `ds` hold u_kj = w_k·θ_j, σ(u_kj), σ'(u_kj) of every neuron of
    /// the last `drift`, neuron-major (else they hold one block, or nothing).
    cached: bool,
    u: Vec<R>,
    s: Vec<R>,
    ds: Vec<R>,
    /// M_kj = c_j r_j a_k σ'(u_kj) of one block (the weight update's left factor).
    m: Vec<R>,
    /// c_j r_j.
    cr: Vec<R>,
    /// ∇F per neuron (add_correction).
    g: Vec<R>,
}

impl<R> Default for DriftScratch<R> {
    fn default() -> Self {
        DriftScratch {
            cache_max: CACHE_MAX,
            reference: false,
            r: Vec::new(),
            cached: false,
            u: Vec::new(),
            s: Vec::new(),
            ds: Vec::new(),
            m: Vec::new(),
            cr: Vec::new(),
            g: Vec::new(),
        }
    }
}

/// `Δz_k = −Σ_j c_j r_j ∇_z Φ(θ_j, z_k)` at neurons `z` into `delta`: a forward pass
/// (pre-activations U = W Xᵀ, σ, the residuals r_j) and an update pass
/// (Δa_k = −Σ_j c_j r_j σ(u_kj), ΔW = −M X with M_kj = c_j r_j a_k σ'(u_kj)), both over
/// blocks of neurons with the matrix products in `kernels`.
pub fn drift<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    batch: &Batch<R>,
    w: &mut DriftScratch<R>,
    delta: &mut [R],
) {
    if w.reference {
        return drift_reference(act, z, d, batch, w, delta);
    }
    let per = d + 1;
    let (n, b) = (z.len() / per, batch.y.len());
    let x = &batch.x;
    w.cached = n * b <= w.cache_max;
    let blk = if w.cached { n } else { BLOCK.min(n) };
    let DriftScratch { u, s, ds, r, .. } = w;
    forward(act, z, d, x, &batch.y, blk, [u, s, ds], r);
    w.cr.clear();
    w.cr.extend(w.r.iter().zip(&batch.c).map(|(r, c)| *c * *r));
    // Update pass.
    w.m.resize(blk * b, R::zero());
    for (k0, k1) in blocks(n, blk) {
        if !w.cached {
            block_activations(act, z, d, x, (k0, k1), &mut w.u, &mut w.s, &mut w.ds);
        }
        let len = (k1 - k0) * b;
        for (k, (dsrow, mrow)) in
            (k0..k1).zip(w.ds[..len].chunks_exact(b).zip(w.m.chunks_exact_mut(b)))
        {
            let a = z[k * per];
            for ((m, ds), cr) in mrow.iter_mut().zip(dsrow).zip(&w.cr) {
                *m = *cr * a * *ds;
            }
        }
        kernels::outer_update(&w.s[..len], &w.cr, per, &mut delta[k0 * per..]);
        kernels::weight_update(&w.m[..len], x, d, per, &mut delta[k0 * per + 1..]);
    }
}

/// The scalar reference of `drift`: residuals, then per neuron and sample the dot
/// product and σ, σ' recomputed, summed in order.
pub fn drift_reference<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    batch: &Batch<R>,
    w: &mut DriftScratch<R>,
    delta: &mut [R],
) {
    let per = d + 1;
    let b = batch.y.len();
    w.cached = false;
    residuals_reference(act, z, d, &batch.x, &batch.y, &mut w.r);
    for (zk, dk) in z.chunks_exact(per).zip(delta.chunks_exact_mut(per)) {
        dk.iter_mut().for_each(|v| *v = R::zero());
        let a = zk[0];
        for j in 0..b {
            let th = &batch.x[j * d..(j + 1) * d];
            let u = dot(&zk[1..], th);
            let (s, ds) = (act.f(u), act.df(u));
            let g = batch.c[j] * w.r[j];
            dk[0] -= g * s;
            let gw = g * a * ds;
            for i in 0..d {
                dk[1 + i] -= gw * th[i];
            }
        }
    }
}

/// The order-2 correction `−scale·(η/2) (H_F g)_k` added to `delta` (mgf: scale 1 within
/// each RK4 stage; smf2: scale dt; see the module docs of `meanfield`), at neurons `z`
/// and inputs `x` where `drift` has just run (its residuals and cached activations in
/// `w`). Three passes: g_k = (1/N) Σ_i r_i ∇Φ_i(z_k), ρ_i = (1/n) Σ_l ∇Φ_i(z_l)·g_l,
/// then (H_F g)_k = (1/N) Σ_i [ρ_i ∇Φ_i(z_k) + r_i ∇²Φ_i(z_k) g_k] with
/// ∇²Φ v = (σ' θ·v_w, σ' v_a θ + a σ'' (θ·v_w) θ).
#[allow(clippy::too_many_arguments)]
pub fn add_correction<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    x: &[R],
    w: &mut DriftScratch<R>,
    eta: f64,
    scale: f64,
    delta: &mut [R],
) {
    let per = d + 1;
    let (n, b) = (z.len() / per, w.r.len());
    let cached = w.cached && w.u.len() == n * b;
    let (bf, nf) = (R::of(b as f64), R::of(n as f64));
    let th = |i: usize| &x[i * d..(i + 1) * d];
    // (u, σ(u), σ'(u)) of neuron k on sample i.
    let at = |w: &DriftScratch<R>, zk: &[R], k: usize, i: usize| {
        if cached {
            (w.u[k * b + i], w.s[k * b + i], w.ds[k * b + i])
        } else {
            let u = dot(&zk[1..], th(i));
            (u, act.f(u), act.df(u))
        }
    };
    let mut g = std::mem::take(&mut w.g);
    g.clear();
    g.resize(z.len(), R::zero());
    for (k, (zk, gk)) in z.chunks_exact(per).zip(g.chunks_exact_mut(per)).enumerate() {
        for i in 0..b {
            let (_, s, ds) = at(w, zk, k, i);
            let q = w.r[i] / bf;
            gk[0] += q * s;
            let qw = q * zk[0] * ds;
            for (gw, t) in gk[1..].iter_mut().zip(th(i)) {
                *gw += qw * *t;
            }
        }
    }
    let mut rho = vec![R::zero(); b];
    for (k, (zk, gk)) in z.chunks_exact(per).zip(g.chunks_exact(per)).enumerate() {
        for (i, rho_i) in rho.iter_mut().enumerate() {
            let (_, s, ds) = at(w, zk, k, i);
            *rho_i += (s * gk[0] + zk[0] * ds * dot(th(i), &gk[1..])) / nf;
        }
    }
    let mut h = vec![R::zero(); per];
    let c = R::of(scale * 0.5 * eta / b as f64);
    for (k, ((zk, gk), dk)) in z
        .chunks_exact(per)
        .zip(g.chunks_exact(per))
        .zip(delta.chunks_exact_mut(per))
        .enumerate()
    {
        let a = zk[0];
        h.iter_mut().for_each(|v| *v = R::zero());
        for i in 0..b {
            let t = th(i);
            let (u, s, ds) = at(w, zk, k, i);
            let tg = dot(t, &gk[1..]);
            let r = w.r[i];
            h[0] += rho[i] * s + r * ds * tg;
            let cw = rho[i] * a * ds + r * (ds * gk[0] + a * act.d2f(u) * tg);
            for (hw, tj) in h[1..].iter_mut().zip(t) {
                *hw += cw * *tj;
            }
        }
        for (dv, hv) in dk.iter_mut().zip(&h) {
            *dv -= c * *hv;
        }
    }
    w.g = g;
}

/// Observables `OBSERVABLES` of neurons `z`: the test residuals in the neurons' float
/// type (`test`: the job's test set in it), every sum in f64.
pub fn observables<R: Real>(
    job: &MfJob,
    z: &[R],
    test: &Batch<R>,
    scratch: &mut Vec<R>,
) -> [f64; 4] {
    let per = job.per();
    let n = job.width as f64;
    let sq = |v: &R| v.as_f64() * v.as_f64();
    residuals(job.act, z, job.d, &test.x, &test.y, scratch);
    let risk = 0.5 * scratch.iter().map(sq).sum::<f64>() / job.test.n as f64;
    let (mut a2, mut w2, mut phi) = (0.0, 0.0, 0.0);
    let mut zk64 = vec![0.0; per];
    for zk in z.chunks_exact(per) {
        a2 += sq(&zk[0]);
        w2 += zk[1..].iter().map(sq).sum::<f64>();
        zk64.iter_mut().zip(zk).for_each(|(v, r)| *v = r.as_f64());
        phi += job.phi.eval(&zk64);
    }
    [risk, a2 / n, w2 / n, phi / n]
}

/// One replica: its neurons and work buffers, in float type `R` (f64: the reference).
pub struct Net<'a, R = f64> {
    job: &'a MfJob,
    r: u32,
    pub z: Vec<R>,
    diverged: bool,
    batch: Batch<R>,
    /// The job's test set in `R` (the risk's inputs and labels).
    test: Batch<R>,
    scratch: Vec<f64>,
    residuals: Vec<R>,
    work: DriftScratch<R>,
    delta: Vec<R>,
    /// RK4 stage state and accumulator.
    stage: Vec<R>,
    acc: Vec<R>,
}

impl<'a> Net<'a> {
    /// Replica r in f64 (the reference).
    pub fn new(job: &'a MfJob, r: u64) -> Self {
        Self::in_precision(job, r)
    }
}

impl<'a, R: Real> Net<'a, R> {
    /// Replica r in float type `R`: the initial neurons are drawn in f64 and rounded.
    pub fn in_precision(job: &'a MfJob, r: u64) -> Self {
        let len = job.state_len();
        let mut z64 = vec![0.0; len];
        init_neurons(&job.init, job.key, r as u32, job.width, job.d, &mut z64);
        let rk4 = job.dynamics.is_ode();
        let zero = vec![R::zero(); len];
        Net {
            job,
            r: r as u32,
            z: rounded(&z64),
            diverged: false,
            batch: Batch::default(),
            test: Batch {
                x: rounded(&job.test.x),
                y: rounded(&job.test.y),
                c: Vec::new(),
            },
            scratch: Vec::new(),
            residuals: Vec::new(),
            work: DriftScratch::default(),
            delta: zero.clone(),
            stage: if rk4 { zero.clone() } else { Vec::new() },
            acc: if rk4 { zero } else { Vec::new() },
        }
    }

    /// The neurons in f64 (the state handed back and observed).
    pub fn z_f64(&self) -> Vec<f64> {
        widened(&self.z)
    }

    pub fn step(&mut self, k: u32) {
        let job = self.job;
        let (act, d) = (job.act, job.d);
        match job.dynamics {
            MfDynamics::Sgd | MfDynamics::Gd | MfDynamics::Smf1 | MfDynamics::Smf2 => {
                let dt = job.eta / job.substeps() as f64;
                for s in 0..job.substeps() {
                    fill_batch(job, self.r, k, s, &mut self.batch, &mut self.scratch);
                    drift(
                        act,
                        &self.z,
                        d,
                        &self.batch,
                        &mut self.work,
                        &mut self.delta,
                    );
                    if job.dynamics.modified() {
                        // delta so far: dt·(−g) + noise; the correction scales with dt.
                        add_correction(
                            act,
                            &self.z,
                            d,
                            &self.batch.x,
                            &mut self.work,
                            job.eta,
                            dt,
                            &mut self.delta,
                        );
                    }
                    self.z
                        .iter_mut()
                        .zip(&self.delta)
                        .for_each(|(z, dz)| *z += *dz);
                }
            }
            MfDynamics::Gf | MfDynamics::Mgf => {
                fill_batch(job, self.r, k, 0, &mut self.batch, &mut self.scratch);
                let h = job.eta / job.substeps as f64;
                let (hr, h6) = (R::of(h), R::of(h / 6.0));
                for _ in 0..job.substeps {
                    // Classical RK4: stages at z, z + h/2 k1, z + h/2 k2, z + h k3.
                    self.stage.copy_from_slice(&self.z);
                    self.acc.iter_mut().for_each(|v| *v = R::zero());
                    for (stage, (w, next)) in [(1.0, 0.5), (2.0, 0.5), (2.0, 1.0), (1.0, 0.0)]
                        .into_iter()
                        .enumerate()
                    {
                        let (w, next) = (R::of(w), R::of(next));
                        drift(
                            act,
                            &self.stage,
                            d,
                            &self.batch,
                            &mut self.work,
                            &mut self.delta,
                        );
                        if job.dynamics.modified() {
                            add_correction(
                                act,
                                &self.stage,
                                d,
                                &self.batch.x,
                                &mut self.work,
                                job.eta,
                                1.0,
                                &mut self.delta,
                            );
                        }
                        for i in 0..self.z.len() {
                            self.acc[i] += w * self.delta[i];
                            if stage < 3 {
                                self.stage[i] = self.z[i] + next * hr * self.delta[i];
                            }
                        }
                    }
                    for i in 0..self.z.len() {
                        self.z[i] += h6 * self.acc[i];
                    }
                }
            }
        }
    }

    /// Observables now (NaN once diverged), applying the divergence rule.
    pub fn observe(&mut self) -> [f64; 4] {
        let bound = self.job.bound;
        if !self.diverged && self.z.iter().any(|v| !(v.as_f64().abs() <= bound)) {
            self.diverged = true;
        }
        if self.diverged {
            return [f64::NAN; 4];
        }
        observables(self.job, &self.z, &self.test, &mut self.residuals)
    }

    /// Recompute activations instead of caching them (the path large n × B takes).
    pub fn without_activation_cache(mut self) -> Self {
        self.work.cache_max = 0;
        self
    }

    /// Advance by the scalar reference drift (`drift_reference`).
    pub fn reference(mut self) -> Self {
        self.work.reference = true;
        self
    }

    pub fn is_diverged(&self) -> bool {
        self.diverged
    }
}

/// Observables (and states, when kept) of one replica at every checkpoint.
fn replica_run<R: Real>(job: &MfJob, r: u64) -> (Vec<f64>, Vec<f64>) {
    let mut net = Net::<R>::in_precision(job, r);
    let mut obs = Vec::with_capacity(job.checkpoints.len() * OBSERVABLES.len());
    let mut states = Vec::new();
    let mut k = 0u32;
    for &c in &job.checkpoints {
        while k < c {
            net.step(k);
            k += 1;
        }
        obs.extend_from_slice(&net.observe());
        if job.keep_states {
            if net.is_diverged() {
                states.extend(std::iter::repeat_n(f64::NAN, net.z.len()));
            } else {
                states.extend(net.z_f64());
            }
        }
    }
    (obs, states)
}

impl MeanFieldBackend for CpuMeanField {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn adapter(&self) -> String {
        format!(
            "{} threads ({})",
            rayon::current_num_threads(),
            self.precision.name()
        )
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn run(&self, job: &MfJob, replicas: Range<u64>, sink: MfSink) -> anyhow::Result<()> {
        let (no, ns) = (
            OBSERVABLES.len(),
            if job.keep_states { job.state_len() } else { 0 },
        );
        let mut start = replicas.start;
        while start < replicas.end {
            let end = (start + self.block).min(replicas.end);
            let runs: Vec<(Vec<f64>, Vec<f64>)> = (start..end)
                .into_par_iter()
                .map(|r| match self.precision {
                    Precision::F64 => replica_run::<f64>(job, r),
                    Precision::F32 => replica_run::<f32>(job, r),
                })
                .collect();
            for c in 0..job.checkpoints.len() {
                let obs: Vec<f64> = runs
                    .iter()
                    .flat_map(|(o, _)| o[c * no..(c + 1) * no].iter().copied())
                    .collect();
                let states: Vec<f64> = runs
                    .iter()
                    .flat_map(|(_, s)| s[c * ns..(c + 1) * ns].iter().copied())
                    .collect();
                sink(Block {
                    checkpoint: c,
                    first: start,
                    obs: &obs,
                    states: &states,
                });
            }
            start = end;
        }
        Ok(())
    }
}
