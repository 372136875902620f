//! Statistics of a width sweep from the per-replica observables: mean ± standard error,
//! the fluctuation n·Var with its standard error, the gap to the widest network (paired
//! by replica: widths share their first neurons and their data draws) with its fitted
//! rate in n, and SGD vs SMF (GD vs GF) paired differences at equal n and η. An SDE or
//! flow run on coupled solver levels also reports, per cell and per pair, its solver's
//! error estimated from the levels (`solver::levels`), replica by replica.

use crate::meanfield::OBSERVABLES;
use crate::stats::fit::fit_order;
use serde::Serialize;

/// Per-replica observables of one run: `[checkpoint][replica][observable]`.
pub type Runs = Vec<Vec<[f64; 4]>>;

#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub dynamics: String,
    pub eta: f64,
    pub width: usize,
    pub t: f64,
    pub observable: String,
    pub mean: f64,
    pub stderr: f64,
    /// Sample variance over replicas and n times it, with standard errors.
    pub var: f64,
    pub n_var: f64,
    pub n_var_stderr: f64,
    pub count: usize,
    pub diverged: usize,
    /// E Φ(ν^n) − E Φ(ν^{n_max}) (paired by replica); NaN at the widest width.
    pub gap: f64,
    pub gap_stderr: f64,
    /// Mean and standard error of the replicas' solver-error estimates (an SDE or flow
    /// on coupled levels; None otherwise).
    pub solver_error: Option<f64>,
    pub solver_error_stderr: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rate {
    pub dynamics: String,
    pub eta: f64,
    pub t: f64,
    pub observable: String,
    /// |gap| ≈ C n^{−rate}.
    pub rate: f64,
    pub ci95: [f64; 2],
    pub n_points: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct PairDiff {
    /// E Φ under the first minus under the second dynamics.
    pub pair: [String; 2],
    pub eta: f64,
    pub width: usize,
    pub t: f64,
    pub observable: String,
    pub diff: f64,
    pub stderr: f64,
    pub count: usize,
    /// Upper 95% bound |mean e| + 1.96 se of the second dynamics' solver error e over
    /// the same replicas (0 without levels), and whether it is ≤ |diff|/10 (DESIGN §7:
    /// the solver does not decide the gap).
    pub solver_bound: f64,
    pub solver_ok: bool,
}

/// Mean, standard error, sample variance, standard error of the variance, count of
/// the finite values.
pub fn describe(v: &[f64]) -> (f64, f64, f64, f64, usize) {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let m = f.len();
    if m < 2 {
        let mean = f.first().copied().unwrap_or(f64::NAN);
        return (mean, f64::NAN, f64::NAN, f64::NAN, m);
    }
    let mf = m as f64;
    let mean = f.iter().sum::<f64>() / mf;
    let c2 = f.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
    let m4 = f.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / mf;
    let var = c2 / (mf - 1.0);
    // Var(s²) ≈ (μ₄ − σ⁴)/M for large M.
    let var_se = ((m4 - (c2 / mf).powi(2)).max(0.0) / mf).sqrt();
    (mean, (var / mf).sqrt(), var, var_se, m)
}

/// Paired difference `a_r − b_r` over replicas finite in both: mean, se, count.
pub fn paired(a: &[f64], b: &[f64]) -> (f64, f64, usize) {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| x - y)
        .collect();
    let (mean, se, _, _, n) = describe(&d);
    (mean, se, n)
}

fn column(runs: &Runs, c: usize, o: usize) -> Vec<f64> {
    runs[c].iter().map(|row| row[o]).collect()
}

/// A job's runs on its coupled levels (fine first) combined replica by replica by
/// `solver::levels::value_and_error` (`ode`: RK4, else Euler–Maruyama): the values and,
/// with two or more levels, the solver-error estimates. A replica diverged on any level
/// is NaN in both (excluded from every statistic, and counted).
pub fn combine_levels(mut levels: Vec<Runs>, ode: bool) -> (Runs, Option<Runs>) {
    if levels.len() < 2 {
        return (levels.swap_remove(0), None);
    }
    let nan = [f64::NAN; 4];
    let (mut value, mut error) = (levels[0].clone(), levels[0].clone());
    for (c, rows) in levels[0].iter().enumerate() {
        for r in 0..rows.len() {
            let finite = levels.iter().all(|l| l[c][r].iter().all(|v| v.is_finite()));
            let (mut v, mut e) = (nan, nan);
            if finite {
                for o in 0..4 {
                    let g: Vec<f64> = levels.iter().map(|l| l[c][r][o]).collect();
                    let (x, err) = crate::solver::levels::value_and_error(&g, ode);
                    (v[o], e[o]) = (x, err.unwrap_or(f64::NAN));
                }
            }
            (value[c][r], error[c][r]) = (v, e);
        }
    }
    (value, Some(error))
}

