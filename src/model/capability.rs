//! What a model offers beyond the per-sample gradient every model has, and the one
//! check of a job against it, shared by the three engines: each model declares its
//! `Capabilities` (a small-d model through `Model::capabilities`, the trainer's
//! through `train::capabilities`, mean-field's through `meanfield::model::
//! capabilities`), each dynamics names what it needs (`Dynamics::needs`), and
//! [`check`] refuses a job before it runs with an error naming the model, the dynamics
//! and what is missing.

use crate::dynamics::Dynamics;

/// One thing a model may offer. Every model has the per-sample gradient ∇R(x, θ) and
/// a sampler of θ (sgd, msgd); the rest is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// The full gradient ∇R (population or data set): the drift of gd, the flows and
    /// the SDEs, and (with its Hessian-vector product) their order-2 correction.
    FullGradient,
    /// A square root of SGD's gradient-noise covariance: Σ^{1/2}(x), a finite
    /// reduction of ∫ G(x, θ) W(dθ, dt), or a data set's N^{-1/2} Σ_i G(x, θ_i) dB_i.
    /// The noise of sme1, sme2, smf1, smf2 and msme1.
    NoiseRoot,
    /// The SGF's noise (Pesme et al.): the squared loss's residuals over a finite data
    /// set, scaled by the loss.
    SgfNoise,
    /// The closed-form transition of the model's SDEs and flows (the solver "exact").
    ExactTransition,
    /// The closed-form transition of the heavy-ball SDE msme1 (DESIGN §3b), a law of the
    /// pair (X, P) (an Ornstein–Uhlenbeck pair for the quadratic model).
    ExactMomentumTransition,
    /// SGD's noise linear in Gaussian data normals, so that the coupled estimator
    /// (DESIGN §7b) can pin the SDE's Brownian increments to SGD's normals.
    GaussianLinearNoise,
}

impl Capability {
    /// How an error names it.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::FullGradient => "the full gradient ∇R",
            Capability::NoiseRoot => {
                "a square root of the gradient noise (Σ^{1/2}, or a finite data set's \
                 N^{-1/2} Σ_i G(x, θ_i) dB_i)"
            }
            Capability::SgfNoise => "the SGF's noise (the squared loss's residuals on a data set)",
            Capability::ExactTransition => "an exact transition",
            Capability::ExactMomentumTransition => {
                "an exact transition of the heavy-ball SDE (the pair (X, P))"
            }
            Capability::GaussianLinearNoise => "SGD noise linear in Gaussian data normals",
        }
    }
}

/// What a model declares (see [`Capability`] for each field's meaning). Each
/// declaration is held to the model's code by a test (`tests/model_capabilities.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub full_gradient: bool,
    pub noise_root: bool,
    pub sgf_noise: bool,
    pub exact_transition: bool,
    pub exact_momentum_transition: bool,
    pub gaussian_linear_noise: bool,
}

impl Capabilities {
    /// A model with its full gradient and a noise root, and nothing more: the base
    /// that the declarations extend.
    pub const GRADIENT_AND_NOISE: Capabilities = Capabilities {
        full_gradient: true,
        noise_root: true,
        sgf_noise: false,
        exact_transition: false,
        exact_momentum_transition: false,
        gaussian_linear_noise: false,
    };

    pub fn has(&self, c: Capability) -> bool {
        match c {
            Capability::FullGradient => self.full_gradient,
            Capability::NoiseRoot => self.noise_root,
            Capability::SgfNoise => self.sgf_noise,
            Capability::ExactTransition => self.exact_transition,
            Capability::ExactMomentumTransition => self.exact_momentum_transition,
            Capability::GaussianLinearNoise => self.gaussian_linear_noise,
        }
    }

    /// The error message of a job that needs `what` (a capability's description) from
    /// a model that does not declare it.
    pub fn missing(model: &str, what: &str) -> String {
        format!("model {model} does not declare {what}")
    }
}

/// A dynamics that needs what its model does not declare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// Its index in the job list that was checked.
    pub index: usize,
    pub dynamics: Dynamics,
    /// What the model lacks, in the dynamics' order of needs (never empty).
    pub lacks: Vec<Capability>,
    pub model: String,
}

impl Missing {
    /// "model M does not declare A (nor B)", without the dynamics.
    pub fn model_lacks(&self) -> String {
        let what: Vec<_> = self.lacks.iter().map(|c| c.describe()).collect();
        Capabilities::missing(&self.model, &what.join(", nor "))
    }
}

impl From<Missing> for crate::config::ConfigError {
    /// A config's error at the dynamics' entry, `dynamics[i]`.
    fn from(m: Missing) -> Self {
        crate::config::ConfigError {
            field: format!("dynamics[{}]", m.index),
            message: m.to_string(),
        }
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, which {} needs", self.model_lacks(), self.dynamics)
    }
}

/// Checks every dynamics of a job list against model `model`'s declared `caps`; the
/// first one needing what the model lacks is the error.
pub fn check(model: &str, caps: Capabilities, dynamics: &[Dynamics]) -> Result<(), Missing> {
    for (index, d) in dynamics.iter().enumerate() {
        let lacks: Vec<_> = d
            .needs()
            .iter()
            .copied()
            .filter(|c| !caps.has(*c))
            .collect();
        if !lacks.is_empty() {
            return Err(Missing {
                index,
                dynamics: *d,
                lacks,
                model: model.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dynamics_but_the_minibatch_ones_needs_the_full_gradient() {
        for d in crate::dynamics::ALL {
            let needs = d.needs();
            let minibatch = matches!(d, Dynamics::Sgd | Dynamics::Msgd);
            assert_eq!(needs.contains(&Capability::FullGradient), !minibatch, "{d}");
            assert_eq!(
                needs.contains(&Capability::NoiseRoot),
                d.kind() == crate::dynamics::Kind::Sde && d != Dynamics::Sgf,
                "{d}"
            );
        }
    }

    #[test]
    fn the_first_dynamics_lacking_something_is_named_with_all_it_lacks() {
        let none = Capabilities {
            full_gradient: false,
            noise_root: false,
            ..Capabilities::GRADIENT_AND_NOISE
        };
        let jobs = [Dynamics::Sgd, Dynamics::Msgd, Dynamics::Smf1, Dynamics::Gd];
        let e = check("m", none, &jobs).unwrap_err();
        assert_eq!((e.index, e.dynamics), (2, Dynamics::Smf1));
        assert_eq!(e.lacks, [Capability::FullGradient, Capability::NoiseRoot]);
        let text = e.to_string();
        assert!(
            text.starts_with("model m does not declare the full gradient ∇R, nor a square root"),
            "{text}"
        );
        assert!(text.ends_with("which smf1 needs"), "{text}");
        assert!(check("m", none, &jobs[..2]).is_ok());
        let full = Capabilities::GRADIENT_AND_NOISE;
        assert!(check("m", full, &jobs).is_ok());
        let e = check("m", full, &[Dynamics::Gf, Dynamics::Sgf]).unwrap_err();
        assert_eq!(
            (e.index, e.lacks.as_slice()),
            (1, &[Capability::SgfNoise][..])
        );
    }
}
