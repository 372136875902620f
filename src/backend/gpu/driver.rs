//! The small-d driver: replicas in chunks (a multiple of the workgroup size, bounded by
//! the adapter's binding limits and a memory budget), run by the shared loop
//! (`segments::drive`: dispatch segments that end at checkpoints, paced and within the
//! loop budget). A segment ending at a checkpoint is followed, in the same pass, by the
//! `reduce` kernel, which leaves one partial per workgroup of 64 replicas; the host
//! folds them into `Moments` in f64. Philox is fed the global replica index, so results
//! do not depend on the chunk size.

use super::chunks::{chunk_replicas, ReplicaNeeds};
use super::compose::{compose_for, loop_iterations, reduce_loop_iterations, ENTRY, REDUCE_ENTRY};
use super::device::Gpu;
use super::segments::{drive, Event, Plan, StepLoop};
use crate::backend::{Precision, Progress};
use crate::dynamics::RunSpec;
use crate::model::AnyModel;
use crate::stats::{merge_each, Moments};
use anyhow::{bail, Result};
use rayon::prelude::*;
use std::ops::Range;

pub const WORKGROUP: u64 = 64;
/// Largest default chunk.
pub const MAX_CHUNK: u64 = 1 << 22;

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Stats,
    States,
}

pub enum Output {
    Stats(Vec<Moments>),
    States(Vec<f64>),
}

pub fn real_size(p: Precision) -> u64 {
    match p {
        Precision::F32 => 4,
        Precision::F64 => 8,
    }
}

/// Host values as device reals (f32: rounded once), the inverse of `to_f64`.
pub fn from_f64(v: &[f64], p: Precision) -> Vec<u8> {
    match p {
        Precision::F32 => {
            let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            bytemuck::cast_slice(&f).to_vec()
        }
        Precision::F64 => bytemuck::cast_slice(v).to_vec(),
    }
}

pub fn to_f64(bytes: &[u8], p: Precision) -> Vec<f64> {
    match p {
        Precision::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(bytes)
            .into_iter()
            .map(f64::from)
            .collect(),
        Precision::F64 => bytemuck::pod_collect_to_vec::<u8, f64>(bytes),
    }
}

/// Replicas whose rows one task of `rows_of_columns` fills: their rows stay in cache
/// while each column is read in one run.
const TRANSPOSE_BLOCK: usize = 256;

/// Rows of the replicas `replicas` from a chunk's state read back column by column
/// (value q of replica r at `q · cap + r`, the layout every state-in-registers kernel
/// writes for coalesced access): `len` values per replica, replica by replica. The host
/// does this at every checkpoint of the trainer while the device waits, so it goes in
/// blocks of replicas (contiguous reads) on all cores; the values are only moved.
pub fn rows_of_columns(
    vals: &[f64],
    cap: usize,
    replicas: std::ops::Range<usize>,
    len: usize,
) -> Vec<f64> {
    let mut rows = vec![0.0; replicas.len() * len];
    if len == 0 {
        return rows;
    }
    rows.par_chunks_mut(TRANSPOSE_BLOCK * len)
        .enumerate()
        .for_each(|(b, block)| {
            let r0 = replicas.start + b * TRANSPOSE_BLOCK;
            let n = block.len() / len;
            for q in 0..len {
                let column = &vals[q * cap + r0..][..n];
                for (i, &v) in column.iter().enumerate() {
                    block[i * len + q] = v;
                }
            }
        });
    rows
}

/// Replicas per chunk (`chunks::chunk_replicas`): the forced size or the largest that
/// fits, at most MAX_CHUNK by default; never more than needed. A replica holds
/// `floats_per_replica` reals of state, an `alive` flag, and 1/64 of its workgroup's
/// `red_w` partial sums.
pub fn chunk_capacity(
    gpu: &Gpu,
    forced: Option<u64>,
    floats_per_replica: u64,
    red_w: u64,
    rsize: u64,
    n: u64,
) -> Result<u64> {
    let needs = ReplicaNeeds {
        bytes: &[
            (floats_per_replica * rsize) as f64,
            4.0,
            (red_w * rsize) as f64 / WORKGROUP as f64,
        ],
        max: gpu.limits.max_compute_workgroups_per_dimension as u64 * WORKGROUP,
        align: WORKGROUP,
        what: &format!("{floats_per_replica} state values, {red_w} partial sums"),
    };
    chunk_replicas(&gpu.limits, &needs, Some(forced.unwrap_or(MAX_CHUNK)), n)
}

