//! One lane group of replicas on the CPU: `T::WIDTH` replicas side by side (structure
//! of arrays, `crate::lanes`), each coordinate a `T`. With `T = f64` (width 1) this is
//! the reference every other backend is checked against; with `T = Lanes` each lane
//! carries exactly the bits of that reference (the same IEEE operations in the same
//! order, lane by lane); with `T = Lanes32` it is the f32 option. Each function is the
//! math of one update, written once for every width.
//!
//! Data are shared by the group, so full-batch sums multiply a lane vector by the same
//! f64 row for every lane (no gather); a minibatch row differs per lane and is gathered
//! once per draw into `xg`. Margins run several rows side by side (`each_margin`), each
//! still summed in the reference's order.

use super::net::Param;
use super::{TrainJob, Update};
use crate::data::sampling::batch_indices;
use crate::data::{label_noise, DataSet};
use crate::dynamics::momentum::heavy_ball;
use crate::lanes::{lane_loop, Num};
use crate::solver::levels::coarsen_normals;
use crate::solver::rk4;
use crate::theory::gain::q as gain_q;
use std::ops::Mul;

/// Scratch of one lane group (allocated once per group, reused every step).
pub struct Group<'a, T: Num> {
    job: &'a TrainJob,
    ds: &'a DataSet,
    /// Per-replica labels (`resample_labels`), else empty: the data set's labels.
    y: Vec<T>,
    /// State row: w (p), then Gain (d) when tracked.
    pub row: Vec<T>,
    /// msgd / msme1: the momentum of w (p, starting at 0); else empty.
    mom: Vec<T>,
    beta: Vec<T>,
    g: Vec<T>,
    tmp_d: Vec<T>,
    q_d: Vec<T>,
    tmp_p: Vec<T>,
    /// RK4 work space (its slope is also the Euler–Maruyama drift).
    rk: rk4::Work<Vec<T>>,
    w: Vec<T>,
    /// The minibatch rows of one draw, gathered per lane (d).
    xg: Vec<T>,
    /// Draw j of lane l at `j * T::WIDTH + l`.
    idx: Vec<u32>,
    normals: Vec<T>,
    /// Replica of lane 0; lane l is replica `first + l` (wrapping).
    first: u32,
}

/// The scalar reference: one replica.
pub type Replica<'a> = Group<'a, f64>;

/// `Σ_j v_j x_j` (j ascending): the margin of one sample.
#[inline(always)]
fn margin<T: Num + Mul<X, Output = T>, X: Copy>(x: &[X], v: &[T]) -> T {
    let mut s = T::ZERO;
    for (&vj, &xj) in v.iter().zip(x) {
        lane_loop::<T>();
        s += vj * xj;
    }
    s
}

/// Rows whose margins are summed side by side ([`each_margin`], the minibatch): each
/// margin is one chain of d dependent additions, so one row at a time left the adder
/// waiting on its own latency; independent rows overlap. Every chain still adds in
/// ascending j, so each margin has the bits of [`margin`].
const ROWS: usize = 4;

/// `[[x_kᵀ v_u]_u]_k` for K rows x_k and V vectors v_u: K·V independent chains side by
/// side, each summed as [`margin`] sums it (j ascending over the rows' length).
#[inline(always)]
fn margins<T, X, const K: usize, const V: usize>(xs: [&[X]; K], vs: [&[T]; V]) -> [[T; V]; K]
where
    T: Num + Mul<X, Output = T>,
    X: Copy,
{
    let d = xs[0].len();
    let xs = xs.map(|x| &x[..d]);
    let vs = vs.map(|v| &v[..d]);
    let mut s = [[T::ZERO; V]; K];
    for j in 0..d {
        lane_loop::<T>();
        for k in 0..K {
            for u in 0..V {
                s[k][u] += vs[u][j] * xs[k][j];
            }
        }
    }
    s
}

/// Calls `f(i, x_i, [x_iᵀ v_u]_u)` for every row i of `ds`, in ascending i, with the
/// margins of [`ROWS`] rows computed side by side ([`margins`]).
#[inline(always)]
fn each_margin<T, const V: usize>(
    ds: &DataSet,
    vs: [&[T]; V],
    mut f: impl FnMut(usize, &[f64], [T; V]),
) where
    T: Num + Mul<f64, Output = T>,
{
    let mut i = 0;
    while i + ROWS <= ds.n {
        let xs: [&[f64]; ROWS] = std::array::from_fn(|k| ds.row(i + k));
        let m = margins(xs, vs);
        for k in 0..ROWS {
            f(i + k, xs[k], m[k]);
        }
        i += ROWS;
    }
    for i in i..ds.n {
        let x = ds.row(i);
        f(i, x, margins([x], vs)[0]);
    }
}

