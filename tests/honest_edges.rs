//! Statistics at the edges (issue 9, item 5): no number the data cannot support is
//! reported as if it could, and every null carries its reason in `warnings`.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smflow");

/// Runs `smflow run` on `config` (written to a temp dir) and returns results.json.
fn run(config: &str, extra: &[&str]) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.json");
    std::fs::write(&cfg, config).unwrap();
    let out = tmp.path().join("out");
    let mut args = vec![
        "run",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = Command::new(BIN).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    read(&out)
}

fn read(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn warnings(r: &Value) -> Vec<String> {
    r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

const ONE_PATH: &str = r#"{"experiment": "weak_order",
 "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
 "x0": [1.0], "dynamics": ["sgd", "sme1"], "batch": 2, "etas": [0.2, 0.1, 0.05],
 "horizon": 1.0, "observables": ["norm2"], "paths": 100, "sde": {"substeps": 4}}"#;

/// `--paths 1`: no standard error, so every random point is unresolved and no order
/// is fitted (today: stderr 0, errors "resolved", an order CI of zero width).
#[test]
fn one_path_gives_null_stderr_and_no_order() {
    let r = run(ONE_PATH, &["--backend", "cpu", "--paths", "1"]);
    for p in r["points"].as_array().unwrap() {
        if p["t"].as_f64().unwrap() > 0.0 {
            assert!(p["stderr"].is_null(), "{p}");
        }
    }
    for e in r["weak_errors"].as_array().unwrap() {
        assert_eq!(e["resolved"], false, "{e}");
        assert!(e["stderr"].is_null(), "{e}");
    }
    assert!(
        r["orders"].as_array().unwrap().is_empty(),
        "{}",
        r["orders"]
    );
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|w| w.contains("a standard error needs at least 2")),
        "{w:?}"
    );
}

const DECAY: &str = r#"{"experiment": "weak_order",
 "model": {"kind": "multiplicative", "mean": 1.0, "std": 2.0},
 "x0": [1.0], "dynamics": ["gd", "sme1"], "etas": [0.5], "horizon": 40.0,
 "observables": ["norm2"], "paths": 200, "seed": 1}"#;

/// An observable that decays far below g(x₀): gd's |x|² = 0.25^80 = 6.8e-49 must not
/// be swallowed by a g(x₀) = 1 shift (today: 0), nor sme1's values (today 0 ± 0).
#[test]
fn shifts_do_not_swallow_decayed_values() {
    let r = run(DECAY, &["--backend", "cpu"]);
    let at_t = |d: &str| {
        r["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["dynamics"] == d && p["t"] == 40.0)
            .unwrap()
            .clone()
    };
    let gd = at_t("gd");
    let (mean, exact) = (gd["mean"].as_f64().unwrap(), gd["exact"].as_f64().unwrap());
    assert!(
        (mean - exact).abs() <= 1e-12 * exact,
        "gd: {mean} vs exact {exact}"
    );
    assert!((exact - 0.25f64.powi(80)).abs() <= 1e-12 * exact);
    let sme = at_t("sme1");
    let (m, se) = (
        sme["mean"].as_f64().unwrap(),
        sme["stderr"].as_f64().unwrap(),
    );
    assert!(m > 0.0 && se > 0.0, "sme1: {m} ± {se}");
}

const NPOINT: &str = r#"{"experiment": "n_point",
 "model": {"kind": "multiplicative", "mean": 1.0, "std": 2.0},
 "particles": [[1.0], [-0.5]], "dynamics": ["sgd", "smf1", "sme1"], "batch": 1,
 "etas": [0.5], "horizon": 10.0, "paths": 2000,
 "sde": {"substeps": 8, "extrapolate": true}, "seed": 1}"#;

