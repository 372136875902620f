//! Model sections of the small-d configs (`quadratic`, `multiplicative`, `toy_sgd`):
//! their serde types and their validation into `AnyModel`.

use super::{AnyModel, Multiplicative, Quadratic, ToyLoss, ToySgd, MAX_D};
use crate::config::{err, parse, ConfigError};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelConfig {
    Quadratic(QuadraticConfig),
    Multiplicative(MultiplicativeConfig),
    #[serde(rename = "toy_sgd")]
    ToySgd(ToySgdConfig),
}

/// The small-d engine's model kinds (`model.kind`).
pub const KINDS: [&str; 3] = ["quadratic", "multiplicative", "toy_sgd"];

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse::tagged(d, "kind", &KINDS, |kind, rest| {
            Ok(match kind {
                "quadratic" => ModelConfig::Quadratic(parse::section(rest, "")?),
                "multiplicative" => ModelConfig::Multiplicative(parse::section(rest, "")?),
                _ => ModelConfig::ToySgd(parse::section(rest, "")?),
            })
        })
    }
}

/// `toy_sgd`: `loss` names the loss (`double_well`: c0; `ring`: k0, a, c0), `sigma` the
/// noise level σ in x ← x − η(∇f + sqrt(σ f) ξ).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToySgdConfig {
    pub loss: String,
    pub sigma: f64,
    pub c0: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k0: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuadraticConfig {
    pub a: Vec<Vec<f64>>,
    pub mean: Vec<f64>,
    pub cov: Vec<Vec<f64>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiplicativeConfig {
    pub mean: f64,
    pub std: f64,
}

fn matrix(field: &str, rows: &[Vec<f64>], d: usize) -> Result<DMatrix<f64>, ConfigError> {
    if rows.len() != d || rows.iter().any(|r| r.len() != d) {
        return err(
            field,
            format!("must be a {d}×{d} matrix (d = length of model.mean)"),
        );
    }
    if rows.iter().flatten().any(|v| !v.is_finite()) {
        return err(field, "entries must be finite numbers");
    }
    let m = DMatrix::from_fn(d, d, |i, j| rows[i][j]);
    let scale = m.amax().max(1e-300);
    if (0..d).any(|i| (0..d).any(|j| (m[(i, j)] - m[(j, i)]).abs() > 1e-12 * scale)) {
        return err(field, "must be symmetric");
    }
    Ok(m)
}

pub fn check_model(mc: &ModelConfig, d_x0: usize) -> Result<AnyModel, ConfigError> {
    Ok(match mc {
        ModelConfig::Quadratic(q) => {
            let d = q.mean.len();
            if d == 0 || d > MAX_D {
                return err("model.mean", format!("length d must be 1..={MAX_D}"));
            }
            if q.mean.iter().any(|v| !v.is_finite()) {
                return err("model.mean", "entries must be finite numbers");
            }
            let a = matrix("model.a", &q.a, d)?;
            let cov = matrix("model.cov", &q.cov, d)?;
            let min_eig = SymmetricEigen::new(cov.clone()).eigenvalues.min();
            if min_eig < -1e-12 * cov.amax().max(1.0) {
                return err(
                    "model.cov",
                    format!("must be positive semi-definite (smallest eigenvalue {min_eig:.3e})"),
                );
            }
            if d_x0 != d {
                return err(
                    "x0",
                    format!("must have length {d} (the length of model.mean), got {d_x0}"),
                );
            }
            AnyModel::Quadratic(Quadratic::new(a, DVector::from_vec(q.mean.clone()), cov))
        }
        ModelConfig::Multiplicative(m) => {
            if !m.mean.is_finite() {
                return err("model.mean", "must be a finite number");
            }
            if !(m.std.is_finite() && m.std >= 0.0) {
                return err("model.std", "must be a finite number ≥ 0");
            }
            if d_x0 == 0 || d_x0 > MAX_D {
                return err("x0", format!("length d must be 1..={MAX_D}"));
            }
            AnyModel::Multiplicative(Multiplicative::new(d_x0, m.mean, m.std))
        }
        ModelConfig::ToySgd(t) => AnyModel::ToySgd(check_toy(t, d_x0)?),
    })
}

fn check_toy(t: &ToySgdConfig, d: usize) -> Result<ToySgd, ConfigError> {
    if !(t.sigma.is_finite() && t.sigma > 0.0) {
        return err(
            "model.sigma",
            format!("must be a finite number > 0, got {}", t.sigma),
        );
    }
    if !(t.c0.is_finite() && t.c0 > 0.0) {
        return err(
            "model.c0",
            format!(
                "must be a finite number > 0 (inf f; f^(-p) needs f > 0), got {}",
                t.c0
            ),
        );
    }
    if d == 0 || d > MAX_D {
        return err("x0", format!("length d must be 1..={MAX_D}"));
    }
    let loss = match t.loss.as_str() {
        "double_well" => {
            for (name, v) in [("model.k0", t.k0), ("model.a", t.a)] {
                if v.is_some() {
                    return err(name, "only for loss \"ring\"; double_well takes c0");
                }
            }
            ToyLoss::DoubleWell { c0: t.c0 }
        }
        "ring" => {
            let k0 = t.k0.ok_or(ConfigError {
                field: "model.k0".into(),
                message: "missing (curvature scale of the ring loss, > 0)".into(),
            })?;
            let a = t.a.ok_or(ConfigError {
                field: "model.a".into(),
                message: "missing (curvature modulation along the ring, in [0, 1))".into(),
            })?;
            if !(k0.is_finite() && k0 > 0.0) {
                return err("model.k0", format!("must be a finite number > 0, got {k0}"));
            }
            if !(a.is_finite() && (0.0..1.0).contains(&a)) {
                return err(
                    "model.a",
                    format!(
                        "must be in [0, 1) so the curvature k0(1 + a cos φ) stays > 0, got {a}"
                    ),
                );
            }
            if d < 2 {
                return err("x0", "loss ring needs d ≥ 2 (x0 of length ≥ 2)");
            }
            ToyLoss::Ring { k0, a, c0: t.c0 }
        }
        other => {
            return err(
                "model.loss",
                format!(
                    "unknown loss {other:?}; allowed: {}",
                    ToyLoss::NAMES.join(", ")
                ),
            )
        }
    };
    Ok(ToySgd::new(d, loss, t.sigma))
}
