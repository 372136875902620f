//! Mean-field neuron ensembles (DESIGN §5, issue 4): M replicas, each a two-layer
//! network of n interacting neurons, trained by mean-field SGD or one of its
//! continuous models.
//!
//! Every dynamics is one formula applied to a weighted list of samples
//! `(θ_j, y_j, c_j)`, j < B ("a batch"):
//!
//! ```text
//! r_j  = f_n(θ_j) − y_j                          (a reduction over the n neurons)
//! Δz_k = −Σ_j c_j r_j ∇_z Φ(θ_j, z_k)             (per neuron)
//! ```
//!
//! - `sgd`: b samples (fresh θ ~ N(0, I) with labels f*(θ) + σε, or drawn with
//!   replacement from the data set), c_j = η/b, z ← z + Δz;
//! - `gd`: all N samples, c_j = η/N;
//! - `gf`: RK4 with `substeps` per step on the drift (c_j = 1/N);
//! - `smf1`: Euler–Maruyama, dt = η/S, c_i = dt/N + sqrt(η dt/(bN)) (ξ_i − ξ̄), ξ_i
//!   i.i.d. N(0, 1) **shared by every neuron of the replica**. This is the data-set
//!   representation of DESIGN §3: `sqrt(η/b) Σ_i G(z, ν, θ_i) dB_i / √N` with
//!   `G_i = V_i − V̄` and `Σ_i (V_i − V̄) ξ_i = Σ_i V_i (ξ_i − ξ̄)`;
//! - `msgd`, `msme1`: heavy ball in friction form (DESIGN §3b), each neuron carrying a
//!   momentum p_k (p₀ = 0, not reported). One update for both, with the weights of a
//!   force per unit time: Δz = −g from `c_j`, then `p ← heavy_ball(p, g, γ, dt)`,
//!   `z ← z + p dt`. msgd: sgd's samples with c_j = 1/b and dt = η; msme1: symplectic
//!   Euler–Maruyama with dt = η/S and smf1's data-set noise as a rate,
//!   c_i = 1/N + sqrt(η/(bN dt)) (ξ_i − ξ̄) (so the kick p dt gets smf1's increment);
//! - `mgf`, `smf2`: gf and smf1 with the order-2 drift `−∇(F + (η/4)|∇F|²)`. Mean-field
//!   GD is GD with step η on `F(Z) = (n/2N) Σ_i r_i²` (∇_{z_k}F = (1/N) Σ_i r_i ∇Φ_i(z_k)
//!   = g_k), so the correction is `−(η/2) H_F g` with
//!   `(H_F g)_k = (1/N) Σ_i [ρ_i ∇Φ_i(z_k) + r_i ∇²Φ_i(z_k) g_k]`,
//!   `ρ_i = (1/n) Σ_l ∇Φ_i(z_l)·g_l` — the two O(η) corrections of seed 001
//!   (`∇|V|²` through z_k itself, `⟨D|V|², μ⟩` through the measure, via ρ_i).
//!
//! On a streamed input distribution, gd/gf use the population drift. It is exact only
//! for the linear activation (through `model::linear_population`, a cubature exact for
//! the quadratic integrands that arise); for the others the config is refused, and a
//! finite data set (any N) stands in for the population.
//!
//! Random numbers (DESIGN §6; the GPU twin uses the same counters): initial neuron k of
//! replica r: `model::init_neurons`; sgd step k: normals `j(d+1) .. j(d+1)+d` (θ_j, then
//! the label noise ε_j) of `fill_normals(key, r, stream, k)` when streaming, or index
//! `sample_index(sampling, key, stream, r, k, j, b, N)` on a data set (msgd alike;
//! with replacement by default, or epochs without);
//! smf1 (smf2, msme1) substep s of step k: normals `0..N` of
//! `fill_normals(key, r, stream, k·S + s)`.
//!
//! A backend returns, per checkpoint and replica, the observables `OBSERVABLES`
//! (population risk on the test set, ⟨a², ν⟩, ⟨|w|², ν⟩, ⟨φ, ν⟩) and, when asked, the
//! neurons themselves (for path-by-path checks).

