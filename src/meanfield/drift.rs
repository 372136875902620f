//! The mean-field drift on the CPU, one replica at a time: residuals, the forward pass,
//! the drift (lane kernels, `kernels.rs`) and its scalar check `drift_reference`, the
//! in-place Euler step, the order-2 correction and the observables. `cpu.rs` runs
//! replicas with them.

use super::kernels::{self, Cache, Chunk, J};
use super::model::{dot, Activation};
use super::real::Real;
use super::{Batch, MfJob};
use crate::rng::simd;

/// `r_j = f_n(θ_j) − y_j` for every sample (rows of `x`, labels `y`), at neurons `z`.
pub fn residuals<R: Real>(act: Activation, z: &[R], d: usize, x: &[R], y: &[R], out: &mut Vec<R>) {
    let (mut xt, mut acc) = (Vec::new(), Vec::new());
    kernels::transpose_batch(x, d, &mut xt);
    forward(act, z, d, &xt, y, &mut acc, Cache::none(), out);
}

/// The forward pass: r_j = (1/n) Σ_k a_k σ(w_k·θ_j) − y_j into `r` (`xt`: the batch as
/// `kernels` chunks, `acc` work space), the activations kept in `cache` unless empty.
#[allow(clippy::too_many_arguments)]
fn forward<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    xt: &[Chunk<R>],
    y: &[R],
    acc: &mut Vec<Chunk<R>>,
    cache: Cache<'_, R>,
    r: &mut Vec<R>,
) {
    let (n, b) = (z.len() / (d + 1), y.len());
    acc.clear();
    // Sums from −0, as the reference's `Iterator::sum`.
    acc.resize(b.div_ceil(J), [-R::zero(); J]);
    kernels::forward_at(simd::level(), act, z, d, xt, acc, cache);
    let nf = R::of(n as f64);
    r.clear();
    r.extend(
        y.iter()
            .enumerate()
            .map(|(j, yj)| acc[j / J][j % J] / nf - *yj),
    );
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
        let s: R = z.chunks_exact(per).fold(-R::zero(), |s, zk| {
            s.add_product(zk[0], act.f(dot(&zk[1..], th)))
        });
        out.push(s / R::of(n as f64) - *yj);
    }
}

/// Largest n × B whose activations the forward pass keeps for the update pass (σ, σ')
/// and, in `drift`, for `add_correction` (u too; it otherwise recomputes them by
/// scalar loops): 16 MB of σ and σ' in f64 at most.
const CACHE_MAX: usize = 1 << 20;

/// Work buffers of `drift`.
pub struct DriftScratch<R = f64> {
    /// Keep the activations when n × B is at most this (`CACHE_MAX`).
    pub cache_max: usize,
    /// Use `drift_reference` (scalar loops, one neuron and sample at a time) instead of
    /// the fused lane kernels; for tests that hold the two together.
    pub reference: bool,
    /// The residuals r_j of the last `drift`.
    pub r: Vec<R>,
    /// Whether `u`, `s`, `ds` hold u_kj = w_k·θ_j, σ(u_kj), σ'(u_kj) of every neuron of
    /// the last `drift`, as `kernels::Cache` lays them out (else they are stale).
    cached: bool,
    u: Vec<Chunk<R>>,
    s: Vec<Chunk<R>>,
    ds: Vec<Chunk<R>>,
    /// The batch inputs (by columns and by rows), c_j r_j and the forward sums as
    /// `kernels` chunks.
    xt: Vec<Chunk<R>>,
    xr: Vec<Chunk<R>>,
    cr: Vec<Chunk<R>>,
    acc: Vec<Chunk<R>>,
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
            xt: Vec::new(),
            xr: Vec::new(),
            cr: Vec::new(),
            acc: Vec::new(),
            g: Vec::new(),
        }
    }
}

/// `Δz_k = −Σ_j c_j r_j ∇_z Φ(θ_j, z_k)` at neurons `z` into `delta`: a forward pass (the
/// residuals r_j) and an update pass (Δa_k = −Σ_j c_j r_j σ(u_kj),
/// Δw_k = −Σ_j c_j r_j a_k σ'(u_kj) θ_j), each one sweep over the neurons by the fused
/// kernels of `kernels`. Gives `drift_reference`'s bits.
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
    forward_pass(act, z, d, batch, w, true);
    let cache = kept(w.cached, &mut w.u, &mut w.s, &mut w.ds);
    kernels::update_into_at(simd::level(), act, z, d, &w.xt, &w.xr, &w.cr, &cache, delta);
}

