//! Coupled solver levels: a path solved at substeps S (level 1, the fine one), S/2 and
//! S/4 on the same Brownian path, and what the levels of one path give — its value and
//! an estimate of the value's solver error. The small-d engine and the finite-data
//! trainer both combine their levels here; mean-field and the trainer draw a coarse
//! level's normals from the fine level's here.

use crate::dynamics::{Dynamics, Update};
use crate::lanes::Num;

/// The coupled levels a dynamics runs, as coarsenings of its `substeps` (fine first):
/// a discrete dynamics, an odd `substeps` or a study that does not ask (`wanted`)
/// runs the fine level alone; an SDE with `extrapolate` runs three (substeps, /2, /4:
/// Talay–Tubaro and its own error estimate); any other SDE or flow two. The trainer's
/// and mean-field's experiments both choose their levels here.
pub fn coarsenings(d: Dynamics, substeps: u32, wanted: bool, extrapolate: bool) -> Vec<u32> {
    match d.update() {
        Update::Discrete { .. } => vec![1],
        _ if substeps % 2 != 0 || !wanted => vec![1],
        Update::Sde { .. } if extrapolate => vec![1, 2, 4],
        _ => vec![1, 2],
    }
}

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

/// A coarse level's standard normals from the fine level's, in place: `normals` holds
/// the fine substeps' n normals each (substep-major); coarse substep s′ gets
/// (ξ_{s′c} + … + ξ_{s′c+c−1})/√c, written over the first n·S/c entries, so that √(c·dt)
/// times it is the sum of the c fine increments √dt·ξ. The trainer's and mean-field's
/// coarse levels both draw through it (their WGSL twins: `train.wgsl`'s coarse normals
/// and `prep_noise` in `meanfield/kernels.wgsl`).
pub fn coarsen_normals<T: Num>(normals: &mut [T], n: usize, c: usize) {
    let inv = 1.0 / (c as f64).sqrt();
    for s in 0..normals.len() / (n * c) {
        for i in 0..n {
            let mut sum = normals[s * c * n + i];
            for j in 1..c {
                sum += normals[(s * c + j) * n + i];
            }
            // Written below every index still to be read (s·n + i ≤ s·c·n + i).
            normals[s * n + i] = sum * inv;
        }
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
