//! GPU backend (wgpu + WGSL): the same paths as the CPU reference, in f32 (default)
//! or f64 where the adapter has `SHADER_F64`.
//!
//! - `compose`: builds one kernel per (model, dynamics kind, precision, run constants)
//!   from the `.wgsl` pieces under `shaders/`; `model_consts` emits a model's constants.
//! - `device`: adapter choice, limits, error capture, pipeline cache, buffers.
//! - `segments`: the one driver loop of every engine (chunks, dispatch segments ending
//!   at checkpoints, the loop guard); `pacer` gives it segment lengths from the
//!   measured rate.
//! - `driver`: the small-d engine's job for it: per-workgroup partial sums folded into
//!   `Moments` on the host in f64.
//! - `chunks`: replicas per chunk within the adapter's limits, for every GPU driver.
//! - `rng_check`: runs the WGSL Philox/Box–Muller on given counters (tests), and
//!   alone at full speed (the bench's bare-RNG ceiling).
//!
//! Reproducibility: every kernel consumes exactly the CPU's Philox draws (counter =
//! (global replica, step, block, stream), key = seed) and performs the same updates,
//! so GPU paths equal the CPU's f64 paths up to floating-point rounding.
//!
//! Precision: with f64, SPIR-V's GLSL.std.450 exp/log/sin/cos/tanh accept no f64, so
//! the kernels compute them in f64 with `src/math.rs`'s algorithms (WGSL twin
//! `shaders/common/math_f64.wgsl`, composed by `compose::real_header`): the CPU's own
//! for Box–Muller and mean-field's σ; within a few ulp of std's where the CPU calls std
//! (the GBM exact step's exp, the `cos` observable). An f64 run therefore equals the
//! CPU's f64 paths to f64 rounding (tests/gpu_vs_cpu.rs).

pub mod chunks;
pub mod compose;
pub mod device;
pub mod driver;
pub mod model_consts;
pub mod pacer;
pub mod rng_check;
pub mod segments;

use super::{Backend, Precision, Progress};
use crate::dynamics::RunSpec;
use crate::model::AnyModel;
use crate::stats::Moments;
use anyhow::{bail, Result};
use driver::{Mode, Output};
use std::ops::Range;

pub use device::list_adapters;

pub struct GpuBackend {
    gpu: device::Gpu,
    precision: Precision,
    /// Forced replicas per chunk (a multiple of 64); `None`: the largest that fits.
    chunk: Option<u64>,
}

impl GpuBackend {
    /// Picks an adapter (Vulkan/Metal/DX12 first, GL as a fallback; `WGPU_BACKEND` and
    /// `WGPU_ADAPTER_NAME` override) and opens a device with the adapter's limits.
    pub fn new(precision: Precision) -> Result<Self> {
        let gpu = device::Gpu::new(precision == Precision::F64)?;
        Ok(Self {
            gpu,
            precision,
            chunk: None,
        })
    }

    /// As `new`, with at most `replicas_per_chunk` replicas per chunk (rounded up to a
    /// multiple of the workgroup size 64): results must not depend on it.
    pub fn with_chunk(precision: Precision, replicas_per_chunk: u64) -> Result<Self> {
        let mut b = Self::new(precision)?;
        b.chunk = Some(replicas_per_chunk.max(1).div_ceil(driver::WORKGROUP) * driver::WORKGROUP);
        Ok(b)
    }

    /// Whether the adapter is a software rasteriser (e.g. llvmpipe).
    pub fn is_software(&self) -> bool {
        self.gpu.is_software()
    }

    /// Loop iterations per invocation after which the device cuts loops off
    /// (llvmpipe: 65 535), as measured when the device was opened; `None`: no limit.
    pub fn loop_limit(&self) -> Option<u64> {
        self.gpu.loop_limit
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.gpu.limits
    }

    /// The WGSL Philox, uniforms and Box–Muller normals on given (counter, key) pairs,
    /// as the simulation kernels compute them on this device.
    pub fn rng_check(&self, inputs: &[([u32; 4], [u32; 2])]) -> Result<rng_check::RngCheck> {
        rng_check::rng_check(&self.gpu, self.precision, true, inputs)
    }

    /// As `rng_check` with the portable 16-bit-split multiply even where the device
    /// has SHADER_INT64 (both must give the same bits).
    pub fn rng_check_portable(
        &self,
        inputs: &[([u32; 4], [u32; 2])],
    ) -> Result<rng_check::RngCheck> {
        rng_check::rng_check(&self.gpu, self.precision, false, inputs)
    }

    /// (path-steps, seconds) of the RNG work alone of `paths` paths of the bench's
    /// `sgd` job with `steps` steps (`rng_check::rng_ceiling`).
    pub fn rng_ceiling(&self, paths: u64, steps: u32) -> Result<(f64, f64)> {
        rng_check::rng_ceiling(&self.gpu, paths, steps)
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> &'static str {
        "gpu"
    }
    fn adapter(&self) -> String {
        device::describe(&self.gpu.info)
    }
    fn precision(&self) -> Precision {
        self.precision
    }
    /// A hardware GPU gets units of up to one whole chunk (`MAX_CHUNK`, 2^22 replicas;
    /// fewer fit when the state is large): each call costs the
    /// host 0.06–0.08 ms of setup and 0.12 ms of readback (measured on llvmpipe) besides
    /// the partials' fold and each segment's round trip, while 2^20 paths of the
    /// 40-step sgd job are 0.42 ms of device time at 1e11 path-steps/s. llvmpipe keeps 2^20: it ran the
    /// sgd job at 2^22 paths 7% slower in units of 2^22 (1.68e8 against 1.81e8
    /// path-steps/s, 2026-12-07).
    fn work_unit(&self) -> u64 {
        if self.gpu.is_software() {
            crate::backend::WORK_UNIT
        } else {
            driver::MAX_CHUNK
        }
    }
    fn preflight(&self, model: &AnyModel, spec: &RunSpec) -> Result<()> {
        driver::steps_per_dispatch(&self.gpu, self.precision, model, spec).map(|_| ())
    }
    fn run(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
        progress: Progress,
    ) -> Result<Vec<Moments>> {
        match driver::simulate(
            &self.gpu,
            self.precision,
            self.chunk,
            model,
            spec,
            replicas,
            progress,
            Mode::Stats,
        )? {
            Output::Stats(m) => Ok(m),
            Output::States(_) => bail!("internal: driver returned states for a stats run"),
        }
    }
    fn final_states(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
    ) -> Result<Vec<f64>> {
        match driver::simulate(
            &self.gpu,
            self.precision,
            self.chunk,
            model,
            spec,
            replicas,
            &|_| {},
            Mode::States,
        )? {
            Output::States(s) => Ok(s),
            Output::Stats(_) => bail!("internal: driver returned stats for a states run"),
        }
    }
}
