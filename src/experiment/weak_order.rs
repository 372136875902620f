//! Experiment `weak_order`: E g under each dynamics at each η, the weak errors of the
//! continuous models against the discrete scheme they model, and the fitted orders.
//!
//! Pairs: every dynamics against the discrete scheme it models (`Dynamics::reference`:
//! `sgd`, or `msgd` for msme1) when listed, and gf/mgf also against `gd` (when listed). A weak error is *resolved* when it exceeds 3 standard
//! errors; only resolved points enter the order fit (DESIGN §7). `solver_ok` holds when
//! the upper 95% bound of the solver's own error estimate is ≤ 1/10 of the weak error.
//!
//! Estimators (DESIGN §7b): a pair (sgd, SDE) whose SDE run is coupled takes its error
//! from the per-replica differences D of that run (mean and stderr of D, and the
//! variance reduction (Var g_sgd + Var g_sde)/Var D measured on the same replicas);
//! every other pair is the difference of two independent means.

use crate::dynamics::{Channel, Dynamics, RunSpec};
use crate::experiment::config::Checked;
use crate::experiment::training::Output;
use crate::experiment::{Collected, Plan};
use crate::observables::Observable;
use crate::output::report::{Order, Point, Report, WeakError};
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
        Dynamics::Msgd | Dynamics::Msme1 => m.exact_momentum_mean(
            obs,
            x0,
            spec.eta,
            spec.friction,
            spec.batch as usize,
            k,
            spec.dynamics == Dynamics::Msme1,
        ),
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

/// A paired estimate of E g_ref − E g_model at one (t, observable): a coupled run's
/// per-replica differences D = g_sgd − g_sde, or (the trainer's `weak_order` on several
/// data sets) the per-data-set differences of the two runs' means.
#[derive(Clone, Debug)]
pub struct CoupledDiff {
    /// The pair: the dynamics and its reference (sgd, msgd or gd).
    pub dynamics: Dynamics,
    pub reference: Dynamics,
    /// How the pair is paired: "coupled" (common noise, per replica) or
    /// "paired_datasets" (per data set, on several).
    pub estimator: &'static str,
    pub eta: f64,
    pub t: f64,
    pub observable: String,
    /// Mean of D (shift added back) and its standard error (NaN with < 2 paths).
    pub mean: f64,
    pub stderr: f64,
    /// Upper 95% bound of D's solver-error estimate.
    pub solver_bound: f64,
    /// (Var g_sgd + Var g_sde) / Var D over the same replicas (or data sets).
    pub variance_reduction: Option<f64>,
}

