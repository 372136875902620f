//! The mean-field dynamics on the GPU (wgpu + WGSL, `shaders/meanfield/`): the same
//! paths as `cpu::Net` (same Philox counters for the initial neurons, the streamed
//! samples, the minibatch indices and the smf1/smf2 weights; same formulas through
//! `two_layer.wgsl`, the twin of `model.rs`), in f32 or, where the adapter has
//! SHADER_F64, f64 — equal to the CPU's f64 paths up to floating-point rounding.
//!
//! Kernel design (details in `kernels.wgsl`). Neurons live as [replica][coordinate]
//! [neuron], neuron fastest. One drift evaluation is a few dispatches over a grid of
//! (neuron tile, replica, sample slice) workgroups: `prep` draws this evaluation's
//! samples or weights, `forward` sums a_k σ(w_k·θ_j) over a tile into per-tile
//! partials (a workgroup reduction, G samples per round), `resid` folds the tiles into
//! c_j r_j, `update` forms each neuron's drift and applies it (Euler, or the RK4 stage
//! logic of `Net::step`), or, with several sample slices, stores it for `apply_parts`;
//! `tick` advances the device-side step counter. msgd and msme1 run the same passes with
//! force weights, and `update` moves each neuron's momentum (kept in the RK4
//! accumulator's buffer, which they do not use) and then the neuron. The order-2 drift of mgf and smf2
//! (`drift::add_correction`) adds three passes after `resid`, composed from the same
//! kernels: `grad` (an `update` that stores g_k = ∇_{z_k}F instead of applying it),
//! `rho_forward` → `rho_fold` (a `forward`/`resid` pair reducing ∇Φ_j(z_l)·g_l into
//! ρ_j), and `update` then adds `−(η/2)(H_F g)_k` (× dt for smf2's EM step; inside each
//! RK4 stage's slope for mgf). Whole segments of steps are recorded
//! into one command buffer (~0.15 s each). At a checkpoint the test set runs through
//! `forward`/`resid` (a second composition of the same kernels), `observe` folds the
//! risk and the per-tile sums of a², |w|², φ and out-of-bound coordinates; only those
//! (and the neurons, when the job keeps states) are read back. The divergence rule is
//! applied on the host, exactly as `Net::observe`.
//!
//! llvmpipe stops an invocation after 65 535 loop iterations in all and silently goes
//! on with wrong numbers; no kernel loops over steps, and on a software adapter the
//! samples of an evaluation are cut into slices (workgroup_id.z) small enough that every
//! kernel stays within the device's loop budget (`Gpu::loop_budget`, measured when the
//! device is opened); jobs that cannot are refused.
//!
//! Results do not depend on the chunk (Philox gets the global replica index), the tile
//! or the sample slices beyond float rounding.

use super::model::TAG_INIT;
use super::{Block, MfJob, MfSink, OBSERVABLES};
use crate::backend::gpu::compose::{
    lit, mulhilo, real_header, HEAVY_BALL, MATH, PHILOX, RK4, SAMPLING,
};
use crate::backend::gpu::device::Gpu;
use crate::backend::gpu::driver::{real_size, rows_of_columns, to_f64};
use crate::backend::gpu::segments::{drive, Event, Plan as Run, StepLoop};
use crate::backend::rows::RowEngine;
use crate::backend::Precision;
use anyhow::{bail, Result};
use std::fmt::Write;
use std::ops::Range;
use std::sync::Arc;

mod plan;
mod source;
use plan::{check_job, Plan};
use source::{aux_len, compose};

pub const TWO_LAYER: &str = include_str!("../../../shaders/meanfield/two_layer.wgsl");
pub const KERNELS: &str = include_str!("../../../shaders/meanfield/kernels.wgsl");

/// Most steps one recorded segment holds (each step records its dispatches).
const MAX_RECORDED_STEPS: u32 = 4096;
/// Neurons per workgroup tile by default.
pub const DEFAULT_TILE: u32 = 64;
/// Workgroup size of the per-sample kernels (resid, rho_fold, smf prep, observe).
const RWG: u32 = 256;
/// Most samples reduced per round in `forward`.
const MAX_GROUP: u32 = 32;
/// Storage bindings of the kernels' one bind group.
const BINDINGS: u32 = 15;
/// Replicas per chunk at most (workgroup_id.y).
const MAX_DIM: u64 = 65_535;

