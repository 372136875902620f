//! The results of a run as written to `results.json` (DESIGN §8). Plotting scripts read
//! this file; CSV and SVG are derived from it.

use serde::{Deserialize, Serialize};

/// Monte Carlo estimate of E g at one (dynamics, η, t, observable).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub dynamics: String,
    pub eta: f64,
    pub t: f64,
    pub observable: String,
    pub mean: f64,
    pub stderr: f64,
    /// Paths that contributed (not diverged).
    pub count: u64,
    /// Paths excluded because they diverged.
    pub diverged: u64,
    /// Estimated bias of the SDE/ODE solver (fine − coarse, or of the extrapolated
    /// value); null for discrete and exact schemes.
    pub solver_error: Option<f64>,
    pub solver_error_stderr: Option<f64>,
    /// Closed-form E g where the model has one (exact moments), for checking.
    pub exact: Option<f64>,
}

impl Point {
    /// The warning of a point whose paths (`unit`: "paths" or "replicas") partly
    /// diverged, None when none did.
    pub fn diverged_warning(&self, unit: &str) -> Option<String> {
        (self.diverged > 0).then(|| {
            format!(
                "{} η={} t={} {}: {} of {} {unit} diverged and were excluded",
                self.dynamics,
                self.eta,
                self.t,
                self.observable,
                self.diverged,
                self.diverged + self.count
            )
        })
    }
}

/// |E g(a) − E g(b)| at one (η, t, observable).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WeakError {
    pub pair: [String; 2],
    pub eta: f64,
    pub t: f64,
    pub observable: String,
    pub error: f64,
    /// Independent: sqrt(se_a² + se_b²); coupled: the standard error of the mean of
    /// the per-replica differences D; paired_datasets: of the per-data-set differences.
    pub stderr: f64,
    /// error > 3 stderr: the point is used in the order fit.
    pub resolved: bool,
    /// The solver's own error (upper 95% bound) is ≤ error/10.
    pub solver_ok: bool,
    /// Signed difference mean_b − mean_a.
    pub signed: f64,
    /// "coupled" (per-replica differences D of pinned SGD/SDE pairs, DESIGN §7b),
    /// "independent" (difference of two independent means) or "paired_datasets" (the
    /// trainer's weak_order on several data sets: differences of the two runs' means
    /// per data set).
    pub estimator: String,
    /// Coupled: (Var g_a + Var g_b) / Var D, measured on the same replicas: how many
    /// times fewer paths the coupled estimate needs than an independent one for the
    /// same stderr (paired_datasets: the same over data sets). Null for independent
    /// estimates (and when Var D = 0).
    pub variance_reduction: Option<f64>,
}

/// Fitted order of one pair's weak error in η.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Order {
    pub pair: [String; 2],
    pub observable: String,
    pub t: f64,
    pub order: f64,
    pub stderr: f64,
    pub ci95: [f64; 2],
    pub n_points: usize,
    /// e ≈ exp(intercept) η^order (for drawing the fitted line).
    pub intercept: f64,
}

/// n-point motion: joint statistics of particle pairs (experiment `n_point`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Correlation {
    pub dynamics: String,
    pub eta: f64,
    pub t: f64,
    pub particles: [usize; 2],
    /// Pearson correlation of the particles' first coordinates.
    pub correlation: f64,
    /// Delta-method standard error of the correlation.
    pub stderr: f64,
    /// E |x_p − x_q|² and its standard error.
    pub mean_dist2: f64,
    pub mean_dist2_stderr: f64,
}

/// The fluctuation of a replica's ensemble (n_point: its n particles), as width_sweep's
/// n·Var(⟨φ, ν⟩) for a network's neurons: n·Var(x̄) with x̄ the mean of the particles'
/// first coordinates, = (1/n) Σ_p Var x_p + (1/n) Σ_{p≠q} Cov(x_p, x_q). Particles with
/// independent noises (SME) give the mean of their one-point variances; particles that
/// share the data (SGD) or the noise (SMF) add (n − 1) times their mean covariance, up
/// to n times more.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Ensemble {
    pub dynamics: String,
    pub eta: f64,
    pub t: f64,
    /// n: the particles of a replica.
    pub particles: usize,
    pub n_var: f64,
    /// Batch-means standard error of `n_var`.
    pub n_var_stderr: f64,
}

