//! llvmpipe cuts every shader invocation's loops off after 65 535 iterations in all and
//! carries on with wrong numbers (issue 9: gd over 100 000 steps gave
//! E x = (1 − 1e-5)^65535 = 0.519 instead of 0.368). The device layer measures the
//! limit when it opens a device (`Gpu::loop_limit`) and every GPU driver asks it how
//! many steps a dispatch may take. These runs go far beyond 65 535 steps in one segment
//! and must agree with the CPU path by path, for each kernel kind: discrete (gd, sgd),
//! ODE (RK4 with substeps and a coarse level), SDE (Euler–Maruyama with substeps and
//! three coupled levels, and the exact transition). On a hardware GPU (no limit) they
//! check the same agreement.
//!
//! Tolerance: each case runs in f32 and, where the adapter has it, f64 (normals via f32
//! log/cos, ~1e-7 relative). The dynamics are contractive (η·a ≥ 2e-5), so rounding
//! does not grow beyond ~6e-8/(η·a) relative: 5e-3 in f32, 1e-5 in f64. A run cut off
//! at 65 535 steps is ≥ 1.8e-2 away (gf: e^(−1.31) vs e^(−1.4); the random dynamics:
//! two nearly independent draws of an OU law of sd 0.16).

use nalgebra::{DMatrix, DVector};
use smflow::backend::cpu::CpuBackend;
use smflow::backend::gpu::GpuBackend;
use smflow::backend::{Backend, Precision};
use smflow::dynamics::{Dynamics, RunSpec, Solver};
use smflow::model::{vector, AnyModel, Quadratic};
use smflow::observables::Observable;

/// The GPU backend in f32 and, where the adapter has SHADER_F64, f64, with tolerances.
fn gpus() -> Vec<(GpuBackend, f64)> {
    let mut v = Vec::new();
    match GpuBackend::new(Precision::F32) {
        Ok(g) => v.push((g, 5e-3)),
        Err(e) => eprintln!("skipping: no wgpu adapter ({e})"),
    }
    if let Ok(g) = GpuBackend::new(Precision::F64) {
        v.push((g, 1e-5));
    }
    v
}

fn quadratic(a: f64, mean: f64, cov: f64) -> AnyModel {
    AnyModel::Quadratic(Quadratic::new(
        DMatrix::from_element(1, 1, a),
        DVector::from_element(1, mean),
        DMatrix::from_element(1, 1, cov),
    ))
}

fn spec(dynamics: Dynamics, solver: Solver, eta: f64, steps: u32) -> RunSpec {
    RunSpec {
        dynamics,
        eta,
        batch: 2,
        solver,
        x0: vec![vector(&[1.0])],
        checkpoints: vec![steps],
        observables: vec![Observable::X0(0)],
        stream: RunSpec::stream_tag(dynamics, 0),
        key: smflow::rng::key_from_seed(9),
        bound: 1e6,
        coupling: None,
        friction: 0.0,
    }
}

/// Final states of `paths` replicas on both backends, compared path by path.
fn agree(g: &GpuBackend, tol: f64, model: &AnyModel, s: &RunSpec, paths: u64) {
    let cpu = CpuBackend::default()
        .final_states(model, s, 0..paths)
        .unwrap();
    let gpu = g.final_states(model, s, 0..paths).unwrap();
    assert_eq!(cpu.len(), gpu.len());
    let worst = cpu
        .iter()
        .zip(&gpu)
        .map(|(c, g)| (c - g).abs() / (1.0 + c.abs()))
        .fold(0.0, f64::max);
    eprintln!(
        "{:?} {} ({} substeps, {} levels), {} steps: largest relative deviation {worst:.2e}",
        g.precision(),
        s.dynamics.name(),
        s.substeps(),
        s.levels(),
        s.steps()
    );
    assert!(
        worst <= tol,
        "{}: GPU departs from the CPU by {worst:.3e} (> {tol:e}) after {} steps",
        s.dynamics.name(),
        s.steps()
    );
}

/// The guard holds a job's other kernels (the small-d checkpoint reduction, each its
/// own dispatch) to the budget as well: a job whose reduction alone is beyond it is
/// refused, naming the reduction; within it, only `main`'s loop bounds the steps.
#[test]
fn a_reduction_beyond_the_budget_is_refused() {
    use smflow::backend::gpu::{device::Gpu, segments::StepLoop};
    let Ok(gpu) = Gpu::new(false) else {
        return eprintln!("skipping: no wgpu adapter");
    };
    let Some(limit) = gpu.loop_limit else {
        return eprintln!("skipping: {} cuts no loops off", gpu.info.name);
    };
    let job = |others| StepLoop::InKernel {
        per_step: 10,
        fixed: 0,
        others: (others, "the checkpoint reduction"),
        what: "one step of a test job",
    };
    let e = job(limit + 1).max_steps(&gpu).unwrap_err().to_string();
    assert!(
        e.contains("the checkpoint reduction of one step of a test job"),
        "{e}"
    );
    let (beside, alone) = (job(limit / 2).max_steps(&gpu), job(0).max_steps(&gpu));
    assert_eq!(beside.unwrap(), alone.unwrap());
}

