//! Experiments turn a checked config into a plan of runs, execute the plan on a backend
//! (optionally one shard of it), and turn the collected statistics into a report.
//!
//! plan → execute → `Collected` (exact, mergeable) → analyze → `Report`.
//! `smflow merge` joins the `Collected` of several shards and analyses them exactly as
//! a single run would.

pub mod budget;
pub mod config;
pub mod invariant;
pub mod n_point;
pub mod partials;
pub mod shard;
pub mod target;
pub mod training;
pub mod weak_order;
pub mod width_sweep;

use crate::backend::{shifts, Backend};
use crate::config::steps;
use crate::dynamics::{Kind, RunSpec, Solver};
use crate::output::report::{Point, Report};
use crate::stats::{merge_each, Moments, MomentsParts};
use config::{Checked, ExperimentKind};
use serde::{Deserialize, Serialize};
pub use shard::{split, Shard, CUT};
use std::ops::Range;
use std::time::Instant;

/// One (dynamics, η) of the plan and how many replicas it simulates.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    pub spec: RunSpec,
    /// Replicas (1 for deterministic dynamics: gd, gf, mgf).
    pub paths: u64,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub checked: Checked,
    pub runs: Vec<PlannedRun>,
    /// Each run's replicas are split into this many contiguous batches whose statistics
    /// are kept apart (batch means for nonlinear estimators such as correlations).
    pub batches: u64,
}

pub fn plan(checked: &Checked) -> Plan {
    let mut runs = Vec::new();
    for &dynamics in &checked.dynamics {
        for (ei, &eta) in checked.etas.iter().enumerate() {
            let solver = match dynamics.kind() {
                Kind::Ode => Solver::Substeps {
                    substeps: checked.ode_substeps,
                    extrapolate: false,
                },
                _ => checked.solver,
            };
            let spec = RunSpec {
                dynamics,
                eta,
                batch: checked.batch,
                solver,
                x0: checked.x0.clone(),
                checkpoints: checked.times.iter().map(|&t| steps(t, eta)).collect(),
                observables: checked.observables.clone(),
                stream: RunSpec::stream_tag(dynamics, ei),
                key: crate::rng::key_from_seed(checked.seed),
                bound: checked.bound,
                coupling: coupling(checked, dynamics, ei),
                friction: checked.friction,
            };
            let paths = if dynamics.is_random() {
                checked.paths
            } else {
                1
            };
            runs.push(PlannedRun { spec, paths });
        }
    }
    let batches = match checked.experiment {
        ExperimentKind::WeakOrder => 1,
        ExperimentKind::NPoint => n_point::BATCHES,
        ExperimentKind::Invariant => 1,
    };
    Plan {
        checked: checked.clone(),
        runs,
        batches,
    }
}

/// The coupling of an SDE run of a weak-order study (or of n_point) to the discrete run
/// it models at the same η (sgd, or msgd for msme1), when the study lists that run (the
/// coupled estimator). With several particles only SMF is coupled: its particles share
/// one noise, pinned to the data SGD's particles share; SME's particles have
/// independent noises, which one pinned noise would not reproduce.
fn coupling(
    ck: &Checked,
    dynamics: crate::dynamics::Dynamics,
    eta_index: usize,
) -> Option<crate::dynamics::Coupling> {
    let partner = dynamics.reference()?;
    let coupled = ck.estimator == config::Estimator::Coupled
        && dynamics.kind() == Kind::Sde
        && partner.kind() == Kind::Discrete
        && ck.dynamics.contains(&partner)
        && (ck.x0.len() == 1 || dynamics.shared_noise());
    coupled.then(|| crate::dynamics::Coupling {
        sgd_stream: RunSpec::stream_tag(partner, eta_index),
    })
}

/// Statistics of (a shard of) a plan: `moments[run][batch][c * n_stats + k]`
/// (`RunSpec::stat`).
#[derive(Clone, Debug)]
pub struct Collected {
    pub moments: Vec<Vec<Vec<Moments>>>,
    pub path_steps: f64,
    pub wall_seconds: f64,
}