/// Label of sample i, per lane: `y` (per-replica labels) if not empty, else the data
/// set's.
#[inline(always)]
fn label<T: Num>(ds: &DataSet, y: &[T], i: usize) -> T {
    if y.is_empty() {
        T::splat(ds.y[i])
    } else {
        y[i]
    }
}

/// `acc += e x`.
#[inline(always)]
fn add_scaled<T: Num + Mul<X, Output = T>, X: Copy>(acc: &mut [T], e: T, x: &[X]) {
    for (a, &xj) in acc.iter_mut().zip(x) {
        lane_loop::<T>();
        *a += e * xj;
    }
}

fn zero<T: Num>(v: &mut [T]) {
    v.iter_mut().for_each(|x| *x = T::ZERO);
}

/// `v *= c`.
#[inline(always)]
fn scale<T: Num>(v: &mut [T], c: f64) {
    for x in v.iter_mut() {
        lane_loop::<T>();
        *x *= T::splat(c);
    }
}

/// The coarse level's normals of step k (`TrainJob::coarsen` = c > 1): the fine
/// substeps' (N each) drawn, then substep s′ gets (ξ_{s′c} + … + ξ_{s′c+c−1})/√c, so
/// that √(c·dt) times it is the sum of the c fine increments. Out of line, and off the
/// fine level's path: `step`'s inlined code for the other dynamics stays as it was
/// (the minibatch SGD step lost 6–10% when it grew).
#[inline(never)]
fn coarse_normals<T: Num>(job: &TrainJob, first: u32, k: u32, n: usize, normals: &mut [T]) {
    T::fill_normals(
        job.key,
        first,
        job.stream,
        k,
        1,
        job.substeps as usize * n,
        normals,
    );
    coarsen_normals(normals, n, job.coarsen as usize);
}

