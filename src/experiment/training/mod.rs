//! Finite-data experiments (issue 3): least-squares risk of GF / SGD vs ridge, the
//! implicit bias of (S)GD on diagonal linear networks, and GD vs GF. Each turns a
//! `Setup` into an `Output` (results.json value, CSV tables, SVG plots) using a
//! `train::Trainer` (CPU or GPU); observables are evaluated on the host in f64 from
//! the states the trainer hands back.

pub mod config;
pub mod gd_vs_gf;
pub mod implicit_bias;
pub mod least_squares;
pub mod levels;
pub mod weak_order;

use crate::train::{Dynamics, TrainJob, Trainer};
use config::Setup;
use serde_json::Value;
use std::sync::Arc;

/// What an experiment writes.
pub struct Output {
    pub results: Value,
    pub files: Vec<(String, String)>,
    /// Lines printed after the run.
    pub summary: Vec<String>,
    pub path_steps: f64,
    /// Why any value in the outputs is null (divergence, too few replicas, …).
    pub warnings: Vec<String>,
}

/// Philox stream of (dynamics, η index, data set index): distinct per run.
pub fn stream(d: Dynamics, eta_index: usize, dataset: usize) -> u32 {
    (d.code() << 24) | ((eta_index as u32 & 0xFFF) << 12) | (dataset as u32 & 0xFFF)
}

/// The data set index a job's stream was made from (`stream`'s low 12 bits).
pub fn dataset_of_stream(stream: u32) -> usize {
    (stream & 0xFFF) as usize
}

/// The job of (data set, dynamics, η) with the setup's common settings.
pub fn job(s: &Setup, dataset: usize, d: Dynamics, eta: f64, eta_index: usize) -> TrainJob {
    let data = &s.data[dataset];
    TrainJob {
        data: Arc::new(data.clone()),
        param: s.param,
        loss: s.cfg.model.loss,
        dynamics: d,
        eta,
        friction: s.friction,
        coarsen: 1,
        batch: s.cfg.batch,
        sampling: s.cfg.sampling,
        substeps: s.cfg.substeps,
        checkpoints: s
            .times
            .iter()
            .map(|t| config::whole_steps(*t, eta).expect("checked"))
            .collect(),
        w0: s.param.init(data.d, s.cfg.model.alpha),
        key: crate::rng::key_from_seed(s.cfg.seed),
        stream: stream(d, eta_index, dataset),
        resample_labels: false,
        track_gain: matches!(d, Dynamics::Gd | Dynamics::Sgd),
        bound: s.cfg.diverge_bound,
    }
}

/// Runs `replicas` of a job and returns rows `[checkpoint][replica][row]`.
pub fn collect(
    t: &dyn Trainer,
    job: &TrainJob,
    replicas: u64,
) -> anyhow::Result<Vec<Vec<Vec<f64>>>> {
    collect_with(t, job, replicas, &|_| {})
}

/// As `collect`, telling `progress` the path-steps done as each block of replicas
/// reaches each checkpoint (`job.path_steps()` × replicas in all), so a long job moves
/// the progress bar before it ends.
pub fn collect_with(
    t: &dyn Trainer,
    job: &TrainJob,
    replicas: u64,
    progress: &dyn Fn(f64),
) -> anyhow::Result<Vec<Vec<Vec<f64>>>> {
    let len = job.row_len();
    let mut out = vec![Vec::new(); job.checkpoints.len()];
    t.train(job, 0..replicas, &mut |c, _, rows| {
        let since = crate::experiment::steps_since_previous(&job.checkpoints, c);
        progress((rows.len() / len) as f64 * since as f64 * job.substeps() as f64);
        out[c].extend(rows.chunks(len).map(|r| r.to_vec()));
    })?;
    Ok(out)
}

/// Mean and standard error of finite values; (NaN, NaN) when none.
pub fn mean_se(v: &[f64]) -> (f64, f64, usize) {
    let f: Vec<f64> = v.iter().cloned().filter(|x| x.is_finite()).collect();
    let n = f.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    let m = f.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (m, 0.0, 1);
    }
    let var = f.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64;
    (m, (var / n as f64).sqrt(), n)
}

/// Bytes each replica holds at the peak of the run: its rows at every checkpoint of
/// the largest job (a row of f64 plus its Vec, and the row's f64 bits kept to save the
/// job for `--resume`), and ~160 bytes of per-replica metrics and replicas.csv text for
/// every job kept until the end.
pub fn held_per_replica(s: &Setup) -> f64 {
    let jobs = (s.data.len() * s.dynamics.len() * s.cfg.etas.len()).max(1) as f64;
    let peak = s
        .dynamics
        .iter()
        .map(|&d| {
            let j = job(s, 0, d, s.cfg.etas[0], 0);
            (j.checkpoints.len() * (j.row_len() * 16 + 48)) as f64
        })
        .fold(0.0, f64::max);
    peak + 160.0 * jobs
}

/// Runs the experiment of a checked setup.
pub fn execute(s: &Setup, t: &dyn Trainer, progress: &dyn Fn(f64)) -> anyhow::Result<Output> {
    match s.experiment {
        config::TrainExperiment::LeastSquaresRisk => least_squares::run(s, t, progress),
        config::TrainExperiment::ImplicitBiasSweep => implicit_bias::run(s, t, progress),
        config::TrainExperiment::GdVsGf => gd_vs_gf::run(s, t, progress),
        config::TrainExperiment::WeakOrder => weak_order::run(s, t, progress),
    }
}

/// A CSV number: shortest round-trip form, empty for NaN (a null, whose reason is in
/// results.json's `warnings`).
pub fn num(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else {
        crate::output::csv::num(x)
    }
}
