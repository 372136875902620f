//! Heavy-ball momentum in mean-field (DESIGN §3b on the two-layer network, §5): msgd and
//! msme1 on a replica's n neurons, each with its own momentum.
//!
//! - Each step is the heavy ball on the mean-field force, written here independently
//!   of `cpu::Net` (the weights, the momentum and the position update; the force through
//!   `drift_reference`, which `meanfield_cpu.rs` holds to the lane kernels).
//! - msgd with γ = 1/η is sgd with step η² on the same draws (DESIGN §3b's PyTorch
//!   identity: momentum 1 − γη = 0, learning rate η²).
//! - msme1 is msgd's SME: the means of the observables, and the spread the noise adds
//!   to them, agree within their standard errors plus the O(η) weak error, and a noise
//!   off by √2 is outside that.
//! - The config: `momentum` is required by msgd / msme1 and refused without them;
//!   msme1 needs a data set.
//!
//! The GPU paths of msgd / msme1 are held to these CPU ones in `meanfield_gpu.rs`.

mod common;
use smflow::backend::rows::RowEngine;
use smflow::meanfield::cpu::{CpuMeanField, Net};
use smflow::meanfield::drift::{drift_reference, DriftScratch};
use smflow::meanfield::model::{
    gaussian_set, Activation, Init, Teacher, TestFn, TAG_FEATURES, TAG_TEST,
};
use smflow::meanfield::{fill_batch, stream_code, Batch, Dynamics, MfJob};
use smflow::rng::fill_normals;
use std::sync::Arc;

const GAMMA: f64 = 1.5;

/// tanh network, d = 3, on a data set of 12 samples, batch 2.
fn set_job(dynamics: Dynamics, width: usize, eta: f64, steps: u32) -> MfJob {
    let (d, act) = (3, Activation::Tanh);
    let teacher = Arc::new(Teacher::generate(2, d, 2.0, 4));
    MfJob {
        act,
        d,
        width,
        init: Init {
            a_mean: 0.3,
            a_std: 0.8,
            w_std: 0.7,
        },
        teacher: teacher.clone(),
        streaming: None,
        set: Some(Arc::new(gaussian_set(
            &teacher,
            act,
            12,
            0.1,
            8,
            TAG_FEATURES,
        ))),
        test: Arc::new(gaussian_set(&teacher, act, 32, 0.0, 3, TAG_TEST)),
        phi: TestFn::TanhAW1,
        dynamics,
        eta,
        batch: 2,
        sampling: Default::default(),
        friction: GAMMA,
        substeps: 4,
        coarsen: 1,
        checkpoints: vec![steps],
        key: [7, 8],
        stream: stream_code(dynamics) << 24,
        bound: 1e6,
        keep_states: true,
    }
}

/// max |a − b| / (1 + |b|).
fn deviation(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f64::max)
}

#[test]
fn each_step_is_the_heavy_ball_on_the_mean_field_force() {
    for dy in [Dynamics::Msgd, Dynamics::Msme1] {
        let job = set_job(dy, 9, 0.1, 5);
        let (act, d, r) = (job.act, job.d, 2u32);
        let set = job.set.clone().unwrap();
        let (nset, b) = (set.n as f64, job.batch as f64);
        let sub = if dy == Dynamics::Msme1 {
            job.substeps
        } else {
            1
        };
        let dt = job.eta / sub as f64;
        let mut net = Net::new(&job, r as u64);
        let mut z = net.z.clone();
        let mut p = vec![0.0; z.len()];
        let (mut batch, mut scratch, mut w) =
            (Batch::default(), Vec::new(), DriftScratch::default());
        let mut force = vec![0.0; z.len()];
        let mut xi = vec![0.0; set.n];
        for k in 0..5 {
            net.step(k);
            for s in 0..sub {
                if dy == Dynamics::Msgd {
                    // sgd's samples; the force is their mean gradient, weights 1/b.
                    fill_batch(&job, r, k, s, &mut batch, &mut scratch);
                    batch.c.iter_mut().for_each(|c| *c = 1.0 / b);
                } else {
                    // The whole set, smf1's noise as a rate: 1/N + sqrt(η/(bN dt))(ξ − ξ̄).
                    fill_normals(job.key, r, job.stream, k * sub + s, 1, set.n, &mut xi);
                    let mean = xi.iter().sum::<f64>() / nset;
                    let scale = (job.eta / (b * nset * dt)).sqrt();
                    batch.x = set.x.clone();
                    batch.y = set.y.clone();
                    batch.c = xi.iter().map(|v| 1.0 / nset + scale * (v - mean)).collect();
                }
                drift_reference(act, &z, d, &batch, &mut w, &mut force);
                for i in 0..z.len() {
                    // force = −g: p ← p − (γ p + g) dt, z ← z + p dt.
                    p[i] -= (GAMMA * p[i] - force[i]) * dt;
                    z[i] += p[i] * dt;
                }
            }
            let dev = deviation(&net.z, &z);
            assert!(dev < 1e-12, "{dy} step {k}: deviation {dev:e}");
        }
        let moved = deviation(&z, &Net::new(&job, r as u64).z);
        assert!(moved > 1e-2, "{dy}: the neurons barely moved ({moved:e})");
    }
}

