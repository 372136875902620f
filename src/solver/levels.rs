//! Coupled solver levels: a path solved at substeps S (level 1, the fine one), S/2 and
//! S/4 on the same Brownian path, and what the levels of one path give — its value and
//! an estimate of the value's solver error. The small-d engine and the finite-data
//! trainer both combine their levels here.

/// The value and solver-error estimate of an observable from its values `g` on a
/// path's levels, fine first (substeps S, S/2, S/4; `ode`: the solver is RK4, else
/// Euler–Maruyama):
/// - one level: g₁, no estimate;
/// - RK4 (order 4): g₁ and (g₁ − g₂)/15;
/// - Euler–Maruyama (weak order 1): g₁ and g₁ − g₂;
/// - three levels, Talay–Tubaro: 2g₁ − g₂, its error being O(dt²), estimated as
///   ((2g₁ − g₂) − (2g₂ − g₄))/3.
#[inline]
pub fn value_and_error(g: &[f64], ode: bool) -> (f64, Option<f64>) {
    match *g {
        [g1] => (g1, None),
        [g1, g2] if ode => (g1, Some((g1 - g2) / 15.0)),
        [g1, g2] => (g1, Some(g1 - g2)),
        [g1, g2, g4, ..] => {
            let (fine, coarse) = (2.0 * g1 - g2, 2.0 * g2 - g4);
            (fine, Some((fine - coarse) / 3.0))
        }
        [] => (f64::NAN, None),
    }
}

#[cfg(test)]
mod tests {
    use super::value_and_error;

    #[test]
    fn each_rule() {
        assert_eq!(value_and_error(&[1.5], false), (1.5, None));
        assert_eq!(value_and_error(&[1.0, 2.5], true), (1.0, Some(-0.1)));
        assert_eq!(value_and_error(&[1.0, 2.5], false), (1.0, Some(-1.5)));
        // Exact for g = a + b·dt + c·dt² at dt = h, 2h, 4h: 2g₁ − g₂ = a − 2ch²,
        // 2g₂ − g₄ = a − 8ch², so the estimate (6ch²)/3 = 2ch² is the value's error.
        let (a, b, c, h) = (1.0, 0.5, 0.25, 0.5);
        let g = |dt: f64| a + b * dt + c * dt * dt;
        let (v, e) = value_and_error(&[g(h), g(2.0 * h), g(4.0 * h)], false);
        assert_eq!(v, a - 2.0 * c * h * h);
        assert_eq!(e, Some(2.0 * c * h * h));
        assert!(value_and_error(&[], false).0.is_nan());
    }
}