/// n_point with `"estimator": "coupled"`: a statistic of SGD minus the same statistic
/// of the SMF run coupled to it (its noise pinned to SGD's data, DESIGN §7b), from the
/// same replicas, with the paired standard error; `independent_stderr` is that of the
/// difference of the two independent runs' estimates, for what the pairing saves.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Paired {
    /// The discrete run (sgd).
    pub reference: String,
    /// The coupled SDE run (smf1, smf2).
    pub dynamics: String,
    pub eta: f64,
    pub t: f64,
    /// "mean_dist2" (E|x_p − x_q|²), "correlation" (of the first coordinates) or
    /// "n_var" (n·Var of the ensemble mean, `Ensemble`).
    pub quantity: String,
    /// The pair [p, q]; null for n_var (all particles).
    pub particles: Option<[usize; 2]>,
    /// reference − dynamics.
    pub difference: f64,
    pub stderr: f64,
    /// The two runs' own estimates (as in `correlations` and `ensembles`).
    pub reference_value: f64,
    pub value: f64,
    pub independent_stderr: f64,
    /// |difference| > 3 stderr and beyond rounding: the point is used in the order fit.
    pub resolved: bool,
}

impl Paired {
    /// The statistic as `orders` and the plot name it: "mean_dist2[0,1]", "n_var".
    pub fn observable(&self) -> String {
        match self.particles {
            Some([p, q]) => format!("{}[{p},{q}]", self.quantity),
            None => self.quantity.clone(),
        }
    }

    /// As a weak error (reference vs dynamics), for the log-log plot of |difference|.
    pub fn as_weak_error(&self) -> WeakError {
        WeakError {
            pair: [self.reference.clone(), self.dynamics.clone()],
            eta: self.eta,
            t: self.t,
            observable: self.observable(),
            error: self.difference.abs(),
            stderr: self.stderr,
            resolved: self.resolved,
            solver_ok: true,
            signed: -self.difference,
            estimator: "coupled".into(),
            variance_reduction: (self.stderr > 0.0)
                .then(|| (self.independent_stderr / self.stderr).powi(2)),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub smflow_version: String,
    pub experiment: String,
    pub name: String,
    pub backend: String,
    pub adapter: String,
    pub precision: String,
    pub seed: u64,
    /// Paths per (dynamics, η) in this output (one shard's share for `--shard`).
    pub paths: u64,
    /// `i/N` for shard outputs; null for whole runs and merged runs.
    pub shard: Option<String>,
    pub wall_seconds: f64,
    /// Path-steps (fine SDE substeps count as steps) per second of simulation.
    pub path_steps_per_second: f64,
    pub points: Vec<Point>,
    pub weak_errors: Vec<WeakError>,
    pub orders: Vec<Order>,
    #[serde(default)]
    pub correlations: Vec<Correlation>,
    /// n_point: n·Var of each run's ensemble mean (empty for the other experiments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensembles: Vec<Ensemble>,
    /// n_point with the coupled estimator: SGD − SMF per statistic (`Paired`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paired: Vec<Paired>,
    /// Human-readable warnings (diverged paths, unresolved errors, solver flags).
    pub warnings: Vec<String>,
    /// With `"target"`: the pilot and the paths it chose per η.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetReport>,
    /// The config as given (with defaults filled in).
    pub config: serde_json::Value,
}

/// What a targeted run did: the pilot (paths per η, on its own Philox key) and, per η,
/// the paths its estimates asked for and the paths run (capped by `paths`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetReport {
    pub rel_stderr: f64,
    pub pilot_paths: u64,
    pub etas: Vec<f64>,
    /// Paths for stderr ≤ rel_stderr·|error| by the pilot's estimates (null where the
    /// pilot left a weak error at that η unresolved).
    pub paths_wanted: Vec<Option<f64>>,
    pub paths_run: Vec<u64>,
}