/// Neurons of replicas `reps` at the last checkpoint, replica-major.
fn states(job: &MfJob, reps: std::ops::Range<u64>) -> Vec<f64> {
    let mut out = Vec::new();
    CpuMeanField::default()
        .run(job, reps, &mut |blk| out.extend_from_slice(blk.states))
        .unwrap();
    out
}

#[test]
fn msgd_with_friction_one_over_eta_is_sgd_with_step_eta_squared() {
    let eta = 0.3;
    let mut heavy = set_job(Dynamics::Msgd, 11, eta, 8);
    heavy.friction = 1.0 / eta;
    let mut sgd = set_job(Dynamics::Sgd, 11, eta * eta, 8);
    sgd.stream = heavy.stream; // the same minibatches
    let (a, b) = (states(&heavy, 0..4), states(&sgd, 0..4));
    let dev = deviation(&a, &b);
    assert!(dev < 1e-12, "msgd(γ = 1/η) vs sgd(η²): deviation {dev:e}");
    // The identity needs γ = 1/η exactly: any other friction keeps a momentum.
    heavy.friction = 0.9 / eta;
    let off = deviation(&states(&heavy, 0..4), &b);
    assert!(off > 1e-3, "γ = 0.9/η also matched sgd ({off:e})");
}

/// Observables (risk, ⟨a²⟩, ⟨|w|²⟩, ⟨φ⟩) of replicas 0..m at the last checkpoint.
fn observables(job: &MfJob, m: u64) -> Vec<[f64; 4]> {
    let mut out = vec![[0.0; 4]; m as usize];
    let mut job = job.clone();
    job.keep_states = false;
    CpuMeanField::default()
        .run(&job, 0..m, &mut |blk| {
            for (i, o) in blk.rows.chunks(4).enumerate() {
                out[blk.first as usize + i].copy_from_slice(o);
            }
        })
        .unwrap();
    out
}

/// Mean and its standard error, variance and its standard error, of `v`.
fn mean_var(v: &[f64]) -> (f64, f64, f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let c2 = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    let c4 = v.iter().map(|x| (x - m).powi(4)).sum::<f64>() / n;
    (m, (c2 / n).sqrt(), c2, ((c4 - c2 * c2) / n).sqrt())
}

/// Per observable, the mean and the variance (each with its standard error) of what the
/// noise does: D_r = Φ(job, r) − Φ(flow, r), with `flow` the job as msme1 with 16
/// substeps and a batch of 2^30 (its noise 2^-15 of b = 2's: the heavy-ball flow), on
/// replica r's initial neurons. Without the flow, the spread of the initial neurons (30×
/// the noise's at n = 8) would hide the noise.
fn noise_effects(job: &MfJob, m: u64) -> Vec<(f64, f64, f64, f64)> {
    let mut flow = job.clone();
    flow.dynamics = Dynamics::Msme1;
    flow.stream = stream_code(Dynamics::Msme1) << 24;
    flow.batch = 1 << 30;
    let (of, oj) = (observables(&flow, m), observables(job, m));
    (0..4)
        .map(|o| {
            let d: Vec<f64> = oj.iter().zip(&of).map(|(a, b)| a[o] - b[o]).collect();
            mean_var(&d)
        })
        .collect()
}

#[test]
fn msme1_follows_msgd_in_law_to_first_order() {
    const NAMES: [&str; 4] = ["risk", "a2", "w2", "phi"];
    let m = 8000;
    let job = |dy: Dynamics, eta: f64, batch: u32| {
        let mut j = set_job(dy, 8, eta, (1.0 / eta).round() as u32);
        j.substeps = 16;
        j.batch = batch;
        j.keep_states = false;
        j
    };
    // |a − b| and its standard error, for the means (k = 0) or variances (k = 2).
    let gap = |a: &(f64, f64, f64, f64), b: &(f64, f64, f64, f64), k: usize| {
        let (x, y) = ([a.0, a.1, a.2, a.3], [b.0, b.1, b.2, b.3]);
        ((x[k] - y[k]).abs(), x[k + 1].hypot(y[k + 1]))
    };
    let coarse = (
        noise_effects(&job(Dynamics::Msgd, 0.1, 2), m),
        noise_effects(&job(Dynamics::Msme1, 0.1, 2), m),
    );
    let sgd = noise_effects(&job(Dynamics::Msgd, 0.05, 2), m);
    let sme = noise_effects(&job(Dynamics::Msme1, 0.05, 2), m);
    // msme1 with b = 1: the noise's covariance doubled (its amplitude off by √2).
    let loud = noise_effects(&job(Dynamics::Msme1, 0.05, 1), m);
    for o in 0..4 {
        for (k, what) in [(0, "mean"), (2, "variance")] {
            let (g, se) = gap(&sgd[o], &sme[o], k);
            let (g2, _) = gap(&coarse.0[o], &coarse.1[o], k);
            // Weak order 1: the gap at η is about half the gap at 2η.
            let tol = 4.5 * se + g2;
            eprintln!(
                "{} {what} of the noise's effect: msgd {:.4e} msme1 {:.4e} (gap {g:.2e} ± {se:.1e}; \
                 at 2η {g2:.2e}); msme1 with b = 1 {:.4e}",
                NAMES[o],
                [sgd[o].0, 0.0, sgd[o].2][k],
                [sme[o].0, 0.0, sme[o].2][k],
                [loud[o].0, 0.0, loud[o].2][k]
            );
            assert!(
                g <= tol,
                "{} {what}: msgd and msme1 differ by {g:e} > {tol:e}",
                NAMES[o]
            );
            if k == 2 && (o == 0 || o == 3) {
                // The test sees the noise's amplitude: √2 too loud is outside.
                let (off, _) = gap(&sgd[o], &loud[o], 2);
                assert!(
                    off > tol,
                    "{}: a noise √2 too loud moves the variance by {off:e} ≤ {tol:e}",
                    NAMES[o]
                );
            }
        }
    }
}

