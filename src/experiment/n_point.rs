//! Experiment `n_point`: several particles of one replica started at different points
//! and driven by the same data (SGD), the same cylindrical noise (SMF) or independent
//! noises (SME). SMF reproduces SGD's joint (n-point) motion; SME only the one-point
//! laws (seed 001). Reported: per-particle means and E|x_p − x_q|² (with the paths'
//! standard errors), and the correlation of the particles' first coordinates and n·Var
//! of their mean over the n particles (the ensemble's fluctuation, as width_sweep's for
//! neurons), with batch-means standard errors. With `"estimator": "coupled"` each SMF
//! run also carries SGD's particles, driven by the data its noise is pinned to (DESIGN
//! §7b), and reports SGD − SMF of each of these statistics per replica (`Paired`):
//! the difference of the joint motions with a paired standard error.

use super::{Collected, Plan};
use crate::backend::shifts;
use crate::dynamics::RunSpec;
use crate::observables::Observable;
use crate::output::report::{Correlation, Ensemble, Order, Paired};
use crate::stats::fit::fit_order;
use crate::stats::Moments;

/// Batches whose correlations give the standard error of the correlation.
pub const BATCHES: u64 = 20;

/// For each particle p: x_p[0] and x_p[0]²; for each pair p < q: x_p[0]·x_q[0] and
/// |x_p − x_q|².
pub fn observables(particles: usize) -> Vec<Observable> {
    let mut v = Vec::new();
    for p in 0..particles as u8 {
        v.push(Observable::X0(p));
        v.push(Observable::Prod(p, p));
    }
    for p in 0..particles as u8 {
        for q in p + 1..particles as u8 {
            v.push(Observable::Prod(p, q));
            v.push(Observable::Dist2(p, q));
        }
    }
    v
}

fn index_of(obs: &[Observable], o: Observable) -> usize {
    obs.iter()
        .position(|x| *x == o)
        .expect("n_point observable present")
}

/// Indices of E x_p, E x_p², E x_q, E x_q², E x_p x_q (first coordinates) among `obs`,
/// as `correlation` takes them.
fn correlation_moments(obs: &[Observable], p: u8, q: u8) -> [usize; 5] {
    [
        Observable::X0(p),
        Observable::Prod(p, p),
        Observable::X0(q),
        Observable::Prod(q, q),
        Observable::Prod(p, q),
    ]
    .map(|o| index_of(obs, o))
}

/// Pearson correlation from the shifted moments of one batch (or the total), or why
/// it is undefined.
fn correlation(m: &[Moments], sh: &[f64], ix: [usize; 5]) -> Result<f64, String> {
    let mean = |i: usize| m[i].mean_se().0 + sh[i];
    let (ex, exx, ey, eyy, exy) = (
        mean(ix[0]),
        mean(ix[1]),
        mean(ix[2]),
        mean(ix[3]),
        mean(ix[4]),
    );
    let cov = exy - ex * ey;
    let vx = exx - ex * ex;
    let vy = eyy - ey * ey;
    if !(vx > 0.0 && vy > 0.0) {
        return Err(format!(
            "the variances of the first coordinates are {vx:e} and {vy:e}, not both > 0 \
             (a particle that does not move, too few paths, or Talay–Tubaro extrapolated \
             moments that are not a valid law)"
        ));
    }
    let r = cov / (vx * vy).sqrt();
    if !r.is_finite() {
        return Err(format!("cov {cov:e} / sqrt({vx:e}·{vy:e}) is not finite"));
    }
    Ok(r)
}

/// The statistics of channel `ch` (0: the run's own values; a coupled run's 1: SGD's,
/// 2: their difference; `RunSpec::stat`) at checkpoint `c`: one per observable.
fn channel<X: Clone>(spec: &RunSpec, all: &[X], c: usize, ch: usize) -> Vec<X> {
    let n_obs = spec.observables.len();
    let at = c * spec.n_stats() + ch * n_obs;
    all[at..at + n_obs].to_vec()
}

