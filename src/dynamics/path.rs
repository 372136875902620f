//! One replica's path on the CPU, in f64: the reference every backend must reproduce.
//!
//! A replica holds `P` particles (P = 1 for weak-order studies) and, for continuous
//! dynamics, up to three *coupled* solver levels: fine (`substeps` per SGD step),
//! coarse (half as many, driven by sums of pairs of fine Brownian increments) and
//! coarsest (a quarter). At each checkpoint an observable g yields
//! - one level:    value g, no solver error;
//! - ODE (RK4):    value g_f, solver error (g_f − g_c)/15;
//! - SDE (EM):     value g_f, solver error g_f − g_c;
//! - SDE + Talay–Tubaro: value 2g_f − g_c, solver error ((2g_f − g_c) − (2g_c − g_cc))/3.
//!
//! A coupled SDE run (DESIGN §7b, `RunSpec::coupling`) also advances the replica's SGD
//! path, drawing SGD's own normals (its stream, so it is the independent SGD run's
//! path), and pins the SDE's Brownian increments over each SGD step to them through a
//! Brownian bridge; it reports per observable the SDE value, SGD's value and their
//! difference D (channels, `RunSpec::stat`).

use super::{Kind, RunSpec, Solver};
use crate::lanes::{Num, MAX_WIDTH};
use crate::model::{drift, zero, ExactStep, Model, Vector, ZERO};

/// Most particles one replica may carry.
pub const MAX_P: usize = 8;
/// Most solver levels.
pub const MAX_LEVELS: usize = 3;
const MAX_NOISE: usize = MAX_P * crate::model::MAX_D;

/// One replica's (or lane group's) state: every particle on every level.
type State<T = f64> = [[Vector<T>; MAX_P]; MAX_LEVELS];

/// What one path reports at its checkpoints: `values[(c * n_stats + k) * 2 + {0: value,
/// 1: solver error}]` for statistic k (`RunSpec::stat`), `alive[c]` false once the path
/// (or a coupled run's SGD partner) has diverged.
pub struct PathRecord {
    pub values: Vec<f64>,
    pub alive: Vec<bool>,
}

impl PathRecord {
    pub fn new(spec: &RunSpec) -> Self {
        let c = spec.checkpoints.len();
        Self {
            values: vec![0.0; c * spec.n_stats() * 2],
            alive: vec![false; c],
        }
    }
}

/// Per-run constants the inner loop needs, computed once.
pub struct Prepared {
    exact: Option<ExactStep>,
}

pub fn prepare<M: Model>(m: &M, spec: &RunSpec) -> Prepared {
    let exact = (spec.dynamics.kind() == Kind::Sde && spec.solver == Solver::Exact)
        .then(|| m.exact_step(spec.drift_c(), spec.noise_var(), spec.eta));
    Prepared { exact }
}

/// Simulates replica `replica` and fills `rec` (the scalar reference).
pub fn simulate<M: Model>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    replica: u32,
    rec: &mut PathRecord,
) {
    let mut work = GroupWork::new();
    simulate_group::<M, f64>(m, spec, prep, replica, std::slice::from_mut(rec), &mut work);
}

/// Simulates replicas `first .. first + recs.len()` side by side, one per lane of `T`
/// (`recs.len() ≤ T::WIDTH`; lanes past the last replica run the next replicas' paths
/// and are not recorded), and fills `recs`. Lane i carries the bits of `simulate` of replica
/// `first + i`: the same operations (`crate::lanes`), and a lane that diverges is
/// recorded as the scalar path is (this and later checkpoints !alive) while the other
/// lanes go on. `work` is reused from group to group (any earlier run's contents).
#[inline(always)]
pub fn simulate_group<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    first: u32,
    recs: &mut [PathRecord],
    work: &mut GroupWork<T>,
) {
    let n = recs.len();
    debug_assert!(n >= 1 && n <= T::WIDTH);
    let p = spec.particles();
    let levels = spec.levels();
    let d = m.dim();
    for rec in recs.iter_mut() {
        rec.alive.iter_mut().for_each(|a| *a = false);
    }
    let mut live = [true; MAX_WIDTH];
    advance::<M, T>(m, spec, prep, first, work, |c, x, sgd| {
        let mut any = false;
        for (l, rec) in recs.iter_mut().enumerate() {
            if !live[l] {
                continue;
            }
            let xl = lane_state(x, l, levels, p, d);
            let gl = sgd.map(|g| lane_vector(g, l, d));
            let partner_ok = gl.as_ref().is_none_or(|g| within(g, d, spec.bound));
            if !finite_within(&xl, levels, p, d, spec.bound) || !partner_ok {
                live[l] = false; // diverged: this and later checkpoints stay !alive
                continue;
            }
            record(m, spec, &xl, gl.as_ref(), levels, c, rec);
            any = true;
        }
        any
    });
}