/// Steps one dispatch of (model, spec) may take on this device: a software adapter cuts
/// long loops off silently. Fails when one step does not fit.
pub fn steps_per_dispatch(
    gpu: &Gpu,
    precision: Precision,
    model: &AnyModel,
    spec: &RunSpec,
) -> Result<u32> {
    let what = step_description(model, spec);
    step_loop(precision, model, spec, &what).max_steps(gpu)
}

/// How the kernels of (model, spec) loop: `main` over the segment's steps, `reduce` once.
fn step_loop<'a>(p: Precision, model: &AnyModel, spec: &RunSpec, what: &'a str) -> StepLoop<'a> {
    let (per_step, fixed) = loop_iterations(model, spec);
    StepLoop::InKernel {
        per_step,
        fixed,
        others: (
            reduce_loop_iterations(model, spec, p),
            "the checkpoint reduction",
        ),
        what,
    }
}

pub fn simulate(
    gpu: &Gpu,
    precision: Precision,
    forced_chunk: Option<u64>,
    model: &AnyModel,
    spec: &RunSpec,
    replicas: Range<u64>,
    progress: Progress,
    mode: Mode,
) -> Result<Output> {
    if spec.checkpoints.is_empty() {
        bail!("run has no checkpoints");
    }
    let what = step_description(model, spec);
    let steps = step_loop(precision, model, spec, &what);
    steps.max_steps(gpu)?; // refuse before compiling
    let src = compose_for(model, spec, precision, gpu.int64);
    let pipeline = gpu.pipeline(&src, ENTRY)?;
    let reducer = gpu.pipeline(&src, REDUCE_ENTRY)?;
    let d = model.as_dyn().dim() as u64;
    let np = spec.particles() as u64;
    let n_obs = spec.n_stats(); // statistics per checkpoint (observables × channels)
    let red_w = (n_obs * 5) as u64;
    let rsize = real_size(precision);
    let floats = spec.state_vectors() as u64 * d;
    // Chunks start on multiples of the workgroup size in the *global* replica index, so
    // every workgroup — and so every f32 partial sum — holds the same replicas however
    // the range is cut into calls (shards, batches, resume units): lanes before
    // `replicas.start` in the first chunk are skipped.
    let aligned = replicas.start / WORKGROUP * WORKGROUP;
    let n_total = replicas.end.saturating_sub(aligned);
    let cap = chunk_capacity(gpu, forced_chunk, floats, red_w, rsize, n_total)?;
    let groups_cap = cap / WORKGROUP;

    let state = gpu.storage(cap * floats * rsize, "state")?;
    let alive = gpu.storage(cap * 4, "alive")?;
    let partials = gpu.storage(groups_cap * red_w * rsize, "partials")?;
    let params = gpu.uniform(32);
    let staging = gpu.readback_buffer((groups_cap * red_w * rsize).max(cap * np * d * rsize));
    // One bind group per entry point, from its own layout (`main` has no partials).
    let layout = |p: &wgpu::ComputePipeline| p.get_bind_group_layout(0);
    let bind = gpu.bind_group(
        &layout(&pipeline),
        &[(0, &params), (1, &state), (2, &alive)],
    );
    let bind_reduce = gpu.bind_group(
        &layout(&reducer),
        &[(0, &params), (1, &state), (2, &alive), (3, &partials)],
    );
    gpu.check()?;

    let n_cp = spec.checkpoints.len();
    let mut moments = vec![Moments::default(); n_cp * n_obs];
    let mut states = Vec::new();
    let plan = Plan {
        replicas: aligned..replicas.end,
        cap,
        checkpoints: &spec.checkpoints,
        work_per_step: spec.substeps() as f64 * np as f64,
        // Each dispatch has a cost per replica (state load/store, workgroup start), so
        // start with a sizeable segment.
        first_budget: (1u64 << 24) as f64,
        steps,
        kernel: &pipeline,
    };
    // The chunk begun last: first replica, count, lanes skipped, whether `main` must
    // initialise the state (its first segment).
    let (mut start, mut n, mut skip, mut init) = (0u64, 0u64, 0u64, true);
    drive(gpu, &plan, |event| {
        let groups = n.div_ceil(WORKGROUP);
        match event {
            Event::Begin { start: s, m } => {
                (start, n, init) = (s, m, true);
                skip = replicas.start.saturating_sub(s);
            }
            Event::Record(enc, seg) => {
                let p: [u32; 8] = [
                    start as u32,
                    n as u32,
                    seg.k,
                    seg.end,
                    seg.checkpoint as u32,
                    cap as u32,
                    init as u32,
                    skip as u32,
                ];
                gpu.queue.write_buffer(&params, 0, bytemuck::cast_slice(&p));
                init = false;
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups(groups as u32, 1, 1);
                if mode == Mode::Stats && seg.reaches {
                    pass.set_pipeline(&reducer);
                    pass.set_bind_group(0, &bind_reduce, &[]);
                    pass.dispatch_workgroups(groups as u32, 1, 1);
                }
            }
            Event::Finished(seg) => progress(
                (seg.end - seg.k) as f64 * (n - skip) as f64 * spec.work_per_path()
                    / spec.steps().max(1) as f64,
            ),
            Event::Checkpoint(c) if mode == Mode::Stats => {
                let bytes = gpu.read(&partials, &staging, groups * red_w * rsize)?;
                let vals = to_f64(&bytes, precision);
                let folded = fold_partials(&vals, red_w as usize, n_obs, skip..n);
                merge_each(&mut moments[c * n_obs..(c + 1) * n_obs], &folded);
            }
            // The finest level's particles at the horizon.
            Event::Checkpoint(c) if c + 1 == n_cp => {
                let bytes = gpu.read(&state, &staging, cap * np * d * rsize)?;
                let vals = to_f64(&bytes, precision);
                let len = (np * d) as usize;
                states.extend(rows_of_columns(
                    &vals,
                    cap as usize,
                    skip as usize..n as usize,
                    len,
                ));
            }
            Event::Checkpoint(_) => {}
        }
        Ok(())
    })?;
    Ok(match mode {
        Mode::Stats => Output::Stats(moments),
        Mode::States => Output::States(states),
    })
}

