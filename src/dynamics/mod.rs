//! The dynamics of DESIGN §3, written once against the `Model` interface.
//!
//! `path.rs` advances one replica on the CPU (f64); `shaders/dynamics/*.wgsl` are the
//! GPU twins, composed with a model's WGSL. Both consume the same Philox draws
//! (`rng.rs`): normal number j of step k of replica r in stream `tag` is lane j % 4 of
//! `philox((r, k, j / 4, tag), seed)`.

pub mod momentum;
pub mod path;
mod steps;

use crate::model::Capability;
use std::fmt;

/// Every dynamics of DESIGN §3, one enum for every engine. An engine runs the ones it
/// lists ([`SMALL_D`], `train::SUPPORTED`, `meanfield::SUPPORTED`); its config refuses
/// the others with the allowed names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dynamics {
    Gd,
    Sgd,
    Gf,
    Mgf,
    Sme1,
    Sme2,
    Smf1,
    Smf2,
    /// SGF of Pesme et al. (seed 000 eq. 37–38): the SME with the residuals' spread
    /// replaced by the loss, noise `sqrt(2ηL(w)/(bN)) Jᵀ Xᵀ dB` (finite data only).
    Sgf,
    /// Heavy-ball SGD in friction form (DESIGN §3b): state (x, p), p ← p − η(γp + ĝ),
    /// then x ← x + η p, ĝ the minibatch gradient.
    Msgd,
    /// Its first-order SME: dX = P dt, dP = −(γP + ∇R(X)) dt + sqrt(η/b) Σ^{1/2}(X) dW.
    Msme1,
}

/// Every dynamics, in code order.
pub const ALL: [Dynamics; 11] = [
    Dynamics::Gd,
    Dynamics::Sgd,
    Dynamics::Gf,
    Dynamics::Mgf,
    Dynamics::Sme1,
    Dynamics::Sme2,
    Dynamics::Smf1,
    Dynamics::Smf2,
    Dynamics::Sgf,
    Dynamics::Msgd,
    Dynamics::Msme1,
];

/// The names of [`ALL`].
pub const ALL_NAMES: [&str; 11] = [
    "gd", "sgd", "gf", "mgf", "sme1", "sme2", "smf1", "smf2", "sgf", "msgd", "msme1",
];

/// The dynamics the small-d engine runs (weak_order, n_point, invariant): all but sgf,
/// which needs a finite data set.
pub const SMALL_D: [Dynamics; 10] = without_sgf(ALL);

/// The names of [`SMALL_D`].
pub const NAMES: [&str; 10] = without_sgf(ALL_NAMES);

/// `ALL` or `ALL_NAMES` without sgf's entry.
const fn without_sgf<T: Copy>(all: [T; 11]) -> [T; 10] {
    let sgf = Dynamics::Sgf as usize;
    let mut out = [all[0]; 10];
    let mut i = 0;
    while i < 10 {
        out[i] = all[if i < sgf { i } else { i + 1 }];
        i += 1;
    }
    out
}

/// What kind of update a dynamics is: decides the solver and the kernel template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// gd, sgd: the discrete iteration itself.
    Discrete,
    /// gf, mgf: deterministic ODE (RK4).
    Ode,
    /// sme*, smf*, sgf: SDE (Euler–Maruyama or exact).
    Sde,
}

/// How a dynamics advances one step of size η, in the detail the finite-data trainer
/// needs: which gradient a discrete step takes, and the SGF's noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// x ← x − η g, g the full (gd) or minibatch (sgd) gradient.
    Discrete { full: bool },
    /// RK4 with `substeps` per step.
    Ode,
    /// Euler–Maruyama with `substeps` per step.
    Sde { pesme: bool },
}

impl Dynamics {
    pub fn parse(s: &str) -> Option<Self> {
        let i = ALL_NAMES.iter().position(|n| *n == s)?;
        Some(ALL[i])
    }