/// Correlations and mean squared distances of every particle pair; every value that
/// cannot be estimated is null (NaN) with its reason in `warnings`.
pub fn correlations(plan: &Plan, col: &Collected, warnings: &mut Vec<String>) -> Vec<Correlation> {
    let mut out = Vec::new();
    for (ri, run) in plan.runs.iter().enumerate() {
        let obs = &run.spec.observables;
        let sh = shifts(&plan.checked.model, &run.spec);
        let total = col.total(ri);
        let np = run.spec.particles() as u8;
        for (c, &t) in plan.checked.times.iter().enumerate() {
            let at = |ms: &[Moments]| channel(&run.spec, ms, c, 0);
            let shc = &channel(&run.spec, &sh, c, 0);
            let total = at(&total);
            for p in 0..np {
                for q in p + 1..np {
                    let here = format!(
                        "{} η={} t={t} particles [{p}, {q}]",
                        run.spec.dynamics.name(),
                        run.spec.eta
                    );
                    let ix = correlation_moments(obs, p, q);
                    let (corr, stderr) = batch_estimate(
                        |m| correlation(m, shc, ix),
                        &total,
                        col.moments[ri].iter().map(|b| at(b)),
                        &format!("{here}: correlation"),
                        warnings,
                    );
                    let d = index_of(obs, Observable::Dist2(p, q));
                    let (dm, dse) = total[d].mean_se();
                    let (mut mean_dist2, mut dist2_se) = (dm + shc[d], dse);
                    if !(mean_dist2 >= 0.0) {
                        warnings.push(format!(
                            "{here}: E|x_p − x_q|² is null: the estimate {mean_dist2:e} is not ≥ 0{}",
                            if run.spec.levels() > 2 {
                                " (Talay–Tubaro extrapolation 2·fine − coarse is dominated by the discretisation error: raise sde.substeps or set sde.extrapolate false)"
                            } else {
                                ""
                            }
                        ));
                        (mean_dist2, dist2_se) = (f64::NAN, f64::NAN);
                    }
                    out.push(Correlation {
                        dynamics: run.spec.dynamics.name().into(),
                        eta: run.spec.eta,
                        t,
                        particles: [p as usize, q as usize],
                        correlation: corr,
                        stderr,
                        mean_dist2,
                        mean_dist2_stderr: dist2_se,
                    });
                }
            }
        }
    }
    out
}

/// n·Var(x̄) of the mean x̄ of the n particles' first coordinates, from the shifted
/// moments of one batch (or the total) of N paths: N/(N − 1) · (1/n) [Σ_p Σ_q E x_p x_q −
/// (Σ_p E x_p)²] (the unbiased covariance: a batch holds N/20 paths), or why it is
/// undefined. A value below 0 by rounding only (a deterministic run) is 0.
fn ensemble_n_var(m: &[Moments], sh: &[f64], obs: &[Observable], n: u8) -> Result<f64, String> {
    let count = m[index_of(obs, Observable::X0(0))].count as f64;
    if count < 2.0 {
        return Err(format!("{count} paths, at least 2 are needed"));
    }
    let mean = |o: Observable| {
        let i = index_of(obs, o);
        m[i].mean_se().0 + sh[i]
    };
    let (mut second, mut first) = (0.0, 0.0);
    for p in 0..n {
        first += mean(Observable::X0(p));
        second += mean(Observable::Prod(p, p));
        for q in p + 1..n {
            second += 2.0 * mean(Observable::Prod(p, q));
        }
    }
    let v = (second - first * first) / n as f64 * count / (count - 1.0);
    let rounding = 64.0 * f64::EPSILON * second.abs() / n as f64;
    match v {
        v if v >= 0.0 => Ok(v),
        v if -v <= rounding => Ok(0.0),
        v => Err(format!(
            "the estimate {v:e} is not ≥ 0 (Talay–Tubaro extrapolated moments need not be a law: raise sde.substeps or set sde.extrapolate false)"
        )),
    }
}