/// Workgroups whose partials one task folds (`fold_partials`).
const FOLD_GROUPS: usize = 2048;

/// The `Moments` of each of `n_obs` statistics from a chunk's per-workgroup partials
/// `vals` (workgroup g's statistic o at `g · red_w + 5·o`: count, Σy, Σy², Σe, Σe²) for
/// the chunk's lanes `lanes` (lanes before `lanes.start` are outside the run). Folded in
/// parallel: the sums are exact (`ExactSum`), so the result is the same bits in any
/// order. One thread took 16.6 ns a workgroup per statistic (benches/README.md), while
/// a GPU at 1e11 path-steps/s runs the workgroup's 64 paths through 40 sgd steps in
/// 25.6 ns, and the device waits for the fold at every checkpoint.
pub fn fold_partials(vals: &[f64], red_w: usize, n_obs: usize, lanes: Range<u64>) -> Vec<Moments> {
    let groups = lanes.end.div_ceil(WORKGROUP) as usize;
    let fold = |gs: Range<usize>| {
        let mut out = vec![Moments::default(); n_obs];
        for g in gs {
            let first = g as u64 * WORKGROUP;
            let last = (first + WORKGROUP).min(lanes.end);
            let valid = last - first.max(lanes.start).min(last);
            for (o, m) in out.iter_mut().enumerate() {
                let q = &vals[g * red_w + o * 5..][..5];
                let count = q[0].round() as u64;
                m.add_partial(count, q[1], q[2], q[3], q[4]);
                m.diverged += valid - count;
            }
        }
        out
    };
    let blocks: Vec<Range<usize>> = (0..groups)
        .step_by(FOLD_GROUPS)
        .map(|g| g..(g + FOLD_GROUPS).min(groups))
        .collect();
    blocks.into_par_iter().map(fold).reduce(
        || vec![Moments::default(); n_obs],
        |mut a, b| {
            merge_each(&mut a, &b);
            a
        },
    )
}

