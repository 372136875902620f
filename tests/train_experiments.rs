//! Claims of the finite-data experiments, checked end to end on the CPU trainer.

use nalgebra::DVector;
use smflow::data::sampling::Sampling;
use smflow::data::{generate, GenerateConfig};
use smflow::experiment::training::config::{check, TrainConfig};
use smflow::experiment::training::execute;
use smflow::theory::hyperbolic_entropy::{alpha_for_uv, min_entropy_interpolator};
use smflow::theory::least_squares::gf_from;
use smflow::train::cpu::CpuTrainer;
use smflow::train::net::Param;
use smflow::train::{Dynamics, TrainJob, Trainer};
use std::sync::Arc;

fn gen(n: usize, d: usize, s: Option<usize>, noise: f64, seed: u64) -> smflow::data::DataSet {
    generate(
        &GenerateConfig {
            n,
            d,
            sparsity: s,
            teacher_scale: 1.0,
            label_noise: noise,
            seed: None,
            labels: Default::default(),
        },
        seed,
    )
}

fn final_row(job: &TrainJob) -> Vec<f64> {
    let mut out = Vec::new();
    let last = job.checkpoints.len() - 1;
    CpuTrainer::default()
        .train(job, 0..1, &mut |c, _, rows| {
            if c == last {
                out = rows.to_vec();
            }
        })
        .unwrap();
    out
}

fn base_job(
    data: smflow::data::DataSet,
    param: Param,
    d: Dynamics,
    eta: f64,
    steps: u32,
) -> TrainJob {
    TrainJob {
        param,
        loss: Default::default(),
        w0: param.init(data.d, 0.1),
        data: Arc::new(data),
        dynamics: d,
        eta,
        friction: 1.5,
        coarsen: 1,
        batch: 1,
        sampling: Sampling::Replacement,
        substeps: 4,
        checkpoints: vec![steps],
        key: [1, 2],
        stream: 0,
        resample_labels: false,
        track_gain: false,
        bound: 1e6,
    }
}

/// RK4 gf on least squares vs the closed form (seed 000 Lemma 5.1) from w0 = 0:
/// RK4's global error with h = 0.025 is ~1e-8 here; a wrong drift (e.g. a missing
/// 1/N) is off by O(1).
#[test]
fn gf_matches_the_closed_form() {
    let ds = gen(30, 8, None, 0.5, 4);
    let (x, y) = (ds.matrix(), ds.labels());
    let job = base_job(ds, Param::Linear, Dynamics::Gf, 0.1, 30);
    let got = final_row(&job);
    let want = gf_from(&x, &y, &DVector::zeros(8), 3.0);
    let err = (DVector::from_vec(got) - &want).norm() / want.norm();
    assert!(err < 1e-7, "relative error {err}");
}

/// GF (RK4) on u⊙v from (√2α, 0), run to T = 1000, lands on argmin ψ_{α/√2} s.t.
/// Xβ = y (seed 003 Thm 2.1), solved independently by dual Newton; with the wrong α
/// mapping (α instead of α/√2) or the min-ℓ2 interpolator (the wrong bias) it is far.
#[test]
fn dln_gf_limit_is_the_hyperbolic_entropy_interpolator() {
    let ds = gen(10, 20, Some(2), 0.0, 9);
    let (x, y) = (ds.matrix(), ds.labels());
    let job = base_job(ds, Param::Uv, Dynamics::Gf, 0.05, 20_000);
    let w = final_row(&job);
    let beta: Vec<f64> = (0..20).map(|i| w[i] * w[20 + i]).collect();
    let beta = DVector::from_vec(beta);
    let want =
        min_entropy_interpolator(&x, &y, &alpha_for_uv(&DVector::from_element(20, 0.1))).unwrap();
    let err = (&beta - &want).norm() / want.norm();
    assert!(err < 1e-4, "GF limit off the ψ_α interpolator by {err}");
    let wrong = min_entropy_interpolator(&x, &y, &DVector::from_element(20, 0.1)).unwrap();
    assert!(
        (&beta - &wrong).norm() / want.norm() > 10.0 * err,
        "α mapping not resolved"
    );
    let l2 = x.transpose() * (&x * x.transpose()).try_inverse().unwrap() * &y;
    assert!(
        (&beta - &l2).norm() / want.norm() > 20.0 * err.max(1e-4),
        "indistinguishable from min-ℓ2"
    );
}

