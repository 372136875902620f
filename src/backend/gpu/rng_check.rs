//! Runs `shaders/rng/rng_check.wgsl`: the simulators' own Philox, uniform and
//! Box–Muller code on given (counter, key) pairs, for the known-answer tests; and
//! `shaders/rng/rng_ceiling.wgsl`, the same code alone at full speed (`smflow bench`).

use super::compose::{rng_ceiling_source, rng_check_source};
use super::device::Gpu;
use crate::backend::Precision;
use anyhow::Result;

/// Per input: the Philox block, its four uniforms and normals 4·ctr[2] .. 4·ctr[2]+3 of
/// (replica ctr[0], step ctr[1], stream ctr[3]) — i.e. the block's four normals.
pub struct RngCheck {
    pub bits: Vec<[u32; 4]>,
    pub uniforms: Vec<[f64; 4]>,
    pub normals: Vec<[f64; 4]>,
}

pub fn rng_check(
    gpu: &Gpu,
    precision: Precision,
    int64: bool,
    inputs: &[([u32; 4], [u32; 2])],
) -> Result<RngCheck> {
    let n = inputs.len().max(1) as u64;
    let pipeline = gpu.pipeline(
        &rng_check_source(precision, int64 && gpu.int64),
        "rng_check",
    )?;
    let flat: Vec<u32> = inputs
        .iter()
        .flat_map(|(c, k)| [c[0], c[1], c[2], c[3], k[0], k[1], 0, 0])
        .collect();
    let input = gpu.storage_init(bytemuck::cast_slice(&flat), "rng input");
    let rsize: u64 = if precision == Precision::F64 { 8 } else { 4 };
    let bits = gpu.storage(n * 16, "rng bits")?;
    let reals = gpu.storage(n * 8 * rsize, "rng reals")?;
    let bind = gpu.bind_group(
        &pipeline.get_bind_group_layout(0),
        &[(0, &input), (1, &bits), (2, &reals)],
    );
    gpu.dispatch(&pipeline, &bind, n.div_ceil(64) as u32);
    gpu.wait()?;
    let staging = gpu.readback_buffer(n * 8 * rsize);
    let b: Vec<u32> = bytemuck::pod_collect_to_vec(&gpu.read(&bits, &staging, n * 16)?);
    let rb = gpu.read(&reals, &staging, n * 8 * rsize)?;
    let r: Vec<f64> = match precision {
        Precision::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(&rb)
            .into_iter()
            .map(f64::from)
            .collect(),
        Precision::F64 => bytemuck::pod_collect_to_vec::<u8, f64>(&rb),
    };
    let m = inputs.len();
    Ok(RngCheck {
        bits: (0..m)
            .map(|i| [b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
            .collect(),
        uniforms: (0..m)
            .map(|i| std::array::from_fn(|l| r[8 * i + l]))
            .collect(),
        normals: (0..m)
            .map(|i| std::array::from_fn(|l| r[8 * i + 4 + l]))
            .collect(),
    })
}

/// (path-steps, seconds) of the bare-RNG kernel over `paths` paths of `steps` steps,
/// each step one Box–Muller pair (the RNG work of the bench's `sgd` job, f32), after a
/// warm-up dispatch. Paths run in dispatches of at most 2^22, each within the
/// adapter's loop limit (so a path may run a few steps more than `steps`; they count).
pub fn rng_ceiling(gpu: &Gpu, paths: u64, steps: u32) -> Result<(f64, f64)> {
    // Loop iterations per step: 10 Philox rounds, Box–Muller's, the step loop's own.
    let cap = gpu.steps_per_dispatch(16, 4, "the bare-RNG bench kernel")?;
    let per_dispatch = steps.min(cap).max(1);
    let dispatches = steps.div_ceil(per_dispatch);
    let pipeline = gpu.pipeline(&rng_ceiling_source(per_dispatch, gpu.int64), "rng_ceiling")?;
    let chunk = paths.clamp(64, 1 << 22).div_ceil(64) * 64;
    let out = gpu.storage(chunk * 4, "rng ceiling")?;
    let bind = gpu.bind_group(&pipeline.get_bind_group_layout(0), &[(0, &out)]);
    let run = |lanes: u64| -> Result<()> {
        gpu.dispatch(&pipeline, &bind, lanes.div_ceil(64) as u32);
        gpu.wait()
    };
    run(64)?;
    let t0 = std::time::Instant::now();
    let mut done = 0;
    while done < paths {
        let lanes = (paths - done).min(chunk);
        for _ in 0..dispatches {
            run(lanes)?;
        }
        done += lanes;
    }
    let path_steps = paths as f64 * (dispatches * per_dispatch) as f64;
    Ok((path_steps, t0.elapsed().as_secs_f64()))
}
