//! The mean-field CPU reference against closed forms (issue 4).

mod common;

use smflow::meanfield::cpu::{CpuMeanField, Net};
use smflow::meanfield::model::{gaussian_set, linear_population, Activation, Init, Teacher, TestFn, TAG_TEST};
use smflow::meanfield::{MeanFieldBackend, MfDynamics, MfJob};
use std::sync::Arc;

fn linear_job(width: usize, d: usize, dynamics: MfDynamics, eta: f64, steps: u32) -> MfJob {
    let teacher = Arc::new(Teacher::generate(3, d, 1.0, 11));
    let act = Activation::Linear;
    MfJob {
        act,
        d,
        width,
        init: Init { a_mean: 0.2, a_std: 0.7, w_std: 0.5 },
        teacher: teacher.clone(),
        streaming: Some(0.0),
        set: Some(Arc::new(linear_population(&teacher, act))),
        test: Arc::new(gaussian_set(&teacher, act, 64, 0.0, 3, TAG_TEST)),
        phi: TestFn::AW1,
        dynamics,
        eta,
        batch: 1,
        substeps: 4,
        checkpoints: (0..=steps).collect(),
        key: [5, 6],
        stream: dynamics.code() << 24,
        bound: 1e6,
        keep_states: true,
    }
}

/// Moments (β, ⟨a²⟩, ⟨wwᵀ⟩) of neurons z (rows (a, w)).
fn moments(z: &[f64], d: usize) -> (Vec<f64>, f64, Vec<f64>) {
    let n = z.len() / (d + 1);
    let (mut beta, mut a2, mut ww) = (vec![0.0; d], 0.0, vec![0.0; d * d]);
    for zk in z.chunks(d + 1) {
        a2 += zk[0] * zk[0] / n as f64;
        for i in 0..d {
            beta[i] += zk[0] * zk[1 + i] / n as f64;
            for j in 0..d {
                ww[i * d + j] += zk[1 + i] * zk[1 + j] / n as f64;
            }
        }
    }
    (beta, a2, ww)
}

/// Right side of the closed moment ODE of linear population GF:
/// β' = −(W + A)(β − β*), A' = −2β·(β − β*), W' = −(β − β*)βᵀ − β(β − β*)ᵀ.
fn moment_rhs(s: &[f64], d: usize, bstar: &[f64]) -> Vec<f64> {
    let (beta, a, w) = (&s[..d], s[d], &s[d + 1..]);
    let e: Vec<f64> = (0..d).map(|i| beta[i] - bstar[i]).collect();
    let mut out = vec![0.0; s.len()];
    for i in 0..d {
        out[i] = -a * e[i] - (0..d).map(|j| w[i * d + j] * e[j]).sum::<f64>();
    }
    out[d] = -2.0 * (0..d).map(|i| beta[i] * e[i]).sum::<f64>();
    for i in 0..d {
        for j in 0..d {
            out[d + 1 + i * d + j] = -(e[i] * beta[j] + beta[i] * e[j]);
        }
    }
    out
}

#[test]
fn linear_population_gf_follows_the_closed_moment_ode() {
    let d = 3;
    for width in [1usize, 7, 64] {
        let job = linear_job(width, d, MfDynamics::Gf, 0.05, 40);
        let bstar = job.teacher.beta();
        let mut states = Vec::new();
        CpuMeanField::default()
            .run(&job, 0..2, &mut |b| {
                if b.first == 0 {
                    states.push(b.states[..job.state_len()].to_vec())
                }
            })
            .unwrap();
        // Integrate the moment ODE by RK4 with a much finer step from the same start.
        let (b0, a0, w0) = moments(&states[0], d);
        let mut s: Vec<f64> = b0.into_iter().chain([a0]).chain(w0).collect();
        let h = 0.05 / 64.0;
        let mut worst: f64 = 0.0;
        for (c, z) in states.iter().enumerate().skip(1) {
            for _ in 0..64 {
                let k1 = moment_rhs(&s, d, &bstar);
                let s2: Vec<f64> = s.iter().zip(&k1).map(|(x, k)| x + 0.5 * h * k).collect();
                let k2 = moment_rhs(&s2, d, &bstar);
                let s3: Vec<f64> = s.iter().zip(&k2).map(|(x, k)| x + 0.5 * h * k).collect();
                let k3 = moment_rhs(&s3, d, &bstar);
                let s4: Vec<f64> = s.iter().zip(&k3).map(|(x, k)| x + h * k).collect();
                let k4 = moment_rhs(&s4, d, &bstar);
                for i in 0..s.len() {
                    s[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
                }
            }
            let (b, a, w) = moments(z, d);
            let got: Vec<f64> = b.into_iter().chain([a]).chain(w).collect();
            for i in 0..s.len() {
                worst = worst.max((got[i] - s[i]).abs() / (1.0 + s[i].abs()));
            }
            assert!(worst < 1e-7, "width {width} checkpoint {c}: moments off by {worst}");
        }
        // The flow must actually move: β approaches β*.
        let (b, _, _) = moments(states.last().unwrap(), d);
        let (b0, _, _) = moments(&states[0], d);
        let dist = |x: &[f64]| x.iter().zip(&bstar).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt();
        if width > 1 {
            assert!(dist(&b) < 0.5 * dist(&b0), "width {width}: β did not move toward β*");
        }
    }
}

#[test]
fn the_moment_test_can_fail() {
    // The same comparison with a wrong ODE (the W-term dropped from β') must fail.
    let d = 3;
    let job = linear_job(16, d, MfDynamics::Gf, 0.05, 20);
    let bstar = job.teacher.beta();
    let mut net = Net::new(&job, 0);
    let (b0, a0, _) = moments(&net.z, d);
    for k in 0..20 {
        net.step(k);
    }
    let (b, _, _) = moments(&net.z, d);
    // Wrong model: β' = −A(β − β*) with A frozen; solve exactly.
    let t = 1.0;
    let wrong: Vec<f64> = (0..d).map(|i| bstar[i] + (b0[i] - bstar[i]) * (-a0 * t).exp()).collect();
    let off = (0..d).map(|i| (wrong[i] - b[i]).abs()).fold(0.0, f64::max);
    assert!(off > 1e-3, "the wrong ODE fits within {off}");
}