/// n·Var of every run's ensemble mean (`Ensemble`) at every checkpoint, with a
/// batch-means standard error; null with the reason in `warnings` where it is undefined.
pub fn ensembles(plan: &Plan, col: &Collected, warnings: &mut Vec<String>) -> Vec<Ensemble> {
    let mut out = Vec::new();
    for (ri, run) in plan.runs.iter().enumerate() {
        let obs = &run.spec.observables;
        let sh = shifts(&plan.checked.model, &run.spec);
        let np = run.spec.particles() as u8;
        for (c, &t) in plan.checked.times.iter().enumerate() {
            let at = |ms: &[Moments]| channel(&run.spec, ms, c, 0);
            let shc = &channel(&run.spec, &sh, c, 0);
            let here = format!("{} η={} t={t}", run.spec.dynamics.name(), run.spec.eta);
            let (n_var, stderr) = if run.spec.dynamics.is_random() {
                batch_estimate(
                    |m| ensemble_n_var(m, shc, obs, np),
                    &at(&col.total(ri)),
                    col.moments[ri].iter().map(|b| at(b)),
                    &format!("{here}: n·Var of the ensemble mean"),
                    warnings,
                )
            } else {
                // gd, gf, mgf: one deterministic path, no fluctuation.
                (0.0, 0.0)
            };
            out.push(Ensemble {
                dynamics: run.spec.dynamics.name().into(),
                eta: run.spec.eta,
                t,
                particles: np as usize,
                n_var,
                n_var_stderr: stderr,
            });
        }
    }
    out
}

