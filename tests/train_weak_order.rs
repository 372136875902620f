//! `weak_order` on a data set (the finite-data trainer's models, losses and dynamics):
//! - the deterministic pairs are exact: gd's points equal the GD recursion and gf's the
//!   closed-form gradient flow of linear regression (written here), and the fitted
//!   orders of gd–gf and gd–mgf are 1 and 2;
//! - the SDEs against sgd, with Talay–Tubaro extrapolation on coupled levels: sme2 is
//!   closer to sgd than sme1 by more than 3 standard errors at η ≤ 0.05, sme1's fitted
//!   order's interval holds 1 and sme2's lies above 1 (seeded: the same numbers every
//!   run; sme1 and sme2 swapped would fail);
//! - every model and loss runs it (uv with the logistic loss, deep_linear on the CPU),
//!   and bad configs name their field.

mod common;
use smflow::experiment::training::config::{check, parse, Setup};
use smflow::experiment::training::execute;
use smflow::train::cpu::CpuTrainer;

fn config(extra: &str) -> String {
    format!(
        r#"{{"experiment": "weak_order", "name": "t",
        "data": {{"source": "generate", "n": 24, "d": 3, "label_noise": 0.5, "teacher_scale": 1.0}},
        "model": {{"param": "linear"}}, "etas": [0.1, 0.05, 0.025], "batch": 1,
        "horizon": 1.0, "substeps": 8, "seed": 3 {extra}}}"#
    )
}

fn setup(text: &str) -> Setup {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    check(parse(v, Default::default()).unwrap(), "t").unwrap()
}

fn results(s: &Setup) -> serde_json::Value {
    execute(s, &CpuTrainer::default(), &|_| {}).unwrap().results
}

/// The point of (dynamics, η, observable) at the horizon.
fn point<'a>(r: &'a serde_json::Value, d: &str, eta: f64, o: &str) -> &'a serde_json::Value {
    r["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dynamics"] == d && p["eta"] == eta && p["observable"] == o && p["t"] == 1.0)
        .unwrap_or_else(|| panic!("no point {d} {eta} {o}"))
}

