//! Config files: serde types (unknown fields rejected) and their validation into typed,
//! checked values. Every error names the field and what is allowed; nothing downstream
//! re-checks input.

use crate::dynamics::{Dynamics, Solver};
use crate::model::{AnyModel, Vector};
use crate::observables::Observable;
use serde::{Deserialize, Serialize};
use std::fmt;

pub mod estimator;
pub mod model;
pub mod parse;

use estimator::check_estimator;
pub use estimator::{check_target, Estimator, TargetConfig};

use model::check_model;
pub use model::{ModelConfig, MultiplicativeConfig, QuadraticConfig, ToySgdConfig};

/// A bad-input error: exit code 2, one line naming the field.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        field: field.into(),
        message: message.into(),
    })
}

/// Histogram settings of the `invariant` experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvariantConfig {
    /// Bins of each histogram (x in 1-D; angle φ and radius r in 2-D).
    pub bins: u32,
    /// [lo, hi] of the x histogram (1-D) or of the r histogram (2-D).
    pub range: [f64; 2],
    /// Path batches for the Monte Carlo error of the TV distances (jackknife).
    #[serde(default = "default_inv_batches")]
    pub batches: u32,
}

fn default_inv_batches() -> u32 {
    20
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdeConfig {
    /// Euler–Maruyama substeps per SGD step (also RK4 substeps for gf/mgf).
    #[serde(default = "default_substeps")]
    pub substeps: u32,
    /// Talay–Tubaro extrapolation on coupled increments.
    #[serde(default = "default_true")]
    pub extrapolate: bool,
    /// "em" (Euler–Maruyama) or "exact" (OU / geometric BM transition).
    #[serde(default = "default_solver")]
    pub solver: String,
}

impl Default for SdeConfig {
    fn default() -> Self {
        Self {
            substeps: default_substeps(),
            extrapolate: true,
            solver: default_solver(),
        }
    }
}

fn default_substeps() -> u32 {
    16
}
/// Largest `sde.substeps` (and substeps of the other experiments).
pub const MAX_SUBSTEPS: u32 = 4096;
fn default_true() -> bool {
    true
}
fn default_solver() -> String {
    "em".into()
}
fn default_batch() -> u32 {
    1
}
fn default_seed() -> u64 {
    1
}
fn default_bound() -> f64 {
    1e6
}

/// The file format shared by `weak_order` and `n_point`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub experiment: String,
    #[serde(default)]
    pub name: Option<String>,
    pub model: ModelConfig,
    /// Initial point (weak_order).
    #[serde(default)]
    pub x0: Option<Vec<f64>>,
    /// Initial points of the particles of one replica (n_point).
    #[serde(default)]
    pub particles: Option<Vec<Vec<f64>>>,
    pub dynamics: Vec<String>,
    #[serde(default = "default_batch")]
    pub batch: u32,
    pub etas: Vec<f64>,
    pub horizon: f64,
    #[serde(default)]
    pub checkpoints: Vec<f64>,
    #[serde(default)]
    pub observables: Vec<String>,
    pub paths: u64,
    #[serde(default)]
    pub sde: SdeConfig,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// "f32" or "f64"; unset: the GPU in f32, the CPU in f64 (the reference).
    #[serde(default)]
    pub precision: Option<String>,
    /// A path is counted as diverged once |coordinate| exceeds this (or is non-finite).
    #[serde(default = "default_bound")]
    pub diverge_bound: f64,
    /// Histogram settings (experiment invariant only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invariant: Option<InvariantConfig>,
    /// Weak-error estimator (weak_order only): "coupled" (default where the model's SGD
    /// noise is linear in Gaussian data normals and the SDE solver is em) or
    /// "independent".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimator: Option<String>,
    /// Target precision (weak_order only): paths per η from a pilot run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExperimentKind {
    WeakOrder,
    NPoint,
    Invariant,
}