/// SGD − SMF of every statistic of each coupled run (`"estimator": "coupled"`), from the
/// same replicas: E|x_p − x_q|² per pair from the per-replica differences, the
/// correlation per pair and the ensemble's n·Var by batch means of the two channels'
/// estimates. `correlations` and `ensembles` (this plan's) give the independent runs'
/// standard error beside each, for what the pairing saves.
pub fn paired(
    plan: &Plan,
    col: &Collected,
    correlations: &[Correlation],
    ensembles: &[Ensemble],
    warnings: &mut Vec<String>,
) -> Vec<Paired> {
    let mut out = Vec::new();
    let horizon = plan.checked.times.iter().copied().fold(0.0, f64::max);
    for (ri, run) in plan.runs.iter().enumerate() {
        let (spec, Some(reference)) = (&run.spec, run.spec.dynamics.reference()) else {
            continue;
        };
        if spec.coupling.is_none() {
            continue;
        }
        let (obs, np) = (&spec.observables, spec.particles() as u8);
        let sh = shifts(&plan.checked.model, spec);
        let total = col.total(ri);
        let (name, refname) = (spec.dynamics.name(), reference.name());
        for (c, &t) in plan.checked.times.iter().enumerate() {
            // Channels 1 (SGD) and 0 (this run) side by side: index o and n_obs + o.
            let both = |ms: &[Moments]| [channel(spec, ms, c, 1), channel(spec, ms, c, 0)].concat();
            let shc = [channel(spec, &sh, c, 1), channel(spec, &sh, c, 0)].concat();
            let n_obs = obs.len();
            let (sgd, own) = shc.split_at(n_obs);
            let here = format!("{refname} − {name} η={} t={t}", spec.eta);
            // The two runs' own estimates (value, stderr) beside the paired difference.
            let row = |quantity: &str,
                       particles,
                       (difference, stderr),
                       estimates: [Option<(f64, f64)>; 2]| {
                let [(reference_value, se_r), (value, se_d)] =
                    estimates.map(|e| e.unwrap_or((f64::NAN, f64::NAN)));
                Paired {
                    resolved: false, // set by `paired_orders`
                    reference: refname.into(),
                    dynamics: name.into(),
                    eta: spec.eta,
                    t,
                    quantity: quantity.into(),
                    particles,
                    difference,
                    stderr,
                    reference_value,
                    value,
                    independent_stderr: se_r.hypot(se_d),
                }
            };
            for p in 0..np {
                for q in p + 1..np {
                    let corr_of = |dy: &str| {
                        correlations.iter().find(|e| {
                            e.dynamics == dy
                                && e.eta == spec.eta
                                && e.t == t
                                && e.particles == [p as usize, q as usize]
                        })
                    };
                    let (cr, cd) = (corr_of(refname), corr_of(name));
                    let d = index_of(obs, Observable::Dist2(p, q));
                    let dm = &channel(spec, &total, c, 2)[d];
                    let diff = dm.mean_se();
                    let diff = (diff.0 + channel(spec, &sh, c, 2)[d], diff.1);
                    // As the weak-order study: a resolved difference the solver's own
                    // error could make (its 95% bound above a tenth of it) is flagged.
                    if spec.has_solver_error() && t == horizon {
                        let (e, e_se) = dm.solver_error();
                        let bound = crate::stats::upper_bound_95(e, e_se);
                        let size = diff.0.abs();
                        if size > 3.0 * diff.1 && bound > size / 10.0 {
                            warnings.push(format!(
                                "{here} E|x_{p} − x_{q}|²: the solver's error bound ({bound:.2e}) is not ≤ 1/10 of the paired difference ({size:.2e}); raise sde.substeps"
                            ));
                        }
                    }
                    out.push(row(
                        "mean_dist2",
                        Some([p as usize, q as usize]),
                        diff,
                        [cr, cd].map(|e| e.map(|e| (e.mean_dist2, e.mean_dist2_stderr))),
                    ));
                    let ix = correlation_moments(obs, p, q);
                    let est = batch_estimate(
                        |m| {
                            Ok(correlation(&m[..n_obs], sgd, ix)?
                                - correlation(&m[n_obs..], own, ix)?)
                        },
                        &both(&total),
                        col.moments[ri].iter().map(|b| both(b)),
                        &format!("{here} particles [{p}, {q}]: paired correlation difference"),
                        warnings,
                    );
                    out.push(row(
                        "correlation",
                        Some([p as usize, q as usize]),
                        est,
                        [cr, cd].map(|e| e.map(|e| (e.correlation, e.stderr))),
                    ));
                }
            }
            let ens_of = |dy: &str| {
                ensembles
                    .iter()
                    .find(|e| e.dynamics == dy && e.eta == spec.eta && e.t == t)
                    .map(|e| (e.n_var, e.n_var_stderr))
            };
            let est = batch_estimate(
                |m| {
                    Ok(ensemble_n_var(&m[..n_obs], sgd, obs, np)?
                        - ensemble_n_var(&m[n_obs..], own, obs, np)?)
                },
                &both(&total),
                col.moments[ri].iter().map(|b| both(b)),
                &format!("{here}: paired n·Var difference"),
                warnings,
            );
            out.push(row("n_var", None, est, [ens_of(refname), ens_of(name)]));
        }
    }
    out
}

