//! Config of the `width_sweep` experiment, validated into `Sweep`. Every error names
//! the field and what is allowed.

use crate::config::names;
use crate::config::parse::{self, Overrides, MAX_PATHS};
use crate::config::{
    check_bound, check_precision, defaults, expect_family, ConfigError, Experiment, Family,
    MAX_SUBSTEPS,
};
use crate::data::sampling::Sampling;
use crate::data::DataSet;
use crate::dynamics::momentum::{check_momentum, MomentumConfig};
use crate::experiment::training::config::whole_steps;
use crate::meanfield::model::{
    capabilities, gaussian_set, linear_population, model_name, Activation, Init, Teacher, TestFn,
    ACTIVATIONS, TAG_FEATURES, TAG_TEST, TEST_FNS,
};
use crate::meanfield::{Dynamics, DYNAMICS, SUPPORTED};
use crate::model::{capability, Capability};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Largest width accepted (neurons per replica).
pub const MAX_WIDTH: usize = 1 << 22;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    /// Generated teacher: m neurons, a*_j ~ N(0, a_scale²), w*_j uniform on the sphere.
    #[serde(default)]
    pub neurons: Option<usize>,
    #[serde(default = "one")]
    pub a_scale: f64,
    /// Seed of a generated teacher (default: the run's seed).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Given teacher: output weights a*_j …
    #[serde(default)]
    pub a: Option<Vec<f64>>,
    /// … and input weights w*_j (m rows of d).
    #[serde(default)]
    pub w: Option<Vec<Vec<f64>>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoLayerConfig {
    /// Must be "two_layer".
    pub kind: String,
    /// tanh, relu, sigmoid or linear.
    pub activation: String,
    /// Input dimension d.
    pub d: usize,
    pub teacher: TeacherConfig,
    #[serde(default)]
    pub init: Init,
}

/// Where the inputs θ come from.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum InputConfig {
    /// θ ~ N(0, I_d) afresh at every draw (population SGD), labels f*(θ) + σε.
    Stream {
        #[serde(default)]
        label_noise: f64,
    },
    /// A finite data set: N inputs θ_i ~ N(0, I_d), labels f*(θ_i) + σε_i.
    Set {
        n: usize,
        #[serde(default)]
        label_noise: f64,
        /// Default: the run's seed.
        #[serde(default)]
        seed: Option<u64>,
    },
}

/// The variants of [`InputConfig`] as plain structs (so errors inside keep their path).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamFields {
    #[serde(default)]
    label_noise: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFields {
    n: usize,
    #[serde(default)]
    label_noise: f64,
    #[serde(default)]
    seed: Option<u64>,
}

impl<'de> Deserialize<'de> for InputConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse::tagged(d, "kind", &["stream", "set"], |kind, rest| {
            Ok(match kind {
                "stream" => {
                    let f: StreamFields = parse::section(rest, "")?;
                    InputConfig::Stream {
                        label_noise: f.label_noise,
                    }
                }
                _ => {
                    let f: SetFields = parse::section(rest, "")?;
                    InputConfig::Set {
                        n: f.n,
                        label_noise: f.label_noise,
                        seed: f.seed,
                    }
                }
            })
        })
    }
}

/// Parses a `width_sweep` config's JSON (the overrides applied first); every error
/// names its field.
pub fn parse(
    value: serde_json::Value,
    overrides: Overrides,
) -> Result<WidthSweepConfig, ConfigError> {
    expect_family(parse::experiment(&value)?.name(), Family::WidthSweep)?;
    overrides.parse(value)
}

