//! Shards of a run's replicas (`run --shard i/N`, `merge`): which replicas each shard
//! runs, cut so that the shards' merged statistics equal one whole run's bit for bit;
//! and [`ShardRows`], the row engines' shard.

use crate::backend::rows::{Block, RowEngine, RowJob, RowSink};
use std::ops::Range;

/// A shard `index/count` (0-based index) of the replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/N` with 1 ≤ i ≤ N (1-based on the command line).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or("--shard: expected i/N, e.g. 2/8")?;
        let i: u64 = i
            .trim()
            .parse()
            .map_err(|_| "--shard: i must be a whole number")?;
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| "--shard: N must be a whole number")?;
        if n == 0 || i == 0 || i > n {
            return Err(format!("--shard: need 1 ≤ i ≤ N, got {i}/{n}"));
        }
        // More shards than any run has replicas would only add empty ones.
        let most = crate::config::parse::MAX_PATHS;
        if n > most {
            return Err(format!(
                "--shard: N must be at most {most} (a run's replicas), got {n}"
            ));
        }
        Ok(Shard {
            index: i - 1,
            count: n,
        })
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.index + 1, self.count)
    }

    /// The suffix of a shard run's default output directory, `-shard<i>of<N>`.
    pub fn dir_suffix(&self) -> String {
        format!("-shard{}of{}", self.index + 1, self.count)
    }

    /// This shard's contiguous part of a trainer or mean-field call's `replicas`, whose
    /// results per replica depend only on the replica's index (so, unlike `range`, not
    /// cut at multiples of [`CUT`]). A call of ≤ 1 replica (a deterministic run, whose
    /// rows an experiment may act on) is run whole by every shard.
    pub fn slice(&self, replicas: &Range<u64>) -> Range<u64> {
        if replicas.end.saturating_sub(replicas.start) <= 1 {
            return replicas.clone();
        }
        self.part(replicas)
    }

    /// This shard's contiguous part of `replicas`, with no exception: shards' parts tile
    /// `replicas`, and some are empty when it has fewer replicas than there are shards
    /// (for results that add up over shards, such as `invariant`'s bin counts).
    pub fn part(&self, replicas: &Range<u64>) -> Range<u64> {
        let n = replicas.end.saturating_sub(replicas.start);
        let s = split(n, self.count, self.index);
        replicas.start + s.start..replicas.start + s.end
    }

    /// Runs this shard's [`slice`](Self::slice) of `replicas` with `mine`, handing
    /// `others` the replicas before and after it (the other shards'), in replica order,
    /// each with `sink`.
    pub fn run_slice<S: ?Sized>(
        &self,
        replicas: &Range<u64>,
        sink: &mut S,
        others: impl Fn(Range<u64>, &mut S),
        mine: impl FnOnce(Range<u64>, &mut S) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let m = self.slice(replicas);
        if m.start > replicas.start {
            others(replicas.start..m.start, sink);
        }
        mine(m.clone(), sink)?;
        if replicas.end > m.end {
            others(m.end..replicas.end, sink);
        }
        Ok(())
    }

    /// This shard's slice of `0..paths`, cut at multiples of [`CUT`].
    pub fn range(&self, paths: u64) -> Range<u64> {
        let at = |k: u64| {
            if k >= self.count {
                paths
            } else {
                split(paths, self.count, k).start / CUT * CUT
            }
        };
        at(self.index)..at(self.index + 1)
    }
}

/// Replicas are cut between shards and work units only at multiples of this: the GPU
/// reduces the replicas [64 g, 64 g + 64) of the global index in one floating-point
/// workgroup sum, so a cut inside such a group would change its rounding, and a
/// sharded or resumed run would no longer equal one uninterrupted run bit for bit.
pub const CUT: u64 = crate::backend::gpu::driver::WORKGROUP;

/// Part `i` of `0..n` cut into `parts` contiguous pieces.
pub fn split(n: u64, parts: u64, i: u64) -> Range<u64> {
    let at = |k: u64| ((n as u128 * k as u128) / parts as u128) as u64;
    at(i)..at(i + 1)
}

/// A row engine (finite-data trainer, mean-field) that runs only shard i's
/// [`Shard::slice`] of every call's replicas and hands the experiment NaN rows for the
/// others, every checkpoint, in order; so the experiment's bookkeeping runs unchanged,
/// and a shard's statistics are not written. Each call is saved as a job
/// (`output::job_progress`: the trainer's calls as the shard's slice, width_sweep's
/// jobs whole with NaN elsewhere); `merge` takes every replica's rows from the shard
/// that ran it and replays the whole run from them (`cli::merge_jobs`). A replica's
/// rows depend only on its index (its Philox counters), not on the replicas beside it,
/// so the merged results equal one unsharded run's bit for bit. Calls of one replica
/// (the deterministic gd, gf, mgf) run whole in every shard: an experiment may act on
/// their rows (implicit_bias_sweep runs GF until it converges). The NaN blocks carry no
/// states: no sharded job keeps them.
pub struct ShardRows<'a, J> {
    pub inner: &'a dyn RowEngine<J>,
    pub shard: Shard,
}

impl<J: RowJob> RowEngine<J> for ShardRows<'_, J> {
    crate::backend::delegate_identity!(inner);

    fn run(&self, job: &J, replicas: Range<u64>, sink: RowSink) -> anyhow::Result<()> {
        let len = job.row_len();
        let others = |range: Range<u64>, sink: &mut RowSink| {
            let rows = vec![f64::NAN; (range.end - range.start) as usize * len];
            for c in 0..job.checkpoint_count() {
                sink(Block::rows(c, range.start, &rows));
            }
        };
        let mut sink = sink;
        self.shard
            .run_slice(&replicas, &mut sink, others, |mine, sink| {
                self.inner.run(job, mine, *sink)
            })
    }
}
