//! The one GPU driver loop, for every engine (small-d, the finite-data trainer,
//! mean-field): replicas in chunks, each chunk advanced checkpoint by checkpoint in
//! dispatch segments (`Pacer`: ~0.15 s of device time each, so progress ticks and
//! watchdogs stay quiet), each segment bounded by the device's loop budget where a
//! kernel loops over steps. An engine says only what its kernels do (`Event`): how a
//! chunk starts, how steps k..end are recorded, what is read back at a checkpoint.
//!
//! The loop guard lives here, once: a job declares how its kernels loop over steps
//! (`StepLoop`), and `drive` bounds every segment by it. (It once lived in two of the
//! three engines' drivers, and the third returned a wrong mean past llvmpipe's
//! 65 535-iteration limit.)
//!
//! Neither the chunking nor the pacing changes results: a path's draws depend on its
//! global replica index and step only, and its state is stored exactly between
//! segments.

use super::device::Gpu;
use super::pacer::Pacer;
use anyhow::Result;
use std::ops::Range;
use std::time::Instant;

/// How a job's kernels loop over the steps of one segment.
pub enum StepLoop<'a> {
    /// One invocation runs the segment's steps in a loop of at most `fixed + per_step ·
    /// steps` iterations (generous counts: every loop, nested ones multiplied out). A
    /// software adapter cuts long loops off silently, so segments stay within the
    /// device's budget (`Gpu::steps_per_dispatch`), and a job whose one step does not
    /// fit is refused, naming `what`. `others`: the iterations of one invocation of the
    /// job's other kernel, and its name (the small-d checkpoint reduction, the
    /// trainer's label draws); it is its own dispatch, so it is held to the budget on
    /// its own, and a job beyond it is refused.
    InKernel {
        per_step: u64,
        fixed: u64,
        others: (u64, &'a str),
        what: &'a str,
    },
    /// Each step is its own dispatches, recorded into one command buffer, at most
    /// `max_steps` a segment; no kernel loops over steps (the job keeps each kernel's
    /// own loops within the budget, e.g. mean-field's sample slices).
    Recorded { max_steps: u32 },
}

impl StepLoop<'_> {
    /// Most steps one segment may hold on `gpu`; fails when one step does not fit.
    pub fn max_steps(&self, gpu: &Gpu) -> Result<u32> {
        match *self {
            StepLoop::InKernel {
                per_step,
                fixed,
                others: (iterations, kernel),
                what,
            } => {
                gpu.steps_per_dispatch(0, iterations, &format!("{kernel} of {what}"))?;
                gpu.steps_per_dispatch(per_step, fixed, what)
            }
            StepLoop::Recorded { max_steps } => Ok(max_steps.max(1)),
        }
    }
}

/// One segment of a chunk: steps `k .. end` on the way to checkpoint `checkpoint`
/// (`reaches`: `end` is that checkpoint's step).
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub k: u32,
    pub end: u32,
    pub checkpoint: usize,
    pub reaches: bool,
}

/// What `drive` asks of an engine's kernels, in this order: `Begin` a chunk, then per
/// checkpoint one or more segments (`Record`, submitted and waited for, then
/// `Finished`), then `Checkpoint`.
pub enum Event<'e> {
    /// A chunk starts: replicas `start .. start + m` (initial state, per-chunk passes).
    Begin { start: u64, m: u64 },
    /// Record the segment's work into the encoder (for the chunk begun last).
    Record(&'e mut wgpu::CommandEncoder, Segment),
    /// The segment has run (for progress).
    Finished(Segment),
    /// Checkpoint `c` is reached: read back what it reports and hand it on.
    Checkpoint(usize),
}

/// The shape of one run: which replicas, how many per chunk, the checkpoints, and the
/// pacing (work units of one replica-step, in the job's own unit, and the first
/// segment's budget in those units, used until `kernel` has run once on the device).
pub struct Plan<'a> {
    /// Chunks start at `replicas.start` and every `cap` replicas after it.
    pub replicas: Range<u64>,
    pub cap: u64,
    /// Step indices, ascending; each is reported once.
    pub checkpoints: &'a [u32],
    pub work_per_step: f64,
    pub first_budget: f64,
    pub steps: StepLoop<'a>,
    /// The kernel that advances the steps: the pacer's budget learnt for it carries over
    /// to its next run (the same cached pipeline is the same job shape).
    pub kernel: &'a std::sync::Arc<wgpu::ComputePipeline>,
}

/// Runs `job` over `plan`'s replicas, chunk by chunk. Every checkpoint gets at least
/// one segment (an empty one, k = end, where no step is left before it), so a job that
/// initialises or reduces inside its segment needs no special case.
pub fn drive(gpu: &Gpu, plan: &Plan, mut job: impl FnMut(Event) -> Result<()>) -> Result<()> {
    let max_steps = plan.steps.max_steps(gpu)?;
    let seconds = gpu.segment_seconds();
    let mut pacer = match gpu.learnt_budget(plan.kernel) {
        Some((budget, at)) => Pacer::resume(budget, at, seconds),
        None => Pacer::new(plan.first_budget, seconds),
    };
    let mut start = plan.replicas.start;
    while start < plan.replicas.end {
        let m = (plan.replicas.end - start).min(plan.cap.max(1));
        job(Event::Begin { start, m })?;
        pacer.chunk(m);
        let work = m as f64 * plan.work_per_step;
        let mut k = 0u32;
        for (c, &target) in plan.checkpoints.iter().enumerate() {
            loop {
                let end = pacer.segment_end(k, target, work, max_steps).max(k);
                let seg = Segment {
                    k,
                    end,
                    checkpoint: c,
                    reaches: end == target,
                };
                let mut enc = gpu.device.create_command_encoder(&Default::default());
                job(Event::Record(&mut enc, seg))?;
                let t0 = Instant::now();
                gpu.queue.submit([enc.finish()]);
                gpu.wait()?;
                pacer.record((end - k) as f64 * work, t0.elapsed().as_secs_f64());
                if let Some(learnt) = pacer.learnt() {
                    gpu.remember_budget(plan.kernel, learnt);
                }
                job(Event::Finished(seg))?;
                k = end;
                if k >= target {
                    break;
                }
            }
            job(Event::Checkpoint(c))?;
        }
        start += m;
    }
    Ok(())
}