/// With b = N and epochs, every step's minibatch is the whole data set, so SGD is GD
/// (up to summation order).
#[test]
fn epoch_sgd_with_full_batches_is_gd() {
    let ds = gen(12, 5, None, 0.3, 2);
    let gd = final_row(&base_job(
        ds.clone(),
        Param::PlusMinus,
        Dynamics::Gd,
        0.05,
        50,
    ));
    let mut j = base_job(ds, Param::PlusMinus, Dynamics::Sgd, 0.05, 50);
    j.batch = 12;
    j.sampling = Sampling::Epochs;
    let sgd = final_row(&j);
    for (a, b) in gd.iter().zip(&sgd) {
        assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

fn setup(json: &str) -> smflow::experiment::training::config::Setup {
    let cfg: TrainConfig = serde_json::from_str(json).unwrap();
    check(cfg, "test").unwrap()
}

/// Seed 003 Figure 3: in the (n, d, s, α) = (20, 30, 3, 0.1) setting, SGD (b = 1) at a
/// macroscopic step recovers β* better than GD at the same step: the paired
/// difference of ‖β∞ − β*‖ over 4 data sets is negative beyond 3 standard errors.
#[test]
fn sgd_beats_gd_at_a_large_step() {
    let s = setup(
        r#"{"experiment": "implicit_bias_sweep",
            "data": {"source": "generate", "n": 20, "d": 30, "sparsity": 3},
            "model": {"param": "uv", "alpha": 0.1},
            "dynamics": ["gd", "sgd"], "etas": [0.1], "horizon": 400,
            "paths": 8, "datasets": 4, "seed": 3}"#,
    );
    let out = execute(&s, &CpuTrainer::default(), &|_| {}).unwrap();
    let c = out.results["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "dist_teacher")
        .unwrap()
        .clone();
    let (m, se) = (
        c["sgd_minus_gd"].as_f64().unwrap(),
        c["stderr"].as_f64().unwrap(),
    );
    assert!(m < -3.0 * se, "SGD − GD = {m} ± {se}");
}

/// Seed 000 Theorem 5.1 and the Monte Carlo risk: SGD's mean is GD's, so its risk is
/// GD's risk plus the minibatch variance; at t → 0 every method has risk ‖β₀‖².
#[test]
fn least_squares_risk_reports_the_bounds() {
    let s = setup(
        r#"{"experiment": "least_squares_risk",
            "data": {"source": "generate", "n": 40, "d": 20, "label_noise": 1.0, "teacher_scale": 0.5},
            "model": {"param": "linear"},
            "dynamics": ["gd", "sgd"], "etas": [0.05], "batch": 4, "horizon": 5,
            "checkpoints": [0, 0.5, 1, 2], "paths": 400}"#,
    );
    let out = execute(&s, &CpuTrainer::default(), &|_| {}).unwrap();
    assert_eq!(out.results["bias_bound_holds"], true);
    assert_eq!(out.results["risk_bound_holds"], true);
    let mc = out.results["monte_carlo"].as_array().unwrap();
    let risk = |k: usize, c: usize| mc[k]["points"][c]["risk"].as_f64().unwrap();
    let se = |k: usize, c: usize| mc[k]["points"][c]["stderr"].as_f64().unwrap();
    let b0 = s.data[0]
        .teacher
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v * v)
        .sum::<f64>();
    assert!((risk(0, 0) - b0).abs() < 1e-12 && (risk(1, 0) - b0).abs() < 1e-12);
    // At the horizon SGD is noisier than GD: risk(sgd) − risk(gd) > 0 beyond 3 SE.
    let diff = risk(1, 4) - risk(0, 4);
    assert!(
        diff > 3.0 * (se(0, 4).powi(2) + se(1, 4).powi(2)).sqrt(),
        "diff {diff}"
    );
}

#[test]
fn bad_training_configs_name_the_field() {
    let base = r#"{"experiment": "gd_vs_gf", "data": {"source": "generate", "n": 5, "d": 3},
        "model": {"param": "uv"}, "dynamics": ["gd"], "etas": [0.3], "horizon": 1, "paths": 1}"#;
    let cfg: TrainConfig = serde_json::from_str(base).unwrap();
    let e = check(cfg, "t").unwrap_err();
    assert_eq!(e.field, "etas[0]", "{e}");
    let bad_dyn = base
        .replace("[\"gd\"]", "[\"adam\"]")
        .replace("0.3", "0.25");
    let e = check(serde_json::from_str(&bad_dyn).unwrap(), "t").unwrap_err();
    assert_eq!(e.field, "dynamics[0]");
    assert!(e.message.contains("allowed"), "{e}");
    let bad_param = base
        .replace("gd_vs_gf", "least_squares_risk")
        .replace("0.3", "0.25");
    let e = check(serde_json::from_str(&bad_param).unwrap(), "t").unwrap_err();
    assert_eq!(e.field, "model.param");
    assert!(serde_json::from_str::<TrainConfig>(&base.replace("\"uv\"", "\"cubic\"")).is_err());
}