    pub fn name(self) -> &'static str {
        ALL_NAMES[self.code() as usize]
    }

    /// Stable code, also the high byte of the Philox stream tag (small-d engine and
    /// trainer; mean-field keeps its own, `meanfield::stream_code`).
    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn update(self) -> Update {
        match self {
            Dynamics::Gd => Update::Discrete { full: true },
            Dynamics::Sgd | Dynamics::Msgd => Update::Discrete { full: false },
            Dynamics::Gf | Dynamics::Mgf => Update::Ode,
            Dynamics::Sgf => Update::Sde { pesme: true },
            _ => Update::Sde { pesme: false },
        }
    }

    pub fn kind(self) -> Kind {
        match self.update() {
            Update::Discrete { .. } => Kind::Discrete,
            Update::Ode => Kind::Ode,
            Update::Sde { .. } => Kind::Sde,
        }
    }

    /// Integrated by RK4 (the deterministic flows).
    pub fn is_ode(self) -> bool {
        self.kind() == Kind::Ode
    }

    /// Drift evaluations per step with `substeps` substeps: RK4 stages × substeps, EM
    /// substeps, or 1 for a discrete step.
    pub fn evaluations_per_step(self, substeps: u32) -> u32 {
        match self.kind() {
            Kind::Discrete => 1,
            Kind::Ode => 4 * substeps,
            Kind::Sde => substeps,
        }
    }

    /// Paths differ from one another (needs Monte Carlo), as opposed to gd/gf/mgf.
    pub fn is_random(self) -> bool {
        !matches!(self, Dynamics::Gd | Dynamics::Gf | Dynamics::Mgf)
    }

    /// Order-2 (modified) drift −∇(R + (η/4)|∇R|²).
    pub fn modified(self) -> bool {
        matches!(self, Dynamics::Mgf | Dynamics::Sme2 | Dynamics::Smf2)
    }

    /// SMF: one cylindrical noise shared by all particles of a replica; SME: Σ^{1/2}
    /// driven by an independent Brownian motion per particle.
    pub fn shared_noise(self) -> bool {
        matches!(self, Dynamics::Smf1 | Dynamics::Smf2)
    }

    /// The discrete scheme this dynamics is compared with in a weak-order study.
    pub fn reference(self) -> Option<Dynamics> {
        match self {
            Dynamics::Gd | Dynamics::Sgd | Dynamics::Msgd => None,
            Dynamics::Msme1 => Some(Dynamics::Msgd),
            _ => Some(Dynamics::Sgd),
        }
    }

    /// What this dynamics needs of a model beyond the per-sample gradient (checked
    /// against the model's declared capabilities before a job runs,
    /// `model::capability::check`).
    pub fn needs(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            Dynamics::Sgd | Dynamics::Msgd => &[],
            Dynamics::Gd | Dynamics::Gf | Dynamics::Mgf => &[FullGradient],
            Dynamics::Sgf => &[FullGradient, SgfNoise],
            Dynamics::Sme1 | Dynamics::Sme2 | Dynamics::Smf1 | Dynamics::Smf2 | Dynamics::Msme1 => {
                &[FullGradient, NoiseRoot]
            }
        }
    }

    /// What the solver "exact" needs of a model for this SDE: the heavy-ball SDE's
    /// transition is a law of the pair (X, P), the others' of X alone.
    pub fn exact_needs(self) -> Capability {
        if self.has_momentum() {
            Capability::ExactMomentumTransition
        } else {
            Capability::ExactTransition
        }
    }

    /// Carries a momentum p beside each state x (heavy ball, DESIGN §3b).
    pub fn has_momentum(self) -> bool {
        matches!(self, Dynamics::Msgd | Dynamics::Msme1)
    }
}

impl fmt::Display for Dynamics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a continuous dynamics is solved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Solver {
    /// Euler–Maruyama (SDE) or RK4 (ODE) with `substeps` per SGD step, plus coarser
    /// coupled levels for the solver-error estimate (and Talay–Tubaro extrapolation).
    Substeps { substeps: u32, extrapolate: bool },
    /// Exact transition (OU / geometric BM): no discretisation error.
    Exact,
}

