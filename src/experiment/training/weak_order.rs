//! `weak_order` on a data set: the weak error |E g(w_T) − E g(w_T^ref)| of each SDE
//! (sme1, sme2, smf1, smf2, sgf) against sgd, of msme1 against msgd and of gf / mgf
//! against gd, for every η, and its fitted order in η — the small-d study run by the
//! finite-data trainer, on its models (linear, uv, plus_minus, deep_linear) and losses.
//!
//! Each (dynamics, η) runs `paths` replicas on the data set from the model's w₀. With
//! an even `substeps`, every SDE and flow also runs its coupled coarse level
//! (`TrainJob::coarsen` = 2: the same Brownian path, half the substeps), and the solver's
//! error is estimated per replica from the levels (`value_and_error`): for
//! Euler–Maruyama (order 1) the fine level's bias is g(fine) − g(coarse); with
//! `extrapolate` (substeps a multiple of 4) an SDE also runs the coarsest level
//! (a quarter of the substeps), a replica's value is Talay–Tubaro's 2 g₁ − g₂ and its
//! error (O(dt²)) is estimated as the Richardson third of the difference between the
//! extrapolations at dt and 2dt. RK4 (gf, mgf, order 4) is not extrapolated; its error
//! is (g₁ − g₂)/15. The pairs of runs are
//! independent (different streams), so the weak error's standard error is
//! sqrt(se_a² + se_b²). Points, weak errors and orders are the small-d study's
//! (`experiment::weak_order::errors_and_orders`), and so are the files: points.csv,
//! weak_error.csv, weak_error.svg.

use super::config::{Setup, TrainConfig, TrainExperiment};
use super::{collect_with, job, mean_se, Output};
use crate::config::{err, ConfigError};
use crate::data::DataSet;
use crate::experiment::weak_order::{errors_and_orders, Grid};
use crate::output::report::{Point, Report};
use crate::train::loss::mean as mean_loss;
use crate::train::{is_diverged, Dynamics, Trainer, Update};

/// weak_order's observables of the trained w (through β(w)): the train loss L(w) (the
/// model's own loss), |β|² and |β − β*|² (β* the data set's teacher).
pub const OBSERVABLES: [&str; 3] = ["train_loss", "beta_norm2", "beta_err2"];

/// weak_order's own fields (`observables`, `extrapolate`; refused elsewhere) and what it
/// asks of the rest: one data set, a reference and a dynamics compared with it, an
/// even `substeps` for the coarse level. Returns the observables.
pub(super) fn check(
    cfg: &TrainConfig,
    experiment: TrainExperiment,
    dynamics: &[Dynamics],
    ds: &DataSet,
) -> Result<Vec<String>, ConfigError> {
    if experiment != TrainExperiment::WeakOrder {
        if !cfg.observables.is_empty() {
            return err("observables", "only weak_order (on a data set) reads it");
        }
        if cfg.extrapolate {
            return err("extrapolate", "only weak_order (on a data set) reads it");
        }
        return Ok(Vec::new());
    }
    if cfg.datasets != 1 {
        return err(
            "datasets",
            format!(
                "weak_order compares dynamics on one data set: use 1, got {}",
                cfg.datasets
            ),
        );
    }
    if crate::experiment::weak_order::pairs(dynamics).is_empty() {
        return err(
            "dynamics",
            "list a reference and a dynamics compared with it: sgd with sme1, sme2, smf1, smf2 or              sgf; msgd with msme1; gd with gf or mgf",
        );
    }
    if cfg.extrapolate && cfg.substeps % 4 != 0 {
        return err(
            "substeps",
            format!(
                "must be a multiple of 4 with extrapolate (its coupled levels take substeps/2 \
                 and substeps/4), got {}",
                cfg.substeps
            ),
        );
    }
    let mut out = Vec::new();
    let list = if cfg.observables.is_empty() {
        vec!["train_loss".to_string(), "beta_norm2".to_string()]
    } else {
        cfg.observables.clone()
    };
    for (i, o) in list.iter().enumerate() {
        let field = format!("observables[{i}]");
        if !OBSERVABLES.contains(&o.as_str()) {
            return err(
                &field,
                format!(
                    "unknown observable {o:?} (allowed: {})",
                    OBSERVABLES.join(", ")
                ),
            );
        }
        if out.contains(o) {
            return err(&field, format!("{o} listed twice"));
        }
        if o == "beta_err2" && ds.teacher.is_none() {
            return err(
                &field,
                "beta_err2 needs the teacher β* (generate the data, or give data.teacher)",
            );
        }
        out.push(o.clone());
    }
    Ok(out)
}

/// g(w) for observable `name` (`OBSERVABLES`) of the trained weights `w`.
fn observe(s: &Setup, name: &str, w: &[f64], beta: &mut [f64]) -> f64 {
    let ds = &s.data[0];
    s.param.beta(w, beta);
    match name {
        "train_loss" => mean_loss(s.cfg.model.loss, ds, beta),
        "beta_norm2" => beta.iter().map(|b| b * b).sum(),
        _ => {
            let teacher = ds
                .teacher
                .as_ref()
                .expect("checked: beta_err2 has a teacher");
            beta.iter().zip(teacher).map(|(b, t)| (b - t).powi(2)).sum()
        }
    }
}

