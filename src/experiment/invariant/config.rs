//! Validation of the `invariant` block against the experiment, model and dynamics.

use crate::config::ConfigError;
use crate::dynamics::Dynamics;
use crate::experiment::config::ExperimentKind;
use crate::model::AnyModel;
use serde::{Deserialize, Serialize};

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

/// Validates the `invariant` block against the experiment, model and dynamics.
pub fn check_config(
    kind: ExperimentKind,
    cfg: Option<&InvariantConfig>,
    model: &AnyModel,
    dynamics: &[Dynamics],
    checkpoints: &[f64],
) -> Result<Option<InvariantConfig>, ConfigError> {
    let e = |field: &str, message: String| ConfigError {
        field: field.into(),
        message,
    };
    if kind != ExperimentKind::Invariant {
        return match cfg {
            Some(_) => Err(e("invariant", "only for experiment invariant".into())),
            None => Ok(None),
        };
    }
    let AnyModel::ToySgd(m) = model else {
        return Err(e(
            "model.kind",
            format!(
                "experiment invariant needs model toy_sgd, got {}",
                model.name()
            ),
        ));
    };
    if !(1..=2).contains(&m.d) {
        return Err(e(
            "x0",
            format!(
                "experiment invariant histograms d = 1 (x) or d = 2 (angle, radius); got d = {}",
                m.d
            ),
        ));
    }
    if let Some(i) = dynamics
        .iter()
        .position(|d| !d.is_random() || d.has_momentum())
    {
        let why = if dynamics[i].has_momentum() {
            "has momentum (the predicted densities are for first-order dynamics)"
        } else {
            "is deterministic (one path, no distribution)"
        };
        return Err(e(
            &format!("dynamics[{i}]"),
            format!(
                "{} {why}; allowed: sgd, sme1, sme2, smf1, smf2",
                dynamics[i]
            ),
        ));
    }
    if !checkpoints.is_empty() {
        return Err(e(
            "checkpoints",
            "invariant uses only the final state; leave checkpoints out".into(),
        ));
    }
    let c = cfg.ok_or_else(|| {
        e(
            "invariant",
            "missing: {\"bins\": n ≥ 1, \"range\": [lo, hi], \"batches\": n ≥ 2 (default 20)}"
                .into(),
        )
    })?;
    if !(1..=100_000).contains(&c.bins) {
        return Err(e(
            "invariant.bins",
            format!("must be 1..=100000, got {}", c.bins),
        ));
    }
    let [lo, hi] = c.range;
    // The bin width must be a finite, representable number too (±1e308 overflows it).
    let width = (hi - lo) / c.bins as f64;
    if !(lo.is_finite()
        && hi.is_finite()
        && lo < hi
        && width.is_finite()
        && width > 1e-12 * lo.abs().max(hi.abs()))
    {
        return Err(e(
            "invariant.range",
            format!(
                "must be [lo, hi] with finite lo < hi, a finite width hi − lo and bins of width > 1e-12·max(|lo|, |hi|), got [{lo:e}, {hi:e}]"
            ),
        ));
    }
    if m.d == 2 && lo < 0.0 {
        return Err(e(
            "invariant.range",
            format!("is the radius range in 2-D: need 0 ≤ lo < hi, got [{lo}, {hi}]"),
        ));
    }
    if c.batches < 2 {
        return Err(e(
            "invariant.batches",
            format!("must be ≥ 2 (jackknife error), got {}", c.batches),
        ));
    }
    Ok(Some(c.clone()))
}