impl Collected {
    /// No statistics yet: the plan's shape, every `Moments` empty.
    pub fn empty(plan: &Plan) -> Collected {
        Collected {
            moments: plan
                .runs
                .iter()
                .map(|r| {
                    let n = r.spec.checkpoints.len() * r.spec.n_stats();
                    vec![vec![Moments::default(); n]; plan.batches as usize]
                })
                .collect(),
            path_steps: 0.0,
            wall_seconds: 0.0,
        }
    }

    /// All batches of one run merged.
    pub fn total(&self, run: usize) -> Vec<Moments> {
        let mut out = self.moments[run][0].clone();
        for b in &self.moments[run][1..] {
            merge_each(&mut out, b);
        }
        out
    }

    pub fn merge(&mut self, o: &Collected) {
        for (r, ro) in self.moments.iter_mut().zip(&o.moments) {
            for (b, bo) in r.iter_mut().zip(ro) {
                merge_each(b, bo);
            }
        }
        self.path_steps += o.path_steps;
        self.wall_seconds += o.wall_seconds;
    }

    pub fn to_parts(&self) -> Vec<Vec<Vec<MomentsParts>>> {
        self.moments
            .iter()
            .map(|r| {
                r.iter()
                    .map(|b| b.iter().map(Moments::to_parts).collect())
                    .collect()
            })
            .collect()
    }
}

/// Total path-steps the shard will simulate (for the progress bar).
pub fn total_work(plan: &Plan, shard: Shard) -> f64 {
    plan.runs.iter().map(|r| { let s = shard.range(r.paths); (s.end - s.start) as f64 } * r.spec.work_per_path()).sum()
}

/// Replicas per work unit by default (a multiple of the GPU workgroup, 64).
pub const UNIT_REPLICAS: u64 = crate::backend::WORK_UNIT;

