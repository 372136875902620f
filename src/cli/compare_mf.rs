//! `smflow compare` for `width_sweep`: every (dynamics, η, width) run of the config, and
//! each coupled coarse level, on a sample of replicas, on the CPU reference (f64) and the GPU backend; the per-replica
//! observables at every checkpoint compared value by value. Both follow the same
//! Philox draws, so differences are float rounding. Exits with 1 beyond the tolerance.

use super::compare::{level_note, CompareArgs, PathTally};
use super::Failure;
use crate::backend::rows::RowEngine;
use crate::backend::BackendChoice;
use crate::experiment::width_sweep::analysis::Runs;
use crate::experiment::width_sweep::config::check;
use crate::experiment::width_sweep::{collect, describe_job, job_list, level_job};
use crate::meanfield::cpu::CpuMeanField;

/// Largest |g − c| / (1 + |c|) over replicas finite on both backends, and the number of
/// (checkpoint, replica) pairs diverged on one backend only (as for the trainers).
pub fn max_rel_deviation(cpu: &Runs, gpu: &Runs) -> super::compare::Deviation {
    let rows = |r: &Runs| -> Vec<Vec<Vec<f64>>> {
        r.iter()
            .map(|c| c.iter().map(|o| o.to_vec()).collect())
            .collect()
    };
    super::compare_train::max_rel_deviation(&rows(cpu), &rows(gpu))
}

pub fn compare(a: CompareArgs, text: &str) -> Result<(), Failure> {
    let overrides = crate::config::parse::Overrides {
        paths: None,
        seed: a.seed,
    };
    let cfg = crate::experiment::width_sweep::config::parse(
        crate::config::parse::json(text)?,
        overrides,
    )?;
    let stem = a
        .config
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run");
    let s = check(cfg, stem).map_err(|e| overrides.blame(e))?;
    let gpu = super::width_sweep::make_mf_backend(BackendChoice::Gpu, s.precision, true)?;
    // The CPU side is the f64 reference whatever the config's precision.
    let cpu = CpuMeanField::default();
    super::compare::announce(&a, &cpu.adapter(), &gpu.adapter());
    let reps = a.sample.min(s.cfg.paths);
    let mut tally = PathTally::new("diverged_on_one_backend", a.quiet);
    for (di, ei, n, c) in job_list(&s) {
        let j = level_job(&s, s.dynamics[di], ei, n, c);
        let label = format!(
            "{:<5} η = {:<8} n = {n:<7}{}",
            j.dynamics.name(),
            j.eta,
            level_note(c, j.substeps())
        );
        let run = describe_job(&j);
        let g = match collect(gpu.as_ref(), &j, reps) {
            Ok(g) => g,
            Err(e) => {
                tally.skipped(&label, run, &e);
                continue;
            }
        };
        let c = collect(&cpu, &j, reps).map_err(Failure::Runtime)?;
        tally.compared(&label, run, reps, max_rel_deviation(&c, &g));
    }
    tally.conclude(
        gpu.adapter(),
        gpu.precision().name(),
        &a,
        "cpu and gpu observables disagree beyond --path-tol",
    )
}
