//! Runs `shaders/rng/rng_check.wgsl`: the simulators' own Philox, uniform and
//! Box–Muller code on given (counter, key) pairs, for the known-answer tests.

use super::compose::rng_check_source;
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
    let layout = pipeline.get_bind_group_layout(0);
    let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("rng check"),
        layout: &layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: input.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: bits.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: reals.as_entire_binding(),
            },
        ],
    });
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(n.div_ceil(64) as u32, 1, 1);
    }
    gpu.queue.submit([enc.finish()]);
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
