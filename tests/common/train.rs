//! Helpers of the finite-data trainer's tests: a small job on a data set, and the
//! lanes-against-the-scalar-reference check.
#![allow(dead_code)]

use smflow::data::sampling::Sampling;
use smflow::data::DataSet;
use smflow::experiment::training::config::{check, TrainConfig};
use smflow::experiment::training::execute;
use smflow::train::cpu::{replica_rows, CpuTrainer};
use smflow::train::loss::Loss;
use smflow::train::net::Param;
use smflow::train::{Dynamics, TrainJob, Trainer};
use std::sync::Arc;

/// A generated data set of n samples in d dimensions with noise-free labels of kind
/// `labels` (teacher scale 1, stream 1).
pub fn generated(n: usize, d: usize, labels: smflow::data::Labels) -> Arc<DataSet> {
    Arc::new(smflow::data::generate(
        &smflow::data::GenerateConfig {
            n,
            d,
            sparsity: None,
            teacher_scale: 1.0,
            label_noise: 0.0,
            seed: None,
            labels,
        },
        1,
    ))
}

/// A short run (η = 0.1, b = 3, 3 substeps, checkpoints 0, 2, 5) from the
/// parametrisation's init at α = 0.5, nudged off its symmetric point.
pub fn job(data: &Arc<DataSet>, param: Param, dynamics: Dynamics, loss: Loss) -> TrainJob {
    let mut w0 = param.init(data.d, 0.5);
    for (i, w) in w0.iter_mut().enumerate() {
        *w += 0.1 * (i as f64 + 1.0).sin();
    }
    TrainJob {
        data: data.clone(),
        param,
        loss,
        dynamics,
        eta: 0.1,
        friction: 1.5,
        coarsen: 1,
        batch: 3,
        sampling: Sampling::Replacement,
        substeps: 3,
        checkpoints: vec![0, 2, 5],
        w0,
        key: [31, 32],
        stream: dynamics.code() << 24,
        resample_labels: false,
        track_gain: false,
        bound: 1e6,
    }
}

pub fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The CPU trainer's lane groups (full ones and a partial one) carry the scalar
/// reference's bits for every replica of `j`; returns the rows.
pub fn assert_lanes_match_reference(j: &TrainJob) -> Vec<Vec<f64>> {
    let n = 2 * 8 * rayon::current_num_threads() as u64 + 5;
    let len = j.row_len();
    let mut got = vec![Vec::new(); n as usize];
    CpuTrainer::default()
        .train(j, 0..n, &mut |_, first, rows| {
            for (i, row) in rows.chunks(len).enumerate() {
                got[first as usize + i].extend_from_slice(row);
            }
        })
        .unwrap();
    for (r, g) in got.iter().enumerate() {
        assert!(
            same_bits(g, &replica_rows(j, r as u64)),
            "{:?} {} replica {r}",
            j.param,
            j.dynamics.name()
        );
    }
    got
}

/// The fitted max-distance orders (GD–GF, GD–MGF) of a shipped gd_vs_gf config, on the
/// CPU trainer.
pub fn gd_vs_gf_orders(config: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(config).unwrap();
    let cfg: TrainConfig = serde_json::from_str(&text).unwrap();
    let s = check(cfg, "t").unwrap();
    let out = execute(&s, &CpuTrainer::default(), &|_| {}).unwrap();
    let o = &out.results["orders"];
    (
        o["gd_vs_gf"].as_f64().unwrap(),
        o["gd_vs_mgf"].as_f64().unwrap(),
    )
}
