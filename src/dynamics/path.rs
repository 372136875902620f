//! One replica's path on the CPU, in f64: the reference every backend must reproduce
//! (and lane groups of replicas, `crate::lanes`). This file drives a path — normals,
//! steps, checkpoints, records; the step of each dynamics is `steps.rs`.
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

use super::momentum::{msgd_step, msme1_step};
pub use super::steps::{bridge_shift, noise_components, uses_smf_noise};
use super::steps::{discrete_step, em_step, exact_step, ode_step, EmScratch};
use super::{Kind, RunSpec};
use crate::lanes::{Num, MAX_WIDTH};
use crate::model::{zero, ExactStep, Model, Vector, ZERO};

/// Most particles one replica may carry.
pub const MAX_P: usize = 8;
/// Most solver levels.
pub const MAX_LEVELS: usize = 3;
pub(super) const MAX_NOISE: usize = MAX_P * crate::model::MAX_D;

/// One replica's (or lane group's) state: every particle on every level.
pub(super) type State<T = f64> = [[Vector<T>; MAX_P]; MAX_LEVELS];

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
    spec.assert_small_d();
    Prepared {
        exact: spec.exact_solver_step(m),
    }
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
    // One lane's state in f64, reused (only its first levels × p × d entries are
    // written and read): a fresh `State` per lane and checkpoint was a 1.5 KB zeroing
    // and copy, 6% of the sgd bench job.
    let mut xl: State = [[ZERO; MAX_P]; MAX_LEVELS];
    let mut vl: State = [[ZERO; MAX_P]; MAX_LEVELS];
    // A coupled run's discrete partner, likewise.
    let mut gl = [ZERO; MAX_P];
    advance::<M, T>(m, spec, prep, first, work, |c, x, sgd, v| {
        let mut any = false;
        for (l, rec) in recs.iter_mut().enumerate() {
            if !live[l] {
                continue;
            }
            lane_state(x, l, levels, p, d, &mut xl);
            // The partner's momentum is 0 unless it is msgd.
            let partner_ok = sgd.is_none_or(|(g, gv)| {
                for (o, (gp, gvp)) in gl.iter_mut().zip(g.iter().zip(gv)) {
                    *o = lane_vector(gp, l, d);
                    if !(within(o, d, spec.bound) && within(&lane_vector(gvp, l, d), d, spec.bound))
                    {
                        return false;
                    }
                }
                true
            });
            // A momentum beyond the bound is a diverged path too (as the GPU's check of
            // every state vector).
            let momentum_ok = v.is_none_or(|v| {
                lane_state(v, l, levels, p, d, &mut vl);
                finite_within(&vl, levels, p, d, spec.bound)
            });
            if !finite_within(&xl, levels, p, d, spec.bound) || !partner_ok || !momentum_ok {
                live[l] = false; // diverged: this and later checkpoints stay !alive
                continue;
            }
            record(m, spec, &xl, sgd.map(|_| &gl[..p]), levels, c, rec);
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
    advance::<M, T>(m, spec, prep, first, work, |c, x, _, _| {
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

/// Lane `l` of a lane group's state, in f64, into `out` (its levels × particles × d
/// coordinates; the rest of `out` is left as it was).
#[inline(always)]
fn lane_state<T: Num>(x: &State<T>, l: usize, levels: usize, p: usize, d: usize, out: &mut State) {
    for (o, lv) in out[..levels].iter_mut().zip(x) {
        for (op, xp) in o[..p].iter_mut().zip(lv) {
            for (oc, c) in op[..d].iter_mut().zip(xp) {
                *oc = c.lane(l);
            }
        }
    }
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
/// calling `at_checkpoint(c, state, partner, momenta)` at each checkpoint (`partner`: a
/// coupled run's discrete partner, positions and momenta of its particles; `momenta`:
/// msgd/msme1's p);
/// stops early when it returns false.
/// Only the state's first `levels` levels and `particles()` particles are set and read
/// (the rest of `work.x` holds whatever an earlier group left).
#[inline(always)]
fn advance<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    first: u32,
    work: &mut GroupWork<T>,
    mut at_checkpoint: impl FnMut(
        usize,
        &State<T>,
        Option<(&[Vector<T>], &[Vector<T>])>,
        Option<&State<T>>,
    ) -> bool,
) {
    let p = spec.particles();
    let levels = spec.levels();
    let momentum = spec.dynamics.has_momentum();
    let GroupWork {
        x,
        v,
        normals,
        sgd_normals,
        scratch,
    } = work;
    for lv in x[..levels].iter_mut() {
        for (xp, x0) in lv[..p].iter_mut().zip(&spec.x0) {
            *xp = splat_vector(x0);
        }
    }
    if momentum {
        for lv in v[..levels].iter_mut() {
            lv[..p].iter_mut().for_each(|vp| *vp = zero());
        }
    }
    let mut next_cp = 0;
    let per_step = normals_per_step(m, spec, prep);
    let mut draws = Draws::<T>::new(normals, per_step, spec.stream, first);
    // A coupled run's discrete partner (sgd, or msgd for msme1): its normals of the
    // step, from its own stream.
    let mut partner = spec.coupling.map(|c| {
        let per_step = spec.batch as usize * m.data_normals();
        let mut x = [zero(); MAX_P];
        for (xp, x0) in x.iter_mut().zip(&spec.x0) {
            *xp = splat_vector(x0);
        }
        Partner {
            x,
            v: [zero(); MAX_P],
            draws: Draws::<T>::new(sgd_normals, per_step, c.sgd_stream, first),
        }
    });
    for k in 0..spec.steps() {
        let z = draws.step(spec, k);
        match spec.dynamics.kind() {
            Kind::Discrete if momentum => msgd_step(m, spec, z, &mut x[0][..p], &mut v[0][..p]),
            Kind::Discrete => discrete_step(m, spec, z, &mut x[0][..p]),
            Kind::Ode => ode_step(m, spec, levels, x),
            Kind::Sde => match &prep.exact {
                Some(ex) => {
                    let momenta = momentum.then_some(&mut v[0][..p]);
                    exact_step(m, spec, ex, z, &mut x[0][..p], momenta)
                }
                None => {
                    let zs = partner.as_mut().map(|pt| pt.step(m, spec, k, momentum));
                    if momentum {
                        msme1_step(m, spec, levels, z, zs, x, v, scratch);
                    } else {
                        em_step(m, spec, levels, z, zs, x, scratch);
                    }
                }
            },
        }
        if k + 1 == spec.checkpoints[next_cp] {
            let momenta = momentum.then_some(&*v);
            let pair = partner.as_ref().map(|pt| (&pt.x[..p], &pt.v[..p]));
            if !at_checkpoint(next_cp, x, pair, momenta) {
                return;
            }
            next_cp += 1;
        }
    }
}

/// A coupled run's discrete partner: its particles' positions and momenta (msgd; zero
/// for sgd), started where the SDE's are, and its draws (one batch per step, shared by
/// its particles as SGD's data are).
struct Partner<'a, T> {
    x: [Vector<T>; MAX_P],
    v: [Vector<T>; MAX_P],
    draws: Draws<'a, T>,
}

impl<T: Num> Partner<'_, T> {
    /// Advances the partner over step k and returns its normals of the step (which pin
    /// the SDE's increments).
    #[inline(always)]
    fn step<M: Model>(&mut self, m: &M, spec: &RunSpec, k: u32, momentum: bool) -> &[T] {
        let zs = self.draws.step(spec, k);
        let p = spec.particles();
        let x = &mut self.x[..p];
        if momentum {
            msgd_step(m, spec, zs, x, &mut self.v[..p]);
        } else {
            discrete_step(m, spec, zs, x);
        }
        zs
    }
}

/// Standard normals one step of `spec` consumes (the draw-index layout of each step
/// function below).
fn normals_per_step<M: Model>(m: &M, spec: &RunSpec, prep: &Prepared) -> usize {
    match spec.dynamics.kind() {
        Kind::Discrete if spec.dynamics.is_random() => spec.batch as usize * m.data_normals(),
        Kind::Discrete | Kind::Ode => 0,
        Kind::Sde if prep.exact.is_some() => {
            let ne = prep.exact.as_ref().map_or(0, ExactStep::normals);
            if spec.dynamics.shared_noise() {
                ne
            } else {
                spec.particles() * ne
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
    /// The momenta of msgd / msme1 (unused otherwise).
    v: State<T>,
    normals: Vec<T>,
    sgd_normals: Vec<T>,
    scratch: EmScratch<T>,
}

impl<T: Num> GroupWork<T> {
    pub fn new() -> Box<Self> {
        Box::new(Self {
            x: [[zero(); MAX_P]; MAX_LEVELS],
            v: [[zero(); MAX_P]; MAX_LEVELS],
            normals: Vec::new(),
            sgd_normals: Vec::new(),
            scratch: EmScratch::new(),
        })
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
    sgd: Option<&[Vector]>,
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
        let (v, e) = crate::solver::levels::value_and_error(&g[..levels], ode);
        let e = e.unwrap_or(0.0);
        let mut put = |k: usize, v: f64, e: f64| {
            rec.values[(base + k) * 2] = v;
            rec.values[(base + k) * 2 + 1] = e;
        };
        put(o, v, e);
        if let Some(xg) = sgd {
            let g_sgd = obs.eval(m, xg);
            put(n_obs + o, g_sgd, 0.0);
            // D = g_sgd − value; its solver error is minus the value's.
            put(2 * n_obs + o, g_sgd - v, -e);
        }
    }
    rec.alive[c] = true;
}
