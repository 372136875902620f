//! Backends advance replicas and reduce their observables to mergeable `Moments`.
//! They know nothing of experiments; experiments know nothing of wgpu.

pub mod blocks;
pub mod cpu;
pub mod gpu;
pub mod rows;

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

impl Precision {
    /// "f32" or "f64", as configs and results.json spell it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// Counts finished path-steps (fine substeps included) for progress bars.
pub type Progress<'a> = &'a (dyn Fn(f64) + Sync);

/// The default work unit (`Backend::work_unit`): 2^20 replicas, a multiple of the GPU
/// workgroup (64).
pub const WORK_UNIT: u64 = 1 << 20;

pub trait Backend {
    /// "cpu" or "gpu".
    fn name(&self) -> &'static str;
    /// Human-readable device: CPU threads, or the wgpu adapter (and whether it is a
    /// software rasteriser such as llvmpipe).
    fn adapter(&self) -> String;
    fn precision(&self) -> Precision;
    /// Simulates `replicas` of `spec` and returns one `Moments` per (checkpoint,
    /// statistic), index `c * spec.n_stats() + k` (k: channel × observable,
    /// `RunSpec::stat`), values shifted by `shifts(model, spec)`.
    fn run(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
        progress: Progress,
    ) -> anyhow::Result<Vec<Moments>>;
    /// Whether this backend can run `spec` at all (e.g. within a software adapter's
    /// loop limit), checked for every run of a plan before any work starts.
    fn preflight(&self, _model: &AnyModel, _spec: &RunSpec) -> anyhow::Result<()> {
        Ok(())
    }
    /// Replicas one `run` call should get for the backend to run near its full speed:
    /// the experiments' work unit (`experiment::unit_replicas`, also the resume
    /// granularity). Results do not depend on it.
    fn work_unit(&self) -> u64 {
        WORK_UNIT
    }
    /// Final state (finest level, particles × d, row-major per replica) of each replica
    /// in `replicas`: for path-by-path comparison on small samples.
    fn final_states(
        &self,
        model: &AnyModel,
        spec: &RunSpec,
        replicas: Range<u64>,
    ) -> anyhow::Result<Vec<f64>>;
}

/// Replicas tried, in order, for the reference path of `shifts`.
const SHIFT_CANDIDATES: u32 = 8;

/// Per-(checkpoint, statistic) shift, index `c * n_stats + k`: every backend sums
/// v − shift and the report adds the shift back. Values are centred so that f32 partial
/// sums on the GPU and the variance formula do not cancel. The shift is the value of a
/// reference path at that checkpoint — replica 0 (or the first of the next few that
/// stays alive), computed by the f64 CPU reference — not g(x₀): an observable that
/// decays far below its initial value (E|x|² from 1 to 1e-24) would be swallowed by a
/// g(x₀) shift (1 + 1e-24 − 1 = 0). The path is a function of (spec, seed) alone, so
/// every backend, chunk and shard uses the same shifts. They are rounded to f32 so an
/// f32 kernel subtracts exactly what the host adds back; a value beyond f32's range,
/// or a checkpoint where no candidate survives, gets the shift 0 (exact sums need
/// none; only the variance's conditioning depends on it).
pub fn shifts(model: &AnyModel, spec: &RunSpec) -> Vec<f64> {
    crate::with_model!(model, m => reference_shifts(m, spec))
}

fn reference_shifts<M: crate::model::Model>(m: &M, spec: &RunSpec) -> Vec<f64> {
    use crate::dynamics::path::{prepare, simulate, PathRecord};
    let n_obs = spec.n_stats();
    let n_cp = spec.checkpoints.len();
    let mut out = vec![None; n_cp * n_obs];
    let prep = prepare(m, spec);
    let mut rec = PathRecord::new(spec);
    let paths = if spec.dynamics.is_random() {
        SHIFT_CANDIDATES
    } else {
        1
    };
    for r in 0..paths {
        simulate(m, spec, &prep, r, &mut rec);
        for c in 0..n_cp {
            for o in 0..n_obs {
                let v = rec.values[(c * n_obs + o) * 2];
                let slot = &mut out[c * n_obs + o];
                if slot.is_none() && rec.alive[c] && v.is_finite() {
                    *slot = Some(v);
                }
            }
        }
        if out.iter().all(Option::is_some) {
            break;
        }
    }
    out.into_iter()
        .map(|v| match v {
            Some(v) if v.abs() < f32::MAX as f64 => v as f32 as f64,
            _ => 0.0,
        })
        .collect()
}

/// The identity methods (`name`, `adapter`, `precision`) of a backend wrapper that
/// reports the backend in its field `$inner` (the `RowEngine` wrappers of shards,
/// `--resume` replays and `compare`), written once.
macro_rules! delegate_identity {
    ($inner:ident) => {
        fn name(&self) -> &'static str {
            self.$inner.name()
        }

        fn adapter(&self) -> String {
            self.$inner.adapter()
        }

        fn precision(&self) -> $crate::backend::Precision {
            self.$inner.precision()
        }
    };
}
pub(crate) use delegate_identity;
