//! `smflow bench`: path-steps per second of each backend on the standard jobs, the same
//! jobs `benches/numpy_baseline.py` runs in numpy: 1-D Gaussian `sgd` (quadratic model,
//! a = 1.5, θ ~ N(0.3, 0.8²), b = 2, η = 0.05, T = 2: 40 steps) and `sme2` by
//! Euler–Maruyama with 32 substeps (no extrapolation; fine substeps count as steps);
//! and `data_sgd`, minibatch SGD on a finite data set (least squares, N = 1000,
//! d = 100, b = 10, η = 0.01, 100 steps) on the finite-data trainers, the job of
//! `benches/numpy_train_baseline.py` (path-steps = replica-steps); and `mf_sgd_n1024`,
//! `mf_sgd_n65536`, mean-field SGD of a tanh network (`meanfield::bench_job`: d = 16,
//! streamed inputs, batch 8), the job of `benches/numpy_meanfield_baseline.py`, in
//! neuron-steps per second (replicas × n × steps / s). On a GPU, `rng_ceiling` runs the
//! `sgd` job's random numbers alone (one Box–Muller pair per path-step, nothing else):
//! `sgd` over `rng_ceiling` is how close the simulation kernel and its driver come to
//! the cost of their draws on that adapter.
//!
//! `smflow bench CONFIG` times any experiment instead (`bench_config.rs`).

use super::{make_backend, Failure};
use crate::backend::{Backend, BackendChoice};
use crate::experiment::config::parse;
use crate::experiment::{execute, plan, Shard};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// An experiment config to time on each backend instead of the standard jobs: it
    /// runs whole, as `smflow run` would, into a temporary directory; each run's
    /// path-steps/s are those its results.json reports.
    pub config: Option<PathBuf>,
    /// Backends to measure [default: cpu, and gpu when an adapter exists].
    #[arg(long, value_enum)]
    pub backend: Vec<BackendChoice>,
    /// Paths for the sgd job [default: 1048576] (the sme2 job uses 1/16 of them); with
    /// CONFIG, overrides the config's paths.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::config::parse::cli_paths)]
    pub paths: Option<u64>,
    /// With CONFIG: runs per backend, interleaved across backends (cpu, gpu, cpu, …).
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Replicas of the mean-field job `mf_sgd` at n = 2^10 (a wider n runs
    /// max(2, this · 2^12 / n) of them: n = 2^16 runs 1/16).
    #[arg(long, default_value_t = 64)]
    pub mf_replicas: u64,
    /// Widths n of the mean-field job (each a job `mf_sgd_n<n>`; 20 steps at n ≤ 2^10,
    /// else 10).
    #[arg(long, value_delimiter = ',', default_values_t = [1024usize, 65536])]
    pub mf_widths: Vec<usize>,
    /// Jobs to run [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub jobs: Vec<BenchJob>,
    /// Write the measurements as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchJob {
    Sgd,
    Sme2,
    DataSgd,
    Mf,
    /// The bare-RNG ceiling of the sgd job (GPU only).
    Rng,
}

/// Replicas and steps of the mean-field job at width n.
fn mf_size(mf_replicas: u64, width: usize) -> (u64, u32) {
    if width <= 1 << 10 {
        (mf_replicas, 20)
    } else {
        ((mf_replicas * 4096 / width as u64).max(2), 10)
    }
}

#[derive(Serialize, Debug)]
pub struct Measurement {
    pub backend: String,
    pub adapter: String,
    /// "f32" or "f64": the float type of the path arithmetic.
    pub precision: String,
    pub job: String,
    pub paths: u64,
    pub path_steps: f64,
    pub seconds: f64,
    pub path_steps_per_second: f64,
}

/// Backends to measure: as asked, else cpu, and gpu when `gpu_exists`.
pub(super) fn choices(
    asked: &[BackendChoice],
    gpu_exists: impl FnOnce() -> bool,
) -> Vec<BackendChoice> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    let mut v = vec![BackendChoice::Cpu];
    if gpu_exists() {
        v.push(BackendChoice::Gpu);
    }
    v
}

