//! `smflow compare` for the finite-data experiments: every (data set, dynamics, η) run
//! of the config, on a sample of replicas, on the CPU trainer (f64) and the GPU trainer;
//! rows at every checkpoint compared coordinate by coordinate. Both trainers follow the
//! same Philox draws, so differences are float rounding (amplified only where the
//! dynamics is unstable). Exits with 1 when a deviation exceeds the tolerance.

use super::compare::{CompareArgs, PathTally};
use super::Failure;
use crate::experiment::training::config::{check, TrainExperiment};
use crate::experiment::training::{collect, job};
use crate::train::cpu::CpuTrainer;
use crate::train::gpu::GpuTrainer;
use crate::train::{is_diverged, Trainer};
use serde_json::json;

/// Largest |g − c| / (1 + |c|) over rows both backends kept finite, and the number of
/// rows diverged on one backend only (near the edge of stability f32 and f64 rounding
/// can decide whether a path blows up: reported, not hidden in the maximum).
pub fn max_rel_deviation(cpu: &[Vec<Vec<f64>>], gpu: &[Vec<Vec<f64>>]) -> (f64, usize) {
    let mut worst: f64 = 0.0;
    let mut split = 0;
    for (cc, gc) in cpu.iter().zip(gpu) {
        for (cr, gr) in cc.iter().zip(gc) {
            match (is_diverged(cr), is_diverged(gr)) {
                (false, false) => {
                    for (c, g) in cr.iter().zip(gr) {
                        worst = worst.max((g - c).abs() / (1.0 + c.abs()));
                    }
                }
                (true, true) => {}
                _ => split += 1,
            }
        }
    }
    (worst, split)
}

pub fn compare(a: CompareArgs, text: &str) -> Result<(), Failure> {
    let overrides = crate::config::parse::Overrides {
        paths: None,
        seed: a.seed,
    };
    let cfg =
        crate::experiment::training::config::parse(crate::config::parse::json(text)?, overrides)?;
    let stem = a
        .config
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run");
    let s = check(cfg, stem).map_err(|e| overrides.blame(e))?;
    let gpu = GpuTrainer::new(s.precision.unwrap_or(crate::backend::Precision::F32))
        .map_err(|e| Failure::BadInput(format!("backend: {e:#}")))?;
    let cpu = CpuTrainer::default();
    super::compare::announce(&a, &cpu.adapter(), &gpu.adapter());
    let mut tally = PathTally::new("rows_diverged_on_one_backend", a.quiet);
    for di in 0..s.data.len() {
        for &d in &s.dynamics {
            for (ei, &eta) in s.cfg.etas.iter().enumerate() {
                let mut j = job(&s, di, d, eta, ei);
                j.resample_labels = s.experiment == TrainExperiment::LeastSquaresRisk;
                let reps = if d.is_random() || j.resample_labels {
                    a.sample.min(s.cfg.paths)
                } else {
                    1
                };
                let label = format!("data set {di} {:<5} η = {eta:<8}", d.name());
                let run = json!({"dataset": di, "dynamics": d.name(), "eta": eta});
                let g = match collect(&gpu, &j, reps) {
                    Ok(g) => g,
                    Err(e) => {
                        // A job the adapter refuses (e.g. llvmpipe's loop limit) is
                        // reported, not compared.
                        tally.skipped(&label, run, &e);
                        continue;
                    }
                };
                let c = collect(&cpu, &j, reps)?;
                tally.compared(&label, run, reps, max_rel_deviation(&c, &g));
            }
        }
    }
    tally.conclude(
        gpu.adapter(),
        gpu.precision().name(),
        &a,
        "cpu and gpu paths disagree beyond --path-tol",
    )
}
