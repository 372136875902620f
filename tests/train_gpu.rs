//! The GPU trainer against the CPU reference (`train::ops::Replica`), path by path:
//! every parametrisation × every dynamics, both minibatch samplings, shared and
//! per-replica labels, Gain tracking for gd/sgd; f64 mode; independence of the chunk
//! size; divergence handled alike. Runs on any wgpu adapter (llvmpipe in CI); skipped
//! with a note where there is none. The composed kernels are also validated by naga
//! (no adapter needed).
//!
//! Tolerances. Deviation of a row block (w, or Gain) = max |gpu − cpu| / max |cpu| over
//! the block (scale floored at 1e-6). In f32 the data are rounded once (6e-8), every
//! step rounds (D = 5, N = 24 term sums), and the normals from the f32
//! log/sin/cos differ from the f64 ones by ≲ 3e-6 absolute; over ≤ 10 contractive
//! steps the measured deviations are ~1e-6, and we assert 1e-4 (a wrong draw, index or
//! update changes rows by O(η) ≈ 1e-2 relative or more). In f64 Box–Muller's ln and
//! sincos are the CPU's algorithms (shaders/common/math_f64.wgsl), so random normals
//! (SDE increments, per-replica labels) equal the CPU's to f64 rounding: we assert
//! 1e-11 there (the f32 builtins GPU f64 used before gave ~1e-7) and 1e-12 for paths
//! that use no normals (gd/sgd/gf/mgf on shared labels).

use smflow::backend::rows::RowEngine;
use smflow::backend::Precision;
use smflow::data::sampling::Sampling;
use smflow::data::{generate, DataSet, GenerateConfig};
use smflow::train::cpu::CpuTrainer;
use smflow::train::gpu::{compose, GpuTrainer};
use smflow::train::net::{DeepLinear, Param};
use smflow::train::{Dynamics, TrainJob, Trainer, Update};
use std::sync::Arc;

const F32_TOL: f64 = 1e-4;
const F64_TOL_NORMALS: f64 = 1e-11;
const F64_TOL_EXACT: f64 = 1e-12;

fn data() -> Arc<DataSet> {
    Arc::new(generate(
        &GenerateConfig {
            n: 24,
            d: 5,
            sparsity: Some(3),
            teacher_scale: 1.0,
            label_noise: 0.3,
            seed: None,
            labels: Default::default(),
        },
        7,
    ))
}

/// A deep linear network (dense Jacobian: train.wgsl's DENSE path), p = 16 at d = 5
/// (row and scratch small enough for private arrays).
const DEEP: Param = Param::DeepLinear(DeepLinear { depth: 3, width: 2 });

/// A deeper, wider one (p = 41), for the storage-resident path.
const DEEPER: Param = Param::DeepLinear(DeepLinear { depth: 4, width: 3 });

/// Every dynamics the trainer runs.
const ALL: [Dynamics; 11] = smflow::train::SUPPORTED;

fn job(
    data: &Arc<DataSet>,
    param: Param,
    dynamics: Dynamics,
    sampling: Sampling,
    resample: bool,
) -> TrainJob {
    let d = data.d;
    // The deep net's gradient carries a product of L − 1 layers: at scale 1 its
    // slowest dynamics (msme1, from rest) still moves its paths far beyond the f32
    // tolerance within the checkpoints.
    let alpha = if matches!(param, Param::DeepLinear(_)) {
        1.0
    } else {
        0.6
    };
    let mut w0 = param.init(d, alpha);
    for (i, w) in w0.iter_mut().enumerate() {
        *w += 0.1 * (i as f64 + 1.0).sin();
    }
    let discrete = matches!(dynamics.update(), Update::Discrete { .. });
    TrainJob {
        data: data.clone(),
        param,
        loss: Default::default(),
        dynamics,
        eta: 0.05,
        friction: 1.5,
        coarsen: 1,
        batch: 3,
        sampling,
        substeps: 3,
        // 10 sgd steps of b = 3 cross an epoch of N = 24 (Epochs sampling).
        checkpoints: if discrete {
            vec![0, 4, 10]
        } else {
            vec![0, 2, 5]
        },
        w0,
        key: [0x1234_5678, 0x9ABC_DEF0],
        stream: dynamics.code() << 24 | 3,
        resample_labels: resample,
        track_gain: discrete,
        bound: 1e6,
    }
}

fn gpu(p: Precision, chunk: Option<u64>) -> Option<GpuTrainer> {
    let t = match chunk {
        Some(c) => GpuTrainer::with_chunk(p, c),
        None => GpuTrainer::new(p),
    };
    match t {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("skipping: no wgpu adapter for {p:?} ({e})");
            None
        }
    }
}

