//! `weak_order` on the two-layer mean-field model: a width_sweep config with
//! `"experiment": "weak_order"` and one width. For every η it runs each listed dynamics
//! (and the coupled solver levels of the SDEs and flows, `super::levels`), and reports
//! the small-d study's points, weak errors of every continuous model against the scheme
//! it models (`experiment::weak_order::pairs`: sgd with smf1, smf2, gf; gd with gf,
//! mgf; msgd with msme1), fitted orders in η and solver-error flags, in the same files
//! (points.csv, weak_error.csv, weak_error.svg) — through the same
//! `errors_and_orders`.
//!
//! A pair is paired by replica (estimator `paired_replicas`): replica r starts from the
//! same neurons under every dynamics, so the per-replica differences remove the spread
//! of the initialisation from the weak error's standard error; the noises are
//! independent (SGD's minibatch draws and SMF's Brownian increments are not the same
//! random variables), so the SGD noise's own spread stays in it.

use super::analysis::{cells, pair_diffs, Cell};
use super::config::Sweep;
use super::Combined;
use crate::experiment::training::Output;
use crate::experiment::weak_order::{pairs, study_output, CoupledDiff, Grid};
use crate::meanfield::OBSERVABLES;
use crate::output::report::Point;

/// The weak-order report of a sweep's runs (values and solver errors of its one
/// width); `f32`: the backend computed in f32 (its underflow warnings).
pub fn report(s: &Sweep, runs: &Combined, neuron_steps: f64, f32: bool) -> anyhow::Result<Output> {
    let width = s.widths[0];
    let mut all: Vec<Cell> = Vec::new();
    for (di, d) in s.dynamics.iter().enumerate() {
        for (e, &eta) in s.cfg.etas.iter().enumerate() {
            let (v, err) = (&runs.values[di][e], &runs.errors[di][e]);
            all.extend(cells(d.name(), eta, &[width], &s.times, v, err));
        }
    }
    let mut points: Vec<Point> = all.iter().map(point).collect();
    // The small-d engine's honest edges (`experiment::Edge`) on the point estimates: the
    // risk, ⟨a², ν⟩ and ⟨|w|², ν⟩ are non-negative (⟨φ, ν⟩ need not be).
    let mut edges = Vec::new();
    for p in points.iter_mut() {
        let d = crate::meanfield::Dynamics::parse(&p.dynamics).expect("a dynamics of the sweep");
        let edge = crate::experiment::Edge {
            random: d.is_random(),
            extrapolated: s.cfg.extrapolate && d.kind() == crate::dynamics::Kind::Sde,
            f32,
            substeps_field: "substeps",
        };
        let nonnegative = p.observable != "phi";
        edge.check(p, nonnegative, &mut edges);
    }
    let mut paired = Vec::new();
    for (a, b) in pairs(&s.dynamics) {
        let ia = s.dynamics.iter().position(|d| *d == a).expect("listed");
        let ib = s.dynamics.iter().position(|d| *d == b).expect("listed");
        for (e, &eta) in s.cfg.etas.iter().enumerate() {
            let (va, vb) = (&runs.values[ia][e], &runs.values[ib][e]);
            let eb = &runs.errors[ib][e];
            for p in pair_diffs([a.name(), b.name()], eta, &[width], &s.times, va, vb, eb) {
                let se = |d: &str| {
                    all.iter()
                        .find(|c| {
                            c.dynamics == d
                                && c.eta == eta
                                && c.t == p.t
                                && c.observable == p.observable
                        })
                        .map_or(f64::NAN, |c| c.stderr)
                };
                let var_pair = se(a.name()).powi(2) + se(b.name()).powi(2);
                let ok = p.count >= 2 && p.stderr > 0.0;
                paired.push(CoupledDiff {
                    dynamics: b,
                    reference: a,
                    estimator: "paired_replicas",
                    eta,
                    t: p.t,
                    observable: p.observable.clone(),
                    mean: p.diff,
                    stderr: if p.count < 2 { f64::NAN } else { p.stderr },
                    solver_bound: p.solver_bound,
                    variance_reduction: ok.then(|| var_pair / (p.stderr * p.stderr)),
                });
            }
        }
    }
    let grid = Grid {
        dynamics: s.dynamics.clone(),
        etas: s.cfg.etas.clone(),
        times: s.times.clone(),
        horizon: *s.times.last().expect("the horizon"),
        observables: OBSERVABLES.iter().map(|o| o.to_string()).collect(),
        substeps_field: "substeps",
    };
    let extra = serde_json::json!({
        "width": width,
        "extrapolate": s.cfg.extrapolate,
        "activation": s.act.name(),
        "test_function": s.phi.name(),
    });
    let mut out = study_output(&s.name, &grid, points, &paired, extra, neuron_steps)?;
    out.warnings.splice(0..0, edges);
    Ok(out)
}

/// A cell as a weak-order point (no closed form for the mean-field network).
fn point(c: &Cell) -> Point {
    Point {
        dynamics: c.dynamics.clone(),
        eta: c.eta,
        t: c.t,
        observable: c.observable.clone(),
        mean: c.mean,
        stderr: c.stderr,
        count: c.count as u64,
        diverged: c.diverged as u64,
        solver_error: c.solver_error,
        solver_error_stderr: c.solver_error_stderr,
        exact: None,
    }
}
