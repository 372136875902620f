//! Sizing a mean-field job for the device: tiles, sample slices (llvmpipe's loop
//! limit), replicas per chunk (binding limits, memory budget), and the job's own
//! checks.

use super::*;
use crate::backend::gpu::chunks::{chunk_replicas, ReplicaNeeds};

/// Sizes of one job on this device.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) wg: u32,
    pub(super) tiles: u32,
    /// Samples per evaluation, per slice, slices (training); the same for the test set.
    pub(super) ns: u32,
    pub(super) sc: u32,
    pub(super) sch: u32,
    pub(super) nt: u32,
    pub(super) tsc: u32,
    pub(super) tsch: u32,
    /// Replicas per chunk.
    pub(super) cap: u64,
}

pub(super) fn log2(x: u32) -> u64 {
    x.max(1).ilog2() as u64
}

/// `forward`'s G: samples per reduction round, a power of two ≤ the tile and the slice,
/// within the workgroup memory (sh: G(WG + 1) + WG values, sh4: 4 WG).
pub(super) fn group(wg: u32, sc: u32, rs: u64, shared: u64) -> u32 {
    let mut g = MAX_GROUP.min(wg).min(sc.next_power_of_two());
    while g > 1 && (g as u64 * (wg as u64 + 1) + 5 * wg as u64) * rs > shared {
        g /= 2;
    }
    g
}

/// Generous per-invocation loop-iteration bounds of each kernel (every loop counted,
/// nested ones multiplied out; a Philox call as its 10 rounds plus Box–Muller).
pub(super) struct Loops;
impl Loops {
    fn forward(d: u64, sc: u64, g: u64, wg: u64) -> u64 {
        // 3d: the neuron (and g for rho_forward) loads and the test-set statistics.
        sc * (d + 2) + sc.div_ceil(g) * (wg / g + 2) + 3 * d + log2(wg as u32) + 16
    }
    fn update(d: u64, sc: u64) -> u64 {
        // (u and θ·g_w share one loop over d in the order-2 update.)
        sc * (2 * d + 1) + 6 * d + 16
    }
    fn resid(tiles: u64, ns: u32) -> u64 {
        let gr = RWG.min(ns.next_power_of_two()) as u64;
        let pr = RWG as u64 / gr;
        tiles.div_ceil(pr) + pr + 8
    }
    fn others(job: &MfJob, plan: &Plan) -> u64 {
        let (d, per) = (job.d as u64, job.per() as u64);
        let rwg = RWG as u64;
        let blocks = |n: u64| n.div_ceil(4) * 16;
        [
            blocks(per) + 4 * per,
            (per / 4 + 2) * 16 + job.teacher.m() as u64 * (d + 1),
            blocks(plan.ns as u64).div_ceil(rwg) + (plan.ns as u64).div_ceil(rwg) + 16,
            per * plan.sch as u64,
            (plan.nt as u64).div_ceil(rwg) + (plan.tiles as u64).div_ceil(rwg) + 16,
            // prep_index: one draw per invocation.
            job.sampling.loop_iterations(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

impl GpuMeanField {
    pub(super) fn plan(&self, job: &MfJob, total: u64) -> Result<Plan> {
        let rs = real_size(self.precision);
        let l = &self.gpu.limits;
        let shared = l.max_compute_workgroup_storage_size as u64;
        let wg = self.tile.min(l.max_compute_invocations_per_workgroup);
        let (d, n) = (job.d as u64, job.width as u64);
        let tiles = n.div_ceil(wg as u64);
        let ns = job.batch_len() as u32;
        let nt = job.test.n as u32;
        // Loop iterations one invocation may run (a software adapter cuts loops off).
        let loop_budget = self.gpu.loop_budget();
        // Samples per slice: within the loop budget; else all (or as forced).
        let slice = |count: u32| -> u32 {
            let mut sc = self.slice.unwrap_or(u32::MAX).min(count).max(1);
            if let Some(budget) = loop_budget {
                while sc > 1 {
                    let g = group(wg, sc, rs, shared) as u64;
                    let worst =
                        Loops::forward(d, sc as u64, g, wg as u64).max(Loops::update(d, sc as u64));
                    if worst <= budget {
                        break;
                    }
                    sc = (sc as u64 * budget / worst).min(sc as u64 - 1) as u32;
                }
            }
            // Balance the slices.
            let sch = count.div_ceil(sc);
            count.div_ceil(sch).max(1)
        };
        let (sc, tsc) = (slice(ns), slice(nt));
        let (sch, tsch) = (ns.div_ceil(sc), nt.div_ceil(tsc));
        if tiles > MAX_DIM || sch as u64 > MAX_DIM || tsch as u64 > MAX_DIM {
            bail!("width {n} / {ns} samples exceed the GPU's dispatch grid (use --backend cpu)");
        }
        let mut plan = Plan {
            wg,
            tiles: tiles as u32,
            ns,
            sc,
            sch,
            nt,
            tsc,
            tsch,
            cap: 0,
        };
        if let Some(budget) = loop_budget {
            let g = group(wg, sc, rs, shared) as u64;
            let worst = [
                Loops::forward(d, sc as u64, g, wg as u64),
                Loops::update(d, sc as u64),
                Loops::forward(d, tsc as u64, group(wg, tsc, rs, shared) as u64, wg as u64),
                Loops::resid(tiles, ns),
                Loops::resid(tiles, nt),
                Loops::others(job, &plan),
            ];
            let worst = worst.into_iter().max().unwrap_or(0);
            if worst > budget {
                bail!(
                    "this job needs ~{worst} shader loop iterations in one invocation (width {n}, d {d}, \
                     {ns} samples, teacher of {}), beyond what the software adapter ({}) runs correctly \
                     ({budget}); use --backend cpu, or a hardware GPU",
                    job.teacher.m(),
                    self.gpu.info.name
                );
            }
        }
        // Per-replica buffer sizes (bytes), for the binding limits and the budget.
        let big = ns.max(nt) as u64;
        let rk4 = job.dynamics.is_ode();
        let sizes = self.replica_buffers(job, &plan, rk4, big, rs);
        let bytes: Vec<f64> = sizes.iter().map(|&s| s as f64).collect();
        let needs = ReplicaNeeds {
            bytes: &bytes,
            max: MAX_DIM,
            align: 1,
            what: &format!("width {n}, {big} samples"),
        };
        plan.cap = chunk_replicas(l, &needs, self.chunk, total)?;
        Ok(plan)
    }
}

pub(super) fn check_job(job: &MfJob) -> Result<()> {
    crate::meanfield::check_supported(job)?;
    if job.d == 0 || job.width == 0 {
        bail!("mean-field job needs d ≥ 1 and width ≥ 1");
    }
    if job.checkpoints.windows(2).any(|w| w[0] > w[1]) {
        bail!("mean-field checkpoints must be ascending");
    }
    let needs_set = !job.minibatch() || job.streaming.is_none();
    match &job.set {
        Some(s) if s.d != job.d || s.n == 0 => {
            bail!("the data set must have d = {} and N ≥ 1", job.d)
        }
        None if needs_set => bail!("{} needs a data set", job.dynamics.name()),
        _ => {}
    }
    if job.minibatch() && job.batch == 0 {
        bail!("{} needs batch ≥ 1", job.dynamics.name());
    }
    if job.test.d != job.d || job.test.n == 0 {
        bail!(
            "the test set must have d = {} and at least one sample",
            job.d
        );
    }
    if job.teacher.d != job.d {
        bail!("the teacher must have d = {}", job.d);
    }
    Ok(())
}
