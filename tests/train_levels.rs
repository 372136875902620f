//! The trainer's coupled coarse level (`TrainJob::coarsen`), the building block of
//! Talay–Tubaro extrapolation for the SDEs on data sets:
//! - its mean is Euler–Maruyama's with the coarse substep: on linear regression the
//!   drift is affine and the increments have mean zero, so E w of sme1 is exactly the
//!   deterministic Euler recursion with dt = η·c/S, written here; checked within 4.5
//!   standard errors, and the fine step's recursion is rejected;
//! - it is coupled to the fine level: the same Brownian path, summed, so a replica's
//!   fine and coarse paths differ by the discretisation only (their difference has a
//!   small fraction of the variance of an independent pair's), and 2 E w_f − E w_c
//!   removes Euler's O(dt) bias (checked against the recursions);
//! - the GPU's coarse levels agree with the CPU's path by path (tests/train_gpu.rs).

use smflow::data::sampling::Sampling;
use smflow::data::{generate, DataSet, GenerateConfig};
use smflow::train::cpu::CpuTrainer;
use smflow::train::net::Param;
use smflow::train::{Dynamics, TrainJob, Trainer};
use std::sync::Arc;

const N: usize = 30;
const D: usize = 5;

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
        17,
    ))
}

/// sme1 on linear regression, η = 0.2, T = 2 (10 steps), 4 fine substeps, level c;
/// batch 30 (= N): the noise, sqrt(η/(bN)), small beside Euler's bias at these steps.
fn job(ds: &Arc<DataSet>, coarsen: u32) -> TrainJob {
    TrainJob {
        data: ds.clone(),
        param: Param::Linear,
        loss: Default::default(),
        dynamics: Dynamics::Sme1,
        eta: 0.2,
        friction: 0.0,
        coarsen,
        batch: 30,
        sampling: Sampling::Replacement,
        substeps: 4,
        checkpoints: vec![10],
        w0: vec![0.0; D],
        key: [3, 4],
        stream: Dynamics::Sme1.code() << 24,
        resample_labels: false,
        track_gain: false,
        bound: 1e6,
    }
}

/// Final w of replicas 0..m.
fn finals(j: &TrainJob, m: u64) -> Vec<Vec<f64>> {
    let mut rows = vec![Vec::new(); m as usize];
    CpuTrainer::default()
        .train(j, 0..m, &mut |_, first, r| {
            for (i, w) in r.chunks(D).enumerate() {
                rows[first as usize + i] = w.to_vec();
            }
        })
        .unwrap();
    rows
}

/// Per coordinate: mean and standard error of f(replica).
fn mean_se(rows: &[Vec<f64>], f: impl Fn(usize, usize) -> f64) -> Vec<(f64, f64)> {
    let n = rows.len() as f64;
    (0..D)
        .map(|i| {
            let v: Vec<f64> = (0..rows.len()).map(|r| f(r, i)).collect();
            let mu = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (n - 1.0);
            (mu, (var / n).sqrt())
        })
        .collect()
}

/// Deterministic Euler on L(w) = (1/2N)‖Xw − y‖² with step dt, `steps` steps from 0.
fn euler(ds: &DataSet, dt: f64, steps: usize) -> Vec<f64> {
    let mut w = vec![0.0; D];
    for _ in 0..steps {
        let mut g = vec![0.0; D];
        for i in 0..N {
            let x = &ds.x[i * D..(i + 1) * D];
            let r: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() - ds.y[i];
            for j in 0..D {
                g[j] += r * x[j] / N as f64;
            }
        }
        for j in 0..D {
            w[j] -= dt * g[j];
        }
    }
    w
}

/// Largest |mean − want| / se over coordinates.
fn worst_z(m: &[(f64, f64)], want: &[f64]) -> f64 {
    m.iter()
        .zip(want)
        .map(|((mu, se), w)| (mu - w).abs() / se)
        .fold(0.0, f64::max)
}

