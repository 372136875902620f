//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod bad_config;
pub mod cases;
pub mod train;

use smflow::backend::cpu::CpuBackend;
use smflow::backend::gpu::GpuBackend;
use smflow::backend::{Backend, Precision};
use smflow::experiment::config::{parse, Checked};
use smflow::experiment::{analyze, execute, plan, Collected, RunMeta, Shard};
use smflow::output::report::Report;

/// The CPU backend (the f64 reference and the f32 option), plus the GPU one when an
/// adapter exists (llvmpipe in CI).
pub fn backends() -> Vec<Box<dyn Backend>> {
    let mut v: Vec<Box<dyn Backend>> = vec![
        Box::new(CpuBackend::default()),
        Box::new(CpuBackend::with_precision(Precision::F32)),
    ];
    match GpuBackend::new(Precision::F32) {
        Ok(g) => v.push(Box::new(g)),
        Err(e) => eprintln!("skipping the gpu backend: no wgpu adapter ({e:#})"),
    }
    v
}

pub fn checked(json: &str) -> Checked {
    parse(json, "test").unwrap_or_else(|e| panic!("config rejected: {e}"))
}

pub fn collect(ck: &Checked, backend: &dyn Backend, shard: Shard) -> Collected {
    execute(&plan(ck), backend, shard, &|_| {}).expect("run succeeds")
}

pub fn report(ck: &Checked, backend: &dyn Backend) -> Report {
    let meta = RunMeta {
        backend: backend.name().into(),
        adapter: backend.adapter(),
        precision: "test".into(),
        shard: None,
    };
    analyze(&plan(ck), &collect(ck, backend, Shard::WHOLE), &meta)
}

/// Every point of `json`'s weak_order study that has a closed form matches it on every
/// backend, within 4 standard errors plus the solver's 95% error bound (and 1e-6
/// relative); at least `min_points` points have one; no path diverged.
pub fn assert_matches_exact(json: &str, min_points: usize) {
    let ck = checked(json);
    for b in backends() {
        let r = report(&ck, b.as_ref());
        let mut n = 0;
        for p in &r.points {
            let Some(exact) = p.exact else { continue };
            let solver = p
                .solver_error
                .map_or(0.0, |e| e.abs() + 2.0 * p.solver_error_stderr.unwrap());
            let tol = 4.0 * p.stderr + solver + 1e-6 * (1.0 + exact.abs());
            assert!(
                (p.mean - exact).abs() <= tol,
                "{}: {} η={} t={} {}: mean {} vs exact {} (|Δ| = {:.3e} > tol {:.3e}, se {:.3e})",
                b.adapter(),
                p.dynamics,
                p.eta,
                p.t,
                p.observable,
                p.mean,
                exact,
                (p.mean - exact).abs(),
                tol,
                p.stderr
            );
            assert_eq!(p.diverged, 0);
            n += 1;
        }
        assert!(
            n >= min_points,
            "{}: only {n} points had closed forms",
            b.adapter()
        );
    }
}

/// `smflow run` of the config `text` on the CPU, quietly: the config is written to
/// `dir/<name>.json`, the outputs go to `dir/<name>/`, which is returned. Panics with the
/// program's stderr unless it succeeds.
pub fn run_cpu(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let cfg = dir.join(format!("{name}.json"));
    std::fs::write(&cfg, text).unwrap();
    let out = dir.join(name);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_smflow"))
        .args([
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}