pub struct GpuMeanField {
    gpu: Gpu,
    precision: Precision,
    tile: u32,
    chunk: Option<u64>,
    slice: Option<u32>,
    bgl: wgpu::BindGroupLayout,
    layout: wgpu::PipelineLayout,
}

impl GpuMeanField {
    /// Picks an adapter as `GpuBackend::new` does and opens a device (with SHADER_F64
    /// for `Precision::F64`, failing clearly where the adapter has none).
    pub fn new(precision: Precision) -> Result<Self> {
        let gpu = Gpu::new(precision == Precision::F64)?;
        if gpu.limits.max_storage_buffers_per_shader_stage < BINDINGS {
            bail!(
                "the mean-field kernels bind {BINDINGS} storage buffers; {} allows {} (use --backend cpu)",
                gpu.info.name,
                gpu.limits.max_storage_buffers_per_shader_stage
            );
        }
        let entries: Vec<_> = (0..BINDINGS)
            .map(|i| wgpu::BindGroupLayoutEntry {
                binding: i,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: false },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let bgl = gpu
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("meanfield"),
                entries: &entries,
            });
        let layout = gpu
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("meanfield"),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
        gpu.check()?;
        Ok(Self {
            gpu,
            precision,
            tile: DEFAULT_TILE,
            chunk: None,
            slice: None,
            bgl,
            layout,
        })
    }

    /// As `new`, with `tile` neurons per workgroup (a power of two, 8 ..= 256).
    pub fn with_tile(precision: Precision, tile: u32) -> Result<Self> {
        if !tile.is_power_of_two() || !(8..=256).contains(&tile) {
            bail!("tile must be a power of two in 8 ..= 256, got {tile}");
        }
        let mut b = Self::new(precision)?;
        b.tile = tile;
        Ok(b)
    }

    /// As `new`, with at most `replicas` replicas per chunk.
    pub fn with_chunk(precision: Precision, replicas: u64) -> Result<Self> {
        let mut b = Self::new(precision)?;
        b.chunk = Some(replicas.max(1));
        Ok(b)
    }

    /// Sets the tile (see `with_tile`), the replicas per chunk and the samples per
    /// slice (at most; by default all samples of an evaluation in one slice on hardware,
    /// as many as the loop budget allows on a software adapter). Results do not depend
    /// on them beyond rounding.
    pub fn configure(&mut self, tile: u32, chunk: Option<u64>, slice: Option<u32>) -> Result<()> {
        if !tile.is_power_of_two() || !(8..=256).contains(&tile) {
            bail!("tile must be a power of two in 8 ..= 256, got {tile}");
        }
        self.tile = tile;
        self.chunk = chunk.map(|c| c.max(1));
        self.slice = slice.map(|s| s.max(1));
        Ok(())
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether the adapter is a software rasteriser (e.g. llvmpipe).
    pub fn is_software(&self) -> bool {
        self.gpu.is_software()
    }

    fn to_bytes(&self, v: &[f64]) -> Vec<u8> {
        crate::backend::gpu::driver::from_f64(v, self.precision)
    }

    /// Bytes per replica of: z, stg, acc, part, gres, xs (streamed), ys, idx, cw, dpart,
    /// tstat, obs, aux.
    fn replica_buffers(&self, job: &MfJob, plan: &Plan, rk4: bool, big: u64, rs: u64) -> [u64; 13] {
        let (per, n, ns, d) = (
            job.per() as u64,
            job.width as u64,
            plan.ns as u64,
            job.d as u64,
        );
        let stream = job.minibatch() && job.streaming.is_some();
        let gather = job.minibatch() && job.streaming.is_none();
        let state = per * n * rs;
        // acc: RK4's slope sums, or the heavy ball's momenta.
        let acc = rk4 || job.dynamics.has_momentum();
        [
            state,
            if rk4 { state } else { 0 },
            if acc { state } else { 0 },
            plan.tiles as u64 * big * rs,
            big * rs,
            if stream { ns * d * rs } else { 0 },
            if stream { ns * rs } else { 0 },
            if gather { ns * 4 } else { 0 },
            if job.set_noise() { ns * rs } else { 0 },
            if plan.sch > 1 {
                plan.sch as u64 * state
            } else {
                0
            },
            plan.tiles as u64 * 4 * rs,
            8 * rs,
            if job.dynamics.modified() {
                aux_len(job, plan) * rs
            } else {
                0
            },
        ]
    }

    fn bind(&self, bufs: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let pairs: Vec<_> = (0u32..).zip(bufs.iter().copied()).collect();
        self.gpu.bind_group(&self.bgl, &pairs)
    }
}

