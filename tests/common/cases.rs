//! Test cases shared by the Philox and GPU-vs-CPU tests: the Random123 known-answer
//! vectors (DESIGN §9) and small models/specs covering every dynamics.
#![allow(dead_code)]

use nalgebra::{DMatrix, DVector};
use smflow::backend::cpu::CpuBackend;
use smflow::backend::gpu::GpuBackend;
use smflow::backend::Backend;
use smflow::dynamics::{Dynamics, RunSpec, Solver};
use smflow::model::{vector, AnyModel, Multiplicative, Quadratic, ToyLoss, ToySgd};
use smflow::observables::Observable;
use smflow::rng;

pub const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0, 0, 0, 0],
        [0, 0],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
        [0xffffffff, 0xffffffff],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

pub fn models() -> Vec<AnyModel> {
    let a = DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 0.5]);
    let cov = DMatrix::from_row_slice(2, 2, &[0.5, 0.2, 0.2, 0.3]);
    vec![
        AnyModel::Quadratic(Quadratic::new(
            DMatrix::from_element(1, 1, 1.0),
            DVector::from_element(1, 0.5),
            DMatrix::from_element(1, 1, 2.0),
        )),
        AnyModel::Quadratic(Quadratic::new(a, DVector::from_vec(vec![0.2, -0.1]), cov)),
        AnyModel::Multiplicative(Multiplicative::new(1, 1.0, 0.5)),
        AnyModel::Multiplicative(Multiplicative::new(2, 1.0, 0.5)),
    ]
}

/// toy_sgd cases (no exact solver): the 1-D double well, the 2-D ring, a 3-D double well.
pub fn toy_models() -> Vec<AnyModel> {
    vec![
        AnyModel::ToySgd(ToySgd::new(1, ToyLoss::DoubleWell { c0: 0.25 }, 2.0)),
        AnyModel::ToySgd(ToySgd::new(
            2,
            ToyLoss::Ring {
                k0: 2.0,
                a: 0.5,
                c0: 0.2,
            },
            1.5,
        )),
        AnyModel::ToySgd(ToySgd::new(3, ToyLoss::DoubleWell { c0: 0.1 }, 1.0)),
    ]
}

/// A short run of `dynamics` on `m` with `particles` particles (stream of η index `eta_index`).
pub fn spec(
    m: &AnyModel,
    dynamics: Dynamics,
    solver: Solver,
    particles: usize,
    eta_index: usize,
) -> RunSpec {
    let d = m.as_dyn().dim();
    let x0 = (0..particles)
        .map(|p| {
            vector(
                &(0..d)
                    .map(|i| 1.0 - 0.3 * i as f64 + 0.2 * p as f64)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let mut obs = vec![
        Observable::Norm2(0),
        Observable::X0(0),
        Observable::Cos(0),
        Observable::Loss(0),
    ];
    if particles > 1 {
        obs.extend([Observable::Prod(0, 1), Observable::Dist2(0, 1)]);
    }
    RunSpec {
        dynamics,
        eta: 0.1,
        batch: 2,
        solver,
        x0,
        checkpoints: vec![2, 5],
        observables: obs,
        stream: RunSpec::stream_tag(dynamics, eta_index),
        key: rng::key_from_seed(0x5EED_0000_CAFE),
        bound: 1e6,
        coupling: None,
        friction: 1.5,
    }
}

/// A (model, spec) case, for messages.
pub fn label(m: &AnyModel, s: &RunSpec) -> String {
    format!(
        "{} d={} {} {:?} P={}",
        m.name(),
        m.as_dyn().dim(),
        s.dynamics,
        s.solver,
        s.particles()
    )
}

/// Final states of replicas `0..replicas` on `gpu` against the f64 CPU reference, value
/// by value: each |gpu − cpu| ≤ `tol`·(1 + |cpu|), and a random dynamics' paths must
/// differ (no vacuous pass). Returns the worst such relative deviation.
pub fn gpu_paths_against_cpu(
    gpu: &GpuBackend,
    m: &AnyModel,
    s: &RunSpec,
    replicas: u64,
    tol: f64,
) -> f64 {
    let what = format!("{} {}", gpu.precision().name(), label(m, s));
    let g = gpu
        .final_states(m, s, 0..replicas)
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
    let c = CpuBackend::default()
        .final_states(m, s, 0..replicas)
        .unwrap();
    assert_eq!(g.len(), c.len(), "{what}");
    let mut worst = 0.0f64;
    for (i, (a, b)) in g.iter().zip(&c).enumerate() {
        let err = (a - b).abs() / (1.0 + b.abs());
        worst = worst.max(err);
        assert!(err <= tol, "{what} value {i}: gpu {a} cpu {b}");
    }
    if s.dynamics.is_random() {
        assert!(
            c.iter().any(|v| (v - c[0]).abs() > 1e-3),
            "{what}: paths identical"
        );
    }
    worst
}
