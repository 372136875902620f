//! Deep linear networks (`model.param` deep_linear, DESIGN §4b, seed 004).
//! - A GD step is w − η ∇L(w), ∇L by central differences of the mean squared loss
//!   (the dense pull-back J(w)ᵀ at work; `net.rs`'s unit test checks J, Jᵀ and the
//!   curvature term map by map).
//! - gd_vs_gf on `configs/gd_vs_gf_deep_linear.json`: GD–GF order 1 and GD–MGF order 2
//!   (the modified flow needs the Hessian-vector product, curvature term included).
//! - Lane groups carry the scalar reference's bits, for every dynamics.
//! - The GPU trainer runs it and `compare` passes; bad configs name the field.

mod common;

use smflow::data::{generate, DataSet, GenerateConfig, Labels};
use smflow::experiment::training::config::{check, TrainConfig};
use smflow::experiment::training::execute;
use smflow::train::cpu::{replica_rows, CpuTrainer};
use smflow::train::loss::Loss;
use smflow::train::net::{DeepLinear, Param};
use smflow::train::{Dynamics, TrainJob};
use std::process::Command;
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_smflow");
const DEEP: Param = Param::DeepLinear(DeepLinear { depth: 3, width: 4 });

fn data(n: usize, d: usize) -> Arc<DataSet> {
    Arc::new(generate(
        &GenerateConfig {
            n,
            d,
            sparsity: None,
            teacher_scale: 1.0,
            label_noise: 0.1,
            seed: None,
            labels: Labels::Linear,
        },
        7,
    ))
}

fn job(data: &Arc<DataSet>, dynamics: Dynamics) -> TrainJob {
    common::train::job(data, DEEP, dynamics, Loss::Squared)
}

/// L(w) = (1/2N) Σ_i (⟨β(w), x_i⟩ − y_i)².
fn loss(ds: &DataSet, param: Param, w: &[f64]) -> f64 {
    let mut beta = vec![0.0; ds.d];
    param.beta(w, &mut beta);
    (0..ds.n)
        .map(|i| {
            let m: f64 = (0..ds.d).map(|j| ds.x[i * ds.d + j] * beta[j]).sum();
            0.5 * (m - ds.y[i]).powi(2)
        })
        .sum::<f64>()
        / ds.n as f64
}

#[test]
fn a_gd_step_follows_the_gradient_of_the_loss() {
    let ds = data(17, 5);
    let mut j = job(&ds, Dynamics::Gd);
    j.checkpoints = vec![0, 1];
    let rows = replica_rows(&j, 0);
    let p = j.p();
    let (w0, w1) = (&rows[..p], &rows[p..2 * p]);
    let h = 1e-6;
    for k in 0..p {
        let (mut a, mut b) = (w0.to_vec(), w0.to_vec());
        a[k] += h;
        b[k] -= h;
        let grad = (loss(&ds, DEEP, &a) - loss(&ds, DEEP, &b)) / (2.0 * h);
        let want = w0[k] - j.eta * grad;
        assert!(
            (w1[k] - want).abs() < 1e-8,
            "parameter {k}: {} vs {want}",
            w1[k]
        );
    }
}

/// Seed 000's orders along a deep linear network's trajectory (depth 3, width 10).
#[test]
fn gd_vs_gf_orders_hold_for_a_deep_linear_network() {
    let (gf, mgf) = common::train::gd_vs_gf_orders("configs/gd_vs_gf_deep_linear.json");
    assert!((0.9..1.2).contains(&gf), "GD–GF order {gf}");
    assert!((1.8..2.4).contains(&mgf), "GD–MGF order {mgf}");
}

/// What the README says GD does on that network: at η ≤ 0.125 it trains to zero loss
/// like GF; at η = 0.25 its loss stalls above 1e-3 (GF's: below 1e-20).
#[test]
fn gd_trains_below_the_step_size_limit_and_stalls_beyond() {
    let text = std::fs::read_to_string("configs/gd_vs_gf_deep_linear.json").unwrap();
    let s = check(serde_json::from_str(&text).unwrap(), "t").unwrap();
    let out = execute(&s, &CpuTrainer::default(), &|_| {}).unwrap();
    for p in out.results["per_eta"].as_array().unwrap() {
        let eta = p["eta"].as_f64().unwrap();
        let loss = |r: &str| p["final_loss"][r].as_f64().unwrap();
        assert!(loss("gf") < 1e-20, "η={eta}: GF loss {}", loss("gf"));
        let db = p["max_beta_distance"]["gf"].as_f64().unwrap();
        assert!(db > 0.0 && db.is_finite(), "η={eta}: β distance {db}");
        if eta <= 0.125 {
            assert!(loss("gd") < 1e-20, "η={eta}: GD loss {}", loss("gd"));
        } else {
            assert!(loss("gd") > 1e-3, "η={eta}: GD loss {}", loss("gd"));
        }
    }
}

