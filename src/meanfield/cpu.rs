//! The CPU reference of the mean-field dynamics, in f64 (or f32 for speed, `Real`):
//! replicas in parallel (rayon), each advanced by `Net`. Results do not depend on the
//! thread count or block size: every replica's draws come from its own Philox counters.

use super::model::init_neurons;
use super::real::{rounded, widened, Real};
use super::{fill_batch, Batch, Block, MfJob, MfSink, OBSERVABLES};
use crate::backend::blocks::{self, Blocks};
use crate::backend::rows::RowEngine;
use crate::backend::Precision;
use crate::dynamics::momentum::heavy_ball;
use crate::solver::rk4;
use std::ops::Range;

use super::drift::{add_correction, drift, observables, step_in_place, DriftScratch};

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

/// One replica: its neurons and work buffers, in float type `R` (f64: the reference).
pub struct Net<'a, R = f64> {
    job: &'a MfJob,
    r: u32,
    pub z: Vec<R>,
    /// The neurons' momenta (msgd, msme1; empty otherwise), not reported.
    p: Vec<R>,
    diverged: bool,
    batch: Batch<R>,
    /// The job's test set in `R` (the risk's inputs and labels).
    test: Batch<R>,
    scratch: Vec<f64>,
    residuals: Vec<R>,
    work: DriftScratch<R>,
    /// Δz of `drift` (sized on first use: the in-place Euler step needs none).
    delta: Vec<R>,
    /// RK4 work space (gf, mgf; empty otherwise).
    rk: rk4::Work<Vec<R>>,
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
        let mut z = vec![R::zero(); len];
        init_neurons(&job.init, job.key, r as u32, job.width, job.d, &mut z);
        let rk = if job.dynamics.is_ode() {
            rk4::Work::like(&vec![R::zero(); len])
        } else {
            rk4::Work::default()
        };
        Net {
            job,
            r: r as u32,
            z,
            p: if job.dynamics.has_momentum() {
                vec![R::zero(); len]
            } else {
                Vec::new()
            },
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
            delta: Vec::new(),
            rk,
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
            // sgd, gd (one substep), smf1, smf2: in-place or Euler steps; msgd, msme1:
            // Δz = −g is a force (weights per unit time), then the heavy ball over dt and
            // the position with the new momentum.
            dynamics if !dynamics.is_ode() => {
                let dt = job.eta / job.substeps() as f64;
                let momentum = dynamics.has_momentum();
                let (gamma, h) = (R::of(job.friction), R::of(dt));
                for s in 0..job.substeps() {
                    fill_batch(job, self.r, k, s, &mut self.batch, &mut self.scratch);
                    if !dynamics.modified() && !momentum && !self.work.reference {
                        step_in_place(act, &mut self.z, d, &self.batch, &mut self.work);
                        continue;
                    }
                    self.delta.resize(self.z.len(), R::zero());
                    drift(
                        act,
                        &self.z,
                        d,
                        &self.batch,
                        &mut self.work,
                        &mut self.delta,
                    );
                    if dynamics.modified() {
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
                    if momentum {
                        for ((z, p), dz) in self.z.iter_mut().zip(&mut self.p).zip(&self.delta) {
                            *p = heavy_ball(*p, -*dz, gamma, h);
                            *z += *p * h;
                        }
                    } else {
                        self.z
                            .iter_mut()
                            .zip(&self.delta)
                            .for_each(|(z, dz)| *z += *dz);
                    }
                }
            }
            // gf, mgf.
            _ => {
                fill_batch(job, self.r, k, 0, &mut self.batch, &mut self.scratch);
                let h = job.eta / job.substeps() as f64;
                let (len, batch, work) = (self.z.len(), &self.batch, &mut self.work);
                for _ in 0..job.substeps() {
                    rk4::step(&mut self.z, h, len, &mut self.rk, |y, k| {
                        drift(act, y, d, batch, work, k);
                        if job.dynamics.modified() {
                            add_correction(act, y, d, &batch.x, work, job.eta, 1.0, k);
                        }
                    });
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

impl RowEngine<MfJob> for CpuMeanField {
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
        super::check_supported(job)?;
        let (no, ns) = (
            OBSERVABLES.len(),
            if job.keep_states { job.state_len() } else { 0 },
        );
        // A row: the observables, then the neurons when kept.
        let b = Blocks {
            block: self.block,
            checkpoints: job.checkpoints.len(),
            len: no + ns,
            task: &|_| 1,
        };
        let (mut obs, mut states) = (Vec::new(), Vec::new());
        blocks::run(
            &b,
            replicas,
            |range, _| {
                let r = range.start;
                let (o, s) = match self.precision {
                    Precision::F64 => replica_run::<f64>(job, r),
                    Precision::F32 => replica_run::<f32>(job, r),
                };
                let mut row = Vec::with_capacity(o.len() + s.len());
                for c in 0..job.checkpoints.len() {
                    row.extend_from_slice(&o[c * no..(c + 1) * no]);
                    row.extend_from_slice(&s[c * ns..(c + 1) * ns]);
                }
                row
            },
            |c, first, rows| {
                obs.clear();
                states.clear();
                for r in rows.chunks(no + ns) {
                    obs.extend_from_slice(&r[..no]);
                    states.extend_from_slice(&r[no..]);
                }
                sink(Block {
                    checkpoint: c,
                    first,
                    rows: &obs,
                    states: &states,
                });
            },
        );
        Ok(())
    }
}