crate::per_level! {
    /// `simulate_group` compiled for `level` (capped by `simd::detected()`), as the CPU
    /// backend runs it: for tests that compare `Lanes` with `simulate` and `Lanes32`
    /// with the f64 reference at every level.
    pub fn simulate_lanes_at<M: Model, T: Num>(
        m: &M,
        spec: &RunSpec,
        prep: &Prepared,
        first: u32,
        recs: &mut [PathRecord],
        work: &mut GroupWork<T>,
    ) => simulate_group
}

/// Runs replica `replica` to the horizon and hands the finest level's particles to
/// `f` (used to compare backends path by path).
pub fn simulate_states<M: Model>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    replica: u32,
    mut f: impl FnMut(&[Vector]),
) {
    let mut work = GroupWork::new();
    simulate_group_states::<M, f64>(m, spec, prep, replica, 1, &mut work, |_, x| f(x));
}

/// Runs the lane group of replicas `first .. first + n` (n ≤ `T::WIDTH`) to the
/// horizon and hands lane l's finest-level particles, in f64, to `f(l, particles)`, in
/// lane order (diverged paths too: their states say so).
#[inline(always)]
pub fn simulate_group_states<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    first: u32,
    n: usize,
    work: &mut GroupWork<T>,
    mut f: impl FnMut(usize, &[Vector]),
) {
    debug_assert!(n >= 1 && n <= T::WIDTH);
    let last = spec.checkpoints.len() - 1;
    let (p, d) = (spec.particles(), m.dim());
    advance::<M, T>(m, spec, prep, first, work, |c, x, _| {
        if c == last {
            for l in 0..n {
                let mut xl = [ZERO; MAX_P];
                for (o, xi) in xl[..p].iter_mut().zip(&x[0]) {
                    *o = lane_vector(xi, l, d);
                }
                f(l, &xl[..p]);
            }
        }
        true
    });
}

/// Lane `l` of a lane group's state, in f64 (levels × particles × d coordinates).
#[inline(always)]
fn lane_state<T: Num>(x: &State<T>, l: usize, levels: usize, p: usize, d: usize) -> State {
    let mut out: State = [[ZERO; MAX_P]; MAX_LEVELS];
    for (o, lv) in out[..levels].iter_mut().zip(x) {
        for (op, xp) in o[..p].iter_mut().zip(lv) {
            *op = lane_vector(xp, l, d);
        }
    }
    out
}

#[inline(always)]
fn lane_vector<T: Num>(v: &Vector<T>, l: usize, d: usize) -> Vector {
    let mut out = ZERO;
    for (o, c) in out[..d].iter_mut().zip(v) {
        *o = c.lane(l);
    }
    out
}

#[inline(always)]
fn splat_vector<T: Num>(v: &Vector) -> Vector<T> {
    std::array::from_fn(|i| T::splat(v[i]))
}

/// Advances the lane group of replicas `first .. first + T::WIDTH` through all steps,
/// calling `at_checkpoint(c, state, sgd)` at each checkpoint (`sgd`: a coupled run's
/// SGD partner); stops early when it returns false. Only the state's first `levels`
/// levels and `particles()` particles are set and read (the rest of `work.x` holds
/// whatever an earlier group left).
#[inline(always)]
fn advance<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    first: u32,
    work: &mut GroupWork<T>,
    mut at_checkpoint: impl FnMut(usize, &State<T>, Option<&Vector<T>>) -> bool,
) {
    let p = spec.particles();
    let levels = spec.levels();
    let GroupWork {
        x,
        normals,
        sgd_normals,
        scratch,
    } = work;
    for lv in x[..levels].iter_mut() {
        for (xp, x0) in lv[..p].iter_mut().zip(&spec.x0) {
            *xp = splat_vector(x0);
        }
    }
    let mut next_cp = 0;
    let per_step = normals_per_step(m, spec, prep);
    let mut draws = Draws::<T>::new(normals, per_step, spec.stream, first);
    // A coupled run's SGD partner: SGD's normals of the step, from SGD's stream.
    let mut sgd = spec.coupling.map(|c| {
        let per_step = spec.batch as usize * m.data_normals();
        (
            splat_vector::<T>(&spec.x0[0]),
            Draws::<T>::new(sgd_normals, per_step, c.sgd_stream, first),
        )
    });
    for k in 0..spec.steps() {
        let z = draws.step(spec, k);
        match spec.dynamics.kind() {
            Kind::Discrete => discrete_step(m, spec, z, &mut x[0][..p]),
            Kind::Ode => ode_step(m, spec, levels, x),
            Kind::Sde => match (&prep.exact, &mut sgd) {
                (Some(ex), _) => exact_step(m, spec, ex, z, &mut x[0][..p]),
                (None, Some((xg, sgd_draws))) => {
                    let zs = sgd_draws.step(spec, k);
                    discrete_step(m, spec, zs, std::slice::from_mut(xg));
                    em_step(m, spec, levels, z, Some(zs), x, scratch);
                }
                (None, None) => em_step(m, spec, levels, z, None, x, scratch),
            },
        }
        if k + 1 == spec.checkpoints[next_cp] {
            if !at_checkpoint(next_cp, x, sgd.as_ref().map(|(g, _)| g)) {
                return;
            }
            next_cp += 1;
        }
    }
}

