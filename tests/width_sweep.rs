//! `width_sweep` and the mean-field estimators: n·Var stable across widths (and a wrong
//! scaling rejected), the exact fluctuation at t = 0, CLI outputs, reproducibility and
//! block-size independence, and bad input naming the field.

use smflow::backend::Precision;
use smflow::experiment::width_sweep::analysis::describe;
use smflow::experiment::width_sweep::config::{check, WidthSweepConfig};
use smflow::experiment::width_sweep::{collect, job};
use smflow::meanfield::cpu::CpuMeanField;
use smflow::meanfield::Dynamics;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smflow");

fn config(extra: &str) -> String {
    format!(
        r#"{{"experiment": "width_sweep",
        "model": {{"kind": "two_layer", "activation": "tanh", "d": 4,
                  "teacher": {{"neurons": 3, "a_scale": 2.0, "seed": 5}},
                  "init": {{"a_mean": 0.0, "a_std": 1.0, "w_std": 1.0}}}},
        "data": {{"kind": "set", "n": 32, "label_noise": 0.1}},
        "widths": [16, 64, 256], "dynamics": ["gd", "sgd", "smf1"], "etas": [0.1],
        "batch": 2, "horizon": 1.0, "paths": 400, "substeps": 2,
        "test_function": "a2", "test_samples": 64, "seed": 3 {extra}}}"#
    )
}

fn sweep(text: &str) -> smflow::experiment::width_sweep::config::Sweep {
    let cfg: WidthSweepConfig = serde_json::from_str(text).unwrap();
    check(cfg, "test").unwrap()
}

/// ⟨φ, ν⟩ = ⟨a², ν⟩ over replicas at checkpoint c (index 3 of the observables).
fn phi(
    s: &smflow::experiment::width_sweep::config::Sweep,
    d: Dynamics,
    n: usize,
    c: usize,
) -> Vec<f64> {
    let runs = collect(&CpuMeanField::default(), &job(s, d, 0, n), s.cfg.paths).unwrap();
    runs[c].iter().map(|o| o[3]).collect()
}

#[test]
fn n_var_is_the_exact_variance_at_t0_and_stable_across_widths_at_t() {
    let s = sweep(&config(""));
    // t = 0: n·Var(⟨a², ν₀⟩) = Var(a²) = 2 for a ~ N(0, 1), at every width.
    for n in [16, 256] {
        let (_, _, var, var_se, _) = describe(&phi(&s, Dynamics::Gd, n, 0));
        let (nv, se) = (n as f64 * var, n as f64 * var_se);
        assert!(
            (nv - 2.0).abs() < 4.0 * se,
            "n = {n}: n·Var {nv} ± {se} vs 2"
        );
    }
    // t = T under GD (deterministic given μ₀^n): n·Var settles to a constant.
    let (_, _, v16, s16, _) = describe(&phi(&s, Dynamics::Gd, 16, 1));
    let (_, _, v256, s256, _) = describe(&phi(&s, Dynamics::Gd, 256, 1));
    let (a, sa) = (16.0 * v16, 16.0 * s16);
    let (b, sb) = (256.0 * v256, 256.0 * s256);
    let z = (a - b).abs() / (sa * sa + sb * sb).sqrt();
    assert!(
        z < 4.0,
        "n·Var at T: n=16 {a} ± {sa}, n=256 {b} ± {sb} ({z:.1} se apart)"
    );
    // The test has power: Var itself (no factor n) is far from constant.
    let z_wrong = (v16 - v256).abs() / (s16 * s16 + s256 * s256).sqrt();
    assert!(
        z_wrong > 8.0,
        "Var alone only {z_wrong:.1} se apart: the test would not fail"
    );
    // The dynamics moved φ: the check is not just the initial law again.
    let (m0, se0, ..) = describe(&phi(&s, Dynamics::Gd, 256, 0));
    let (m1, se1, ..) = describe(&phi(&s, Dynamics::Gd, 256, 1));
    assert!(
        (m1 - m0).abs() > 6.0 * (se0 * se0 + se1 * se1).sqrt(),
        "⟨a²⟩ did not move: {m0} → {m1}"
    );
}