/// The CPU at both precisions (unset: f64, the reference; then f32, the fast option),
/// the GPU in f32.
fn both_cpu_precisions(
    choices: Vec<BackendChoice>,
) -> impl Iterator<Item = (BackendChoice, Option<crate::backend::Precision>)> {
    choices.into_iter().flat_map(|choice| {
        let precisions = if choice == BackendChoice::Cpu {
            vec![None, Some(crate::backend::Precision::F32)]
        } else {
            vec![Some(crate::backend::Precision::F32)]
        };
        precisions.into_iter().map(move |p| (choice, p))
    })
}

fn job_config(dynamics: &str, paths: u64) -> String {
    format!(
        r#"{{"experiment":"weak_order","name":"bench","model":{{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]}},
        "x0":[1.0],"dynamics":["{dynamics}"],"batch":2,"etas":[0.05],"horizon":2.0,"observables":["norm2"],
        "paths":{paths},"sde":{{"substeps":32,"extrapolate":false}},"seed":7}}"#
    )
}

pub fn bench(a: BenchArgs) -> Result<(), Failure> {
    // Before measuring anything: the --json file must be writable.
    if let Some(p) = &a.json {
        crate::output::files::check_output_file(p, "--json").map_err(Failure::BadInput)?;
    }
    if let Some(config) = &a.config {
        if !a.jobs.is_empty() {
            return Err(Failure::BadInput(
                "--jobs: picks standard jobs; with CONFIG the config is the job (leave --jobs out)"
                    .into(),
            ));
        }
        let out = super::bench_config::bench_config(config, &a.backend, a.paths, a.rounds)?;
        return write_json(a.json.as_deref(), &out);
    }
    if a.rounds != 1 {
        return Err(Failure::BadInput(
            "--rounds: applies to CONFIG (the standard jobs run once per backend)".into(),
        ));
    }
    let sgd_paths = a.paths.unwrap_or(1 << 20);
    if let Some(w) = a.mf_widths.iter().find(|w| **w == 0) {
        return Err(Failure::BadInput(format!(
            "--mf-widths: widths must be ≥ 1, got {w}"
        )));
    }
    let wants = |j: BenchJob| a.jobs.is_empty() || a.jobs.contains(&j);
    let f32 = crate::backend::Precision::F32;
    let small_d = choices(&a.backend, || {
        crate::backend::gpu::GpuBackend::new(f32).is_ok()
    });
    let mut out = Vec::new();
    println!(
        "{:<5} {:<6} {:>10} {:>10} {:>14}  adapter",
        "back", "job", "paths", "seconds", "path-steps/s"
    );
    let small_jobs: Vec<(&str, u64)> = [("sgd", sgd_paths), ("sme2", (sgd_paths / 16).max(1))]
        .into_iter()
        .filter(|(j, _)| {
            wants(if *j == "sgd" {
                BenchJob::Sgd
            } else {
                BenchJob::Sme2
            })
        })
        .collect();
    for (choice, precision) in
        both_cpu_precisions(small_d.clone()).filter(|_| !small_jobs.is_empty())
    {
        let backend = make_backend(choice, precision, true)?;
        for &(job, paths) in &small_jobs {
            // Warm-up: pipeline compilation and thread-pool start are not throughput.
            let warm = plan(&parse(&job_config(job, 4096), "bench")?);
            execute(&warm, backend.as_ref(), Shard::WHOLE, &|_| {})?;
            let p = plan(&parse(&job_config(job, paths), "bench")?);
            let c = execute(&p, backend.as_ref(), Shard::WHOLE, &|_| {})?;
            let m = Measurement {
                backend: backend.name().into(),
                adapter: backend.adapter(),
                precision: backend.precision().name().into(),
                job: job.into(),
                paths,
                path_steps: c.path_steps,
                seconds: c.wall_seconds,
                path_steps_per_second: c.path_steps / c.wall_seconds,
            };
            println!(
                "{:<5} {:<6} {:>10} {:>10.3} {:>14.3e}  {}",
                m.backend, m.job, m.paths, m.seconds, m.path_steps_per_second, m.adapter
            );
            out.push(m);
        }
    }
    if wants(BenchJob::Rng) && small_d.contains(&BackendChoice::Gpu) {
        let gpu = crate::backend::gpu::GpuBackend::new(f32).map_err(Failure::Runtime)?;
        let paths = sgd_paths;
        // The sgd job's own step count (K = T/η), from its plan.
        let steps = plan(&parse(&job_config("sgd", 1), "bench")?).runs[0]
            .spec
            .steps();
        let (path_steps, seconds) = gpu.rng_ceiling(paths, steps).map_err(Failure::Runtime)?;
        let m = Measurement {
            backend: "gpu".into(),
            adapter: gpu.adapter(),
            precision: "f32".into(),
            job: "rng_ceiling".into(),
            paths,
            path_steps,
            seconds,
            path_steps_per_second: path_steps / seconds,
        };
        println!(
            "{:<5} {:<12} {:>4} {:>10.3} {:>14.3e}  {} (the sgd job's draws alone)",
            m.backend, m.job, m.paths, m.seconds, m.path_steps_per_second, m.adapter
        );
        out.push(m);
    }
    let trainers = if wants(BenchJob::DataSgd) {
        choices(&a.backend, || {
            crate::train::gpu::GpuTrainer::new(f32).is_ok()
        })
    } else {
        Vec::new()
    };
    for (choice, precision) in both_cpu_precisions(trainers) {
        let trainer = super::train::make_trainer(choice, precision, true)?;
        let replicas = (sgd_paths / 256).max(64);
        let steps = 100;
        let rate = crate::train::bench_sgd(trainer.as_ref(), 1000, 100, 10, replicas, steps)?;
        let m = Measurement {
            backend: trainer.name().into(),
            adapter: trainer.adapter(),
            precision: trainer.precision().name().into(),
            job: "data_sgd".into(),
            paths: replicas,
            path_steps: replicas as f64 * steps as f64,
            seconds: replicas as f64 * steps as f64 / rate,
            path_steps_per_second: rate,
        };
        println!(
            "{:<5} {:<8} {:>8} {:>10.3} {:>14.3e}  {}",
            m.backend, m.job, m.paths, m.seconds, m.path_steps_per_second, m.adapter
        );
        out.push(m);
    }
    let mf = if wants(BenchJob::Mf) {
        choices(&a.backend, || {
            crate::meanfield::gpu::GpuMeanField::new(f32).is_ok()
        })
    } else {
        Vec::new()
    };
    for (choice, precision) in both_cpu_precisions(mf) {
        let backend = super::width_sweep::make_mf_backend(choice, precision, true)?;
        for &width in &a.mf_widths {
            let (replicas, steps) = mf_size(a.mf_replicas, width);
            let rate =
                crate::meanfield::bench_neuron_steps(backend.as_ref(), width, replicas, steps)
                    .map_err(Failure::Runtime)?;
            let work = replicas as f64 * width as f64 * steps as f64;
            let m = Measurement {
                backend: backend.name().into(),
                adapter: backend.adapter(),
                precision: backend.precision().name().into(),
                job: format!("mf_sgd_n{width}"),
                paths: replicas,
                path_steps: work,
                seconds: work / rate,
                path_steps_per_second: rate,
            };
            println!(
                "{:<5} {:<12} {:>4} {:>10.3} {:>14.3e}  {} (neuron-steps/s)",
                m.backend, m.job, m.paths, m.seconds, m.path_steps_per_second, m.adapter
            );
            out.push(m);
        }
    }
    write_json(a.json.as_deref(), &out)
}

/// The measurements as JSON at `path`, if given.
fn write_json(path: Option<&std::path::Path>, out: &[Measurement]) -> Result<(), Failure> {
    if let Some(p) = path {
        std::fs::write(
            p,
            serde_json::to_vec_pretty(out).map_err(|e| Failure::Runtime(e.into()))?,
        )
        .map_err(|e| Failure::Runtime(e.into()))?;
    }
    Ok(())
}