pub mod cpu;
pub mod drift;
pub mod gpu;
pub mod kernels;

pub mod model;
pub mod real;

use crate::backend::rows::{RowEngine, RowJob, RowSink};
use crate::data::sampling::{sample_index, Sampling};
use crate::data::DataSet;
use crate::rng::fill_normals;
use crate::solver::levels::coarsen_normals;
use model::{Activation, Init, Teacher, TestFn};
use real::{round_into, Real};
use std::sync::Arc;

pub use crate::dynamics::Dynamics;

/// The dynamics mean-field runs, in the order of their stream codes 1 ..= 8: sgd, gd,
/// gf, smf1, mgf (the modified flow of GD, RK4 on `−∇(F + (η/4)|∇F|²)`), smf2 (the
/// smf1 noise with the mgf drift), msgd and msme1 (heavy ball and its SME).
pub const SUPPORTED: [Dynamics; 8] = [
    Dynamics::Sgd,
    Dynamics::Gd,
    Dynamics::Gf,
    Dynamics::Smf1,
    Dynamics::Mgf,
    Dynamics::Smf2,
    Dynamics::Msgd,
    Dynamics::Msme1,
];

/// The names of [`SUPPORTED`].
pub const DYNAMICS: [&str; 8] = ["sgd", "gd", "gf", "smf1", "mgf", "smf2", "msgd", "msme1"];

/// Refuses a job whose dynamics mean-field does not run, a heavy ball without
/// friction, or a dynamics needing what the model does not declare
/// (`model::capabilities`; the config refuses all three first; this guards jobs built
/// in code).
pub fn check_supported(job: &MfJob) -> anyhow::Result<()> {
    let d = job.dynamics;
    if !SUPPORTED.contains(&d) {
        anyhow::bail!("mean-field runs {}, not {}", DYNAMICS.join(", "), d.name())
    }
    let c = job.coarsen;
    if c == 0 || job.substeps % c != 0 || (c > 1 && !(d.is_ode() || job.set_noise())) {
        anyhow::bail!(
            "a coarse level needs an SDE or flow whose substeps ({}) it divides; got {} with \
             coarsen {c}",
            job.substeps,
            d.name()
        );
    }
    if d.has_momentum() && !(job.friction.is_finite() && job.friction > 0.0) {
        anyhow::bail!("{} needs a friction γ > 0, got {}", d.name(), job.friction);
    }
    let streamed = job.streaming.is_some();
    let caps = model::capabilities(job.act, streamed);
    crate::model::capability::check(&model::model_name(job.act, streamed), caps, &[d])
        .map_err(|m| anyhow::anyhow!("{m}"))
}

/// The top byte of a mean-field run's Philox stream: 1 ..= 8 in [`SUPPORTED`] order.
/// Mean-field's own codes, kept when the engines came to share one `Dynamics`, so that
/// a config gives the numbers it gave before.
pub fn stream_code(d: Dynamics) -> u32 {
    let i = SUPPORTED.iter().position(|s| *s == d);
    i.expect("a mean-field dynamics (the config refuses the others)") as u32 + 1
}

/// Observables per (checkpoint, replica), in this order.
pub const OBSERVABLES: [&str; 4] = ["risk", "a2", "w2", "phi"];

