//! The config of the small-d experiments (`weak_order`, `n_point`, `invariant`): one
//! serde schema (unknown fields rejected) and its validation into [`Checked`]. Every
//! error names the field and what is allowed; nothing downstream re-checks input. The
//! envelope (`experiment` → schema) and the shared parsing are `crate::config`'s.

use crate::config::names;
use crate::config::{
    check_bound, check_precision, defaults, err, expect_family, parse, ConfigError, Experiment,
    Family, MAX_SUBSTEPS,
};
use crate::dynamics::momentum::{check_momentum, MomentumConfig};
use crate::dynamics::{Dynamics, Kind, Solver};
use crate::experiment::invariant::InvariantConfig;
use crate::model::config::{check_model, ModelConfig};
use crate::model::{AnyModel, Capabilities, Capability, Vector};
use crate::observables::Observable;
use serde::{Deserialize, Serialize};

pub mod estimator;

use estimator::check_estimator;
pub use estimator::{check_target, Estimator, TargetConfig};

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
fn default_true() -> bool {
    true
}
fn default_solver() -> String {
    "em".into()
}
fn default_batch() -> u32 {
    1
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
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// "f32" or "f64"; unset: the GPU in f32, the CPU in f64 (the reference).
    #[serde(default)]
    pub precision: Option<String>,
    /// A path is counted as diverged once |coordinate| exceeds this (or is non-finite).
    #[serde(default = "defaults::diverge_bound")]
    pub diverge_bound: f64,
    /// Histogram settings (experiment invariant only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invariant: Option<InvariantConfig>,
    /// Weak-error estimator (weak_order and n_point): "coupled" (weak_order's default
    /// where the model's SGD noise is linear in Gaussian data normals and the SDE solver
    /// is em; n_point's SMF runs paired with SGD) or "independent" (n_point's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimator: Option<String>,
    /// Target precision (weak_order only): paths per η from a pilot run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetConfig>,
    /// Heavy-ball friction γ (needed by msgd / msme1, DESIGN §3b).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<MomentumConfig>,
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
    /// Estimator (weak_order, n_point; `Independent` elsewhere).
    pub estimator: Estimator,
    /// Target precision (weak_order): see `experiment::target`.
    pub target: Option<TargetConfig>,
    /// Friction γ of msgd / msme1 (0 when the config lists neither).
    pub friction: f64,
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
    expect_family(parse::experiment(&value)?.name(), Family::SmallD)?;
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

pub fn check(cfg: Config, name_hint: &str) -> Result<Checked, ConfigError> {
    let mut echo = serde_json::to_value(&cfg).expect("config serialises");
    echo["name"] =
        serde_json::Value::String(cfg.name.clone().unwrap_or_else(|| name_hint.to_string()));
    let experiment = match expect_family(&cfg.experiment, Family::SmallD)? {
        Experiment::WeakOrder => ExperimentKind::WeakOrder,
        Experiment::NPoint => ExperimentKind::NPoint,
        _ => ExperimentKind::Invariant,
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

    let dynamics = names(
        "dynamics",
        "dynamics",
        &cfg.dynamics,
        |s| Dynamics::parse(s).filter(|d| crate::dynamics::SMALL_D.contains(d)),
        &crate::dynamics::NAMES,
    )?;
    let caps = model.as_dyn().capabilities();
    crate::model::capability::check(model.name(), caps, &dynamics)?;
    if cfg.batch == 0 {
        return err("batch", "must be ≥ 1 (allowed: 1 … 4294967295)");
    }
    // Each CPU worker holds a step's data normals for a lane group (≤ 16 replicas), and
    // as much again for a coupled run's SGD partner.
    let step_normals = cfg.batch as f64 * model.as_dyn().data_normals() as f64;
    super::budget::check_bytes(
        "batch",
        step_normals * 16.0 * 8.0 * 2.0 * super::budget::workers(),
        &format!("batch {}: the CPU workers' normals of one step", cfg.batch),
    )?;
    parse::check_schedule(&cfg.etas, cfg.horizon, &cfg.checkpoints, false)?;
    let mut times = cfg.checkpoints.clone();
    times.push(cfg.horizon);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times.dedup_by(|a, b| (*a - *b).abs() <= 1e-12 * b.abs());

    let observables: Vec<Observable> = match experiment {
        ExperimentKind::WeakOrder => names(
            "observables",
            "observable",
            &cfg.observables,
            Observable::parse,
            &crate::observables::NAMES,
        )?,
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
    if let Some(inv) = &invariant {
        if inv.batches as u64 > cfg.paths {
            return err(
                "invariant.batches",
                format!(
                    "must be at most paths = {} (each batch holds whole paths), got {}",
                    cfg.paths, inv.batches
                ),
            );
        }
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
        "exact" if !caps.has(Capability::ExactTransition) => {
            let why = Capabilities::missing(model.name(), Capability::ExactTransition.describe());
            return err("sde.solver", format!("{why}; allowed: em"));
        }
        "exact" => {
            // Every SDE of the list is solved exactly: each needs its own transition
            // (msme1's is of the pair (X, P)).
            let sde = |d: &&Dynamics| d.kind() == Kind::Sde;
            if let Some(d) = dynamics
                .iter()
                .filter(sde)
                .find(|d| !caps.has(d.exact_needs()))
            {
                let why = Capabilities::missing(model.name(), d.exact_needs().describe());
                return err("sde.solver", format!("{why}, which {d} needs; allowed: em"));
            }
            // `sde.substeps` still sets the flows' RK4 substeps (gf, mgf).
            let s = cfg.sde.substeps;
            if s == 0 || s > MAX_SUBSTEPS {
                return err(
                    "sde.substeps",
                    format!("must be in 1 … {MAX_SUBSTEPS} (RK4 substeps of gf / mgf), got {s}"),
                );
            }
            Solver::Exact
        }
        other => {
            return err(
                "sde.solver",
                format!("unknown solver {other:?}; allowed: em, exact"),
            )
        }
    };
    // gf/mgf always use RK4 on two coupled levels (fine and half as many substeps).
    let ode_substeps = (cfg.sde.substeps.max(2) + 1) / 2 * 2;
    let precision = check_precision(cfg.precision.as_deref())?;
    check_bound(cfg.diverge_bound)?;
    let estimator = check_estimator(&cfg, experiment, &model, solver)?;
    // n_point couples SMF with SGD only (`experiment::coupling`): asked for with nothing
    // to pair, it would run as independent without a word.
    let pairable = dynamics.contains(&Dynamics::Sgd) && dynamics.iter().any(|d| d.shared_noise());
    if experiment == ExperimentKind::NPoint && estimator == Estimator::Coupled && !pairable {
        return err(
            "estimator",
            "n_point's coupled estimator pairs smf1 and smf2 runs with sgd (sme and msme1 \
             particles have independent noises, which a pinned noise cannot reproduce): list \
             sgd and smf1 or smf2 in dynamics, or use independent",
        );
    }
    check_target(&cfg, experiment)?;
    if cfg.target.is_some() && crate::experiment::weak_order::pairs(&dynamics).is_empty() {
        return err(
            "target",
            "a target precision sizes the paths of weak errors, and these dynamics give none: \
             list a reference and a dynamics compared with it (sgd with sme1, sme2, smf1, \
             smf2, gf or mgf; msgd with msme1)",
        );
    }
    let friction = check_momentum(cfg.momentum.as_ref(), &dynamics)?;
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
        friction,
        echo,
    })
}
