//! `width_sweep` (issue 4): for every (dynamics, η, width n), M replicas of a two-layer
//! mean-field network; at each report time the population risk on a fixed test set,
//! ⟨a², ν⟩, ⟨|w|², ν⟩ and ⟨φ, ν⟩. Reports mean ± se per n, the fluctuation n·Var (a
//! constant in n for the deterministic flows, by the CLT of propagation of chaos; for
//! SGD at fixed η it grows ∝ n because the SGD noise does not average out over
//! neurons — Var ≈ C₁η + C₂/n), the gap to the widest run with its fitted rate in n,
//! and SGD vs SMF (GD vs GF) at equal n and η.
//!
//! Couplings (they make the paired standard errors small and honest): replica r has the
//! same initial neurons in every run (the first n of a wider network are those of the
//! narrower one) and, within a dynamics and η, the same data draws at every width.
//!
//! Solver error: with an even `substeps` every SDE and flow also runs its coupled
//! coarse level (`MfJob::coarsen` = 2: half the substeps on the same Brownian path),
//! and with `extrapolate` an SDE the coarsest (substeps/4, Talay–Tubaro); a replica's
//! value and solver-error estimate come from its levels (`solver::levels`), as in the
//! small-d engine and the trainer. Cells report the estimate's mean ± se, pairs its
//! upper 95% bound beside the gap.

pub mod analysis;
pub mod config;
pub mod plots;
pub mod weak_order;

use crate::experiment::training::config::whole_steps;
use crate::experiment::training::Output;
use crate::meanfield::{Dynamics, MeanFieldBackend, MfJob, OBSERVABLES};
use analysis::{cells, combine_levels, pair_diffs, rates, Cell, Runs};
use config::Sweep;
use serde_json::json;

/// Philox stream of (dynamics, η index); the same for every width (coupling).
pub fn stream(d: Dynamics, eta_index: usize) -> u32 {
    (crate::meanfield::stream_code(d) << 24) | ((eta_index as u32 & 0xFFF) << 12)
}

pub fn job(s: &Sweep, d: Dynamics, eta_index: usize, width: usize) -> MfJob {
    let eta = s.cfg.etas[eta_index];
    MfJob {
        act: s.act,
        d: s.cfg.model.d,
        width,
        init: s.cfg.model.init,
        teacher: s.teacher.clone(),
        streaming: s.streaming,
        set: s.set.clone(),
        test: s.test.clone(),
        phi: s.phi,
        dynamics: d,
        eta,
        batch: s.cfg.batch,
        sampling: s.cfg.sampling,
        friction: s.friction,
        substeps: s.cfg.substeps,
        coarsen: 1,
        checkpoints: s
            .times
            .iter()
            .map(|t| whole_steps(*t, eta).expect("checked"))
            .collect(),
        key: crate::rng::key_from_seed(s.cfg.seed),
        stream: stream(d, eta_index),
        bound: s.cfg.diverge_bound,
        keep_states: false,
    }
}

/// The coupled levels (coarsenings of `substeps`, fine first) dynamics `d` runs.
pub fn levels(s: &Sweep, d: Dynamics) -> Vec<u32> {
    crate::solver::levels::coarsenings(d, s.cfg.substeps, true, s.cfg.extrapolate)
}

/// Every job of the sweep, in run order (dynamics, η, width, level): (dynamics index,
/// η index, width, coarsening).
pub fn job_list(s: &Sweep) -> Vec<(usize, usize, usize, u32)> {
    let mut out = Vec::new();
    for (di, &d) in s.dynamics.iter().enumerate() {
        for e in 0..s.cfg.etas.len() {
            for &n in &s.widths {
                out.extend(levels(s, d).into_iter().map(|c| (di, e, n, c)));
            }
        }
    }
    out
}

/// The job of one (dynamics, η, width) on the level of coarsening `c`.
pub fn level_job(s: &Sweep, d: Dynamics, eta_index: usize, width: usize, c: u32) -> MfJob {
    let mut j = job(s, d, eta_index, width);
    j.coarsen = c;
    j
}

/// A job's description in progress files and `compare`: its dynamics, η and width, and
/// a coarse level's substeps.
pub fn describe_job(j: &MfJob) -> serde_json::Value {
    let mut what = json!({"dynamics": j.dynamics.name(), "eta": j.eta, "width": j.width});
    if j.coarsen > 1 {
        what["substeps"] = json!(j.substeps());
    }
    what
}

/// Refuses a sweep whose CPU workers' minibatches (inputs, labels, weights, residuals,
/// draws: ~(2d + 6) values a sample) would exceed the host budget, naming `batch`.
pub fn check_batch_memory(s: &Sweep) -> Result<(), crate::config::ConfigError> {
    let b = s.cfg.batch as f64;
    crate::experiment::budget::check_bytes(
        "batch",
        b * (2 * s.cfg.model.d + 6) as f64 * 8.0 * crate::experiment::budget::workers(),
        &format!("batch {}: the CPU workers' minibatches", s.cfg.batch),
    )
}