/// The fitted order of pair (a, b) for observable o at the horizon, and its interval.
fn order(r: &serde_json::Value, a: &str, b: &str, o: &str) -> (f64, f64, f64) {
    let x = r["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["pair"][0] == a && x["pair"][1] == b && x["observable"] == o && x["t"] == 1.0)
        .unwrap_or_else(|| panic!("no order {a}–{b} {o}: {}", r["orders"]));
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    (f(&x["order"]), f(&x["ci95"][0]), f(&x["ci95"][1]))
}

/// |β|² and the train loss ½ mean (x·β − y)² of β.
fn observables(s: &Setup, beta: &[f64]) -> (f64, f64) {
    let ds = &s.data[0];
    let loss = (0..ds.n)
        .map(|i| {
            let r: f64 = ds.row(i).iter().zip(beta).map(|(a, b)| a * b).sum::<f64>() - ds.y[i];
            0.5 * r * r
        })
        .sum::<f64>()
        / ds.n as f64;
    (beta.iter().map(|b| b * b).sum(), loss)
}

#[test]
fn deterministic_pairs_are_exact_with_orders_one_and_two() {
    let s = setup(&config(r#", "dynamics": ["gd", "gf", "mgf"], "paths": 2"#));
    let r = results(&s);
    let ds = &s.data[0];
    let (n, d) = (ds.n, ds.d);
    let x = nalgebra::DMatrix::from_row_slice(n, d, &ds.x);
    let y = nalgebra::DVector::from_column_slice(&ds.y);
    let h = x.transpose() * &x / n as f64;
    let xty = x.transpose() * &y / n as f64;
    for eta in [0.1, 0.05, 0.025] {
        // GD: w ← w − η (H w − Xᵀy/N), 1/η steps from 0.
        let mut w = nalgebra::DVector::zeros(d);
        for _ in 0..(1.0 / eta as f64).round() as usize {
            w -= eta * (&h * &w - &xty);
        }
        let (norm2, loss) = observables(&s, w.as_slice());
        for (o, want) in [("beta_norm2", norm2), ("train_loss", loss)] {
            let got = point(&r, "gd", eta, o)["mean"].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-12 * want.abs(),
                "gd η={eta} {o}: {got} vs {want}"
            );
        }
    }
    // GF at t = 1: w = (I − e^{−H}) H⁻¹ Xᵀy/N, by the eigendecomposition of H.
    let eig = h.clone().symmetric_eigen();
    let mut w = nalgebra::DVector::zeros(d);
    for k in 0..d {
        let (l, v) = (eig.eigenvalues[k], eig.eigenvectors.column(k));
        w += v * ((1.0 - (-l).exp()) / l * v.dot(&xty));
    }
    let (norm2, _) = observables(&s, w.as_slice());
    let got = point(&r, "gf", 0.025, "beta_norm2")["mean"]
        .as_f64()
        .unwrap();
    assert!((got - norm2).abs() <= 1e-9 * norm2, "gf: {got} vs {norm2}");
    for o in ["beta_norm2", "train_loss"] {
        let (p1, ..) = order(&r, "gd", "gf", o);
        let (p2, ..) = order(&r, "gd", "mgf", o);
        eprintln!("{o}: gd–gf order {p1:.3}, gd–mgf order {p2:.3}");
        assert!((p1 - 1.0).abs() < 0.1, "gd–gf {o}: order {p1}");
        assert!((p2 - 2.0).abs() < 0.2, "gd–mgf {o}: order {p2}");
    }
}

#[test]
fn sme2_beats_sme1_whose_order_is_one() {
    // d = 5, N = 40 (per-sample steps η|x|² ≈ 0.25 at η = 0.05), 60 000 replicas per
    // run, 4 substeps extrapolated.
    let text = config(
        r#", "dynamics": ["sgd", "sme1", "sme2"], "paths": 60000, "extrapolate": true,
        "observables": ["beta_norm2"]"#,
    )
    .replace(r#""n": 24, "d": 3"#, r#""n": 40, "d": 5"#)
    .replace(r#""etas": [0.1, 0.05, 0.025]"#, r#""etas": [0.05, 0.025]"#)
    .replace(r#""substeps": 8"#, r#""substeps": 4"#);
    let r = results(&setup(&text));
    let err = |b: &str, eta: f64| {
        let e = r["weak_errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["pair"][1] == b && e["eta"] == eta && e["t"] == 1.0)
            .unwrap();
        (e["error"].as_f64().unwrap(), e["stderr"].as_f64().unwrap())
    };
    for eta in [0.05, 0.025] {
        let ((e1, s1), (e2, s2)) = (err("sme1", eta), err("sme2", eta));
        eprintln!("η = {eta}: sgd–sme1 {e1:.4} ± {s1:.4}, sgd–sme2 {e2:.4} ± {s2:.4}");
        // The order-2 drift removes sme1's O(η) error: sme2 is closer by > 3 se.
        assert!(
            e2 + 3.0 * s1.hypot(s2) < e1,
            "η = {eta}: sme2 {e2} vs sme1 {e1}"
        );
    }
    // sme1's error halves with η (sme2's, at 2.5 se at η = 0.025, is not resolved
    // there: no order is fitted for it at this budget).
    let (p1, lo1, hi1) = order(&r, "sgd", "sme1", "beta_norm2");
    eprintln!("sgd–sme1 order {p1:.2} [{lo1:.2}, {hi1:.2}]");
    assert!(lo1 <= 1.0 && 1.0 <= hi1, "sme1: {p1} [{lo1}, {hi1}]");
    // Talay–Tubaro leaves the solver's error below a tenth of every weak error.
    for e in r["weak_errors"].as_array().unwrap() {
        assert_eq!(e["solver_ok"], true, "{e}");
    }
}

#[test]
fn every_model_and_loss_runs_it_and_bad_configs_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let logistic = r#"{"experiment": "weak_order",
        "data": {"source": "generate", "n": 20, "d": 3, "labels": "logistic", "teacher_scale": 2.0},
        "model": {"param": "uv", "alpha": 0.5, "loss": "logistic"},
        "dynamics": ["sgd", "sme1", "gd", "gf"], "etas": [0.1, 0.05], "horizon": 0.5,
        "paths": 8, "substeps": 2, "seed": 1}"#;
    let deep = r#"{"experiment": "weak_order",
        "data": {"source": "generate", "n": 20, "d": 3, "label_noise": 0.1},
        "model": {"param": "deep_linear", "depth": 3, "width": 4, "alpha": 0.5},
        "dynamics": ["msgd", "msme1"], "momentum": {"friction": 2.0}, "etas": [0.1, 0.05],
        "horizon": 0.5, "paths": 8, "substeps": 4, "extrapolate": true, "seed": 1}"#;
    for (name, text) in [("logistic", logistic), ("deep", deep)] {
        let out = common::run_cpu(tmp.path(), name, text);
        let csv = std::fs::read_to_string(out.join("weak_error.csv")).unwrap();
        assert!(csv.lines().count() > 1, "{name}: {csv}");
        assert!(out.join("weak_error.svg").exists() && out.join("points.csv").exists());
    }
    let refused = |text: &str| {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let e = parse(v, Default::default())
            .and_then(|c| check(c, "t"))
            .expect_err("must be refused");
        (e.field, e.message)
    };
    for (extra, field, words) in [
        (
            r#", "dynamics": ["sgd"], "paths": 4"#,
            "dynamics",
            "reference",
        ),
        (
            r#", "dynamics": ["sgd", "sme1"], "paths": 4, "substeps": 6, "extrapolate": true"#,
            "substeps",
            "multiple of 4",
        ),
        (
            r#", "dynamics": ["sgd", "sme1"], "paths": 4, "observables": ["x0"]"#,
            "observables[0]",
            "train_loss",
        ),
        (
            r#", "dynamics": ["sgd", "sme1"], "paths": 1"#,
            "paths",
            "≥ 2",
        ),
    ] {
        let (f, m) = refused(&config(extra));
        assert_eq!(f, field, "{extra}: {m}");
        assert!(m.contains(words), "{extra}: {m}");
    }
    // Its own field is refused by the other finite-data experiments; `extrapolate` (read
    // by least_squares_risk and implicit_bias_sweep too) by gd_vs_gf.
    let other = config(r#", "dynamics": ["sgd"], "paths": 4, "observables": ["train_loss"]"#)
        .replace(r#""weak_order""#, r#""implicit_bias_sweep""#);
    assert_eq!(refused(&other).0, "observables");
    // (gd_vs_gf refuses `batch`, which it does not read, before it reads the rest.)
    let gd_vs_gf = config(r#", "dynamics": ["gd", "gf"], "paths": 4, "extrapolate": true"#)
        .replace(r#""weak_order""#, r#""gd_vs_gf""#)
        .replace(r#""batch": 1,"#, "");
    let (f, m) = refused(&gd_vs_gf);
    assert_eq!(f, "extrapolate", "{m}");
    assert!(m.contains("least_squares_risk"), "{m}");
}

/// The weak_order document of `config(extra)` with the data's own seed `seed`.
fn with_data_seed(extra: &str, seed: u64) -> serde_json::Value {
    let text = config(extra).replace(
        r#""teacher_scale": 1.0}"#,
        &format!(r#""teacher_scale": 1.0, "seed": {seed}}}"#),
    );
    results(&setup(&text))
}

#[test]
fn several_data_sets_average_the_points_and_pair_the_errors_by_data_set() {
    // Deterministic pairs: each data set's points are those of a run on it alone (data
    // seeds 10, 11, 12, 13), whatever the stream.
    let extra = r#", "dynamics": ["gd", "gf"], "paths": 2, "datasets": 4"#;
    let all = with_data_seed(extra, 10);
    assert_eq!(all["datasets"], 4);
    let alone: Vec<serde_json::Value> = (10..14)
        .map(|seed| with_data_seed(&extra.replace(r#""datasets": 4"#, r#""datasets": 1"#), seed))
        .collect();
    for &eta in &[0.1, 0.05, 0.025] {
        for o in ["train_loss", "beta_norm2"] {
            let per = |d: &str| -> Vec<f64> {
                alone
                    .iter()
                    .map(|r| point(r, d, eta, o)["mean"].as_f64().unwrap())
                    .collect()
            };
            let (gd, gf) = (per("gd"), per("gf"));
            // The point: the mean of the data sets' means, its stderr from their spread.
            let m = gd.iter().sum::<f64>() / 4.0;
            let sd = (gd.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 3.0).sqrt();
            let p = point(&all, "gd", eta, o);
            assert_eq!(p["mean"].as_f64().unwrap(), m, "{eta} {o}");
            assert!(
                (p["stderr"].as_f64().unwrap() - sd / 2.0).abs() <= 1e-12 * sd,
                "{p}"
            );
            // The weak error: per-data-set differences, averaged; stderr from their spread.
            let diffs: Vec<f64> = gd.iter().zip(&gf).map(|(a, b)| a - b).collect();
            let dm = diffs.iter().sum::<f64>() / 4.0;
            let dsd = (diffs.iter().map(|x| (x - dm).powi(2)).sum::<f64>() / 3.0).sqrt();
            let w = all["weak_errors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| {
                    w["pair"][1] == "gf" && w["eta"] == eta && w["observable"] == o && w["t"] == 1.0
                })
                .unwrap();
            assert_eq!(w["estimator"], "paired_datasets", "{w}");
            assert!(
                (w["error"].as_f64().unwrap() - dm.abs()).abs() <= 1e-12 * dm.abs(),
                "{w}"
            );
            assert!(
                (w["stderr"].as_f64().unwrap() - dsd / 2.0).abs() <= 1e-9 * dsd,
                "{w}"
            );
            // The spread of the data sets is in the points, not in the paired error.
            assert!(
                w["stderr"].as_f64().unwrap() < p["stderr"].as_f64().unwrap(),
                "{w} {p}"
            );
        }
    }
    // GD − GF is O(η) on every data set, so on their average too. How much the error
    // varies between data sets is in its standard error (here about 0.4 of the error:
    // with 4 data sets no point is resolved beyond 3 se; with 16 all are).
    let many = with_data_seed(&extra.replace(r#""datasets": 4"#, r#""datasets": 16"#), 10);
    let (ord, lo, hi) = order(&many, "gd", "gf", "beta_norm2");
    assert!(
        (0.9..1.1).contains(&ord) && lo <= 1.0 && 1.0 <= hi,
        "{ord} [{lo}, {hi}]"
    );
    // Random pairs: every replica of every data set counted, the error paired.
    let r = results(&setup(&config(
        r#", "dynamics": ["sgd", "sme1"], "paths": 50, "datasets": 3"#,
    )));
    assert_eq!(point(&r, "sgd", 0.1, "beta_norm2")["count"], 150);
    for w in r["weak_errors"].as_array().unwrap() {
        assert_eq!(w["estimator"], "paired_datasets", "{w}");
        assert!(w["stderr"].as_f64().unwrap() > 0.0, "{w}");
    }
}