/// rows[c] = all replicas' rows at checkpoint c, concatenated in replica order.
fn rows(t: &dyn Trainer, j: &TrainJob, r: std::ops::Range<u64>) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); j.checkpoints.len()];
    let mut next = vec![r.start; j.checkpoints.len()];
    t.train(j, r.clone(), &mut |c, first, rows| {
        assert_eq!(first, next[c], "blocks out of order");
        next[c] += (rows.len() / j.row_len()) as u64;
        out[c].extend_from_slice(rows);
    })
    .unwrap();
    for c in &next {
        assert_eq!(*c, r.end, "not every replica reported");
    }
    out
}

/// Max relative deviation of the blocks (w, Gain) over all rows and checkpoints; NaN
/// rows must coincide.
fn deviation(j: &TrainJob, a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (p, len) = (j.p(), j.row_len());
    let mut worst = 0f64;
    for (ca, cb) in a.iter().zip(b) {
        assert_eq!(ca.len(), cb.len());
        for (ra, rb) in ca.chunks(len).zip(cb.chunks(len)) {
            let (na, nb) = (
                smflow::train::is_diverged(ra),
                smflow::train::is_diverged(rb),
            );
            assert_eq!(na, nb, "divergence differs: {ra:?} vs {rb:?}");
            if na {
                assert!(ra.iter().chain(rb).all(|v| v.is_nan()));
                continue;
            }
            for (lo, hi) in [(0, p), (p, len)] {
                if lo == hi {
                    continue;
                }
                let scale = rb[lo..hi]
                    .iter()
                    .fold(0f64, |m, v| m.max(v.abs()))
                    .max(1e-6);
                for c in lo..hi {
                    worst = worst.max((ra[c] - rb[c]).abs() / scale);
                }
            }
        }
    }
    worst
}

fn label(j: &TrainJob) -> String {
    format!(
        "{} {} {:?} resample={} gain={}",
        j.param.name(),
        j.dynamics.name(),
        j.sampling,
        j.resample_labels,
        j.track_gain
    )
}

/// Every parametrisation × dynamics (× sampling for sgd), labels shared or resampled
/// (`all_labels`: both; else alternating, so that each dynamics and each
/// parametrisation still meets both: every case is one kernel to compile, ~0.3–0.5 s
/// on llvmpipe with a cold shader cache).
fn cases(data: &Arc<DataSet>, all_labels: bool) -> Vec<TrainJob> {
    let mut v = Vec::new();
    for (pi, param) in [Param::Linear, Param::Uv, Param::PlusMinus, DEEP]
        .into_iter()
        .enumerate()
    {
        for (di, dynamics) in ALL.into_iter().enumerate() {
            let samplings: &[Sampling] = if dynamics == Dynamics::Sgd {
                &[Sampling::Replacement, Sampling::Epochs]
            } else {
                &[Sampling::Replacement]
            };
            for &s in samplings {
                for resample in [false, true] {
                    if all_labels || resample == ((pi + di) % 2 == 0) {
                        v.push(job(data, param, dynamics, s, resample));
                    }
                }
            }
        }
    }
    // Gain off, for once.
    let mut j = job(data, Param::Uv, Dynamics::Sgd, Sampling::Replacement, false);
    j.track_gain = false;
    v.push(j);
    v
}

#[test]
fn composed_kernels_validate() {
    let data = data();
    for j in cases(&data, true) {
        for (p, int64) in [
            (Precision::F32, false),
            (Precision::F32, true),
            (Precision::F64, false),
        ] {
            let src = compose(&j, p, int64, if int64 { 0 } else { 4096 });
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{}: {}", label(&j), e.emit_to_string(&src)));
            let mut caps = naga::valid::Capabilities::empty();
            if p == Precision::F64 {
                caps |= naga::valid::Capabilities::FLOAT64;
            }
            if int64 {
                caps |= naga::valid::Capabilities::SHADER_INT64;
            }
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}: {}", label(&j), e.emit_to_string(&src)));
        }
    }
}

