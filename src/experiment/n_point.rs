//! Experiment `n_point`: several particles of one replica started at different points
//! and driven by the same data (SGD), the same cylindrical noise (SMF) or independent
//! noises (SME). SMF reproduces SGD's joint (n-point) motion; SME only the one-point
//! laws (seed 001). Reported: per-particle means and E|x_p − x_q|² (with the paths'
//! standard errors), and the correlation of the particles' first coordinates and n·Var
//! of their mean over the n particles (the ensemble's fluctuation, as width_sweep's for
//! neurons), with batch-means standard errors.

use super::{Collected, Plan};
use crate::backend::shifts;
use crate::observables::Observable;
use crate::output::report::{Correlation, Ensemble};

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

/// Pearson correlation from the shifted moments of one batch (or the total), or why
/// it is undefined.
fn correlation(m: &[crate::stats::Moments], sh: &[f64], ix: [usize; 5]) -> Result<f64, String> {
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

/// Correlations and mean squared distances of every particle pair; every value that
/// cannot be estimated is null (NaN) with its reason in `warnings`.
pub fn correlations(plan: &Plan, col: &Collected, warnings: &mut Vec<String>) -> Vec<Correlation> {
    let mut out = Vec::new();
    for (ri, run) in plan.runs.iter().enumerate() {
        let obs = &run.spec.observables;
        let n_obs = obs.len();
        let sh = shifts(&plan.checked.model, &run.spec);
        let total = col.total(ri);
        let np = run.spec.particles() as u8;
        for (c, &t) in plan.checked.times.iter().enumerate() {
            let at = |ms: &[crate::stats::Moments]| ms[c * n_obs..(c + 1) * n_obs].to_vec();
            let shc = &sh[c * n_obs..(c + 1) * n_obs];
            for p in 0..np {
                for q in p + 1..np {
                    let here = format!(
                        "{} η={} t={t} particles [{p}, {q}]",
                        run.spec.dynamics.name(),
                        run.spec.eta
                    );
                    let ix = [
                        index_of(obs, Observable::X0(p)),
                        index_of(obs, Observable::Prod(p, p)),
                        index_of(obs, Observable::X0(q)),
                        index_of(obs, Observable::Prod(q, q)),
                        index_of(obs, Observable::Prod(p, q)),
                    ];
                    let (corr, stderr) = batch_estimate(
                        |m| correlation(m, shc, ix),
                        &at(&total),
                        col.moments[ri].iter().map(|b| at(b)),
                        &format!("{here}: correlation"),
                        warnings,
                    );
                    let d = index_of(obs, Observable::Dist2(p, q));
                    let (dm, dse) = total[c * n_obs + d].mean_se();
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
fn ensemble_n_var(
    m: &[crate::stats::Moments],
    sh: &[f64],
    obs: &[Observable],
    n: u8,
) -> Result<f64, String> {
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
        let n_obs = obs.len();
        let sh = shifts(&plan.checked.model, &run.spec);
        let np = run.spec.particles() as u8;
        for (c, &t) in plan.checked.times.iter().enumerate() {
            let at = |ms: &[crate::stats::Moments]| ms[c * n_obs..(c + 1) * n_obs].to_vec();
            let shc = &sh[c * n_obs..(c + 1) * n_obs];
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

/// A nonlinear estimate (a correlation, n·Var) from a run's total moments at one
/// checkpoint, and its standard error from the same estimate on each batch of paths
/// (batches with at least 2 paths); null, with the reason in `warnings` (each line
/// starting with `what`), where either is undefined.
fn batch_estimate(
    estimate: impl Fn(&[crate::stats::Moments]) -> Result<f64, String>,
    total: &[crate::stats::Moments],
    batches: impl Iterator<Item = Vec<crate::stats::Moments>>,
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