/// Per-replica observables of one job, `[checkpoint][replica]`.
pub fn collect(b: &dyn MeanFieldBackend, job: &MfJob, replicas: u64) -> anyhow::Result<Runs> {
    collect_with(b, job, replicas, &|_| {})
}

/// As `collect`, telling `progress` the work units done as each block of replicas
/// reaches each checkpoint (`job.work()` × replicas in all), so a long job moves the
/// progress bar before it ends.
pub fn collect_with(
    b: &dyn MeanFieldBackend,
    job: &MfJob,
    replicas: u64,
    progress: &dyn Fn(f64),
) -> anyhow::Result<Runs> {
    let no = OBSERVABLES.len();
    let per_step = job.work() / job.steps().max(1) as f64;
    let mut out: Runs = vec![Vec::with_capacity(replicas as usize); job.checkpoints.len()];
    b.run(job, 0..replicas, &mut |blk| {
        let c = blk.checkpoint;
        let since = crate::experiment::steps_since_previous(&job.checkpoints, c);
        progress((blk.rows.len() / no) as f64 * since as f64 * per_step);
        out[c].extend(blk.rows.chunks_exact(no).map(|o| [o[0], o[1], o[2], o[3]]));
    })?;
    Ok(out)
}

/// Work units of the whole sweep (for the progress bar): Σ replicas × job.work().
pub fn total_work(s: &Sweep) -> f64 {
    job_list(s)
        .into_iter()
        .map(|(di, e, n, c)| s.cfg.paths as f64 * level_job(s, s.dynamics[di], e, n, c).work())
        .sum()
}

/// Bytes each replica holds until the report: 4 observables (f64) per job and
/// checkpoint.
pub fn held_per_replica(s: &Sweep) -> f64 {
    (jobs(s) * s.times.len() * 32) as f64
}

/// Runs the sweep. `progress` receives work units as blocks of replicas reach checkpoints.
pub fn execute(
    s: &Sweep,
    b: &dyn MeanFieldBackend,
    progress: &dyn Fn(f64),
) -> anyhow::Result<Output> {
    let mut done = vec![None; jobs(s)];
    execute_from(s, b, progress, &mut done, &mut |_, _, _| Ok(()))
}

/// A job's observables as f64 bit patterns (exact in `progress.json`, NaN included).
pub fn to_bits(r: &Runs) -> Vec<Vec<[u64; 4]>> {
    r.iter()
        .map(|c| c.iter().map(|o| o.map(f64::to_bits)).collect())
        .collect()
}

pub fn from_bits(r: &[Vec<[u64; 4]>]) -> Runs {
    r.iter()
        .map(|c| c.iter().map(|o| o.map(f64::from_bits)).collect())
        .collect()
}

/// Jobs of the sweep: one per (dynamics, η, width, level).
pub fn jobs(s: &Sweep) -> usize {
    job_list(s).len()
}

/// Runs the jobs `done` lacks (in the order dynamics, η, width, level), calling
/// `after_job` with each finished job's index, description and runs (to save them); an
/// error from it stops the run.
pub fn execute_from(
    s: &Sweep,
    b: &dyn MeanFieldBackend,
    progress: &dyn Fn(f64),
    done: &mut [Option<Runs>],
    after_job: &mut dyn FnMut(usize, serde_json::Value, &Runs) -> anyhow::Result<()>,
) -> anyhow::Result<Output> {
    let mut neuron_steps = 0.0;
    let list = job_list(s);
    for (i, &(di, e, n, c)) in list.iter().enumerate() {
        let d = s.dynamics[di];
        let j = level_job(s, d, e, n, c);
        if done[i].is_none() {
            let runs = collect_with(b, &j, s.cfg.paths, progress)?;
            after_job(i, describe_job(&j), &runs)?;
            done[i] = Some(runs);
        } else {
            // A job an interrupted run finished: its work at once.
            progress(s.cfg.paths as f64 * j.work());
        }
        neuron_steps += s.cfg.paths as f64 * j.neuron_steps();
    }
    // The levels of each (dynamics, η, width) combined per replica, moved (not copied).
    let mut it = done.iter_mut().map(|r| r.take().expect("every job done"));
    let mut runs = Combined {
        values: Vec::new(),
        errors: Vec::new(),
    };
    for &d in &s.dynamics {
        let (mut vd, mut ed) = (Vec::new(), Vec::new());
        for _ in 0..s.cfg.etas.len() {
            let (v, e): (Vec<Runs>, Vec<Option<Runs>>) = s
                .widths
                .iter()
                .map(|_| {
                    let lv = (0..levels(s, d).len()).map(|_| it.next().expect("job"));
                    combine_levels(lv.collect(), d.is_ode())
                })
                .unzip();
            vd.push(v);
            ed.push(e);
        }
        runs.values.push(vd);
        runs.errors.push(ed);
    }
    if s.experiment == crate::config::Experiment::MeanFieldWeakOrder {
        let f32 = b.precision() == crate::backend::Precision::F32;
        return weak_order::report(s, &runs, neuron_steps, f32);
    }
    Ok(report(s, &runs, neuron_steps))
}