/// Mean and standard error of a solver-error column where there is one.
fn solver_error(errors: Option<&Runs>, c: usize, o: usize) -> (Option<f64>, Option<f64>) {
    match errors {
        Some(e) => {
            let (mean, se, _, _, _) = describe(&column(e, c, o));
            (Some(mean), Some(se))
        }
        None => (None, None),
    }
}

/// Cells of one (dynamics, η): `runs[w]` for `widths[w]` ascending, `errors[w]` their
/// solver-error estimates where the runs have levels.
pub fn cells(
    dynamics: &str,
    eta: f64,
    widths: &[usize],
    times: &[f64],
    runs: &[Runs],
    errors: &[Option<Runs>],
) -> Vec<Cell> {
    let mut out = Vec::new();
    let widest = runs.len() - 1;
    for (w, run) in runs.iter().enumerate() {
        for (c, &t) in times.iter().enumerate() {
            for (o, name) in OBSERVABLES.iter().enumerate() {
                let v = column(run, c, o);
                let (mean, stderr, var, var_se, count) = describe(&v);
                let n = widths[w] as f64;
                let (gap, gap_stderr) = if w < widest {
                    let (g, s, _) = paired(&v, &column(&runs[widest], c, o));
                    (g, s)
                } else {
                    (f64::NAN, f64::NAN)
                };
                let (solver_error, solver_error_stderr) = solver_error(errors[w].as_ref(), c, o);
                out.push(Cell {
                    dynamics: dynamics.into(),
                    eta,
                    width: widths[w],
                    t,
                    observable: (*name).into(),
                    mean,
                    stderr,
                    var,
                    n_var: n * var,
                    n_var_stderr: n * var_se,
                    count,
                    diverged: v.len() - count,
                    gap,
                    gap_stderr,
                    solver_error,
                    solver_error_stderr,
                });
            }
        }
    }
    out
}

