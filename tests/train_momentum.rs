//! Heavy-ball momentum in the finite-data trainer (DESIGN §3b): msgd and msme1 on data
//! sets.
//! - Linear regression's gradient is affine in w and the minibatch (or the Brownian
//!   increments) enter linearly with mean zero, so E(w, p) of msgd follows the
//!   deterministic heavy ball on the full gradient exactly, and E(w, p) of msme1 (by
//!   symplectic Euler–Maruyama with dt = η/substeps) the deterministic symplectic
//!   Euler with step dt. Both are checked within 4.5 standard errors per coordinate
//!   against recursions written here, independently of the trainer, and the checks
//!   can fail (a wrong friction, explicit Euler).
//! - The noise: msme1's second moment matches msgd's to O(η) (weak order 1), and a
//!   noise scale off by √2 is rejected.
//! - Lanes against the scalar reference and GPU against CPU: tests/train_lanes.rs and
//!   tests/train_gpu.rs run every trainer dynamics, msgd and msme1 included.
//! - Configs: `momentum` required by msgd / msme1 and refused without them; gd_vs_gf
//!   refuses them by name.

mod common;
use smflow::data::sampling::Sampling;
use smflow::data::{generate, DataSet, GenerateConfig};
use smflow::experiment::training::config::{check, parse};
use smflow::train::cpu::CpuTrainer;
use smflow::train::net::Param;
use smflow::train::{Dynamics, TrainJob, Trainer};
use std::sync::Arc;

const N: usize = 40;
const D: usize = 6;
const GAMMA: f64 = 1.5;

fn data() -> Arc<DataSet> {
    Arc::new(generate(
        &GenerateConfig {
            n: N,
            d: D,
            sparsity: None,
            teacher_scale: 1.0,
            label_noise: 0.3,
            seed: None,
            labels: Default::default(),
        },
        11,
    ))
}

fn job(ds: &Arc<DataSet>, dynamics: Dynamics, eta: f64, steps: u32, substeps: u32) -> TrainJob {
    TrainJob {
        data: ds.clone(),
        param: Param::Linear,
        loss: Default::default(),
        dynamics,
        eta,
        friction: GAMMA,
        coarsen: 1,
        batch: 2,
        sampling: Sampling::Replacement,
        substeps,
        checkpoints: vec![0, steps / 2, steps],
        w0: vec![0.0; D],
        key: [5, 6],
        stream: dynamics.code() << 24,
        resample_labels: false,
        track_gain: false,
        bound: 1e6,
    }
}

/// Per coordinate at checkpoint c over replicas 0..m: mean, its standard error, and
/// tr Cov(w) (the mean of |w − w̄|²) with its standard error.
fn moments(j: &TrainJob, m: u64, c: usize) -> (Vec<f64>, Vec<f64>, f64, f64) {
    let mut rows = Vec::new();
    CpuTrainer::default()
        .train(j, 0..m, &mut |cc, _, r| {
            if cc == c {
                rows.extend(r.chunks(D).map(|w| w.to_vec()));
            }
        })
        .unwrap();
    let n = m as f64;
    let mean_se = |v: &[f64]| {
        let mu = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (n - 1.0);
        (mu, (var / n).sqrt())
    };
    let (mut mean, mut se) = (Vec::new(), Vec::new());
    for i in 0..D {
        let (mu, s) = mean_se(&rows.iter().map(|w| w[i]).collect::<Vec<_>>());
        mean.push(mu);
        se.push(s);
    }
    let sq: Vec<f64> = rows
        .iter()
        .map(|w| w.iter().zip(&mean).map(|(x, mu)| (x - mu).powi(2)).sum())
        .collect();
    let (var, se_var) = mean_se(&sq);
    (mean, se, var, se_var)
}

/// ∇L(w) = (1/N) Xᵀ(Xw − y).
fn full_gradient(ds: &DataSet, w: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; D];
    for i in 0..N {
        let x = &ds.x[i * D..(i + 1) * D];
        let r: f64 = x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - ds.y[i];
        for j in 0..D {
            g[j] += r * x[j] / N as f64;
        }
    }
    g
}