/// A sweep's runs with their levels combined: per-replica values and (with levels)
/// solver-error estimates, indexed [dynamics][η][width].
pub struct Combined {
    pub values: Vec<Vec<Vec<Runs>>>,
    pub errors: Vec<Vec<Vec<Option<Runs>>>>,
}

const PAIRS: [(Dynamics, Dynamics); 5] = [
    (Dynamics::Sgd, Dynamics::Smf1),
    (Dynamics::Sgd, Dynamics::Smf2),
    (Dynamics::Gd, Dynamics::Gf),
    (Dynamics::Gd, Dynamics::Mgf),
    (Dynamics::Msgd, Dynamics::Msme1),
];

fn report(s: &Sweep, runs: &Combined, neuron_steps: f64) -> Output {
    let mut all: Vec<Cell> = Vec::new();
    for (di, d) in s.dynamics.iter().enumerate() {
        for (e, eta) in s.cfg.etas.iter().enumerate() {
            let (values, errors) = (&runs.values[di][e], &runs.errors[di][e]);
            all.extend(cells(d.name(), *eta, &s.widths, &s.times, values, errors));
        }
    }
    let fitted = rates(&all);
    let mut diffs = Vec::new();
    for (a, b) in PAIRS {
        let (Some(ia), Some(ib)) = (
            s.dynamics.iter().position(|d| *d == a),
            s.dynamics.iter().position(|d| *d == b),
        ) else {
            continue;
        };
        for (e, eta) in s.cfg.etas.iter().enumerate() {
            diffs.extend(pair_diffs(
                [a.name(), b.name()],
                *eta,
                &s.widths,
                &s.times,
                &runs.values[ia][e],
                &runs.values[ib][e],
                &runs.errors[ib][e],
            ));
        }
    }
    let orders = analysis::eta_orders(&diffs);
    let diverged: usize = all
        .iter()
        .filter(|c| c.observable == "risk")
        .map(|c| c.diverged)
        .max()
        .unwrap_or(0);
    let mut warnings = Vec::new();
    let horizon = *s.times.last().unwrap();
    for c in all
        .iter()
        .filter(|c| c.observable == "risk" && c.diverged > 0 && c.t == horizon)
    {
        warnings.push(format!(
            "{} η = {} n = {}: {} of {} replicas diverged (excluded from every statistic)",
            c.dynamics,
            c.eta,
            c.width,
            c.diverged,
            c.diverged + c.count
        ));
    }
    for p in diffs
        .iter()
        .filter(|p| p.t == horizon && p.diff.abs() > 3.0 * p.stderr && !p.solver_ok)
    {
        warnings.push(format!(
            "{}–{} η={} n={} {}: the solver's error bound ({:.2e}) is not ≤ 1/10 of the gap \
             ({:.2e}); raise substeps",
            p.pair[0],
            p.pair[1],
            p.eta,
            p.width,
            p.observable,
            p.solver_bound,
            p.diff.abs()
        ));
    }
    let mut svgs = Vec::new();
    for plot in plots::svgs(s, &all, &fitted) {
        match plot {
            Ok(file) => svgs.push(file),
            Err(why) => warnings.push(why),
        }
    }
    let mut summary = summary_lines(s, &all, &fitted, &diffs, &warnings);
    let widest = *s.widths.last().unwrap();
    for o in orders
        .iter()
        .filter(|o| o.t == horizon && o.width == widest)
    {
        summary.push(format!(
            "{} − {} at n={}: {} gap ∝ η^{:.2} [{:.2}, {:.2}] over {} step sizes",
            o.pair[0], o.pair[1], o.width, o.observable, o.order, o.ci95[0], o.ci95[1], o.n_points
        ));
    }
    let results = json!({
        "widths": s.widths,
        "times": s.times,
        "observables": OBSERVABLES,
        "test_function": s.phi.name(),
        "activation": s.act.name(),
        "replicas": s.cfg.paths,
        "neuron_steps": neuron_steps,
        "cells": all,
        "rates": fitted,
        "pairs": diffs,
        "pair_orders_in_eta": orders,
        "max_diverged": diverged,
        "warnings": warnings.clone(),
    });
    let mut files = vec![
        ("width_sweep.csv".to_string(), csv_cells(&all)),
        ("rates.csv".to_string(), csv_rates(&fitted)),
        ("pairs.csv".to_string(), csv_pairs(&diffs)),
    ];
    files.extend(svgs);
    Output {
        results,
        files,
        summary,
        path_steps: neuron_steps,
        warnings,
    }
}