/// Standard normals one step of `spec` consumes (the draw-index layout of each step
/// function below).
fn normals_per_step<M: Model>(m: &M, spec: &RunSpec, prep: &Prepared) -> usize {
    match spec.dynamics.kind() {
        Kind::Discrete if spec.dynamics.is_random() => spec.batch as usize * m.data_normals(),
        Kind::Discrete | Kind::Ode => 0,
        Kind::Sde if prep.exact.is_some() => {
            if spec.dynamics.shared_noise() {
                m.exact_normals()
            } else {
                spec.particles() * m.exact_normals()
            }
        }
        Kind::Sde => spec.substeps() as usize * noise_components(m, spec),
    }
}

/// The normals of a lane group's paths, generated for several steps at a time
/// (`Num::fill_normals`: the independent Philox / Box–Muller evaluations overlap):
/// `buf[s * per_step + j]` holds normal j of step `start + s` of every lane.
struct Draws<'a, T> {
    buf: &'a mut Vec<T>,
    per_step: usize,
    stream: u32,
    first: u32,
    span: u32,
    start: u32,
    filled: u32,
}

impl<'a, T: Num> Draws<'a, T> {
    /// Draws into `buf` (grown when too short; every normal is written before it is read).
    fn new(buf: &'a mut Vec<T>, per_step: usize, stream: u32, first: u32) -> Self {
        let span = (256 / per_step.max(1)).max(1) as u32;
        let len = span as usize * per_step;
        if buf.len() < len {
            buf.resize(len, T::ZERO);
        }
        Self {
            buf,
            per_step,
            stream,
            first,
            span,
            start: 0,
            filled: 0,
        }
    }

    /// Normals 0..per_step of step k.
    #[inline(always)]
    fn step(&mut self, spec: &RunSpec, k: u32) -> &[T] {
        if self.per_step == 0 {
            return &[];
        }
        if k < self.start || k >= self.start + self.filled {
            let n = self.span.min(spec.steps() - k);
            let len = n as usize * self.per_step;
            let out = &mut self.buf[..len];
            T::fill_normals(
                spec.key,
                self.first,
                self.stream,
                k,
                n as usize,
                self.per_step,
                out,
            );
            self.start = k;
            self.filled = n;
        }
        let off = (k - self.start) as usize * self.per_step;
        &self.buf[off..off + self.per_step]
    }
}

/// What a lane group's path works in, allocated once per CPU chunk and reused by each
/// of its groups (clearing or allocating these per group of 8 paths cost ~15% of a
/// short SGD path): the state, the normals' buffers and the SDE scratch.
pub struct GroupWork<T> {
    x: State<T>,
    normals: Vec<T>,
    sgd_normals: Vec<T>,
    scratch: EmScratch<T>,
}

impl<T: Num> GroupWork<T> {
    pub fn new() -> Box<Self> {
        Box::new(Self {
            x: [[zero(); MAX_P]; MAX_LEVELS],
            normals: Vec::new(),
            sgd_normals: Vec::new(),
            scratch: EmScratch::new(),
        })
    }
}

/// The per-substep noise arrays of `em_step`, kept across steps (so that a step does
/// not clear 4 × `MAX_NOISE` lanes; each is written before it is read).
struct EmScratch<T> {
    shift: [T; MAX_NOISE],
    dw: [T; MAX_NOISE],
    acc: [[T; MAX_NOISE]; MAX_LEVELS - 1],
}

