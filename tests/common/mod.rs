//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cases;

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