impl Solver {
    /// Number of coupled levels a path carries: fine, coarse (and coarsest).
    pub fn levels(&self, kind: Kind) -> usize {
        match (kind, self) {
            (Kind::Discrete, _) | (_, Solver::Exact) => 1,
            (Kind::Ode, _) => 2,
            (Kind::Sde, Solver::Substeps { extrapolate, .. }) => {
                if *extrapolate {
                    3
                } else {
                    2
                }
            }
        }
    }
}

/// Everything that fixes the law of one replica's path: a run of one dynamics at one η.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub dynamics: Dynamics,
    pub eta: f64,
    pub batch: u32,
    pub solver: Solver,
    /// Initial position of each particle (n-point motion when more than one).
    pub x0: Vec<crate::model::Vector>,
    /// Step indices (k = t/η) at which observables are recorded, ascending.
    pub checkpoints: Vec<u32>,
    pub observables: Vec<crate::observables::Observable>,
    /// Philox stream tag (4th counter word): distinct per (dynamics, η).
    pub stream: u32,
    /// Philox key (the run's seed).
    pub key: [u32; 2],
    /// A path is diverged once a coordinate is non-finite or exceeds this in magnitude.
    pub bound: f64,
    /// Coupled weak-error estimator (DESIGN §7b): the replica also runs SGD, and the SDE's
    /// Brownian increments over each SGD step are pinned to SGD's data normals.
    pub coupling: Option<Coupling>,
    /// Friction γ > 0 of the heavy-ball dynamics (msgd, msme1; config
    /// `"momentum": {"friction": γ}`); ignored by the others.
    pub friction: f64,
}

/// How a coupled SDE run draws its discrete partner (sgd; msgd for msme1): that run's
/// Philox stream (same seed, replica and step counters, so its path is the independent
/// run's path), with the run's batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coupling {
    pub sgd_stream: u32,
}

/// What a statistic of a run is: its observable's value (the only channel of an
/// uncoupled run), and for a coupled run also SGD's value and the per-replica
/// difference D = g(x_K) − g(X_T) (Talay–Tubaro: g(x_K) − (2 g_f − g_c)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Value,
    Sgd,
    Difference,
}

pub const COUPLED_CHANNELS: [Channel; 3] = [Channel::Value, Channel::Sgd, Channel::Difference];