/// Fitted rate of |gap| in n per (dynamics, η, t > 0, observable), over the widths whose
/// gap is resolved (|gap| > 3 se); none with fewer than two such widths.
pub fn rates(cells: &[Cell]) -> Vec<Rate> {
    let mut keys: Vec<(String, u64, u64, String)> = cells
        .iter()
        .filter(|c| c.t > 0.0)
        .map(|c| {
            (
                c.dynamics.clone(),
                c.eta.to_bits(),
                c.t.to_bits(),
                c.observable.clone(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for (dy, eta, t, obs) in keys {
        let pts: Vec<(f64, f64, f64)> = cells
            .iter()
            .filter(|c| {
                c.dynamics == dy
                    && c.eta.to_bits() == eta
                    && c.t.to_bits() == t
                    && c.observable == obs
            })
            .filter(|c| c.gap.is_finite() && c.gap.abs() > 3.0 * c.gap_stderr)
            .map(|c| (1.0 / c.width as f64, c.gap.abs(), c.gap_stderr))
            .collect();
        if let Some(f) = fit_order(&pts) {
            out.push(Rate {
                dynamics: dy,
                eta: f64::from_bits(eta),
                t: f64::from_bits(t),
                observable: obs,
                rate: f.order,
                ci95: f.ci95,
                n_points: f.n_points,
            });
        }
    }
    out
}

/// Paired differences between two dynamics' runs of the same (η, widths, times); the
/// first is discrete (sgd, gd, msgd), the second's solver errors are `b_errors`.
pub fn pair_diffs(
    pair: [&str; 2],
    eta: f64,
    widths: &[usize],
    times: &[f64],
    a: &[Runs],
    b: &[Runs],
    b_errors: &[Option<Runs>],
) -> Vec<PairDiff> {
    let mut out = Vec::new();
    for w in 0..widths.len() {
        for (c, &t) in times.iter().enumerate() {
            for (o, name) in OBSERVABLES.iter().enumerate() {
                let (va, vb) = (column(&a[w], c, o), column(&b[w], c, o));
                let (diff, stderr, count) = paired(&va, &vb);
                // The solver's error over the replicas the difference uses.
                let solver_bound = match &b_errors[w] {
                    Some(e) => {
                        let e: Vec<f64> = column(e, c, o)
                            .into_iter()
                            .zip(&va)
                            .map(|(e, x)| if x.is_finite() { e } else { f64::NAN })
                            .collect();
                        let (mean, se, _, _, n) = describe(&e);
                        if n < 2 {
                            f64::NAN
                        } else {
                            crate::stats::upper_bound_95(mean, se)
                        }
                    }
                    None => 0.0,
                };
                out.push(PairDiff {
                    pair: [pair[0].into(), pair[1].into()],
                    eta,
                    width: widths[w],
                    t,
                    observable: (*name).into(),
                    diff,
                    stderr,
                    count,
                    solver_bound,
                    solver_ok: solver_bound <= diff.abs() / 10.0,
                });
            }
        }
    }
    out
}

#[derive(Clone, Debug, Serialize)]
pub struct EtaOrder {
    pub pair: [String; 2],
    pub width: usize,
    pub t: f64,
    pub observable: String,
    /// |E Φ_first − E Φ_second| ≈ C η^order.
    pub order: f64,
    pub ci95: [f64; 2],
    pub n_points: usize,
}

/// Order in η of each pair's gap per (width, t > 0, observable), over the step sizes
/// where it is resolved (|diff| > 3 se); none with fewer than two.
pub fn eta_orders(diffs: &[PairDiff]) -> Vec<EtaOrder> {
    let mut keys: Vec<(String, String, usize, u64, String)> = diffs
        .iter()
        .filter(|p| p.t > 0.0)
        .map(|p| {
            (
                p.pair[0].clone(),
                p.pair[1].clone(),
                p.width,
                p.t.to_bits(),
                p.observable.clone(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for (a, b, w, t, o) in keys {
        let pts: Vec<(f64, f64, f64)> = diffs
            .iter()
            .filter(|p| {
                p.pair[0] == a
                    && p.pair[1] == b
                    && p.width == w
                    && p.t.to_bits() == t
                    && p.observable == o
            })
            .filter(|p| p.diff.is_finite() && p.diff.abs() > 3.0 * p.stderr)
            .map(|p| (p.eta, p.diff.abs(), p.stderr))
            .collect();
        if let Some(f) = fit_order(&pts) {
            out.push(EtaOrder {
                pair: [a, b],
                width: w,
                t: f64::from_bits(t),
                observable: o,
                order: f.order,
                ci95: f.ci95,
                n_points: f.n_points,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_standard_error_matches_gaussian_theory() {
        // For normal data Var(s²) = 2σ⁴/(M − 1): the estimate must land within 10 %.
        let v: Vec<f64> = (0..20000)
            .map(|i| crate::rng::normals4([i, 0, 0, 9], [1, 2])[0] * 2.0)
            .collect();
        let (_, _, var, var_se, _) = describe(&v);
        let theory = (2.0 * 16.0 / 19999.0f64).sqrt();
        assert!((var - 4.0).abs() < 4.0 * theory, "var {var}");
        assert!(
            (var_se / theory - 1.0).abs() < 0.1,
            "se {var_se} vs {theory}"
        );
    }

    #[test]
    fn levels_combine_per_replica_and_a_divergence_on_any_level_excludes_the_replica() {
        // One checkpoint, two replicas; replica 1 diverged on the coarsest level only.
        let lv = |x: f64, bad: bool| -> Runs {
            vec![vec![
                [x, 2.0 * x, 0.0, 1.0],
                if bad { [f64::NAN; 4] } else { [x; 4] },
            ]]
        };
        let (v, e) = combine_levels(vec![lv(1.0, false), lv(1.5, false), lv(3.0, true)], false);
        let e = e.expect("three levels have an estimate");
        // Talay–Tubaro: 2g₁ − g₂, estimate ((2g₁ − g₂) − (2g₂ − g₄))/3.
        assert_eq!(v[0][0], [0.5, 1.0, 0.0, 1.0]);
        assert_eq!(e[0][0], [0.5 / 3.0, 1.0 / 3.0, 0.0, 0.0]);
        assert!(v[0][1].iter().chain(&e[0][1]).all(|x| x.is_nan()));
        // Two EM levels keep g₁ and estimate g₁ − g₂; RK4's is (g₁ − g₂)/15.
        let (v, e) = combine_levels(vec![lv(1.0, false), lv(2.5, false)], false);
        assert_eq!((v[0][0][0], e.unwrap()[0][0][0]), (1.0, -1.5));
        let (_, e) = combine_levels(vec![lv(1.0, false), lv(2.5, false)], true);
        assert_eq!(e.unwrap()[0][0][0], -0.1);
        // One level: the runs as they are, no estimate.
        let (v, e) = combine_levels(vec![lv(1.0, true)], false);
        assert!(e.is_none() && v[0][1][0].is_nan());
    }

    #[test]
    fn paired_skips_diverged_replicas() {
        let (d, _, n) = paired(&[1.0, f64::NAN, 3.0], &[0.5, 1.0, 2.0]);
        assert_eq!(n, 2);
        assert!((d - 0.75).abs() < 1e-15);
    }
}
