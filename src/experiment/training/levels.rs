//! The trainer's coupled solver levels, shared by its experiments: which levels a
//! dynamics runs, the runs themselves (the same Brownian path at substeps/c), and a
//! replica's value and solver-error estimate from its levels.
//!
//! `weak_order` always runs an SDE or flow's coarse level when `substeps` is even (its
//! weak errors need the solver's error beside them); `least_squares_risk` and
//! `implicit_bias_sweep` run them only with `extrapolate`, so their default cost is
//! unchanged. With `extrapolate` an SDE's value is Talay–Tubaro's 2 g₁ − g₂.

use super::collect_with;
use super::config::{Setup, TrainExperiment};
use crate::train::{is_diverged, Dynamics, TrainJob, Trainer};

/// The coupled levels a dynamics runs (`solver::levels::coarsenings`): weak_order
/// always asks for them, the others only with `extrapolate`.
pub fn levels(s: &Setup, d: Dynamics) -> Vec<u32> {
    let wanted = s.cfg.extrapolate || s.experiment == TrainExperiment::WeakOrder;
    crate::solver::levels::coarsenings(d, s.cfg.substeps, wanted, s.cfg.extrapolate)
}

/// A replica's value and its solver-error estimate from g on its levels (fine first):
/// `solver::levels::value_and_error` for the dynamics' solver (RK4 for a flow).
pub fn value_and_error(d: Dynamics, g: &[f64]) -> (f64, Option<f64>) {
    crate::solver::levels::value_and_error(g, d.is_ode())
}

/// The rows of every level of a job: `[level][checkpoint][replica]` → row.
pub struct Levels {
    pub dynamics: Dynamics,
    pub rows: Vec<Vec<Vec<Vec<f64>>>>,
}

impl Levels {
    /// Runs `replicas` of `job` at each of `levels(s, job.dynamics)`, every level on the
    /// same Brownian path; adds the path-steps run to `path_steps`.
    pub fn collect(
        s: &Setup,
        t: &dyn Trainer,
        job: &TrainJob,
        replicas: u64,
        progress: &dyn Fn(f64),
        path_steps: &mut f64,
    ) -> anyhow::Result<Levels> {
        let mut rows = Vec::new();
        for c in levels(s, job.dynamics) {
            let mut j = job.clone();
            j.coarsen = c;
            *path_steps += replicas as f64 * j.path_steps();
            rows.push(collect_with(t, &j, replicas, progress)?);
        }
        Ok(Levels {
            dynamics: job.dynamics,
            rows,
        })
    }

    /// Replica `r`'s rows at checkpoint `c`, one per level (fine first), or None when
    /// it diverged on any level (excluded from every mean, and counted).
    pub fn replica(&self, c: usize, r: usize) -> Option<Vec<&[f64]>> {
        let rows: Vec<&[f64]> = self.rows.iter().map(|l| &l[c][r][..]).collect();
        (!rows.iter().any(|row| is_diverged(row))).then_some(rows)
    }

    /// The replicas at checkpoint `c` (every level holds as many).
    pub fn replicas(&self, c: usize) -> usize {
        self.rows[0][c].len()
    }

    /// g on each of a replica's level rows, combined by `value_and_error`.
    pub fn value(&self, rows: &[&[f64]], mut g: impl FnMut(&[f64]) -> f64) -> (f64, Option<f64>) {
        let v: Vec<f64> = rows.iter().map(|r| g(r)).collect();
        value_and_error(self.dynamics, &v)
    }
}