/// Replicas per work unit: `SMFLOW_UNIT_REPLICAS` (rounded up to a multiple of 64;
/// for tests that must interrupt a small run, and for timing) or the backend's
/// `work_unit` ([`UNIT_REPLICAS`], or a whole chunk on a hardware GPU). Results do not
/// depend on it: units end at multiples of it in the global replica index (or at the
/// end of their (run, batch) slice), so no unit cuts one of the GPU's 64-replica
/// workgroups (see [`CUT`]), and every sum is exact. A resumed run keeps the unit its
/// progress file records.
pub fn unit_replicas(backend: &dyn Backend) -> u64 {
    std::env::var("SMFLOW_UNIT_REPLICAS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&u| u > 0)
        .map_or(backend.work_unit(), |u| u.div_ceil(64).saturating_mul(64))
}

/// This shard's replicas of run `run`, batch `b`.
pub fn slice(plan: &Plan, shard: Shard, run: usize, b: u64) -> Range<u64> {
    let paths = plan.runs[run].paths;
    let mine = shard.range(paths);
    let part = split(paths, plan.batches, b);
    let r = part.start.max(mine.start)..part.end.min(mine.end);
    if r.is_empty() {
        r.start..r.start
    } else {
        r
    }
}

/// What of a shard has been executed: every (run, batch) slice is worked through in
/// units of `unit_replicas` from its start, in order, so what is done of it is a prefix
/// of whole units (or all of it). `collected` holds the merged statistics of the done
/// units; merging the rest in gives, bit for bit, what one uninterrupted run gives.
#[derive(Clone, Debug)]
pub struct Done {
    pub unit_replicas: u64,
    /// `replicas[run][batch]`: replicas done of that slice.
    pub replicas: Vec<Vec<u64>>,
    pub collected: Collected,
}

impl Done {
    /// Nothing done yet.
    pub fn none(plan: &Plan, unit_replicas: u64) -> Done {
        Done {
            unit_replicas: unit_replicas.max(1),
            replicas: plan
                .runs
                .iter()
                .map(|_| vec![0; plan.batches as usize])
                .collect(),
            collected: Collected::empty(plan),
        }
    }

    /// (units done, units in all) of this shard.
    pub fn units(&self, plan: &Plan, shard: Shard) -> (u64, u64) {
        let (mut done, mut total) = (0, 0);
        for (ri, per_batch) in self.replicas.iter().enumerate() {
            for (b, &d) in per_batch.iter().enumerate() {
                let r = slice(plan, shard, ri, b as u64);
                total += units_in(r.start..r.end, self.unit_replicas);
                done += units_in(r.start..r.start + d, self.unit_replicas);
            }
        }
        (done, total)
    }
}

/// Work units overlapping `r`: cells [k·unit, (k+1)·unit) of the global index.
pub fn units_in(r: Range<u64>, unit: u64) -> u64 {
    if r.is_empty() {
        0
    } else {
        (r.end - 1) / unit - r.start / unit + 1
    }
}

/// Where the unit starting at `at` ends within a slice ending at `end`.
pub fn unit_end(at: u64, end: u64, unit: u64) -> u64 {
    (at / unit).saturating_add(1).saturating_mul(unit).min(end)
}

/// Runs this shard's replicas of every run of the plan.
pub fn execute(
    plan: &Plan,
    backend: &dyn Backend,
    shard: Shard,
    progress: crate::backend::Progress,
) -> anyhow::Result<Collected> {
    let done = Done::none(plan, unit_replicas(backend));
    execute_from(plan, backend, shard, progress, done, &mut |_| Ok(()))
}

/// Runs what `done` lacks of this shard, unit by unit, calling `after_unit` with the
/// state after each (to save it); an error from it stops the run. `wall_seconds` and
/// `path_steps` continue from `done`'s.
pub fn execute_from(
    plan: &Plan,
    backend: &dyn Backend,
    shard: Shard,
    progress: crate::backend::Progress,
    mut done: Done,
    after_unit: &mut dyn FnMut(&Done) -> anyhow::Result<()>,
) -> anyhow::Result<Collected> {
    let start = Instant::now();
    let wall_before = done.collected.wall_seconds;
    let unit = done.unit_replicas;
    for (ri, run) in plan.runs.iter().enumerate() {
        for b in 0..plan.batches {
            let r = slice(plan, shard, ri, b);
            let mut at = r.start + done.replicas[ri][b as usize];
            if at > r.start {
                progress((at - r.start) as f64 * run.spec.work_per_path());
            }
            while at < r.end {
                let end = unit_end(at, r.end, unit);
                let m = backend.run(&plan.checked.model, &run.spec, at..end, progress)?;
                check_poison(&m, run)?;
                let acc = &mut done.collected.moments[ri][b as usize];
                merge_each(acc, &m);
                done.collected.path_steps += (end - at) as f64 * run.spec.work_per_path();
                done.replicas[ri][b as usize] += end - at;
                done.collected.wall_seconds = wall_before + start.elapsed().as_secs_f64();
                after_unit(&done)?;
                at = end;
            }
        }
    }
    done.collected.wall_seconds = wall_before + start.elapsed().as_secs_f64();
    Ok(done.collected)
}

fn check_poison(m: &[Moments], run: &PlannedRun) -> anyhow::Result<()> {
    if m.iter()
        .any(|x| x.s1.poisoned || x.s2.poisoned || x.e1.poisoned || x.e2.poisoned)
    {
        anyhow::bail!(
            "{} at η = {}: a non-finite partial sum reached the estimator: a path within \
             diverge_bound has an observable, or its square, beyond the float range (in f32 \
             squares overflow above 1.8e19); lower diverge_bound, or run with \"precision\": \"f64\"",
            run.spec.dynamics,
            run.eta()
        );
    }
    Ok(())
}

impl PlannedRun {
    pub fn eta(&self) -> f64 {
        self.spec.eta
    }
}

/// Backend facts recorded in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunMeta {
    pub backend: String,
    pub adapter: String,
    pub precision: String,
    pub shard: Option<String>,
}

