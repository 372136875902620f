//! Backends advance replicas and reduce their observables to mergeable `Moments`.
//! They know nothing of experiments; experiments know nothing of wgpu.

pub mod cpu;
pub mod gpu;

use crate::dynamics::RunSpec;
use crate::model::AnyModel;
use crate::stats::Moments;
use std::ops::Range;

/// Which backend a user asked for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    Auto,
    Cpu,
    Gpu,
}

/// Floating-point precision of the path arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F64,
}

/// Counts finished path-steps (fine substeps included) for progress bars.
pub type Progress<'a> = &'a (dyn Fn(f64) + Sync);

pub trait Backend {
    /// "cpu" or "gpu".
    fn name(&self) -> &'static str;
    /// Human-readable device: CPU threads, or the wgpu adapter (and whether it is a
    /// software rasteriser such as llvmpipe).
    fn adapter(&self) -> String;
    fn precision(&self) -> Precision;
    /// Simulates `replicas` of `spec` and returns one `Moments` per (checkpoint,
    /// observable), index `c * n_obs + o`, values shifted by `shifts(model, spec)`.
    fn run(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
        progress: Progress,
    ) -> anyhow::Result<Vec<Moments>>;
    /// Final state (finest level, particles × d, row-major per replica) of each replica
    /// in `replicas`: for path-by-path comparison on small samples.
    fn final_states(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
    ) -> anyhow::Result<Vec<f64>>;
}

/// Per-observable shift: g at the initial state.
pub fn shifts(model: &AnyModel, spec: &RunSpec) -> Vec<f64> {
    let m = model.as_dyn();
    spec.observables
        .iter()
        .map(|o| o.eval(m, &spec.x0))
        .collect()
}