/// A small width_sweep config with `dynamics` and `extra` fields.
fn sweep_config(dynamics: &str, data: &str, extra: &str) -> String {
    format!(
        r#"{{"experiment": "width_sweep",
        "model": {{"kind": "two_layer", "activation": "tanh", "d": 3,
                  "teacher": {{"neurons": 2, "a_scale": 2.0, "seed": 5}}}},
        "data": {data}, "widths": [4, 8], "dynamics": {dynamics}, "etas": [0.1],
        "batch": 2, "horizon": 0.5, "paths": 6, "substeps": 2, "test_samples": 16,
        "seed": 3 {extra}}}"#
    )
}

const SET: &str = r#"{"kind": "set", "n": 16, "label_noise": 0.1}"#;
const STREAM: &str = r#"{"kind": "stream", "label_noise": 0.1}"#;

fn refused(text: &str) -> (String, String) {
    use smflow::config::parse::{json, Overrides};
    use smflow::experiment::width_sweep::config::{check, parse};
    let e = parse(json(text).unwrap(), Overrides::default())
        .and_then(|c| check(c, "t"))
        .expect_err("config must be refused");
    (e.field, e.message)
}

#[test]
fn width_sweep_configs_name_the_momentum_field() {
    let cases = [
        (r#"["sgd", "msgd"]"#, SET, "", "momentum", "friction"),
        (
            r#"["sgd"]"#,
            SET,
            r#", "momentum": {"friction": 1.0}"#,
            "momentum",
            "only msgd and msme1",
        ),
        (
            r#"["msme1"]"#,
            SET,
            r#", "momentum": {"friction": 0}"#,
            "momentum.friction",
            "> 0",
        ),
        (
            r#"["msgd", "msme1"]"#,
            STREAM,
            r#", "momentum": {"friction": 1.0}"#,
            "dynamics",
            "msme1 needs a finite data set",
        ),
    ];
    for (dynamics, data, extra, field, words) in cases {
        let (f, m) = refused(&sweep_config(dynamics, data, extra));
        assert_eq!(f, field, "{dynamics} {extra}: {m}");
        assert!(m.contains(words), "{dynamics} {extra}: {f}: {m}");
    }
}

#[test]
fn a_width_sweep_runs_msgd_streaming_and_pairs_msme1_with_msgd() {
    use smflow::experiment::width_sweep::{config::check, job};
    let text = sweep_config(
        r#"["msgd", "msme1"]"#,
        SET,
        r#", "momentum": {"friction": 2.5}"#,
    );
    let cfg = serde_json::from_str(&text).unwrap();
    let s = check(cfg, "t").unwrap();
    for (i, d) in s.dynamics.iter().enumerate() {
        assert_eq!(job(&s, *d, 0, 4).friction, 2.5, "{d} (dynamics[{i}])");
    }
    // msgd streams its samples as sgd does (msme1 cannot: checked above).
    let stream = sweep_config(r#"["msgd"]"#, STREAM, r#", "momentum": {"friction": 2.5}"#);
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in [("set", &text), ("stream", &stream)] {
        let out = common::run_cpu(tmp.path(), name, text);
        let cells = std::fs::read_to_string(out.join("width_sweep.csv")).unwrap();
        assert!(
            cells.lines().any(|l| l.starts_with("msgd,0.1,8,0.5,risk,")),
            "{name}: {cells}"
        );
        if name == "set" {
            let pairs = std::fs::read_to_string(out.join("pairs.csv")).unwrap();
            let row = pairs
                .lines()
                .find(|l| l.starts_with("msgd,msme1,0.1,8,0.5,risk,"))
                .unwrap_or_else(|| panic!("no msgd − msme1 pair: {pairs}"));
            let diff: f64 = row.split(',').nth(6).unwrap().parse().unwrap();
            assert!(diff.is_finite() && diff != 0.0, "{row}");
        }
    }
}
