//! Config of the finite-data experiments (`least_squares_risk`, `implicit_bias_sweep`,
//! `gd_vs_gf`, and `weak_order` on a data set): one file format, validated into
//! `Setup`. Every error names the field.

use crate::config::names;
use crate::config::parse::{self, Overrides, MAX_PATHS};
use crate::config::{
    check_bound, check_precision, defaults, expect_family, steps, ConfigError, Experiment, Family,
    MAX_SUBSTEPS,
};
use crate::data::sampling::Sampling;
use crate::data::{DataConfig, DataSet};
use crate::dynamics::momentum::{check_momentum, MomentumConfig};
use crate::train::loss::Loss;
use crate::train::net::{DeepLinear, Param, ParamName};
use crate::train::{Dynamics, NAMES};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// linear (β = w), uv (β = u⊙v, u0 = √2α, v0 = 0), plus_minus (β = w₊² − w₋²,
    /// w±0 = α) or deep_linear (β = W_L ⋯ W_1, with `depth` and `width`).
    pub param: ParamName,
    /// deep_linear: the number of layers L (3 … 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// deep_linear: the hidden width h (1 … 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Initialisation scale α (ignored by `linear`, which starts at 0).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The per-sample loss: `squared` (regression, the default) or `logistic`
    /// (cross-entropy, labels 0/1).
    #[serde(default)]
    pub loss: Loss,
}

fn default_alpha() -> f64 {
    0.1
}
fn one() -> u32 {
    1
}
fn default_substeps() -> u32 {
    8
}
fn default_test() -> usize {
    1000
}
fn default_tol() -> f64 {
    1e-10
}
fn default_ratios() -> Vec<u32> {
    vec![2, 5, 10, 20]
}
fn replacement() -> Sampling {
    Sampling::Replacement
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub experiment: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(deserialize_with = "de_data")]
    pub data: DataConfig,
    pub model: NetConfig,
    pub dynamics: Vec<String>,
    /// `{"friction": γ}`: required by msgd / msme1 (DESIGN §3b), refused without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<MomentumConfig>,
    pub etas: Vec<f64>,
    #[serde(default = "one")]
    pub batch: u32,
    #[serde(default = "replacement")]
    pub sampling: Sampling,
    pub horizon: f64,
    /// Report times (multiples of every η), default: the horizon only.
    #[serde(default)]
    pub checkpoints: Vec<f64>,
    /// Replicas per (data set, random dynamics, η).
    pub paths: u64,
    /// Independent data sets (seeds data.seed, +1, …) averaged over.
    #[serde(default = "one")]
    pub datasets: u32,
    /// EM / RK4 substeps per step.
    #[serde(default = "default_substeps")]
    pub substeps: u32,
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// f32 or f64; unset: the GPU computes in f32, the CPU in f64 (the reference).
    #[serde(default)]
    pub precision: Option<String>,
    #[serde(default = "defaults::diverge_bound")]
    pub diverge_bound: f64,
    /// Fresh test samples for the test loss.
    #[serde(default = "default_test")]
    pub test_samples: usize,
    /// implicit_bias_sweep: GF runs until its train loss is at most this (or 64× the
    /// horizon).
    #[serde(default = "default_tol")]
    pub converge_tolerance: f64,
    /// gd_vs_gf: step-size ratios r (GD at η vs GD at η/r).
    #[serde(default = "default_ratios")]
    pub ratios: Vec<u32>,
    /// weak_order: the observables g(w) compared (`weak_order::OBSERVABLES`) [train_loss,
    /// beta_norm2].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observables: Vec<String>,
    /// weak_order, least_squares_risk, implicit_bias_sweep: Talay–Tubaro extrapolation
    /// of the SDEs, 2 g(fine) − g(coarse) per replica, on coupled levels of substeps/2
    /// and /4 (a solver-error estimate beside each value, flows' too; `levels`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extrapolate: bool,
}

/// `data` of `"source": "file"` (unknown keys rejected).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSource {
    path: String,
    #[serde(default)]
    teacher: Option<Vec<f64>>,
}