/// One (dynamics, η, width) run.
#[derive(Clone, Debug)]
pub struct MfJob {
    pub act: Activation,
    pub d: usize,
    /// Neurons n per replica.
    pub width: usize,
    pub init: Init,
    pub teacher: Arc<Teacher>,
    /// `Some(σ)`: sgd streams θ ~ N(0, I_d) with labels f*(θ) + σε.
    pub streaming: Option<f64>,
    /// The data set (sgd without streaming; the drift of gd, gf, smf1): a finite data
    /// set, or the linear population cubature.
    pub set: Option<Arc<DataSet>>,
    /// Fixed test set of the risk `(1/2T) Σ_t (f_n(θ_t) − y_t)²`.
    pub test: Arc<DataSet>,
    pub phi: TestFn,
    pub dynamics: Dynamics,
    pub eta: f64,
    pub batch: u32,
    /// How sgd / msgd draw their minibatch from the data set (`data::sampling`): with
    /// replacement, or epochs without (a streamed input has no epochs: the config
    /// refuses it).
    pub sampling: Sampling,
    /// Friction γ > 0 of msgd / msme1 (`"momentum": {"friction": γ}`); unused otherwise.
    pub friction: f64,
    /// RK4 / EM substeps per step (gf, smf1) of the fine level.
    pub substeps: u32,
    /// The coupled level's coarsening c ≥ 1 (`solver::levels`), dividing `substeps`:
    /// the path is solved at substeps/c on the fine level's Brownian path — EM substep
    /// s of step k takes the normals of fine substeps sc … sc+c−1, summed over √c
    /// (the trainer's `TrainJob::coarsen`). 1: the fine level.
    pub coarsen: u32,
    /// Step indices at which observables are reported, ascending.
    pub checkpoints: Vec<u32>,
    pub key: [u32; 2],
    pub stream: u32,
    /// A replica with a non-finite neuron coordinate or one beyond this bound at a
    /// checkpoint is diverged: NaN observables from then on.
    pub bound: f64,
    /// Also hand back the neurons at each checkpoint.
    pub keep_states: bool,
}

impl MfJob {
    /// Values per neuron, 1 + d.
    pub fn per(&self) -> usize {
        self.d + 1
    }
    pub fn state_len(&self) -> usize {
        self.width * self.per()
    }
    pub fn steps(&self) -> u32 {
        *self.checkpoints.last().unwrap_or(&0)
    }
    /// Draws b samples per step (sgd, msgd), streamed or from the data set; the others
    /// evaluate on the whole set.
    pub fn minibatch(&self) -> bool {
        matches!(self.dynamics, Dynamics::Sgd | Dynamics::Msgd)
    }
    /// Draws smf1's N normals per evaluation (smf1, smf2, msme1).
    pub fn set_noise(&self) -> bool {
        matches!(
            self.dynamics,
            Dynamics::Smf1 | Dynamics::Smf2 | Dynamics::Msme1
        )
    }
    /// Samples B of one drift evaluation.
    pub fn batch_len(&self) -> usize {
        if self.minibatch() {
            self.batch as usize
        } else {
            self.set.as_ref().map_or(0, |s| s.n)
        }
    }
    /// Substeps per step of this level (1 for the discrete dynamics).
    pub fn substeps(&self) -> u32 {
        match self.dynamics {
            Dynamics::Sgd | Dynamics::Gd | Dynamics::Msgd => 1,
            _ => self.substeps / self.coarsen.max(1),
        }
    }
    /// The weight c_j of every sample of a deterministic weighting: sgd η/b, msgd 1/b
    /// (a force; the heavy ball applies dt), gd η/N, gf and mgf 1/N (the RK4 step applies
    /// h).
    pub fn sample_weight(&self) -> f64 {
        let b = self.batch_len().max(1) as f64;
        match self.dynamics {
            Dynamics::Sgd | Dynamics::Gd => self.eta / b,
            _ => 1.0 / b,
        }
    }
    /// smf1's weights `c_i = w₀ + s (ξ_i − ξ̄)` as (w₀, s), for the set of N samples and
    /// an EM substep dt = η/S: smf1, smf2 the increment's (dt/N, sqrt(η dt/(bN))); msme1
    /// the same divided by dt, a force per unit time (1/N, sqrt(η/(bN dt))).
    pub fn noise_weights(&self) -> (f64, f64) {
        let nf = self.set.as_ref().map_or(1, |s| s.n.max(1)) as f64;
        let dt = self.eta / self.substeps().max(1) as f64;
        let bn = self.batch as f64 * nf;
        if self.dynamics.has_momentum() {
            (1.0 / nf, (self.eta / (bn * dt)).sqrt())
        } else {
            (dt / nf, (self.eta * dt / bn).sqrt())
        }
    }
    /// Neuron-steps of one replica (replicas × n × steps is the throughput unit).
    pub fn neuron_steps(&self) -> f64 {
        self.width as f64 * self.steps() as f64
    }
    /// Floating-point work of one replica in units of neuron·sample·evaluation, for
    /// progress bars and chunking.
    pub fn work(&self) -> f64 {
        self.neuron_steps()
            * self.batch_len() as f64
            * self.dynamics.evaluations_per_step(self.substeps()) as f64
    }
}

