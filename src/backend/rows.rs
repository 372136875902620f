//! The engines whose replicas hand rows to a sink at every checkpoint — the
//! finite-data trainer (a row: a replica's parameters and tracked metrics) and
//! mean-field (a row: a network's observables, with its neurons where the job keeps
//! them) — behind one trait, so that what wraps an engine is written once for both:
//! the shard (`experiment::shard::ShardRows`) and merge's stand-in so far; the
//! trainer's `--resume` replay and `compare` wrapper still take its jobs only. (The
//! small-d engine folds its paths into moments instead: [`super::Backend`].)

use super::Precision;
use std::ops::Range;

/// One block of results at one checkpoint: replicas `first ..`, a row of
/// [`RowJob::row_len`] values each, and their states where the job keeps them.
pub struct Block<'a> {
    pub checkpoint: usize,
    pub first: u64,
    pub rows: &'a [f64],
    pub states: &'a [f64],
}

impl<'a> Block<'a> {
    /// Rows without states.
    pub fn rows(checkpoint: usize, first: u64, rows: &'a [f64]) -> Self {
        Block {
            checkpoint,
            first,
            rows,
            states: &[],
        }
    }
}

/// Receives every (checkpoint, replica) exactly once, blocks of a checkpoint in replica
/// order.
pub type RowSink<'a> = &'a mut dyn FnMut(Block);

/// What a row engine's job tells its wrappers.
pub trait RowJob {
    /// Values per replica and checkpoint.
    fn row_len(&self) -> usize;
    /// Checkpoints per replica.
    fn checkpoint_count(&self) -> usize;
    /// What the job runs, for messages: dynamics, η and so on.
    fn label(&self) -> String;
}

pub trait RowEngine<J> {
    /// "cpu" or "gpu".
    fn name(&self) -> &'static str;
    /// CPU threads and lanes, or the wgpu adapter.
    fn adapter(&self) -> String;
    /// The float type of the replica arithmetic.
    fn precision(&self) -> Precision;
    /// Runs replicas `replicas` of `job`, handing `sink` every (checkpoint, replica)
    /// exactly once, blocks of a checkpoint in replica order.
    fn run(&self, job: &J, replicas: Range<u64>, sink: RowSink) -> anyhow::Result<()>;
}
