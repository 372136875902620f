//! Criterion benchmarks: path-steps per second of the backends on the `smflow bench`
//! jobs (1-D Gaussian sgd, b = 2, 40 steps; sme2 by Euler–Maruyama, 32 substeps), at
//! sizes small enough for criterion's repeated sampling. `smflow bench` measures the
//! full-size jobs once; benches/README.md records both against the numpy baseline.
//! `mf_drift`: one replica's mean-field drift (tanh, d = 16, B = 8) at n = 2^10 and
//! 2^16, the lane kernels against the scalar reference, in neuron-steps (elements).
//! `normals`: the batched generator `rng::fill_normals` in normals per second, at the
//! step sizes its callers use (1: a 1-D path; 17: a mean-field neuron's d + 1 initial
//! draws at d = 16; 136: a mean-field batch, B(d + 1)).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smflow::backend::cpu::CpuBackend;
use smflow::backend::gpu::GpuBackend;
use smflow::backend::{Backend, Precision};
use smflow::experiment::config::parse;
use smflow::experiment::{execute, plan, total_work, Shard};

fn job(dynamics: &str, paths: u64) -> smflow::experiment::Plan {
    let cfg = format!(
        r#"{{"experiment":"weak_order","model":{{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]}},
        "x0":[1.0],"dynamics":["{dynamics}"],"batch":2,"etas":[0.05],"horizon":2.0,"observables":["norm2"],
        "paths":{paths},"sde":{{"substeps":32,"extrapolate":false}},"seed":7}}"#
    );
    plan(&parse(&cfg, "bench").expect("bench config"))
}

fn bench_backend(c: &mut Criterion, name: &str, backend: &dyn Backend, paths: u64) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    for (dynamics, n) in [("sgd", paths), ("sme2", paths / 16)] {
        let p = job(dynamics, n);
        g.throughput(Throughput::Elements(total_work(&p, Shard::WHOLE) as u64));
        g.bench_function(dynamics, |b| {
            b.iter(|| execute(&p, backend, Shard::WHOLE, &|_| {}).expect("run"))
        });
    }
    g.finish();
}

fn throughput(c: &mut Criterion) {
    bench_backend(c, "cpu", &CpuBackend::default(), 1 << 17);
    match GpuBackend::new(Precision::F32) {
        Ok(gpu) => bench_backend(c, "gpu", &gpu, 1 << 20),
        Err(e) => eprintln!("no gpu adapter, skipping: {e:#}"),
    }
}

fn mf_drift(c: &mut Criterion) {
    use smflow::meanfield::drift::{drift, DriftScratch};
    use smflow::meanfield::{bench_job, fill_batch, Batch};
    let mut g = c.benchmark_group("mf_drift");
    g.sample_size(20);
    for width in [1usize << 10, 1 << 16] {
        let job = bench_job(width, 1);
        let z = smflow::meanfield::cpu::Net::new(&job, 0).z;
        let (mut batch, mut scratch) = (Batch::default(), Vec::new());
        fill_batch(&job, 0, 0, 0, &mut batch, &mut scratch);
        let mut delta = vec![0.0; z.len()];
        g.throughput(Throughput::Elements(width as u64));
        for (name, reference) in [("lanes", false), ("reference", true)] {
            let mut w = DriftScratch::default();
            w.reference = reference;
            g.bench_function(format!("{name}_n{width}"), |b| {
                b.iter(|| drift(job.act, &z, job.d, &batch, &mut w, &mut delta))
            });
        }
    }
    g.finish();
}

fn normals(c: &mut Criterion) {
    let key = smflow::rng::key_from_seed(7);
    let mut g = c.benchmark_group("normals");
    g.sample_size(20);
    for per_step in [1usize, 17, 136] {
        let n_steps = (1 << 16) / per_step;
        let mut out = vec![0.0; n_steps * per_step];
        g.throughput(Throughput::Elements(out.len() as u64));
        g.bench_function(format!("per_step_{per_step}"), |b| {
            b.iter(|| smflow::rng::fill_normals(key, 3, 5, 0, n_steps, per_step, &mut out))
        });
    }
    g.finish();
}

/// The host's fold of the small-d GPU driver's per-workgroup partials at a checkpoint
/// (`driver::fold_partials`), for one 2^22-replica chunk and one statistic: on one
/// thread and on all of them, in workgroups (of 64 paths) per second. A GPU waits for
/// it at every checkpoint.
fn fold(c: &mut Criterion) {
    use smflow::backend::gpu::driver::{fold_partials, WORKGROUP};
    let lanes = 0..1u64 << 22;
    let groups = (lanes.end / WORKGROUP) as usize;
    let vals: Vec<f64> = (0..groups * 5)
        .map(|i| {
            if i % 5 == 0 {
                64.0
            } else {
                (i as f64).sin() * 1e3
            }
        })
        .collect();
    let mut g = c.benchmark_group("fold_partials");
    g.sample_size(20);
    g.throughput(Throughput::Elements(groups as u64));
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    g.bench_function("one_thread", |b| {
        b.iter(|| one.install(|| fold_partials(&vals, 5, 1, lanes.clone())))
    });
    g.bench_function("all_threads", |b| {
        b.iter(|| fold_partials(&vals, 5, 1, lanes.clone()))
    });
    g.finish();
}

/// The transposition of a chunk's state read back column by column into per-replica rows
/// (`driver::rows_of_columns`: the trainer's rows at every checkpoint, final states), for
/// 2^16 replicas of 128 values: the blocked, parallel version against the replica-by-
/// replica loop it replaced, in values per second.
fn transpose(c: &mut Criterion) {
    use smflow::backend::gpu::driver::rows_of_columns;
    let (cap, len) = (1usize << 16, 128);
    let vals: Vec<f64> = (0..cap * len).map(|i| i as f64).collect();
    let mut g = c.benchmark_group("rows_of_columns");
    g.sample_size(20);
    g.throughput(Throughput::Elements((cap * len) as u64));
    g.bench_function("replica_by_replica", |b| {
        b.iter(|| {
            let mut rows = vec![0.0; cap * len];
            for (r, row) in rows.chunks_exact_mut(len).enumerate() {
                for (q, v) in row.iter_mut().enumerate() {
                    *v = vals[q * cap + r];
                }
            }
            rows
        })
    });
    g.bench_function("blocked", |b| {
        b.iter(|| rows_of_columns(&vals, cap, 0..cap, len))
    });
    g.finish();
}

criterion_group!(benches, throughput, mf_drift, normals, fold, transpose);
criterion_main!(benches);
