//! `extrapolate` in the finite-data experiments beside weak_order (`least_squares_risk`,
//! `implicit_bias_sweep`): an SDE's replicas also run their coupled coarser levels and
//! report Talay–Tubaro's 2 g₁ − g₂ with a solver-error estimate, a flow (RK4) its fine
//! value with one; discrete dynamics are untouched, and so is every run without it.
//! - least squares: E β of sme1 follows Euler's recursion of the gradient flow (affine
//!   drift, mean-zero noise, labels resampled per replica), so the debiased Bias² of the
//!   extrapolated run is much closer to the closed-form GF Bias² than the fine level's;
//! - implicit bias: the solver-error columns are filled for exactly the SDEs and flows,
//!   and the discrete dynamics' numbers are bit for bit those of the run without it.

use smflow::experiment::training::config::{check, parse, Setup};
use smflow::experiment::training::{execute, Output};
use smflow::train::cpu::CpuTrainer;

fn setup(text: &str) -> Setup {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    check(parse(v, Default::default()).unwrap(), "t").unwrap()
}

fn run(text: &str) -> Output {
    execute(&setup(text), &CpuTrainer::default(), &|_| {}).unwrap()
}

/// least_squares_risk on n = 30, d = 5 (w₀ = 0), η = 0.4 with 4 substeps (Euler's dt =
/// 0.1 on the fine level), batch = N, T = 2.
fn least_squares(extrapolate: bool) -> String {
    format!(
        r#"{{"experiment": "least_squares_risk", "name": "t",
        "data": {{"source": "generate", "n": 30, "d": 5, "label_noise": 0.3, "teacher_scale": 1.0}},
        "model": {{"param": "linear"}}, "dynamics": ["sgd", "sme1", "gf"], "etas": [0.4],
        "batch": 30, "horizon": 2.0, "paths": 20000, "substeps": 4, "seed": 5,
        "extrapolate": {extrapolate}}}"#
    )
}

/// The Monte Carlo point of `dynamics` at the horizon (t = 2).
fn at_horizon<'a>(r: &'a serde_json::Value, d: &str) -> &'a serde_json::Value {
    let run = r["monte_carlo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["dynamics"] == d)
        .unwrap();
    run["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["t"] == 2.0)
        .unwrap()
}

#[test]
fn least_squares_extrapolated_bias_is_the_flows() {
    let (plain, tt) = (
        run(&least_squares(false)).results,
        run(&least_squares(true)).results,
    );
    assert_eq!(
        (plain["extrapolate"].clone(), tt["extrapolate"].clone()),
        (false.into(), true.into())
    );
    let gf_bias2 = tt["closed_form"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["t"] == 2.0)
        .unwrap()["gf"]["bias2"]
        .as_f64()
        .unwrap();
    let (fine, extrapolated) = (at_horizon(&plain, "sme1"), at_horizon(&tt, "sme1"));
    let off = |p: &serde_json::Value| (p["bias2"].as_f64().unwrap() - gf_bias2).abs();
    eprintln!(
        "Bias²: GF {gf_bias2:.5}; sme1 fine {:.5} (off {:.2e}), extrapolated {:.5} (off {:.2e})",
        fine["bias2"],
        off(fine),
        extrapolated["bias2"],
        off(extrapolated)
    );
    assert!(
        off(extrapolated) < 0.25 * off(fine),
        "extrapolated {} vs fine {}",
        off(extrapolated),
        off(fine)
    );
    // The solver error is reported where levels ran, and only there.
    assert!(fine["solver_error"].is_null());
    assert!(extrapolated["solver_error"].as_f64().unwrap().is_finite());
    assert!(extrapolated["solver_error_stderr"].as_f64().unwrap() > 0.0);
    // sgd (discrete) is untouched: the same bits, no solver error.
    let (a, b) = (at_horizon(&plain, "sgd"), at_horizon(&tt, "sgd"));
    assert_eq!(a["risk"], b["risk"]);
    assert_eq!(a["bias2"], b["bias2"]);
    assert!(b["solver_error"].is_null());
    // gf (RK4): its value is the fine level's, with (g₁ − g₂)/15 beside it, tiny here.
    let (a, b) = (at_horizon(&plain, "gf"), at_horizon(&tt, "gf"));
    assert_eq!(a["risk"], b["risk"]);
    let e = b["solver_error"].as_f64().unwrap();
    assert!(
        e.abs() < 1e-4 * b["risk"].as_f64().unwrap(),
        "gf solver error {e}"
    );
}

#[test]
fn least_squares_csv_adds_the_solver_error_columns() {
    let out = run(&least_squares(true).replace("20000", "50"));
    let (_, csv) = out.files.iter().find(|(n, _)| n == "risk_mc.csv").unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "dynamics,eta,t,risk,stderr,bias2,count,diverged,solver_error,solver_error_stderr"
    );
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 10, "{l}");
        assert_eq!(f[0] == "sgd", f[8].is_empty(), "{l}");
    }
}

