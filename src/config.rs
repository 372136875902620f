//! The config envelope: the JSON syntax, the `experiment` that picks a schema, and what
//! every schema shares (the error type, field paths, command-line overrides, limits).
//! Each schema and its validation lives beside its component: the small-d experiments'
//! in `experiment::config` (with the model sections in `model::config`), the
//! finite-data trainer's in `experiment::training::config`, the width sweep's in
//! `experiment::width_sweep::config`. This module imports none of them.

use std::fmt;

pub mod parse;
pub mod text;

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

/// `Err` of a [`ConfigError`] naming `field`.
pub fn err<T>(field: impl Into<String>, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        field: field.into(),
        message: message.into(),
    })
}

/// Every experiment `smflow run` knows: the envelope's `experiment` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experiment {
    WeakOrder,
    NPoint,
    Invariant,
    LeastSquaresRisk,
    ImplicitBiasSweep,
    GdVsGf,
    WidthSweep,
    /// `weak_order` on a finite data set (a config with `data`): the finite-data
    /// trainer's models and dynamics, `experiment::training::weak_order`. Not in
    /// [`Experiment::ALL`] (it shares weak_order's name); `parse::experiment` tells the
    /// two apart by the `data` field.
    DataWeakOrder,
    /// `weak_order` on the two-layer mean-field model (`"model": {"kind":
    /// "two_layer"}`, one width): the width_sweep schema and engine,
    /// `experiment::width_sweep::weak_order`. Not in [`Experiment::ALL`] either.
    MeanFieldWeakOrder,
}

/// The schema that reads an experiment's config, and the engine that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// weak_order, n_point, invariant: `experiment::config`.
    SmallD,
    /// least_squares_risk, implicit_bias_sweep, gd_vs_gf: `experiment::training::config`.
    Training,
    /// width_sweep: `experiment::width_sweep::config`.
    WidthSweep,
}

impl Experiment {
    pub const ALL: [Experiment; 7] = [
        Self::WeakOrder,
        Self::NPoint,
        Self::Invariant,
        Self::LeastSquaresRisk,
        Self::ImplicitBiasSweep,
        Self::GdVsGf,
        Self::WidthSweep,
    ];

    /// The name in config files.
    pub const fn name(self) -> &'static str {
        match self {
            Self::WeakOrder | Self::DataWeakOrder | Self::MeanFieldWeakOrder => "weak_order",
            Self::NPoint => "n_point",
            Self::Invariant => "invariant",
            Self::LeastSquaresRisk => "least_squares_risk",
            Self::ImplicitBiasSweep => "implicit_bias_sweep",
            Self::GdVsGf => "gd_vs_gf",
            Self::WidthSweep => "width_sweep",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }

    pub const fn family(self) -> Family {
        match self {
            Self::WeakOrder | Self::NPoint | Self::Invariant => Family::SmallD,
            Self::LeastSquaresRisk
            | Self::ImplicitBiasSweep
            | Self::GdVsGf
            | Self::DataWeakOrder => Family::Training,
            Self::WidthSweep | Self::MeanFieldWeakOrder => Family::WidthSweep,
        }
    }

    /// The names of a family's experiments, for "allowed here" messages.
    pub fn names_of(family: Family) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .chain([Self::DataWeakOrder, Self::MeanFieldWeakOrder])
            .filter(|e| e.family() == family)
            .map(Self::name)
            .collect()
    }
}

