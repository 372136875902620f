//! Shards of the finite-data experiments (`run --shard i/N`, then `merge`): a `Trainer`
//! that trains only shard i's slice of every random call's replicas and hands the
//! experiment NaN rows for the others (so its bookkeeping runs unchanged; a shard's
//! statistics are not written). The experiment calls the trainer in a fixed order, so
//! call k of every shard is call k of the whole run; wrapped around `cli::replay::Replay`,
//! each call's slice is saved as job k of `output::job_progress`, and `merge`
//! concatenates the slices of job k in shard order and replays the whole run from
//! them. A trainer's rows of replica r depend only on r (its Philox counters), not on
//! which replicas run beside it, so the merged results equal one unsharded run's bit
//! for bit.
//!
//! Calls of one replica (the deterministic gd, gf, mgf) run whole in every shard: the
//! experiment may act on their rows (implicit_bias_sweep runs GF until it converges),
//! and `merge` takes shard 1's.

use crate::experiment::Shard;
use crate::train::{Sink, TrainJob, Trainer};
use std::ops::Range;

pub struct ShardTrainer<'a> {
    pub inner: &'a dyn Trainer,
    pub shard: Shard,
}

impl Trainer for ShardTrainer<'_> {
    crate::backend::delegate_identity!(inner);

    fn train(&self, job: &TrainJob, replicas: Range<u64>, sink: Sink) -> anyhow::Result<()> {
        let len = job.row_len();
        // Rows of the replicas other shards train: NaN, every checkpoint, in order.
        let others = |range: Range<u64>, sink: &mut Sink| {
            let rows = vec![f64::NAN; (range.end - range.start) as usize * len];
            for c in 0..job.checkpoints.len() {
                sink(c, range.start, &rows);
            }
        };
        let mut sink = sink;
        self.shard
            .run_slice(&replicas, &mut sink, others, |mine, sink| {
                self.inner.train(job, mine, *sink)
            })
    }
}
