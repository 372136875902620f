//! The reference backend: paths on all cores (rayon over chunks of replicas), each
//! chunk in lane groups (`crate::lanes`: structure of arrays, compiled per SIMD level).
//! In f64 (the default) a group is `LANES` replicas carrying exactly the bits of the
//! scalar reference `path::simulate`; because sums are exact (`stats::exact_sum`), the
//! result is bit-identical for any chunk size, thread count and SIMD level. With
//! `"precision": "f32"` a group is 16 replicas in f32 (`Lanes32`): faster, not the
//! reference, and still the same for any chunk size, thread count and level.

use super::{shifts, Backend, Precision, Progress};
use crate::dynamics::path::{
    prepare, simulate_group, simulate_group_states, GroupWork, PathRecord, Prepared,
};
use crate::dynamics::RunSpec;
use crate::lanes::{Lanes, Lanes32, Num};
use crate::model::{AnyModel, Model};
use crate::rng::simd;
use crate::stats::{merge_each, Moments};
use crate::with_model;
use rayon::prelude::*;
use std::ops::Range;

/// Evaluates `$body` with `$m` the concrete model and `$t` the lane type of
/// `$precision` (`Lanes` for f64, `Lanes32` for f32).
macro_rules! with_lanes {
    ($precision:expr, $model:expr, $m:ident, $t:ident => $body:expr) => {
        match $precision {
            Precision::F64 => {
                type $t = Lanes;
                with_model!($model, $m => $body)
            }
            Precision::F32 => {
                type $t = Lanes32;
                with_model!($model, $m => $body)
            }
        }
    };
}

pub struct CpuBackend {
    /// Replicas per rayon task.
    pub chunk: u64,
    pub threads: usize,
    /// F64: the reference (`Lanes`); F32: the fast option (`Lanes32`).
    pub precision: Precision,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self {
            chunk: 4096,
            threads: rayon::current_num_threads(),
            precision: Precision::F64,
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

    pub fn with_precision(precision: Precision) -> Self {
        Self {
            precision,
            ..Default::default()
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn adapter(&self) -> String {
        let (what, width) = match self.precision {
            Precision::F64 => ("CPU reference, f64", Lanes::WIDTH),
            Precision::F32 => ("CPU, f32 (fast option, not the reference)", Lanes32::WIDTH),
        };
        format!(
            "{what}, {} threads, {width}-replica lanes ({})",
            self.threads,
            simd::level().name()
        )
    }
    fn precision(&self) -> Precision {
        self.precision
    }

    fn run(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
        progress: Progress,
    ) -> anyhow::Result<Vec<Moments>> {
        let shifts = shifts(model, spec);
        let (chunk, s) = (self.chunk, &shifts[..]);
        Ok(with_lanes!(self.precision, model, m, L => {
            run_model::<_, L>(m, spec, s, replicas, chunk, progress)
        }))
    }

    fn final_states(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
    ) -> anyhow::Result<Vec<f64>> {
        let chunk = self.chunk;
        Ok(with_lanes!(self.precision, model, m, L => {
            final_states::<_, L>(m, spec, replicas, chunk)
        }))
    }
}

/// The chunks' first replicas.
fn chunk_starts(replicas: &Range<u64>, chunk: u64) -> Vec<u64> {
    (replicas.start..replicas.end)
        .step_by(chunk as usize)
        .collect()
}

fn run_model<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    shifts: &[f64],
    replicas: Range<u64>,
    chunk: u64,
    progress: Progress,
) -> Vec<Moments> {
    let prep = prepare(m, spec);
    let n_stats = spec.n_stats() * spec.checkpoints.len();
    let work = spec.work_per_path();
    let level = simd::level();
    chunk_starts(&replicas, chunk)
        .par_iter()
        .map(|&s| {
            let e = (s + chunk).min(replicas.end);
            let mut acc = vec![Moments::default(); n_stats];
            let mut recs: Vec<PathRecord> = (0..T::WIDTH).map(|_| PathRecord::new(spec)).collect();
            let mut group_work = GroupWork::<T>::new();
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
                merge_each(&mut a, &b);
                a
            },
        )
}

crate::per_level! {
    /// `chunk_moments` compiled for `level` (capped by `simd::detected()`).
    #[allow(clippy::too_many_arguments)]
    pub fn chunk_moments_at<M: Model, T: Num>(
        m: &M,
        spec: &RunSpec,
        prep: &Prepared,
        shifts: &[f64],
        replicas: Range<u64>,
        recs: &mut [PathRecord],
        work: &mut GroupWork<T>,
        acc: &mut [Moments],
    ) => chunk_moments
}

/// Adds the paths of `replicas` to `acc` (statistic `c * n_stats + k` at index
/// `c * n_stats + k`), `T::WIDTH` replicas at a time; the last group may be partial.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn chunk_moments<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    shifts: &[f64],
    replicas: Range<u64>,
    recs: &mut [PathRecord],
    work: &mut GroupWork<T>,
    acc: &mut [Moments],
) {
    let n_obs = spec.n_stats();
    let mut r = replicas.start;
    while r < replicas.end {
        let n = T::WIDTH.min((replicas.end - r) as usize);
        simulate_group::<M, T>(m, spec, prep, r as u32, &mut recs[..n], work);
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

/// Final finest-level state of each replica (particles × d coordinates per replica,
/// in replica order), in lane groups.
fn final_states<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    replicas: Range<u64>,
    chunk: u64,
) -> Vec<f64> {
    let prep = prepare(m, spec);
    let level = simd::level();
    let parts: Vec<Vec<f64>> = chunk_starts(&replicas, chunk)
        .par_iter()
        .map(|&s| {
            let e = (s + chunk).min(replicas.end);
            let mut out = Vec::with_capacity((e - s) as usize * spec.particles() * m.dim());
            let mut group_work = GroupWork::<T>::new();
            chunk_states_at(level, m, spec, &prep, s..e, &mut group_work, &mut out);
            out
        })
        .collect();
    parts.concat()
}

crate::per_level! {
    /// `chunk_states` compiled for `level` (capped by `simd::detected()`).
    pub fn chunk_states_at<M: Model, T: Num>(
        m: &M,
        spec: &RunSpec,
        prep: &Prepared,
        replicas: Range<u64>,
        work: &mut GroupWork<T>,
        out: &mut Vec<f64>,
    ) => chunk_states
}

/// Appends the final states of `replicas` to `out`, `T::WIDTH` replicas at a time.
#[inline(always)]
fn chunk_states<M: Model, T: Num>(
    m: &M,
    spec: &RunSpec,
    prep: &Prepared,
    replicas: Range<u64>,
    work: &mut GroupWork<T>,
    out: &mut Vec<f64>,
) {
    let d = m.dim();
    let mut r = replicas.start;
    while r < replicas.end {
        let n = T::WIDTH.min((replicas.end - r) as usize);
        simulate_group_states::<M, T>(m, spec, prep, r as u32, n, work, |_, x| {
            for xp in x {
                out.extend_from_slice(&xp[..d]);
            }
        });
        r += n as u64;
    }
}
