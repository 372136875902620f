//! One replica on the CPU, in f64: the reference every other backend is checked
//! against. Each function is the math of one update, written once.

use super::net::Param;
use super::{TrainJob, Update};
use crate::data::sampling::sample_index;
use crate::data::{dot, label_noise, DataSet};
use crate::rng::fill_normals;
use crate::theory::gain::q as gain_q;

/// Scratch of one replica (allocated once per replica, reused every step).
pub struct Replica<'a> {
    job: &'a TrainJob,
    ds: &'a DataSet,
    /// Labels this replica trains on.
    y: Vec<f64>,
    /// State row: w (p), then Gain (d) when tracked.
    pub row: Vec<f64>,
    beta: Vec<f64>,
    g: Vec<f64>,
    tmp_d: Vec<f64>,
    tmp_p: Vec<f64>,
    k1: Vec<f64>,
    k2: Vec<f64>,
    k3: Vec<f64>,
    k4: Vec<f64>,
    w_tmp: Vec<f64>,
    idx: Vec<u32>,
    normals: Vec<f64>,
    replica: u32,
}

impl<'a> Replica<'a> {
    pub fn new(job: &'a TrainJob, replica: u64) -> Self {
        let ds = &*job.data;
        let (d, p) = (ds.d, job.p());
        let y = if job.resample_labels {
            let clean = ds
                .y_clean
                .as_ref()
                .expect("resample_labels needs a generated set");
            (0..ds.n)
                .map(|i| clean[i] + ds.noise_std * label_noise(job.key, replica as u32, i as u32))
                .collect()
        } else {
            ds.y.clone()
        };
        let mut row = vec![0.0; job.row_len()];
        row[..p].copy_from_slice(&job.w0);
        let sde = matches!(job.dynamics.update(), Update::Sde { .. });
        Replica {
            job,
            ds,
            y,
            row,
            beta: vec![0.0; d],
            g: vec![0.0; d],
            tmp_d: vec![0.0; d],
            tmp_p: vec![0.0; p],
            k1: vec![0.0; p],
            k2: vec![0.0; p],
            k3: vec![0.0; p],
            k4: vec![0.0; p],
            w_tmp: vec![0.0; p],
            idx: vec![0; job.batch as usize],
            normals: if sde {
                vec![0.0; job.substeps as usize * ds.n]
            } else {
                Vec::new()
            },
            replica: replica as u32,
        }
    }

    /// Advances step k (0-based).
    pub fn step(&mut self, k: u32) {
        let job = self.job;
        match job.dynamics.update() {
            Update::Discrete { full } => self.discrete(k, full),
            Update::Ode => {
                let dt = job.eta / job.substeps as f64;
                for _ in 0..job.substeps {
                    self.rk4(dt);
                }
            }
            Update::Sde { pesme } => {
                let n = self.ds.n;
                let s = job.substeps as usize;
                fill_normals(
                    job.key,
                    self.replica,
                    job.stream,
                    k,
                    1,
                    s * n,
                    &mut self.normals,
                );
                let dt = job.eta / s as f64;
                for sub in 0..s {
                    self.em(sub, dt, pesme);
                }
            }
        }
    }

    /// Marks the replica diverged (NaN state) if a coordinate is beyond the bound.
    pub fn check_bound(&mut self) {
        let p = self.job.p();
        if self.row[..p].iter().any(|v| !(v.abs() <= self.job.bound)) {
            self.row.iter_mut().for_each(|v| *v = f64::NAN);
        }
    }

    fn discrete(&mut self, k: u32, full: bool) {
        let job = self.job;
        let (ds, p) = (self.ds, job.p());
        job.param.beta(&self.row[..p], &mut self.beta);
        if full {
            full_grad(ds, &self.y, &self.beta, &mut self.g);
        } else {
            for j in 0..job.batch {
                self.idx[j as usize] = sample_index(
                    job.sampling,
                    job.key,
                    job.stream,
                    self.replica,
                    k,
                    j,
                    job.batch,
                    ds.n as u32,
                );
            }
            batch_grad(ds, &self.y, &self.beta, &self.idx, &mut self.g);
        }
        if job.track_gain {
            for i in 0..ds.d {
                self.row[p + i] += gain_q(job.eta * self.g[i]);
            }
        }
        job.param.pull(&self.row[..p], &self.g, &mut self.tmp_p);
        for i in 0..p {
            self.row[i] -= job.eta * self.tmp_p[i];
        }
    }

    fn rk4(&mut self, dt: f64) {
        let p = self.job.p();
        let w: Vec<f64> = self.row[..p].to_vec();
        let mut k = [
            std::mem::take(&mut self.k1),
            std::mem::take(&mut self.k2),
            std::mem::take(&mut self.k3),
            std::mem::take(&mut self.k4),
        ];
        let coef = [0.0, 0.5, 0.5, 1.0];
        for s in 0..4 {
            for i in 0..p {
                self.w_tmp[i] = w[i]
                    + if s == 0 {
                        0.0
                    } else {
                        coef[s] * dt * k[s - 1][i]
                    };
            }
            let wt = std::mem::take(&mut self.w_tmp);
            self.drift(&wt, &mut k[s]);
            self.w_tmp = wt;
        }
        for i in 0..p {
            self.row[i] = w[i] + dt / 6.0 * (k[0][i] + 2.0 * k[1][i] + 2.0 * k[2][i] + k[3][i]);
        }
        [self.k1, self.k2, self.k3, self.k4] = k;
    }

