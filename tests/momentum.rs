//! Heavy-ball momentum (DESIGN §3b): msgd and its SME msme1.
//! - On the quadratic model both are linear Gaussian (msgd a recursion, msme1 an OU
//!   pair): Monte Carlo moments on every backend against the closed forms (4 standard
//!   errors plus the solver's 95% bound), and the closed forms against the stationary
//!   law of the OU pair (Lyapunov equation).
//! - msme1 is weak order 1 against msgd (the coupled estimator, as sme1 with sgd), and
//!   its weak errors equal the closed forms' differences.
//! - GPU (llvmpipe in CI) paths equal the CPU's path by path, coupled runs included.
//! - Bad configs name the field.

mod common;
use common::{assert_matches_exact, backends, checked, report};
use smflow::experiment::config::parse;
use smflow::experiment::plan;
use smflow::model::Quadratic;

fn quadratic_1d(extra: &str) -> String {
    format!(
        r#"{{"experiment":"weak_order","model":{{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]}},
            "x0":[1.0],"momentum":{{"friction":2.0}},"horizon":2.0,"seed":21{extra}}}"#
    )
}

#[test]
fn quadratic_1d_momentum_moments() {
    assert_matches_exact(
        &quadratic_1d(
            r#","dynamics":["msgd","msme1"],"batch":2,"etas":[0.2,0.05],"checkpoints":[0.4],
               "observables":["norm2","cos","x0","loss"],"paths":100000,
               "sde":{"substeps":8,"extrapolate":true}"#,
        ),
        2 * 2 * 2 * 4,
    );
}

#[test]
fn quadratic_2d_momentum_moments() {
    assert_matches_exact(
        r#"{"experiment":"weak_order","model":{"kind":"quadratic","a":[[1.5,0.4],[0.4,0.8]],"mean":[0.3,-0.2],"cov":[[0.64,0.2],[0.2,0.5]]},
            "x0":[1.0,0.5],"dynamics":["msgd","msme1"],"momentum":{"friction":0.7},"batch":3,"etas":[0.1],
            "horizon":1.5,"observables":["norm2","cos","loss"],"paths":100000,
            "sde":{"substeps":8,"extrapolate":true},"seed":22}"#,
        2 * 3,
    );
}

/// msme1's exact solver (the OU pair's transition over each step, on (X, P)): the
/// moments are the closed forms' at every checkpoint, with no solver error, on every
/// backend; two particles with independent noise each.
#[test]
fn quadratic_2d_momentum_exact_solver_moments() {
    assert_matches_exact(
        r#"{"experiment":"weak_order","model":{"kind":"quadratic","a":[[1.5,0.4],[0.4,0.8]],"mean":[0.3,-0.2],"cov":[[0.64,0.2],[0.2,0.5]]},
            "x0":[1.0,0.5],"dynamics":["msgd","msme1"],"momentum":{"friction":0.7},"batch":3,"etas":[0.1,0.25],
            "horizon":1.5,"checkpoints":[0.5],"observables":["norm2","cos","loss"],"paths":100000,
            "sde":{"solver":"exact"},"seed":23}"#,
        2 * 2 * 2 * 3,
    );
}

/// The closed forms are checked against an independent fact: for large t the OU pair
/// reaches its stationary law, whose covariance solves B C + C Bᵀ + Q = 0; in 1-D
/// (R = ½a(x − m)², Σ = a²s², q = (η/b)Σ) that is Var x = q/(2γa), Var p = q/(2γ).
/// And msgd with small η follows msme1 (weak order 1: the gap halves with η).
#[test]
fn closed_forms_meet_the_stationary_law_and_each_other() {
    let (a, s2, gamma, eta, b) = (1.5, 0.64, 2.0, 0.05, 2usize);
    let q = Quadratic::new(
        nalgebra::DMatrix::from_element(1, 1, a),
        nalgebra::DVector::from_element(1, 0.3),
        nalgebra::DMatrix::from_element(1, 1, s2),
    );
    let steps = (60.0 / eta) as u32;
    let (mu, cov) = q.momentum_moments(&[1.0], eta, gamma, b, steps, true);
    let noise = eta / b as f64 * a * a * s2;
    let want = noise / (2.0 * gamma * a);
    assert!((mu[0] - 0.3).abs() < 1e-12, "stationary mean {}", mu[0]);
    assert!(
        (cov[(0, 0)] - want).abs() < 1e-10 * want.max(1.0),
        "stationary Var x {} vs {want}",
        cov[(0, 0)]
    );
    let gap = |eta: f64| {
        let k = (1.0 / eta) as u32;
        let sde = q.momentum_moments(&[1.0], eta, gamma, b, k, true);
        let sgd = q.momentum_moments(&[1.0], eta, gamma, b, k, false);
        (sde.0[0] - sgd.0[0]).abs() + (sde.1[(0, 0)] - sgd.1[(0, 0)]).abs()
    };
    let ratio = gap(0.01) / gap(0.005);
    assert!(
        (1.8..2.2).contains(&ratio),
        "weak order of the closed forms: ratio {ratio}"
    );
}

