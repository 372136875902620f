//! Dispatch pacing, shared by every GPU driver (small-d, finite-data trainer,
//! mean-field): the steps up to the next checkpoint are cut into segments of about
//! `SEGMENT_SECONDS` of device time each, so progress ticks and desktop watchdogs stay
//! quiet, with the segment length learnt from the last segment's measured rate.
//!
//! A segment costs a fixed amount besides its steps (the state's load and store, the
//! dispatch itself; on llvmpipe about two sgd steps of 2^20 paths), so a range is cut
//! into as few segments as the budget allows, of equal lengths: with a budget of 20
//! steps, 30 steps to a checkpoint run as 2 × 15, not 20 + 10, and up to 5/4 of the
//! budget (25 steps) as one segment, not 20 + 5.
//!
//! A software adapter (llvmpipe) has no watchdog, and its segment's fixed cost is
//! proportional to the paths (every invocation loads and stores its state), so it gets
//! longer segments (`SOFTWARE_SEGMENT_SECONDS`): 0.6 s ran the 160-step sgd job of 2^20
//! paths 5–6% faster than 0.15 s there in two rounds, and by a median 3% (within
//! llvmpipe's spread) in three interleaved rounds (benches/README.md).
//!
//! The learnt budget outlives one call (`Gpu::remember_budget`, keyed by the job's
//! kernel): the experiments call a backend once per work unit, and a pacer that began
//! each unit at its cautious first budget cut every unit into at least two segments,
//! each with a host round trip. A budget learnt at chunks of m replicas is scaled down
//! for a smaller chunk (a device runs few replicas at a lower rate, so the budget of a
//! large chunk would make a small one's segment far longer than the target).
//!
//! Pacing never changes results: a path's draws depend on (replica, step) only, and its
//! state is stored exactly between segments.

/// Target wall time of one dispatch segment on a hardware adapter.
pub const SEGMENT_SECONDS: f64 = 0.15;
/// The same on a software adapter.
pub const SOFTWARE_SEGMENT_SECONDS: f64 = 0.6;
/// Bounds of the learnt budget (work units per segment).
const MIN_BUDGET: f64 = 65536.0;
const MAX_BUDGET: f64 = 1e13;

pub struct Pacer {
    /// Work units one segment should take.
    budget: f64,
    /// Target wall time of a segment.
    seconds: f64,
    /// Replicas of the chunk the budget was learnt at (`None`: not learnt yet), and of
    /// the chunk now running.
    learnt_at: Option<u64>,
    chunk: u64,
}

impl Pacer {
    /// A pacer whose first segment does `first_budget` work units (in the driver's own
    /// unit: path-steps, neuron·sample evaluations, …) and whose later segments take
    /// about `seconds` each.
    pub fn new(first_budget: f64, seconds: f64) -> Self {
        Pacer {
            budget: first_budget.clamp(MIN_BUDGET, MAX_BUDGET),
            seconds,
            learnt_at: None,
            chunk: 0,
        }
    }

    /// A pacer that goes on from a budget learnt at chunks of `replicas` (`learnt`).
    pub fn resume(budget: f64, replicas: u64, seconds: f64) -> Self {
        let mut p = Pacer::new(budget, seconds);
        p.learnt_at = Some(replicas);
        p
    }

    /// A chunk of `m` replicas starts: a budget learnt at more replicas shrinks by
    /// m / (those replicas).
    pub fn chunk(&mut self, m: u64) {
        if let Some(at) = self.learnt_at.filter(|&at| m < at) {
            self.budget = (self.budget * m as f64 / at as f64).clamp(MIN_BUDGET, MAX_BUDGET);
            self.learnt_at = Some(m);
        }
        self.chunk = m;
    }

    /// Work units the next segment may take.
    pub fn budget(&self) -> f64 {
        self.budget
    }

    /// The learnt budget and the chunk size it was learnt at, if any.
    pub fn learnt(&self) -> Option<(f64, u64)> {
        self.learnt_at.map(|at| (self.budget, at))
    }

    /// End of the segment that starts at step `k` on the way to `target` (> k), for
    /// steps of `work_per_step` units each and at most `cap` steps per segment (a
    /// software adapter's loop limit, or a recording limit); never beyond `target`.
    pub fn segment_end(&self, k: u32, target: u32, work_per_step: f64, cap: u32) -> u32 {
        let remaining = target.saturating_sub(k);
        if remaining == 0 {
            return k;
        }
        let cap = cap.max(1);
        let max_steps =
            (self.budget / work_per_step.max(f64::MIN_POSITIVE)).clamp(1.0, cap as f64) as u32;
        // Up to 5/4 of the budget in one segment rather than a short tail segment.
        let stretched = (max_steps as u64 * 5 / 4).min(cap as u64) as u32;
        if remaining <= stretched.max(max_steps) {
            return target;
        }
        let segments = remaining.div_ceil(max_steps);
        k + remaining.div_ceil(segments)
    }

