//! The trainer's loss is pluggable (`train::loss`): logistic regression (cross-entropy
//! on 0/1 labels) runs through the same dynamics, lanes and GPU kernels as least
//! squares. Checked here: the gradient of one GD step against finite differences of
//! the loss; the order-2 modified flow's Hessian term through the orders of
//! `gd_vs_gf` (GD–GF order 1, GD–MGF order 2: a wrong ℓ'' leaves GD–MGF at order 1);
//! lanes against the scalar reference bit for bit; the GPU against the CPU path by
//! path; and the config errors that name the field.

mod common;

use smflow::backend::Precision;
use smflow::data::{generate, DataSet, GenerateConfig, Labels};
use smflow::experiment::training::config::{check, TrainConfig};
use smflow::train::cpu::replica_rows;
use smflow::train::gpu::GpuTrainer;
use smflow::train::loss::{self, Loss};
use smflow::train::net::Param;
use smflow::train::{Dynamics, TrainJob, Trainer};
use std::sync::Arc;

fn data(n: usize, d: usize) -> Arc<DataSet> {
    Arc::new(generate(
        &GenerateConfig {
            n,
            d,
            sparsity: None,
            teacher_scale: 1.5,
            label_noise: 0.0,
            seed: None,
            labels: Labels::Logistic,
        },
        5,
    ))
}

fn job(data: &Arc<DataSet>, param: Param, dynamics: Dynamics) -> TrainJob {
    common::train::job(data, param, dynamics, Loss::Logistic)
}

/// One GD step of the reference is w − η ∇L(w), ∇L by central differences of the mean
/// cross-entropy `loss::mean` (h = 1e-6: truncation ~h²·L''' and rounding ~1e-16/h,
/// both below 1e-8).
#[test]
fn a_gd_step_follows_the_gradient_of_the_cross_entropy() {
    let ds = data(50, 4);
    let mut j = job(&ds, Param::Linear, Dynamics::Gd);
    j.checkpoints = vec![0, 1];
    let rows = replica_rows(&j, 0);
    let (w0, w1) = (&rows[..4], &rows[4..8]);
    let h = 1e-6;
    for c in 0..4 {
        let mut up = w0.to_vec();
        let mut down = w0.to_vec();
        up[c] += h;
        down[c] -= h;
        let grad = (loss::mean(Loss::Logistic, &ds, &up) - loss::mean(Loss::Logistic, &ds, &down))
            / (2.0 * h);
        let step = (w0[c] - w1[c]) / j.eta;
        assert!(
            (step - grad).abs() < 1e-8,
            "coordinate {c}: step {step} vs ∇L {grad}"
        );
    }
}

/// Seed 000's orders hold for the cross-entropy too: configs/gd_vs_gf_logistic.json.
#[test]
fn gd_vs_gf_orders_hold_for_the_cross_entropy() {
    let (gf, mgf) = common::train::gd_vs_gf_orders("configs/gd_vs_gf_logistic.json");
    assert!((0.85..1.15).contains(&gf), "GD–GF order {gf}");
    assert!((1.8..2.2).contains(&mgf), "GD–MGF order {mgf}");
}

/// Lane groups carry the scalar reference's bits under the logistic loss, for every
/// parametrisation and every dynamics it runs (full groups and a partial one).
#[test]
fn logistic_lanes_are_bit_identical_to_the_scalar_reference() {
    let ds = data(13, 5);
    for param in [Param::Linear, Param::Uv, Param::PlusMinus] {
        for d in smflow::train::SUPPORTED {
            if d == Dynamics::Sgf {
                continue;
            }
            common::train::assert_lanes_match_reference(&job(&ds, param, d));
        }
    }
}

/// The GPU kernels (shaders/train/loss.wgsl) follow the CPU path by path: within
/// 1e-4 relative in f32 (the tolerance of tests/train_gpu.rs), 1e-6 in f64 (σ's exp
/// is evaluated in f32 there).
#[test]
fn gpu_logistic_paths_match_the_cpu() {
    let ds = data(24, 5);
    for (p, tol) in [(Precision::F32, 1e-4), (Precision::F64, 1e-6)] {
        let g = match GpuTrainer::new(p) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("skipping {p:?}: no adapter ({e})");
                continue;
            }
        };
        for (param, d) in [
            (Param::Linear, Dynamics::Gd),
            (Param::Uv, Dynamics::Sgd),
            (Param::PlusMinus, Dynamics::Mgf),
            (Param::Uv, Dynamics::Smf2),
        ] {
            let j = job(&ds, param, d);
            let len = j.row_len();
            let mut worst: f64 = 0.0;
            g.train(&j, 0..16, &mut |c, first, rows| {
                for (i, row) in rows.chunks(len).enumerate() {
                    let cpu = replica_rows(&j, first + i as u64);
                    for (a, b) in row.iter().zip(&cpu[c * len..(c + 1) * len]) {
                        worst = worst.max((a - b).abs() / (1.0 + b.abs()));
                    }
                }
            })
            .unwrap();
            assert!(
                worst <= tol,
                "{p:?} {param:?} {}: deviation {worst:.2e}",
                d.name()
            );
        }
    }
}

#[test]
fn the_logistic_loss_is_refused_where_it_does_not_apply() {
    let base = r#"{"experiment": "gd_vs_gf",
        "data": {"source": "generate", "n": 20, "d": 3, "labels": "logistic"},
        "model": {"param": "linear", "loss": "logistic"},
        "dynamics": ["gd", "gf"], "etas": [0.25], "horizon": 1, "paths": 2}"#;
    let ok: TrainConfig = serde_json::from_str(base).unwrap();
    check(ok, "t").unwrap();
    let field = |json: String| {
        let cfg: TrainConfig = serde_json::from_str(&json).unwrap();
        check(cfg, "t").unwrap_err()
    };
    let e = field(base.replace("gd_vs_gf", "least_squares_risk"));
    assert_eq!(e.field, "model.loss", "{e}");
    assert!(e.message.contains("squared"), "{e}");
    let e = field(base.replace("\"gf\"", "\"sgf\""));
    assert_eq!(e.field, "dynamics[1]", "{e}");
    let e = field(base.replace(", \"labels\": \"logistic\"", ""));
    assert_eq!(e.field, "data", "{e}");
    assert!(e.message.contains("labels 0 or 1"), "{e}");
    let e = field(base.replace(
        "\"labels\": \"logistic\"",
        "\"labels\": \"logistic\", \"label_noise\": 0.1",
    ));
    assert_eq!(e.field, "data.label_noise", "{e}");
    assert!(serde_json::from_str::<TrainConfig>(
        &base.replace("\"loss\": \"logistic\"", "\"loss\": \"hinge\"")
    )
    .is_err());
}
