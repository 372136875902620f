//! The per-sample loss ℓ(m, y) of the trainer's linear predictors, as a function of the
//! margin m = ⟨β, x⟩ and the label y. The data-set loss is `L(β) = (1/N) Σ_i ℓ(x_iᵀβ,
//! y_i)`, so every gradient, Hessian and noise factor of the trainer needs only
//!
//! - the slope ℓ'(m, y): `∇_βL = (1/N) Σ_i ℓ'_i x_i` (per-sample gradient ℓ'_i x_i);
//! - the curvature ℓ''(m): `∇²_βL = (1/N) Σ_i ℓ''_i x_i x_iᵀ`.
//!
//! Losses:
//! - `squared`: ℓ = ½(m − y)², ℓ' = m − y, ℓ'' = 1 (linear regression, the default);
//! - `logistic`: ℓ = log(1 + eᵐ) − y m (cross-entropy of σ(m) against y ∈ {0, 1}),
//!   ℓ' = σ(m) − y, ℓ'' = σ(m)(1 − σ(m)), σ(m) = 1/(1 + e⁻ᵐ).
//!
//! One source of truth: the CPU trainer (`ops`) calls these; `shaders/train/loss.wgsl`
//! mirrors them, selected by the composed constant `LOSS` (= `Loss::code`).

use crate::lanes::Num;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    #[default]
    Squared,
    Logistic,
}

/// The names of the losses, for configs and errors.
pub const NAMES: [&str; 2] = ["squared", "logistic"];

impl Loss {
    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// Whether label y is one this loss accepts (logistic: 0 or 1).
    pub fn accepts(self, y: f64) -> bool {
        match self {
            Loss::Squared => y.is_finite(),
            Loss::Logistic => y == 0.0 || y == 1.0,
        }
    }

    /// ℓ(m, y), in f64 (reports and the train loss).
    pub fn value(self, m: f64, y: f64) -> f64 {
        match self {
            Loss::Squared => 0.5 * (m - y) * (m - y),
            // log(1 + eᵐ) = max(m, 0) + log(1 + e^{−|m|}), without overflow.
            Loss::Logistic => m.max(0.0) + (-m.abs()).exp().ln_1p() - y * m,
        }
    }

    /// ℓ'(m, y) from the margin's sum `s` = Σ_j x_j β_j. The squared loss computes
    /// it as the residual `s − y`, the very operation of the reference before losses
    /// were pluggable (so its numbers stay bit for bit the same).
    #[inline(always)]
    pub fn slope<T: Num>(self, s: T, y: T) -> T {
        match self {
            Loss::Squared => s - y,
            Loss::Logistic => sigmoid(s) - y,
        }
    }

    /// Whether ℓ'' is the constant 1 (the squared loss): callers then skip both the
    /// product and the margin it needs.
    #[inline(always)]
    pub fn unit_curvature(self) -> bool {
        self == Loss::Squared
    }

    /// ℓ''(m).
    #[inline(always)]
    pub fn curvature<T: Num>(self, m: T) -> T {
        match self {
            Loss::Squared => T::splat(1.0),
            Loss::Logistic => {
                let p = sigmoid(m);
                p * (T::splat(1.0) - p)
            }
        }
    }
}

/// σ(m) = 1/(1 + e⁻ᵐ) per lane: `math::sigmoid` (the branch-free one mean-field
/// uses; never inf or NaN for finite m), so every lane has the scalar reference's bits.
#[inline(always)]
pub fn sigmoid<T: Num>(m: T) -> T {
    T::from_fn(|l| crate::math::sigmoid(m.lane(l)))
}

/// The data-set loss `(1/N) Σ_i ℓ(x_iᵀβ, y_i)` of β on `ds`.
pub fn mean(loss: Loss, ds: &crate::data::DataSet, beta: &[f64]) -> f64 {
    let s: f64 = (0..ds.n)
        .map(|i| loss.value(crate::data::dot(ds.row(i), beta), ds.y[i]))
        .sum();
    s / ds.n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ℓ' and ℓ'' are the derivatives of ℓ: central differences with step 1e-5 agree
    /// to 1e-8 (the truncation error is O(h²)·ℓ''' ≤ 1e-10, rounding ~1e-16/h).
    #[test]
    fn slope_and_curvature_are_the_derivatives_of_the_value() {
        let h = 1e-5;
        for loss in [Loss::Squared, Loss::Logistic] {
            for &y in &[0.0, 1.0] {
                for &m in &[-30.0, -3.0, -0.7, 0.0, 0.4, 2.5, 30.0] {
                    let d1 = (loss.value(m + h, y) - loss.value(m - h, y)) / (2.0 * h);
                    let g = loss.slope(m, y);
                    assert!(
                        (d1 - g).abs() < 1e-8,
                        "{loss:?} ℓ'({m}, {y}) = {g}, fd {d1}"
                    );
                    let d2 = (loss.slope(m + h, y) - loss.slope(m - h, y)) / (2.0 * h);
                    let c = loss.curvature(m);
                    assert!((d2 - c).abs() < 1e-8, "{loss:?} ℓ''({m}) = {c}, fd {d2}");
                }
            }
        }
    }

    #[test]
    fn logistic_values_are_stable_and_known() {
        let l = Loss::Logistic;
        assert!((l.value(0.0, 1.0) - std::f64::consts::LN_2).abs() < 1e-15);
        // Large margins: no overflow; ℓ ≈ 0 on the right side, ≈ |m| on the wrong one.
        assert!(l.value(800.0, 1.0).abs() < 1e-300);
        assert!((l.value(800.0, 0.0) - 800.0).abs() < 1e-12);
        assert!(sigmoid(-800.0f64) < 1e-300 && sigmoid(-800.0f64) >= 0.0);
        assert_eq!(sigmoid(800.0f64), 1.0);
        assert!(l.accepts(1.0) && l.accepts(0.0) && !l.accepts(0.5));
    }
}