fn implicit_bias(extrapolate: bool) -> String {
    format!(
        r#"{{"experiment": "implicit_bias_sweep", "name": "t",
        "data": {{"source": "generate", "n": 10, "d": 15, "sparsity": 2}},
        "model": {{"param": "uv", "alpha": 0.1}},
        "dynamics": ["gd", "sgd", "msgd", "msme1", "gf"], "momentum": {{"friction": 1.0}},
        "etas": [0.05, 0.1], "batch": 1, "horizon": 20, "paths": 6, "datasets": 2,
        "substeps": 4, "seed": 2, "extrapolate": {extrapolate}}}"#
    )
}

#[test]
fn implicit_bias_reports_solver_errors_for_the_sdes_and_flows_only() {
    let (plain, tt) = (run(&implicit_bias(false)), run(&implicit_bias(true)));
    let sweep = |o: &Output| o.results["sweep"].as_array().unwrap().clone();
    let (a, b) = (sweep(&plain), sweep(&tt));
    assert_eq!(a.len(), b.len());
    let mut extrapolated_differs = false;
    for (x, y) in a.iter().zip(&b) {
        let d = y["dynamics"].as_str().unwrap();
        let with_levels = matches!(d, "msme1" | "gf");
        for (name, m) in y["metrics"].as_object().unwrap() {
            let before = &x["metrics"][name];
            assert!(
                before["solver_error"].is_null(),
                "{d} {name} without extrapolate"
            );
            assert_eq!(!m["solver_error"].is_null(), with_levels, "{d} {name}: {m}");
            if with_levels {
                assert!(
                    m["solver_error_stderr"].as_f64().is_some(),
                    "{d} {name}: {m}"
                );
            }
            if d == "msme1" {
                extrapolated_differs |= m["mean"] != before["mean"];
            } else {
                // Discrete dynamics run as before; a flow's value is its fine level.
                assert_eq!(m["mean"], before["mean"], "{d} {name}");
                assert_eq!(m["stderr"], before["stderr"], "{d} {name}");
            }
        }
    }
    assert!(extrapolated_differs, "msme1's values are Talay–Tubaro's");
    let (_, csv) = tt.files.iter().find(|(n, _)| n == "sweep.csv").unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "dynamics,eta,metric,mean,stderr,count,diverged,solver_error,solver_error_stderr"
    );
}

#[test]
fn extrapolate_needs_substeps_a_multiple_of_4_everywhere() {
    for text in [least_squares(true), implicit_bias(true)] {
        let v: serde_json::Value =
            serde_json::from_str(&text.replace(r#""substeps": 4"#, r#""substeps": 6"#)).unwrap();
        let e = check(parse(v, Default::default()).unwrap(), "t").expect_err("refused");
        assert_eq!(e.field, "substeps", "{}", e.message);
        assert!(e.message.contains("multiple of 4"), "{}", e.message);
    }
}
