//! Host memory an experiment holds, checked against a stated budget before any work
//! starts: a plan that cannot fit fails at once with an error naming `paths`, instead
//! of growing for minutes or aborting on a failed allocation.
//!
//! The budget is `SMFLOW_HOST_MEMORY_GIB` GiB (default 8). Per-replica results are
//! what grows with `paths`: the finite-data trainer keeps each replica's rows at every
//! checkpoint of a job, `width_sweep` keeps 4 observables per (run, checkpoint,
//! replica). The small-d experiments reduce on the fly and hold O(1) per run.

use crate::config::ConfigError;

const DEFAULT_GIB: f64 = 8.0;

/// The host-memory budget in bytes.
pub fn host_budget() -> f64 {
    std::env::var("SMFLOW_HOST_MEMORY_GIB")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|g| g.is_finite() && *g > 0.0)
        .unwrap_or(DEFAULT_GIB)
        * (1u64 << 30) as f64
}

/// Fails when `bytes` of host memory (what `what` describes, set by config field
/// `field`) exceed the budget: a batch or a data set too large to hold fails at once,
/// naming its field, instead of aborting on a failed allocation.
pub fn check_bytes(field: &str, bytes: f64, what: &str) -> Result<(), ConfigError> {
    let budget = host_budget();
    if bytes <= budget {
        return Ok(());
    }
    Err(ConfigError {
        field: field.into(),
        message: format!(
            "{what} would hold {:.1} GiB in memory, beyond the host budget of {:.1} GiB \
             (SMFLOW_HOST_MEMORY_GIB)",
            bytes / (1u64 << 30) as f64,
            budget / (1u64 << 30) as f64
        ),
    })
}

/// Worker threads that each hold their own scratch (the CPU backends' rayon pool).
pub fn workers() -> f64 {
    rayon::current_num_threads().max(1) as f64
}

/// Fails when `paths` replicas at `per_replica` bytes each (what `what` describes)
/// exceed the budget, naming the largest `paths` that fits.
pub fn check_paths(paths: u64, per_replica: f64, what: &str) -> Result<(), ConfigError> {
    let budget = host_budget();
    let need = paths as f64 * per_replica;
    if need <= budget {
        return Ok(());
    }
    let fits = (budget / per_replica.max(1.0)).floor() as u64;
    Err(ConfigError {
        field: "paths".into(),
        message: format!(
            "{paths} replicas would hold {:.1} GiB in memory ({what}: {per_replica:.0} bytes per replica), \
             beyond the host budget of {:.1} GiB (SMFLOW_HOST_MEMORY_GIB); at most {fits} fit",
            need / (1u64 << 30) as f64,
            budget / (1u64 << 30) as f64
        ),
    })
}
