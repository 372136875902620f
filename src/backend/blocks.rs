//! The CPU driver of the engines that hand per-replica rows to a sink at every
//! checkpoint (the finite-data trainer's states, mean-field's observables and neurons):
//! replicas in blocks (bounding memory: block × checkpoints × row), each block cut into
//! tasks run on all cores (rayon), the rows handed on per checkpoint in replica order.
//! (The small-d engine folds its paths into moments instead: `backend::cpu`.)
//!
//! Results do not depend on the thread count, block or task size: every replica's
//! draws come from its own Philox counters, and rows reach the sink in replica order.

use rayon::prelude::*;
use std::ops::Range;

/// How a run's replicas are cut and what one task computes.
pub struct Blocks<'a> {
    /// Replicas per block handed to the sink.
    pub block: u64,
    /// Checkpoints per replica and values per row.
    pub checkpoints: usize,
    pub len: usize,
    /// Replicas per task, given the block's replica count.
    pub task: &'a (dyn Fn(u64) -> u64 + Sync),
}

/// Runs `replicas`: `rows(range, block_len)` computes a task's rows `[replica][c][len]`
/// (`block_len`: the replica count of its block); `sink(c, first, rows)` receives each
/// block's rows `[replica][len]` at checkpoint c, blocks in order.
pub fn run(
    b: &Blocks,
    replicas: Range<u64>,
    rows: impl Fn(Range<u64>, u64) -> Vec<f64> + Sync,
    mut sink: impl FnMut(usize, u64, &[f64]),
) {
    let (n_c, len) = (b.checkpoints, b.len);
    if n_c == 0 {
        return;
    }
    let mut start = replicas.start;
    while start < replicas.end {
        let end = (start + b.block.max(1)).min(replicas.end);
        let task = (b.task)(end - start).max(1);
        let tasks: Vec<u64> = (start..end).step_by(task as usize).collect();
        let parts: Vec<Vec<f64>> = tasks
            .par_iter()
            .map(|&s| rows(s..(s + task).min(end), end - start))
            .collect();
        // parts hold [replica][c][row]; the sink takes [c][replica][row].
        let per: Vec<&[f64]> = parts.iter().flat_map(|p| p.chunks(n_c * len)).collect();
        let mut out = vec![0.0; per.len() * len];
        for c in 0..n_c {
            for (i, r) in per.iter().enumerate() {
                out[i * len..(i + 1) * len].copy_from_slice(&r[c * len..(c + 1) * len]);
            }
            sink(c, start, &out);
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows reach the sink per checkpoint, in replica order, whatever the block and
    /// task sizes (including partial blocks and tasks).
    #[test]
    fn rows_reach_the_sink_in_order_for_any_cut() {
        let value = |r: u64, c: usize, q: usize| (r * 100 + c as u64 * 10 + q as u64) as f64;
        for (block, task) in [(1, 1), (4, 3), (7, 2), (100, 64)] {
            let t = move |_: u64| task;
            let b = Blocks {
                block,
                checkpoints: 3,
                len: 2,
                task: &t,
            };
            let mut got = vec![Vec::new(); 3];
            run(
                &b,
                5..18,
                |range, _| {
                    let mut v = Vec::new();
                    for r in range {
                        for c in 0..3 {
                            v.extend([value(r, c, 0), value(r, c, 1)]);
                        }
                    }
                    v
                },
                |c, first, rows| {
                    assert_eq!(first, 5 + got[c].len() as u64 / 2);
                    got[c].extend_from_slice(rows);
                },
            );
            for (c, g) in got.iter().enumerate() {
                let want: Vec<f64> = (5..18)
                    .flat_map(|r| [value(r, c, 0), value(r, c, 1)])
                    .collect();
                assert_eq!(g, &want, "block {block} task {task} checkpoint {c}");
            }
        }
    }
}
