//! `smflow compare` for the finite-data experiments: the experiment runs as `smflow run`
//! would, on a sample of replicas (`--sample`, at most the config's paths), through a
//! trainer that hands every call to the CPU trainer (f64, whose rows the experiment goes
//! on with) and to the GPU trainer, and compares the two calls' rows at every
//! checkpoint coordinate by coordinate. So every job the experiment runs is compared:
//! each (data set, dynamics, η) run, the coupled coarse solver levels, gd_vs_gf's gf,
//! mgf and GD(η/r) runs, implicit_bias_sweep's gradient-flow continuation. Both
//! trainers follow the same Philox draws, so differences are float rounding (amplified
//! only where the dynamics is unstable). Exits with 1 when a deviation exceeds the
//! tolerance; a call the GPU refuses (llvmpipe's loop limit) is listed as skipped.

use super::compare::{level_note, CompareArgs, Deviation, PathTally};
use super::Failure;
use crate::backend::rows::{Block, RowEngine, RowSink};
use crate::experiment::training::config::check;
use crate::experiment::training::{dataset_of_stream, execute};
use crate::train::cpu::CpuTrainer;
use crate::train::gpu::GpuTrainer;
use crate::train::{is_diverged, TrainJob, Trainer};
use std::cell::{Cell, RefCell};
use std::ops::Range;

/// Largest |g − c| / (1 + |c|) over rows both backends kept finite, and the number of
/// rows diverged on one backend only (near the edge of stability f32 and f64 rounding
/// can decide whether a path blows up: reported, not hidden in the maximum).
pub fn max_rel_deviation(cpu: &[Vec<Vec<f64>>], gpu: &[Vec<Vec<f64>>]) -> Deviation {
    let mut d = Deviation {
        worst: 0.0,
        split: 0,
        compared: 0,
    };
    for (cc, gc) in cpu.iter().zip(gpu) {
        for (cr, gr) in cc.iter().zip(gc) {
            match (is_diverged(cr), is_diverged(gr)) {
                (false, false) => {
                    d.compared += 1;
                    for (c, g) in cr.iter().zip(gr) {
                        d.worst = d.worst.max((g - c).abs() / (1.0 + c.abs()));
                    }
                }
                (true, true) => {}
                _ => d.split += 1,
            }
        }
    }
    d
}

/// The trainer the experiment runs on in `compare`: each call on the CPU (its rows go
/// to the experiment) and on the GPU, tallied call by call.
struct BothTrainers<'a> {
    cpu: &'a CpuTrainer,
    gpu: &'a GpuTrainer,
    tally: RefCell<PathTally>,
    calls: Cell<usize>,
}

/// Rows `[checkpoint][replica][row]` of one call, as the sink receives them.
fn keep_rows(job: &TrainJob) -> Vec<Vec<Vec<f64>>> {
    vec![Vec::new(); job.checkpoints.len()]
}

impl RowEngine<TrainJob> for BothTrainers<'_> {
    crate::backend::delegate_identity!(cpu);

    fn run(&self, job: &TrainJob, replicas: Range<u64>, sink: RowSink) -> anyhow::Result<()> {
        let len = job.row_len();
        let mut cpu_rows = keep_rows(job);
        self.cpu
            .train(job, replicas.clone(), &mut |c, first, rows| {
                cpu_rows[c].extend(rows.chunks(len).map(|r| r.to_vec()));
                sink(Block::rows(c, first, rows))
            })?;
        let call = self.calls.get();
        self.calls.set(call + 1);
        let dataset = dataset_of_stream(job.stream);
        let label = format!(
            "data set {dataset} {:<5} η = {:<8}{}",
            job.dynamics.name(),
            job.eta,
            level_note(job.coarsen, job.substeps())
        );
        let run = serde_json::json!({"call": call, "dataset": dataset,
            "dynamics": job.dynamics.name(), "eta": job.eta, "coarsen": job.coarsen.max(1)});
        let mut gpu_rows = keep_rows(job);
        let gpu = self.gpu.train(job, replicas.clone(), &mut |c, _, rows| {
            gpu_rows[c].extend(rows.chunks(len).map(|r| r.to_vec()))
        });
        let mut tally = self.tally.borrow_mut();
        match gpu {
            // A job the adapter refuses (e.g. llvmpipe's loop limit) is reported, not
            // compared.
            Err(e) => tally.skipped(&label, run, &e),
            Ok(()) => {
                let n = replicas.end - replicas.start;
                tally.compared(&label, run, n, max_rel_deviation(&cpu_rows, &gpu_rows))
            }
        }
        Ok(())
    }
}

pub fn compare(a: CompareArgs, text: &str) -> Result<(), Failure> {
    let overrides = crate::config::parse::Overrides {
        paths: None,
        seed: a.seed,
    };
    let mut cfg =
        crate::experiment::training::config::parse(crate::config::parse::json(text)?, overrides)?;
    // At most --sample replicas per call; 2 at least where the config asks for more
    // (a random experiment's statistics need 2), so --sample 1 is not blamed on `paths`.
    cfg.paths = cfg.paths.min(a.sample.max(2));
    let stem = a
        .config
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run");
    let s = check(cfg, stem).map_err(|e| overrides.blame(e))?;
    let gpu = GpuTrainer::new(s.precision.unwrap_or(crate::backend::Precision::F32))
        .map_err(|e| Failure::BadInput(format!("backend: {e:#}")))?;
    let cpu = CpuTrainer::default();
    super::compare::announce(&a, &cpu.adapter(), &gpu.adapter());
    let both = BothTrainers {
        cpu: &cpu,
        gpu: &gpu,
        tally: RefCell::new(PathTally::new("rows_diverged_on_one_backend", a.quiet)),
        calls: Cell::new(0),
    };
    execute(&s, &both, &|_| {}).map_err(Failure::Runtime)?;
    both.tally.into_inner().conclude(
        gpu.adapter(),
        gpu.precision().name(),
        &a,
        "cpu and gpu paths disagree beyond --path-tol",
    )
}