#[test]
fn results_do_not_depend_on_the_cpu_block_size() {
    let s = sweep(&config(""));
    let j = job(&s, Dynamics::Smf1, 0, 20);
    for precision in [Precision::F64, Precision::F32] {
        let a = collect(
            &CpuMeanField {
                block: 1,
                precision,
            },
            &j,
            9,
        )
        .unwrap();
        let b = collect(
            &CpuMeanField {
                block: 256,
                precision,
            },
            &j,
            9,
        )
        .unwrap();
        assert_eq!(a, b, "{precision:?}");
    }
}

/// Risk (observable 0) at the horizon of every replica of `j` (fine level, or
/// coarsened by `c`), CPU f64.
fn risks(j: &smflow::meanfield::MfJob, c: u32, paths: u64) -> Vec<f64> {
    let mut j = j.clone();
    j.coarsen = c;
    let runs = collect(&CpuMeanField::default(), &j, paths).unwrap();
    runs.last().unwrap().iter().map(|o| o[0]).collect()
}

/// The coupled levels measure the solver's error. gf (RK4, deterministic given the
/// initial neurons): per replica, the levels' estimate (g₁ − g₂)/15 at 2 substeps is
/// minus the fine level's actual error g₁ − g(64 substeps), to leading order (within
/// 25%; an estimate from uncoupled or mis-scaled levels is off by orders of magnitude).
/// smf1: the coarse level (2 of the fine level's 4 substeps, increments summed) runs on
/// the fine level's Brownian path, so g₁ − g₂ spreads far less than g₁ (independent
/// levels would spread √2 times more, not 10 times less).
#[test]
fn coupled_levels_estimate_the_solver_error() {
    let text = config("")
        .replace(r#""etas": [0.1]"#, r#""etas": [0.2]"#)
        .replace(r#""paths": 400"#, r#""paths": 40"#);
    let s = sweep(&text);
    let gf = job(&s, Dynamics::Gf, 0, 16);
    let (g1, g2) = (risks(&gf, 1, 40), risks(&gf, 2, 40));
    let mut exact = gf.clone();
    exact.substeps = 64;
    let g64 = risks(&exact, 1, 40);
    let (mut est, mut actual) = (0.0, 0.0);
    for r in 0..40 {
        est += (g1[r] - g2[r]) / 15.0;
        actual += g1[r] - g64[r];
    }
    assert!(actual.abs() > 1e-9, "RK4 error {actual} too small to test");
    assert!(
        (est + actual).abs() < 0.25 * actual.abs(),
        "RK4 error estimate {est} vs actual {actual}"
    );

    let s = sweep(&text.replace(r#""substeps": 2"#, r#""substeps": 4"#));
    let smf1 = job(&s, Dynamics::Smf1, 0, 16);
    let (f, c) = (risks(&smf1, 1, 400), risks(&smf1, 2, 400));
    let diff: Vec<f64> = f.iter().zip(&c).map(|(a, b)| a - b).collect();
    let (_, _, var_diff, ..) = describe(&diff);
    let (_, _, var_fine, ..) = describe(&f);
    assert!(
        var_diff < var_fine / 100.0,
        "Var(g₁ − g₂) = {var_diff:e} vs Var g₁ = {var_fine:e}: the levels are not coupled"
    );
    // And they are different solutions (the estimate is not identically zero).
    assert!(var_diff > 0.0 && diff.iter().any(|d| d.abs() > 1e-9));
}

/// The CLI reports the levels: smf1 and gf cells carry a solver error (sgd's none),
/// pairs a bound and a verdict; `extrapolate` reports Talay–Tubaro values, and a
/// `substeps` that is not a multiple of 4 with it is refused by name.
#[test]
fn sweeps_report_solver_errors_and_extrapolate() {
    let tmp = tempfile::tempdir().unwrap();
    let base = config("")
        .replace(r#""paths": 400"#, r#""paths": 16"#)
        .replace("[16, 64, 256]", "[8, 16]")
        .replace(r#""substeps": 2"#, r#""substeps": 4"#)
        .replace(r#"["gd", "sgd", "smf1"]"#, r#"["gd", "gf", "sgd", "smf1"]"#);
    let read = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("results.json")).unwrap()).unwrap()
    };
    let cell = |r: &serde_json::Value, d: &str, n: u64, o: &str| -> serde_json::Value {
        r["results"]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["dynamics"] == d && c["width"] == n && c["t"] == 1.0 && c["observable"] == o
            })
            .unwrap()
            .clone()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let o = run_cli(&base, &a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ra = read(&a);
    for d in ["smf1", "gf"] {
        let e = &cell(&ra, d, 16, "risk")["solver_error"];
        assert!(e.as_f64().is_some_and(|e| e.is_finite()), "{d}: {e}");
    }
    assert!(cell(&ra, "sgd", 16, "risk")["solver_error"].is_null());
    let pair = ra["results"]["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pair"][1] == "smf1" && p["t"] == 1.0 && p["observable"] == "risk")
        .unwrap()
        .clone();
    assert!(pair["solver_bound"].as_f64().unwrap() > 0.0);
    assert!(pair["solver_ok"].is_boolean());
    let header = std::fs::read_to_string(a.join("width_sweep.csv")).unwrap();
    assert!(header
        .lines()
        .next()
        .unwrap()
        .ends_with(",solver_error,solver_error_stderr"));

    // extrapolate: smf1's value is 2g₁ − g₂, so it moves by minus the (EM) estimate;
    // gf (RK4) keeps g₁.
    let o = run_cli(
        &base.replace(r#""seed": 3"#, r#""seed": 3, "extrapolate": true"#),
        &b,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rb = read(&b);
    let num = |v: &serde_json::Value, f: &str| v[f].as_f64().unwrap();
    let (plain, tt) = (cell(&ra, "smf1", 16, "risk"), cell(&rb, "smf1", 16, "risk"));
    let shift = num(&tt, "mean") - num(&plain, "mean");
    let expect = num(&plain, "solver_error");
    assert!(
        (shift - expect).abs() < 1e-12 * (1.0 + num(&plain, "mean").abs()),
        "2g₁ − g₂ − g₁ = g₁ − g₂: shift {shift:e} vs {expect:e}"
    );
    assert_eq!(
        cell(&ra, "gf", 16, "risk")["mean"],
        cell(&rb, "gf", 16, "risk")["mean"]
    );

    let bad = base.replace(r#""substeps": 4"#, r#""substeps": 6, "extrapolate": true"#);
    let o = run_cli(&bad, &tmp.path().join("c"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("substeps") && err.contains("multiple of 4"),
        "{err}"
    );
}

/// `weak_order` on the two-layer model: the small-d study's files and fields from the
/// mean-field engine, pairs paired by replica. GD − GF is O(η) and GD − MGF O(η²) (the
/// order-2 drift of the mean-field GD, README): their fitted orders land within 0.2 of
/// 1 and 2 (a missing or wrong correction gives 1 for both). Bad input names the field.
#[test]
fn weak_order_on_two_layer_fits_gd_gf_and_mgf_orders() {
    let tmp = tempfile::tempdir().unwrap();
    let text = config("")
        .replace(
            r#""experiment": "width_sweep""#,
            r#""experiment": "weak_order""#,
        )
        .replace("[16, 64, 256]", "[16]")
        .replace(
            r#"["gd", "sgd", "smf1"]"#,
            r#"["gd", "gf", "mgf", "sgd", "smf1"]"#,
        )
        .replace(r#""etas": [0.1]"#, r#""etas": [0.2, 0.1, 0.05]"#)
        .replace(r#""horizon": 1.0"#, r#""horizon": 0.4"#)
        .replace(r#""paths": 400"#, r#""paths": 24"#)
        .replace(r#""substeps": 2"#, r#""substeps": 4"#);
    let out = tmp.path().join("a");
    let o = run_cli(&text, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["points.csv", "weak_error.csv", "weak_error.svg"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["experiment"], "weak_order");
    let res = &r["results"];
    assert_eq!(res["width"], 16);
    let order = |a: &str, b: &str| {
        res["orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["pair"][0] == a && o["pair"][1] == b && o["observable"] == "risk")
            .unwrap_or_else(|| panic!("no {a}–{b} order: {}", res["orders"]))["order"]
            .as_f64()
            .unwrap()
    };
    let (gf, mgf) = (order("gd", "gf"), order("gd", "mgf"));
    assert!((gf - 1.0).abs() < 0.2, "gd–gf order {gf}");
    assert!((mgf - 2.0).abs() < 0.2, "gd–mgf order {mgf}");
    let e = res["weak_errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pair"][1] == "smf1")
        .unwrap();
    assert_eq!(e["estimator"], "paired_replicas");
    // The smf1 points carry the levels' solver error, sgd's none.
    let pt = |d: &str| {
        res["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["dynamics"] == d && p["t"] == 0.4)
            .unwrap()
            .clone()
    };
    assert!(pt("smf1")["solver_error"].is_f64() && pt("sgd")["solver_error"].is_null());

    for (bad, field) in [
        (text.replace("[16]", "[16, 32]"), "widths"),
        (
            text.replace(r#"["gd", "gf", "mgf", "sgd", "smf1"]"#, r#"["gf", "smf1"]"#),
            "dynamics",
        ),
    ] {
        let o = run_cli(&bad, &tmp.path().join(field));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(field), "{field}: {err}");
    }
}

fn run_cli(cfg_text: &str, out: &std::path::Path) -> std::process::Output {
    let cfg = out.with_extension("json");
    std::fs::write(&cfg, cfg_text).unwrap();
    Command::new(BIN)
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
        .unwrap()
}

#[test]
fn cli_writes_complete_reproducible_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let text = config(r#", "checkpoints": [0.5]"#)
        .replace(r#""paths": 400"#, r#""paths": 20"#)
        .replace("[16, 64, 256]", "[8, 16, 32]");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        let o = run_cli(&text, dir);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in [
        "width_sweep.csv",
        "rates.csv",
        "pairs.csv",
        "risk_vs_width.svg",
        "gap_vs_width.svg",
        "nvar_vs_width.svg",
        "risk_vs_t.svg",
    ] {
        assert!(a.join(f).exists(), "{f} missing");
    }
    let csv = |d: &std::path::Path| std::fs::read_to_string(d.join("width_sweep.csv")).unwrap();
    assert_eq!(
        csv(&a),
        csv(&b),
        "same config and seed must give the same numbers"
    );
    // 3 dynamics × 3 widths × 3 times × 4 observables rows + header.
    assert_eq!(csv(&a).lines().count(), 1 + 3 * 3 * 3 * 4);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["results"]["widths"], serde_json::json!([8, 16, 32]));
    assert!(r["results"]["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["pair"][0] == "sgd" && p["pair"][1] == "smf1"));
}

/// Unset, the CPU computes in f64 (the reference); `"precision": "f32"` makes it f32
/// (results.json and the adapter say which), with every observable within f32 rounding
/// of the f64 run (the same draws), and not bit-equal to it.
#[test]
fn cpu_precision_follows_the_config_and_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let base = config(r#", "checkpoints": [0.5]"#)
        .replace(r#""paths": 400"#, r#""paths": 8"#)
        .replace("[16, 64, 256]", "[16, 32]");
    let runs = [
        ("unset", base.clone(), "f64"),
        (
            "f64",
            base.replace(r#""seed": 3"#, r#""seed": 3, "precision": "f64""#),
            "f64",
        ),
        (
            "f32",
            base.replace(r#""seed": 3"#, r#""seed": 3, "precision": "f32""#),
            "f32",
        ),
    ];
    let mut csvs = Vec::new();
    for (name, text, want) in &runs {
        let dir = tmp.path().join(name);
        let o = run_cli(text, &dir);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(r["precision"], *want, "{name}: {}", r["precision"]);
        let adapter = r["adapter"].as_str().unwrap();
        assert!(adapter.contains(&format!("({want})")), "{name}: {adapter}");
        csvs.push(std::fs::read_to_string(dir.join("width_sweep.csv")).unwrap());
    }
    assert_eq!(csvs[0], csvs[1], "unset and f64 are the same run");
    assert_ne!(csvs[0], csvs[2], "f32 must not be the f64 run");
    // Columns after the keys: compare every numeric field of the mean column.
    let rows = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let (a, b) = (rows(&csvs[0]), rows(&csvs[2]));
    let head = &a[0];
    let mean = head
        .iter()
        .position(|h| h == "mean")
        .expect("a mean column");
    assert_eq!(a.len(), b.len());
    for (ra, rb) in a[1..].iter().zip(&b[1..]) {
        let (x, y): (f64, f64) = (ra[mean].parse().unwrap(), rb[mean].parse().unwrap());
        assert!(
            (x - y).abs() <= 1e-3 * x.abs().max(1e-3),
            "row {ra:?}: f64 {x}, f32 {y}"
        );
    }
}

#[test]
fn bad_input_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (config("").replace("[16, 64, 256]", "[16, 0]"), "widths[1]"),
        (
            config("").replace(r#""tanh""#, r#""softplus""#),
            "model.activation",
        ),
        (
            config("").replace(
                r#"{"neurons": 3, "a_scale": 2.0, "seed": 5}"#,
                r#"{"a": [1.0], "w": [[1.0, 2.0, 3.0]]}"#,
            ),
            "model.teacher.w[0]",
        ),
        (config("").replace(r#""smf1""#, r#""sme9""#), "dynamics[2]"),
        (
            config("").replace(
                r#"{"kind": "set", "n": 32, "label_noise": 0.1}"#,
                r#"{"kind": "stream"}"#,
            ),
            "dynamics",
        ),
        (config("").replace(r#""a2""#, r#""a3""#), "test_function"),
        (config(r#", "precision": "f16""#), "precision"),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("bad{i}"));
        let o = run_cli(text, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {field}: {err}");
        assert!(
            err.contains(field),
            "case {field}: error does not name it: {err}"
        );
        assert!(!out.join("results.json").exists());
    }
}

#[test]
fn compare_checks_every_run_of_a_sweep_on_both_backends() {
    if smflow::meanfield::gpu::GpuMeanField::new(smflow::backend::Precision::F32).is_err() {
        eprintln!("skipping: no wgpu adapter");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let text = config("").replace("[16, 64, 256]", "[8, 70]");
    let cfg = tmp.path().join("sweep.json");
    std::fs::write(&cfg, text).unwrap();
    let out = tmp.path().join("cmp");
    let o = Command::new(BIN)
        .args([
            "compare",
            cfg.to_str().unwrap(),
            "--sample",
            "3",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    // 3 dynamics × 2 widths and smf1's coupled coarse level (1 of its 2 substeps) at
    // each width, each compared (none skipped) and within f32 rounding.
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8);
    assert_eq!(
        runs.iter().filter(|r| r["substeps"] == 1).count(),
        2,
        "{stdout}"
    );
    assert!(
        runs.iter()
            .all(|r| r["max_rel_deviation"].as_f64().unwrap() < 1e-4),
        "{stdout}"
    );
    assert_eq!(doc["passed"], true);
}