/// One step of (model, spec), for the loop-limit refusal.
fn step_description(model: &AnyModel, spec: &RunSpec) -> String {
    format!(
        "one step of {} (d = {}, {} particles, {} substeps, {} levels)",
        spec.dynamics.name(),
        model.as_dyn().dim(),
        spec.particles(),
        spec.substeps(),
        spec.levels()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The blocked transposition gives every replica's row, value for value, for ranges
    /// that start and end inside blocks, span several, or are empty.
    #[test]
    fn rows_of_columns_are_each_replicas_values() {
        let cap = 3 * TRANSPOSE_BLOCK + 40;
        for (replicas, len) in [(0..cap, 7), (3..cap - 5, 1), (5..5, 3), (0..cap, 0)] {
            let vals: Vec<f64> = (0..cap * len).map(|i| i as f64).collect();
            let rows = rows_of_columns(&vals, cap, replicas.clone(), len);
            assert_eq!(rows.len(), replicas.len() * len);
            for (i, r) in replicas.enumerate() {
                for q in 0..len {
                    assert_eq!(
                        rows[i * len + q],
                        (q * cap + r) as f64,
                        "replica {r}, value {q}"
                    );
                }
            }
        }
    }

    /// The parallel fold gives the one-thread fold's exact sums and counts, for chunks
    /// that skip lanes, end mid-workgroup, fill whole fold blocks or span several, and
    /// with a non-finite partial (a poisoned sum stays poisoned).
    #[test]
    fn fold_partials_equals_the_sequential_fold() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (n_obs, red_w) = (3, 3 * 5 + 2); // red_w may exceed n_obs·5
        let whole = FOLD_GROUPS as u64 * 64;
        for lanes in [
            0..64,
            5..64,
            70..(5 * whole + 17),
            0..1,
            0..whole,
            3..2 * whole,
        ] {
            let groups = lanes.end.div_ceil(WORKGROUP) as usize;
            let mut vals = vec![0.0; groups * red_w];
            // Lanes of workgroup g inside the range, counted one by one.
            let valid = |g: usize| {
                let first = g as u64 * WORKGROUP;
                (first..first + WORKGROUP)
                    .filter(|l| lanes.contains(l))
                    .count() as u64
            };
            for g in 0..groups {
                for o in 0..n_obs {
                    let q = &mut vals[g * red_w + o * 5..][..5];
                    q[0] = rng.random_range(0..=valid(g)) as f64;
                    for v in &mut q[1..] {
                        *v = rng.random_range(-1e3..1e3) * 10f64.powi(rng.random_range(-8..8));
                    }
                }
            }
            if lanes.start == 3 {
                vals[(groups / 2) * red_w + 5 + 1] = f64::NAN;
            }
            let mut want = vec![Moments::default(); n_obs];
            for g in 0..groups {
                for (o, m) in want.iter_mut().enumerate() {
                    let q = &vals[g * red_w + o * 5..][..5];
                    m.add_partial(q[0] as u64, q[1], q[2], q[3], q[4]);
                    m.diverged += valid(g) - q[0] as u64;
                }
            }
            let got = fold_partials(&vals, red_w, n_obs, lanes.clone());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.to_parts(), w.to_parts(), "lanes {lanes:?}");
            }
            assert_eq!(got[1].s1.poisoned, lanes.start == 3);
        }
    }
}