/// The weighted samples of one drift evaluation, in the drift's float type (drawn in
/// f64 and rounded once).
#[derive(Clone, Debug, Default)]
pub struct Batch<R = f64> {
    /// B × d inputs.
    pub x: Vec<R>,
    pub y: Vec<R>,
    pub c: Vec<R>,
}

/// Fills `out` with the samples of evaluation (step k, substep s) of replica r. For gf
/// the weights are 1/N (the drift; the RK4 step size is applied by the caller).
pub fn fill_batch<R: Real>(
    job: &MfJob,
    r: u32,
    k: u32,
    s: u32,
    out: &mut Batch<R>,
    scratch: &mut Vec<f64>,
) {
    let d = job.d;
    let b = job.batch_len();
    out.x.resize(b * d, R::zero());
    out.y.resize(b, R::zero());
    out.c.resize(b, R::zero());
    if job.minibatch() {
        let c = R::of(job.sample_weight());
        out.c.iter_mut().for_each(|v| *v = c);
        if let Some(sigma) = job.streaming {
            scratch.resize(b * (d + 1), 0.0);
            fill_normals(job.key, r, job.stream, k, 1, b * (d + 1), scratch);
            for j in 0..b {
                let row = &scratch[j * (d + 1)..(j + 1) * (d + 1)];
                round_into(&mut out.x[j * d..(j + 1) * d], &row[..d]);
                out.y[j] = R::of(job.teacher.eval(job.act, &row[..d]) + sigma * row[d]);
            }
        } else {
            let set = job.set.as_ref().expect("checked: sgd has a data set");
            for j in 0..b {
                let i = sample_index(
                    job.sampling,
                    job.key,
                    job.stream,
                    r,
                    k,
                    j as u32,
                    b as u32,
                    set.n as u32,
                ) as usize;
                round_into(&mut out.x[j * d..(j + 1) * d], set.row(i));
                out.y[j] = R::of(set.y[i]);
            }
        }
        return;
    }
    let set = job
        .set
        .as_ref()
        .expect("checked: full-batch dynamics have a set");
    round_into(&mut out.x, &set.x);
    round_into(&mut out.y, &set.y);
    if !job.set_noise() {
        let c = R::of(job.sample_weight());
        out.c.iter_mut().for_each(|v| *v = c);
        return;
    }
    set_normals(job, r, k, s, scratch);
    let mean = scratch.iter().sum::<f64>() / b as f64;
    let (w0, scale) = job.noise_weights();
    for i in 0..b {
        out.c[i] = R::of(w0 + scale * (scratch[i] - mean));
    }
}

/// ξ of smf1's weights at (step k, substep s) of replica r: normals 0..N of
/// `fill_normals(key, r, stream, k·S + s)` with S the fine level's substeps, or on a
/// coarse level (`MfJob::coarsen` = c) those of fine substeps sc … sc+c−1 combined by
/// `solver::levels::coarsen_normals`. The GPU twin is `prep_noise`
/// (shaders/meanfield/kernels.wgsl).
fn set_normals(job: &MfJob, r: u32, k: u32, s: u32, out: &mut Vec<f64>) {
    let (b, c) = (job.batch_len(), job.coarsen.max(1));
    let fine = k.wrapping_mul(job.substeps).wrapping_add(s * c);
    out.resize(b * c as usize, 0.0);
    fill_normals(job.key, r, job.stream, fine, c as usize, b, out);
    if c > 1 {
        coarsen_normals(out, b, c as usize);
        out.truncate(b);
    }
}

