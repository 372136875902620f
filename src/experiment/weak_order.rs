//! Experiment `weak_order`: E g under each dynamics at each η, the weak errors of the
//! continuous models against the discrete scheme they model, and the fitted orders.
//!
//! Pairs: every dynamics other than sgd/gd against `sgd` (when listed), and gf/mgf also
//! against `gd` (when listed). A weak error is *resolved* when it exceeds 3 standard
//! errors; only resolved points enter the order fit (DESIGN §7). `solver_ok` holds when
//! the upper 95% bound of the solver's own error estimate is ≤ 1/10 of the weak error.

use crate::config::Checked;
use crate::dynamics::{Dynamics, RunSpec};
use crate::observables::Observable;
use crate::output::report::{Order, Point, WeakError};
use crate::stats::fit::fit_order;

/// Closed-form E g at step k where the model has one (used to check, never to fit).
pub fn exact_mean(ck: &Checked, spec: &RunSpec, obs: Observable, k: u32) -> Option<f64> {
    let m = ck.model.as_dyn();
    let x0 = &spec.x0[0];
    let t = k as f64 * spec.eta;
    match spec.dynamics {
        Dynamics::Sgd => m.exact_sgd_mean(obs, x0, spec.eta, spec.batch as usize, k),
        // GD is SGD with an infinite batch (the noise term η²/b vanishes).
        Dynamics::Gd => m.exact_sgd_mean(obs, x0, spec.eta, usize::MAX, k),
        Dynamics::Gf | Dynamics::Mgf => m.exact_sde_mean(obs, x0, spec.drift_c(), 0.0, t),
        _ => m.exact_sde_mean(obs, x0, spec.drift_c(), spec.noise_var(), t),
    }
}

/// The (reference, model) pairs compared in this study.
pub fn pairs(dynamics: &[Dynamics]) -> Vec<(Dynamics, Dynamics)> {
    let mut out = Vec::new();
    for &d in dynamics {
        if let Some(r) = d.reference() {
            if dynamics.contains(&r) {
                out.push((r, d));
            }
        }
        if matches!(d, Dynamics::Gf | Dynamics::Mgf) && dynamics.contains(&Dynamics::Gd) {
            out.push((Dynamics::Gd, d));
        }
    }
    out
}

fn find<'a>(pts: &'a [Point], d: Dynamics, eta: f64, t: f64, obs: &str) -> Option<&'a Point> {
    pts.iter()
        .find(|p| p.dynamics == d.name() && p.eta == eta && p.t == t && p.observable == obs)
}

/// Upper 95% bound of a point's solver error (0 when it has none).
fn solver_bound(p: &Point) -> f64 {
    match (p.solver_error, p.solver_error_stderr) {
        (Some(e), Some(s)) => e.abs() + 1.96 * s,
        _ => 0.0,
    }
}

pub fn errors_and_orders(
    ck: &Checked,
    pts: &[Point],
    warnings: &mut Vec<String>,
) -> (Vec<WeakError>, Vec<Order>) {
    let mut errors = Vec::new();
    let mut orders = Vec::new();
    for (a, b) in pairs(&ck.dynamics) {
        for &t in &ck.times {
            for obs in &ck.observables {
                let name = obs.to_string();
                let mut fit_pts = Vec::new();
                for &eta in &ck.etas {
                    let (Some(pa), Some(pb)) =
                        (find(pts, a, eta, t, &name), find(pts, b, eta, t, &name))
                    else {
                        continue;
                    };
                    let signed = pb.mean - pa.mean;
                    let error = signed.abs();
                    let stderr = (pa.stderr.powi(2) + pb.stderr.powi(2)).sqrt();
                    let resolved = error.is_finite() && error > 3.0 * stderr;
                    let solver_ok = solver_bound(pa) + solver_bound(pb) <= error / 10.0;
                    if resolved {
                        fit_pts.push((eta, error, stderr));
                    }
                    if resolved && !solver_ok && t == ck.horizon {
                        warnings.push(format!(
                            "{a}–{b} η={eta} {name}: the solver's error bound ({:.2e}) is not ≤ 1/10 of the weak error ({error:.2e}); raise sde.substeps",
                            solver_bound(pa) + solver_bound(pb)
                        ));
                    }
                    errors.push(WeakError {
                        pair: [a.name().into(), b.name().into()],
                        eta,
                        t,
                        observable: name.clone(),
                        error,
                        stderr,
                        resolved,
                        solver_ok,
                        signed,
                    });
                }
                match fit_order(&fit_pts) {
                    Some(f) => orders.push(Order {
                        pair: [a.name().into(), b.name().into()],
                        observable: name.clone(),
                        t,
                        order: f.order,
                        stderr: f.stderr,
                        ci95: f.ci95,
                        n_points: f.n_points,
                        intercept: f.intercept,
                    }),
                    None if t == ck.horizon && ck.etas.len() >= 2 => warnings.push(format!(
                        "{a}–{b} {name} at t={t}: fewer than 2 resolved weak errors (error > 3 stderr); no order fitted — raise paths"
                    )),
                    None => {}
                }
            }
        }
    }
    (errors, orders)
}
