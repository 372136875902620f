//! Experiment `invariant`: does toy SGD (and its SME) settle into the invariant density
//! `ρ ∝ f^{−p}, p = 1 + 2b/(ησ)` derived in `model::toy_sgd`, and is that measurably
//! different from the Gibbs density `exp(−2f/(s f̄))` of constant noise at the same
//! mean level (s = ησ/b, f̄ = E_ρ f) and from seed 002's exponent `1 + b/(ησ)`?
//!
//! Each (dynamics, η) of the plan runs `paths` independent replicas from x0 to the
//! horizon (`Backend::final_states`, so cpu and gpu alike), in `batches` contiguous
//! batches. The final states are histogrammed: x in 1-D; in 2-D the angle φ along
//! the ring (where flat and sharp minima differ) and the radius r. Analytic bin masses
//! come from quadrature of the normalised densities over the whole space (`marginal_bins`);
//! the mass outside the histogram range is its own cell, so TV distances are over the
//! whole line/plane. Errors: binomial per bin; TV by jackknife over the batches, with
//! the TV one would expect from sampling noise alone (`noise_floor`) beside it.

use crate::backend::Backend;
use crate::dynamics::RunSpec;
use crate::experiment::config::Checked;
use crate::experiment::{RunMeta, Shard};
use crate::model::toy_sgd::{seed_convention_exponent, stationary_exponent};
use crate::model::AnyModel;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::time::Instant;

mod config;
mod density;
pub mod hist_svg;
pub use config::{check_config, InvariantConfig};
pub use density::*;

/// Counts per bin (last entry: outside the range) of each batch of paths.
#[derive(Clone, Debug)]
pub struct BatchCounts {
    pub counts: Vec<Vec<u64>>,
}

/// Distance of a histogram to one analytic density.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Distance {
    /// Total variation ½ Σ |p̂ − q| over the bins and the outside cell.
    pub tv: f64,
    /// Jackknife standard error of `tv` over the path batches.
    pub tv_stderr: f64,
    /// E TV from sampling noise alone if q were exact: ½ Σ sqrt(2 q(1 − q)/(π n)).
    pub noise_floor: f64,
    /// max over cells of |p̂ − q| / sqrt(q(1 − q)/n) (q floored at 1/n).
    pub max_abs_z: f64,
    /// Pearson χ² = Σ (n_j − n q_j)²/(n q_j) over cells with q_j > 0, and its dof.
    pub chi2: f64,
    pub dof: usize,
}

fn tv(counts: &[u64], q: &[f64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return f64::NAN;
    }
    0.5 * counts
        .iter()
        .zip(q)
        .map(|(&c, &q)| (c as f64 / n as f64 - q).abs())
        .sum::<f64>()
}

/// TV, its jackknife error and the per-cell z-scores of `batches` against masses `q`.
pub fn distance(batches: &BatchCounts, q: &[f64]) -> Distance {
    let cells = q.len();
    let total: Vec<u64> = (0..cells)
        .map(|j| batches.counts.iter().map(|b| b[j]).sum())
        .collect();
    let n: u64 = total.iter().sum();
    let nf = n as f64;
    let b = batches.counts.len();
    let loo: Vec<f64> = batches
        .counts
        .iter()
        .map(|bc| {
            let rest: Vec<u64> = total.iter().zip(bc).map(|(t, c)| t - c).collect();
            tv(&rest, q)
        })
        .filter(|v| v.is_finite())
        .collect();
    let mean = loo.iter().sum::<f64>() / loo.len().max(1) as f64;
    let tv_stderr =
        ((b as f64 - 1.0) / b as f64 * loo.iter().map(|v| (v - mean).powi(2)).sum::<f64>()).sqrt();
    let mut max_abs_z = 0.0f64;
    let mut chi2 = 0.0;
    let mut dof = 0usize;
    for (&c, &qj) in total.iter().zip(q) {
        let p = c as f64 / nf;
        let qv = qj.max(1.0 / nf);
        max_abs_z = max_abs_z.max((p - qj).abs() / (qv * (1.0 - qj).max(1e-12) / nf).sqrt());
        if qj > 0.0 {
            chi2 += (c as f64 - nf * qj).powi(2) / (nf * qj);
            dof += 1;
        }
    }
    Distance {
        tv: tv(&total, q),
        tv_stderr,
        noise_floor: 0.5
            * q.iter()
                .map(|&qj| (2.0 * qj * (1.0 - qj) / (PI * nf)).sqrt())
                .sum::<f64>(),
        max_abs_z,
        chi2,
        dof: dof.saturating_sub(1),
    }
}