impl<'a, T: Num> Group<'a, T> {
    pub fn new(job: &'a TrainJob, first: u64) -> Self {
        let ds = &*job.data;
        let (d, p) = (ds.d, job.p());
        let first = first as u32;
        let y = if job.resample_labels {
            let clean = ds
                .y_clean
                .as_ref()
                .expect("resample_labels needs a generated set");
            (0..ds.n)
                .map(|i| {
                    T::from_fn(|l| {
                        let r = first.wrapping_add(l as u32);
                        clean[i] + ds.noise_std * label_noise(job.key, r, i as u32)
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut row = vec![T::ZERO; job.row_len()];
        for (r, &w) in row.iter_mut().zip(&job.w0) {
            *r = T::splat(w);
        }
        let sde = matches!(job.dynamics.update(), Update::Sde { .. });
        let vec = |len: usize| vec![T::ZERO; len];
        Group {
            job,
            ds,
            y,
            row,
            mom: vec(if job.dynamics.has_momentum() { p } else { 0 }),
            beta: vec(d),
            g: vec(d),
            tmp_d: vec(d),
            q_d: vec(d),
            tmp_p: vec(p),
            rk: rk4::Work::like(&vec(p)),
            w: vec(p),
            xg: vec(ROWS * d),
            idx: vec![0; job.batch as usize * T::WIDTH],
            normals: vec(if sde { job.substeps as usize * ds.n } else { 0 }),
            first,
        }
    }

    pub fn job(&self) -> &'a TrainJob {
        self.job
    }

    /// Advances step k (0-based).
    #[inline(always)]
    pub fn step(&mut self, k: u32) {
        let job = self.job;
        match job.dynamics.update() {
            Update::Discrete { full } => self.discrete(k, full),
            Update::Ode => {
                let s = job.substeps / job.coarsen.max(1);
                let dt = job.eta / s as f64;
                for _ in 0..s {
                    self.rk4(dt);
                }
            }
            Update::Sde { pesme } => {
                let n = self.ds.n;
                let c = job.coarsen.max(1) as usize;
                let s = job.substeps as usize / c;
                if c > 1 {
                    coarse_normals(job, self.first, k, n, &mut self.normals);
                } else {
                    T::fill_normals(
                        job.key,
                        self.first,
                        job.stream,
                        k,
                        1,
                        s * n,
                        &mut self.normals,
                    );
                }
                let dt = job.eta / s as f64;
                for sub in 0..s {
                    self.em(sub, dt, pesme);
                }
            }
        }
    }

    /// Marks each lane diverged (NaN state) if one of its coordinates is beyond the
    /// bound or not finite.
    pub fn check_bound(&mut self) {
        let (p, bound) = (self.job.p(), self.job.bound);
        for l in 0..T::WIDTH {
            if self.row[..p].iter().any(|v| !(v.lane(l).abs() <= bound)) {
                for v in self.row.iter_mut() {
                    let old = *v;
                    *v = T::from_fn(|m| if m == l { f64::NAN } else { old.lane(m) });
                }
            }
        }
    }

    /// Lane l's state row, in f64.
    pub fn lane_row(&self, l: usize, out: &mut Vec<f64>) {
        out.extend(self.row.iter().map(|v| v.lane(l)));
    }

    #[inline(always)]
    fn discrete(&mut self, k: u32, full: bool) {
        let job = self.job;
        let (ds, p) = (self.ds, job.p());
        job.param.beta(&self.row[..p], &mut self.beta);
        if full {
            self.full_grad();
        } else {
            self.draw_batch(k);
            self.batch_grad();
        }
        if job.track_gain {
            for i in 0..ds.d {
                lane_loop::<T>();
                let step = self.g[i] * job.eta;
                self.row[p + i] += T::from_fn(|l| gain_q(step.lane(l)));
            }
        }
        job.param.pull(&self.row[..p], &self.g, &mut self.tmp_p);
        if self.mom.is_empty() {
            for i in 0..p {
                lane_loop::<T>();
                self.row[i] -= self.tmp_p[i] * job.eta;
            }
        } else {
            // msgd: p ← p − η(γp + ĝ), then w ← w + ηp (DESIGN §3b).
            for i in 0..p {
                lane_loop::<T>();
                self.mom[i] = heavy_ball(self.mom[i], self.tmp_p[i], job.friction, job.eta);
                self.row[i] += self.mom[i] * job.eta;
            }
        }
    }

    /// The minibatch indices of step k, per lane.
    fn draw_batch(&mut self, k: u32) {
        let job = self.job;
        batch_indices(
            job.sampling,
            job.key,
            job.stream,
            self.first,
            T::WIDTH,
            k,
            job.batch,
            self.ds.n as u32,
            &mut self.idx,
        );
    }

    /// g = ∇_β L(β) = (1/N) Σ_i ℓ'(x_iᵀβ, y_i) x_i, β = `self.beta`.
    #[inline(always)]
    fn full_grad(&mut self) {
        let (ds, loss) = (self.ds, self.job.loss);
        zero(&mut self.g);
        let (g, y) = (&mut self.g, &self.y);
        each_margin(
            ds,
            [&self.beta],
            #[inline(always)]
            |i, x, [m]| {
                add_scaled(g, loss.slope(m, label(ds, y, i)), x);
            },
        );
        let inv = 1.0 / ds.n as f64;
        scale(&mut self.g, inv);
    }

    /// g = (1/b) Σ_j ℓ'(x_{i_j}ᵀβ, y_{i_j}) x_{i_j}, the indices `self.idx`.
    #[inline(always)]
    fn batch_grad(&mut self) {
        let (ds, d, w, loss) = (self.ds, self.ds.d, T::WIDTH, self.job.loss);
        zero(&mut self.g);
        let b = self.job.batch as usize;
        // Draws j .. j + q at a time: gathered, their margins side by side, then added
        // to g in draw order.
        for j in (0..b).step_by(ROWS) {
            let q = ROWS.min(b - j);
            for (r, xg) in self.xg.chunks_exact_mut(d).take(q).enumerate() {
                let idx = &self.idx[(j + r) * w..(j + r + 1) * w];
                for (c, xc) in xg.iter_mut().enumerate() {
                    lane_loop::<T>();
                    *xc = T::from_fn(|l| ds.x[idx[l] as usize * d + c]);
                }
            }
            let xg = |r: usize| &self.xg[r * d..(r + 1) * d];
            let mut m = [T::ZERO; ROWS];
            if q == ROWS {
                let both = margins(std::array::from_fn(xg), [&self.beta[..]]);
                m = both.map(|[v]| v);
            } else {
                for (r, mr) in m[..q].iter_mut().enumerate() {
                    *mr = margin(xg(r), &self.beta);
                }
            }
            for (r, &mr) in m[..q].iter().enumerate() {
                let idx = &self.idx[(j + r) * w..(j + r + 1) * w];
                let y = if self.y.is_empty() {
                    T::from_fn(|l| ds.y[idx[l] as usize])
                } else {
                    T::from_fn(|l| self.y[idx[l] as usize].lane(l))
                };
                add_scaled(&mut self.g, loss.slope(mr, y), xg(r));
            }
        }
        let inv = 1.0 / b as f64;
        scale(&mut self.g, inv);
    }

    #[inline(always)]
    fn rk4(&mut self, dt: f64) {
        let p = self.job.p();
        let mut w = std::mem::take(&mut self.w);
        let mut work = std::mem::take(&mut self.rk);
        w.copy_from_slice(&self.row[..p]);
        rk4::step(&mut w, dt, p, &mut work, |y: &Vec<T>, k: &mut Vec<T>| {
            self.drift(y, k)
        });
        self.row[..p].copy_from_slice(&w);
        (self.w, self.rk) = (w, work);
    }

    /// −∇L(w), or −(∇L + (η/2) ∇²L ∇L)(w) for the modified dynamics.
    #[inline(always)]
    fn drift(&mut self, w: &[T], out: &mut [T]) {
        let job = self.job;
        let (param, p) = (job.param, job.p());
        param.beta(w, &mut self.beta);
        self.full_grad();
        param.pull(w, &self.g, out);
        if job.dynamics.modified() {
            self.hvp(param, w, out);
            let c = job.eta / 2.0;
            for i in 0..p {
                lane_loop::<T>();
                out[i] += self.tmp_p[i] * c;
            }
        }
        for v in out.iter_mut() {
            lane_loop::<T>();
            *v = -*v;
        }
    }

    /// tmp_p = ∇²L(w) v with β(w) in `self.beta` and g = ∇_βL(β(w)) in `self.g`:
    /// Jᵀ ((1/N) Σ_i ℓ''_i x_i x_iᵀ) J v + curv(g, v).
    #[inline(always)]
    fn hvp(&mut self, param: Param, w: &[T], v: &[T]) {
        let (ds, loss) = (self.ds, self.job.loss);
        param.push(w, v, &mut self.tmp_d);
        zero(&mut self.q_d);
        let q_d = &mut self.q_d;
        if loss.unit_curvature() {
            each_margin(
                ds,
                [&self.tmp_d],
                #[inline(always)]
                |_, x, [s]| add_scaled(q_d, s, x),
            );
        } else {
            each_margin(
                ds,
                [&self.tmp_d, &self.beta],
                #[inline(always)]
                |_, x, [s, m]| add_scaled(q_d, s * loss.curvature(m), x),
            );
        }
        let inv = 1.0 / ds.n as f64;
        scale(&mut self.q_d, inv);
        param.pull(w, &self.q_d, &mut self.tmp_p);
        param.curv_add(w, &self.g, v, &mut self.tmp_p);
    }

    /// One Euler–Maruyama substep with the N Brownian increments of substep `sub`.
    #[inline(always)]
    fn em(&mut self, sub: usize, dt: f64, pesme: bool) {
        let job = self.job;
        let (ds, param, p, n, loss) = (self.ds, job.param, job.p(), self.ds.n, job.loss);
        self.w.copy_from_slice(&self.row[..p]);
        let w = std::mem::take(&mut self.w);
        let mut drift = std::mem::take(&mut self.rk.slope);
        self.drift(&w, &mut drift);
        // self.beta, self.g now hold β(w) and ∇_βL(w).
        let sd = dt.sqrt();
        let scale;
        zero(&mut self.tmp_d);
        if pesme {
            // Jᵀ Xᵀ dB · sqrt(2ηL/(bN)).
            let mut sq = T::ZERO;
            let (tmp_d, y, dw) = (&mut self.tmp_d, &self.y, &self.normals[sub * n..]);
            each_margin(
                ds,
                [&self.beta],
                #[inline(always)]
                |i, x, [m]| {
                    let e = loss.slope(m, label(ds, y, i));
                    sq += e * e;
                    add_scaled(tmp_d, dw[i] * sd, x);
                },
            );
            let loss = sq * 0.5 / n as f64;
            scale = (loss * (2.0 * job.eta) / (job.batch as f64 * n as f64)).sqrt();
        } else {
            // N^{-1/2} Σ_i G(w, θ_i) dB_i in β-space: g ΣdB − Σ ℓ'_i x_i dB_i.
            let mut s = T::ZERO;
            let (tmp_d, y, dw) = (&mut self.tmp_d, &self.y, &self.normals[sub * n..]);
            each_margin(
                ds,
                [&self.beta],
                #[inline(always)]
                |i, x, [m]| {
                    let e = loss.slope(m, label(ds, y, i));
                    let z = dw[i] * sd;
                    s += z;
                    add_scaled(tmp_d, -(e * z), x);
                },
            );
            for (t, &g) in self.tmp_d.iter_mut().zip(&self.g) {
                lane_loop::<T>();
                *t += g * s;
            }
            scale = T::splat((job.eta / (job.batch as f64 * n as f64)).sqrt());
        }
        param.pull(&w, &self.tmp_d, &mut self.tmp_p);
        if self.mom.is_empty() {
            for i in 0..p {
                lane_loop::<T>();
                self.row[i] = w[i] + drift[i] * dt + scale * self.tmp_p[i];
            }
        } else {
            // msme1, symplectic Euler–Maruyama (as `dynamics::momentum`): the momentum
            // with force drift = −∇L(w) and the noise first, then w with the new one.
            for i in 0..p {
                lane_loop::<T>();
                self.mom[i] =
                    heavy_ball(self.mom[i], -drift[i], job.friction, dt) + scale * self.tmp_p[i];
                self.row[i] = w[i] + self.mom[i] * dt;
            }
        }
        self.rk.slope = drift;
        self.w = w;
    }
}
