//! The WGSL constants of each model (the Rust half of `shaders/models/<name>.wgsl`):
//! matrices and scalars baked into the composed source as `const`, so the shader
//! compiler can fold them, plus the model's draw counts (NT, NSMF, NE).

use super::compose::{lit, lits};
use crate::backend::Precision;
use crate::dynamics::RunSpec;
use crate::model::{AnyModel, ExactStep, ToyLoss};
use nalgebra::DMatrix;
use std::fmt::Write;

/// Draw counts a model's WGSL needs as array sizes.
pub struct ModelDims {
    /// Normals per data sample θ.
    pub nt: usize,
    /// Dimension of the reduced cylindrical (SMF) noise.
    pub nsmf: usize,
    /// Normals per particle of the exact step.
    pub ne: usize,
}

/// Row-major flattening of a d×d matrix.
fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    m.transpose().as_slice().to_vec()
}

fn arr(out: &mut String, name: &str, len: &str, v: &[f64], p: Precision) {
    let _ = writeln!(out, "const {name} = array<real, {len}>({});", lits(v, p));
}

fn scalar(out: &mut String, name: &str, v: f64, p: Precision) {
    let _ = writeln!(out, "const {name}: real = {};", lit(v, p));
}

/// WGSL constants of `model` for `spec` (the exact-step constants are always emitted,
/// for the run's transition (`RunSpec::exact_transition`: drift c, noise variance, η,
/// and msme1's friction), so every composed shader has them).
pub fn model_consts(model: &AnyModel, spec: &RunSpec, p: Precision) -> (String, ModelDims) {
    let m = model.as_dyn();
    let exact = spec.exact_transition(m);
    let dims = ModelDims {
        nt: m.data_normals(),
        nsmf: m.smf_noise_dim(),
        ne: exact.normals().max(1),
    };
    let mut out = String::new();
    match model {
        AnyModel::Quadratic(q) => {
            arr(&mut out, "Q_A", "DD", &row_major(&q.a), p);
            arr(&mut out, "Q_MEAN", "D", q.mean.as_slice(), p);
            arr(&mut out, "Q_SHALF", "DD", &row_major(&q.s_half), p);
            arr(&mut out, "Q_F", "DD", &row_major(&q.f), p);
            arr(&mut out, "Q_SIGHALF", "DD", &row_major(&q.sigma_half), p);
            scalar(&mut out, "Q_TR_AS", (&q.a * &q.cov).trace(), p);
            // On the NZ coordinates of X, or of msme1's pair (X, P).
            if let ExactStep::Ou { mean, e, c } = exact {
                arr(&mut out, "EX_MEAN", "NZ", &mean, p);
                arr(&mut out, "EX_E", "NZ * NZ", &e, p);
                arr(&mut out, "EX_C", "NZ * NZ", &c, p);
            }
        }
        AnyModel::Multiplicative(mm) => {
            scalar(&mut out, "M_MEAN", mm.mean, p);
            scalar(&mut out, "M_STD", mm.std, p);
            // Geometric BM has no transition of the pair (X, P) (config refuses msme1's
            // exact solver here): the first-order step's constants, for the kernel to
            // compile.
            let gbm = m.exact_step(spec.drift_c(), spec.noise_var(), spec.eta);
            if let ExactStep::Gbm { drift, vol } = gbm {
                scalar(&mut out, "EX_DRIFT", drift, p);
                scalar(&mut out, "EX_VOL", vol, p);
            }
        }
        AnyModel::ToySgd(t) => {
            let (code, k0, a) = match t.loss {
                ToyLoss::DoubleWell { .. } => (0, 0.0, 0.0),
                ToyLoss::Ring { k0, a, .. } => (1, k0, a),
            };
            let _ = writeln!(out, "const T_LOSS: u32 = {code}u;");
            scalar(&mut out, "T_SIGMA", t.sigma, p);
            scalar(&mut out, "T_C0", t.loss.c0(), p);
            scalar(&mut out, "T_K0", k0, p);
            scalar(&mut out, "T_A", a, p);
        }
    }
    (out, dims)
}