impl<T: Num> EmScratch<T> {
    fn new() -> Self {
        Self {
            shift: [T::ZERO; MAX_NOISE],
            dw: [T::ZERO; MAX_NOISE],
            acc: [[T::ZERO; MAX_NOISE]; MAX_LEVELS - 1],
        }
    }
}

fn finite_within(x: &State, levels: usize, p: usize, d: usize, bound: f64) -> bool {
    x[..levels]
        .iter()
        .all(|lv| lv[..p].iter().all(|v| within(v, d, bound)))
}

/// Every coordinate finite and within the bound (NaN fails the comparison).
fn within(v: &Vector, d: usize, bound: f64) -> bool {
    v[..d].iter().all(|c| c.abs() <= bound)
}

fn record<M: Model>(
    m: &M,
    spec: &RunSpec,
    x: &State,
    sgd: Option<&Vector>,
    levels: usize,
    c: usize,
    rec: &mut PathRecord,
) {
    let n_obs = spec.observables.len();
    let base = c * spec.n_stats();
    let p = spec.particles();
    let ode = spec.dynamics.kind() == Kind::Ode;
    for (o, obs) in spec.observables.iter().enumerate() {
        let g: [f64; MAX_LEVELS] = std::array::from_fn(|l| {
            if l < levels {
                obs.eval(m, &x[l][..p])
            } else {
                0.0
            }
        });
        let (v, e) = combine_levels(g, levels, ode);
        let mut put = |k: usize, v: f64, e: f64| {
            rec.values[(base + k) * 2] = v;
            rec.values[(base + k) * 2 + 1] = e;
        };
        put(o, v, e);
        if let Some(xg) = sgd {
            let g_sgd = obs.eval(m, std::slice::from_ref(xg));
            put(n_obs + o, g_sgd, 0.0);
            // D = g_sgd − value; its solver error is minus the value's.
            put(2 * n_obs + o, g_sgd - v, -e);
        }
    }
    rec.alive[c] = true;
}

/// Value and solver-error estimate from the levels' observables (see module docs).
#[inline]
pub fn combine_levels(g: [f64; MAX_LEVELS], levels: usize, ode: bool) -> (f64, f64) {
    match levels {
        1 => (g[0], 0.0),
        2 if ode => (g[0], (g[0] - g[1]) / 15.0),
        2 => (g[0], g[0] - g[1]),
        _ => {
            let fine = 2.0 * g[0] - g[1];
            let coarse = 2.0 * g[1] - g[2];
            (fine, (fine - coarse) / 3.0)
        }
    }
}

/// gd / sgd: x ← x − η (1/b) Σ_j ∇R(x, θ_j); the batch θ_1..θ_b is shared by the
/// particles (same data). θ_j uses normals j·n_θ .. (j+1)·n_θ of the step.
#[inline(always)]
fn discrete_step<M: Model, T: Num>(m: &M, spec: &RunSpec, normals: &[T], x: &mut [Vector<T>]) {
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
    let nt = m.data_normals();
    let scale = spec.eta / spec.batch as f64;
    // Particle-outer: each particle re-reads the same θ_j (same normals), so the batch
    // never has to be stored; with one particle this is a single pass.
    for xp in x.iter_mut() {
        let mut gs = zero::<T>();
        for j in 0..spec.batch as usize {
            let theta = m.sample_theta(&normals[j * nt..(j + 1) * nt]);
            let g = m.grad_sample(xp, &theta);
            for i in 0..d {
                gs[i] += g[i];
            }
        }
        for i in 0..d {
            xp[i] -= gs[i] * scale;
        }
    }
}

/// gf / mgf: RK4 on the drift, `substeps >> level` steps per SGD step on each level.
#[inline(always)]
fn ode_step<M: Model, T: Num>(m: &M, spec: &RunSpec, levels: usize, x: &mut State<T>) {
    let d = m.dim();
    let c = spec.drift_c();
    for (l, lv) in x[..levels].iter_mut().enumerate() {
        let n = spec.substeps() >> l;
        let h = spec.eta / n as f64;
        for xp in lv[..spec.particles()].iter_mut() {
            for _ in 0..n {
                *xp = rk4(|y| drift(m, y, c), xp, h, d);
            }
        }
    }
}