/// The deterministic heavy ball with step dt and friction γ, `steps` steps from
/// (0, 0): symplectic (v first, then w with the new v) or explicit (w with the old v).
fn heavy_ball(ds: &DataSet, gamma: f64, dt: f64, steps: u32, symplectic: bool) -> Vec<f64> {
    let (mut w, mut v) = (vec![0.0; D], vec![0.0; D]);
    for _ in 0..steps {
        let g = full_gradient(ds, &w);
        for j in 0..D {
            let old = v[j];
            v[j] -= (gamma * v[j] + g[j]) * dt;
            w[j] += if symplectic { v[j] } else { old } * dt;
        }
    }
    w
}

fn within(m: &[f64], se: &[f64], want: &[f64]) -> bool {
    (0..D).all(|i| (m[i] - want[i]).abs() <= 4.5 * se[i])
}

#[test]
fn msgd_mean_follows_the_heavy_ball_on_the_full_gradient() {
    let ds = data();
    let (eta, steps) = (0.1, 40);
    for c in 1..3 {
        let k = steps / 2 * c as u32;
        let (m, se, _, _) = moments(&job(&ds, Dynamics::Msgd, eta, steps, 1), 4000, c);
        let want = heavy_ball(&ds, GAMMA, eta, k, true);
        assert!(
            within(&m, &se, &want),
            "c {c}: msgd {m:?} ± {se:?} vs {want:?}"
        );
        // The test can fail: friction 1.0 instead of 1.5 is rejected.
        let off = heavy_ball(&ds, 1.0, eta, k, true);
        assert!(
            !within(&m, &se, &off),
            "c {c}: cannot tell γ = 1 from γ = 1.5"
        );
    }
}

#[test]
fn msme1_mean_follows_symplectic_euler_with_the_substep() {
    let ds = data();
    let (eta, steps, substeps) = (0.1, 40, 4);
    let (m, se, _, _) = moments(&job(&ds, Dynamics::Msme1, eta, steps, substeps), 4000, 2);
    let dt = eta / substeps as f64;
    let want = heavy_ball(&ds, GAMMA, dt, steps * substeps, true);
    assert!(within(&m, &se, &want), "msme1 {m:?} ± {se:?} vs {want:?}");
    let off = heavy_ball(&ds, 1.0, dt, steps * substeps, true);
    assert!(!within(&m, &se, &off), "cannot tell γ = 1 from γ = 1.5");
}

/// tr Cov(w) of msme1 (16 substeps) against msgd's at T = 2: their gap is O(η) (weak
/// order 1), checked as ≤ 4.5 standard errors of the difference plus its O(η) bias,
/// bounded by the gap at 2η (the bias halves with η). A noise scale off by √2 (twice
/// or half the covariance) moves tr Cov by its own size, more than that tolerance.
#[test]
fn msme1_covariance_matches_msgd_to_order_eta() {
    let ds = data();
    let m = 20_000;
    let gap = |eta: f64| {
        let steps = (2.0 / eta).round() as u32;
        let (_, _, a, sa) = moments(&job(&ds, Dynamics::Msgd, eta, steps, 1), m, 2);
        let (_, _, b, sb) = moments(&job(&ds, Dynamics::Msme1, eta, steps, 16), m, 2);
        eprintln!("η {eta}: tr Cov msgd {a} ± {sa}, msme1 {b} ± {sb}");
        (b - a, (sa * sa + sb * sb).sqrt(), a)
    };
    let (g_fine, se_fine, var) = gap(0.025);
    let (g_coarse, se_coarse, _) = gap(0.05);
    let allowed = 4.5 * se_fine + g_coarse.abs() + 4.5 * se_coarse;
    assert!(
        g_fine.abs() <= allowed,
        "tr Cov: msme1 − msgd = {g_fine} ± {se_fine} at η = 0.025, {g_coarse} ± {se_coarse} \
         at η = 0.05"
    );
    assert!(
        var / 2.0 > allowed,
        "a √2 noise scale (tr Cov ×2 or ×½, a change of ≥ {}) must exceed the tolerance \
         ({allowed}) for the check to see it",
        var / 2.0
    );
}

