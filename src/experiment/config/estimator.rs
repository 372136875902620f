//! The weak-error settings of `weak_order` (and `n_point`'s estimator): the estimator
//! (independent or coupled, DESIGN §7b) and the target precision (`experiment::target`),
//! with their checks.

use super::{Config, ExperimentKind};
use crate::config::{err, ConfigError};
use crate::dynamics::Solver;
use crate::model::{AnyModel, Capabilities, Capability};
use serde::{Deserialize, Serialize};

/// `"target": {"rel_stderr": r, "pilot_paths": n}`: a pilot of n paths per η (on an
/// independent Philox key) estimates each weak error and the variance of its estimate;
/// the run then takes, per η, the paths for stderr ≤ r·|error| (capped by `paths`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub rel_stderr: f64,
    #[serde(default = "default_pilot_paths")]
    pub pilot_paths: u64,
}

fn default_pilot_paths() -> u64 {
    1 << 14
}

/// How `weak_order` estimates E g(x_K) − E g(X_T) (DESIGN §7b), and whether `n_point`
/// pairs its SMF runs with SGD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimator {
    /// SGD and the SDE sampled independently: stderr of the difference is O(1).
    Independent,
    /// The SDE's Brownian increments pinned to SGD's data normals, per replica: the
    /// difference D per path is O(η^{3/2}) with additive noise.
    Coupled,
}

impl Estimator {
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Independent => "independent",
            Estimator::Coupled => "coupled",
        }
    }
}

/// Checks `target`: weak_order only, rel_stderr > 0, 2 ≤ pilot_paths ≤ paths.
pub fn check_target(cfg: &Config, experiment: ExperimentKind) -> Result<(), ConfigError> {
    if let Some(t) = &cfg.target {
        if experiment != ExperimentKind::WeakOrder {
            return err("target", "only weak_order has a target precision");
        }
        if !(t.rel_stderr.is_finite() && t.rel_stderr > 0.0) {
            return err(
                "target.rel_stderr",
                format!("must be a finite number > 0, got {}", t.rel_stderr),
            );
        }
        if t.pilot_paths < 2 || t.pilot_paths > cfg.paths {
            return err(
                "target.pilot_paths",
                format!(
                    "must be in 2 … paths ({}), got {}",
                    cfg.paths, t.pilot_paths
                ),
            );
        }
    }
    Ok(())
}

/// The weak-error estimator: `coupled` needs weak_order or n_point, a model whose SGD
/// noise is linear in Gaussian data normals (`Capabilities::gaussian_linear_noise`) and
/// the em solver (the exact transitions draw their own increment per step). weak_order
/// uses it by default wherever it applies; n_point only when asked (it changes the SMF
/// runs' draws, so an earlier n_point config keeps its numbers).
pub(super) fn check_estimator(
    cfg: &Config,
    experiment: ExperimentKind,
    model: &AnyModel,
    solver: Solver,
) -> Result<Estimator, ConfigError> {
    let weak = experiment == ExperimentKind::WeakOrder;
    let pairs = weak || experiment == ExperimentKind::NPoint;
    let needs = Capability::GaussianLinearNoise;
    let supported = model.as_dyn().capabilities().has(needs);
    let em = matches!(solver, Solver::Substeps { .. });
    match cfg.estimator.as_deref() {
        None if weak && supported && em => Ok(Estimator::Coupled),
        None => Ok(Estimator::Independent),
        Some(_) if !pairs => err(
            "estimator",
            format!(
                "only weak_order and n_point have an estimator (this is {})",
                cfg.experiment
            ),
        ),
        Some("independent") => Ok(Estimator::Independent),
        Some("coupled") if !supported => err(
            "estimator",
            format!(
                "{}, which the coupled estimator needs; allowed here: independent",
                Capabilities::missing(model.name(), needs.describe())
            ),
        ),
        Some("coupled") if !em => err(
            "estimator",
            "coupled needs sde.solver em (the exact transitions draw their own increment per step); allowed with sde.solver exact: independent",
        ),
        Some("coupled") => Ok(Estimator::Coupled),
        Some(other) => err(
            "estimator",
            format!("unknown estimator {other:?}; allowed: coupled, independent"),
        ),
    }
}