    /// −∇L(w), or −(∇L + (η/2) ∇²L ∇L)(w) for the modified dynamics.
    fn drift(&mut self, w: &[f64], out: &mut [f64]) {
        let job = self.job;
        let (ds, param, p) = (self.ds, job.param, job.p());
        param.beta(w, &mut self.beta);
        full_grad(ds, &self.y, &self.beta, &mut self.g);
        param.pull(w, &self.g, out);
        if job.dynamics.modified() {
            hvp(ds, param, w, &self.g, out, &mut self.tmp_d, &mut self.tmp_p);
            let c = job.eta / 2.0;
            for i in 0..p {
                out[i] += c * self.tmp_p[i];
            }
        }
        out.iter_mut().for_each(|v| *v = -*v);
    }

    /// One Euler–Maruyama substep with the N Brownian increments of substep `sub`.
    fn em(&mut self, sub: usize, dt: f64, pesme: bool) {
        let job = self.job;
        let (ds, param, p, n) = (self.ds, job.param, job.p(), self.ds.n);
        let w: Vec<f64> = self.row[..p].to_vec();
        let mut drift = std::mem::take(&mut self.k1);
        self.drift(&w, &mut drift);
        // self.beta, self.g now hold β(w) and ∇_βL(w).
        let sd = dt.sqrt();
        let db = &self.normals[sub * n..(sub + 1) * n];
        let scale;
        if pesme {
            // Jᵀ Xᵀ dB · sqrt(2ηL/(bN)).
            self.tmp_d.iter_mut().for_each(|v| *v = 0.0);
            let mut sq = 0.0;
            for i in 0..n {
                let x = ds.row(i);
                let e = dot(x, &self.beta) - self.y[i];
                sq += e * e;
                let z = sd * db[i];
                for (t, xi) in self.tmp_d.iter_mut().zip(x) {
                    *t += z * xi;
                }
            }
            let loss = 0.5 * sq / n as f64;
            scale = (2.0 * job.eta * loss / (job.batch as f64 * n as f64)).sqrt();
        } else {
            // N^{-1/2} Σ_i G(w, θ_i) dB_i in β-space: g ΣdB − Σ e_i x_i dB_i.
            let mut s = 0.0;
            self.tmp_d.iter_mut().for_each(|v| *v = 0.0);
            for i in 0..n {
                let x = ds.row(i);
                let e = dot(x, &self.beta) - self.y[i];
                let z = sd * db[i];
                s += z;
                for (t, xi) in self.tmp_d.iter_mut().zip(x) {
                    *t -= e * z * xi;
                }
            }
            for (t, g) in self.tmp_d.iter_mut().zip(&self.g) {
                *t += g * s;
            }
            scale = (job.eta / (job.batch as f64 * n as f64)).sqrt();
        }
        param.pull(&w, &self.tmp_d, &mut self.tmp_p);
        for i in 0..p {
            self.row[i] = w[i] + drift[i] * dt + scale * self.tmp_p[i];
        }
        self.k1 = drift;
    }
}

/// ∇_β L(β) = (1/N) Σ_i x_i (x_iᵀβ − y_i).
pub fn full_grad(ds: &DataSet, y: &[f64], beta: &[f64], g: &mut [f64]) {
    g.iter_mut().for_each(|v| *v = 0.0);
    for i in 0..ds.n {
        let x = ds.row(i);
        let e = dot(x, beta) - y[i];
        for (gj, xj) in g.iter_mut().zip(x) {
            *gj += e * xj;
        }
    }
    let inv = 1.0 / ds.n as f64;
    g.iter_mut().for_each(|v| *v *= inv);
}

/// (1/b) Σ_j x_{i_j} (x_{i_j}ᵀβ − y_{i_j}).
pub fn batch_grad(ds: &DataSet, y: &[f64], beta: &[f64], idx: &[u32], g: &mut [f64]) {
    g.iter_mut().for_each(|v| *v = 0.0);
    for &i in idx {
        let x = ds.row(i as usize);
        let e = dot(x, beta) - y[i as usize];
        for (gj, xj) in g.iter_mut().zip(x) {
            *gj += e * xj;
        }
    }
    let inv = 1.0 / idx.len() as f64;
    g.iter_mut().for_each(|v| *v *= inv);
}

/// out = ∇²L(w) v with v = `v` (p), g = ∇_βL(β(w)): Jᵀ (XᵀX/N) J v + curv(g, v).
/// `jv` (d) and `out` (p) are scratch/output.
fn hvp(
    ds: &DataSet,
    param: Param,
    w: &[f64],
    g: &[f64],
    v: &[f64],
    jv: &mut [f64],
    out: &mut [f64],
) {
    param.push(w, v, jv);
    let mut q = vec![0.0; ds.d];
    for i in 0..ds.n {
        let x = ds.row(i);
        let s = dot(x, jv);
        for (qj, xj) in q.iter_mut().zip(x) {
            *qj += s * xj;
        }
    }
    let inv = 1.0 / ds.n as f64;
    q.iter_mut().for_each(|v| *v *= inv);
    param.pull(w, &q, out);
    param.curv_add(g, v, out);
}
