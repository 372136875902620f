//! The mean-field CPU reference against closed forms (issue 4).

mod common;

use smflow::backend::rows::RowEngine;
use smflow::meanfield::cpu::{CpuMeanField, Net};
use smflow::meanfield::model::{
    gaussian_set, linear_population, Activation, Init, Teacher, TestFn, TAG_TEST,
};
use smflow::meanfield::real::Real;
use smflow::meanfield::{Dynamics, MfJob};
use std::sync::Arc;

fn linear_job(width: usize, d: usize, dynamics: Dynamics, eta: f64, steps: u32) -> MfJob {
    let teacher = Arc::new(Teacher::generate(3, d, 1.0, 11));
    let act = Activation::Linear;
    MfJob {
        act,
        d,
        width,
        init: Init {
            a_mean: 0.2,
            a_std: 0.7,
            w_std: 0.5,
        },
        teacher: teacher.clone(),
        streaming: Some(0.0),
        set: Some(Arc::new(linear_population(&teacher, act))),
        test: Arc::new(gaussian_set(&teacher, act, 64, 0.0, 3, TAG_TEST)),
        phi: TestFn::AW1,
        dynamics,
        eta,
        batch: 1,
        sampling: Default::default(),
        friction: 1.5,
        substeps: 4,
        coarsen: 1,
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
        let job = linear_job(width, d, Dynamics::Gf, 0.05, 40);
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
            assert!(
                worst < 1e-7,
                "width {width} checkpoint {c}: moments off by {worst}"
            );
        }
        // The flow must actually move: β approaches β*.
        let (b, _, _) = moments(states.last().unwrap(), d);
        let (b0, _, _) = moments(&states[0], d);
        let dist = |x: &[f64]| {
            x.iter()
                .zip(&bstar)
                .map(|(p, q)| (p - q).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        if width > 1 {
            assert!(
                dist(&b) < 0.5 * dist(&b0),
                "width {width}: β did not move toward β*"
            );
        }
    }
}

#[test]
fn the_moment_test_can_fail() {
    // The same comparison with a wrong ODE (the W-term dropped from β') must fail.
    let d = 3;
    let job = linear_job(16, d, Dynamics::Gf, 0.05, 20);
    let bstar = job.teacher.beta();
    let mut net = Net::new(&job, 0);
    let (b0, a0, _) = moments(&net.z, d);
    for k in 0..20 {
        net.step(k);
    }
    let (b, _, _) = moments(&net.z, d);
    // Wrong model: β' = −A(β − β*) with A frozen; solve exactly.
    let t = 1.0;
    let wrong: Vec<f64> = (0..d)
        .map(|i| bstar[i] + (b0[i] - bstar[i]) * (-a0 * t).exp())
        .collect();
    let off = (0..d).map(|i| (wrong[i] - b[i]).abs()).fold(0.0, f64::max);
    assert!(off > 1e-3, "the wrong ODE fits within {off}");
}

fn tanh_set_job(width: usize, dynamics: Dynamics, eta: f64, steps: u32, act: Activation) -> MfJob {
    let d = 3;
    let teacher = Arc::new(Teacher::generate(2, d, 2.0, 4));
    let mut j = linear_job(width, d, dynamics, eta, steps);
    j.act = act;
    j.teacher = teacher.clone();
    j.streaming = None;
    j.set = Some(Arc::new(gaussian_set(
        &teacher,
        act,
        12,
        0.1,
        8,
        smflow::meanfield::model::TAG_FEATURES,
    )));
    j.test = Arc::new(gaussian_set(&teacher, act, 32, 0.0, 3, TAG_TEST));
    j
}

#[test]
fn order2_correction_is_the_hessian_of_the_loss_along_its_gradient() {
    use smflow::meanfield::drift::{add_correction, drift, DriftScratch};
    use smflow::meanfield::{fill_batch, Batch};
    for act in [Activation::Tanh, Activation::Sigmoid, Activation::Linear] {
        let job = tanh_set_job(5, Dynamics::Gf, 0.1, 1, act);
        let net = Net::new(&job, 1);
        let (mut batch, mut scr, mut w) = (Batch::default(), Vec::new(), DriftScratch::default());
        fill_batch(&job, 1, 0, 0, &mut batch, &mut scr); // weights 1/N: drift = −∇F
        let grad = |z: &[f64], w: &mut DriftScratch| {
            let mut out = vec![0.0; z.len()];
            drift(act, z, job.d, &batch, w, &mut out);
            out.iter().map(|v| -v).collect::<Vec<f64>>()
        };
        let g = grad(&net.z, &mut w);
        let mut hg = vec![0.0; g.len()];
        add_correction(act, &net.z, job.d, &batch.x, &mut w, 2.0, 1.0, &mut hg); // −H g
        let eps = 1e-5;
        let zp: Vec<f64> = net.z.iter().zip(&g).map(|(z, v)| z + eps * v).collect();
        let zm: Vec<f64> = net.z.iter().zip(&g).map(|(z, v)| z - eps * v).collect();
        let (gp, gm) = (grad(&zp, &mut w), grad(&zm, &mut w));
        let scale = hg.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..g.len() {
            let fd = (gp[i] - gm[i]) / (2.0 * eps);
            assert!(
                (fd + hg[i]).abs() < 1e-6 * (1.0 + scale),
                "{act:?} coordinate {i}: H g {} vs fd {fd}",
                -hg[i]
            );
        }
        assert!(scale > 1e-3, "{act:?}: the correction vanished");
    }
}

/// max over checkpoints and coordinates of |z_a − z_b| for one replica.
fn path_distance(a: &MfJob, b: &MfJob) -> f64 {
    let run = |j: &MfJob| {
        let mut v = Vec::new();
        CpuMeanField::default()
            .run(j, 0..1, &mut |blk| v.push(blk.states.to_vec()))
            .unwrap();
        v
    };
    let (pa, pb) = (run(a), run(b));
    pa.iter()
        .flatten()
        .zip(pb.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Drawing by epochs (without replacement) with the whole set as the batch, b = N,
/// step k's draws are epoch k: every sample once. So sgd is gd, but for the order in
/// which the step sums its samples (rounding); with replacement (repeats) it is not.
#[test]
fn sgd_by_epochs_with_the_whole_set_as_batch_is_gd() {
    use smflow::data::sampling::Sampling;
    let (eta, steps) = (0.2, 10);
    let gd = tanh_set_job(6, Dynamics::Gd, eta, steps, Activation::Tanh);
    let mut sgd = tanh_set_job(6, Dynamics::Sgd, eta, steps, Activation::Tanh);
    sgd.batch = gd.set.as_ref().unwrap().n as u32;
    sgd.sampling = Sampling::Epochs;
    let by_epochs = path_distance(&sgd, &gd);
    assert!(
        by_epochs < 1e-12,
        "sgd by epochs, b = N, is {by_epochs} from gd"
    );
    sgd.sampling = Sampling::Replacement;
    let with_replacement = path_distance(&sgd, &gd);
    assert!(
        with_replacement > 1e-3,
        "sgd with replacement, b = N, is only {with_replacement} from gd"
    );
}

#[test]
fn gd_is_first_order_close_to_gf_and_second_order_close_to_mgf() {
    // T = 1: GD(η) vs the flows; halving η must halve |GD − GF| and quarter |GD − MGF|.
    let dist = |flow: Dynamics, eta: f64| {
        let steps = (1.0 / eta).round() as u32;
        let mut g = tanh_set_job(6, Dynamics::Gd, eta, steps, Activation::Tanh);
        g.checkpoints = vec![steps];
        let mut f = tanh_set_job(6, flow, eta, steps, Activation::Tanh);
        f.checkpoints = vec![steps];
        f.substeps = 8;
        path_distance(&g, &f)
    };
    let (gf1, gf2) = (dist(Dynamics::Gf, 0.1), dist(Dynamics::Gf, 0.05));
    let (mgf1, mgf2) = (dist(Dynamics::Mgf, 0.1), dist(Dynamics::Mgf, 0.05));
    let (p_gf, p_mgf) = ((gf1 / gf2).log2(), (mgf1 / mgf2).log2());
    assert!(
        (p_gf - 1.0).abs() < 0.25,
        "GD–GF order {p_gf} ({gf1}, {gf2})"
    );
    assert!(
        (p_mgf - 2.0).abs() < 0.3,
        "GD–MGF order {p_mgf} ({mgf1}, {mgf2})"
    );
    assert!(mgf1 < 0.5 * gf1, "MGF not closer than GF: {mgf1} vs {gf1}");
}

#[test]
fn cached_and_recomputed_activations_give_the_same_paths() {
    for dy in [
        Dynamics::Sgd,
        Dynamics::Smf1,
        Dynamics::Smf2,
        Dynamics::Mgf,
        Dynamics::Msgd,
        Dynamics::Msme1,
    ] {
        let job = tanh_set_job(7, dy, 0.1, 5, Activation::Sigmoid);
        let mut a = Net::new(&job, 2);
        let mut b = Net::new(&job, 2).without_activation_cache();
        for k in 0..5 {
            a.step(k);
            b.step(k);
        }
        let dev =
            a.z.iter()
                .zip(&b.z)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
        assert!(dev < 1e-12, "{dy:?}: {dev}");
        assert!(a.z != Net::new(&job, 2).z, "{dy:?}: nothing moved");
    }
}

/// `f(dynamics, activation, job)` for every dynamics × activation: `tanh_set_job` with
/// 43 neurons (five groups of 8 in the lane kernels and 3 alone), or 1100 for smf1 (all
/// 12 samples, two chunks of 8: without the activation cache, blocks of 64 neurons and a
/// last one of 12), η = 0.1, 6 steps.
fn every_case(mut f: impl FnMut(Dynamics, Activation, MfJob)) {
    for dy in smflow::meanfield::SUPPORTED {
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
            Activation::Linear,
        ] {
            let width = if dy == Dynamics::Smf1 { 1100 } else { 43 };
            f(dy, act, tanh_set_job(width, dy, 0.1, 6, act));
        }
    }
}

/// The lane kernels (default) against the scalar reference (`Net::reference`: one
/// neuron and sample at a time, libm-free σ, sums in the same order), bit for bit: every
/// dynamics × activation, in f64 and in f32, with and without the activation cache (the
/// blocked path, with a partial last block), after 6 steps, and the observables too.
#[test]
fn lane_kernels_give_the_scalar_reference_bits() {
    fn check<R: Real>(dy: Dynamics, act: Activation, job: &MfJob) {
        let mut reference = Net::<R>::in_precision(job, 3).reference();
        let mut cached = Net::<R>::in_precision(job, 3);
        let mut blocked = Net::<R>::in_precision(job, 3).without_activation_cache();
        for k in 0..6 {
            reference.step(k);
            cached.step(k);
            blocked.step(k);
        }
        let want = reference.observe();
        for (name, net) in [("cached", &mut cached), ("blocked", &mut blocked)] {
            let differ = net
                .z
                .iter()
                .zip(&reference.z)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(
                differ,
                0,
                "{dy:?} {act:?} {name} {:?}: {differ} of {} values differ",
                R::PRECISION,
                net.z.len()
            );
            let got = net.observe();
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{dy:?} {act:?} {name}: observables {got:?} vs {want:?}"
            );
        }
        assert!(
            reference.z != Net::<R>::in_precision(job, 3).z,
            "{dy:?} {act:?}: nothing moved"
        );
    }
    every_case(|dy, act, job| {
        check::<f64>(dy, act, &job);
        check::<f32>(dy, act, &job);
    });
}

/// `"precision": "f32"` (`Net::<f32>`) against the f64 reference: every dynamics ×
/// activation, 6 steps from the same draws (initial neurons and batches drawn in f64 and
/// rounded), within f32 rounding: |Δz| ≤ 2e-4 of max |z| (a few hundred f32 ulp of
/// growth over 6 steps of sums of 12–1100 terms), observables likewise. And it is
/// really f32: the paths are not bit-equal to the f64 ones rounded.
#[test]
fn f32_path_follows_the_f64_reference_to_f32_rounding() {
    every_case(|dy, act, job| {
        let mut f64_net = Net::new(&job, 3);
        let mut f32_net = Net::<f32>::in_precision(&job, 3);
        for k in 0..6 {
            f64_net.step(k);
            f32_net.step(k);
        }
        let scale = f64_net.z.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let z32 = f32_net.z_f64();
        let dev = z32
            .iter()
            .zip(&f64_net.z)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(dev <= 2e-4 * scale, "{dy:?} {act:?}: {dev} of {scale}");
        assert!(
            f32_net
                .z
                .iter()
                .zip(&f64_net.z)
                .any(|(x, y)| *x != *y as f32),
            "{dy:?} {act:?}: the f32 path equals the f64 one rounded"
        );
        let (o64, o32) = (f64_net.observe(), f32_net.observe());
        for (i, (a, b)) in o64.iter().zip(&o32).enumerate() {
            assert!(
                (a - b).abs() <= 1e-3 * a.abs().max(1e-3),
                "{dy:?} {act:?} observable {i}: f64 {a}, f32 {b}"
            );
        }
    });
}

/// The backend runs f32 when asked and says so; its replicas are the `Net::<f32>` ones
/// (states handed back in f64), whatever the block size.
#[test]
fn cpu_backend_f32_runs_net_f32_and_says_so() {
    use smflow::backend::Precision;
    let job = tanh_set_job(24, Dynamics::Smf2, 0.1, 3, Activation::Tanh);
    let cpu = CpuMeanField {
        block: 2,
        precision: Precision::F32,
    };
    assert_eq!(cpu.precision(), Precision::F32);
    assert!(cpu.adapter().contains("(f32)"), "{}", cpu.adapter());
    assert!(CpuMeanField::default().adapter().contains("(f64)"));
    let per = job.state_len();
    let mut states = vec![f64::NAN; 5 * per];
    let last = job.checkpoints.len() - 1;
    cpu.run(&job, 0..5, &mut |b| {
        if b.checkpoint == last {
            let at = b.first as usize * per;
            states[at..at + b.states.len()].copy_from_slice(b.states);
        }
    })
    .unwrap();
    for r in 0..5u64 {
        let mut net = Net::<f32>::in_precision(&job, r);
        for k in 0..job.steps() {
            net.step(k);
        }
        let want = net.z_f64();
        assert_eq!(
            &states[r as usize * per..(r as usize + 1) * per],
            &want[..],
            "replica {r}"
        );
    }
}
