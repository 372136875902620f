//! The CPU trainer: blocks of replicas in parallel (rayon), each block in lane groups
//! (`ops::Group`, compiled per SIMD level). In f64 (the default) a group is `LANES`
//! replicas carrying exactly the bits of the scalar reference `replica_rows`; with
//! `"precision": "f32"` it is 16 replicas in f32 (`Lanes32`), the fast option and not
//! the reference. In f64, blocks too small to give every thread two full groups, and
//! group tails of under half a group, run on the scalar reference itself (the same
//! bits, less wasted work). Results do not depend on the thread count, block size or SIMD level:
//! every replica's draws come from its own Philox counters and blocks reach the sink in
//! replica order.

use super::ops::{Group, Replica};
use super::TrainJob;
use crate::backend::blocks::{self, Blocks};
use crate::backend::rows::{Block, RowEngine, RowSink};
use crate::backend::Precision;
use crate::lanes::{Lanes, Lanes32, Num};
use crate::rng::simd;
use std::marker::PhantomData;
use std::ops::Range;

pub struct CpuTrainer {
    /// Replicas per block handed to the sink (bounds memory: block × checkpoints × row).
    pub block: u64,
    /// F64: the reference (`Lanes`); F32: the fast option (`Lanes32`).
    pub precision: Precision,
}

impl Default for CpuTrainer {
    fn default() -> Self {
        CpuTrainer {
            block: 1024,
            precision: Precision::F64,
        }
    }
}

impl CpuTrainer {
    pub fn with_precision(precision: Precision) -> Self {
        CpuTrainer {
            precision,
            ..Default::default()
        }
    }

    /// Replicas per lane group.
    fn width(&self) -> usize {
        match self.precision {
            Precision::F64 => Lanes::WIDTH,
            Precision::F32 => Lanes32::WIDTH,
        }
    }
}

/// All checkpoint rows of one replica, `[c][row]`: the scalar reference, one replica
/// at a time.
pub fn replica_rows(job: &TrainJob, r: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(job.checkpoints.len() * job.row_len());
    group_rows(&mut Replica::new(job, r), 1, &mut out);
    out
}

/// Runs a group to every checkpoint and appends, for each of its first `n` lanes, all
/// checkpoint rows (`[lane][c][row]`).
#[inline(always)]
fn group_rows<T: Num>(g: &mut Group<'_, T>, n: usize, out: &mut Vec<f64>) {
    let job = g.job();
    let (checkpoints, len) = (&job.checkpoints, job.row_len());
    let base = out.len();
    out.resize(base + n * checkpoints.len() * len, 0.0);
    let mut k = 0u32;
    let mut row = Vec::with_capacity(len);
    for (c, &ck) in checkpoints.iter().enumerate() {
        while k < ck {
            g.step(k);
            k += 1;
        }
        g.check_bound();
        for l in 0..n {
            row.clear();
            g.lane_row(l, &mut row);
            let at = base + (l * checkpoints.len() + c) * len;
            out[at..at + len].copy_from_slice(&row);
        }
    }
}

/// `[replica][c][row]` for `replicas`, `T::WIDTH` at a time (the last group partial).
#[inline(always)]
fn block_rows<T: Num>(
    job: &TrainJob,
    replicas: Range<u64>,
    out: &mut Vec<f64>,
    _lanes: PhantomData<T>,
) {
    let mut r = replicas.start;
    while r < replicas.end {
        let n = T::WIDTH.min((replicas.end - r) as usize);
        if T::REFERENCE_BITS && 2 * n < T::WIDTH {
            // A few replicas (a deterministic job trains one): a lane group would do
            // WIDTH replicas' work; the scalar reference gives the same bits.
            for i in 0..n as u64 {
                group_rows(&mut Replica::new(job, r + i), 1, out);
            }
        } else {
            group_rows(&mut Group::<T>::new(job, r), n, out);
        }
        r += n as u64;
    }
}

crate::per_level! {
    /// `block_rows` compiled for `level` (capped by `simd::detected()`).
    fn block_rows_at<T: Num>(
        job: &TrainJob,
        replicas: Range<u64>,
        out: &mut Vec<f64>,
        lanes: PhantomData<T>,
    ) => block_rows
}

/// Most replicas per rayon task (whole lane groups): enough to amortise a task.
const TASK: u64 = 64;

/// Replicas per rayon task for `count` replicas in groups of `width`: whole groups,
/// at most `TASK`, and small enough that every thread gets work when there is some
/// (experiments such as implicit_bias_sweep train 20 replicas per job).
fn task_size(count: u64, width: usize) -> u64 {
    let w = width as u64;
    let groups = count.div_ceil(w);
    let threads = rayon::current_num_threads() as u64;
    (groups.div_ceil(threads) * w).clamp(w, TASK.max(w))
}

impl RowEngine<TrainJob> for CpuTrainer {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn adapter(&self) -> String {
        let what = match self.precision {
            Precision::F64 => "f64, the reference",
            Precision::F32 => "f32, fast option, not the reference",
        };
        let width = self.width();
        format!(
            "{} threads ({what}), {width}-replica lanes ({})",
            rayon::current_num_threads(),
            simd::level().name()
        )
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn run(&self, job: &TrainJob, replicas: Range<u64>, sink: RowSink) -> anyhow::Result<()> {
        job.check_dynamics()?;
        let level = simd::level();
        let threads = rayon::current_num_threads() as u64;
        // Too few f64 replicas to give every thread two full lane groups: the scalar
        // reference per replica (the same bits) keeps the threads busy.
        let scalar =
            |n: u64| self.precision == Precision::F64 && n < 2 * Lanes::WIDTH as u64 * threads;
        let task = |n: u64| task_size(n, if scalar(n) { 1 } else { self.width() });
        let b = Blocks {
            block: self.block,
            checkpoints: job.checkpoints.len(),
            len: job.row_len(),
            task: &task,
        };
        blocks::run(
            &b,
            replicas,
            |range, block_len| {
                let mut out = Vec::new();
                match self.precision {
                    Precision::F64 if scalar(block_len) => {
                        block_rows_at::<f64>(level, job, range, &mut out, PhantomData)
                    }
                    Precision::F64 => {
                        block_rows_at::<Lanes>(level, job, range, &mut out, PhantomData)
                    }
                    Precision::F32 => {
                        block_rows_at::<Lanes32>(level, job, range, &mut out, PhantomData)
                    }
                }
                out
            },
            |c, first, rows| sink(Block::rows(c, first, rows)),
        );
        Ok(())
    }
}