/// One histogram of one run, with the analytic and Gibbs densities per bin.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Histogram {
    pub coordinate: Coord,
    pub edges: Vec<f64>,
    /// Empirical density per bin (fraction of paths / bin width) and its binomial SE.
    pub empirical: Vec<f64>,
    pub empirical_stderr: Vec<f64>,
    /// Toy SGD's invariant density f^{−p} (bin average of the normalised marginal).
    pub analytic: Vec<f64>,
    /// Gibbs density exp(−2f/(s f̄)) of the matched constant-noise SDE.
    pub gibbs: Vec<f64>,
    /// f^{−(1 + 1/s)}: seed 002's exponent read in our noise convention.
    pub seed_exponent: Vec<f64>,
    /// Probability outside the range: empirical, analytic, Gibbs, seed exponent.
    pub outside: [f64; 4],
    pub vs_analytic: Distance,
    pub vs_gibbs: Distance,
    pub vs_seed_exponent: Distance,
}

/// Everything measured for one (dynamics, η).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub dynamics: String,
    pub eta: f64,
    pub batch: u32,
    /// s = ησ/b: the SDE is dX = −∇f dt + sqrt(s f) dW.
    pub s: f64,
    /// p = 1 + 2/s (ours) and 1 + 1/s (seed 002's formula in our convention).
    pub exponent: f64,
    pub seed_exponent: f64,
    /// f̄ = E_ρ f, the constant noise level of the Gibbs comparison.
    pub mean_loss: f64,
    /// Paths histogrammed and paths that diverged (non-finite or beyond the bound).
    pub count: u64,
    pub diverged: u64,
    /// Share of the paths that ended in the half x₁ < 0 (2-D: the flat side of the
    /// ring), with binomial SE, and the analytic and Gibbs values.
    pub flat_side: [f64; 4],
    pub histograms: Vec<Histogram>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InvariantReport {
    pub smflow_version: String,
    pub experiment: String,
    pub name: String,
    pub backend: String,
    pub adapter: String,
    pub precision: String,
    pub seed: u64,
    pub paths: u64,
    pub horizon: f64,
    pub loss: String,
    pub sigma: f64,
    pub convention: String,
    pub wall_seconds: f64,
    pub path_steps_per_second: f64,
    pub runs: Vec<RunResult>,
    pub warnings: Vec<String>,
    pub config: serde_json::Value,
}

/// Bins `states` (rows of d) of one batch; returns per-coordinate counts and the number
/// of finite rows within the bound, and the rows with x₁ < 0.
fn bin_batch(
    states: &[f64],
    d: usize,
    bound: f64,
    coords: &[(Coord, Vec<f64>)],
) -> (Vec<Vec<u64>>, u64, u64, u64) {
    let mut counts: Vec<Vec<u64>> = coords.iter().map(|(_, e)| vec![0; e.len()]).collect();
    let (mut alive, mut dead, mut neg) = (0, 0, 0);
    for x in states.chunks_exact(d) {
        if !x.iter().all(|v| v.abs() <= bound) {
            dead += 1;
            continue;
        }
        alive += 1;
        if x[0] < 0.0 {
            neg += 1;
        }
        for ((c, edges), cnt) in coords.iter().zip(counts.iter_mut()) {
            let v = c.of(x);
            let nb = edges.len() - 1;
            let (lo, hi) = (edges[0], edges[nb]);
            let j = if v >= lo && v < hi {
                (((v - lo) / (hi - lo) * nb as f64) as usize).min(nb - 1)
            } else if *c == Coord::Angle && v == hi {
                nb - 1 // φ = π belongs to the last bin
            } else {
                nb // outside cell
            };
            cnt[j] += 1;
        }
    }
    (counts, alive, dead, neg)
}

/// What one batch of paths of one (dynamics, η) leaves: per coordinate its bin counts
/// (last entry: outside the range), and the paths in range, diverged and with x₁ < 0.
/// Exact integers, so a resumed run analyses exactly what an uninterrupted one does,
/// and shards' counts of one batch add up to the whole batch's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BatchCount {
    pub counts: Vec<Vec<u64>>,
    pub alive: u64,
    pub dead: u64,
    pub neg: u64,
}