#[test]
fn coarse_levels_are_euler_maruyama_with_the_coarse_substep() {
    let ds = data();
    let m = 4000;
    let fine = finals(&job(&ds, 1), m);
    let euler_of = |c: usize| euler(&ds, 0.2 * c as f64 / 4.0, 10 * 4 / c);
    for c in [1usize, 2, 4] {
        let rows = if c == 1 {
            fine.clone()
        } else {
            finals(&job(&ds, c as u32), m)
        };
        let got = mean_se(&rows, |r, i| rows[r][i]);
        let z = worst_z(&got, &euler_of(c));
        eprintln!("coarsen {c}: worst |E w − Euler(η·{c}/4)| = {z:.2} se");
        assert!(z < 4.5, "coarsen {c}: {z} se from its Euler recursion");
        // The test sees the step: the fine recursion is far outside.
        if c > 1 {
            let off = worst_z(&got, &euler_of(1));
            assert!(
                off > 10.0,
                "coarsen {c}: only {off} se from the fine recursion"
            );
        }
    }
}

#[test]
fn levels_are_coupled_and_extrapolation_removes_eulers_bias() {
    let ds = data();
    let m = 4000;
    let fine = finals(&job(&ds, 1), m);
    let coarse = finals(&job(&ds, 2), m);
    let mut other = job(&ds, 2);
    other.stream ^= 0x1; // another Brownian path
    let independent = finals(&other, m);
    let spread = |a: &[Vec<f64>], b: &[Vec<f64>]| -> f64 {
        mean_se(a, |r, i| a[r][i] - b[r][i])
            .iter()
            .map(|(_, se)| se * se * m as f64)
            .sum()
    };
    let (coupled, apart) = (spread(&fine, &coarse), spread(&fine, &independent));
    eprintln!("tr Var(w_f − w_c): coupled {coupled:.3e}, independent {apart:.3e}");
    // Euler–Maruyama converges strongly: the coupled pair differs by O(dt) in variance,
    // an independent pair by twice the paths' own.
    assert!(
        coupled < 0.25 * apart,
        "coupled {coupled} vs independent {apart}"
    );
    // Talay–Tubaro: E(2 w_f − w_c) = 2 Euler(dt) − Euler(2dt), O(dt²) from the flow.
    let tt = mean_se(&fine, |r, i| 2.0 * fine[r][i] - coarse[r][i]);
    let (e1, e2) = (euler(&ds, 0.05, 40), euler(&ds, 0.1, 20));
    let want: Vec<f64> = e1.iter().zip(&e2).map(|(a, b)| 2.0 * a - b).collect();
    let z = worst_z(&tt, &want);
    eprintln!("2 w_f − w_c: worst {z:.2} se from 2 Euler(dt) − Euler(2dt)");
    assert!(z < 4.5, "{z} se");
    // Fine Euler at dt = 0.0125 as the flow's stand-in: the extrapolation is closer to
    // it than the fine level is.
    let flow = euler(&ds, 0.0125, 160);
    let gap = |v: &[f64]| {
        v.iter()
            .zip(&flow)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let mu = |s: &[(f64, f64)]| s.iter().map(|x| x.0).collect::<Vec<f64>>();
    let (g_fine, g_tt) = (gap(&mu(&mean_se(&fine, |r, i| fine[r][i]))), gap(&mu(&tt)));
    eprintln!("max |E − flow|: fine {g_fine:.2e}, extrapolated {g_tt:.2e}");
    assert!(g_tt < 0.5 * g_fine, "extrapolated {g_tt} vs fine {g_fine}");
}

#[test]
fn a_level_that_does_not_divide_the_substeps_is_refused() {
    let ds = data();
    let err = CpuTrainer::default()
        .train(&job(&ds, 3), 0..2, &mut |_, _, _| {})
        .expect_err("coarsen 3 of 4 substeps");
    assert!(format!("{err:#}").contains("coarsen"), "{err:#}");
}
