//! Training on finite data sets: linear regression and diagonal linear networks
//! (`net::Param`) under every dynamics of DESIGN §3 plus the SGF of Pesme et al.
//!
//! Unlike the small-d engine (`dynamics`, `backend`), parameters here have hundreds of
//! coordinates and each step touches a data set, so a replica's state lives in memory
//! (heap on the CPU, a storage buffer on the GPU) and a run hands the states at each
//! checkpoint to the caller, which evaluates observables on the host in f64 — one
//! source of truth for every observable, whatever the backend.
//!
//! Random numbers (reproducibility contract, DESIGN §6): minibatch draw j of step k of
//! replica r uses `data::sampling::sample_index` with counter (r, k, j/4, tag); SDE
//! substep s of step k uses normals s·N .. (s+1)·N of `fill_normals(key, r, tag, k)`
//! (N Brownian motions, one per sample); per-replica label noise is
//! `data::label_noise(key, r, i)`.

pub mod cpu;
pub mod deep_linear;
pub mod gpu;
pub mod loss;
pub mod net;
pub mod ops;

use crate::backend::rows::{Block, RowEngine, RowJob};
use crate::data::sampling::Sampling;
use crate::data::DataSet;
use crate::model::Capabilities;
use loss::Loss;
use net::Param;
use std::ops::Range;
use std::sync::Arc;

pub use crate::dynamics::{Dynamics, Update};

/// The dynamics the trainer runs: all of `dynamics::ALL` (DESIGN §3, the SGF, and the
/// heavy-ball msgd / msme1 of §3b).
pub const SUPPORTED: [Dynamics; 11] = crate::dynamics::ALL;
/// The names of [`SUPPORTED`].
pub const NAMES: [&str; 11] = crate::dynamics::ALL_NAMES;

/// What a data-set model (a parametrisation with a per-sample loss) declares: the
/// full gradient and the data set's noise root N^{-1/2} Σ_i G(w, x_i) dB_i for every
/// parametrisation and loss; the SGF's noise for the squared loss only (its residuals
/// scaled by the loss, Pesme et al.); no exact transitions, and no Gaussian-linear
/// noise (the noise is a finite data set's).
pub fn capabilities(loss: Loss) -> Capabilities {
    Capabilities {
        sgf_noise: loss == Loss::Squared,
        ..Capabilities::GRADIENT_AND_NOISE
    }
}

/// How errors name a data-set model: "linear", or "uv with the logistic loss".
pub fn model_name(param: Param, loss: Loss) -> String {
    match loss {
        Loss::Squared => param.name().to_string(),
        _ => format!("{} with the {} loss", param.name(), loss.name()),
    }
}

/// One (dynamics, η) run on a data set.
#[derive(Clone, Debug)]
pub struct TrainJob {
    pub data: Arc<DataSet>,
    pub param: Param,
    /// The per-sample loss (`loss::Loss`; the squared loss of linear regression by default).
    pub loss: Loss,
    pub dynamics: Dynamics,
    pub eta: f64,
    /// The friction γ > 0 of msgd / msme1 (DESIGN §3b); ignored by the other dynamics.
    pub friction: f64,
    pub batch: u32,
    pub sampling: Sampling,
    /// EM / RK4 substeps per step (ODE and SDE dynamics) of the fine level.
    pub substeps: u32,
    /// The level: 1, the fine one (`substeps` per step); c > 1 (dividing `substeps`),
    /// the coupled coarse level with substeps/c per step, whose Brownian increments
    /// are the sums of c consecutive fine ones (the same normals, (ξ₁ + … + ξ_c)/√c).
    /// A replica's fine and coarse paths are then coupled, and 2φ(fine) − φ(coarse) is
    /// its Talay–Tubaro estimate (weak order 2 in the substep).
    pub coarsen: u32,
    /// Step indices (0 ..= steps) at which states are reported, ascending.
    pub checkpoints: Vec<u32>,
    /// Initial parameters w0 (length p).
    pub w0: Vec<f64>,
    pub key: [u32; 2],
    pub stream: u32,
    /// Each replica trains on its own labels `Xβ* + σε` (needs a generated set).
    pub resample_labels: bool,
    /// Accumulate Gain = Σ_k q(η ∇_β L_{B_k}(β_k)) (discrete dynamics only).
    pub track_gain: bool,
    /// A replica whose |coordinate| exceeds this (or is not finite) at a checkpoint is
    /// diverged: its state is NaN from then on.
    pub bound: f64,
}

