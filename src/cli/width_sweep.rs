//! `smflow run` for `width_sweep` (and `weak_order` on the two-layer model): build the
//! mean-field backend, run, write, summarise.

use super::outputs::{write_output, RunInfo};
use super::run::RunArgs;
use super::{progress_bar, Failure};
use crate::backend::rows::RowEngine;
use crate::backend::BackendChoice;
use crate::experiment::shard::ShardRows;
use crate::experiment::width_sweep::config::{check, parse};
use crate::experiment::width_sweep::{execute_from, from_bits, jobs, to_bits, total_work};
use crate::meanfield::cpu::CpuMeanField;
use crate::meanfield::gpu::GpuMeanField;
use crate::meanfield::MeanFieldBackend;
use crate::output::job_progress as resume;
use std::time::Instant;

/// The mean-field backend a user asked for; `auto` takes a hardware GPU adapter if
/// there is one, else the CPU (llvmpipe runs these kernels at about half the CPU
/// reference's speed, benches/README.md), and says which. `precision` is the config's
/// `"precision"`; unset, the GPU computes in f32 and the CPU in f64 (the reference).
pub fn make_mf_backend(
    choice: BackendChoice,
    precision: Option<crate::backend::Precision>,
    quiet: bool,
) -> Result<Box<dyn MeanFieldBackend>, Failure> {
    use crate::backend::Precision;
    super::choose_backend(
        choice,
        quiet,
        || {
            let g = GpuMeanField::new(precision.unwrap_or(Precision::F32))?;
            let (a, soft) = (g.adapter(), g.is_software());
            Ok((Box::new(g) as Box<dyn MeanFieldBackend>, a, soft))
        },
        || {
            let c = CpuMeanField::with_precision(precision.unwrap_or(Precision::F64));
            let a = c.adapter();
            (Box::new(c) as Box<dyn MeanFieldBackend>, a)
        },
    )
}

pub fn run(a: RunArgs, value: serde_json::Value) -> Result<(), Failure> {
    let (sweep, overrides) = super::run::check_whole(&a, value, parse, check)?;
    crate::experiment::budget::check_paths(
        sweep.cfg.paths,
        crate::experiment::width_sweep::held_per_replica(&sweep),
        "4 observables per run, checkpoint and replica",
    )
    .map_err(|e| overrides.blame(e))?;
    crate::experiment::width_sweep::check_batch_memory(&sweep)?;
    let shard = super::run::job_shard(&a)?;
    let dir = super::run::out_dir(&a, &sweep.name, shard)?;
    let whole = make_mf_backend(a.backend, sweep.precision, a.quiet)?;
    let mut id = resume::Identity::new(
        &sweep.echo,
        whole.name(),
        whole.adapter(),
        whole.precision(),
    );
    id.shard = shard.map(|s| s.label());
    // A shard runs its slice of every job's replicas (`experiment::shard::ShardRows`).
    let sharded = shard.map(|shard| ShardRows {
        inner: whole.as_ref(),
        shard,
    });
    let backend: &dyn MeanFieldBackend = match &sharded {
        Some(s) => s,
        None => whole.as_ref(),
    };
    let (loaded, mut store) =
        super::run::job_store::<Vec<Vec<[u64; 4]>>>(&a, &dir, id, Some(jobs(&sweep)))?;
    let mut done: Vec<_> = loaded
        .into_iter()
        .map(|j| j.map(|d| from_bits(&d.result)))
        .collect();
    done.resize(jobs(&sweep), None);
    let total = total_work(&sweep);
    let pb = progress_bar(total, a.quiet);
    let start = Instant::now();
    let out = execute_from(
        &sweep,
        backend,
        &|w| pb.inc(w as u64),
        &mut done,
        &mut |i, what, runs| store.save(i, &what, &to_bits(runs)),
    )
    .map_err(Failure::Runtime)?;
    pb.finish_and_clear();
    let wall = start.elapsed().as_secs_f64();
    if let Some(sh) = shard {
        let what = format!(
            "{} [{}] backend {} ({})",
            sweep.name,
            sweep.experiment,
            backend.name(),
            backend.adapter()
        );
        return super::run::finish_job_shard(&a, &mut store, sh, &what, &dir, wall);
    }
    let info = RunInfo {
        experiment: sweep.experiment.name(),
        name: &sweep.name,
        precision: backend.precision().name(),
        seed: sweep.cfg.seed,
        echo: &sweep.echo,
        backend: backend.name(),
        adapter: backend.adapter(),
    };
    write_output(&dir.path, &info, &out, wall).map_err(Failure::Runtime)?;
    store.finish();
    if !a.quiet {
        println!(
            "{} [{}] backend {} ({}), {:.1} s, {:.3e} neuron-steps/s",
            sweep.name,
            sweep.experiment,
            backend.name(),
            backend.adapter(),
            wall,
            out.path_steps / wall.max(1e-9)
        );
        for line in &out.summary {
            println!("{line}");
        }
        println!("wrote {}", dir.path.display());
    }
    Ok(())
}
