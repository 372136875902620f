//! Shards of `width_sweep` (`run --shard i/N`, then `merge`): a mean-field backend that
//! runs only shard i's slice of every job's replicas and reports NaN observables for
//! the others. A job is saved whole (`output::job_progress`, NaN where another shard
//! owns the replica); `merge` takes each replica's observables from the shard that
//! owns it ([`Shard::slice`]) and replays the sweep from the joined jobs. A replica's
//! network depends only on its index (its Philox counters), so the merged results
//! equal one unsharded run's bit for bit.

use crate::experiment::Shard;
use crate::meanfield::{Block, MeanFieldBackend, MfJob, MfSink};
use std::ops::Range;

pub struct ShardBackend<'a> {
    pub inner: &'a dyn MeanFieldBackend,
    pub shard: Shard,
}

impl MeanFieldBackend for ShardBackend<'_> {
    crate::backend::delegate_identity!(inner);

    fn run(&self, job: &MfJob, replicas: Range<u64>, sink: MfSink) -> anyhow::Result<()> {
        let no = super::OBSERVABLES.len();
        // Observables of the replicas other shards run: NaN, every checkpoint, in order.
        let others = |range: Range<u64>, sink: &mut MfSink| {
            let obs = vec![f64::NAN; (range.end - range.start) as usize * no];
            for checkpoint in 0..job.checkpoints.len() {
                sink(Block {
                    checkpoint,
                    first: range.start,
                    obs: &obs,
                    states: &[],
                });
            }
        };
        let mut sink = sink;
        self.shard
            .run_slice(&replicas, &mut sink, others, |mine, sink| {
                self.inner.run(job, mine, *sink)
            })
    }
}
