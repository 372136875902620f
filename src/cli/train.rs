//! `smflow run` for the finite-data experiments (`least_squares_risk`,
//! `implicit_bias_sweep`, `gd_vs_gf`): build the trainer, run, write, summarise.

use super::outputs::write;
use super::replay::Replay;
use super::run::RunArgs;
use super::{progress_bar, Failure};
use crate::backend::rows::RowEngine;
use crate::backend::BackendChoice;
use crate::experiment::shard::ShardRows;
use crate::experiment::training::config::{check, parse};
use crate::experiment::training::execute;
use crate::train::cpu::CpuTrainer;
use crate::train::gpu::GpuTrainer;
use crate::train::Trainer;
use std::time::Instant;

/// The trainer a user asked for; `auto` takes a hardware GPU adapter if there is one
/// and says which, else the CPU (faster than a software rasteriser on these jobs,
/// benches/README.md, and without its loop-count limit). `precision` unset: the GPU
/// in f32, the CPU in f64 (the reference).
pub fn make_trainer(
    choice: BackendChoice,
    precision: Option<crate::backend::Precision>,
    quiet: bool,
) -> Result<Box<dyn Trainer>, Failure> {
    super::choose_backend(
        choice,
        quiet,
        || {
            let g = GpuTrainer::new(precision.unwrap_or(crate::backend::Precision::F32))?;
            let (a, soft) = (g.adapter(), g.is_software());
            Ok((Box::new(g) as Box<dyn Trainer>, a, soft))
        },
        || {
            let c = CpuTrainer::with_precision(precision.unwrap_or(crate::backend::Precision::F64));
            let a = c.adapter();
            (Box::new(c) as Box<dyn Trainer>, a)
        },
    )
}

pub fn run(a: RunArgs, value: serde_json::Value) -> Result<(), Failure> {
    let (setup, overrides) = super::run::check_whole(&a, value, parse, check)?;
    crate::experiment::budget::check_paths(
        setup.cfg.paths,
        crate::experiment::training::held_per_replica(&setup),
        "each replica's weights at every checkpoint",
    )
    .map_err(|e| overrides.blame(e))?;
    let shard = super::run::job_shard(&a)?;
    let dir = super::run::out_dir(&a, &setup.name, shard)?;
    let inner = make_trainer(a.backend, setup.precision, a.quiet)?;
    let mut id = crate::output::job_progress::Identity::new(
        &setup.echo,
        inner.name(),
        inner.adapter(),
        inner.precision(),
    );
    id.shard = shard.map(|s| s.label());
    // The number of trainer calls is the experiment's business: not checked up front.
    let (done, mut store) = super::run::job_store(&a, &dir, id, None)?;
    let replay = Replay::new(inner.as_ref(), done, &mut store);
    let total: f64 = estimated_work(&setup);
    let pb = progress_bar(total, a.quiet);
    let start = Instant::now();
    if let Some(sh) = shard {
        // The shard's slices are its jobs (progress/), kept for `merge`; its own
        // statistics (NaN for the other shards' replicas) are not written.
        let trainer = ShardRows {
            inner: &replay,
            shard: sh,
        };
        execute(&setup, &trainer, &|w| pb.inc(w as u64))?;
        pb.finish_and_clear();
        let wall = start.elapsed().as_secs_f64();
        drop(replay);
        let what = format!(
            "{} [{}] backend {} ({})",
            setup.name,
            setup.cfg.experiment,
            inner.name(),
            inner.adapter()
        );
        return super::run::finish_job_shard(&a, &mut store, sh, &what, &dir, wall);
    }
    let trainer = replay;
    let out = execute(&setup, &trainer, &|w| pb.inc(w as u64))?;
    pb.finish_and_clear();
    let wall = start.elapsed().as_secs_f64();
    write(&dir.path, &setup, &trainer, &out, wall)?;
    drop(trainer);
    store.finish();
    if !a.quiet {
        println!(
            "{} [{}] backend {} ({}), {:.1} s, {:.3e} path-steps/s",
            setup.name,
            setup.cfg.experiment,
            inner.name(),
            inner.adapter(),
            wall,
            out.path_steps / wall.max(1e-9)
        );
        for line in &out.summary {
            println!("{line}");
        }
        for w in &out.warnings {
            println!("warning: {w}");
        }
        println!("wrote {}", dir.path.display());
    }
    Ok(())
}

/// Path-steps the experiment will run (for the progress bar).
fn estimated_work(s: &crate::experiment::training::config::Setup) -> f64 {
    use crate::experiment::training::config::TrainExperiment::*;
    let sub = s.cfg.substeps as f64;
    let k = |eta: f64| s.cfg.horizon / eta;
    // Each run's coupled levels (substeps/c each; one step for discrete dynamics).
    let per = |d: &crate::train::Dynamics| -> f64 {
        if matches!(d.update(), crate::train::Update::Discrete { .. }) {
            1.0
        } else {
            let levels = crate::experiment::training::levels::levels(s, *d);
            levels.iter().map(|c| sub / *c as f64).sum()
        }
    };
    match s.experiment {
        WeakOrder | LeastSquaresRisk | ImplicitBiasSweep => s
            .dynamics
            .iter()
            .map(|d| {
                let reps = if d.is_random() || s.experiment == LeastSquaresRisk {
                    s.cfg.paths
                } else {
                    1
                } as f64;
                s.cfg
                    .etas
                    .iter()
                    .map(|e| k(*e) * per(d) * reps)
                    .sum::<f64>()
                    * s.data.len() as f64
            })
            .sum(),
        GdVsGf => s
            .cfg
            .etas
            .iter()
            .map(|e| {
                k(*e) * (1.0 + 2.0 * sub)
                    + s.cfg.ratios.iter().map(|r| k(*e) * *r as f64).sum::<f64>()
            })
            .sum(),
    }
}