/// The differences of every coupled run of the plan.
pub fn coupled_diffs(plan: &Plan, col: &Collected) -> Vec<CoupledDiff> {
    let ck = &plan.checked;
    let mut out = Vec::new();
    for (ri, run) in plan.runs.iter().enumerate() {
        if run.spec.coupling.is_none() {
            continue;
        }
        let total = col.total(ri);
        let sh = crate::backend::shifts(&ck.model, &run.spec);
        let (n_stats, n_obs) = (run.spec.n_stats(), run.spec.observables.len());
        let at = |ch: Channel| {
            run.spec
                .channels()
                .iter()
                .position(|c| *c == ch)
                .expect("coupled channel")
                * n_obs
        };
        for (c, &t) in ck.times.iter().enumerate() {
            for (o, obs) in run.spec.observables.iter().enumerate() {
                let k = |ch: Channel| c * n_stats + at(ch) + o;
                let d = &total[k(Channel::Difference)];
                let (mean, se) = d.mean_se();
                let se_of = |ch: Channel| total[k(ch)].mean_se().1;
                let var_pair = se_of(Channel::Sgd).powi(2) + se_of(Channel::Value).powi(2);
                let few = d.count < 2;
                let (e, e_se) = d.solver_error();
                out.push(CoupledDiff {
                    dynamics: run.spec.dynamics,
                    reference: run.spec.dynamics.reference().unwrap_or(Dynamics::Sgd),
                    estimator: "coupled",
                    eta: run.spec.eta,
                    t,
                    observable: obs.to_string(),
                    mean: mean + sh[k(Channel::Difference)],
                    stderr: if few { f64::NAN } else { se },
                    solver_bound: if run.spec.has_solver_error() {
                        crate::stats::upper_bound_95(e, e_se)
                    } else {
                        0.0
                    },
                    variance_reduction: (!few && se > 0.0).then(|| var_pair / (se * se)),
                });
            }
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
        (Some(e), Some(s)) => crate::stats::upper_bound_95(e, s),
        _ => 0.0,
    }
}

/// What a weak-order study compares: its dynamics, step sizes, report times (the last
/// is the horizon) and observables — of the small-d engine (`Grid::of`) or of a data
/// set's (`experiment::training::weak_order`).
pub struct Grid {
    pub dynamics: Vec<Dynamics>,
    pub etas: Vec<f64>,
    pub times: Vec<f64>,
    pub horizon: f64,
    pub observables: Vec<String>,
    /// The config field that sets the solver's substeps (named in warnings):
    /// `sde.substeps` in the small-d schema, `substeps` in the trainer's and
    /// mean-field's.
    pub substeps_field: &'static str,
}

impl Grid {
    pub fn of(ck: &Checked) -> Grid {
        Grid {
            dynamics: ck.dynamics.clone(),
            etas: ck.etas.clone(),
            times: ck.times.clone(),
            horizon: ck.horizon,
            observables: ck.observables.iter().map(|o| o.to_string()).collect(),
            substeps_field: "sde.substeps",
        }
    }
}

/// The weak errors of every (reference, model) pair at every (η, t, observable) of the
/// grid, from the points' means (or the coupled differences where there are some), and
/// their fitted orders in η.
pub fn errors_and_orders(
    ck: &Grid,
    pts: &[Point],
    coupled: &[CoupledDiff],
    warnings: &mut Vec<String>,
) -> (Vec<WeakError>, Vec<Order>) {
    let mut errors = Vec::new();
    let mut orders = Vec::new();
    for (a, b) in pairs(&ck.dynamics) {
        for &t in &ck.times {
            for name in &ck.observables {
                let name = name.clone();
                let mut fit_pts = Vec::new();
                for &eta in &ck.etas {
                    let (Some(pa), Some(pb)) =
                        (find(pts, a, eta, t, &name), find(pts, b, eta, t, &name))
                    else {
                        continue;
                    };
                    let pinned = coupled.iter().find(|c| {
                        c.reference == a
                            && c.dynamics == b
                            && c.eta == eta
                            && c.t == t
                            && c.observable == name
                    });
                    // signed = E g_b − E g_a; D = g_sgd − g_b per replica.
                    let (signed, stderr, bound, estimator, reduction) = match pinned {
                        Some(c) => (
                            -c.mean,
                            c.stderr,
                            c.solver_bound,
                            c.estimator,
                            c.variance_reduction,
                        ),
                        None => (
                            pb.mean - pa.mean,
                            (pa.stderr.powi(2) + pb.stderr.powi(2)).sqrt(),
                            solver_bound(pa) + solver_bound(pb),
                            "independent",
                            None,
                        ),
                    };
                    let error = signed.abs();
                    let resolved = error.is_finite() && error > 3.0 * stderr;
                    let solver_ok = bound <= error / 10.0;
                    if resolved {
                        fit_pts.push((eta, error, stderr));
                    }
                    if resolved && !solver_ok && t == ck.horizon {
                        warnings.push(format!(
                            "{a}–{b} η={eta} {name}: the solver's error bound ({bound:.2e}) is not ≤ 1/10 of the weak error ({error:.2e}); raise {}",
                            ck.substeps_field
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
                        estimator: estimator.into(),
                        variance_reduction: reduction,
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
                        "{a}–{b} {name} at t={t}: fewer than 2 resolved weak errors (error > 3 stderr); no order fitted — raise paths (or, where the warnings say paths diverged, lower η)"
                    )),
                    None => {}
                }
            }
        }
    }
    (errors, orders)
}

/// A weak-order study run by the trainer (on a data set) or on the mean-field network,
/// from its points and paired differences: a warning per point with diverged
/// replicas, the weak errors and orders (`errors_and_orders`), points.csv,
/// weak_error.csv and weak_error.svg as the small-d study writes them, a summary line
/// per order at the horizon, and results {points, weak_errors, orders} plus the fields
/// of `extra`.
pub fn study_output(
    name: &str,
    grid: &Grid,
    points: Vec<Point>,
    paired: &[CoupledDiff],
    extra: serde_json::Value,
    path_steps: f64,
) -> anyhow::Result<Output> {
    let mut warnings: Vec<String> = points
        .iter()
        .filter_map(|p| p.diverged_warning("replicas"))
        .collect();
    let (weak_errors, orders) = errors_and_orders(grid, &points, paired, &mut warnings);
    let horizon = grid.horizon;
    // Only the tables and the name reach the files.
    let report = Report {
        smflow_version: env!("CARGO_PKG_VERSION").into(),
        experiment: "weak_order".into(),
        name: name.into(),
        backend: String::new(),
        adapter: String::new(),
        precision: String::new(),
        seed: 0,
        paths: 0,
        shard: None,
        wall_seconds: 0.0,
        path_steps_per_second: 0.0,
        points,
        weak_errors,
        orders,
        correlations: Vec::new(),
        ensembles: Vec::new(),
        paired: Vec::new(),
        warnings: Vec::new(),
        target: None,
        config: serde_json::Value::Null,
    };
    let summary = report
        .orders
        .iter()
        .filter(|o| o.t == horizon)
        .map(|o| {
            format!(
                "{}–{} {}: weak order {:.2} [{:.2}, {:.2}] over {} step sizes",
                o.pair[0], o.pair[1], o.observable, o.order, o.ci95[0], o.ci95[1], o.n_points
            )
        })
        .collect();
    let files = vec![
        (
            "points.csv".to_string(),
            crate::output::csv::points_csv_string(&report),
        ),
        (
            "weak_error.csv".to_string(),
            crate::output::csv::weak_error_csv_string(&report),
        ),
        (
            "weak_error.svg".to_string(),
            crate::output::svg::weak_error_svg_string(&report)?,
        ),
    ];
    let mut results = serde_json::json!({
        "points": report.points,
        "weak_errors": report.weak_errors,
        "orders": report.orders,
    });
    if let (Some(r), Some(x)) = (results.as_object_mut(), extra.as_object()) {
        r.extend(x.clone());
    }
    Ok(Output {
        results,
        files,
        summary,
        path_steps,
        warnings,
    })
}
