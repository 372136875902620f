//! The reference backend: f64 paths on all cores (rayon over chunks of replicas), each
//! chunk in lane groups of `LANES` replicas (`crate::lanes`: structure of arrays,
//! compiled per SIMD level) that carry exactly the bits of the scalar reference
//! `path::simulate`. Because sums are exact (`stats::exact_sum`), the result is
//! bit-identical for any chunk size, thread count and SIMD level.

use super::{shifts, Backend, Precision, Progress};
use crate::dynamics::path::{prepare, simulate_group, GroupWork, PathRecord, Prepared};
use crate::dynamics::RunSpec;
use crate::lanes::{Lanes, LANES};
use crate::model::{AnyModel, Model};
use crate::rng::simd;
use crate::stats::Moments;
use crate::with_model;
use rayon::prelude::*;
use std::ops::Range;

pub struct CpuBackend {
    /// Replicas per rayon task.
    pub chunk: u64,
    pub threads: usize,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self {
            chunk: 4096,
            threads: rayon::current_num_threads(),
        }
    }
}

impl CpuBackend {
    pub fn with_chunk(chunk: u64) -> Self {
        Self {
            chunk: chunk.max(1),
            ..Default::default()
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn adapter(&self) -> String {
        format!(
            "CPU reference, f64, {} threads, {}-replica lanes ({})",
            self.threads,
            LANES,
            simd::level().name()
        )
    }
    fn precision(&self) -> Precision {
        Precision::F64
    }

    fn run(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
        progress: Progress,
    ) -> anyhow::Result<Vec<Moments>> {
        with_model!(model, m => Ok(run_model(m, spec, &shifts(model, spec), replicas, self.chunk, progress)))
    }

    fn final_states(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
    ) -> anyhow::Result<Vec<f64>> {
        with_model!(model, m => Ok(final_states(m, spec, replicas)))
    }
}

fn run_model<M: Model>(
    m: &M,
    spec: &RunSpec,
    shifts: &[f64],
    replicas: Range<u64>,
    chunk: u64,
    progress: Progress,
) -> Vec<Moments> {
    let prep = prepare(m, spec);
    let n_stats = spec.n_stats() * spec.checkpoints.len();
    let starts: Vec<u64> = (replicas.start..replicas.end)
        .step_by(chunk as usize)
        .collect();
    let work = spec.work_per_path();
    let level = simd::level();
    starts
        .par_iter()
        .map(|&s| {
            let e = (s + chunk).min(replicas.end);
            let mut acc = vec![Moments::default(); n_stats];
            let mut recs: Vec<PathRecord> = (0..LANES).map(|_| PathRecord::new(spec)).collect();
            let mut group_work = GroupWork::<Lanes>::new();
            chunk_moments_at(
                level,
                m,
                spec,
                &prep,
                shifts,
                s..e,
                &mut recs,
                &mut group_work,
                &mut acc,
            );
            progress(work * (e - s) as f64);
            acc
        })
        .reduce(
            || vec![Moments::default(); n_stats],
            |mut a, b| {
                a.iter_mut().zip(b.iter()).for_each(|(x, y)| x.merge(y));
                a
            },
        )
}

crate::per_level! {
    /// `chunk_moments` compiled for `level` (capped by `simd::detected()`).
    #[allow(clippy::too_many_arguments)]
    pub fn chunk_moments_at<M: Model>(
        m: &M,
        spec: &RunSpec,
        prep: &Prepared,
        shifts: &[f64],
        replicas: Range<u64>,
        recs: &mut [PathRecord],
        work: &mut GroupWork<Lanes>,
        acc: &mut [Moments],
    ) => chunk_moments
}

/// Adds the paths of `replicas` to `acc` (statistic `c * n_stats + k` at index
/// `c * n_stats + k`), `LANES` replicas at a time; the last group may be partial.
#[inline(always)]
fn chunk_moments<M: Model>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    shifts: &[f64],
    replicas: Range<u64>,
    recs: &mut [PathRecord],
    work: &mut GroupWork<Lanes>,
    acc: &mut [Moments],
) {
    let n_obs = spec.n_stats();
    let mut r = replicas.start;
    while r < replicas.end {
        let n = LANES.min((replicas.end - r) as usize);
        simulate_group::<M, Lanes>(m, spec, prep, r as u32, &mut recs[..n], work);
        for rec in &recs[..n] {
            for (c, &alive) in rec.alive.iter().enumerate() {
                for o in 0..n_obs {
                    let a = &mut acc[c * n_obs + o];
                    if alive {
                        let i = (c * n_obs + o) * 2;
                        a.add_path(rec.values[i] - shifts[c * n_obs + o], rec.values[i + 1]);
                    } else {
                        a.diverged += 1;
                    }
                }
            }
        }
        r += n as u64;
    }
}

/// Final finest-level state of each replica, via a one-checkpoint copy of the spec
/// whose observables read each coordinate.
fn final_states<M: Model>(m: &M, spec: &RunSpec, replicas: Range<u64>) -> Vec<f64> {
    let prep = prepare(m, spec);
    let d = m.dim();
    replicas
        .into_par_iter()
        .flat_map_iter(|r| {
            let mut out = Vec::with_capacity(spec.particles() * d);
            crate::dynamics::path::simulate_states(m, spec, &prep, r as u32, |x| {
                for xp in x {
                    out.extend_from_slice(&xp[..d]);
                }
            });
            out
        })
        .collect()
}
