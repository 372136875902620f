//! The CPU trainer's lane groups against its scalar reference (`replica_rows`, one
//! replica at a time in f64): the same bits for every parametrisation × dynamics ×
//! sampling × label resampling × gain tracking, full and partial groups, diverging
//! lanes; the f32 option tracks the reference and does not depend on how replicas
//! are grouped. (Every SIMD level: tests/simd_levels.rs runs a trainer experiment
//! under each `SMFLOW_SIMD`.)

use smflow::backend::Precision;
use smflow::data::sampling::Sampling;
use smflow::data::{generate, GenerateConfig};
use smflow::train::cpu::{replica_rows, CpuTrainer};
use smflow::train::net::Param;
use smflow::train::{Dynamics, TrainJob, Trainer, NAMES};
use std::ops::Range;
use std::sync::Arc;

fn job(
    param: Param,
    dynamics: Dynamics,
    sampling: Sampling,
    resample: bool,
    gain: bool,
) -> TrainJob {
    let data = generate(
        &GenerateConfig {
            n: 13,
            d: 5,
            sparsity: None,
            teacher_scale: 1.0,
            label_noise: 0.3,
            seed: None,
            labels: Default::default(),
        },
        3,
    );
    let d = data.d;
    TrainJob {
        param,
        loss: Default::default(),
        w0: param
            .init(d, 0.5)
            .iter()
            .enumerate()
            .map(|(i, w)| w + 0.05 * i as f64)
            .collect(),
        data: Arc::new(data),
        dynamics,
        eta: 0.05,
        friction: 1.5,
        coarsen: 1,
        batch: 3,
        sampling,
        substeps: 2,
        checkpoints: vec![0, 3, 8],
        key: [21, 22],
        stream: dynamics.code() << 24,
        resample_labels: resample,
        track_gain: gain,
        bound: 1e6,
    }
}

/// Rows `[replica][c][row]` of `replicas` from the trainer (the sink's `[c][replica]`
/// re-laid out).
fn trained(t: &CpuTrainer, j: &TrainJob, replicas: Range<u64>) -> Vec<Vec<f64>> {
    let (len, n_c) = (j.row_len(), j.checkpoints.len());
    let m = (replicas.end - replicas.start) as usize;
    let mut out = vec![vec![f64::NAN; n_c * len]; m];
    let start = replicas.start;
    t.train(j, replicas, &mut |c, first, rows| {
        for (i, row) in rows.chunks(len).enumerate() {
            let r = (first - start) as usize + i;
            out[r][c * len..(c + 1) * len].copy_from_slice(row);
        }
    })
    .unwrap();
    out
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// Replica ranges that reach lane groups (≥ two full groups per thread; below that
/// the trainer runs the scalar reference anyway), with partial last groups of 5
/// lanes (a lane group) and 1 lane (run on the scalar reference).
fn lane_ranges() -> Vec<Range<u64>> {
    let full = 2 * 8 * rayon::current_num_threads() as u64;
    vec![3..3 + full + 5, 7..7 + full + 1, 0..9]
}

#[test]
fn lane_groups_are_bit_identical_to_the_scalar_reference() {
    let t = CpuTrainer::default();
    let mut cases = 0;
    for param in [Param::Linear, Param::Uv, Param::PlusMinus] {
        for name in NAMES {
            let dynamics = Dynamics::parse(name).unwrap();
            for sampling in [Sampling::Replacement, Sampling::Epochs] {
                for (resample, gain) in [(false, false), (true, false), (false, true), (true, true)]
                {
                    let j = job(param, dynamics, sampling, resample, gain);
                    for range in lane_ranges() {
                        let got = trained(&t, &j, range.clone());
                        for (i, r) in range.clone().enumerate() {
                            assert!(
                                same_bits(&got[i], &replica_rows(&j, r as u64)),
                                "{param:?} {name} {sampling:?} resample {resample} gain {gain} \
                                 replica {r} of {range:?}: lanes differ from the scalar reference"
                            );
                        }
                        cases += 1;
                    }
                }
            }
        }
    }
    assert!(cases == 3 * 11 * 2 * 4 * 3, "{cases} cases");
}

/// Lanes that leave the bound become NaN on their own; the other lanes go on, as the
/// scalar reference does replica by replica.
#[test]
fn diverging_lanes_match_the_scalar_reference() {
    let t = CpuTrainer::default();
    let mut j = job(Param::Uv, Dynamics::Sgd, Sampling::Replacement, true, false);
    j.eta = 0.4;
    j.checkpoints = vec![0, 5, 20, 60];
    let range = 0..2 * 8 * rayon::current_num_threads() as u64 + 7;
    let got = trained(&t, &j, range.clone());
    let last = j.checkpoints.len() - 1;
    let len = j.row_len();
    let diverged = got.iter().filter(|r| r[last * len].is_nan()).count();
    assert!(
        diverged > 0 && diverged < got.len(),
        "the case must mix diverging and finite lanes: {diverged} of {} diverged",
        got.len()
    );
    for (i, r) in range.enumerate() {
        assert!(
            same_bits(&got[i], &replica_rows(&j, r as u64)),
            "replica {r}"
        );
    }
}

/// f32: within 1e-3 (relative to 1 + |x|) of the f64 reference per replica and
/// value, and the same bits however the replicas are split into calls and blocks.
#[test]
fn f32_tracks_the_reference_and_does_not_depend_on_grouping() {
    let f32t = CpuTrainer::with_precision(Precision::F32);
    let mut worst: f64 = 0.0;
    for param in [Param::Linear, Param::Uv, Param::PlusMinus] {
        for name in ["gd", "sgd", "gf", "mgf", "sme2", "smf1", "sgf"] {
            let j = job(
                param,
                Dynamics::parse(name).unwrap(),
                Sampling::Replacement,
                true,
                false,
            );
            let all = trained(&f32t, &j, 3..40);
            for (i, r) in (3..40u64).enumerate() {
                for (a, b) in all[i].iter().zip(replica_rows(&j, r)) {
                    let err = (a - b).abs() / (1.0 + b.abs());
                    assert!(
                        err <= 1e-3,
                        "{param:?} {name} replica {r}: f32 {a} vs f64 {b}"
                    );
                    worst = worst.max(err);
                }
            }
            let mut split = trained(&f32t, &j, 3..20);
            split.extend(trained(&CpuTrainer { block: 5, ..f32t }, &j, 20..40));
            for (i, (a, b)) in all.iter().zip(&split).enumerate() {
                assert!(
                    same_bits(a, b),
                    "{param:?} {name} replica {}: grouping changed f32 bits",
                    i + 3
                );
            }
            assert!(
                !same_bits(&all[0], &replica_rows(&j, 3)),
                "{param:?} {name}: f32 gave the f64 bits, so it did not run in f32"
            );
        }
    }
    eprintln!("worst f32 relative error {worst:.2e}");
}
