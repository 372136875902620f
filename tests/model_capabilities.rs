//! Each small-d model's declared `Capabilities` hold against its own code: a declared
//! exact transition exists (`exact_step` is not `Unavailable`) and an undeclared one
//! does not; declared Gaussian-linear noise is exactly `smf_noise(x, z) = ∇R(x) −
//! ∇R(x, θ(z))` with as many data normals as noise dimensions, at random x and z. And
//! a job needing what a model does not declare is refused, naming the model.

use smflow::config::parse::Overrides;
use smflow::model::{vector, zero, ExactStep, Model, Vector};

fn model(kind: &str) -> smflow::model::AnyModel {
    let m = match kind {
        "quadratic" => {
            r#"{"kind": "quadratic", "a": [[1.5, 0.2], [0.2, 0.7]], "mean": [0.3, -0.1],
                "cov": [[0.64, 0.1], [0.1, 0.3]]}"#
        }
        "multiplicative" => r#"{"kind": "multiplicative", "mean": 2.0, "std": 1.5}"#,
        "double_well" => {
            r#"{"kind": "toy_sgd", "loss": "double_well", "c0": 0.25, "sigma": 100.0}"#
        }
        _ => {
            r#"{"kind": "toy_sgd", "loss": "ring", "k0": 10.0, "a": 0.8, "c0": 0.5,
                "sigma": 400.0}"#
        }
    };
    let d = if matches!(kind, "quadratic" | "ring") {
        2
    } else {
        1
    };
    let x0 = vec!["0.5"; d].join(", ");
    let text = format!(
        r#"{{"experiment": "weak_order", "model": {m}, "x0": [{x0}], "dynamics": ["sgd"],
            "etas": [0.1], "horizon": 1.0, "paths": 2, "observables": ["norm2"]}}"#
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    smflow::experiment::config::load(v, "t", Overrides::default())
        .unwrap_or_else(|e| panic!("{kind}: {e}"))
        .model
}

fn normals(seed: u32, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n.max(1)];
    smflow::rng::fill_normals([seed, 7], 0, 3, 0, 1, n.max(1), &mut out);
    out
}

fn check<M: Model>(name: &str, m: &M) {
    let caps = m.capabilities();
    let exact = !matches!(m.exact_step(0.05, 0.1, 0.25), ExactStep::Unavailable);
    assert_eq!(caps.exact_transition, exact, "{name}: exact_transition");
    if !caps.gaussian_linear_noise {
        return;
    }
    let d = m.dim();
    assert_eq!(m.data_normals(), m.smf_noise_dim(), "{name}: dimensions");
    for trial in 0..20 {
        let x: Vector = vector(&normals(100 + trial, d)[..d]);
        let z = normals(trial, m.data_normals());
        let g = m.grad(&x);
        let gs = m.grad_sample(&x, &m.sample_theta(&z));
        let noise = m.smf_noise(&x, &z);
        let mut want: Vector = zero();
        for i in 0..d {
            want[i] = g[i] - gs[i];
            let tol = 1e-12 * (1.0 + g[i].abs() + gs[i].abs());
            assert!(
                (noise[i] - want[i]).abs() <= tol,
                "{name} trial {trial} coordinate {i}: smf_noise {} vs ∇R − ∇R(θ) {}",
                noise[i],
                want[i]
            );
        }
    }
}

#[test]
fn declared_capabilities_match_the_models_code() {
    for kind in ["quadratic", "multiplicative", "double_well", "ring"] {
        smflow::with_model!(&model(kind), m => check(kind, m));
    }
}

#[test]
fn a_job_needing_an_undeclared_capability_names_the_model() {
    let text = r#"{"experiment": "weak_order",
        "model": {"kind": "toy_sgd", "loss": "double_well", "c0": 0.25, "sigma": 100.0},
        "x0": [0.5], "dynamics": ["sgd", "sme1"], "etas": [0.1], "horizon": 1.0,
        "paths": 2, "observables": ["norm2"], "sde": {"solver": "exact"}}"#;
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let e = smflow::experiment::config::load(v, "t", Overrides::default()).unwrap_err();
    assert_eq!(e.field, "sde.solver");
    assert!(
        e.message.contains("toy_sgd") && e.message.contains("exact transition"),
        "{e}"
    );
}