/// Lane groups carry the scalar reference's bits (full groups and a partial one).
#[test]
fn deep_linear_lanes_are_bit_identical_to_the_scalar_reference() {
    let ds = data(13, 5);
    for d in smflow::train::SUPPORTED {
        let rows = common::train::assert_lanes_match_reference(&job(&ds, d));
        assert!(rows.iter().flatten().all(|v| v.is_finite()), "{}", d.name());
    }
}

fn smflow(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).output().expect("binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The GPU trainer runs it (deep_linear.wgsl, the DENSE path; `tests/train_gpu.rs`
/// checks every dynamics path by path): `--backend gpu` writes the results, and
/// `compare` passes with no run skipped. (Before, the GPU refused it.) A smaller net
/// and fewer substeps than the shipped config, whose MGF step is beyond llvmpipe's
/// loop limit (refused there, by name; a real GPU has no such limit).
#[test]
fn the_gpu_runs_it_and_compare_passes() {
    let devices = Command::new(BIN).arg("devices").output().unwrap();
    if String::from_utf8_lossy(&devices.stdout).contains("no wgpu adapter") {
        eprintln!("skipping: no wgpu adapter");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("o");
    let dir = dir.to_str().unwrap();
    let cfg = tmp.path().join("deep.json");
    std::fs::write(
        &cfg,
        r#"{"experiment": "gd_vs_gf",
        "data": {"source": "generate", "n": 20, "d": 4, "sparsity": 2},
        "model": {"param": "deep_linear", "depth": 3, "width": 4, "alpha": 0.5},
        "dynamics": ["gd"], "etas": [0.2, 0.1], "horizon": 2, "paths": 1,
        "substeps": 4}"#,
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let (code, err) = smflow(&["run", cfg, "--backend", "gpu", "--out", dir]);
    assert_eq!(code, Some(0), "{err}");
    let res: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(dir).join("results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(res["backend"], "gpu", "{res}");
    let cmp = tmp.path().join("c");
    let (code, err) = smflow(&["compare", cfg, "--out", cmp.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cmp.join("compare.json")).unwrap()).unwrap();
    assert_eq!(c["passed"], true, "{c}");
    let runs = c["runs"].as_array().unwrap();
    assert!(!runs.is_empty(), "{c}");
    for r in runs {
        assert!(r.get("skipped").is_none(), "{r}");
    }
    // compare runs the experiment itself: every call it makes is compared, the gf and
    // mgf references and GD at η/r as well as the listed gd.
    let dynamics: Vec<&str> = runs.iter().filter_map(|r| r["dynamics"].as_str()).collect();
    for d in ["gd", "gf", "mgf"] {
        assert!(dynamics.contains(&d), "{d} not compared: {c}");
    }
    assert!(
        runs.iter().any(|r| r["eta"].as_f64() == Some(0.05)),
        "GD(η/r) not compared: {c}"
    );
}

#[test]
fn bad_deep_linear_configs_name_the_field() {
    let base = r#"{"experiment": "gd_vs_gf",
        "data": {"source": "generate", "n": 20, "d": 3},
        "model": {"param": "deep_linear", "depth": 3, "width": 4},
        "dynamics": ["gd"], "etas": [0.25], "horizon": 1, "paths": 1}"#;
    let ok: TrainConfig = serde_json::from_str(base).unwrap();
    check(ok, "t").unwrap();
    let field = |json: String| {
        let cfg: TrainConfig = serde_json::from_str(&json).unwrap();
        check(cfg, "t").unwrap_err()
    };
    for (from, to, want) in [
        ("\"depth\": 3, ", "", "model.depth"),
        ("\"depth\": 3", "\"depth\": 2", "model.depth"),
        ("\"depth\": 3", "\"depth\": 9", "model.depth"),
        (", \"width\": 4", "", "model.width"),
        ("\"width\": 4", "\"width\": 0", "model.width"),
        (
            "\"param\": \"deep_linear\"",
            "\"param\": \"uv\"",
            "model.depth",
        ),
        ("gd_vs_gf", "implicit_bias_sweep", "model.param"),
    ] {
        let e = field(base.replace(from, to));
        assert_eq!(e.field, want, "{from} → {to}: {e}");
    }
}