/// Talay–Tubaro extrapolation near blow-up drives E|x_p − x_q|² below zero (today:
/// written as a statistic) and the correlation undefined (today: a silent null).
#[test]
fn n_point_nulls_carry_reasons_and_no_second_moment_is_negative() {
    let r = run(NPOINT, &["--backend", "cpu"]);
    let w = warnings(&r);
    let mut nulls = 0;
    for c in r["correlations"].as_array().unwrap() {
        let d = c["mean_dist2"].as_f64();
        assert!(d.is_none_or(|d| d >= 0.0), "negative E|x_p − x_q|²: {c}");
        let here = format!(
            "{} η={} t={} particles [0, 1]",
            c["dynamics"].as_str().unwrap(),
            c["eta"].as_f64().unwrap(),
            c["t"].as_f64().unwrap()
        );
        for (field, what) in [
            ("correlation", "correlation is null"),
            ("mean_dist2", "E|x_p − x_q|² is null"),
        ] {
            if c[field].is_null() {
                nulls += 1;
                assert!(
                    w.iter().any(|w| w.starts_with(&here) && w.contains(what)),
                    "{field} null without a reason at {here}: {w:?}"
                );
            }
        }
    }
    assert!(
        nulls > 0,
        "the case should produce nulls: {}",
        r["correlations"]
    );
    for p in r["points"].as_array().unwrap() {
        assert!(
            p["mean"]
                .as_f64()
                .is_none_or(|m| m >= 0.0 || !p["observable"].as_str().unwrap().contains("dist2")),
            "{p}"
        );
    }
}

/// gd at η = 2 on the u⊙v net blows up: its distances are empty CSV cells (today
/// "NaN"), its maxima null, and results.json's warnings say so.
#[test]
fn gd_vs_gf_reports_divergence() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/gd_vs_gf.json"
    ))
    .unwrap();
    let mut c: Value = serde_json::from_str(&text).unwrap();
    c["etas"] = serde_json::json!([2.0, 0.1, 0.05]);
    c["ratios"] = serde_json::json!([2]);
    c["checkpoints"] = serde_json::json!([2, 10]);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("g.json");
    std::fs::write(&cfg, c.to_string()).unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(BIN)
        .args([
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("distances.csv")).unwrap();
    assert!(!csv.contains("NaN"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("2,20,gf,") && l.ends_with(',')),
        "{csv}"
    );
    let r = read(&out);
    assert!(r["results"]["per_eta"][0]["max_distance"]["gf"].is_null());
    assert!(
        warnings(&r)
            .iter()
            .any(|w| w.starts_with("η=2: gd diverged")),
        "{:?}",
        warnings(&r)
    );
}

/// A finite-data experiment whose runs are random needs two replicas for a standard
/// error (today: `--paths 1` reported stderr 0).
#[test]
fn random_training_runs_need_two_replicas() {
    let cfg = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/least_squares_risk.json"
    );
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args([
            "run",
            cfg,
            "--backend",
            "cpu",
            "--quiet",
            "--paths",
            "1",
            "--out",
        ])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--paths: must be ≥ 2"), "{err}");
}

/// results.json names the precision that ran: the CPU trainer is f64 (the reference)
/// when `precision` is unset, and f32 only when the config asks for it.
#[test]
fn training_results_name_the_precision_that_ran() {
    let cfg = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/least_squares_risk.json"
    ))
    .unwrap();
    let r = run(&cfg, &["--backend", "cpu", "--paths", "4"]);
    assert_eq!(r["precision"], "f64", "{}", r["precision"]);
    assert!(
        r["adapter"]
            .as_str()
            .unwrap()
            .contains("(f64, the reference)"),
        "{}",
        r["adapter"]
    );
    let f32_cfg = cfg.replacen('{', r#"{"precision": "f32","#, 1);
    let r = run(&f32_cfg, &["--backend", "cpu", "--paths", "4"]);
    assert_eq!(r["precision"], "f32", "{}", r["precision"]);
    assert!(
        r["adapter"].as_str().unwrap().contains("(f32, fast option"),
        "{}",
        r["adapter"]
    );
}

