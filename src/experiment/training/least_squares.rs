//! `least_squares_risk` (seed 000 §5.1, Ali et al. 2019/2020): estimation risk
//! E‖β̂ − β₀‖² over time of gradient flow (closed form), ridge at λ = 1/t (closed
//! form), and of the listed dynamics (SGD, SME/SMF, GD …) by Monte Carlo over label
//! noise and minibatches — every replica draws its own labels y = Xβ₀ + σε.
//! Checks Theorem 5.1: Bias²(GF t) ≤ Bias²(ridge 1/t) and Risk(GF t) ≤ 1.6862·Risk(ridge 1/t).

use super::config::Setup;
use super::levels::Levels;
use super::{job, mean_se, num, Output};
use crate::output::lines::{Line, LinePlot};
use crate::theory::least_squares::{gf_risk, ridge_risk};
use crate::train::Trainer;
use nalgebra::DVector;
use serde_json::json;

/// The constant of seed 000 Theorem 5.1(b, c).
pub const ALI_CONSTANT: f64 = 1.6862;

pub fn run(s: &Setup, t: &dyn Trainer, progress: &dyn Fn(f64)) -> anyhow::Result<Output> {
    let ds = &s.data[0];
    let x = ds.matrix();
    let beta0 = DVector::from_column_slice(ds.teacher.as_ref().expect("checked"));
    let sigma = ds.noise_std;
    let mut closed = String::from(
        "t,gf_bias2,gf_var,gf_risk,ridge_bias2,ridge_var,ridge_risk,risk_ratio,bias_ok,risk_ok\n",
    );
    let mut theory = Vec::new();
    let (mut all_bias_ok, mut all_risk_ok) = (true, true);
    let mut worst_ratio: f64 = 0.0;
    for &time in &s.times {
        let gf = gf_risk(&x, &beta0, sigma, time);
        let ridge = (time > 0.0).then(|| ridge_risk(&x, &beta0, sigma, 1.0 / time));
        let (rb, rv, rr) =
            ridge
                .map(|r| (r.bias2, r.var, r.risk))
                .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        let bias_ok = ridge.is_none_or(|r| gf.bias2 <= r.bias2 * (1.0 + 1e-12) + 1e-15);
        let risk_ok = ridge.is_none_or(|r| gf.risk <= ALI_CONSTANT * r.risk * (1.0 + 1e-12));
        all_bias_ok &= bias_ok;
        all_risk_ok &= risk_ok;
        let ratio = gf.risk / rr;
        if ratio.is_finite() {
            worst_ratio = worst_ratio.max(ratio);
        }
        closed.push_str(&format!(
            "{},{},{},{},{},{},{},{},{bias_ok},{risk_ok}\n",
            num(time),
            num(gf.bias2),
            num(gf.var),
            num(gf.risk),
            num(rb),
            num(rv),
            num(rr),
            num(ratio)
        ));
        theory.push(
            json!({"t": time, "gf": {"bias2": gf.bias2, "var": gf.var, "risk": gf.risk},
            "ridge_1_over_t": {"bias2": rb, "var": rv, "risk": rr}, "risk_ratio": ratio,
            "bias_bound_holds": bias_ok, "risk_bound_holds": risk_ok}),
        );
    }
    // Monte Carlo risk of each dynamics.
    let mut mc = String::from(
        "dynamics,eta,t,risk,stderr,bias2,count,diverged,solver_error,solver_error_stderr\n",
    );
    let mut runs = Vec::new();
    let mut lines = vec![
        Line {
            label: "GF (closed form)".into(),
            points: theory
                .iter()
                .map(|v| {
                    (
                        v["t"].as_f64().unwrap(),
                        v["gf"]["risk"].as_f64().unwrap(),
                        0.0,
                    )
                })
                .collect(),
            dashed: false,
        },
        Line {
            label: "ridge λ = 1/t (closed form)".into(),
            points: theory
                .iter()
                .map(|v| {
                    (
                        v["t"].as_f64().unwrap(),
                        v["ridge_1_over_t"]["risk"].as_f64().unwrap_or(f64::NAN),
                        0.0,
                    )
                })
                .collect(),
            dashed: true,
        },
    ];
    let mut path_steps = 0.0;
    let mut warnings = Vec::new();
    for &d in &s.dynamics {
        for (ei, &eta) in s.cfg.etas.iter().enumerate() {
            let mut j = job(s, 0, d, eta, ei);
            j.resample_labels = true;
            j.track_gain = false;
            // With `extrapolate`, an SDE's or flow's coupled coarser levels too: each
            // replica's value is then Talay–Tubaro's (SDEs), with its solver error.
            let lv = Levels::collect(s, t, &j, s.cfg.paths, progress, &mut path_steps)?;
            let mut pts = Vec::new();
            let mut per_t = Vec::new();
            for (c, &time) in s.times.iter().enumerate() {
                let (mut sq, mut errs, mut betas) = (Vec::new(), Vec::new(), Vec::new());
                let mut div = 0;
                for r in 0..lv.replicas(c) {
                    let Some(rows) = lv.replica(c, r) else {
                        div += 1;
                        continue;
                    };
                    let (v, e) = lv.value(&rows, |w| {
                        w.iter()
                            .zip(beta0.iter())
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum()
                    });
                    if !v.is_finite() || e.is_some_and(|e| !e.is_finite()) {
                        div += 1;
                        continue;
                    }
                    sq.push(v);
                    errs.extend(e);
                    // β itself, combined over the levels as g is (E β by Talay–Tubaro).
                    betas.push((0..ds.d).map(|i| lv.value(&rows, |w| w[i]).0).collect());
                }
                let (risk, se, n) = mean_se(&sq);
                let bias2 = debiased_bias2(&betas, beta0.as_slice());
                // At the horizon (a diverged replica stays diverged).
                if div > 0 && c + 1 == s.times.len() {
                    warnings.push(format!(
                        "{d} η={eta}: {div} of {} replicas diverged and were excluded",
                        div + n
                    ));
                }
                if bias2 < 0.0 {
                    warnings.push(format!(
                        "{d} η={eta} t={time}: the debiased bias² is negative ({bias2:.3e}): \
                         the bias is below its Monte Carlo noise"
                    ));
                }
                let (err, err_se) = if errs.is_empty() {
                    (None, None)
                } else {
                    let (m, se, _) = mean_se(&errs);
                    (Some(m), Some(se))
                };
                mc.push_str(&format!(
                    "{},{},{},{},{},{},{n},{div},{},{}\n",
                    d.name(),
                    num(eta),
                    num(time),
                    num(risk),
                    num(se),
                    num(bias2),
                    num(err.unwrap_or(f64::NAN)),
                    num(err_se.unwrap_or(f64::NAN))
                ));
                per_t.push(
                    json!({"t": time, "risk": risk, "stderr": se, "bias2": bias2,
                    "count": n, "diverged": div, "solver_error": err,
                    "solver_error_stderr": err_se}),
                );
                pts.push((time, risk, se));
            }
            lines.push(Line {
                label: format!("{} η = {eta} (Monte Carlo)", d.name().to_uppercase()),
                points: pts,
                dashed: false,
            });
            runs.push(
                json!({"dynamics": d.name(), "eta": eta, "batch": s.cfg.batch, "points": per_t}),
            );
        }
    }
    let plot = LinePlot {
        title: format!(
            "{}: risk E‖β̂ − β₀‖² (N = {}, d = {}, σ = {})",
            s.name, ds.n, ds.d, sigma
        ),
        x_label: "time t".into(),
        y_label: "risk".into(),
        log_x: true,
        log_y: true,
        lines,
    };
    let summary = vec![format!(
        "Theorem 5.1: Bias²(GF t) ≤ Bias²(ridge 1/t) {}; Risk(GF t) ≤ 1.6862 Risk(ridge 1/t) {} (max ratio {worst_ratio:.4})",
        if all_bias_ok { "holds" } else { "FAILS" },
        if all_risk_ok { "holds" } else { "FAILS" }
    )];
    Ok(Output {
        results: json!({
            "closed_form": theory,
            "monte_carlo": runs,
            "bias_bound_holds": all_bias_ok,
            "risk_bound_holds": all_risk_ok,
            "max_risk_ratio_gf_over_ridge": worst_ratio,
            "extrapolate": s.cfg.extrapolate,
        }),
        files: vec![
            ("closed_form.csv".into(), closed),
            ("risk_mc.csv".into(), mc),
            ("risk.svg".into(), plot.to_svg()?),
        ],
        summary,
        path_steps,
        warnings,
    })
}

/// Bias² of the mean estimator from replicas' β (n of them), debiased:
/// ‖β̄ − β₀‖² − tr Cov/n; NaN below two replicas.
fn debiased_bias2(betas: &[Vec<f64>], beta0: &[f64]) -> f64 {
    let n = betas.len();
    if n < 2 {
        return f64::NAN;
    }
    let mean: Vec<f64> = (0..beta0.len())
        .map(|i| betas.iter().map(|b| b[i]).sum::<f64>() / n as f64)
        .collect();
    let var: f64 = (0..beta0.len())
        .map(|i| betas.iter().map(|b| (b[i] - mean[i]).powi(2)).sum::<f64>() / (n - 1) as f64)
        .sum();
    mean.iter()
        .zip(beta0)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        - var / n as f64
}