/// The compiled entry points of one job.
struct Kernels {
    init: Arc<wgpu::ComputePipeline>,
    prep: Option<Arc<wgpu::ComputePipeline>>,
    /// smf's prep is one workgroup per replica (ξ̄ is a reduction over all N).
    prep_per_replica: bool,
    forward: Arc<wgpu::ComputePipeline>,
    resid: Arc<wgpu::ComputePipeline>,
    update: Arc<wgpu::ComputePipeline>,
    apply: Option<Arc<wgpu::ComputePipeline>>,
    tick: Arc<wgpu::ComputePipeline>,
    t_forward: Arc<wgpu::ComputePipeline>,
    t_resid: Arc<wgpu::ComputePipeline>,
    observe: Arc<wgpu::ComputePipeline>,
    /// Order-2 drift: grad, grad_parts (several slices), rho_forward, rho_fold.
    order2: Option<Order2>,
}

struct Order2 {
    grad: Arc<wgpu::ComputePipeline>,
    grad_parts: Option<Arc<wgpu::ComputePipeline>>,
    rho_forward: Arc<wgpu::ComputePipeline>,
    rho_fold: Arc<wgpu::ComputePipeline>,
}

impl RowEngine<MfJob> for GpuMeanField {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn adapter(&self) -> String {
        self.gpu.label(self.precision)
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn run(&self, job: &MfJob, replicas: Range<u64>, sink: MfSink) -> Result<()> {
        check_job(job)?;
        let total = replicas.end.saturating_sub(replicas.start);
        if total == 0 || job.checkpoints.is_empty() {
            return Ok(());
        }
        let plan = self.plan(job, total)?;
        let gpu = &self.gpu;
        let rs = real_size(self.precision);
        let shared = gpu.limits.max_compute_workgroup_storage_size as u64;
        let src = compose(job, &plan, false, self.precision, gpu.int64, shared);
        let tsrc = compose(job, &plan, true, self.precision, gpu.int64, shared);
        let pl = |s: &str, e: &str| gpu.pipeline_with_layout(s, e, &self.layout, "meanfield");
        let stream = job.minibatch() && job.streaming.is_some();
        let prep = if job.minibatch() {
            Some(pl(&src, if stream { "prep_stream" } else { "prep_index" })?)
        } else if job.set_noise() {
            Some(pl(&src, "prep_noise")?)
        } else {
            None
        };
        let order2 = if job.dynamics.modified() {
            Some(Order2 {
                grad: pl(&src, "grad")?,
                grad_parts: if plan.sch > 1 {
                    Some(pl(&src, "grad_parts")?)
                } else {
                    None
                },
                rho_forward: pl(&src, "rho_forward")?,
                rho_fold: pl(&src, "rho_fold")?,
            })
        } else {
            None
        };
        let k = Kernels {
            init: pl(&src, "init")?,
            prep,
            prep_per_replica: job.set_noise(),
            forward: pl(&src, "forward")?,
            resid: pl(&src, "resid")?,
            update: pl(&src, "update")?,
            apply: if plan.sch > 1 {
                Some(pl(&src, "apply_parts")?)
            } else {
                None
            },
            tick: pl(&src, "tick")?,
            t_forward: pl(&tsrc, "forward")?,
            t_resid: pl(&tsrc, "resid")?,
            observe: pl(&tsrc, "observe")?,
            order2,
        };

        // Buffers for a chunk of `cap` replicas (unused ones are 16-byte placeholders).
        let cap = plan.cap;
        let rk4 = job.dynamics.is_ode();
        let big = plan.ns.max(plan.nt) as u64;
        let sizes = self.replica_buffers(job, &plan, rk4, big, rs);
        let names = [
            "z", "stg", "acc", "part", "gres", "xs", "ys", "idx", "cw", "dpart", "tstat", "obs",
            "aux",
        ];
        let mut bufs = Vec::with_capacity(names.len());
        for (s, name) in sizes.iter().zip(names) {
            bufs.push(gpu.storage(cap * s, name)?);
        }
        let [z, stg, acc, part, gres, xsb, ysb, idx, cw, dpart, tstat, obs, aux] = &bufs[..] else {
            unreachable!()
        };
        let ctl = gpu.storage(16, "ctl")?;
        let mut teach = job.teacher.a.clone();
        teach.extend_from_slice(&job.teacher.w);
        let teach = gpu.storage_init(&self.to_bytes(&teach), "teacher");
        let (setx, sety) = match &job.set {
            Some(s) => (
                gpu.storage_init(&self.to_bytes(&s.x), "set x"),
                gpu.storage_init(&self.to_bytes(&s.y), "set y"),
            ),
            None => (gpu.storage(16, "set x")?, gpu.storage(16, "set y")?),
        };
        let testx = gpu.storage_init(&self.to_bytes(&job.test.x), "test x");
        let testy = gpu.storage_init(&self.to_bytes(&job.test.y), "test y");
        let (xs, ys) = if stream { (xsb, ysb) } else { (&setx, &sety) };
        let train_bg = self.bind(&[
            &ctl, z, stg, acc, xs, ys, idx, cw, part, gres, dpart, &teach, tstat, obs, aux,
        ]);
        let test_bg = self.bind(&[
            &ctl, z, stg, acc, &testx, &testy, idx, cw, part, gres, dpart, &teach, tstat, obs, aux,
        ]);
        let obs_staging = gpu.readback_buffer(cap * 8 * rs);
        let state_staging = if job.keep_states {
            Some(gpu.readback_buffer(cap * sizes[0]))
        } else {
            None
        };
        gpu.check()?;

        let evals = job.dynamics.evaluations_per_step(job.substeps().max(1));
        let run = Run {
            replicas,
            cap,
            checkpoints: &job.checkpoints,
            // Work units (neuron·sample·evaluation) per replica-step.
            work_per_step: job.width as f64 * plan.ns.max(1) as f64 * evals as f64,
            first_budget: 2e7,
            // Every evaluation is its own dispatches; `plan` keeps each kernel's sample
            // loop within the device's budget.
            steps: StepLoop::Recorded {
                max_steps: MAX_RECORDED_STEPS,
            },
            kernel: &k.forward,
        };
        let (no, ns) = (
            OBSERVABLES.len(),
            if job.keep_states { job.state_len() } else { 0 },
        );
        // The chunk begun last: first replica, count, diverged replicas.
        let (mut start, mut m, mut dead) = (0u64, 0u32, Vec::new());
        let set_ctl = |start: u64, k: u32| {
            let c: [u32; 4] = [k, 0, start as u32, 0];
            gpu.queue.write_buffer(&ctl, 0, bytemuck::cast_slice(&c));
        };
        drive(gpu, &run, |event| {
            match event {
                Event::Begin { start: s, m: n } => {
                    (start, m, dead) = (s, n as u32, vec![false; n as usize]);
                    set_ctl(start, 0);
                    let mut enc = gpu.device.create_command_encoder(&Default::default());
                    {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        pass.set_bind_group(0, &train_bg, &[]);
                        pass.set_pipeline(&k.init);
                        pass.dispatch_workgroups(plan.tiles, m, 1);
                    }
                    gpu.queue.submit([enc.finish()]);
                }
                Event::Record(enc, seg) => {
                    set_ctl(start, seg.k);
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    pass.set_bind_group(0, &train_bg, &[]);
                    for _ in 0..(seg.end - seg.k) * evals {
                        self.record_evaluation(&mut pass, &k, &plan, m);
                    }
                }
                Event::Finished(_) => {}
                Event::Checkpoint(c) => {
                    // Observables of the test set at the current state.
                    let mut enc = gpu.device.create_command_encoder(&Default::default());
                    {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        pass.set_bind_group(0, &test_bg, &[]);
                        pass.set_pipeline(&k.t_forward);
                        pass.dispatch_workgroups(plan.tiles, m, plan.tsch);
                        pass.set_pipeline(&k.t_resid);
                        let gr = RWG.min(plan.nt.next_power_of_two());
                        pass.dispatch_workgroups(plan.nt.div_ceil(gr), m, 1);
                        pass.set_pipeline(&k.observe);
                        pass.dispatch_workgroups(1, m, 1);
                    }
                    gpu.queue.submit([enc.finish()]);
                    let m64 = m as u64;
                    let vals = to_f64(&gpu.read(obs, &obs_staging, m64 * 8 * rs)?, self.precision);
                    let mut out = vec![f64::NAN; m as usize * no];
                    for (i, o) in out.chunks_mut(no).enumerate() {
                        let v = &vals[i * 8..i * 8 + 5];
                        // Net::observe: a coordinate beyond the bound or non-finite
                        // (counted on the device; non-finite sums catch drivers that
                        // fold NaN tests).
                        if v[4] != 0.0 || v[..4].iter().any(|x| !x.is_finite()) {
                            dead[i] = true;
                        }
                        if !dead[i] {
                            o.copy_from_slice(&v[..no]);
                        }
                    }
                    let mut states = Vec::new();
                    if let Some(staging) = &state_staging {
                        let raw = to_f64(&gpu.read(z, staging, m64 * sizes[0])?, self.precision);
                        states = vec![f64::NAN; m as usize * ns];
                        let (per, n) = (job.per(), job.width);
                        // Each replica's neurons from coordinate-major ([c][k]) to
                        // neuron-major: the column-to-row transposition of the other
                        // engines, with the neurons as its "replicas".
                        for (i, s) in states.chunks_mut(ns).enumerate() {
                            if !dead[i] {
                                let src = &raw[i * ns..(i + 1) * ns];
                                s.copy_from_slice(&rows_of_columns(src, n, 0..n, per));
                            }
                        }
                    }
                    sink(Block {
                        checkpoint: c,
                        first: start,
                        rows: &out,
                        states: &states,
                    });
                }
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl GpuMeanField {
    /// One drift evaluation of `m` replicas: prep → forward → resid [→ grad
    /// [→ grad_parts] → rho_forward → rho_fold] → update [→ apply_parts] → tick.
    fn record_evaluation(&self, pass: &mut wgpu::ComputePass, k: &Kernels, plan: &Plan, m: u32) {
        if let Some(prep) = &k.prep {
            pass.set_pipeline(prep);
            if k.prep_per_replica {
                pass.dispatch_workgroups(1, m, 1);
            } else {
                pass.dispatch_workgroups(plan.ns.div_ceil(plan.wg), m, 1);
            }
        }
        pass.set_pipeline(&k.forward);
        pass.dispatch_workgroups(plan.tiles, m, plan.sch);
        pass.set_pipeline(&k.resid);
        let gr = RWG.min(plan.ns.next_power_of_two());
        pass.dispatch_workgroups(plan.ns.div_ceil(gr), m, 1);
        if let Some(o) = &k.order2 {
            pass.set_pipeline(&o.grad);
            pass.dispatch_workgroups(plan.tiles, m, plan.sch);
            if let Some(gp) = &o.grad_parts {
                pass.set_pipeline(gp);
                pass.dispatch_workgroups(plan.tiles, m, 1);
            }
            pass.set_pipeline(&o.rho_forward);
            pass.dispatch_workgroups(plan.tiles, m, plan.sch);
            pass.set_pipeline(&o.rho_fold);
            pass.dispatch_workgroups(plan.ns.div_ceil(gr), m, 1);
        }
        pass.set_pipeline(&k.update);
        pass.dispatch_workgroups(plan.tiles, m, plan.sch);
        if let Some(apply) = &k.apply {
            pass.set_pipeline(apply);
            pass.dispatch_workgroups(plan.tiles, m, 1);
        }
        pass.set_pipeline(&k.tick);
        pass.dispatch_workgroups(1, 1, 1);
    }
}