/// The experiment a schema's parser was handed, if it is one of `family`'s: a
/// config reaches a family's parser through the envelope or straight from a caller
/// (`compare`, `merge`, tests), so each parser checks again.
pub fn expect_family(kind: &str, family: Family) -> Result<Experiment, ConfigError> {
    let here = Experiment::names_of(family).join(", ");
    match Experiment::parse(kind) {
        Some(e) if e.family() == family => Ok(e),
        // The finite-data trainer reads weak_order configs that have a data set.
        Some(Experiment::WeakOrder) if family == Family::Training => Ok(Experiment::DataWeakOrder),
        // … and the mean-field engine those of the two-layer model.
        Some(Experiment::WeakOrder) if family == Family::WidthSweep => {
            Ok(Experiment::MeanFieldWeakOrder)
        }
        Some(e) => err(
            "experiment",
            format!(
                "{e:?} is not read by this parser (allowed here: {here})",
                e = e.name()
            ),
        ),
        None => err(
            "experiment",
            format!(
                "unknown experiment {kind:?} (allowed: {})",
                Experiment::ALL.map(Experiment::name).join(", ")
            ),
        ),
    }
}

impl fmt::Display for Experiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Largest `sde.substeps` (and the substeps of the other experiments).
pub const MAX_SUBSTEPS: u32 = 4096;

/// Steps k = t/η for a checked (t, η): every checker refuses t/η > u32::MAX
/// ([`parse::step_limit`]).
pub fn steps(t: f64, eta: f64) -> u32 {
    let r = (t / eta).round();
    debug_assert!(r <= u32::MAX as f64, "unchecked step count {t}/{eta}");
    r as u32
}

/// Defaults of the fields every experiment's schema shares (`seed`, `diverge_bound`).
pub mod defaults {
    pub fn seed() -> u64 {
        1
    }
    pub fn diverge_bound() -> f64 {
        1e6
    }
}

/// The shared `precision` field: "f32", "f64" or unset (the GPU in f32, the CPU in f64,
/// the reference; `cli::make_backend`).
pub fn check_precision(
    precision: Option<&str>,
) -> Result<Option<crate::backend::Precision>, ConfigError> {
    use crate::backend::Precision;
    match precision {
        None => Ok(None),
        Some("f32") => Ok(Some(Precision::F32)),
        Some("f64") => Ok(Some(Precision::F64)),
        Some(other) => err(
            "precision",
            format!("unknown precision {other:?}; allowed: f32, f64"),
        ),
    }
}

/// The shared `diverge_bound` field: a path is counted as diverged once a coordinate
/// is non-finite or exceeds it in magnitude.
pub fn check_bound(bound: f64) -> Result<f64, ConfigError> {
    if bound.is_finite() && bound > 0.0 {
        Ok(bound)
    } else {
        err(
            "diverge_bound",
            format!("must be a finite number > 0, got {bound}"),
        )
    }
}

/// The shared `extrapolate` field (trainer and mean-field): Talay–Tubaro's coupled
/// levels take substeps/2 and substeps/4, so `substeps` must be a multiple of 4.
pub fn check_extrapolate(extrapolate: bool, substeps: u32) -> Result<(), ConfigError> {
    if extrapolate && substeps % 4 != 0 {
        return err(
            "substeps",
            format!(
                "must be a multiple of 4 with extrapolate (its coupled levels take substeps/2 \
                 and substeps/4), got {substeps}"
            ),
        );
    }
    Ok(())
}

/// A list of names (`dynamics`, `observables`) read into values: at least one, each
/// known to `parse` (else the error lists `allowed`), none twice.
pub fn names<T: PartialEq>(
    field: &str,
    what: &str,
    items: &[String],
    parse: impl Fn(&str) -> Option<T>,
    allowed: &[&str],
) -> Result<Vec<T>, ConfigError> {
    let allowed = allowed.join(", ");
    if items.is_empty() {
        return err(field, format!("must list at least one of: {allowed}"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, s) in items.iter().enumerate() {
        let v = parse(s).ok_or_else(|| ConfigError {
            field: format!("{field}[{i}]"),
            message: format!("unknown {what} {s:?}; allowed: {allowed}"),
        })?;
        if out.contains(&v) {
            return err(format!("{field}[{i}]"), format!("{s:?} is listed twice"));
        }
        out.push(v);
    }
    Ok(out)
}