/// One point per (run, checkpoint, observable), from the merged statistics.
pub fn points(plan: &Plan, col: &Collected) -> Vec<Point> {
    let ck = &plan.checked;
    let mut out = Vec::new();
    for (ri, run) in plan.runs.iter().enumerate() {
        let total = col.total(ri);
        let sh = shifts(&ck.model, &run.spec);
        // The Value channel (index c * n_stats + o): a coupled run's SDE marginal.
        let n_obs = run.spec.n_stats();
        for (c, &t) in ck.times.iter().enumerate() {
            for (o, obs) in run.spec.observables.iter().enumerate() {
                let m = &total[c * n_obs + o];
                let (mean, se) = m.mean_se();
                let (solver_error, solver_se) = if run.spec.has_solver_error() {
                    let (e, s) = m.solver_error();
                    (Some(e), Some(s))
                } else {
                    (None, None)
                };
                out.push(Point {
                    dynamics: run.spec.dynamics.name().into(),
                    eta: run.spec.eta,
                    t,
                    observable: obs.to_string(),
                    mean: mean + sh[c * n_obs + o],
                    stderr: se,
                    count: m.count,
                    diverged: m.diverged,
                    solver_error,
                    solver_error_stderr: solver_se,
                    exact: weak_order::exact_mean(ck, &run.spec, *obs, run.spec.checkpoints[c]),
                });
            }
        }
    }
    out
}

/// Below this magnitude an f32 value is near underflow (smallest normal 1.2e-38).
const F32_TINY: f64 = 1e-30;

/// Numbers the data cannot support become null (NaN), each with a warning: a random
/// run with fewer than 2 surviving paths has no standard error; a zero sample variance
/// over ≥ 2 paths of a random run means the values are below what the arithmetic
/// resolves (f32 underflow), not that they are certain; a negative mean of an
/// observable that is never negative (|x|², a squared distance) is an artefact of
/// Talay–Tubaro extrapolation (2 g_fine − g_coarse per path, which a path near
/// blow-up drives below zero) or of cancellation. In f32, values (or exact means)
/// below `F32_TINY` are flagged. Points are in `points`' order (run, time, observable).
fn honest_edges(plan: &Plan, pts: &mut [Point], f32: bool, warnings: &mut Vec<String>) {
    let mut it = pts.iter_mut();
    for run in &plan.runs {
        let edge = Edge {
            random: run.spec.dynamics.is_random(),
            extrapolated: run.spec.levels() > 2,
            f32,
            substeps_field: "sde.substeps",
        };
        for _ in &plan.checked.times {
            for obs in &run.spec.observables {
                let Some(p) = it.next() else { return };
                edge.check(p, obs.nonnegative(), warnings);
            }
        }
    }
}

/// What [`Edge::check`] needs to know of a point's run (every engine's weak-order study
/// applies the same edges: the small-d engine's `honest_edges`, the trainer's).
pub struct Edge<'a> {
    /// The dynamics is random (needs a standard error).
    pub random: bool,
    /// Its values are Talay–Tubaro's 2·fine − coarse.
    pub extrapolated: bool,
    pub f32: bool,
    /// The config field of the substeps (`sde.substeps`, or the trainer's `substeps`);
    /// its sibling `extrapolate` is named beside it.
    pub substeps_field: &'a str,
}

