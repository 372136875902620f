//! The mean-field GPU backend against the CPU reference (`meanfield::cpu`), path by
//! path: every dynamics (sgd and msgd streaming and on a data set, gd, gf, smf1, mgf, smf2,
//! msme1) × every
//! activation, widths below and above one tile (non-powers of two), independence of
//! the tile, the chunk and the sample slices, divergence handled alike, the llvmpipe
//! loop-limit regression, f64 where the adapter has it. Runs on any wgpu adapter
//! (llvmpipe in CI); skipped with a note where there is none.
//!
//! Tolerances. Deviation = max |gpu − cpu| / (1 + |cpu|) over observables and neuron
//! coordinates (values are O(1), so this is a relative error where it matters and an
//! absolute one near 0). In f32 the data and initial normals are rounded once (6e-8),
//! every drift sums ≤ a few hundred terms, and the Box–Muller normals from the f32
//! log/sin/cos differ from the f64 ones by ≲ 3e-6 absolute; over ≤ 12 short steps the
//! measured deviations are ~1e-6, and we assert 1e-4 (a wrong draw, index, weight or
//! stage changes paths by O(η) ≈ 1e-2 or more). In f64 the GPU computes log, sin/cos,
//! tanh and exp with the CPU's algorithms (shaders/common/math_f64.wgsl), so only
//! rounding differs: measured 1.1e-15, and we assert 1e-11 (the f32 builtins GPU f64
//! used before gave 3e-7).

use smflow::backend::rows::RowEngine;
use smflow::backend::Precision;
use smflow::meanfield::cpu::CpuMeanField;
use smflow::meanfield::gpu::GpuMeanField;
use smflow::meanfield::model::{gaussian_set, Activation, Init, Teacher, TestFn, TAG_TEST};
use smflow::meanfield::{Dynamics, MeanFieldBackend, MfJob};
use std::sync::Arc;

const F32_TOL: f64 = 1e-4;
const F64_TOL: f64 = 1e-11;

const ACTS: [Activation; 4] = [
    Activation::Tanh,
    Activation::Relu,
    Activation::Sigmoid,
    Activation::Linear,
];

/// sgd streams θ unless `data` is Some(N); the others use a data set of N = `data`.
fn job(
    act: Activation,
    dynamics: Dynamics,
    width: usize,
    d: usize,
    data: Option<usize>,
    eta: f64,
) -> MfJob {
    let teacher = Arc::new(Teacher::generate(3, d, 1.0, 11));
    let set = data.map(|n| Arc::new(gaussian_set(&teacher, act, n, 0.1, 4, 0x1234)));
    MfJob {
        act,
        d,
        width,
        init: Init {
            a_mean: 0.2,
            a_std: 0.7,
            w_std: 0.8,
        },
        teacher: teacher.clone(),
        streaming: if data.is_none() { Some(0.1) } else { None },
        set,
        test: Arc::new(gaussian_set(&teacher, act, 37, 0.0, 3, TAG_TEST)),
        phi: TestFn::TanhAW1,
        dynamics,
        eta,
        batch: 5,
        sampling: Default::default(),
        friction: 1.5,
        substeps: 2,
        coarsen: 1,
        checkpoints: vec![0, 1, 4, 6],
        key: [5, 6],
        stream: dynamics.code() << 24,
        bound: 1e6,
        keep_states: true,
    }
}

/// (observables, states) of replicas `reps`, replica-major per checkpoint.
fn run(b: &dyn MeanFieldBackend, job: &MfJob, reps: std::ops::Range<u64>) -> (Vec<f64>, Vec<f64>) {
    let mut blocks = Vec::new();
    b.run(job, reps, &mut |bl| {
        blocks.push((
            bl.checkpoint,
            bl.first,
            bl.rows.to_vec(),
            bl.states.to_vec(),
        ))
    })
    .unwrap_or_else(|e| panic!("{} failed: {e:#}", b.name()));
    blocks.sort_by_key(|x| (x.0, x.1));
    let obs = blocks.iter().flat_map(|x| x.2.clone()).collect();
    let st = blocks.iter().flat_map(|x| x.3.clone()).collect();
    (obs, st)
}

/// max |a − b| / (1 + |b|), NaN positions required to agree.
fn deviation(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut worst: f64 = 0.0;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.is_nan(), y.is_nan(), "NaN pattern differs: {x} vs {y}");
        if !y.is_nan() {
            worst = worst.max((x - y).abs() / (1.0 + y.abs()));
        }
    }
    worst
}

fn gpu(p: Precision) -> Option<GpuMeanField> {
    match GpuMeanField::new(p) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("skipping: no wgpu adapter for the mean-field GPU backend ({e:#})");
            None
        }
    }
}

