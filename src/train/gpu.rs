//! The finite-data trainer on the GPU (wgpu + WGSL, `shaders/train/`): the same paths
//! as `ops::Replica` (same Philox counters for minibatches, Brownian increments and
//! label noise; same update formulas via `net.wgsl`, the twin of `net::Param`), in f32
//! or, where the adapter has SHADER_F64, f64 — equal to the CPU's f64 paths up to
//! floating-point rounding.
//!
//! Kernel design. One invocation = one replica; its state (w, then Gain, then msgd /
//! msme1's momentum; checkpoints read back w and Gain) and its
//! scratch (β, ∇_βL, noise sums, Hessian-vector work, RK4 base/accumulator) live in
//! storage buffers as structure of arrays (coordinate c of chunk replica i at
//! c·stride + i), the data X and y in read-only buffers shared by every invocation.
//! Everything run-specific (D, p, N, b, substeps, the parametrisation, η and the
//! derived step constants, the flags of the dynamics) is a `const` of the composed
//! header, so the driver folds it; the pipeline cache keys by source. Replicas whose
//! row + scratch fit `PRIVATE_MAX` values copy them into private arrays for the length
//! of a dispatch (on llvmpipe a storage access at a per-invocation address is a loop
//! over the SIMD lanes; this doubled sgd throughput at d = 100); larger ones work in
//! the storage buffers (larger private arrays also make llvmpipe compile slowly, and
//! caching the b minibatch rows privately was slower). Per-replica
//! labels (`resample_labels`) are drawn once per chunk by the `labels` entry point
//! into a per-replica buffer.
//!
//! Driver. Replicas run in chunks within the adapter's binding and dispatch limits;
//! each chunk runs the segments between consecutive checkpoints as dispatches of
//! adaptively many steps (~0.15 s each, so no dispatch nears a watchdog), reads the
//! state back at every checkpoint and applies the divergence rule on the host exactly
//! as `Replica::check_bound` (a replica beyond the bound or non-finite reports NaN rows
//! from then on; the device keeps stepping it harmlessly). Rows reach the sink per
//! checkpoint and chunk, in replica order. Results do not depend on the chunk size:
//! Philox is fed the global replica index.

use super::net::Param;
use super::{TrainJob, Update};
use crate::backend::gpu::chunks::{chunk_replicas, ReplicaNeeds};
use crate::backend::gpu::compose::{
    lit, mulhilo, real_header, HEAVY_BALL, MATH, PHILOX, RK4, SAMPLING,
};
use crate::backend::gpu::device::Gpu;
use crate::backend::gpu::driver::{real_size, rows_of_columns, to_f64};
use crate::backend::gpu::segments::{drive, Event, Plan, StepLoop};
use crate::backend::rows::{Block, RowEngine, RowSink};
use crate::backend::Precision;
use crate::data::sampling::{feistel_half_bits, Sampling};
use crate::data::TAG_REPLICA_LABELS;
use anyhow::{bail, Result};
use std::fmt::Write;
use std::ops::Range;

pub const NET: &str = include_str!("../../shaders/train/net.wgsl");
pub const TRAIN: &str = include_str!("../../shaders/train/train.wgsl");
pub const LOSS: &str = include_str!("../../shaders/train/loss.wgsl");
pub const DEEP_LINEAR: &str = include_str!("../../shaders/train/deep_linear.wgsl");
pub const DENSE: &str = include_str!("../../shaders/train/dense.wgsl");

/// Invocations per workgroup.
pub const WORKGROUP: u64 = 64;

/// Scratch layout (coordinates per replica, in units of the SoA stride).
#[derive(Default)]
struct Layout {
    beta: usize,
    g: usize,
    t: usize,
    jv: usize,
    q: usize,
    w0: usize,
    acc: usize,
    /// DENSE (deep_linear) only: two P-vectors (Jᵀ of a β-space vector: the drift,
    /// the Hessian term, the noise), the rows a_1 … a_{L−1} and their derivatives
    /// (h each), and four columns of max(d, h) (`deep_linear.wgsl`).
    pv: usize,
    pv2: usize,
    rows: usize,
    drows: usize,
    cols: usize,
    len: usize,
}