impl BatchCount {
    /// Adds `other`'s counts (another shard's part of the same batch); refuses counts
    /// of another shape.
    pub fn add(&mut self, other: &BatchCount) -> Result<(), String> {
        let shape = |b: &BatchCount| b.counts.iter().map(Vec::len).collect::<Vec<_>>();
        if shape(self) != shape(other) {
            return Err(format!(
                "bins per coordinate {:?}, the first shard's {:?}",
                shape(other),
                shape(self)
            ));
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        self.alive += other.alive;
        self.dead += other.dead;
        self.neg += other.neg;
        Ok(())
    }
}

/// The non-empty batches of a run, by batch index (`--resume` jobs: one per batch).
fn batches(ck: &Checked, paths: u64) -> Vec<std::ops::Range<u64>> {
    let nb = ck
        .invariant
        .as_ref()
        .expect("checked invariant config")
        .batches as u64;
    (0..nb)
        .map(|b| super::split(paths, nb, b))
        .filter(|r| !r.is_empty())
        .collect()
}

/// Simulates and bins the paths `range` of one batch (an empty range, a shard's empty
/// part of a small batch, simulates nothing and counts zeros).
fn run_batch(
    backend: &dyn Backend,
    ck: &Checked,
    spec: &RunSpec,
    range: std::ops::Range<u64>,
) -> anyhow::Result<BatchCount> {
    let AnyModel::ToySgd(m) = &ck.model else {
        anyhow::bail!("invariant needs toy_sgd");
    };
    let co = coords(
        m.d,
        ck.invariant.as_ref().expect("checked invariant config"),
    );
    let states = if range.is_empty() {
        Vec::new()
    } else {
        backend.final_states(&ck.model, spec, range)?
    };
    let (counts, alive, dead, neg) = bin_batch(&states, m.d, ck.bound, &co);
    Ok(BatchCount {
        counts,
        alive,
        dead,
        neg,
    })
}

/// Analyses one (dynamics, η) from its batches.
pub fn analyse(ck: &Checked, spec: &RunSpec, batches: &[BatchCount]) -> anyhow::Result<RunResult> {
    let AnyModel::ToySgd(m) = &ck.model else {
        anyhow::bail!("invariant needs toy_sgd");
    };
    let cfg = ck.invariant.as_ref().expect("checked invariant config");
    let co = coords(m.d, cfg);
    let per_coord: Vec<BatchCounts> = (0..co.len())
        .map(|k| BatchCounts {
            counts: batches.iter().map(|b| b.counts[k].clone()).collect(),
        })
        .collect();
    let alive: u64 = batches.iter().map(|b| b.alive).sum();
    let dead: u64 = batches.iter().map(|b| b.dead).sum();
    let neg: u64 = batches.iter().map(|b| b.neg).sum();
    let s = m.sigma * spec.eta / spec.batch as f64;
    let p = stationary_exponent(s);
    let ps = seed_convention_exponent(s);
    let fbar = mean_loss(m, s);
    let dens = [
        Density::Power(p),
        Density::Gibbs { s, fbar },
        Density::Power(ps),
    ];
    let mut histograms = Vec::new();
    let mut flat = [f64::NAN; 4];
    let nf = alive.max(1) as f64;
    let pn = neg as f64 / nf;
    flat[0] = pn;
    flat[1] = (pn * (1.0 - pn) / nf).sqrt();
    for ((coord, edges), bc) in co.iter().zip(&per_coord) {
        let q: Vec<Vec<f64>> = dens
            .iter()
            .map(|dd| marginal_bins(m, dd, *coord, edges))
            .collect();
        if *coord == Coord::Angle {
            // x₁ < 0 ⇔ |φ| > π/2: sum the bins wholly in that range (edges at ±π/2
            // when bins is a multiple of 4; otherwise the split is approximate).
            for (k, qk) in q.iter().take(2).enumerate() {
                flat[2 + k] = edges
                    .windows(2)
                    .zip(qk)
                    .filter(|(e, _)| (0.5 * (e[0] + e[1])).abs() > 0.5 * PI)
                    .map(|(_, v)| v)
                    .sum();
            }
        }
        let nbins = edges.len() - 1;
        let total: Vec<u64> = (0..=nbins)
            .map(|j| bc.counts.iter().map(|b| b[j]).sum())
            .collect();
        let width = |j: usize| edges[j + 1] - edges[j];
        let to_density =
            |mass: &[f64]| -> Vec<f64> { (0..nbins).map(|j| mass[j] / width(j)).collect() };
        let emp: Vec<f64> = total.iter().map(|&c| c as f64 / nf).collect();
        histograms.push(Histogram {
            coordinate: *coord,
            edges: edges.clone(),
            empirical: to_density(&emp),
            empirical_stderr: (0..nbins)
                .map(|j| (emp[j] * (1.0 - emp[j]) / nf).sqrt() / width(j))
                .collect(),
            analytic: to_density(&q[0]),
            gibbs: to_density(&q[1]),
            seed_exponent: to_density(&q[2]),
            outside: [emp[nbins], q[0][nbins], q[1][nbins], q[2][nbins]],
            vs_analytic: distance(bc, &q[0]),
            vs_gibbs: distance(bc, &q[1]),
            vs_seed_exponent: distance(bc, &q[2]),
        });
    }
    Ok(RunResult {
        dynamics: spec.dynamics.name().into(),
        eta: spec.eta,
        batch: spec.batch,
        s,
        exponent: p,
        seed_exponent: ps,
        mean_loss: fbar,
        count: alive,
        diverged: dead,
        flat_side: flat,
        histograms,
    })
}

/// Runs every (dynamics, η) of the config on `backend`.
pub fn run_all(backend: &dyn Backend, ck: &Checked) -> anyhow::Result<(Vec<RunResult>, f64, f64)> {
    let (counts, work, wall) = run_jobs(
        backend,
        ck,
        Shard::WHOLE,
        &mut Vec::new(),
        &|_| {},
        &mut |_, _, _| Ok(()),
    )?;
    Ok((analyse_jobs(ck, counts)?, work, wall))
}

/// Jobs of the plan (one per non-empty batch of every run), for `--resume` and `merge`.
pub fn jobs(ck: &Checked) -> usize {
    super::plan(ck)
        .runs
        .iter()
        .map(|r| batches(ck, r.paths).len())
        .sum()
}

/// Path-steps `shard` runs: its part of every batch.
pub fn total_work(ck: &Checked, shard: Shard) -> f64 {
    super::plan(ck)
        .runs
        .iter()
        .flat_map(|r| {
            let w = r.spec.work_per_path();
            batches(ck, r.paths).into_iter().map(move |b| {
                let part = shard.part(&b);
                (part.end - part.start) as f64 * w
            })
        })
        .sum()
}

/// Counts every job of the plan, in job order: `shard`'s part of every batch of every
/// (dynamics, η) (`Shard::part`; the whole batch for `Shard::WHOLE`), taking the counts
/// `done` holds (by job index) as given and calling `after_job` with each it counts (to
/// save it); `progress` hears the path-steps of every job, done or taken. Returns the
/// counts, the path-steps simulated and the wall time.
pub fn run_jobs(
    backend: &dyn Backend,
    ck: &Checked,
    shard: Shard,
    done: &mut Vec<Option<BatchCount>>,
    progress: crate::backend::Progress,
    after_job: &mut dyn FnMut(usize, serde_json::Value, &BatchCount) -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<BatchCount>, f64, f64)> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut work = 0.0;
    for r in &super::plan(ck).runs {
        for (b, batch) in batches(ck, r.paths).into_iter().enumerate() {
            let range = shard.part(&batch);
            let job_work = (range.end - range.start) as f64 * r.spec.work_per_path();
            let i = out.len();
            let c = match done.get_mut(i).and_then(Option::take) {
                Some(c) => c,
                None => {
                    let what = serde_json::json!({
                        "dynamics": r.spec.dynamics.name(), "eta": r.spec.eta, "batch": b,
                        "replicas": [range.start, range.end]
                    });
                    let c = run_batch(backend, ck, &r.spec, range)?;
                    work += job_work;
                    after_job(i, what, &c)?;
                    c
                }
            };
            progress(job_work);
            out.push(c);
        }
    }
    Ok((out, work, start.elapsed().as_secs_f64()))
}