fn compare_all(p: Precision) {
    let Some(g) = gpu(p, None) else { return };
    let cpu = CpuTrainer::default();
    let data = data();
    let mut report = Vec::new();
    for j in cases(&data, false) {
        let want = rows(&cpu, &j, 5..75);
        let got = rows(&g, &j, 5..75);
        let dev = deviation(&j, &got, &want);
        let normals = j.resample_labels || matches!(j.dynamics.update(), Update::Sde { .. });
        let tol = match p {
            Precision::F32 => F32_TOL,
            Precision::F64 if normals => F64_TOL_NORMALS,
            Precision::F64 => F64_TOL_EXACT,
        };
        report.push(format!("{:<50} {dev:.2e}", label(&j)));
        assert!(
            dev <= tol,
            "{} ({p:?}): max relative deviation {dev:e} > {tol:e}",
            label(&j)
        );
        // The test can fail: the paths move (rows at the last checkpoint differ from
        // w0 by far more than the tolerance).
        let last = want.last().unwrap();
        let moved = last
            .chunks(j.row_len())
            .map(|r| {
                r[..j.p()]
                    .iter()
                    .zip(&j.w0)
                    .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
            })
            .fold(f64::INFINITY, f64::min);
        assert!(
            moved > 1e2 * tol,
            "{}: paths barely move ({moved:e})",
            label(&j)
        );
    }
    eprintln!("{p:?} max relative deviations:\n{}", report.join("\n"));
}

#[test]
fn gpu_matches_cpu_path_by_path_f32() {
    compare_all(Precision::F32);
}

#[test]
fn gpu_matches_cpu_path_by_path_f64() {
    compare_all(Precision::F64);
}

#[test]
fn rows_do_not_depend_on_chunk_size() {
    let data = data();
    let (Some(a), Some(b)) = (gpu(Precision::F32, Some(64)), gpu(Precision::F32, None)) else {
        return;
    };
    for j in [
        job(&data, Param::Uv, Dynamics::Sgd, Sampling::Epochs, true),
        job(
            &data,
            Param::PlusMinus,
            Dynamics::Smf2,
            Sampling::Replacement,
            false,
        ),
    ] {
        let ra = rows(&a, &j, 3..200);
        let rb = rows(&b, &j, 3..200);
        for (x, y) in ra.iter().zip(&rb) {
            assert!(
                x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{}: rows differ between chunk sizes 64 and {}",
                label(&j),
                200
            );
        }
    }
}

#[test]
fn diverged_replicas_are_nan_on_both() {
    let Some(g) = gpu(Precision::F32, None) else {
        return;
    };
    let cpu = CpuTrainer::default();
    let data = data();
    let mut j = job(
        &data,
        Param::Uv,
        Dynamics::Sme1,
        Sampling::Replacement,
        true,
    );
    j.eta = 0.2;
    // A bound between two replicas' excursions at the middle checkpoint, far from
    // both (relative gap ≫ f32 deviations), so about half the replicas diverge there.
    let r = 0..64u64;
    let mid = rows(&cpu, &j, r.clone())[1].clone();
    let mut peaks: Vec<f64> = mid
        .chunks(j.row_len())
        .map(|row| row[..j.p()].iter().fold(0f64, |m, v| m.max(v.abs())))
        .collect();
    peaks.sort_by(f64::total_cmp);
    let (i, gap) = (20..44)
        .map(|i| (i, peaks[i + 1] / peaks[i]))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(gap > 1.001, "replicas' peaks too close to split: {peaks:?}");
    j.bound = (peaks[i] * peaks[i + 1]).sqrt();
    let want = rows(&cpu, &j, r.clone());
    let got = rows(&g, &j, r);
    let dead = |rs: &[f64]| {
        rs.chunks(j.row_len())
            .filter(|x| smflow::train::is_diverged(x))
            .count()
    };
    assert_eq!(dead(&want[1]), 64 - (i + 1));
    // Diverged at the middle checkpoint stays NaN at the last one.
    assert!(dead(&want[2]) >= dead(&want[1]));
    assert!(deviation(&j, &got, &want) <= F32_TOL);
}

/// Throughput of SGD (N = 1000, d = 100, b = 10, 4096 replicas × 200 steps), GPU vs
/// CPU: `cargo test --test train_gpu -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_sgd_gpu_vs_cpu() {
    let cpu = smflow::train::bench_sgd(&CpuTrainer::default(), 1000, 100, 10, 4096, 200).unwrap();
    eprintln!("cpu: {cpu:.3e} path-steps/s");
    if let Some(g) = gpu(Precision::F32, None) {
        let rate = smflow::train::bench_sgd(&g, 1000, 100, 10, 4096, 200).unwrap();
        eprintln!("gpu ({}): {rate:.3e} path-steps/s", g.adapter());
    }
}