/// The trainer's label draws (least_squares_risk's fresh labels, one Philox block per 4
/// samples in one invocation) are held to the budget too: with N = 20 000 samples the
/// run is refused before it starts, naming them, though `main`'s own loops fit.
#[test]
fn label_draws_beyond_the_budget_are_refused() {
    let Ok(gpu) = smflow::backend::gpu::device::Gpu::new(false) else {
        return eprintln!("skipping: no wgpu adapter");
    };
    if gpu.loop_limit.is_none() {
        return eprintln!("skipping: {} cuts no loops off", gpu.info.name);
    }
    let dir = std::env::temp_dir().join(format!("smflow-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("labels.json");
    std::fs::write(
        &cfg,
        r#"{"experiment": "least_squares_risk", "name": "labels",
            "data": {"source": "generate", "n": 20000, "d": 1, "label_noise": 1.0,
                     "teacher_scale": 0.3},
            "model": {"param": "linear"}, "dynamics": ["sgd"], "etas": [0.05],
            "batch": 5, "horizon": 0.1, "checkpoints": [0.1], "paths": 64}"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smflow"))
        .args([
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            "gpu",
            "--quiet",
            "--out",
        ])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ran: {err}");
    assert!(err.contains("the label draws of one step of sgd"), "{err}");
    assert!(!dir.join("out").join("results.json").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn probe_sees_the_software_limit() {
    for (g, _) in gpus() {
        eprintln!(
            "loop limit: {:?} (software: {})",
            g.loop_limit(),
            g.is_software()
        );
        if g.adapter().contains("llvmpipe") {
            assert_eq!(g.loop_limit(), Some(65_535));
        }
    }
}

/// The issue's case: gd on a = 0.01, η = 0.001, horizon 100: x = (1 − 1e-5)^100000.
#[test]
fn gd_beyond_the_limit_matches_the_closed_form() {
    let m = quadratic(0.01, 0.0, 1.0);
    let s = spec(Dynamics::Gd, Solver::Exact, 0.001, 100_000);
    let exact = (1.0f64 - 1e-5).powi(100_000);
    for (g, tol) in gpus() {
        let x = g.final_states(&m, &s, 0..1).unwrap()[0];
        assert!(
            (x - exact).abs() <= tol * exact,
            "gd after 100 000 steps: {x} (exact {exact}; a cut at 65 535 steps gives {})",
            (1.0f64 - 1e-5).powi(65_535)
        );
        agree(&g, tol, &m, &s, 1);
    }
}

/// Random dynamics: an OU-like law of sd 0.16 (a = 0.1, cov = 100, b = 2, η = 0.01).
fn noisy() -> AnyModel {
    quadratic(0.1, 0.5, 100.0)
}

#[test]
fn sgd_beyond_the_limit_matches_the_cpu() {
    for (g, tol) in gpus() {
        agree(
            &g,
            tol,
            &noisy(),
            &spec(Dynamics::Sgd, Solver::Exact, 0.01, 70_000),
            64,
        );
    }
}

#[test]
fn ode_with_substeps_beyond_the_limit_matches_the_cpu() {
    let m = quadratic(0.02, 0.0, 1.0);
    let rk4 = Solver::Substeps {
        substeps: 4,
        extrapolate: false,
    };
    for (g, tol) in gpus() {
        for dy in [Dynamics::Gf, Dynamics::Mgf] {
            agree(&g, tol, &m, &spec(dy, rk4, 0.001, 70_000), 1);
        }
    }
}

#[test]
fn sde_with_substeps_beyond_the_limit_matches_the_cpu() {
    let em = Solver::Substeps {
        substeps: 8,
        extrapolate: true,
    };
    for (g, tol) in gpus() {
        for (dy, solver) in [
            (Dynamics::Sme2, em),
            (Dynamics::Smf1, em),
            (Dynamics::Sme1, Solver::Exact),
        ] {
            agree(&g, tol, &noisy(), &spec(dy, solver, 0.01, 70_000), 64);
        }
    }
}