fn layout(job: &TrainJob) -> Layout {
    let (d, p) = (job.d(), job.p());
    let base = Layout {
        beta: 0,
        g: d,
        t: 2 * d,
        jv: 3 * d,
        q: 4 * d,
        w0: 5 * d,
        acc: 5 * d + p,
        len: 5 * d + 2 * p,
        ..Layout::default()
    };
    if let Param::DeepLinear(n) = job.param {
        let (l, h) = (n.depth as usize, n.width as usize);
        let rows = base.len + 2 * p;
        let drows = rows + (l - 1) * h;
        let cols = drows + (l - 1) * h;
        return Layout {
            pv: base.len,
            pv2: base.len + p,
            rows,
            drows,
            cols,
            len: cols + 4 * d.max(h),
            ..base
        };
    }
    match job.dynamics.update() {
        // The minibatch step of the diagonal nets needs no scratch.
        Update::Discrete { full: false } => Layout::default(),
        _ => base,
    }
}

/// Default bound on the values (row + scratch) a replica keeps in private arrays
/// within a dispatch; larger replicas work in the storage buffers directly. (Large
/// private arrays also make llvmpipe's shader compiler slow.)
pub const PRIVATE_MAX: usize = 256;

/// The training kernel of `job` at precision `p` (entry points `main` and `labels`);
/// `int64`: Philox multiplies in u64 (the device needs SHADER_INT64).
/// `private_max`: rows + scratch of at most this many values are kept in private
/// arrays during a dispatch (`PRIVATE_MAX` by default; 0: always in storage).
/// A generous bound on the shader loop iterations of one step of `job` (every loop of
/// `train.wgsl` counted, nested ones multiplied out): sample passes are
/// (N + 1)(D + 1)-sized, done a few times per drift evaluation.
pub fn loop_iterations_per_step(job: &TrainJob) -> u64 {
    let (n, d, b) = (job.data.n as u64, job.d() as u64, job.batch.max(1) as u64);
    let pair = (d + 1) * 4;
    // deep_linear's dense passes (deep_linear.wgsl): the rows at w and along v, Jᵀ
    // twice and the curvature term, each ~p multiply-adds (+ a column of max(d, h)
    // per layer), per drift evaluation or step.
    let dense = match job.param {
        Param::DeepLinear(net) => {
            let layer = (net.depth as u64 + 1) * (d + net.width as u64 + 2);
            12 * (job.p() as u64 + layer)
        }
        _ => 0,
    };
    match job.dynamics.update() {
        Update::Discrete { full: false } => {
            // Index draws (cycle walking: Feistel rounds, a few walks), residuals, update.
            let draw = job.sampling.loop_iterations() * b;
            draw + (b + 2) * pair + dense
        }
        Update::Discrete { full: true } => (n + 2) * pair + dense,
        Update::Ode | Update::Sde { .. } => {
            let stages = if update_is_ode(job) { 4 } else { 1 };
            let modified = if job.dynamics.modified() { 2 } else { 1 };
            // The coarse level draws `coarsen` normals per increment.
            let draws = job.coarsen.max(1) as u64 * 16;
            job.substeps() as u64 * stages * modified * ((n + 2) * (pair + draws) + dense)
        }
    }
}

fn update_is_ode(job: &TrainJob) -> bool {
    job.dynamics.update() == Update::Ode
}