/// msme1 against msgd with the coupled estimator: order 1 (CI covering 1), and every
/// weak error within 4 standard errors of the closed forms' difference.
#[test]
fn msme1_is_weak_order_one_against_msgd() {
    let ck = checked(&quadratic_1d(
        r#","dynamics":["msgd","msme1"],"batch":1,"etas":[0.1,0.05,0.025,0.0125],
           "observables":["norm2","x0"],"paths":40000,"sde":{"substeps":16,"extrapolate":true}"#,
    ));
    let r = report(&ck, &smflow::backend::cpu::CpuBackend::default());
    assert_eq!(r.weak_errors.len(), 8);
    for e in &r.weak_errors {
        assert_eq!(e.estimator, "coupled");
        let exact = |d: &str| {
            r.points
                .iter()
                .find(|p| p.dynamics == d && p.eta == e.eta && p.observable == e.observable)
                .and_then(|p| p.exact)
                .unwrap()
        };
        let want = exact("msme1") - exact("msgd");
        assert!(
            (e.signed - want).abs() <= 4.0 * e.stderr + 1e-6,
            "η={} {}: coupled error {} vs closed form {want} (se {})",
            e.eta,
            e.observable,
            e.signed,
            e.stderr
        );
    }
    // The fitted slope over η = 0.1 … 0.0125 is pre-asymptotic by a few percent (the
    // closed forms' own slope there is 0.97 for x0), so the test asks for a resolved
    // order near 1, not a CI that covers 1 exactly.
    assert_eq!(r.orders.len(), 2);
    for o in &r.orders {
        assert!(
            (o.order - 1.0).abs() <= 0.1 && o.ci95[1] - o.ci95[0] < 0.2 && o.n_points == 4,
            "{}: order {} CI {:?}",
            o.observable,
            o.order,
            o.ci95
        );
    }
}

/// GPU paths equal the CPU's to f32 rounding: msgd and msme1, one and two particles,
/// coupled (msme1 pinned to msgd) and not, msme1's exact solver, on the quadratic and
/// multiplicative models.
#[test]
fn gpu_momentum_paths_match_the_cpu() {
    let all = backends();
    let Some(gpu) = all.iter().find(|b| b.name() == "gpu") else {
        return;
    };
    let cpu = &all[0];
    let configs = [
        quadratic_1d(
            r#","dynamics":["msgd","msme1"],"batch":2,"etas":[0.1],"observables":["norm2"],"paths":256"#,
        ),
        r#"{"experiment":"n_point","model":{"kind":"quadratic","a":[[1.5,0.4],[0.4,0.8]],"mean":[0.3,-0.2],"cov":[[0.64,0.2],[0.2,0.5]]},
            "particles":[[1.0,0.5],[0.2,-0.4]],"dynamics":["msgd","msme1"],"momentum":{"friction":1.0},
            "batch":2,"etas":[0.1],"horizon":1.0,"paths":256,"sde":{"substeps":4,"extrapolate":false}}"#
            .to_string(),
        // msme1's exact transition of the pair (X, P), two particles.
        r#"{"experiment":"n_point","model":{"kind":"quadratic","a":[[1.5,0.4],[0.4,0.8]],"mean":[0.3,-0.2],"cov":[[0.64,0.2],[0.2,0.5]]},
            "particles":[[1.0,0.5],[0.2,-0.4]],"dynamics":["msme1"],"momentum":{"friction":1.0},
            "batch":2,"etas":[0.1],"horizon":1.0,"paths":256,"sde":{"solver":"exact"}}"#
            .to_string(),
        r#"{"experiment":"weak_order","model":{"kind":"multiplicative","mean":2.0,"std":1.5},
            "x0":[1.0],"dynamics":["msgd","msme1"],"momentum":{"friction":1.0},"batch":2,"etas":[0.1],
            "horizon":1.0,"observables":["x0"],"paths":256}"#
            .to_string(),
    ];
    let mut coupled = 0;
    for json in &configs {
        let ck = checked(json);
        for run in &plan(&ck).runs {
            coupled += usize::from(run.spec.coupling.is_some());
            let c = cpu.final_states(&ck.model, &run.spec, 0..256).unwrap();
            let g = gpu.final_states(&ck.model, &run.spec, 0..256).unwrap();
            assert_eq!(c.len(), g.len());
            let dev = c
                .iter()
                .zip(&g)
                .map(|(x, y)| (x - y).abs() / (1.0 + x.abs()))
                .fold(0.0, f64::max);
            assert!(dev < 1e-4, "{}: path deviation {dev}", run.spec.dynamics);
            assert!(
                c.iter().any(|v| (v - c[0]).abs() > 1e-3),
                "{}: paths identical",
                run.spec.dynamics
            );
        }
    }
    assert_eq!(coupled, 2, "the weak_order configs' msme1 runs are coupled");
}