fn compare(
    g: &dyn MeanFieldBackend,
    job: &MfJob,
    reps: std::ops::Range<u64>,
    tol: f64,
    what: &str,
) -> f64 {
    let (co, cs) = run(&CpuMeanField::default(), job, reps.clone());
    let (go, gs) = run(g, job, reps);
    let dev = deviation(&go, &co).max(deviation(&gs, &cs));
    assert!(dev < tol, "{what}: deviation {dev:e} ≥ {tol:e}");
    dev
}

fn with_tile(tile: u32) -> Option<GpuMeanField> {
    let mut g = gpu(Precision::F32)?;
    g.configure(tile, None, None).unwrap();
    Some(g)
}

#[test]
fn every_dynamics_and_activation_matches_the_cpu() {
    let Some(g) = with_tile(64) else { return };
    let cases = [
        (Dynamics::Sgd, None, 0.5),
        (Dynamics::Sgd, Some(23), 0.5),
        (Dynamics::Gd, Some(23), 0.5),
        (Dynamics::Gf, Some(23), 0.5),
        (Dynamics::Smf1, Some(23), 0.5),
        (Dynamics::Mgf, Some(23), 0.5),
        (Dynamics::Smf2, Some(23), 0.5),
        (Dynamics::Msgd, None, 0.5),
        (Dynamics::Msgd, Some(23), 0.5),
        (Dynamics::Msme1, Some(23), 0.5),
    ];
    let mut worst: f64 = 0.0;
    for (dynamics, data, eta) in cases {
        let mut here: f64 = 0.0;
        for act in ACTS {
            for width in [5, 70] {
                let j = job(act, dynamics, width, 3, data, eta);
                let what = format!("{} data {data:?} {act:?} width {width}", dynamics.name());
                here = here.max(compare(&g, &j, 0..3, F32_TOL, &what));
            }
        }
        eprintln!(
            "{} data {data:?}: worst f32 deviation {here:e}",
            dynamics.name()
        );
        worst = worst.max(here);
    }
    eprintln!("worst f32 deviation {worst:e}");
}

/// Minibatches drawn by epochs (`data::sampling`, shaders/data/sampling.wgsl): batch 9
/// of a set of 23, so steps straddle the epochs' ends, from a first replica ≠ 0.
#[test]
fn epoch_sampling_matches_the_cpu() {
    let Some(g) = with_tile(64) else { return };
    for dynamics in [Dynamics::Sgd, Dynamics::Msgd] {
        for width in [5, 70] {
            let mut j = job(Activation::Tanh, dynamics, width, 3, Some(23), 0.5);
            j.batch = 9;
            j.sampling = smflow::data::sampling::Sampling::Epochs;
            let what = format!("{} by epochs, width {width}", dynamics.name());
            let dev = compare(&g, &j, 2..6, F32_TOL, &what);
            eprintln!("{what}: f32 deviation {dev:e}");
        }
    }
}

#[test]
fn results_do_not_depend_on_tile_chunk_or_sample_slices() {
    let Some(mut g) = gpu(Precision::F32) else {
        return;
    };
    for (dynamics, data) in [
        (Dynamics::Sgd, None),
        (Dynamics::Gf, Some(23)),
        (Dynamics::Smf1, Some(23)),
        (Dynamics::Mgf, Some(23)),
        (Dynamics::Smf2, Some(23)),
        (Dynamics::Msgd, Some(23)),
        (Dynamics::Msme1, Some(23)),
    ] {
        let mut j = job(Activation::Tanh, dynamics, 70, 3, data, 0.5);
        j.batch = 9;
        let reps = 3..8; // a first replica ≠ 0: Philox must see global indices
        let (bo, bs) = run(&CpuMeanField::default(), &j, reps.clone());
        for (tile, chunk, slice) in [
            (64, None, None),
            (32, Some(2), None),
            (128, Some(3), Some(4)),
            (8, None, Some(1)),
        ] {
            g.configure(tile, chunk, slice).unwrap();
            let (go, gs) = run(&g, &j, reps.clone());
            let dev = deviation(&go, &bo).max(deviation(&gs, &bs));
            assert!(
                dev < F32_TOL,
                "{} tile {tile} chunk {chunk:?} slice {slice:?}: deviation {dev:e}",
                dynamics.name()
            );
        }
    }
}

/// The comparisons above can see the order-2 drift: on the same noise, mgf and smf2
/// move the test jobs' paths away from gf and smf1 by far more than the tolerance (and
/// so would a GPU that dropped the correction, or one of its terms: dropping ρ alone
/// moves them by ~1e-2, checked by hand).
#[test]
fn the_order2_correction_is_far_above_the_tolerance() {
    for (o1, o2) in [
        (Dynamics::Gf, Dynamics::Mgf),
        (Dynamics::Smf1, Dynamics::Smf2),
    ] {
        for act in ACTS {
            let mut a = job(act, o1, 70, 3, Some(23), 0.5);
            a.stream = 0;
            let mut b = a.clone();
            b.dynamics = o2;
            let (ao, as_) = run(&CpuMeanField::default(), &a, 0..2);
            let (bo, bs) = run(&CpuMeanField::default(), &b, 0..2);
            let dev = deviation(&bo, &ao).max(deviation(&bs, &as_));
            assert!(
                dev > 100.0 * F32_TOL,
                "{} vs {} {act:?}: only {dev:e} apart",
                o2.name(),
                o1.name()
            );
        }
    }
}

