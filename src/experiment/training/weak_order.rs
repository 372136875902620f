//! `weak_order` on a data set: the weak error |E g(w_T) − E g(w_T^ref)| of each SDE
//! (sme1, sme2, smf1, smf2, sgf) against sgd, of msme1 against msgd and of gf / mgf
//! against gd, for every η, and its fitted order in η — the small-d study run by the
//! finite-data trainer, on its models (linear, uv, plus_minus, deep_linear) and losses.
//!
//! Each (dynamics, η) runs `paths` replicas on the data set from the model's w₀. With
//! an even `substeps`, every SDE and flow also runs its coupled coarse level
//! (`TrainJob::coarsen` = 2: the same Brownian path, half the substeps), and the solver's
//! error is estimated per replica from the levels (`levels::value_and_error`): for
//! Euler–Maruyama (order 1) the fine level's bias is g(fine) − g(coarse); with
//! `extrapolate` (substeps a multiple of 4) an SDE also runs the coarsest level
//! (a quarter of the substeps), a replica's value is Talay–Tubaro's 2 g₁ − g₂ and its
//! error (O(dt²)) is estimated as the Richardson third of the difference between the
//! extrapolations at dt and 2dt. RK4 (gf, mgf, order 4) is not extrapolated; its error
//! is (g₁ − g₂)/15. On one data set the pairs of runs are independent (different
//! streams), so the weak error's standard error is sqrt(se_a² + se_b²).
//!
//! With `datasets` = D > 1 every run repeats on each data set (its own stream), a point
//! is E_D E[g | D] (the mean of the data sets' means, its standard error from their
//! spread), and a pair's weak error is paired by data set (`paired_by_dataset`,
//! estimator `paired_datasets`). Points, weak errors and orders are the small-d study's
//! (`experiment::weak_order::errors_and_orders`), and so are the files: points.csv,
//! weak_error.csv, weak_error.svg.

use super::config::{Setup, TrainConfig, TrainExperiment};
use super::levels::Levels;
use super::{job, mean_se, Output};
use crate::config::{err, ConfigError};
use crate::data::DataSet;
use crate::experiment::weak_order::{study_output, CoupledDiff, Grid};
use crate::output::report::Point;
use crate::train::loss::mean as mean_loss;
use crate::train::{Dynamics, Trainer};

/// weak_order's observables of the trained w (through β(w)): the train loss L(w) (the
/// model's own loss), |β|² and |β − β*|² (β* the data set's teacher).
pub const OBSERVABLES: [&str; 3] = ["train_loss", "beta_norm2", "beta_err2"];