#[inline(always)]
fn rk4<T: Num>(f: impl Fn(&Vector<T>) -> Vector<T>, x: &Vector<T>, h: f64, d: usize) -> Vector<T> {
    let axpy = |a: &Vector<T>, s: f64, b: &Vector<T>| {
        let mut o = *a;
        for i in 0..d {
            o[i] += b[i] * s;
        }
        o
    };
    let k1 = f(x);
    let k2 = f(&axpy(x, 0.5 * h, &k1));
    let k3 = f(&axpy(x, 0.5 * h, &k2));
    let k4 = f(&axpy(x, h, &k3));
    let mut o = *x;
    for i in 0..d {
        o[i] += (k1[i] + k2[i] * 2.0 + k3[i] * 2.0 + k4[i]) * (h / 6.0);
    }
    o
}

/// Whether the SDE's noise is the reduced cylindrical noise ∫ G W(dθ, dt) (`smf_noise`):
/// SMF, and a coupled run of SME or SMF (one particle, where the two have the same
/// law; the coupling needs SGD's own noise factor G, DESIGN §7b — the symmetric root
/// Σ^{1/2} would decorrelate the pair).
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

/// sme* / smf*: Euler–Maruyama on the coupled levels. Fine substep s uses normals
/// s·n_c .. (s+1)·n_c of the step; the coarse levels sum the fine increments. With
/// `sgd` (a coupled run: SGD's data normals of the step) the increments are pinned
/// to SGD's noise (`bridge_shift`).
#[inline(always)]
fn em_step<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    levels: usize,
    normals: &[T],
    sgd: Option<&[T]>,
    x: &mut State<T>,
    scratch: &mut EmScratch<T>,
) {
    let nc = noise_components(m, spec);
    let s_fine = spec.substeps();
    let dt = spec.eta / s_fine as f64;
    let sqrt_dt = dt.sqrt();
    // The per-run constants once per step, not per substep (the same values, so the
    // same bits); the scratch arrays are used only over the nc components.
    let em = EmConsts {
        d: m.dim(),
        p: spec.particles(),
        c: spec.drift_c(),
        scale: spec.noise_var().sqrt(),
        shared: uses_smf_noise(spec),
    };
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
        em_level(m, &em, &mut x[0], &dw[..nc], dt);
        for l in 1..levels {
            let a = &mut acc[l - 1];
            for j in 0..nc {
                a[j] += dw[j];
            }
            let span = 1u32 << l;
            if s % span == span - 1 {
                em_level(m, &em, &mut x[l], &a[..nc], dt * span as f64);
                a[..nc].iter_mut().for_each(|v| *v = T::ZERO);
            }
        }
    }
}

/// What `em_level` needs of the run, read once per step.
struct EmConsts {
    d: usize,
    p: usize,
    c: f64,
    scale: f64,
    shared: bool,
}

/// One Euler–Maruyama step of every particle of one level.
#[inline(always)]
fn em_level<M: Model, T: Num>(m: &M, em: &EmConsts, x: &mut [Vector<T>; MAX_P], dw: &[T], dt: f64) {
    let d = em.d;
    for (p, xp) in x[..em.p].iter_mut().enumerate() {
        let b = drift(m, xp, em.c);
        let noise = if em.shared {
            m.smf_noise(xp, dw)
        } else {
            m.sme_noise(xp, &dw[p * d..(p + 1) * d])
        };
        for i in 0..d {
            xp[i] += b[i] * dt + noise[i] * em.scale;
        }
    }
}

/// Exact transition over one SGD step (OU / GBM). Particle p uses normals
/// p·n_e .. (p+1)·n_e (SME) or the shared normals 0..n_e (SMF).
#[inline(always)]
fn exact_step<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    ex: &ExactStep,
    normals: &[T],
    x: &mut [Vector<T>],
) {
    let d = m.dim();
    let ne = m.exact_normals();
    let shared = spec.dynamics.shared_noise();
    for (p, xp) in x.iter_mut().enumerate() {
        let base = if shared { 0 } else { p * ne };
        let xi: Vector<T> =
            std::array::from_fn(|i| if i < ne { normals[base + i] } else { T::ZERO });
        match ex {
            ExactStep::Ou { mean, e, c } => {
                let mut out = zero::<T>();
                for i in 0..d {
                    let mut s = T::splat(mean[i]);
                    for j in 0..d {
                        s += (xp[j] - mean[j]) * e[i * d + j] + xi[j] * c[i * d + j];
                    }
                    out[i] = s;
                }
                *xp = out;
            }
            ExactStep::Gbm { drift, vol } => {
                let f = (xi[0] * *vol + *drift).exp();
                for v in xp[..d].iter_mut() {
                    *v *= f;
                }
            }
            ExactStep::Unavailable => {
                unreachable!("config rejects the exact solver for models without one")
            }
        }
    }
}