/// A validated config.
#[derive(Clone, Debug)]
pub struct Checked {
    pub experiment: ExperimentKind,
    pub name: String,
    pub model: AnyModel,
    pub x0: Vec<Vector>,
    pub dynamics: Vec<Dynamics>,
    pub batch: u32,
    pub etas: Vec<f64>,
    pub horizon: f64,
    /// Checkpoint times, ascending, ending at the horizon.
    pub times: Vec<f64>,
    pub observables: Vec<Observable>,
    pub paths: u64,
    pub solver: Solver,
    /// RK4 substeps per step for gf/mgf (even).
    pub ode_substeps: u32,
    pub seed: u64,
    /// The config's precision, if it names one (unset: GPU f32, CPU f64; `cli::make_backend`).
    pub precision: Option<crate::backend::Precision>,
    pub bound: f64,
    /// Histogram settings (experiment invariant).
    pub invariant: Option<InvariantConfig>,
    /// Weak-error estimator (weak_order; `Independent` elsewhere).
    pub estimator: Estimator,
    /// Target precision (weak_order): see `experiment::target`.
    pub target: Option<TargetConfig>,
    /// The config as parsed, defaults filled in (echoed into results.json).
    pub echo: serde_json::Value,
}

/// Parses config text without validating it (syntax first, then `experiment`, then
/// this format; every error names its field).
pub fn parse_raw(text: &str) -> Result<Config, ConfigError> {
    let value = parse::json(text)?;
    parse_value(value, parse::Overrides::default())
}

/// Parses a config's JSON (one of `weak_order`, `n_point`, `invariant`) with command-line
/// overrides applied first.
pub fn parse_value(value: serde_json::Value, o: parse::Overrides) -> Result<Config, ConfigError> {
    let kind = parse::experiment(&value)?;
    if !["weak_order", "n_point", "invariant"].contains(&kind) {
        return err(
            "experiment",
            format!("{kind:?} is not read by this parser (allowed here: weak_order, n_point, invariant)"),
        );
    }
    o.parse(value)
}

/// Parses and validates config text.
pub fn parse(text: &str, name_hint: &str) -> Result<Checked, ConfigError> {
    check(parse_raw(text)?, name_hint)
}

/// Parses and validates a `weak_order` / `n_point` / `invariant` config's JSON, the
/// command-line overrides applied first (errors about them name the option).
pub fn load(
    value: serde_json::Value,
    name_hint: &str,
    overrides: parse::Overrides,
) -> Result<Checked, ConfigError> {
    let cfg = parse_value(value, overrides)?;
    check(cfg, name_hint).map_err(|e| overrides.blame(e))
}

fn is_integer_ratio(t: f64, eta: f64) -> bool {
    let r = t / eta;
    r >= 1.0 - 1e-9 && (r - r.round()).abs() <= 1e-9 * r.max(1.0)
}

/// Steps k = t/η for a checked (t, η): every checker refuses t/η > u32::MAX
/// ([`parse::step_limit`]).
pub fn steps(t: f64, eta: f64) -> u32 {
    let r = (t / eta).round();
    debug_assert!(r <= u32::MAX as f64, "unchecked step count {t}/{eta}");
    r as u32
}