/// A block's rows are `OBSERVABLES.len()` values per replica; its states the neurons
/// when the job keeps them.
pub use crate::backend::rows::Block;

pub type MfSink<'a> = RowSink<'a>;

impl RowJob for MfJob {
    fn row_len(&self) -> usize {
        OBSERVABLES.len()
    }
    fn checkpoint_count(&self) -> usize {
        self.checkpoints.len()
    }
    fn label(&self) -> String {
        format!("{} at η = {}, n = {}", self.dynamics, self.eta, self.width)
    }
}

/// A mean-field backend: the row engine of [`MfJob`]s (implement
/// [`RowEngine<MfJob>`]).
pub trait MeanFieldBackend: RowEngine<MfJob> {}

impl<T: RowEngine<MfJob> + ?Sized> MeanFieldBackend for T {}

/// The standard throughput job of `smflow bench` (`mf_sgd`): tanh network, d = 16,
/// streamed θ ~ N(0, I) with a 4-neuron teacher, batch 8, η = 0.05, `steps` steps.
pub fn bench_job(width: usize, steps: u32) -> MfJob {
    let (d, act) = (16, Activation::Tanh);
    let teacher = Arc::new(Teacher::generate(4, d, 1.0, 3));
    MfJob {
        act,
        d,
        width,
        init: Init::default(),
        teacher: teacher.clone(),
        streaming: Some(0.0),
        set: None,
        test: Arc::new(model::gaussian_set(
            &teacher,
            act,
            64,
            0.0,
            3,
            model::TAG_TEST,
        )),
        phi: TestFn::A2,
        dynamics: Dynamics::Sgd,
        eta: 0.05,
        batch: 8,
        sampling: Sampling::Replacement,
        friction: 0.0,
        substeps: 1,
        coarsen: 1,
        checkpoints: vec![steps],
        key: [1, 2],
        stream: stream_code(Dynamics::Sgd) << 24,
        bound: 1e6,
        keep_states: false,
    }
}

/// Neuron-steps per second (replicas × n × steps / s) of `backend` on `bench_job`,
/// after an untimed warm-up run (kernel compilation, thread-pool start).
pub fn bench_neuron_steps(
    backend: &dyn MeanFieldBackend,
    width: usize,
    replicas: u64,
    steps: u32,
) -> anyhow::Result<f64> {
    let warm = bench_job(width, 1);
    backend.run(&warm, 0..replicas.min(4), &mut |_| {})?;
    let job = bench_job(width, steps);
    let t = std::time::Instant::now();
    backend.run(&job, 0..replicas, &mut |_| {})?;
    Ok(replicas as f64 * job.neuron_steps() / t.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A coarse level's ξ at (step k, substep s) is the sum of the fine substeps
    /// sc … sc+c−1's normals over √c — the fine level's Brownian increments added up —
    /// and the fine level's own are normals k·S + s.
    #[test]
    fn coarse_normals_sum_the_fine_levels() {
        let mut job = bench_job(8, 3);
        job.dynamics = Dynamics::Smf1;
        job.set = Some(Arc::new(model::gaussian_set(
            &job.teacher,
            job.act,
            5,
            0.1,
            7,
            model::TAG_TEST,
        )));
        job.substeps = 4;
        let fine = |k: u32, s: u32| {
            let mut v = vec![0.0; 5];
            fill_normals(job.key, 3, job.stream, k * 4 + s, 1, 5, &mut v);
            v
        };
        let mut out = Vec::new();
        set_normals(&job, 3, 2, 3, &mut out);
        assert_eq!(out, fine(2, 3));
        for c in [2u32, 4] {
            job.coarsen = c;
            for s in 0..4 / c {
                set_normals(&job, 3, 2, s, &mut out);
                for i in 0..5 {
                    let sum: f64 = (0..c).map(|j| fine(2, s * c + j)[i]).sum();
                    let want = sum / (c as f64).sqrt();
                    assert!((out[i] - want).abs() < 1e-15, "c {c} s {s} i {i}");
                }
            }
        }
    }
}