/// weak_order's own field `observables` (refused elsewhere), `extrapolate` (read by
/// weak_order, least_squares_risk and implicit_bias_sweep: a `substeps` that is a
/// multiple of 4), and what weak_order asks of the rest: a reference and a dynamics
/// compared with it. Returns the observables.
pub(super) fn check(
    cfg: &TrainConfig,
    experiment: TrainExperiment,
    dynamics: &[Dynamics],
    ds: &DataSet,
) -> Result<Vec<String>, ConfigError> {
    if experiment != TrainExperiment::WeakOrder && !cfg.observables.is_empty() {
        return err("observables", "only weak_order (on a data set) reads it");
    }
    if cfg.extrapolate && experiment == TrainExperiment::GdVsGf {
        return err(
            "extrapolate",
            "gd_vs_gf does not read it (weak_order, least_squares_risk and implicit_bias_sweep \
             do)",
        );
    }
    crate::config::check_extrapolate(cfg.extrapolate, cfg.substeps)?;
    if experiment != TrainExperiment::WeakOrder {
        return Ok(Vec::new());
    }
    if crate::experiment::weak_order::pairs(dynamics).is_empty() {
        return err(
            "dynamics",
            "list a reference and a dynamics compared with it: sgd with sme1, sme2, smf1, smf2 or sgf; msgd with msme1; gd with gf or mgf",
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

/// g(w) for observable `name` (`OBSERVABLES`) of the trained weights `w` on data set
/// `ds`.
fn observe(s: &Setup, ds: &DataSet, name: &str, w: &[f64], beta: &mut [f64]) -> f64 {
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

/// One (dynamics, η, t, observable) on one data set: the replicas' values and
/// solver-error estimates, and the diverged count.
#[derive(Default)]
struct Cell {
    vals: Vec<f64>,
    errs: Vec<f64>,
    diverged: u64,
}

/// The point of a cell on one data set: its replicas' mean and standard error.
fn point(d: Dynamics, eta: f64, t: f64, name: &str, c: &Cell) -> Point {
    let (mean, stderr, count) = mean_se(&c.vals);
    let (err, err_se, _) = mean_se(&c.errs);
    let has = !c.errs.is_empty();
    Point {
        dynamics: d.name().into(),
        eta,
        t,
        observable: name.into(),
        mean,
        stderr,
        count: count as u64,
        diverged: c.diverged,
        solver_error: has.then_some(err),
        solver_error_stderr: has.then_some(err_se),
        exact: None,
    }
}

/// The point of a cell over several data sets: E_D E[g | D], the mean of the data sets'
/// means, with the standard error of their spread (which holds the data's randomness
/// as well as the replicas'); counts summed. A data set whose replicas all diverged has
/// no mean and is left out (its replicas are counted as diverged).
fn annealed_point(first: Point, per_dataset: &[Point]) -> Point {
    let means: Vec<f64> = per_dataset.iter().map(|p| p.mean).collect();
    let (mean, stderr, sets) = mean_se(&means);
    // Its spread is over data sets: one data set with a mean has none (not zero).
    let stderr = if sets < 2 { f64::NAN } else { stderr };
    let errs: Vec<f64> = per_dataset.iter().filter_map(|p| p.solver_error).collect();
    let (err, err_se, err_sets) = mean_se(&errs);
    let err_se = if err_sets < 2 { f64::NAN } else { err_se };
    let has = !errs.is_empty();
    Point {
        mean,
        stderr,
        count: per_dataset.iter().map(|p| p.count).sum(),
        diverged: per_dataset.iter().map(|p| p.diverged).sum(),
        solver_error: has.then_some(err),
        solver_error_stderr: has.then_some(err_se),
        ..first
    }
}

pub fn run(s: &Setup, t: &dyn Trainer, progress: &dyn Fn(f64)) -> anyhow::Result<Output> {
    let cfg = &s.cfg;
    let p = s.param.params(s.data[0].d);
    let mut beta = vec![0.0; s.data[0].d];
    let mut points = Vec::new();
    // Per-data-set points of every (dynamics, η, t, observable), in `points`' order.
    let mut by_dataset: Vec<Vec<Point>> = Vec::new();
    let mut path_steps = 0.0;
    for (e, &eta) in cfg.etas.iter().enumerate() {
        for &d in &s.dynamics {
            let paths = if d.is_random() { cfg.paths } else { 1 };
            let at = by_dataset.len();
            for (di, ds) in s.data.iter().enumerate() {
                // Every level on the same Brownian path.
                let job = job(s, di, d, eta, e);
                let lv = Levels::collect(s, t, &job, paths, progress, &mut path_steps)?;
                let mut k = at;
                for (c, &time) in s.times.iter().enumerate() {
                    for name in &s.observables {
                        let mut cell = Cell::default();
                        for r in 0..lv.replicas(c) {
                            let Some(rows) = lv.replica(c, r) else {
                                cell.diverged += 1;
                                continue;
                            };
                            let (v, err) =
                                lv.value(&rows, |w| observe(s, ds, name, &w[..p], &mut beta));
                            // A state within the bound whose observable (or its levels'
                            // combination) overflows is diverged too: counted, never
                            // averaged in, never dropped.
                            if !v.is_finite() || err.is_some_and(|e| !e.is_finite()) {
                                cell.diverged += 1;
                                continue;
                            }
                            cell.vals.push(v);
                            cell.errs.extend(err);
                        }
                        if k == by_dataset.len() {
                            by_dataset.push(Vec::new());
                        }
                        by_dataset[k].push(point(d, eta, time, name, &cell));
                        k += 1;
                    }
                }
            }
        }
    }
    for per in &by_dataset {
        points.push(match per.as_slice() {
            [one] => one.clone(),
            _ => annealed_point(per[0].clone(), per),
        });
    }
    // The small-d engine's honest edges (`experiment::Edge`): every observable here is
    // non-negative, so a negative mean (Talay–Tubaro's 2·fine − coarse on a level near
    // blow-up) is null; a random run needs 2 surviving replicas for a standard error.
    let mut edges = Vec::new();
    let f32 = t.precision() == crate::backend::Precision::F32;
    for pt in points.iter_mut() {
        let d = Dynamics::parse(&pt.dynamics).expect("a dynamics of the study");
        let edge = crate::experiment::Edge {
            random: d.is_random(),
            extrapolated: cfg.extrapolate && d.kind() == crate::dynamics::Kind::Sde,
            f32,
            substeps_field: "substeps",
        };
        edge.check(pt, true, &mut edges);
    }
    let paired = if s.data.len() > 1 {
        paired_by_dataset(s, &by_dataset)
    } else {
        Vec::new()
    };
    let grid = Grid {
        dynamics: s.dynamics.clone(),
        etas: cfg.etas.clone(),
        times: s.times.clone(),
        horizon: cfg.horizon,
        observables: s.observables.clone(),
        substeps_field: "substeps",
    };
    let extra = serde_json::json!({
        "extrapolate": cfg.extrapolate,
        "datasets": s.data.len(),
    });
    let mut out = study_output(&s.name, &grid, points, &paired, extra, path_steps)?;
    out.warnings.splice(0..0, edges);
    Ok(out)
}

/// With several data sets, every pair's difference per data set (the same data for both
/// runs, independent noise): E g_ref − E g_model estimated by the mean over data sets of
/// (mean of the reference's replicas − mean of the model's), its standard error from
/// their spread. Pairing removes the data sets' own spread from the weak error's
/// standard error; what remains is the replicas' noise and how the error itself varies
/// with the data.
fn paired_by_dataset(s: &Setup, by_dataset: &[Vec<Point>]) -> Vec<CoupledDiff> {
    let find = |d: Dynamics, eta: f64, t: f64, name: &str| {
        by_dataset.iter().find(|per| {
            let p = &per[0];
            p.dynamics == d.name() && p.eta == eta && p.t == t && p.observable == name
        })
    };
    let mut out = Vec::new();
    for (a, b) in crate::experiment::weak_order::pairs(&s.dynamics) {
        for &eta in &s.cfg.etas {
            for &t in &s.times {
                for name in &s.observables {
                    let (Some(pa), Some(pb)) = (find(a, eta, t, name), find(b, eta, t, name))
                    else {
                        continue;
                    };
                    let diffs: Vec<f64> = pa.iter().zip(pb).map(|(x, y)| x.mean - y.mean).collect();
                    let (mean, stderr, n) = mean_se(&diffs);
                    let spread = |per: &[Point]| {
                        let m: Vec<f64> = per.iter().map(|p| p.mean).collect();
                        mean_se(&m).1.powi(2)
                    };
                    let bound = |per: &[Point]| {
                        let e: Vec<f64> = per.iter().filter_map(|p| p.solver_error).collect();
                        let (m, se, k) = mean_se(&e);
                        if k == 0 {
                            0.0
                        } else {
                            crate::stats::upper_bound_95(m, se)
                        }
                    };
                    out.push(CoupledDiff {
                        dynamics: b,
                        reference: a,
                        estimator: "paired_datasets",
                        eta,
                        t,
                        observable: name.clone(),
                        mean,
                        stderr: if n < 2 { f64::NAN } else { stderr },
                        solver_bound: bound(pa) + bound(pb),
                        variance_reduction: (n >= 2 && stderr > 0.0)
                            .then(|| (spread(pa) + spread(pb)) / (stderr * stderr)),
                    });
                }
            }
        }
    }
    out
}
