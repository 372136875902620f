//! Each small-d model's declared `Capabilities` hold against its own code: a declared
//! exact transition exists (`exact_step` is not `Unavailable`) and an undeclared one
//! does not; declared Gaussian-linear noise is exactly `smf_noise(x, z) = ∇R(x) −
//! ∇R(x, θ(z))` with as many data normals as noise dimensions, at random x and z. And
//! a job needing what a model does not declare is refused, naming the model. The
//! trainer's and mean-field's models declare theirs too (`train::capabilities`,
//! `meanfield::model::capabilities`): a config needing what they lack is refused at
//! its dynamics, naming the model, the dynamics and what is missing, and so is a job
//! built in code.

mod common;

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

#[test]
fn a_data_set_model_without_the_sgf_noise_refuses_sgf() {
    use smflow::experiment::training::config::{check, parse};
    let text = |loss: &str| {
        format!(
            r#"{{"experiment": "weak_order",
            "data": {{"source": "generate", "n": 20, "d": 3, "labels": "logistic"}},
            "model": {{"param": "uv", "loss": "{loss}"}}, "dynamics": ["sgd", "gf", "sgf"],
            "etas": [0.1, 0.05], "horizon": 0.2, "paths": 2}}"#
        )
    };
    let load = |loss: &str| {
        let v = smflow::config::parse::json(&text(loss)).unwrap();
        parse(v, Overrides::default()).and_then(|c| check(c, "t"))
    };
    let e = load("logistic").map(|_| ()).unwrap_err();
    assert_eq!(e.field, "dynamics[2]", "{e}");
    for words in [
        "model uv with the logistic loss",
        "the SGF's noise",
        "which sgf needs",
    ] {
        assert!(e.message.contains(words), "{words}: {e}");
    }
    // The squared loss declares it (labels 0/1 are fine there).
    load("squared").unwrap();

    // A job built in code is refused by the trainer itself.
    use smflow::train::{cpu::CpuTrainer, loss::Loss, net::Param, Dynamics, Trainer};
    let ds = common::train::generated(8, 2, smflow::data::Labels::Logistic);
    let job = common::train::job(&ds, Param::Linear, Dynamics::Sgf, Loss::Logistic);
    let e = CpuTrainer::default()
        .train(&job, 0..2, &mut |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("logistic loss") && e.contains("which sgf needs"),
        "{e}"
    );
    let job = common::train::job(&ds, Param::Linear, Dynamics::Sgf, Loss::Squared);
    CpuTrainer::default()
        .train(&job, 0..2, &mut |_, _, _| {})
        .unwrap();
}

#[test]
fn streamed_inputs_declare_the_drift_only_for_the_linear_activation_and_no_noise_root() {
    use smflow::config::parse::json;
    use smflow::experiment::width_sweep::config::{check, parse};
    let load = |act: &str, dynamics: &str| {
        let text = format!(
            r#"{{"experiment": "width_sweep",
            "model": {{"kind": "two_layer", "activation": "{act}", "d": 3,
                      "teacher": {{"neurons": 2, "a_scale": 2.0, "seed": 5}}}},
            "data": {{"kind": "stream", "label_noise": 0.1}}, "widths": [4, 8],
            "dynamics": {dynamics}, "etas": [0.1], "batch": 2, "horizon": 0.5, "paths": 4,
            "substeps": 2, "test_samples": 16, "seed": 3}}"#
        );
        parse(json(&text).unwrap(), Overrides::default()).and_then(|c| check(c, "t"))
    };
    let e = load("tanh", r#"["sgd", "gd"]"#).map(|_| ()).unwrap_err();
    assert_eq!(e.field, "dynamics", "{e}");
    for words in [
        "gd needs a finite data set",
        "model two_layer (tanh) on streamed inputs does not declare the full gradient",
        "linear activation",
    ] {
        assert!(e.message.contains(words), "{words}: {e}");
    }
    load("linear", r#"["sgd", "gd", "gf", "mgf"]"#).unwrap();
    let e = load("linear", r#"["gd", "smf1"]"#).map(|_| ()).unwrap_err();
    assert!(e.message.contains("smf1 needs a finite data set"), "{e}");
    assert!(
        e.message.contains("square root of the gradient noise"),
        "{e}"
    );
    assert!(!e.message.contains("full gradient"), "{e}");
    // A data set declares both.
    let caps =
        smflow::meanfield::model::capabilities(smflow::meanfield::model::Activation::Tanh, false);
    assert!(caps.full_gradient && caps.noise_root && !caps.exact_transition);
}