fn num(x: f64) -> String {
    crate::output::csv::num(x)
}

fn csv_cells(cells: &[Cell]) -> String {
    let mut s = String::from(
        "dynamics,eta,width,t,observable,mean,stderr,var,n_var,n_var_stderr,count,diverged,gap_to_widest,gap_stderr,solver_error,solver_error_stderr\n",
    );
    let opt = |x: Option<f64>| x.map(num).unwrap_or_default();
    for c in cells {
        s += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            c.dynamics,
            num(c.eta),
            c.width,
            num(c.t),
            c.observable,
            num(c.mean),
            num(c.stderr),
            num(c.var),
            num(c.n_var),
            num(c.n_var_stderr),
            c.count,
            c.diverged,
            num(c.gap),
            num(c.gap_stderr),
            opt(c.solver_error),
            opt(c.solver_error_stderr)
        );
    }
    s
}

fn csv_rates(r: &[analysis::Rate]) -> String {
    let mut s = String::from("dynamics,eta,t,observable,rate,ci95_lo,ci95_hi,n_points\n");
    for x in r {
        s += &format!(
            "{},{},{},{},{},{},{},{}\n",
            x.dynamics,
            num(x.eta),
            num(x.t),
            x.observable,
            num(x.rate),
            num(x.ci95[0]),
            num(x.ci95[1]),
            x.n_points
        );
    }
    s
}

fn csv_pairs(p: &[analysis::PairDiff]) -> String {
    let mut s = String::from(
        "first,second,eta,width,t,observable,diff,stderr,count,solver_bound,solver_ok\n",
    );
    for x in p {
        s += &format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            x.pair[0],
            x.pair[1],
            num(x.eta),
            x.width,
            num(x.t),
            x.observable,
            num(x.diff),
            num(x.stderr),
            x.count,
            num(x.solver_bound),
            x.solver_ok
        );
    }
    s
}

fn summary_lines(
    s: &Sweep,
    cells: &[Cell],
    rates: &[analysis::Rate],
    diffs: &[analysis::PairDiff],
    warnings: &[String],
) -> Vec<String> {
    let horizon = *s.times.last().unwrap();
    let at = |d: &str, eta: f64, n: usize, o: &str| {
        cells.iter().find(|c| {
            c.dynamics == d && c.eta == eta && c.width == n && c.t == horizon && c.observable == o
        })
    };
    let mut out = vec![format!(
        "t = {horizon}, φ = {}: risk, ⟨φ,ν⟩ and n·Var(⟨φ,ν⟩) (mean ± se over {} replicas)",
        s.phi.name(),
        s.cfg.paths
    )];
    for d in &s.dynamics {
        for &eta in &s.cfg.etas {
            for &n in &s.widths {
                let (Some(r), Some(p)) =
                    (at(d.name(), eta, n, "risk"), at(d.name(), eta, n, "phi"))
                else {
                    continue;
                };
                out.push(format!(
                    "{:<5} η={:<7} n={:<7} risk {:.5} ± {:.5}  φ {:+.5} ± {:.5}  n·Var {:.4} ± {:.4}{}",
                    d.name(),
                    eta,
                    n,
                    r.mean,
                    r.stderr,
                    p.mean,
                    p.stderr,
                    p.n_var,
                    p.n_var_stderr,
                    if r.diverged > 0 { format!("  ({} diverged)", r.diverged) } else { String::new() }
                ));
            }
        }
    }
    for r in rates.iter().filter(|r| r.t == horizon) {
        out.push(format!(
            "gap to widest, {} η={} {}: |gap| ∝ n^-{:.2} [{:.2}, {:.2}] over {} widths",
            r.dynamics, r.eta, r.observable, r.rate, r.ci95[0], r.ci95[1], r.n_points
        ));
    }
    let widest = *s.widths.last().unwrap();
    for p in diffs.iter().filter(|p| {
        p.t == horizon && p.width == widest && (p.observable == "risk" || p.observable == "phi")
    }) {
        out.push(format!(
            "{} − {} at η={} n={}: {} {:+.5} ± {:.5}",
            p.pair[0], p.pair[1], p.eta, p.width, p.observable, p.diff, p.stderr
        ));
    }
    out.extend(warnings.iter().map(|w| format!("warning: {w}")));
    out
}