/// `data`: internally tagged by `source`, every error naming its field inside `data`.
fn de_data<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DataConfig, D::Error> {
    parse::tagged(d, "source", &["generate", "file"], |source, rest| {
        Ok(match source {
            "generate" => DataConfig::Generate(parse::section(rest, "")?),
            _ => {
                let f: FileSource = parse::section(rest, "")?;
                DataConfig::File {
                    path: f.path,
                    teacher: f.teacher,
                }
            }
        })
    })
}

/// Parses a finite-data config's JSON (the overrides applied first); every error
/// names its field.
pub fn parse(value: serde_json::Value, overrides: Overrides) -> Result<TrainConfig, ConfigError> {
    let experiment = expect_family(parse::experiment(&value)?.name(), Family::Training)?;
    refuse_unread(&value, TrainExperiment::of(experiment))?;
    overrides.parse(value)
}

/// Parses the config a run wrote into its outputs (`merge`): it lists every field with
/// its default, read by the experiment or not, so unread fields are not refused.
pub fn parse_echo(value: serde_json::Value) -> Result<TrainConfig, ConfigError> {
    expect_family(parse::experiment(&value)?.name(), Family::Training)?;
    Overrides::default().parse(value)
}

/// The optional fields an experiment does not read, refused where a config sets them
/// (a user who sets `batch` for gd_vs_gf expects it to matter; it would not).
fn refuse_unread(
    value: &serde_json::Value,
    experiment: TrainExperiment,
) -> Result<(), ConfigError> {
    let (name, unread): (&str, &[&str]) = match experiment {
        TrainExperiment::GdVsGf => (
            "gd_vs_gf (deterministic runs on the first data set)",
            &["batch", "sampling", "datasets", "converge_tolerance"],
        ),
        TrainExperiment::LeastSquaresRisk => (
            "least_squares_risk (one data set, its labels redrawn per replica)",
            &["ratios", "converge_tolerance", "datasets"],
        ),
        TrainExperiment::ImplicitBiasSweep => ("implicit_bias_sweep", &["ratios"]),
        TrainExperiment::WeakOrder => ("weak_order", &["ratios", "converge_tolerance"]),
    };
    match unread.iter().find(|f| value.get(**f).is_some()) {
        Some(f) => err(f, format!("not read by {name}: remove it")),
        None => Ok(()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainExperiment {
    LeastSquaresRisk,
    ImplicitBiasSweep,
    GdVsGf,
    /// `weak_order` with a data set.
    WeakOrder,
}

/// Largest `datasets` (each is generated and held in memory).
pub const MAX_DATASETS: u32 = 1 << 16;
/// Largest `test_samples` (as `data.n`).
pub const MAX_TEST_SAMPLES: usize = 1 << 24;

impl TrainExperiment {
    fn of(e: Experiment) -> Self {
        match e {
            Experiment::LeastSquaresRisk => Self::LeastSquaresRisk,
            Experiment::ImplicitBiasSweep => Self::ImplicitBiasSweep,
            Experiment::DataWeakOrder => Self::WeakOrder,
            _ => Self::GdVsGf,
        }
    }
}

/// A validated config with its data sets built.
#[derive(Clone, Debug)]
pub struct Setup {
    pub experiment: TrainExperiment,
    pub name: String,
    pub cfg: TrainConfig,
    pub dynamics: Vec<Dynamics>,
    /// Data sets 0 .. datasets (data seed + i).
    pub data: Vec<DataSet>,
    pub times: Vec<f64>,
    /// The config's precision; unset: GPU f32, CPU f64.
    pub precision: Option<crate::backend::Precision>,
    /// The parametrisation (`model.param`, with deep_linear's depth and width).
    pub param: Param,
    /// msgd / msme1's friction γ (`momentum.friction`; 0 when neither is listed).
    pub friction: f64,
    /// weak_order's observables (`weak_order::OBSERVABLES`; empty for the other experiments).
    pub observables: Vec<String>,
    pub echo: serde_json::Value,
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        field: field.into(),
        message: message.into(),
    })
}

/// Steps of time t at step η, if t is a whole number of steps.
pub fn whole_steps(t: f64, eta: f64) -> Option<u32> {
    let r = t / eta;
    (r >= -1e-9 && r <= u32::MAX as f64 && (r - r.round()).abs() <= 1e-9 * r.max(1.0))
        .then(|| steps(t, eta))
}

pub fn check(cfg: TrainConfig, name_hint: &str) -> Result<Setup, ConfigError> {
    let experiment = TrainExperiment::of(expect_family(&cfg.experiment, Family::Training)?);
    let echo = serde_json::to_value(&cfg).expect("config serialises");
    if !(cfg.model.alpha.is_finite() && cfg.model.alpha > 0.0) {
        return err(
            "model.alpha",
            format!("must be a finite number > 0, got {}", cfg.model.alpha),
        );
    }
    let param = check_param(&cfg.model, experiment)?;
    let dynamics = names(
        "dynamics",
        "dynamics",
        &cfg.dynamics,
        |s| Dynamics::parse(s).filter(|d| crate::train::SUPPORTED.contains(d)),
        &NAMES,
    )?;
    let friction = check_momentum(cfg.momentum.as_ref(), &dynamics)?;
    if experiment == TrainExperiment::GdVsGf {
        let flow = |d: &Dynamics| matches!(d, Dynamics::Gd | Dynamics::Gf | Dynamics::Mgf);
        if let Some(i) = dynamics.iter().position(|d| !flow(d)) {
            return err(
                &format!("dynamics[{i}]"),
                format!(
                    "gd_vs_gf runs gd, gf and mgf (allowed here: gd, gf, mgf), not {}: its runs \
                     are deterministic; the random dynamics (and msgd, msme1) run in \
                     implicit_bias_sweep, least_squares_risk and weak_order",
                    dynamics[i]
                ),
            );
        }
    }
    parse::check_schedule(&cfg.etas, cfg.horizon, &cfg.checkpoints, true)?;
    let mut times = cfg.checkpoints.clone();
    times.push(cfg.horizon);
    times.sort_by(f64::total_cmp);
    times.dedup();
    let mut all_etas = cfg.etas.clone();
    if experiment == TrainExperiment::GdVsGf {
        if cfg.ratios.is_empty() {
            return err("ratios", "must list at least one step-size ratio ≥ 1");
        }
        if let Some(j) = cfg.ratios.iter().position(|r| *r == 0) {
            return err(
                &format!("ratios[{j}]"),
                "must be a whole number ≥ 1 (allowed: 1 … 4294967295), got 0",
            );
        }
        for e in &cfg.etas {
            all_etas.extend(cfg.ratios.iter().map(|r| e / *r as f64));
        }
    }
    for (i, eta) in all_etas.iter().enumerate() {
        let field = if i < cfg.etas.len() {
            format!("etas[{i}]")
        } else {
            let j = (i - cfg.etas.len()) % cfg.ratios.len();
            format!("ratios[{j}]")
        };
        parse::step_limit(&field, cfg.horizon, *eta)?;
        for t in &times {
            if whole_steps(*t, *eta).is_none() {
                let which = if i < cfg.etas.len() {
                    format!("etas[{i}]")
                } else {
                    "ratios".into()
                };
                return err(
                    &which,
                    format!("time {t} is not a whole number of steps of η = {eta} (T/η must be an integer)"),
                );
            }
        }
        if whole_steps(cfg.horizon, *eta).unwrap_or(0) as u64 * cfg.batch as u64 >= 1 << 32 {
            return err("horizon", "horizon/η × batch must stay below 2^32 draws");
        }
    }
    if cfg.batch == 0 {
        return err("batch", "must be ≥ 1 (allowed: 1 … N samples)");
    }
    if cfg.paths == 0 || cfg.paths > MAX_PATHS {
        return err(
            "paths",
            format!("must be in 1 … {MAX_PATHS}, got {}", cfg.paths),
        );
    }
    // A standard error over replicas needs two of them: every least_squares_risk
    // replica draws its own labels; implicit_bias_sweep's random dynamics likewise.
    let random = matches!(
        experiment,
        TrainExperiment::LeastSquaresRisk | TrainExperiment::WeakOrder
    ) || (experiment == TrainExperiment::ImplicitBiasSweep
        && dynamics.iter().any(|d| d.is_random()));
    if random && cfg.paths < 2 {
        return err(
            "paths",
            format!(
                "must be ≥ 2 for {} with random runs (a standard error needs two replicas), got {}",
                cfg.experiment, cfg.paths
            ),
        );
    }
    if cfg.datasets == 0 || cfg.datasets > MAX_DATASETS {
        return err(
            "datasets",
            format!("must be in 1 … {MAX_DATASETS}, got {}", cfg.datasets),
        );
    }
    if cfg.substeps == 0 || cfg.substeps > MAX_SUBSTEPS {
        return err(
            "substeps",
            format!("must be in 1 … {MAX_SUBSTEPS}, got {}", cfg.substeps),
        );
    }
    if cfg.test_samples == 0 || cfg.test_samples > MAX_TEST_SAMPLES {
        return err(
            "test_samples",
            format!(
                "must be in 1 … {MAX_TEST_SAMPLES}, got {}",
                cfg.test_samples
            ),
        );
    }
    check_bound(cfg.diverge_bound)?;
    if !(cfg.converge_tolerance.is_finite() && cfg.converge_tolerance > 0.0) {
        return err(
            "converge_tolerance",
            format!(
                "must be a finite number > 0 (a train loss), got {}",
                cfg.converge_tolerance
            ),
        );
    }
    let precision = check_precision(cfg.precision.as_deref())?;
    if let DataConfig::Generate(g) = &cfg.data {
        // Every data set is generated up front and held: features, labels, clean labels.
        let bytes = cfg.datasets as f64 * g.n as f64 * (g.d as f64 + 2.0) * 8.0;
        let what = format!("{} data set(s) of N = {} × d = {}", cfg.datasets, g.n, g.d);
        // Blame `datasets` only where one data set would fit.
        let one = g.n as f64 * (g.d as f64 + 2.0) * 8.0;
        let field = if cfg.datasets > 1 && one <= crate::experiment::budget::host_budget() {
            "datasets"
        } else {
            "data.n"
        };
        crate::experiment::budget::check_bytes(field, bytes, &what)?;
    }
    let mut data = Vec::new();
    for i in 0..cfg.datasets {
        let dc = match &cfg.data {
            DataConfig::Generate(g) => {
                let mut g = g.clone();
                g.seed = Some(g.seed.unwrap_or(cfg.seed).wrapping_add(i as u64));
                DataConfig::Generate(g)
            }
            DataConfig::File { .. } if cfg.datasets > 1 => {
                return err(
                    "datasets",
                    "a data file gives one data set: use datasets = 1",
                )
            }
            other => other.clone(),
        };
        data.push(dc.build("data", cfg.seed)?);
    }
    check_loss(&cfg, experiment, param, &dynamics, &data)?;
    let ds = &data[0];
    if cfg.batch as usize > ds.n {
        return err("batch", format!("must be ≤ N = {} samples", ds.n));
    }
    let needs_teacher = matches!(
        experiment,
        TrainExperiment::LeastSquaresRisk | TrainExperiment::ImplicitBiasSweep
    );
    if needs_teacher && ds.teacher.is_none() {
        return err(
            "data.teacher",
            "this experiment needs the teacher β* (generate the data, or give data.teacher)",
        );
    }
    let observables = super::weak_order::check(&cfg, experiment, &dynamics, ds)?;
    if experiment == TrainExperiment::LeastSquaresRisk && ds.y_clean.is_none() {
        return err(
            "data.source",
            "least_squares_risk resamples label noise: use a generated data set",
        );
    }
    let name = cfg.name.clone().unwrap_or_else(|| name_hint.to_string());
    Ok(Setup {
        experiment,
        name,
        dynamics,
        data,
        times,
        precision,
        param,
        friction,
        observables,
        echo,
        cfg,
    })
}

/// `model.param` (with `depth` / `width` for deep_linear) against the experiment:
/// least_squares_risk's closed forms are linear regression's; deep_linear is for
/// gd_vs_gf (seed 004).
fn check_param(m: &NetConfig, experiment: TrainExperiment) -> Result<Param, ConfigError> {
    if m.param != ParamName::DeepLinear {
        for (field, v) in [("model.depth", m.depth), ("model.width", m.width)] {
            if v.is_some() {
                return err(field, "only for model.param deep_linear");
            }
        }
    }
    let param = match m.param {
        ParamName::Linear => Param::Linear,
        ParamName::Uv => Param::Uv,
        ParamName::PlusMinus => Param::PlusMinus,
        ParamName::DeepLinear => {
            let (lo, hi) = (DeepLinear::MIN_DEPTH, DeepLinear::MAX_DEPTH);
            let depth = m.depth.ok_or_else(|| ConfigError {
                field: "model.depth".into(),
                message: format!("missing: deep_linear needs the number of layers L ({lo} … {hi})"),
            })?;
            if !(lo..=hi).contains(&depth) {
                return err("model.depth", format!("must be {lo} … {hi}, got {depth}"));
            }
            let max_w = DeepLinear::MAX_WIDTH;
            let width = m.width.ok_or_else(|| ConfigError {
                field: "model.width".into(),
                message: format!("missing: deep_linear needs the hidden width h (1 … {max_w})"),
            })?;
            if !(1..=max_w).contains(&width) {
                return err("model.width", format!("must be 1 … {max_w}, got {width}"));
            }
            Param::DeepLinear(DeepLinear { depth, width })
        }
    };
    if experiment == TrainExperiment::LeastSquaresRisk && param != Param::Linear {
        return err("model.param", "least_squares_risk needs \"linear\"");
    }
    if matches!(param, Param::DeepLinear(_))
        && !matches!(
            experiment,
            TrainExperiment::GdVsGf | TrainExperiment::WeakOrder
        )
    {
        return err(
            "model.param",
            "deep_linear is for experiments gd_vs_gf and weak_order; allowed here: linear, uv, plus_minus",
        );
    }
    Ok(param)
}

/// What the loss asks of the rest of the config: the closed forms of least_squares_risk
/// and implicit_bias_sweep and the SGF's noise are the squared loss's; the logistic
/// loss needs labels 0 or 1.
fn check_loss(
    cfg: &TrainConfig,
    experiment: TrainExperiment,
    param: Param,
    dynamics: &[Dynamics],
    data: &[DataSet],
) -> Result<(), ConfigError> {
    let loss = cfg.model.loss;
    if loss == Loss::Squared {
        return Ok(());
    }
    if !matches!(
        experiment,
        TrainExperiment::GdVsGf | TrainExperiment::WeakOrder
    ) {
        return err(
            "model.loss",
            format!(
                "{} is for the squared loss (its closed forms are least squares'); the {} loss \
                 runs in gd_vs_gf and weak_order (allowed here: \"squared\")",
                cfg.experiment,
                loss.name()
            ),
        );
    }
    let (name, caps) = (
        crate::train::model_name(param, loss),
        crate::train::capabilities(loss),
    );
    crate::model::capability::check(&name, caps, dynamics)?;
    for (k, ds) in data.iter().enumerate() {
        if let Some(i) = ds.y.iter().position(|y| !loss.accepts(*y)) {
            let which = if data.len() > 1 {
                format!(" (data set {k})")
            } else {
                String::new()
            };
            return err(
                "data",
                format!(
                    "the {} loss needs labels 0 or 1; sample {i}{which} has y = {} (generate \
                     them with \"labels\": \"logistic\")",
                    loss.name(),
                    ds.y[i]
                ),
            );
        }
    }
    Ok(())
}