/// The finite-data risk and implicit-bias studies warn of the replicas that diverged
/// (they counted them silently), and of a negative debiased bias².
#[test]
fn finite_data_studies_warn_of_diverged_replicas() {
    let lsr = r#"{"experiment": "least_squares_risk",
     "data": {"source": "generate", "n": 30, "d": 10, "label_noise": 1, "teacher_scale": 0.3},
     "model": {"param": "linear"}, "dynamics": ["sgd"], "etas": [1, 0.05], "batch": 5,
     "horizon": 40, "paths": 50, "substeps": 1}"#;
    let r = run(lsr, &["--backend", "cpu"]);
    let w = warnings(&r);
    let pts = &r["results"]["monte_carlo"][0]["points"];
    let div = pts[pts.as_array().unwrap().len() - 1]["diverged"]
        .as_u64()
        .unwrap();
    assert!(div > 0, "{r}");
    let want = format!("sgd η=1: {div} of 50 replicas diverged and were excluded");
    assert!(w.iter().any(|x| x == &want), "{w:?}");
    let ibs = r#"{"experiment": "implicit_bias_sweep",
     "data": {"source": "generate", "n": 20, "d": 30, "sparsity": 3},
     "model": {"param": "uv", "alpha": 0.1}, "dynamics": ["sgd"], "etas": [1.0, 0.25],
     "batch": 1, "horizon": 10, "paths": 10, "substeps": 1}"#;
    let w = warnings(&run(ibs, &["--backend", "cpu"]));
    assert!(
        w.iter()
            .any(|x| x.starts_with("sgd η=1: ") && x.contains("of 10 replicas diverged")),
        "{w:?}"
    );
}

/// Runs (on the CPU) a finite-data config, `fields` beside its `data`: three samples
/// [[1,2],[4,5],[7,8]] (λ_max of XᵀX/N ≈ 53: Euler–Maruyama blows up at dt ≥ 0.04)
/// with a teacher of 1e200 (‖β − β*‖² overflows for any finite β).
fn run_on_stiff_data(fields: &str) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("x.csv");
    std::fs::write(&data, "a,b,y\n1,2,3\n4,5,6\n7,8,9\n").unwrap();
    let cfg = format!(
        r#"{{"data": {{"source": "file", "path": {:?}, "teacher": [1e200, 1e200]}}, {fields}}}"#,
        data.to_str().unwrap()
    );
    run(&cfg, &["--backend", "cpu"])
}

/// weak_order on a data set: every replica is counted (a state within the bound whose
/// β_err² overflows is diverged, not dropped), and a negative Talay–Tubaro mean of a
/// non-negative observable (its coarse level blown up: X has λ_max ≈ 53) is null with
/// its reason, as in the small-d engine.
#[test]
fn data_weak_order_counts_every_replica_and_nulls_negative_means() {
    let r = run_on_stiff_data(
        r#""experiment": "weak_order", "model": {"param": "linear"},
        "dynamics": ["sgd", "sme1"], "etas": [0.1, 0.05], "batch": 1, "horizon": 1.0,
        "paths": 20, "substeps": 4, "extrapolate": true,
        "observables": ["train_loss", "beta_norm2", "beta_err2"], "seed": 3"#,
    );
    let w = warnings(&r);
    let points = r["results"]["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{r}");
    let mut nulled = 0;
    for p in points {
        let (count, diverged) = (
            p["count"].as_u64().unwrap(),
            p["diverged"].as_u64().unwrap(),
        );
        assert_eq!(count + diverged, 20, "{p}");
        match p["mean"].as_f64() {
            Some(m) => assert!(m >= 0.0, "{p}"),
            None => nulled += 1,
        }
    }
    assert!(nulled > 0, "{points:?}");
    assert!(
        w.iter()
            .any(|x| x.contains("< 0 (Talay–Tubaro") && x.contains("raise substeps")),
        "{w:?}"
    );
}

/// implicit_bias_sweep: a replica within the bound whose always-defined metrics overflow
/// (‖β − β*‖ with a teacher of 1e200) is diverged, counted and warned of, not dropped.
#[test]
fn implicit_bias_counts_an_overflowing_metric_as_diverged() {
    let r = run_on_stiff_data(
        r#""experiment": "implicit_bias_sweep", "model": {"param": "uv", "alpha": 0.1},
        "dynamics": ["sgd"], "etas": [0.01], "batch": 1, "horizon": 1, "paths": 10,
        "substeps": 1"#,
    );
    assert_eq!(r["results"]["sweep"][0]["diverged"], 10, "{r}");
    let w = warnings(&r);
    assert!(
        w.iter()
            .any(|x| x.starts_with("sgd η=0.01: 10 of 10 replicas diverged")),
        "{w:?}"
    );
}