/// The order in η of each paired difference (`paired`) over the plan's step sizes, by
/// the weak-order study's weighted fit of |difference| at the η where it is resolved
/// (> 3 standard errors, and beyond rounding relative to the two runs' values: a
/// statistic both models give exactly, such as a correlation of ±1 for both, has no
/// difference to fit), with a warning where the resolved differences change sign. Named as the weak orders: pair
/// [reference, dynamics], observable the quantity and its particles ("mean_dist2[0,1]",
/// "n_var").
pub fn paired_orders(
    plan: &Plan,
    paired: &mut [Paired],
    f32: bool,
    warnings: &mut Vec<String>,
) -> Vec<Order> {
    let rounding = |o: &Paired| {
        let scale = o.reference_value.abs().max(o.value.abs());
        (if f32 { 1e-5 } else { 1e-9 }) * if scale.is_finite() { scale } else { 1.0 }
    };
    for o in paired.iter_mut() {
        let size = o.difference.abs();
        o.resolved = size.is_finite() && size > 3.0 * o.stderr && size > rounding(o);
    }
    let paired = &*paired;
    let mut out = Vec::new();
    let horizon = plan.checked.times.iter().copied().fold(0.0, f64::max);
    let mut seen: Vec<(&str, &str, f64, &str, Option<[usize; 2]>)> = Vec::new();
    for e in paired {
        let key = (&*e.reference, &*e.dynamics, e.t, &*e.quantity, e.particles);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let same = paired
            .iter()
            .filter(|o| (&*o.reference, &*o.dynamics, o.t, &*o.quantity, o.particles) == key);
        let pts: Vec<(f64, f64, f64)> = same
            .clone()
            .filter(|o| o.resolved)
            .map(|o| (o.eta, o.difference, o.stderr))
            .collect();
        let observable = e.observable();
        // |difference| ∝ η^order only where the difference keeps its sign.
        if pts.iter().any(|p| p.1 > 0.0) && pts.iter().any(|p| p.1 < 0.0) {
            warnings.push(format!(
                "{}−{} {observable} at t={}: the resolved paired differences change sign between the step sizes (pre-asymptotic η, or a vanishing leading term): the order fitted to |difference| is no single power of η",
                e.reference, e.dynamics, e.t
            ));
        }
        let pts: Vec<_> = pts.into_iter().map(|(h, d, se)| (h, d.abs(), se)).collect();
        match fit_order(&pts) {
            Some(f) => out.push(Order {
                pair: [e.reference.clone(), e.dynamics.clone()],
                observable,
                t: e.t,
                order: f.order,
                stderr: f.stderr,
                ci95: f.ci95,
                n_points: f.n_points,
                intercept: f.intercept,
            }),
            // Equal to rounding at every η: nothing to fit, and nothing to warn of.
            None if same.clone().all(|o| o.difference.abs() <= rounding(o)) => {}
            None if e.t == horizon && same.count() >= 2 && pts.len() < 2 => warnings.push(format!(
                "{}−{} {observable} at t={}: fewer than 2 paired differences resolved (> 3 stderr); no order fitted — raise paths (or, where the warnings say paths diverged, lower η)",
                e.reference, e.dynamics, e.t
            )),
            None => {}
        }
    }
    out
}

/// A nonlinear estimate (a correlation, n·Var) from a run's total moments at one
/// checkpoint, and its standard error from the same estimate on each batch of paths
/// (batches with at least 2 paths); null, with the reason in `warnings` (each line
/// starting with `what`), where either is undefined.
fn batch_estimate(
    estimate: impl Fn(&[Moments]) -> Result<f64, String>,
    total: &[Moments],
    batches: impl Iterator<Item = Vec<Moments>>,
    what: &str,
    warnings: &mut Vec<String>,
) -> (f64, f64) {
    match estimate(total) {
        Ok(v) => {
            let per_batch: Vec<f64> = batches
                .filter(|b| b[0].count > 1)
                .filter_map(|b| estimate(&b).ok())
                .collect();
            let se = batch_stderr(&per_batch);
            if se.is_nan() {
                warnings.push(format!(
                    "{what} stderr is null: {} of {BATCHES} path batches give an estimate, at least 2 are needed",
                    per_batch.len()
                ));
            }
            (v, se)
        }
        Err(why) => {
            warnings.push(format!("{what} is null: {why}"));
            (f64::NAN, f64::NAN)
        }
    }
}

/// Standard error of the mean of batch estimates (NaN with fewer than 2 batches;
/// 0 when the estimate is deterministic).
fn batch_stderr(v: &[f64]) -> f64 {
    let n = v.len();
    if n < 2 {
        return f64::NAN;
    }
    let m = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt()
}