pub fn compose(job: &TrainJob, p: Precision, int64: bool, private_max: usize) -> String {
    let (d, n) = (job.d(), job.data.n);
    let lay = layout(job);
    let update = job.dynamics.update();
    let substeps = job.substeps();
    let dt = job.eta / substeps as f64;
    let b = |v: bool| if v { "true" } else { "false" };
    let mut h = String::from(real_header(p));
    let mut u = |name: &str, v: usize| {
        let _ = writeln!(h, "const {name}: u32 = {v}u;");
    };
    u("WG", WORKGROUP as usize);
    u("D", d);
    u("P", job.p());
    u("N", n);
    u("B", job.batch.max(1) as usize);
    u("SUBSTEPS", substeps as usize);
    u("COARSEN", job.coarsen.max(1) as usize);
    u("PARAM", job.param.code() as usize);
    u("LOSS", job.loss.code() as usize);
    u("STREAM", job.stream as usize);
    u("TAG_LABELS", TAG_REPLICA_LABELS as usize);
    u("FEISTEL_H", feistel_half_bits(n as u32) as usize);
    // The whole state (w, Gain, then msgd / msme1's momentum at OFF_MOM) stays on the
    // device; checkpoints read back its first `row_len` coordinates.
    let row = job.state_len();
    let private = row + lay.len <= private_max;
    u("ROW", row);
    u("OFF_MOM", job.row_len());
    u("PRIV_ROW", if private { row } else { 1 });
    u("PRIV_SCR", if private { lay.len.max(1) } else { 1 });
    u("OFF_BETA", lay.beta);
    u("OFF_G", lay.g);
    u("OFF_T", lay.t);
    u("OFF_JV", lay.jv);
    u("OFF_Q", lay.q);
    u("OFF_W0", lay.w0);
    u("OFF_ACC", lay.acc);
    // deep_linear's shape (placeholders for the diagonal nets, whose kernels never
    // reach the DENSE path).
    let (depth, width) = match job.param {
        Param::DeepLinear(n) => (n.depth as usize, n.width as usize),
        _ => (3, 1),
    };
    u("DL_L", depth);
    u("DL_H", width);
    u("DL_M", d.max(width));
    u("OFF_PV", lay.pv);
    u("OFF_PV2", lay.pv2);
    u("OFF_A", lay.rows);
    u("OFF_DA", lay.drows);
    u("OFF_COL", lay.cols);
    let _ = writeln!(
        h,
        "const KEY: vec2<u32> = vec2<u32>({}u, {}u);",
        job.key[0], job.key[1]
    );
    let flags = [
        ("DISCRETE", matches!(update, Update::Discrete { .. })),
        ("FULL", matches!(update, Update::Discrete { full: true })),
        ("ODE", update == Update::Ode),
        ("PESME", update == Update::Sde { pesme: true }),
        ("MODIFIED", job.dynamics.modified()),
        ("MOMENTUM", job.dynamics.has_momentum()),
        ("TRACK_GAIN", job.track_gain),
        ("EPOCHS", job.sampling == Sampling::Epochs),
        ("PRIV", private),
        ("DENSE", matches!(job.param, Param::DeepLinear(_))),
    ];
    for (name, v) in flags {
        let _ = writeln!(h, "const {name}: bool = {};", b(v));
    }
    let mut r = |name: &str, v: f64| {
        let _ = writeln!(h, "const {name}: real = {};", lit(v, p));
    };
    r("ETA", job.eta);
    r("FRICTION", job.friction);
    r("HALF_ETA", job.eta / 2.0);
    r("DT", dt);
    r("DT6", dt / 6.0);
    r("SQRT_DT", dt.sqrt());
    r("INV_SQRT_COARSEN", 1.0 / (job.coarsen.max(1) as f64).sqrt());
    r("INV_N", 1.0 / n as f64);
    r("INV_B", 1.0 / job.batch.max(1) as f64);
    r(
        "NOISE_SCALE",
        (job.eta / (job.batch as f64 * n as f64)).sqrt(),
    );
    r("PESME_C", 2.0 * job.eta / (job.batch as f64 * n as f64));
    r("NOISE_STD", job.data.noise_std);
    let label = if job.resample_labels {
        "ylab[at(i)]"
    } else {
        "ydata[i]"
    };
    let _ = writeln!(h, "fn label(i: u32) -> real {{\n    return {label};\n}}");
    [
        &h,
        MATH,
        mulhilo(int64),
        PHILOX,
        SAMPLING,
        RK4,
        HEAVY_BALL,
        NET,
        LOSS,
        DEEP_LINEAR,
        TRAIN,
        DENSE,
    ]
    .concat()
}

pub struct GpuTrainer {
    gpu: Gpu,
    precision: Precision,
    /// Forced replicas per chunk (a multiple of 64); `None`: the largest that fits.
    chunk: Option<u64>,
    /// See `compose`.
    private_max: usize,
}

impl GpuTrainer {
    /// Picks an adapter as `GpuBackend::new` does and opens a device (with SHADER_F64
    /// for `Precision::F64`, failing clearly where the adapter has none).
    pub fn new(precision: Precision) -> Result<Self> {
        let gpu = Gpu::new(precision == Precision::F64)?;
        Ok(Self {
            gpu,
            precision,
            chunk: None,
            private_max: PRIVATE_MAX,
        })
    }

    /// As `new`, with at most `replicas_per_chunk` replicas per chunk (rounded up to a
    /// multiple of 64): results must not depend on it.
    pub fn with_chunk(precision: Precision, replicas_per_chunk: u64) -> Result<Self> {
        let mut t = Self::new(precision)?;
        t.chunk = Some(replicas_per_chunk.max(1).div_ceil(WORKGROUP) * WORKGROUP);
        Ok(t)
    }

