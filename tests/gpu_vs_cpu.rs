//! The GPU backend against the CPU reference, path by path and in statistics, for
//! both models (1-D and 2-D with non-diagonal A and S), every dynamics and solver.
//!
//! Tolerances. The GPU runs in f32 (unit roundoff 6e-8) from the same Philox draws;
//! its normals differ from the f64 ones by ≲ 3e-6 absolute (f32 log/sin/cos, see
//! gpu_kernels.rs), and a few steps of contractive (η‖A‖ ≤ 0.1) dynamics do not
//! amplify errors. So after 5 steps |gpu − cpu| is ~1e-6·(1+|x|); we assert
//! 1e-4·(1+|cpu|), two decades above that yet far below any real discrepancy (a wrong
//! draw or update changes x by O(√η·0.5) ≈ 0.1). Statistics are means of such
//! values, so they inherit the same bound; counts must be equal.

use smflow::backend::cpu::CpuBackend;
use smflow::backend::gpu::GpuBackend;
use smflow::backend::{Backend, Precision};
use smflow::dynamics::{Dynamics, Kind, RunSpec, Solver};
use smflow::model::{AnyModel, Multiplicative};
use smflow::observables::Observable;

mod common;
use common::cases::{gpu_paths_against_cpu, label, models, spec};
use std::time::Instant;

const M: u64 = 256;

fn backend(chunk: Option<u64>) -> Option<GpuBackend> {
    let b = match chunk {
        Some(c) => GpuBackend::with_chunk(Precision::F32, c),
        None => GpuBackend::new(Precision::F32),
    };
    match b {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("skipping: no wgpu adapter ({e})");
            None
        }
    }
}

/// Every (model, dynamics, solver) case, plus two-particle ones.
fn cases() -> Vec<(AnyModel, RunSpec)> {
    let mut out = Vec::new();
    for m in models() {
        for name in smflow::dynamics::NAMES {
            let dy = Dynamics::parse(name).unwrap();
            let solvers: Vec<Solver> = match dy.kind() {
                Kind::Discrete => vec![Solver::Exact],
                Kind::Ode => vec![Solver::Substeps {
                    substeps: 4,
                    extrapolate: false,
                }],
                Kind::Sde => vec![
                    Solver::Substeps {
                        substeps: 4,
                        extrapolate: true,
                    },
                    Solver::Substeps {
                        substeps: 4,
                        extrapolate: false,
                    },
                    Solver::Exact,
                ],
            };
            // The exact solver where the model declares the transition (msme1's is of
            // the pair (X, P): the quadratic model's OU pair).
            let caps = m.as_dyn().capabilities();
            for s in solvers.into_iter().filter(|s| {
                *s != Solver::Exact || dy.kind() == Kind::Discrete || caps.has(dy.exact_needs())
            }) {
                out.push((m.clone(), spec(&m, dy, s, 1, 3)));
            }
        }
    }
    let q2 = models()[1].clone();
    for dy in [Dynamics::Sgd, Dynamics::Sme1, Dynamics::Smf2] {
        out.push((
            q2.clone(),
            spec(
                &q2,
                dy,
                Solver::Substeps {
                    substeps: 4,
                    extrapolate: true,
                },
                2,
                3,
            ),
        ));
    }
    let m2 = models()[3].clone();
    out.push((m2.clone(), spec(&m2, Dynamics::Smf1, Solver::Exact, 2, 3)));
    out.push((
        m2.clone(),
        spec(
            &m2,
            Dynamics::Sme2,
            Solver::Substeps {
                substeps: 4,
                extrapolate: false,
            },
            2,
            3,
        ),
    ));
    out
}

/// In f64 the GPU computes ln, sin/cos, exp and tanh with the CPU's own algorithms
/// (shaders/common/math_f64.wgsl) on the same draws, so paths agree to f64 rounding:
/// a few ulps per operation (a driver may fuse a multiply-add), which 5 steps of
/// contractive dynamics do not amplify. 1e-12 leaves three decades above that; the
/// f32 builtins that GPU f64 used before fail it by five.
#[test]
fn f64_final_states_agree_to_f64_rounding() {
    let gpu = match GpuBackend::new(Precision::F64) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("skipping f64: {e}");
            return;
        }
    };
    let worst = cases()
        .iter()
        .map(|(m, s)| gpu_paths_against_cpu(&gpu, m, s, M, 1e-12))
        .fold(0.0, f64::max);
    eprintln!("worst f64 path deviation {worst:.2e}");
}

#[test]
fn final_states_agree_path_by_path() {
    let Some(gpu) = backend(None) else { return };
    for (m, s) in cases() {
        let worst = gpu_paths_against_cpu(&gpu, &m, &s, M, 1e-4);
        eprintln!("{:<60} worst rel err {worst:.1e}", label(&m, &s));
    }
}

