//! The CPU trainer: replicas in parallel (rayon), each advanced by `ops::Replica` in
//! f64. Results do not depend on the thread count: every replica's draws come from its
//! own Philox counters and blocks reach the sink in replica order.

use super::ops::Replica;
use super::{Sink, TrainJob, Trainer};
use rayon::prelude::*;
use std::ops::Range;

pub struct CpuTrainer {
    /// Replicas per block handed to the sink (bounds memory: block × checkpoints × row).
    pub block: u64,
}

impl Default for CpuTrainer {
    fn default() -> Self {
        CpuTrainer { block: 1024 }
    }
}

/// All checkpoint rows of one replica, `[c][row]`.
pub fn replica_rows(job: &TrainJob, r: u64) -> Vec<f64> {
    let len = job.row_len();
    let mut out = Vec::with_capacity(job.checkpoints.len() * len);
    let mut rep = Replica::new(job, r);
    let mut k = 0u32;
    for &c in &job.checkpoints {
        while k < c {
            rep.step(k);
            k += 1;
        }
        rep.check_bound();
        out.extend_from_slice(&rep.row);
    }
    out
}

impl Trainer for CpuTrainer {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn adapter(&self) -> String {
        format!("{} threads (f64)", rayon::current_num_threads())
    }

    fn precision(&self) -> crate::backend::Precision {
        crate::backend::Precision::F64
    }

    fn train(&self, job: &TrainJob, replicas: Range<u64>, sink: Sink) -> anyhow::Result<()> {
        let len = job.row_len();
        let n_c = job.checkpoints.len();
        let mut start = replicas.start;
        while start < replicas.end {
            let end = (start + self.block).min(replicas.end);
            let rows: Vec<Vec<f64>> = (start..end)
                .into_par_iter()
                .map(|r| replica_rows(job, r))
                .collect();
            let mut block = vec![0.0; rows.len() * len];
            for c in 0..n_c {
                for (i, r) in rows.iter().enumerate() {
                    block[i * len..(i + 1) * len].copy_from_slice(&r[c * len..(c + 1) * len]);
                }
                sink(c, start, &block);
            }
            start = end;
        }
        Ok(())
    }
}