/// The coupled levels a dynamics runs: its fine level alone (discrete dynamics, or an
/// odd `substeps`), fine and coarse (c = 2), and with `extrapolate` an SDE also the
/// coarsest (c = 4), for the extrapolated value's own error estimate.
pub fn levels(s: &Setup, d: Dynamics) -> Vec<u32> {
    let sub = s.cfg.substeps;
    match d.update() {
        Update::Discrete { .. } => vec![1],
        _ if sub % 2 != 0 => vec![1],
        Update::Sde { .. } if s.cfg.extrapolate => vec![1, 2, 4],
        _ => vec![1, 2],
    }
}

/// A replica's value and its solver-error estimate from g on its levels (fine first):
/// Euler–Maruyama (order 1): g₁ and g₁ − g₂; extrapolated: Talay–Tubaro's 2g₁ − g₂ and,
/// its error being O(dt²), ((2g₁ − g₂) − (2g₂ − g₄))/3; RK4 (order 4): g₁ and
/// (g₁ − g₂)/15.
fn value_and_error(d: Dynamics, g: &[f64]) -> (f64, Option<f64>) {
    match g {
        [g1] => (*g1, None),
        [g1, g2] if d.is_ode() => (*g1, Some((g1 - g2) / 15.0)),
        [g1, g2] => (*g1, Some(g1 - g2)),
        [g1, g2, g4, ..] => {
            let (fine, coarse) = (2.0 * g1 - g2, 2.0 * g2 - g4);
            (fine, Some((fine - coarse) / 3.0))
        }
        [] => (f64::NAN, None),
    }
}

pub fn run(s: &Setup, t: &dyn Trainer, progress: &dyn Fn(f64)) -> anyhow::Result<Output> {
    let cfg = &s.cfg;
    let p = s.param.params(s.data[0].d);
    let mut beta = vec![0.0; s.data[0].d];
    let mut points = Vec::new();
    let mut path_steps = 0.0;
    for (e, &eta) in cfg.etas.iter().enumerate() {
        for &d in &s.dynamics {
            let paths = if d.is_random() { cfg.paths } else { 1 };
            // rows[level][checkpoint][replica], every level on the same Brownian path.
            let mut rows = Vec::new();
            for c in levels(s, d) {
                let mut j = job(s, 0, d, eta, e);
                j.coarsen = c;
                path_steps += paths as f64 * j.path_steps();
                rows.push(collect_with(t, &j, paths, progress)?);
            }
            for (c, &time) in s.times.iter().enumerate() {
                for name in &s.observables {
                    let (mut vals, mut errs, mut diverged) = (Vec::new(), Vec::new(), 0u64);
                    let mut g = Vec::with_capacity(rows.len());
                    for r in 0..paths as usize {
                        if rows.iter().any(|l| is_diverged(&l[c][r])) {
                            diverged += 1;
                            continue;
                        }
                        g.clear();
                        g.extend(
                            rows.iter()
                                .map(|l| observe(s, name, &l[c][r][..p], &mut beta)),
                        );
                        let (v, err) = value_and_error(d, &g);
                        vals.push(v);
                        errs.extend(err);
                    }
                    let (mean, stderr, count) = mean_se(&vals);
                    let (err, err_se, _) = mean_se(&errs);
                    let has = !errs.is_empty();
                    points.push(Point {
                        dynamics: d.name().into(),
                        eta,
                        t: time,
                        observable: name.clone(),
                        mean,
                        stderr,
                        count: count as u64,
                        diverged,
                        solver_error: has.then_some(err),
                        solver_error_stderr: has.then_some(err_se),
                        exact: None,
                    });
                }
            }
        }
    }
    let grid = Grid {
        dynamics: s.dynamics.clone(),
        etas: cfg.etas.clone(),
        times: s.times.clone(),
        horizon: cfg.horizon,
        observables: s.observables.clone(),
    };
    let mut warnings = Vec::new();
    for pt in points.iter().filter(|p| p.diverged > 0) {
        warnings.push(format!(
            "{} η={} t={} {}: {} of {} replicas diverged and were excluded",
            pt.dynamics,
            pt.eta,
            pt.t,
            pt.observable,
            pt.diverged,
            pt.diverged + pt.count
        ));
    }
    let (weak_errors, orders) = errors_and_orders(&grid, &points, &[], &mut warnings);
    let report = Report {
        smflow_version: env!("CARGO_PKG_VERSION").into(),
        experiment: "weak_order".into(),
        name: s.name.clone(),
        backend: t.name().into(),
        adapter: t.adapter(),
        precision: t.precision().name().into(),
        seed: cfg.seed,
        paths: cfg.paths,
        shard: None,
        wall_seconds: 0.0,
        path_steps_per_second: 0.0,
        points,
        weak_errors,
        orders,
        correlations: Vec::new(),
        warnings: Vec::new(),
        target: None,
        config: s.echo.clone(),
    };
    let mut summary = Vec::new();
    for o in &report.orders {
        if o.t == cfg.horizon {
            summary.push(format!(
                "{}–{} {}: weak order {:.2} [{:.2}, {:.2}] over {} step sizes",
                o.pair[0], o.pair[1], o.observable, o.order, o.ci95[0], o.ci95[1], o.n_points
            ));
        }
    }
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
    let results = serde_json::json!({
        "points": report.points,
        "weak_errors": report.weak_errors,
        "orders": report.orders,
        "extrapolate": cfg.extrapolate,
    });
    Ok(Output {
        results,
        files,
        summary,
        path_steps,
        warnings,
    })
}