    /// Learns from a finished segment: `work` units took `seconds`.
    pub fn record(&mut self, work: f64, seconds: f64) {
        if work > 0.0 && seconds > 0.0 {
            self.budget = (work / seconds * self.seconds).clamp(MIN_BUDGET, MAX_BUDGET);
            self.learnt_at = Some(self.chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The segments a pacer with a fixed budget cuts [0, target) into.
    fn cut(budget: f64, target: u32, per_step: f64, cap: u32) -> Vec<u32> {
        let p = Pacer::new(budget, SEGMENT_SECONDS);
        let (mut k, mut lens) = (0, Vec::new());
        while k < target {
            let end = p.segment_end(k, target, per_step, cap);
            assert!(end > k && end <= target);
            lens.push(end - k);
            k = end;
        }
        lens
    }

    #[test]
    fn segments_are_even_and_within_budget_and_cap() {
        // Budget 20 steps: 30 steps are 2 × 15, not 20 + 10.
        assert_eq!(cut(20e6, 30, 1e6, u32::MAX), vec![15, 15]);
        // Up to 5/4 of the budget: one segment.
        assert_eq!(cut(20e6, 25, 1e6, u32::MAX), vec![25]);
        assert_eq!(cut(20e6, 26, 1e6, u32::MAX), vec![13, 13]);
        // 100 steps at 30 per segment: 4 × 25.
        assert_eq!(cut(30e6, 100, 1e6, u32::MAX), vec![25, 25, 25, 25]);
        // The cap is never exceeded, not even by the stretch.
        assert_eq!(cut(1e12, 10, 1e6, 4), vec![4, 3, 3]);
        assert_eq!(cut(1e12, 5, 1e6, 4), vec![3, 2]);
        // A tiny budget still advances one step at a time.
        assert_eq!(cut(1.0, 3, 1e9, u32::MAX), vec![1, 1, 1]);
        for (budget, target, cap) in [(7e6, 1000, 50), (3e8, 977, 1 << 20), (1e5, 13, 2)] {
            let lens = cut(budget, target, 1e6, cap);
            assert_eq!(lens.iter().sum::<u32>(), target);
            let (lo, hi) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
            assert!(hi - lo <= 1, "{lens:?}");
            assert!(*hi <= cap, "{lens:?}");
        }
    }

    #[test]
    fn learns_the_rate() {
        let mut p = Pacer::new(1e6, SEGMENT_SECONDS);
        p.record(1e9, 1.0); // 1e9 units/s → 1.5e8 per segment: 150 steps, 7 × 143
        assert_eq!(p.segment_end(0, 1000, 1e6, u32::MAX), 143);
        p.record(0.0, 1.0); // nothing measured: unchanged
        assert_eq!(p.segment_end(0, 1000, 1e6, u32::MAX), 143);
        // A software adapter's target: 4 × 0.15 s.
        let mut p = Pacer::new(1e6, SOFTWARE_SEGMENT_SECONDS);
        p.record(1e9, 1.0);
        assert_eq!(p.budget(), 6e8);
    }

    #[test]
    fn a_budget_learnt_at_a_large_chunk_shrinks_for_a_small_one() {
        let mut p = Pacer::new(1e6, SEGMENT_SECONDS);
        p.chunk(1 << 22);
        assert_eq!(p.learnt(), None);
        p.record(1e11, 1.0); // 1.5e10 units a segment, learnt at 2^22 replicas
        assert_eq!(p.learnt(), Some((1.5e10, 1 << 22)));
        let mut q = Pacer::resume(1.5e10, 1 << 22, SEGMENT_SECONDS);
        q.chunk(1 << 22); // the same size: unchanged
        assert_eq!(q.budget(), 1.5e10);
        q.chunk(1 << 20); // a quarter of the replicas: a quarter of the budget
        assert_eq!(q.learnt(), Some((3.75e9, 1 << 20)));
        q.chunk(1 << 22); // larger again: the rate is relearnt, not guessed upwards
        assert_eq!(q.budget(), 3.75e9);
        q.chunk(1); // never below the floor
        assert_eq!(q.budget(), MIN_BUDGET);
    }
}
