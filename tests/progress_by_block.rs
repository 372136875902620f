//! Progress of the finite-data and mean-field experiments moves as blocks of replicas
//! reach checkpoints (not only when a whole job ends), and adds up to exactly the job's
//! work, on the CPU and (where there is an adapter) the GPU.

use smflow::experiment::training::config::{check as check_training, TrainConfig};
use smflow::experiment::training::{collect_with as train_collect, job as train_job};
use smflow::experiment::width_sweep::config::{check as check_sweep, WidthSweepConfig};
use smflow::experiment::width_sweep::{collect_with as mf_collect, job as mf_job};
use smflow::meanfield::cpu::CpuMeanField;
use smflow::meanfield::gpu::GpuMeanField;
use smflow::meanfield::{Dynamics as MfDynamics, MeanFieldBackend};
use smflow::train::cpu::CpuTrainer;
use smflow::train::gpu::GpuTrainer;
use smflow::train::{Dynamics, Trainer};
use std::cell::RefCell;

/// Calls and their sum of the progress a run reports.
fn tally(run: impl FnOnce(&dyn Fn(f64))) -> (usize, f64) {
    let seen = RefCell::new((0usize, 0.0f64));
    run(&|w| {
        let mut s = seen.borrow_mut();
        s.0 += 1;
        s.1 += w;
    });
    seen.into_inner()
}

#[test]
fn trainer_progress_moves_per_block_and_checkpoint_and_sums_to_the_job() {
    let cfg: TrainConfig = serde_json::from_str(
        r#"{"experiment": "implicit_bias_sweep",
            "data": {"source": "generate", "n": 20, "d": 6, "sparsity": 2},
            "model": {"param": "uv", "alpha": 0.1},
            "dynamics": ["sgd"], "etas": [0.05], "horizon": 2,
            "checkpoints": [0.5, 1, 1.5], "paths": 200}"#,
    )
    .unwrap();
    let s = check_training(cfg, "t").unwrap();
    let j = train_job(&s, 0, Dynamics::Sgd, 0.05, 0);
    let reps = 200;
    let mut trainers: Vec<Box<dyn Trainer>> = vec![Box::new(CpuTrainer {
        block: 64,
        ..CpuTrainer::default()
    })];
    match GpuTrainer::with_chunk(smflow::backend::Precision::F32, 64) {
        Ok(g) => trainers.push(Box::new(g)),
        Err(e) => eprintln!("skipping the GPU: {e}"),
    }
    for t in &trainers {
        let (calls, sum) = tally(|p| {
            train_collect(t.as_ref(), &j, reps, p).unwrap();
        });
        let want = j.path_steps() * reps as f64;
        assert_eq!(
            sum,
            want,
            "{}: progress {sum} vs the job's {want}",
            t.name()
        );
        // 4 checkpoints × ≥ 4 blocks of ≤ 64 replicas.
        assert!(calls >= 16, "{}: {calls} progress calls", t.name());
    }
}

#[test]
fn width_sweep_progress_moves_per_block_and_checkpoint_and_sums_to_the_job() {
    let cfg: WidthSweepConfig = serde_json::from_str(
        r#"{"experiment": "width_sweep",
            "model": {"kind": "two_layer", "activation": "tanh", "d": 4,
                      "teacher": {"neurons": 3, "a_scale": 2.0, "seed": 5},
                      "init": {"a_mean": 0.0, "a_std": 1.0, "w_std": 1.0}},
            "data": {"kind": "set", "n": 32, "label_noise": 0.1},
            "widths": [16], "dynamics": ["sgd"], "etas": [0.1],
            "batch": 2, "horizon": 1.0, "checkpoints": [0.3, 0.6], "paths": 100,
            "seed": 3}"#,
    )
    .unwrap();
    let s = check_sweep(cfg, "t").unwrap();
    let j = mf_job(&s, MfDynamics::Sgd, 0, 16);
    let mut backends: Vec<Box<dyn MeanFieldBackend>> = vec![Box::new(CpuMeanField {
        block: 32,
        ..CpuMeanField::default()
    })];
    match GpuMeanField::with_chunk(smflow::backend::Precision::F32, 32) {
        Ok(g) => backends.push(Box::new(g)),
        Err(e) => eprintln!("skipping the GPU: {e}"),
    }
    for b in &backends {
        let (calls, sum) = tally(|p| {
            mf_collect(b.as_ref(), &j, 100, p).unwrap();
        });
        let want = j.work() * 100.0;
        assert!(
            (sum - want).abs() <= 1e-9 * want,
            "{}: progress {sum} vs the job's {want}",
            b.name()
        );
        // ≥ 3 checkpoints × 4 blocks of ≤ 32 replicas.
        assert!(calls >= 12, "{}: {calls} progress calls", b.name());
    }
}