    /// Replicas with rows + scratch of at most `values` keep them in private arrays
    /// during a dispatch (default `PRIVATE_MAX`; 0: always in storage). Results do not
    /// depend on it beyond rounding.
    pub fn set_private_max(&mut self, values: usize) {
        self.private_max = values;
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

    /// Replicas per chunk (`chunks::chunk_replicas`): the forced size or the largest
    /// that fits; `per_replica`: values per replica of each buffer.
    fn capacity(&self, per_replica: &[u64], total: u64) -> Result<u64> {
        let rs = real_size(self.precision);
        let bytes: Vec<f64> = per_replica.iter().map(|&f| (f * rs) as f64).collect();
        let needs = ReplicaNeeds {
            bytes: &bytes,
            max: self.gpu.limits.max_compute_workgroups_per_dimension as u64 * WORKGROUP,
            align: WORKGROUP,
            what: &format!("{per_replica:?} values"),
        };
        chunk_replicas(&self.gpu.limits, &needs, self.chunk, total)
    }
}

/// Bind group of `pipeline` from (binding, buffer) pairs.
fn bind(gpu: &Gpu, p: &wgpu::ComputePipeline, bufs: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
    gpu.bind_group(&p.get_bind_group_layout(0), bufs)
}

fn check_job(job: &TrainJob) -> Result<()> {
    let ds = &*job.data;
    if job.checkpoints.is_empty() {
        bail!("train job has no checkpoints");
    }
    if job.checkpoints.windows(2).any(|w| w[0] > w[1]) {
        bail!("train job checkpoints must be ascending");
    }
    job.check_dynamics()?;
    if job.w0.len() != job.p() {
        bail!(
            "w0 has {} entries, the net has p = {}",
            job.w0.len(),
            job.p()
        );
    }
    if ds.n == 0 || ds.n > 1 << 24 {
        bail!(
            "the GPU trainer needs 1 ..= 2^24 samples, the data set has {}",
            ds.n
        );
    }
    if job.batch == 0 || job.batch as usize > ds.n {
        bail!("batch must be in 1 ..= N = {}, got {}", ds.n, job.batch);
    }
    if job.substeps() == 0 {
        bail!("substeps must be ≥ 1");
    }
    if job.resample_labels && ds.y_clean.is_none() {
        bail!("resample_labels needs a generated data set (noise-free labels)");
    }
    if job.track_gain && !matches!(job.dynamics.update(), Update::Discrete { .. }) {
        bail!("track_gain is defined for the discrete dynamics (gd, sgd) only");
    }
    Ok(())
}

impl RowEngine<TrainJob> for GpuTrainer {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn adapter(&self) -> String {
        self.gpu.label(self.precision)
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn run(&self, job: &TrainJob, replicas: Range<u64>, sink: RowSink) -> Result<()> {
        // A software adapter cuts an invocation's loops off (the device layer measured
        // where): the shared driver bounds the steps per dispatch, and refuses jobs whose
        // single step needs more.
        let what = format!(
            "one step of {} (N = {}, d = {}, {} substeps)",
            job.dynamics.name(),
            job.data.n,
            job.d(),
            job.substeps()
        );
        let steps = StepLoop::InKernel {
            per_step: loop_iterations_per_step(job),
            fixed: job.data.n as u64,
            // The `labels` kernel, counted as `loop_iterations_per_step` counts: per 4
            // samples a Philox block (10 rounds + Box–Muller: 12) and 4 stores, + 1.
            others: (
                if job.resample_labels {
                    17 * job.data.n.div_ceil(4) as u64 + 16
                } else {
                    0
                },
                "the label draws",
            ),
            what: &what,
        };
        steps.max_steps(&self.gpu)?;
        check_job(job)?;
        let gpu = &self.gpu;
        let ds = &*job.data;
        let (n, d) = (ds.n as u64, ds.d as u64);
        let rs = real_size(self.precision);
        let binding = gpu
            .limits
            .max_storage_buffer_binding_size
            .min(gpu.limits.max_buffer_size);
        if n * d * rs > binding {
            bail!(
                "the data set (N·d = {} values) exceeds the adapter's storage binding limit of {binding} bytes",
                n * d
            );
        }
        let total = replicas.end.saturating_sub(replicas.start);
        if total == 0 {
            return Ok(());
        }
        // `state` holds the whole state; `row`, its reported prefix, comes back.
        let (row, full) = (job.row_len() as u64, job.state_len() as u64);
        let (p, lay) = (job.p(), layout(job));
        let labels = if job.resample_labels { n } else { 0 };
        let cap = self.capacity(&[full, lay.len as u64, labels], total)?;

        let src = compose(job, self.precision, gpu.int64, self.private_max);
        let main = gpu.pipeline(&src, "main")?;
        let xbuf = gpu.storage_init(&self.to_bytes(&ds.x), "train x");
        let y_src = if job.resample_labels {
            ds.y_clean.as_ref().unwrap_or(&ds.y)
        } else {
            &ds.y
        };
        let ybuf = gpu.storage_init(&self.to_bytes(y_src), "train y");
        let state = gpu.storage(cap * full * rs, "train state")?;
        let scratch = gpu.storage(cap * lay.len as u64 * rs, "train scratch")?;
        let ylab = gpu.storage(cap * labels * rs, "train labels")?;
        let params = gpu.uniform(32);
        let staging = gpu.readback_buffer(cap * row * rs);
        let label_buf = if job.resample_labels {
            (5, &ylab)
        } else {
            (4, &ybuf)
        };
        let bind_main = bind(
            gpu,
            &main,
            &[
                (0, &params),
                (1, &state),
                (2, &scratch),
                (3, &xbuf),
                label_buf,
            ],
        );
        let label_pass = if job.resample_labels {
            let pl = gpu.pipeline(&src, "labels")?;
            let bg = bind(gpu, &pl, &[(0, &params), (4, &ybuf), (5, &ylab)]);
            Some((pl, bg))
        } else {
            None
        };
        gpu.check()?;

        // The initial state of every lane: w0, Gain 0, momentum 0 (SoA).
        let mut init = vec![0.0; (cap * full) as usize];
        for (c, &w) in job.w0.iter().enumerate() {
            init[c * cap as usize..(c + 1) * cap as usize].fill(w);
        }
        let init = self.to_bytes(&init);

        // Work units per replica-step, for the dispatch budget.
        let work_per_step = (job.substeps() as f64)
            * d as f64
            * match job.dynamics.update() {
                Update::Discrete { full: false } => job.batch as f64,
                Update::Discrete { full: true } => n as f64,
                Update::Ode => 4.0 * n as f64 * if job.dynamics.modified() { 2.0 } else { 1.0 },
                Update::Sde { .. } => n as f64 * if job.dynamics.modified() { 2.0 } else { 1.0 },
            };
        let plan = Plan {
            replicas,
            cap,
            checkpoints: &job.checkpoints,
            work_per_step,
            first_budget: 2e7,
            steps,
            kernel: &main,
        };
        let len = row as usize;
        // The chunk begun last: first replica, count, diverged replicas.
        let (mut start, mut m, mut dead) = (0u64, 0u64, Vec::new());
        let set_params = |start: u64, m: u64, k0: u32, k1: u32| {
            let pr: [u32; 8] = [start as u32, m as u32, k0, k1, cap as u32, 0, 0, 0];
            gpu.queue
                .write_buffer(&params, 0, bytemuck::cast_slice(&pr));
        };
        drive(gpu, &plan, |event| {
            let groups = m.div_ceil(WORKGROUP) as u32;
            match event {
                Event::Begin { start: s, m: n } => {
                    (start, m, dead) = (s, n, vec![false; n as usize]);
                    gpu.queue.write_buffer(&state, 0, &init);
                    if let Some((pl, bg)) = &label_pass {
                        set_params(start, m, 0, 0);
                        gpu.dispatch(pl, bg, m.div_ceil(WORKGROUP) as u32);
                    }
                }
                Event::Record(enc, seg) => {
                    set_params(start, m, seg.k, seg.end);
                    let mut pass = enc.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&main);
                    pass.set_bind_group(0, &bind_main, &[]);
                    pass.dispatch_workgroups(groups, 1, 1);
                }
                Event::Finished(_) => {}
                Event::Checkpoint(c) => {
                    let vals = to_f64(&gpu.read(&state, &staging, cap * row * rs)?, self.precision);
                    let mut rows = rows_of_columns(&vals, cap as usize, 0..m as usize, len);
                    for (i, out) in rows.chunks_mut(len).enumerate() {
                        // Replica::check_bound.
                        if dead[i] || out[..p].iter().any(|v| v.is_nan() || v.abs() > job.bound) {
                            dead[i] = true;
                            out.fill(f64::NAN);
                        }
                    }
                    sink(Block::rows(c, start, &rows));
                }
            }
            Ok(())
        })?;
        Ok(())
    }
}