/// Coupled coarse levels (`MfJob::coarsen`: half or a quarter of the substeps on the
/// fine level's Brownian path) give the CPU's paths on the GPU, for every dynamics that
/// has them.
#[test]
fn coarse_levels_match_the_cpu() {
    let Some(g) = with_tile(64) else { return };
    for dynamics in [
        Dynamics::Gf,
        Dynamics::Smf1,
        Dynamics::Mgf,
        Dynamics::Smf2,
        Dynamics::Msme1,
    ] {
        for c in [2, 4] {
            let mut j = job(Activation::Tanh, dynamics, 70, 3, Some(23), 0.5);
            j.substeps = 4;
            j.coarsen = c;
            let what = format!("{} coarsen {c}", dynamics.name());
            compare(&g, &j, 0..3, F32_TOL, &what);
        }
    }
}

#[test]
fn divergence_reports_nan_on_both_backends() {
    let Some(g) = gpu(Precision::F32) else { return };
    let mut j = job(Activation::Linear, Dynamics::Gd, 20, 3, Some(23), 40.0);
    j.checkpoints = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 12];
    j.bound = 1e4;
    let (co, cs) = run(&CpuMeanField::default(), &j, 0..3);
    let (go, gs) = run(&g, &j, 0..3);
    assert!(
        co.last().unwrap().is_nan(),
        "the case must diverge on the CPU"
    );
    assert!(co[0].is_finite(), "and start finite");
    let dev = deviation(&go, &co).max(deviation(&gs, &cs));
    assert!(dev < F32_TOL, "deviation {dev:e} before divergence");
}

/// Regression: llvmpipe stops an invocation after 65 535 loop iterations in all and
/// silently carries on with wrong numbers. A full batch of 70 000 samples is more than
/// 65 535 iterations of the sample loops of `forward` and `update` alone (NIR unrolls
/// the short loops over d, so only a long sample loop reaches the limit), and the test
/// set as many again: the backend must split the samples into slices (or refuse);
/// smf2 adds the order-2 passes (grad, grad_parts, rho_forward, rho_fold) to that.
/// Without the slicing this test fails.
#[test]
fn large_batches_survive_llvmpipes_loop_limit() {
    let Some(g) = with_tile(64) else { return };
    for dynamics in [Dynamics::Gd, Dynamics::Smf1, Dynamics::Smf2] {
        let mut j = job(Activation::Tanh, dynamics, 70, 3, Some(70_000), 0.5);
        j.substeps = 1;
        j.test = Arc::new(gaussian_set(&j.teacher, j.act, 70_000, 0.0, 3, TAG_TEST));
        j.checkpoints = vec![0, 2];
        compare(&g, &j, 0..2, F32_TOL, dynamics.name());
    }
    if g.is_software() {
        // One that cannot be split (a 4000-neuron teacher evaluated per streamed sample)
        // is refused, naming the CPU backend.
        let mut j = job(Activation::Tanh, Dynamics::Sgd, 16, 16, None, 0.5);
        j.teacher = Arc::new(Teacher::generate(4000, 16, 1.0, 1));
        let err = g.run(&j, 0..1, &mut |_| {}).expect_err("must be refused");
        assert!(format!("{err:#}").contains("--backend cpu"), "{err:#}");
    }
}

#[test]
fn f64_matches_the_cpu_where_supported() {
    let Ok(g) = GpuMeanField::new(Precision::F64) else {
        eprintln!("skipping: the adapter has no SHADER_F64");
        return;
    };
    let mut worst: f64 = 0.0;
    for (dynamics, data) in [
        (Dynamics::Sgd, None),
        (Dynamics::Gd, Some(23)),
        (Dynamics::Gf, Some(23)),
        (Dynamics::Smf1, Some(23)),
        (Dynamics::Mgf, Some(23)),
        (Dynamics::Smf2, Some(23)),
        (Dynamics::Msgd, None),
        (Dynamics::Msme1, Some(23)),
    ] {
        for act in ACTS {
            let j = job(act, dynamics, 70, 3, data, 0.5);
            let dev = compare(
                &g,
                &j,
                0..2,
                F64_TOL,
                &format!("f64 {} {act:?}", dynamics.name()),
            );
            worst = worst.max(dev);
        }
    }
    eprintln!("worst f64 deviation {worst:.2e}");
}