fn config(extra: &str) -> String {
    format!(
        r#"{{"data":{{"source":"generate","n":20,"d":30,"sparsity":3}},
            "model":{{"param":"uv","alpha":0.1}},"etas":[0.05],"horizon":1,"paths":4{extra}}}"#
    )
}

fn reject(json: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let e = parse(v, Default::default())
        .and_then(|c| check(c, "t"))
        .expect_err("config must be refused");
    (e.field, e.message)
}

#[test]
fn momentum_configs_name_the_field() {
    let ib = r#","experiment":"implicit_bias_sweep""#;
    let cases = [
        (
            format!(r#"{ib},"dynamics":["msgd"]"#),
            "momentum",
            "friction",
        ),
        (
            format!(r#"{ib},"dynamics":["sgd"],"momentum":{{"friction":1.0}}"#),
            "momentum",
            "only msgd and msme1",
        ),
        (
            format!(r#"{ib},"dynamics":["msme1"],"momentum":{{"friction":-1}}"#),
            "momentum.friction",
            "> 0",
        ),
        (
            r#","experiment":"gd_vs_gf","dynamics":["gd","msgd"],"momentum":{"friction":1.0}"#
                .to_string(),
            "dynamics[1]",
            "gd_vs_gf runs gd, gf and mgf",
        ),
    ];
    for (extra, field, words) in cases {
        let (f, m) = reject(&config(&extra));
        assert_eq!(f, field, "{extra}: {m}");
        assert!(m.contains(words), "{extra}: {f}: {m}");
    }
    // Accepted: the friction reaches every heavy-ball job.
    let v: serde_json::Value = serde_json::from_str(&config(
        r#","experiment":"implicit_bias_sweep","dynamics":["sgd","msgd","msme1"],"momentum":{"friction":2.5}"#,
    ))
    .unwrap();
    let s = check(parse(v, Default::default()).unwrap(), "t").unwrap();
    assert_eq!(s.friction, 2.5);
    let j = smflow::experiment::training::job(&s, 0, Dynamics::Msgd, 0.05, 0);
    assert_eq!(j.friction, 2.5);
}

/// configs/implicit_bias_momentum.json (the README's table): msme1's ‖β∞ − β*‖
/// equals msgd's within 4 standard errors of their difference at every η (the SME
/// carries the heavy ball's implicit bias), and at η = 0.2 fewer msgd replicas diverge
/// than SGD's.
#[test]
fn shipped_momentum_sweep_msme1_tracks_msgd() {
    let text = std::fs::read_to_string("configs/implicit_bias_momentum.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = check(parse(v, Default::default()).unwrap(), "t").unwrap();
    let out = smflow::experiment::training::execute(&s, &CpuTrainer::default(), &|_| {}).unwrap();
    let sweep = out.results["sweep"].as_array().unwrap();
    let get = |d: &str, eta: f64| {
        let e = sweep
            .iter()
            .find(|e| e["dynamics"] == d && e["eta"].as_f64() == Some(eta))
            .unwrap_or_else(|| panic!("{d} at {eta}"));
        let m = &e["metrics"]["dist_teacher"];
        (
            m["mean"].as_f64().unwrap(),
            m["stderr"].as_f64().unwrap(),
            e["diverged"].as_u64().unwrap(),
        )
    };
    for eta in [0.05, 0.1, 0.2] {
        let (a, sa, _) = get("msgd", eta);
        let (b, sb, _) = get("msme1", eta);
        let se = (sa * sa + sb * sb).sqrt();
        assert!(
            (a - b).abs() <= 4.0 * se,
            "η {eta}: msgd {a} ± {sa}, msme1 {b} ± {sb}"
        );
    }
    let (_, _, dm) = get("msgd", 0.2);
    let (_, _, ds) = get("sgd", 0.2);
    assert!(dm < ds, "η = 0.2: msgd {dm} diverged, sgd {ds}");
}