pub fn check(cfg: Config, name_hint: &str) -> Result<Checked, ConfigError> {
    let mut echo = serde_json::to_value(&cfg).expect("config serialises");
    echo["name"] =
        serde_json::Value::String(cfg.name.clone().unwrap_or_else(|| name_hint.to_string()));
    let experiment = match cfg.experiment.as_str() {
        "weak_order" => ExperimentKind::WeakOrder,
        "n_point" => ExperimentKind::NPoint,
        "invariant" => ExperimentKind::Invariant,
        other => {
            return err(
                "experiment",
                format!(
                    "unknown experiment {other:?} (allowed: {})",
                    parse::EXPERIMENTS.join(", ")
                ),
            )
        }
    };
    let points: Vec<Vec<f64>> = match experiment {
        ExperimentKind::WeakOrder | ExperimentKind::Invariant => {
            if cfg.particles.is_some() {
                return err(
                    "particles",
                    "only for experiment n_point; weak_order and invariant take x0",
                );
            }
            vec![cfg.x0.clone().ok_or(ConfigError {
                field: "x0".into(),
                message: "missing (initial point, a list of d numbers)".into(),
            })?]
        }
        ExperimentKind::NPoint => {
            if cfg.x0.is_some() {
                return err(
                    "x0",
                    "n_point takes particles (a list of initial points), not x0",
                );
            }
            let p = cfg.particles.clone().ok_or(ConfigError {
                field: "particles".into(),
                message: "missing (a list of 2 to 8 initial points)".into(),
            })?;
            if !(2..=crate::dynamics::path::MAX_P).contains(&p.len()) {
                return err(
                    "particles",
                    format!(
                        "must list 2 to {} initial points, got {}",
                        crate::dynamics::path::MAX_P,
                        p.len()
                    ),
                );
            }
            if p.iter().any(|x| x.len() != p[0].len()) {
                return err("particles", "all initial points must have the same length");
            }
            p
        }
    };
    let x0_field = if experiment == ExperimentKind::NPoint {
        "particles"
    } else {
        "x0"
    };
    if points.iter().flatten().any(|v| !v.is_finite()) {
        return err(x0_field, "entries must be finite numbers");
    }
    let model = check_model(&cfg.model, points[0].len()).map_err(|mut e| {
        if e.field == "x0" {
            e.field = x0_field.into();
        }
        e
    })?;
    let x0: Vec<Vector> = points.iter().map(|p| crate::model::vector(p)).collect();

    if cfg.dynamics.is_empty() {
        return err(
            "dynamics",
            format!(
                "must list at least one of: {}",
                crate::dynamics::NAMES.join(", ")
            ),
        );
    }
    let mut dynamics = Vec::new();
    for (i, s) in cfg.dynamics.iter().enumerate() {
        let d = Dynamics::parse(s).ok_or(ConfigError {
            field: format!("dynamics[{i}]"),
            message: format!(
                "unknown dynamics {s:?}; allowed: {}",
                crate::dynamics::NAMES.join(", ")
            ),
        })?;
        if dynamics.contains(&d) {
            return err(format!("dynamics[{i}]"), format!("{s:?} is listed twice"));
        }
        dynamics.push(d);
    }
    if cfg.batch == 0 {
        return err("batch", "must be ≥ 1 (allowed: 1 … 4294967295)");
    }
    if cfg.etas.is_empty() {
        return err("etas", "must list at least one step size");
    }
    if !(cfg.horizon.is_finite() && cfg.horizon > 0.0) {
        return err(
            "horizon",
            format!("must be a finite number > 0, got {}", cfg.horizon),
        );
    }
    for (i, &eta) in cfg.etas.iter().enumerate() {
        if !(eta.is_finite() && eta > 0.0) {
            return err(
                format!("etas[{i}]"),
                format!("must be a finite number > 0 (a step size), got {eta}"),
            );
        }
        parse::step_limit(&format!("etas[{i}]"), cfg.horizon, eta)?;
        if !is_integer_ratio(cfg.horizon, eta) {
            return err(
                format!("etas[{i}]"),
                format!(
                    "horizon/η must be a whole number of steps; {}/{eta} = {}",
                    cfg.horizon,
                    cfg.horizon / eta
                ),
            );
        }
        if cfg.etas[..i].contains(&eta) {
            return err(format!("etas[{i}]"), format!("{eta} is listed twice"));
        }
    }
    let mut times = Vec::new();
    for (i, &t) in cfg.checkpoints.iter().enumerate() {
        if !(t.is_finite() && t > 0.0 && t <= cfg.horizon) {
            return err(
                format!("checkpoints[{i}]"),
                format!("must be a time in (0, horizon = {}], got {t}", cfg.horizon),
            );
        }
        if let Some(eta) = cfg.etas.iter().find(|&&eta| !is_integer_ratio(t, eta)) {
            return err(
                format!("checkpoints[{i}]"),
                format!("t/η must be a whole number of steps for every η; {t}/{eta} is not"),
            );
        }
        times.push(t);
    }
    times.push(cfg.horizon);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times.dedup_by(|a, b| (*a - *b).abs() <= 1e-12 * b.abs());

    let observables: Vec<Observable> = match experiment {
        ExperimentKind::WeakOrder => {
            if cfg.observables.is_empty() {
                return err(
                    "observables",
                    format!(
                        "must list at least one of: {}",
                        crate::observables::NAMES.join(", ")
                    ),
                );
            }
            let mut v = Vec::new();
            for (i, s) in cfg.observables.iter().enumerate() {
                let o = Observable::parse(s).ok_or(ConfigError {
                    field: format!("observables[{i}]"),
                    message: format!(
                        "unknown observable {s:?}; allowed: {}",
                        crate::observables::NAMES.join(", ")
                    ),
                })?;
                if v.contains(&o) {
                    return err(
                        format!("observables[{i}]"),
                        format!("{s:?} is listed twice"),
                    );
                }
                v.push(o);
            }
            v
        }
        ExperimentKind::NPoint => {
            if !cfg.observables.is_empty() {
                return err(
                    "observables",
                    "n_point records fixed joint observables; leave observables out",
                );
            }
            crate::experiment::n_point::observables(x0.len())
        }
        ExperimentKind::Invariant => {
            if !cfg.observables.is_empty() {
                return err(
                    "observables",
                    "invariant histograms the final state; leave observables out",
                );
            }
            // Not reported; the kernels need at least one observable.
            vec![Observable::Loss(0)]
        }
    };
    let invariant = crate::experiment::invariant::check_config(
        experiment,
        cfg.invariant.as_ref(),
        &model,
        &dynamics,
        &cfg.checkpoints,
    )?;
    if cfg.paths == 0 || cfg.paths > parse::MAX_PATHS {
        return err(
            "paths",
            format!(
                "must be in 1 … {} (the replica index is a 32-bit Philox counter word), got {}",
                parse::MAX_PATHS,
                cfg.paths
            ),
        );
    }
    let solver = match cfg.sde.solver.as_str() {
        "em" => {
            let s = cfg.sde.substeps;
            let need = if cfg.sde.extrapolate { 4 } else { 2 };
            if s > MAX_SUBSTEPS {
                return err(
                    "sde.substeps",
                    format!("must be at most {MAX_SUBSTEPS}, got {s}"),
                );
            }
            if s < need || s % need != 0 {
                return err(
                    "sde.substeps",
                    format!(
                        "must be a positive multiple of {need} (coupled coarse levels{}), got {s}",
                        if need == 4 {
                            " for Talay–Tubaro extrapolation"
                        } else {
                            ""
                        }
                    ),
                );
            }
            Solver::Substeps {
                substeps: s,
                extrapolate: cfg.sde.extrapolate,
            }
        }
        "exact" if matches!(model, AnyModel::ToySgd(_)) => {
            return err("sde.solver", "toy_sgd has no exact transition; allowed: em")
        }
        "exact" => Solver::Exact,
        other => {
            return err(
                "sde.solver",
                format!("unknown solver {other:?}; allowed: em, exact"),
            )
        }
    };
    // gf/mgf always use RK4 on two coupled levels (fine and half as many substeps).
    let ode_substeps = (cfg.sde.substeps.max(2) + 1) / 2 * 2;
    let precision = match cfg.precision.as_deref() {
        None => None,
        Some("f32") => Some(crate::backend::Precision::F32),
        Some("f64") => Some(crate::backend::Precision::F64),
        Some(other) => {
            return err(
                "precision",
                format!("unknown precision {other:?}; allowed: f32, f64"),
            )
        }
    };
    if !(cfg.diverge_bound.is_finite() && cfg.diverge_bound > 0.0) {
        return err(
            "diverge_bound",
            format!("must be a finite number > 0, got {}", cfg.diverge_bound),
        );
    }
    let estimator = check_estimator(&cfg, experiment, &model, solver)?;
    check_target(&cfg, experiment)?;
    if experiment == ExperimentKind::WeakOrder {
        echo["estimator"] = serde_json::Value::String(estimator.name().into());
    }
    Ok(Checked {
        experiment,
        name: cfg.name.clone().unwrap_or_else(|| name_hint.to_string()),
        model,
        x0,
        dynamics,
        batch: cfg.batch,
        etas: cfg.etas.clone(),
        horizon: cfg.horizon,
        times,
        observables,
        paths: cfg.paths,
        solver,
        ode_substeps,
        seed: cfg.seed,
        precision,
        bound: cfg.diverge_bound,
        invariant,
        estimator,
        target: cfg.target,
        echo,
    })
}