/// `z ← z + Δz` with `Δz` as in `drift` (the Euler step of sgd, gd and smf1), each
/// neuron updated as soon as its Δz is known: the same numbers as `drift` and an add,
/// with the state read twice and written once, and no Δz stored.
pub fn step_in_place<R: Real>(
    act: Activation,
    z: &mut [R],
    d: usize,
    batch: &Batch<R>,
    w: &mut DriftScratch<R>,
) {
    // σ and σ' kept up to `cache_max` as for `drift`, u not (nothing reads it after an
    // Euler step). Kept rather than recomputed by the update pass: at n = 2^16, B = 8
    // (8 MB of σ, σ' in f64) that was 11–25% faster in f64 and 18–21% in f32 on a
    // 2-vCPU Xeon (`benches/README.md`).
    forward_pass(act, z, d, batch, w, false);
    let cache = kept(w.cached, &mut w.u, &mut w.s, &mut w.ds);
    kernels::update_in_place_at(simd::level(), act, z, d, &w.xt, &w.xr, &w.cr, &cache);
    // z has moved: what is kept no longer describes it.
    w.cached = false;
}

/// The forward pass of `drift`: the batch as chunks into `w.xt` and `w.xr`, the
/// residuals into `w.r`, c_j r_j into `w.cr`; the activations kept when n × B (B
/// rounded up to chunks) ≤ `w.cache_max`: σ and σ', and u too with `keep_u`.
fn forward_pass<R: Real>(
    act: Activation,
    z: &[R],
    d: usize,
    batch: &Batch<R>,
    w: &mut DriftScratch<R>,
    keep_u: bool,
) {
    let (n, nc) = (z.len() / (d + 1), batch.y.len().div_ceil(J));
    kernels::transpose_batch(&batch.x, d, &mut w.xt);
    kernels::row_chunks(&batch.x, d, &mut w.xr);
    w.cached = n * nc * J <= w.cache_max;
    if w.cached {
        for v in [&mut w.s, &mut w.ds] {
            v.resize(n * nc, [R::zero(); J]);
        }
        // An empty u tells the kernels not to keep it (and `add_correction` that it is
        // not there).
        w.u.resize(if keep_u { n * nc } else { 0 }, [R::zero(); J]);
    }
    let cache = kept(w.cached, &mut w.u, &mut w.s, &mut w.ds);
    forward(act, z, d, &w.xt, &batch.y, &mut w.acc, cache, &mut w.r);
    let cr: Vec<R> = w.r.iter().zip(&batch.c).map(|(r, c)| *c * *r).collect();
    kernels::chunked(&cr, &mut w.cr);
}

/// The kept activations `u`, `s`, `ds` as a `Cache` (empty when `cached` is false).
fn kept<'a, R>(
    cached: bool,
    u: &'a mut [Chunk<R>],
    s: &'a mut [Chunk<R>],
    ds: &'a mut [Chunk<R>],
) -> Cache<'a, R> {
    if cached {
        Cache { u, s, ds }
    } else {
        Cache::none()
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
            dk[0] = dk[0].sub_product(g, s);
            let gw = g * a * ds;
            for i in 0..d {
                dk[1 + i] = dk[1 + i].sub_product(gw, th[i]);
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
    add_correction_at(simd::level(), act, z, d, x, w, eta, scale, delta)
}

crate::per_level! {
    /// `add_correction` compiled per SIMD level, as the drift's kernels: its dot products
    /// (`Real::add_product`) are then an FMA instruction in f32, not a call.
    fn add_correction_at<R: Real>(act: Activation, z: &[R], d: usize, x: &[R], w: &mut DriftScratch<R>, eta: f64, scale: f64, delta: &mut [R]) => add_correction_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn add_correction_body<R: Real>(
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
    let nc = b.div_ceil(J);
    let cached = w.cached && w.u.len() == n * nc;
    let (bf, nf) = (R::of(b as f64), R::of(n as f64));
    let th = |i: usize| &x[i * d..(i + 1) * d];
    // (u, σ(u), σ'(u)) of neuron k on sample i.
    let at = |w: &DriftScratch<R>, zk: &[R], k: usize, i: usize| {
        if cached {
            let (at, l) = (k * nc + i / J, i % J);
            (w.u[at][l], w.s[at][l], w.ds[at][l])
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