impl Edge<'_> {
    /// Nulls (with a warning) what one point's data cannot support.
    pub fn check(&self, p: &mut Point, nonnegative: bool, warnings: &mut Vec<String>) {
        let at = format!("{} η={} t={} {}", p.dynamics, p.eta, p.t, p.observable);
        if nonnegative && p.mean < 0.0 {
            let extrapolate = self.substeps_field.replace("substeps", "extrapolate");
            warnings.push(format!(
                "{at}: the estimate of a non-negative observable is {:e} < 0{}; mean and stderr are null",
                p.mean,
                if self.extrapolated {
                    format!(
                        " (Talay–Tubaro extrapolation 2·fine − coarse is dominated by the discretisation error: raise {} or set {extrapolate} false)",
                        self.substeps_field
                    )
                } else {
                    " (cancellation in the sums)".to_string()
                }
            ));
            p.mean = f64::NAN;
            p.stderr = f64::NAN;
            return;
        }
        if self.random && p.count < 2 {
            p.stderr = f64::NAN;
            warnings.push(format!(
                "{at}: {} surviving path(s); a standard error needs at least 2, so stderr is null and the point unresolved",
                p.count
            ));
        } else if self.random && p.stderr == 0.0 && p.t > 0.0 {
            p.stderr = f64::NAN;
            warnings.push(format!(
                "{at}: zero sample variance over {} paths of a random dynamics (zero noise, or values below what the arithmetic resolves{}); stderr is null",
                p.count,
                if self.f32 { ": f32 underflows below ~1e-38, use \"precision\": \"f64\" or --backend cpu" } else { "" }
            ));
        }
        let tiny = |v: f64| v != 0.0 && v.abs() < F32_TINY;
        if self.f32 && (tiny(p.mean) || p.exact.is_some_and(tiny)) {
            warnings.push(format!(
                "{at}: mean {:e} (exact {}) is near f32 underflow; f32 values there are unreliable (use \"precision\": \"f64\" or --backend cpu)",
                p.mean,
                p.exact.map_or("unknown".into(), |e| format!("{e:e}"))
            ));
        }
    }
}

/// Builds the report of an executed (or merged) plan.
pub fn analyze(plan: &Plan, col: &Collected, meta: &RunMeta) -> Report {
    let ck = &plan.checked;
    let mut pts = points(plan, col);
    let mut warnings = Vec::new();
    honest_edges(
        plan,
        &mut pts,
        meta.precision.contains("f32"),
        &mut warnings,
    );
    warnings.extend(pts.iter().filter_map(|p| p.diverged_warning("paths")));
    let (weak_errors, orders, correlations, ensembles, paired) = match ck.experiment {
        ExperimentKind::WeakOrder => {
            let coupled = weak_order::coupled_diffs(plan, col);
            let grid = weak_order::Grid::of(ck);
            let (w, o) = weak_order::errors_and_orders(&grid, &pts, &coupled, &mut warnings);
            (w, o, Vec::new(), Vec::new(), Vec::new())
        }
        ExperimentKind::NPoint => {
            let c = n_point::correlations(plan, col, &mut warnings);
            let e = n_point::ensembles(plan, col, &mut warnings);
            let mut p = n_point::paired(plan, col, &c, &e, &mut warnings);
            let f32 = meta.precision.contains("f32");
            let o = n_point::paired_orders(plan, &mut p, f32, &mut warnings);
            (Vec::new(), o, c, e, p)
        }
        // Runs through `cli::invariant::run_cli`, not this moments pipeline.
        ExperimentKind::Invariant => Default::default(),
    };
    let paths = plan.runs.iter().map(|r| r.paths).max().unwrap_or(0);
    Report {
        smflow_version: env!("CARGO_PKG_VERSION").into(),
        experiment: match ck.experiment {
            ExperimentKind::WeakOrder => "weak_order".into(),
            ExperimentKind::NPoint => "n_point".into(),
            ExperimentKind::Invariant => "invariant".into(),
        },
        name: ck.name.clone(),
        backend: meta.backend.clone(),
        adapter: meta.adapter.clone(),
        precision: meta.precision.clone(),
        seed: ck.seed,
        paths,
        shard: meta.shard.clone(),
        wall_seconds: col.wall_seconds,
        path_steps_per_second: if col.wall_seconds > 0.0 {
            col.path_steps / col.wall_seconds
        } else {
            0.0
        },
        points: pts,
        weak_errors,
        orders,
        correlations,
        ensembles,
        paired,
        warnings,
        target: None,
        config: ck.echo.clone(),
    }
}

/// Steps from checkpoint c − 1 (or the start) to checkpoint c: the share of a job's
/// work a block of replicas has done on reaching c (progress by block and checkpoint).
pub fn steps_since_previous(checkpoints: &[u32], c: usize) -> u32 {
    let previous = if c == 0 { 0 } else { checkpoints[c - 1] };
    checkpoints[c].saturating_sub(previous)
}