fn reject(json: &str) -> (String, String) {
    let e = parse(json, "t").expect_err("config must be refused");
    (e.field, e.message)
}

#[test]
fn bad_momentum_configs_name_the_field() {
    let base = r#"{"experiment":"weak_order","model":{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]},
        "x0":[1.0],"etas":[0.1],"horizon":1.0,"observables":["norm2"],"paths":10"#;
    let cases = [
        (r#","dynamics":["msgd"]}"#, "momentum", "friction"),
        (
            r#","dynamics":["sgd"],"momentum":{"friction":1.0}}"#,
            "momentum",
            "only msgd and msme1",
        ),
        (
            r#","dynamics":["msgd"],"momentum":{"friction":0.0}}"#,
            "momentum.friction",
            "> 0",
        ),
        (
            r#","dynamics":["msgd"],"momentum":{"friction":1.0,"mass":2}}"#,
            "momentum.mass",
            "unknown field",
        ),
        (r#","dynamics":["mgd"]}"#, "dynamics[0]", "msme1"),
    ];
    for (extra, field, words) in cases {
        let (f, m) = reject(&format!("{base}{extra}"));
        assert_eq!(f, field, "{extra}: {m}");
        assert!(m.contains(words), "{extra}: {f}: {m}");
    }
    // msme1's exact solver: the quadratic model's OU pair, and no transition of the
    // pair for geometric Brownian motion.
    let exact =
        r#","dynamics":["sme1","msme1"],"momentum":{"friction":1.0},"sde":{"solver":"exact"}}"#;
    parse(&format!("{base}{exact}"), "t").expect("quadratic: msme1 exact");
    let gbm = base.replace(
        r#""kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]"#,
        r#""kind":"multiplicative","mean":1.0,"std":0.5"#,
    );
    let (f, m) = reject(&format!("{gbm}{exact}"));
    assert_eq!(f, "sde.solver", "{m}");
    assert!(
        m.contains("multiplicative") && m.contains("heavy-ball") && m.contains("which msme1 needs"),
        "{m}"
    );
    // The invariant experiment's predicted densities are for first-order dynamics.
    let (f, m) = reject(
        r#"{"experiment":"invariant","model":{"kind":"toy_sgd","loss":"double_well","c0":0.25,"sigma":2.0},
            "x0":[1.0],"dynamics":["msgd"],"momentum":{"friction":1.0},"etas":[0.1],"horizon":1.0,"paths":10,
            "invariant":{"bins":10,"range":[-2,2]}}"#,
    );
    assert_eq!(f, "dynamics[0]", "{m}");
    assert!(m.contains("momentum"), "{m}");
}

/// A heavy-ball job built in code without a friction γ > 0 is an error, not msgd with
/// γ = 0 (its configs refuse that as `momentum.friction`). (The trainer's msgd / msme1
/// themselves: tests/train_momentum.rs.)
#[test]
fn the_trainer_refuses_momentum_jobs_without_friction() {
    use smflow::data::Labels;
    use smflow::train::{cpu::CpuTrainer, loss::Loss, net::Param, Dynamics, Trainer};
    let ds = common::train::generated(8, 2, Labels::Linear);
    for d in [Dynamics::Msgd, Dynamics::Msme1] {
        for friction in [0.0, -1.0, f64::NAN] {
            let mut j = common::train::job(&ds, Param::Linear, d, Loss::Squared);
            j.friction = friction;
            let e = CpuTrainer::default()
                .train(&j, 0..2, &mut |_, _, _| {})
                .unwrap_err();
            assert!(
                e.to_string().contains(d.name()) && e.to_string().contains("friction"),
                "{e}"
            );
        }
        // With γ > 0 it runs.
        let j = common::train::job(&ds, Param::Linear, d, Loss::Squared);
        CpuTrainer::default()
            .train(&j, 0..2, &mut |_, _, _| {})
            .unwrap();
    }
}