impl RunSpec {
    /// The small-d engine runs [`SMALL_D`] only (its configs refuse the others); a spec
    /// built in code otherwise is a bug, not a run.
    pub fn assert_small_d(&self) {
        assert!(
            SMALL_D.contains(&self.dynamics),
            "the small-d engine runs {}, not {}",
            NAMES.join(", "),
            self.dynamics
        );
        // A coupled run's noise is the shared reduced noise (`steps::uses_smf_noise`):
        // the SDE's own law for one particle, or for SMF's shared noise; SME's or
        // msme1's particles with one pinned noise would be another process.
        assert!(
            self.coupling.is_none() || self.particles() == 1 || self.dynamics.shared_noise(),
            "{} with {} particles cannot be coupled (only SMF shares its noise between particles)",
            self.dynamics,
            self.particles()
        );
    }
    pub fn steps(&self) -> u32 {
        *self.checkpoints.last().unwrap_or(&0)
    }
    pub fn particles(&self) -> usize {
        self.x0.len()
    }
    /// State vectors one replica carries: every particle on every level, plus a coupled
    /// run's discrete partner (one vector per particle), plus (msgd, msme1) a momentum for each of these, stored
    /// after them (from [`Self::momentum_offset`]).
    pub fn state_vectors(&self) -> usize {
        let positions = self.momentum_offset();
        if self.dynamics.has_momentum() {
            2 * positions
        } else {
            positions
        }
    }
    /// Index of the first momentum vector in the state: the momentum of state vector q
    /// (a particle on a level, or one of the coupled partner's) is vector
    /// `momentum_offset() + q`.
    pub fn momentum_offset(&self) -> usize {
        (self.levels() + usize::from(self.coupling.is_some())) * self.particles()
    }
    /// Channels per observable: 3 for a coupled run, else 1.
    pub fn channels(&self) -> &'static [Channel] {
        if self.coupling.is_some() {
            &COUPLED_CHANNELS
        } else {
            &COUPLED_CHANNELS[..1]
        }
    }
    /// Statistics per checkpoint: index `ch * n_obs + o` for channel ch, observable o;
    /// a run's statistics are indexed `c * n_stats + ch * n_obs + o`.
    pub fn n_stats(&self) -> usize {
        self.observables.len() * self.channels().len()
    }
    /// (channel, observable) of statistic `k` of a checkpoint.
    pub fn stat(&self, k: usize) -> (Channel, crate::observables::Observable) {
        let n = self.observables.len();
        (self.channels()[k / n], self.observables[k % n])
    }
    pub fn levels(&self) -> usize {
        self.solver.levels(self.dynamics.kind())
    }
    /// Whether a solver-error estimate is carried alongside each observable.
    pub fn has_solver_error(&self) -> bool {
        self.levels() > 1
    }
    /// c in the drift −(∇R + c H∇R): η/2 for the modified dynamics.
    pub fn drift_c(&self) -> f64 {
        if self.dynamics.modified() {
            0.5 * self.eta
        } else {
            0.0
        }
    }
    /// The solver "exact"'s transition of this run's SDE over one SGD step (time η):
    /// msme1's of the pair (X, P), the others' of X with their drift. The one place
    /// that picks it (CPU `path::prepare`, GPU `model_consts`).
    pub fn exact_transition(&self, m: &dyn crate::model::Model) -> crate::model::ExactStep {
        if self.dynamics.has_momentum() {
            m.exact_momentum_step(self.friction, self.noise_var(), self.eta)
        } else {
            m.exact_step(self.drift_c(), self.noise_var(), self.eta)
        }
    }
    /// The exact transition this run steps with: `Some` for an SDE with the solver
    /// "exact". Its model must have it: configs refuse the solver otherwise, so a spec
    /// built in code without one is a bug, stopped here rather than run with another
    /// step (the GPU kernel would compile with the first-order one).
    pub fn exact_solver_step(
        &self,
        m: &dyn crate::model::Model,
    ) -> Option<crate::model::ExactStep> {
        if !(self.dynamics.kind() == Kind::Sde && self.solver == Solver::Exact) {
            return None;
        }
        let t = self.exact_transition(m);
        assert!(
            !matches!(t, crate::model::ExactStep::Unavailable),
            "{} with sde.solver exact: the model has no such transition (configs refuse it)",
            self.dynamics
        );
        Some(t)
    }
    /// Variance scale of the SDE noise, η/b.
    pub fn noise_var(&self) -> f64 {
        self.eta / self.batch as f64
    }
    /// Fine substeps per SGD step (1 for discrete and exact).
    pub fn substeps(&self) -> u32 {
        match (self.dynamics.kind(), self.solver) {
            (Kind::Discrete, _) | (_, Solver::Exact) => 1,
            (_, Solver::Substeps { substeps, .. }) => substeps,
        }
    }
    /// Path-steps one replica costs (fine substeps count as steps; a coupled run's SGD
    /// partner adds one per step).
    pub fn work_per_path(&self) -> f64 {
        let partner = if self.coupling.is_some() { 1.0 } else { 0.0 };
        self.steps() as f64 * (self.substeps() as f64 + partner)
    }
    /// Stream tag of (dynamics, η index).
    pub fn stream_tag(dynamics: Dynamics, eta_index: usize) -> u32 {
        (dynamics.code() << 24) | (eta_index as u32 & 0xFF_FFFF)
    }
}