/// The storage-resident path (rows and scratch in storage buffers, used for large
/// replicas) against the CPU, for a spread of dynamics.
#[test]
fn storage_resident_rows_match_cpu() {
    let Some(mut g) = gpu(Precision::F32, None) else {
        return;
    };
    g.set_private_max(0);
    let cpu = CpuTrainer::default();
    let data = data();
    for (param, dynamics, s, resample) in [
        (Param::Uv, Dynamics::Gd, Sampling::Replacement, true),
        (Param::PlusMinus, Dynamics::Sgd, Sampling::Epochs, false),
        (Param::Linear, Dynamics::Sgd, Sampling::Replacement, true),
        (Param::Uv, Dynamics::Mgf, Sampling::Replacement, false),
        (
            Param::PlusMinus,
            Dynamics::Smf2,
            Sampling::Replacement,
            true,
        ),
        (Param::Uv, Dynamics::Sgf, Sampling::Replacement, false),
        (DEEPER, Dynamics::Sme2, Sampling::Replacement, false),
        (DEEPER, Dynamics::Msgd, Sampling::Epochs, true),
        (DEEPER, Dynamics::Msme1, Sampling::Replacement, true),
        (DEEPER, Dynamics::Smf2, Sampling::Replacement, false),
    ] {
        let j = job(&data, param, dynamics, s, resample);
        let dev = deviation(&j, &rows(&g, &j, 0..70), &rows(&cpu, &j, 0..70));
        eprintln!("storage-resident {:<50} {dev:.2e}", label(&j));
        assert!(dev <= F32_TOL, "{}: {dev:e}", label(&j));
    }
}

/// Regression: llvmpipe stops an invocation after 65 535 loop iterations in all and
/// carries on with wrong numbers; a 20-step full-batch run at N = 100, d = 50 (~2·10⁵
/// iterations) must still match the CPU (the driver bounds steps per dispatch), and a
/// job whose single step is beyond the limit must be refused, not run.
#[test]
fn long_full_batch_runs_survive_llvmpipes_loop_limit() {
    let Some(t) = gpu(Precision::F32, None) else {
        return;
    };
    let mk = |n: usize, d: usize| {
        let data = smflow::data::generate(
            &smflow::data::GenerateConfig {
                n,
                d,
                sparsity: None,
                teacher_scale: 1.0,
                label_noise: 1.0,
                seed: None,
                labels: Default::default(),
            },
            1,
        );
        TrainJob {
            param: Param::Linear,
            loss: Default::default(),
            w0: vec![0.0; d],
            data: std::sync::Arc::new(data),
            dynamics: Dynamics::Gd,
            eta: 0.05,
            friction: 1.5,
            coarsen: 1,
            batch: 1,
            sampling: Sampling::Replacement,
            substeps: 1,
            checkpoints: vec![20],
            key: [1, 2],
            stream: 0,
            resample_labels: false,
            track_gain: false,
            bound: 1e6,
        }
    };
    let job = mk(100, 50);
    let run = |tr: &dyn Trainer| {
        let mut out = Vec::new();
        tr.train(&job, 0..1, &mut |_, _, r| out = r.to_vec())
            .unwrap();
        out
    };
    let (c, g) = (run(&smflow::train::cpu::CpuTrainer::default()), run(&t));
    let scale = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let dev = c
        .iter()
        .zip(&g)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(dev <= 1e-4 * scale, "deviation {dev} (scale {scale})");
    if t.is_software() {
        let big = mk(1000, 100);
        let err = t.train(&big, 0..1, &mut |_, _, _| {}).unwrap_err();
        assert!(format!("{err:#}").contains("--backend cpu"), "{err:#}");
    }
}

/// The coupled coarse levels (`TrainJob::coarsen`) of every SDE the trainer runs, on
/// every parametrisation: the GPU sums the fine normals as the CPU does.
#[test]
fn coarse_levels_match_cpu_path_by_path() {
    let ds = data();
    for (p, tol) in [(Precision::F32, F32_TOL), (Precision::F64, F64_TOL_NORMALS)] {
        let Some(g) = gpu(p, None) else { continue };
        for param in [Param::Linear, Param::Uv, Param::PlusMinus] {
            for dynamics in [
                Dynamics::Sme1,
                Dynamics::Sme2,
                Dynamics::Sgf,
                Dynamics::Msme1,
            ] {
                let mut j = job(&ds, param, dynamics, Sampling::Replacement, false);
                j.track_gain = false;
                j.substeps = 4;
                let fine = rows(&CpuTrainer::default(), &j, 0..5);
                for c in [2, 4] {
                    j.coarsen = c;
                    let cpu = rows(&CpuTrainer::default(), &j, 0..5);
                    let dev = deviation(&j, &rows(&g, &j, 0..5), &cpu);
                    assert!(dev < tol, "{p:?} {} coarsen {c}: {dev:e}", label(&j));
                    // A level of its own: it moved away from the fine one.
                    assert!(
                        deviation(&j, &fine, &cpu) > 1e-3,
                        "{} coarsen {c}",
                        label(&j)
                    );
                }
            }
        }
    }
}