/// Analyses every (dynamics, η) from the counts of all its batches (`counts`: every
/// job of the plan, in job order, whole).
pub fn analyse_jobs(ck: &Checked, counts: Vec<BatchCount>) -> anyhow::Result<Vec<RunResult>> {
    anyhow::ensure!(
        counts.len() == jobs(ck),
        "{} jobs counted, the plan has {}",
        counts.len(),
        jobs(ck)
    );
    let mut counts = counts.into_iter();
    super::plan(ck)
        .runs
        .iter()
        .map(|r| {
            let run: Vec<BatchCount> = counts.by_ref().take(batches(ck, r.paths).len()).collect();
            analyse(ck, &r.spec, &run)
        })
        .collect()
}

pub const CONVENTION: &str = "SDE dX = -grad f dt + sqrt(s f) dW with s = eta*sigma/b (noise variance of SGD); invariant density f^(-1-2/s). Seed 002 writes f^(-1-1/(eta*sigma)), which is the density for noise sqrt(2 s f) dW (its Fokker-Planck equation drops Ito's 1/2). Gibbs comparison: constant noise sqrt(s fbar) dW, fbar = E f under f^(-1-2/s), density exp(-2 f/(s fbar)).";

/// The report of finished runs: the runs' analyses, and a warning for each run with
/// diverged paths or a histogram farther from f^-p than sampling noise explains.
pub fn report(
    ck: &Checked,
    meta: &RunMeta,
    runs: Vec<RunResult>,
    work: f64,
    wall: f64,
) -> InvariantReport {
    let AnyModel::ToySgd(m) = &ck.model else {
        unreachable!("checked")
    };
    let mut warnings = Vec::new();
    for r in &runs {
        if r.diverged > 0 {
            warnings.push(format!(
                "{} η={}: {} of {} paths diverged and were excluded",
                r.dynamics,
                r.eta,
                r.diverged,
                r.diverged + r.count
            ));
        }
        for h in &r.histograms {
            let d = &h.vs_analytic;
            if d.tv > d.noise_floor + 4.0 * d.tv_stderr {
                warnings.push(format!(
                    "{} η={} {:?}: TV to f^-p {:.4} exceeds noise floor {:.4} + 4 se ({:.4}): not (yet) at the invariant density, or the discretisation bias shows",
                    r.dynamics, r.eta, h.coordinate, d.tv, d.noise_floor, d.tv_stderr
                ));
            }
        }
    }
    InvariantReport {
        smflow_version: env!("CARGO_PKG_VERSION").into(),
        experiment: "invariant".into(),
        name: ck.name.clone(),
        backend: meta.backend.clone(),
        adapter: meta.adapter.clone(),
        precision: meta.precision.clone(),
        seed: ck.seed,
        paths: ck.paths,
        horizon: ck.horizon,
        loss: m.loss.name().into(),
        sigma: m.sigma,
        convention: CONVENTION.into(),
        wall_seconds: wall,
        path_steps_per_second: if wall > 0.0 { work / wall } else { 0.0 },
        runs,
        warnings,
        config: ck.echo.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToyLoss;
    use crate::model::ToySgd;

    /// Bin masses plus the outside cell are a probability vector, and the quadrature
    /// agrees with itself across bin resolutions (coarse bin = sum of fine bins).
    #[test]
    fn marginal_bins_are_normalised_and_consistent() {
        let m1 = ToySgd::new(1, ToyLoss::DoubleWell { c0: 0.25 }, 100.0);
        let fine: Vec<f64> = (0..=40).map(|i| -2.0 + 0.1 * i as f64).collect();
        let coarse: Vec<f64> = (0..=20).map(|i| -2.0 + 0.2 * i as f64).collect();
        let d = Density::Power(stationary_exponent(1.0));
        let qf = marginal_bins(&m1, &d, Coord::X, &fine);
        let qc = marginal_bins(&m1, &d, Coord::X, &coarse);
        assert!(qf[40] > 0.0 && qf[40] < 0.01);
        for j in 0..20 {
            let e = (qc[j] - qf[2 * j] - qf[2 * j + 1]).abs();
            // Simpson error ~1e-9, six decades below the Monte Carlo errors (~1e-3).
            assert!(e < 1e-7, "bin {j}: {e:e}");
        }
        let m2 = ToySgd::new(
            2,
            ToyLoss::Ring {
                k0: 10.0,
                a: 0.8,
                c0: 0.5,
            },
            1.0,
        );
        let edges: Vec<f64> = (0..=8).map(|i| -PI + PI * i as f64 / 4.0).collect();
        let q = marginal_bins(&m2, &Density::Power(2.0), Coord::Angle, &edges);
        assert!(
            q[8].abs() < 1e-6,
            "angle bins cover the plane: outside {}",
            q[8]
        );
        // Symmetric in φ ↦ −φ, and heavier at φ = π (flat) than at φ = 0 (sharp).
        assert!((q[0] - q[7]).abs() < 1e-9 && (q[3] - q[4]).abs() < 1e-9);
        assert!(q[0] > 1.5 * q[3]);
    }
}