impl TrainJob {
    /// Refuses a dynamics the trainer does not run (`SUPPORTED`; its configs refuse
    /// the others by name), a heavy-ball run without a friction γ > 0 (its configs
    /// refuse that as `momentum.friction`), and a dynamics needing what the model does
    /// not declare (`capabilities`; its configs refuse that at `dynamics[i]`).
    pub fn check_dynamics(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            SUPPORTED.contains(&self.dynamics),
            "the finite-data trainer runs {}, not {}",
            NAMES.join(", "),
            self.dynamics
        );
        anyhow::ensure!(
            self.coarsen >= 1 && self.substeps % self.coarsen == 0,
            "coarsen must be ≥ 1 and divide substeps = {}, got {}",
            self.substeps,
            self.coarsen
        );
        anyhow::ensure!(
            !self.dynamics.has_momentum() || (self.friction.is_finite() && self.friction > 0.0),
            "{} needs a friction γ > 0, got {}",
            self.dynamics,
            self.friction
        );
        let caps = capabilities(self.loss);
        let name = model_name(self.param, self.loss);
        crate::model::capability::check(&name, caps, &[self.dynamics])
            .map_err(|m| anyhow::anyhow!("{m}"))
    }

    pub fn d(&self) -> usize {
        self.data.d
    }
    pub fn p(&self) -> usize {
        self.param.params(self.data.d)
    }
    /// Length of a reported state row: w, then Gain when tracked.
    pub fn row_len(&self) -> usize {
        self.p() + if self.track_gain { self.d() } else { 0 }
    }
    /// Length of a replica's whole state: the reported row, then for msgd / msme1
    /// the momentum of w (p; not reported: observables are functions of w).
    pub fn state_len(&self) -> usize {
        self.row_len()
            + if self.dynamics.has_momentum() {
                self.p()
            } else {
                0
            }
    }
    pub fn steps(&self) -> u32 {
        *self.checkpoints.last().unwrap_or(&0)
    }
    /// Substeps per step on this job's level (1 for the discrete dynamics).
    pub fn substeps(&self) -> u32 {
        match self.dynamics.update() {
            Update::Discrete { .. } => 1,
            _ => self.substeps / self.coarsen.max(1),
        }
    }
    /// Floating-point work of one replica (path-steps, substeps counted), for progress.
    pub fn path_steps(&self) -> f64 {
        self.steps() as f64 * self.substeps() as f64
    }
}

/// Receives the states of replicas `first ..` at checkpoint `c`, rows of `row_len`.
pub type Sink<'a> = &'a mut dyn FnMut(usize, u64, &[f64]);

impl RowJob for TrainJob {
    fn row_len(&self) -> usize {
        TrainJob::row_len(self)
    }
    fn checkpoint_count(&self) -> usize {
        self.checkpoints.len()
    }
    fn label(&self) -> String {
        format!("{} at η = {}", self.dynamics, self.eta)
    }
}

/// A finite-data trainer: the row engine of [`TrainJob`]s (CPU, GPU, and what wraps
/// them). Implement [`RowEngine<TrainJob>`]; this adds `train`, its run with the rows
/// handed on as (checkpoint, first replica, rows).
pub trait Trainer: RowEngine<TrainJob> {
    /// Runs replicas `replicas` of `job`, calling `sink` for every checkpoint and
    /// block of replicas (each (checkpoint, replica) exactly once, blocks in order).
    fn train(&self, job: &TrainJob, replicas: Range<u64>, sink: Sink) -> anyhow::Result<()> {
        self.run(job, replicas, &mut |b: Block| {
            sink(b.checkpoint, b.first, b.rows)
        })
    }
}

impl<T: RowEngine<TrainJob> + ?Sized> Trainer for T {}

/// Row is diverged (NaN-filled by the trainers).
pub fn is_diverged(row: &[f64]) -> bool {
    row.iter().any(|v| !v.is_finite())
}

/// Throughput of `trainer` on SGD (linear regression, generated data N × d, batch b,
/// sampling with replacement, fresh labels off): path-steps per second over `replicas`
/// × `steps`, after an untimed warm-up (kernel compilation, device start). For
/// `smflow bench` and tests.
pub fn bench_sgd(
    trainer: &dyn Trainer,
    n: usize,
    d: usize,
    b: u32,
    replicas: u64,
    steps: u32,
) -> anyhow::Result<f64> {
    let data = crate::data::generate(
        &crate::data::GenerateConfig {
            n,
            d,
            sparsity: None,
            teacher_scale: 1.0,
            label_noise: 0.1,
            seed: None,
            labels: Default::default(),
        },
        1,
    );
    let mut job = TrainJob {
        data: Arc::new(data),
        param: Param::Linear,
        loss: Loss::Squared,
        dynamics: Dynamics::Sgd,
        eta: 0.01,
        friction: 0.0,
        coarsen: 1,
        batch: b,
        sampling: Sampling::Replacement,
        substeps: 1,
        checkpoints: vec![0, 1],
        w0: vec![0.0; d],
        key: [1, 2],
        stream: Dynamics::Sgd.code() << 24,
        resample_labels: false,
        track_gain: false,
        bound: f64::INFINITY,
    };
    trainer.train(&job, 0..replicas.min(64), &mut |_, _, _| {})?;
    job.checkpoints = vec![0, steps];
    let t0 = std::time::Instant::now();
    trainer.train(&job, 0..replicas, &mut |_, _, _| {})?;
    Ok(replicas as f64 * steps as f64 / t0.elapsed().as_secs_f64())
}
