//! `gd_vs_gf` (seeds 000 §1, 004): how closely GD with step η follows gradient flow
//! (error O(η)) and the modified flow of order 2 (error O(η²)), and how GD at η
//! differs from GD at η/r, along the trajectory; plus the scalar example of seed 000
//! Figure 1 (x' = 5x, h = 0.1: Euler is first order for the ODE, second order for the
//! modified equation y' = (5 − 25h/2) y).
//!
//! GF and MGF are solved by RK4 with `substeps` per step of η (error O((η/S)^4)).

use super::config::Setup;
use super::{collect_with, job, num, Output};
use crate::output::lines::{Line, LinePlot};
use crate::train::{Dynamics, Trainer};
use serde_json::json;

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Least-squares slope of ln y against ln x (finite positive points only).
pub fn loglog_slope(pts: &[(f64, f64)]) -> Option<f64> {
    let v: Vec<(f64, f64)> = pts
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && y.is_finite())
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if v.len() < 2 {
        return None;
    }
    let n = v.len() as f64;
    let (mx, my) = (
        v.iter().map(|p| p.0).sum::<f64>() / n,
        v.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = v.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = v.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Seed 000 Figure 1: Euler on x' = λx, x(0) = 1, vs the exact solution and the
/// modified equation y' = (λ − λ²h/2) y. Returns rows (t, euler, exact, modified).
pub fn scalar_example(lambda: f64, h: f64, horizon: f64) -> Vec<(f64, f64, f64, f64)> {
    let n = (horizon / h).round() as u32;
    (0..=n)
        .map(|k| {
            let t = k as f64 * h;
            (
                t,
                (1.0 + lambda * h).powi(k as i32),
                (lambda * t).exp(),
                ((lambda - lambda * lambda * h / 2.0) * t).exp(),
            )
        })
        .collect()
}

pub fn run(s: &Setup, t: &dyn Trainer, progress: &dyn Fn(f64)) -> anyhow::Result<Output> {
    let mut path_steps = 0.0;
    let mut rows = String::from("eta,t,reference,distance,beta_distance\n");
    let mut per_eta = Vec::new();
    let mut max_gf = Vec::new();
    let mut max_mgf = Vec::new();
    let mut max_r: Vec<Vec<(f64, f64)>> = vec![Vec::new(); s.cfg.ratios.len()];
    let mut warnings = Vec::new();
    let p = s.param.params(s.data[0].d);
    for (ei, &eta) in s.cfg.etas.iter().enumerate() {
        let mut run = |d: Dynamics, step: f64, idx: usize| -> anyhow::Result<Vec<Vec<f64>>> {
            let mut j = job(s, 0, d, step, idx);
            j.track_gain = false;
            path_steps += j.path_steps();
            let r = collect_with(t, &j, 1, progress)?;
            Ok(r.into_iter().map(|c| c[0][..p].to_vec()).collect())
        };
        let gd = run(Dynamics::Gd, eta, ei)?;
        let gf = run(Dynamics::Gf, eta, ei)?;
        let mgf = run(Dynamics::Mgf, eta, ei)?;
        let mut refs: Vec<(String, Vec<Vec<f64>>)> = vec![("gf".into(), gf), ("mgf".into(), mgf)];
        for (ri, r) in s.cfg.ratios.iter().enumerate() {
            let idx = s.cfg.etas.len() * (1 + ri) + ei;
            refs.push((
                format!("gd_eta_over_{r}"),
                run(Dynamics::Gd, eta / *r as f64, idx)?,
            ));
        }
        let finite = |w: &[f64]| {
            w.iter()
                .all(|v| v.is_finite() && v.abs() <= s.cfg.diverge_bound)
        };
        // β(w) of a finite state (for the function-space distance and the loss: a
        // reparametrised net can end at another w with the same β).
        let beta = |w: &[f64]| {
            finite(w).then(|| {
                let mut b = vec![0.0; s.data[0].d];
                s.param.beta(w, &mut b);
                b
            })
        };
        let last = s.times.len() - 1;
        let final_loss =
            |w: &[f64]| beta(w).map(|b| crate::train::loss::mean(s.cfg.model.loss, &s.data[0], &b));
        let mut maxes = serde_json::Map::new();
        let mut beta_maxes = serde_json::Map::new();
        let mut losses = serde_json::Map::new();
        losses.insert("gd".into(), json!(final_loss(&gd[last])));
        for (ri, (name, traj)) in refs.iter().enumerate() {
            let mut m: f64 = 0.0;
            let mut mb: f64 = 0.0;
            losses.insert(name.clone(), json!(final_loss(&traj[last])));
            if let Some(c) = (0..s.times.len()).find(|&c| !finite(&gd[c]) || !finite(&traj[c])) {
                let who = if finite(&gd[c]) { name.as_str() } else { "gd" };
                warnings.push(format!(
                    "η={eta}: {who} diverged by t={} (a weight non-finite or beyond diverge_bound {}); \
                     the gd–{name} distances from then on and its max_distance are null, and this η is \
                     left out of the gd–{name} slope",
                    s.times[c], s.cfg.diverge_bound
                ));
            }
            for (c, time) in s.times.iter().enumerate() {
                let dd = if finite(&gd[c]) && finite(&traj[c]) {
                    dist(&gd[c], &traj[c])
                } else {
                    f64::NAN
                };
                m = if dd.is_nan() || m.is_nan() {
                    f64::NAN
                } else {
                    m.max(dd)
                };
                let db = match (beta(&gd[c]), beta(&traj[c])) {
                    (Some(a), Some(b)) => dist(&a, &b),
                    _ => f64::NAN,
                };
                mb = if db.is_nan() || mb.is_nan() {
                    f64::NAN
                } else {
                    mb.max(db)
                };
                rows.push_str(&format!(
                    "{},{},{},{},{}\n",
                    num(eta),
                    num(*time),
                    name,
                    num(dd),
                    num(db)
                ));
            }
            maxes.insert(name.clone(), json!(m));
            beta_maxes.insert(name.clone(), json!(mb));
            match ri {
                0 => max_gf.push((eta, m)),
                1 => max_mgf.push((eta, m)),
                _ => max_r[ri - 2].push((eta, m)),
            }
        }
        per_eta.push(json!({
            "eta": eta,
            "max_distance": maxes,
            "max_beta_distance": beta_maxes,
            "final_loss": losses,
        }));
    }
    let mut orders = serde_json::Map::new();
    orders.insert("gd_vs_gf".into(), json!(loglog_slope(&max_gf)));
    orders.insert("gd_vs_mgf".into(), json!(loglog_slope(&max_mgf)));
    for (ri, r) in s.cfg.ratios.iter().enumerate() {
        orders.insert(
            format!("gd_vs_gd_eta_over_{r}"),
            json!(loglog_slope(&max_r[ri])),
        );
    }
    // Seed 000 Figure 1.
    let ex = scalar_example(5.0, 0.1, 1.0);
    let mut ex_csv = String::from("t,euler,exact,modified\n");
    for (tt, a, b, c) in &ex {
        ex_csv.push_str(&format!(
            "{},{},{},{}\n",
            num(*tt),
            num(*a),
            num(*b),
            num(*c)
        ));
    }
    let hs = [0.02, 0.01, 0.005, 0.0025, 0.00125];
    let errs: Vec<(f64, f64, f64)> = hs
        .iter()
        .map(|&h| {
            let e = scalar_example(5.0, h, 1.0);
            let last = e.last().unwrap();
            (h, (last.1 - last.2).abs(), (last.1 - last.3).abs())
        })
        .collect();
    let ode_order = loglog_slope(&errs.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>());
    let mod_order = loglog_slope(&errs.iter().map(|e| (e.0, e.2)).collect::<Vec<_>>());

    let line = |label: &str, v: &[(f64, f64)], dashed| Line {
        label: label.into(),
        points: v.iter().map(|(x, y)| (*x, *y, 0.0)).collect(),
        dashed,
    };
    let mut lines = vec![
        line("GD vs GF", &max_gf, false),
        line("GD vs MGF (modified flow)", &max_mgf, false),
    ];
    for (ri, r) in s.cfg.ratios.iter().enumerate() {
        lines.push(line(&format!("GD(η) vs GD(η/{r})"), &max_r[ri], true));
    }
    let plot = LinePlot {
        title: format!(
            "{}: max over t ≤ {} of |w_GD − w_ref|",
            s.name, s.cfg.horizon
        ),
        x_label: "step size η".into(),
        y_label: "max distance".into(),
        log_x: true,
        log_y: true,
        lines,
    };
    let ex_plot = LinePlot {
        title: "x' = 5x, h = 0.1 (seed 000 Fig. 1)".into(),
        x_label: "t".into(),
        y_label: "x(t)".into(),
        log_x: false,
        log_y: true,
        lines: vec![
            line(
                "Euler",
                &ex.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
                false,
            ),
            line(
                "exact e^{5t}",
                &ex.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
                true,
            ),
            line(
                "modified y' = (5 − 25h/2) y",
                &ex.iter().map(|r| (r.0, r.3)).collect::<Vec<_>>(),
                true,
            ),
        ],
    };
    let f = |o: &Option<f64>| o.map(|v| format!("{v:.3}")).unwrap_or("n/a".into());
    let summary = vec![
        format!(
            "orders of max distance in η: GD–GF {}, GD–MGF {} (theory 1 and 2)",
            f(&loglog_slope(&max_gf)),
            f(&loglog_slope(&max_mgf))
        ),
        format!(
            "x' = 5x: Euler error at t = 1 order {} vs exact, {} vs modified equation (theory 1, 2)",
            f(&ode_order),
            f(&mod_order)
        ),
    ];
    Ok(Output {
        results: json!({
            "per_eta": per_eta,
            "orders": orders,
            "scalar_example": {
                "lambda": 5.0, "h": 0.1,
                "errors_at_t1": errs.iter().map(|e| json!({"h": e.0, "euler_vs_exact": e.1, "euler_vs_modified": e.2})).collect::<Vec<_>>(),
                "order_vs_exact": ode_order,
                "order_vs_modified": mod_order,
            },
        }),
        files: vec![
            ("distances.csv".into(), rows),
            ("scalar_example.csv".into(), ex_csv),
            ("gd_vs_gf.svg".into(), plot.to_svg()?),
            ("scalar_example.svg".into(), ex_plot.to_svg()?),
        ],
        summary,
        path_steps,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_example_orders() {
        let errs: Vec<(f64, f64, f64)> = [0.002, 0.001, 0.0005]
            .iter()
            .map(|&h| {
                let e = scalar_example(5.0, h, 1.0);
                let l = e.last().unwrap();
                (h, (l.1 - l.2).abs(), (l.1 - l.3).abs())
            })
            .collect();
        let o1 = loglog_slope(&errs.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>()).unwrap();
        let o2 = loglog_slope(&errs.iter().map(|e| (e.0, e.2)).collect::<Vec<_>>()).unwrap();
        assert!((o1 - 1.0).abs() < 0.1, "{o1}");
        assert!((o2 - 2.0).abs() < 0.1, "{o2}");
    }
}