fn one() -> f64 {
    1.0
}
fn one_u32() -> u32 {
    1
}
fn default_substeps() -> u32 {
    4
}
fn default_test() -> usize {
    1024
}
fn default_phi() -> String {
    "a_w1".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidthSweepConfig {
    pub experiment: String,
    #[serde(default)]
    pub name: Option<String>,
    pub model: TwoLayerConfig,
    pub data: InputConfig,
    /// Neurons per replica, e.g. [16, 64, 256, 1024].
    pub widths: Vec<usize>,
    /// sgd, gd, gf, smf1, mgf, smf2, msgd, msme1.
    pub dynamics: Vec<String>,
    /// `{"friction": γ}`: required by msgd and msme1 (heavy ball, DESIGN §3b), refused
    /// without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<MomentumConfig>,
    pub etas: Vec<f64>,
    #[serde(default = "one_u32")]
    pub batch: u32,
    /// How sgd / msgd draw minibatches from a finite data set: "replacement" (the
    /// default) or "epochs" (without replacement, reshuffled every epoch; the trainer's
    /// `sampling`, `data::sampling`).
    #[serde(default, skip_serializing_if = "Sampling::is_replacement")]
    pub sampling: Sampling,
    pub horizon: f64,
    /// Report times besides 0 and the horizon (multiples of every η).
    #[serde(default)]
    pub checkpoints: Vec<f64>,
    /// Replicas M per (dynamics, η, width).
    pub paths: u64,
    /// RK4 (gf) / Euler–Maruyama (smf1) substeps per step. When even, every SDE and
    /// flow also runs its coupled coarse level (half the substeps, the same Brownian
    /// path) for its solver-error estimate.
    #[serde(default = "default_substeps")]
    pub substeps: u32,
    /// Talay–Tubaro extrapolation of the SDEs (smf1, smf2, msme1): a third coupled level
    /// at substeps/4 (a multiple of 4), values 2g₁ − g₂ (`solver::levels`).
    #[serde(default)]
    pub extrapolate: bool,
    /// The test function φ of ⟨φ, ν⟩.
    #[serde(default = "default_phi")]
    pub test_function: String,
    /// Size of the fixed test set of the population risk.
    #[serde(default = "default_test")]
    pub test_samples: usize,
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// "f32" or "f64"; unset: the GPU's f32 and the CPU's f64 (the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    #[serde(default = "defaults::diverge_bound")]
    pub diverge_bound: f64,
}

/// A validated width sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// width_sweep, or weak_order on the two-layer model (one width).
    pub experiment: Experiment,
    pub name: String,
    pub cfg: WidthSweepConfig,
    pub act: Activation,
    pub teacher: Arc<Teacher>,
    pub phi: TestFn,
    pub dynamics: Vec<Dynamics>,
    /// msgd / msme1's friction γ (`momentum.friction`; 0 when neither is listed).
    pub friction: f64,
    /// Widths ascending.
    pub widths: Vec<usize>,
    /// Report times ascending, 0 and the horizon included.
    pub times: Vec<f64>,
    /// `Some(σ)` when sgd streams its inputs.
    pub streaming: Option<f64>,
    /// The data set (or, streaming with a linear activation, the population cubature).
    pub set: Option<Arc<DataSet>>,
    pub test: Arc<DataSet>,
    /// The config's precision (None: each backend's default).
    pub precision: Option<crate::backend::Precision>,
    pub echo: serde_json::Value,
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        field: field.into(),
        message: message.into(),
    })
}

fn teacher(t: &TeacherConfig, d: usize, seed: u64) -> Result<Teacher, ConfigError> {
    match (&t.a, &t.w, t.neurons) {
        (Some(a), Some(w), None) => {
            if a.is_empty() || a.len() != w.len() {
                return err(
                    "model.teacher.w",
                    format!(
                        "must have one row per entry of model.teacher.a ({}), got {}",
                        a.len(),
                        w.len()
                    ),
                );
            }
            for (j, row) in w.iter().enumerate() {
                if row.len() != d {
                    return err(
                        &format!("model.teacher.w[{j}]"),
                        format!("must have d = {d} entries, got {}", row.len()),
                    );
                }
            }
            if a.iter().chain(w.iter().flatten()).any(|v| !v.is_finite()) {
                return err("model.teacher", "entries must be finite numbers");
            }
            Ok(Teacher {
                a: a.clone(),
                w: w.iter().flatten().copied().collect(),
                d,
            })
        }
        (None, None, Some(m)) => {
            if m == 0 || m > 1 << 16 {
                return err(
                    "model.teacher.neurons",
                    format!("must be in 1 … 65536, got {m}"),
                );
            }
            if !(t.a_scale.is_finite() && t.a_scale > 0.0) {
                return err(
                    "model.teacher.a_scale",
                    format!("must be a finite number > 0, got {}", t.a_scale),
                );
            }
            Ok(Teacher::generate(m, d, t.a_scale, t.seed.unwrap_or(seed)))
        }
        _ => err(
            "model.teacher",
            "give either {\"neurons\": m} (generated) or both \"a\" and \"w\" (fixed)",
        ),
    }
}

