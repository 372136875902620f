//! The finite-data trainer on the CPU: exact expectations of linear regression.

use smflow::data::sampling::Sampling;
use smflow::data::{generate, GenerateConfig};
use smflow::train::cpu::CpuTrainer;
use smflow::train::net::Param;
use smflow::train::{Dynamics, TrainJob, Trainer};
use std::sync::Arc;

fn job(dynamics: Dynamics, eta: f64, steps: u32, resample: bool) -> TrainJob {
    let data = generate(
        &GenerateConfig {
            n: 40,
            d: 6,
            sparsity: None,
            teacher_scale: 1.0,
            label_noise: 0.3,
            seed: None,
            labels: Default::default(),
        },
        11,
    );
    TrainJob {
        param: Param::Linear,
        loss: Default::default(),
        w0: vec![0.0; data.d],
        data: Arc::new(data),
        dynamics,
        eta,
        friction: 1.5,
        coarsen: 1,
        batch: 2,
        sampling: Sampling::Replacement,
        substeps: 4,
        checkpoints: vec![0, steps / 2, steps],
        key: [5, 6],
        stream: dynamics.code() << 24,
        resample_labels: resample,
        track_gain: false,
        bound: 1e6,
    }
}

/// Mean and standard error of each coordinate at checkpoint c.
fn mean_se(t: &CpuTrainer, j: &TrainJob, m: u64, c: usize) -> (Vec<f64>, Vec<f64>) {
    let len = j.row_len();
    let mut s1 = vec![0.0; len];
    let mut s2 = vec![0.0; len];
    t.train(j, 0..m, &mut |cc, _, rows| {
        if cc == c {
            for row in rows.chunks(len) {
                for i in 0..len {
                    s1[i] += row[i];
                    s2[i] += row[i] * row[i];
                }
            }
        }
    })
    .unwrap();
    let n = m as f64;
    let mean: Vec<f64> = s1.iter().map(|s| s / n).collect();
    let se = s2
        .iter()
        .zip(&mean)
        .map(|(s, mu)| ((s / n - mu * mu) / (n - 1.0)).max(0.0).sqrt())
        .collect();
    (mean, se)
}

fn single(t: &CpuTrainer, j: &TrainJob, c: usize) -> Vec<f64> {
    mean_se(t, j, 1, c).0
}

/// For least squares the SGD mean recursion is linear and unbiased, so E β_k(sgd) =
/// β_k(gd) exactly; likewise E β_t(sme/smf, EM) = the Euler (gd-like) mean with step
/// dt — and with dt = η/substeps that is GD with the smaller step. Checked within
/// 4.5 standard errors per coordinate (6 coordinates × 2 checkpoints).
#[test]
fn sgd_mean_equals_gd_for_least_squares() {
    let t = CpuTrainer::default();
    let gd = job(Dynamics::Gd, 0.1, 40, false);
    for c in 1..3 {
        let want = single(&t, &gd, c);
        let (m, se) = mean_se(&t, &job(Dynamics::Sgd, 0.1, 40, false), 4000, c);
        for i in 0..6 {
            assert!(
                (m[i] - want[i]).abs() <= 4.5 * se[i],
                "c {c} i {i}: sgd {} ± {} vs gd {}",
                m[i],
                se[i],
                want[i]
            );
        }
        // The test can fail: a biased recursion (wrong step) is rejected.
        let off = single(&t, &job(Dynamics::Gd, 0.11, 40, false), c);
        assert!((0..6).any(|i| (m[i] - off[i]).abs() > 4.5 * se[i]));
    }
}

#[test]
fn sde_mean_equals_euler_mean() {
    let t = CpuTrainer::default();
    // EM with 4 substeps of η/4: mean = GD with step η/4 run 4× as many steps.
    let mut gd = job(Dynamics::Gd, 0.025, 160, false);
    gd.checkpoints = vec![0, 80, 160];
    for dynamics in [Dynamics::Smf1, Dynamics::Sme1] {
        let (m, se) = mean_se(&t, &job(dynamics, 0.1, 40, false), 4000, 2);
        let want = single(&t, &gd, 2);
        for i in 0..6 {
            assert!(
                (m[i] - want[i]).abs() <= 4.5 * se[i],
                "{dynamics:?} i {i}: {} ± {} vs {}",
                m[i],
                se[i],
                want[i]
            );
        }
    }
}

#[test]
fn results_do_not_depend_on_block_size() {
    let j = job(Dynamics::Sgd, 0.1, 20, true);
    let collect = |block| {
        let mut out = Vec::new();
        CpuTrainer {
            block,
            ..Default::default()
        }
        .train(&j, 3..40, &mut |c, first, rows| {
            out.push((c, first, rows.to_vec()))
        })
        .unwrap();
        let mut flat = vec![Vec::new(); 3];
        for (c, _, rows) in out {
            flat[c].extend(rows);
        }
        flat
    };
    assert_eq!(collect(1), collect(1024));
}