#[test]
fn statistics_agree() {
    let Some(gpu) = backend(None) else { return };
    let cpu = CpuBackend::default();
    for (m, s) in cases() {
        let g = gpu
            .run(&m, &s, 0..M, &|_| {})
            .unwrap_or_else(|e| panic!("{}: {e:#}", label(&m, &s)));
        let c = cpu.run(&m, &s, 0..M, &|_| {}).unwrap();
        assert_eq!(g.len(), s.checkpoints.len() * s.observables.len());
        for (i, (a, b)) in g.iter().zip(&c).enumerate() {
            let what = format!(
                "{} checkpoint {} obs {}",
                label(&m, &s),
                i / s.observables.len(),
                s.observables[i % s.observables.len()]
            );
            assert_eq!((a.count, a.diverged), (b.count, b.diverged), "{what}");
            let (ma, mb) = (a.mean_se().0, b.mean_se().0);
            assert!(
                (ma - mb).abs() <= 1e-4 * (1.0 + mb.abs()),
                "{what}: mean gpu {ma} cpu {mb}"
            );
            let (ea, eb) = (a.solver_error().0, b.solver_error().0);
            assert!(
                (ea - eb).abs() <= 1e-4 * (1.0 + eb.abs()),
                "{what}: solver error gpu {ea} cpu {eb}"
            );
        }
    }
}

#[test]
fn divergence_is_counted_like_the_cpu() {
    let Some(gpu) = backend(None) else { return };
    let cpu = CpuBackend::default();
    let m = AnyModel::Multiplicative(Multiplicative::new(1, 1.0, 6.0));
    let mut s = spec(&m, Dynamics::Sgd, Solver::Exact, 1, 3);
    s.eta = 0.5;
    s.batch = 1;
    s.bound = 4.0;
    s.checkpoints = vec![1, 3, 6];
    let g = gpu.run(&m, &s, 0..M, &|_| {}).unwrap();
    let c = cpu.run(&m, &s, 0..M, &|_| {}).unwrap();
    let last = &c[c.len() - 1];
    assert!(
        last.diverged > 0 && last.count > 0,
        "test needs some diverged paths: {last:?}"
    );
    for (a, b) in g.iter().zip(&c) {
        assert_eq!((a.count, a.diverged), (b.count, b.diverged));
        let (ma, mb) = (a.mean_se().0, b.mean_se().0);
        assert!(
            (ma - mb).abs() <= 1e-4 * (1.0 + mb.abs()),
            "gpu {ma} cpu {mb}"
        );
    }
}

#[test]
fn results_do_not_depend_on_chunk_size() {
    let (Some(big), Some(small)) = (backend(None), backend(Some(64))) else {
        return;
    };
    let m = models()[1].clone();
    for s in [
        spec(&m, Dynamics::Sgd, Solver::Exact, 1, 3),
        spec(
            &m,
            Dynamics::Smf2,
            Solver::Substeps {
                substeps: 4,
                extrapolate: true,
            },
            1,
            3,
        ),
    ] {
        // An odd range: the last workgroup of the last chunk is partial.
        let a = big.run(&m, &s, 5..5 + 3 * 64 + 17, &|_| {}).unwrap();
        let b = small.run(&m, &s, 5..5 + 3 * 64 + 17, &|_| {}).unwrap();
        assert_eq!(a, b, "{}", label(&m, &s));
        assert_eq!(a[0].count, 3 * 64 + 17);
        let fa = big.final_states(&m, &s, 5..300).unwrap();
        let fb = small.final_states(&m, &s, 5..300).unwrap();
        assert_eq!(fa, fb);
    }
}

/// Throughput of 1-D SGD (b = 2) on whatever adapter is present; printed, not asserted
/// (`cargo test --release --test gpu_vs_cpu throughput -- --nocapture`).
#[test]
fn throughput_sgd_1d() {
    let Some(gpu) = backend(None) else { return };
    let m = models()[0].clone();
    let mut s = spec(&m, Dynamics::Sgd, Solver::Exact, 1, 3);
    s.checkpoints = vec![20, 40];
    s.observables = vec![Observable::Norm2(0)];
    let n = 1u64 << 20;
    gpu.run(&m, &s, 0..64, &|_| {}).unwrap(); // compile
    let t = Instant::now();
    let r = gpu.run(&m, &s, 0..n, &|_| {}).unwrap();
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(r[1].count + r[1].diverged, n);
    eprintln!(
        "gpu {}: 1-D sgd b=2, {n} replicas x 40 steps in {dt:.3}s = {:.3e} path-steps/s",
        gpu.adapter(),
        n as f64 * 40.0 / dt
    );
    let cpu = CpuBackend::default();
    let t = Instant::now();
    cpu.run(&m, &s, 0..n / 8, &|_| {}).unwrap();
    let dc = t.elapsed().as_secs_f64();
    eprintln!(
        "cpu reference: {:.3e} path-steps/s",
        (n / 8) as f64 * 40.0 / dc
    );
}