pub fn check(cfg: WidthSweepConfig, name_hint: &str) -> Result<Sweep, ConfigError> {
    let experiment = expect_family(&cfg.experiment, Family::WidthSweep)?;
    let echo = serde_json::to_value(&cfg).expect("config serialises");
    let m = &cfg.model;
    if m.kind != "two_layer" {
        return err(
            "model.kind",
            format!("{experiment} needs \"two_layer\", got {:?}", m.kind),
        );
    }
    let act = Activation::parse(&m.activation).ok_or_else(|| ConfigError {
        field: "model.activation".into(),
        message: format!(
            "unknown activation {:?}; allowed: {}",
            m.activation,
            ACTIVATIONS.join(", ")
        ),
    })?;
    if m.d == 0 || m.d > 256 {
        return err("model.d", format!("must be in 1 … 256, got {}", m.d));
    }
    let i = &m.init;
    if !i.a_mean.is_finite() {
        return err("model.init.a_mean", "must be a finite number");
    }
    for (name, v) in [("model.init.a_std", i.a_std), ("model.init.w_std", i.w_std)] {
        if !(v.is_finite() && v >= 0.0) {
            return err(name, format!("must be a finite number ≥ 0, got {v}"));
        }
    }
    let teacher = Arc::new(teacher(&m.teacher, m.d, cfg.seed)?);
    let phi = TestFn::parse(&cfg.test_function).ok_or_else(|| ConfigError {
        field: "test_function".into(),
        message: format!(
            "unknown test function {:?}; allowed: {}",
            cfg.test_function,
            TEST_FNS.join(", ")
        ),
    })?;
    let mut widths = Vec::new();
    for (j, &n) in cfg.widths.iter().enumerate() {
        if n == 0 || n > MAX_WIDTH {
            return err(
                &format!("widths[{j}]"),
                format!("must be in 1 ..= {MAX_WIDTH} neurons, got {n}"),
            );
        }
        if widths.contains(&n) {
            return err(&format!("widths[{j}]"), format!("{n} listed twice"));
        }
        widths.push(n);
    }
    if widths.is_empty() {
        return err("widths", "list at least one width");
    }
    widths.sort_unstable();
    let dynamics = names(
        "dynamics",
        "dynamics",
        &cfg.dynamics,
        |s| Dynamics::parse(s).filter(|d| SUPPORTED.contains(d)),
        &DYNAMICS,
    )?;
    let friction = check_momentum(cfg.momentum.as_ref(), &dynamics)?;
    if experiment == Experiment::MeanFieldWeakOrder {
        if widths.len() != 1 {
            return err(
                "widths",
                format!(
                    "weak_order on two_layer runs one width (width_sweep sweeps several), \
                     got {}",
                    widths.len()
                ),
            );
        }
        if crate::experiment::weak_order::pairs(&dynamics).is_empty() {
            return err(
                "dynamics",
                "list a reference and a dynamics compared with it: sgd with smf1, smf2 or gf; \
                 gd with gf or mgf; msgd with msme1",
            );
        }
    }
    if cfg.etas.len() > 4096 {
        return err("etas", "at most 4096 step sizes");
    }
    parse::check_schedule(&cfg.etas, cfg.horizon, &cfg.checkpoints, true)?;
    let mut times = cfg.checkpoints.clone();
    times.push(0.0);
    times.push(cfg.horizon);
    times.sort_by(f64::total_cmp);
    times.dedup();
    for (j, eta) in cfg.etas.iter().enumerate() {
        for t in &times {
            if whole_steps(*t, *eta).is_none() {
                return err(
                    &format!("etas[{j}]"),
                    format!("time {t} is not a whole number of steps of η = {eta} (T/η must be an integer)"),
                );
            }
        }
        let k = whole_steps(cfg.horizon, *eta).unwrap_or(0) as u64;
        if k * cfg.substeps.max(1) as u64 >= 1 << 32 {
            return err("horizon", "horizon/η × substeps must stay below 2^32");
        }
        // An epoch's position k·b + j is one 32-bit counter word.
        if cfg.sampling == Sampling::Epochs && k * cfg.batch as u64 >= 1 << 32 {
            return err(
                "horizon",
                "horizon/η × batch must stay below 2^32 draws with \"sampling\": \"epochs\"",
            );
        }
    }
    if cfg.batch == 0 {
        return err("batch", "must be ≥ 1 (allowed: 1 … 4294967295)");
    }
    if cfg.paths < 2 || cfg.paths > MAX_PATHS {
        return err(
            "paths",
            format!(
                "must be in 2 … {MAX_PATHS} (variances need two replicas), got {}",
                cfg.paths
            ),
        );
    }
    if cfg.substeps == 0 || cfg.substeps > MAX_SUBSTEPS {
        return err(
            "substeps",
            format!("must be in 1 … {MAX_SUBSTEPS}, got {}", cfg.substeps),
        );
    }
    crate::config::check_extrapolate(cfg.extrapolate, cfg.substeps)?;
    if cfg.test_samples == 0 || cfg.test_samples > 1 << 20 {
        return err(
            "test_samples",
            format!("must be in 1 … 1048576, got {}", cfg.test_samples),
        );
    }
    check_bound(cfg.diverge_bound)?;
    let precision = check_precision(cfg.precision.as_deref())?;
    let minibatch = |d: &Dynamics| matches!(d, Dynamics::Sgd | Dynamics::Msgd);
    let full_batch = dynamics.iter().any(|d| !minibatch(d));
    let (streaming, set) = match &cfg.data {
        InputConfig::Stream { label_noise } => {
            if !(label_noise.is_finite() && *label_noise >= 0.0) {
                return err(
                    "data.label_noise",
                    format!("must be a finite number ≥ 0, got {label_noise}"),
                );
            }
            if cfg.sampling == Sampling::Epochs {
                return err(
                    "sampling",
                    "\"epochs\" needs a finite data set (data.kind = \"set\"); streamed inputs \
                     are fresh at every draw (allowed here: \"replacement\")",
                );
            }
            let caps = capabilities(act, true);
            if let Err(m) = capability::check(&model_name(act, true), caps, &dynamics) {
                let drift = if m.lacks.contains(&Capability::FullGradient) {
                    " (streamed inputs give the population drift in closed form only for the \
                     linear activation)"
                } else {
                    ""
                };
                return err(
                    "dynamics",
                    format!(
                        "{} needs a finite data set (data.kind = \"set\"): {}{drift}",
                        m.dynamics,
                        m.model_lacks()
                    ),
                );
            }
            let set = full_batch.then(|| Arc::new(linear_population(&teacher, act)));
            (Some(*label_noise), set)
        }
        InputConfig::Set {
            n,
            label_noise,
            seed,
        } => {
            if *n == 0 || *n > 1 << 20 {
                return err("data.n", format!("must be in 1 … 1048576 samples, got {n}"));
            }
            if !(label_noise.is_finite() && *label_noise >= 0.0) {
                return err(
                    "data.label_noise",
                    format!("must be a finite number ≥ 0, got {label_noise}"),
                );
            }
            let s = gaussian_set(
                &teacher,
                act,
                *n,
                *label_noise,
                seed.unwrap_or(cfg.seed),
                TAG_FEATURES,
            );
            (None, Some(Arc::new(s)))
        }
    };
    let test = Arc::new(gaussian_set(
        &teacher,
        act,
        cfg.test_samples,
        0.0,
        cfg.seed,
        TAG_TEST,
    ));
    let name = cfg.name.clone().unwrap_or_else(|| name_hint.to_string());
    Ok(Sweep {
        experiment,
        name,
        act,
        teacher,
        phi,
        dynamics,
        friction,
        widths,
        times,
        streaming,
        set,
        test,
        precision,
        echo,
        cfg,
    })
}
