//! Linear predictors with a reparametrisation: the prediction is `⟨β(w), x⟩` with
//!
//! - `Linear`:    β = w (linear regression), p = d parameters;
//! - `Uv`:        β = u ⊙ v, w = (u, v) (diagonal linear network, seed 003);
//! - `PlusMinus`: β = w₊² − w₋², w = (w₊, w₋) (seed 000 §5.2, Woodworth et al.);
//! - `DeepLinear`: β = W_L ⋯ W_1, a deep linear network (seed 004, `deep_linear.rs`).
//!
//! Loss over a data set `L(w) = (1/2N) Σ_i (⟨β(w), x_i⟩ − y_i)²`. Every gradient is a
//! pull-back `J(w)ᵀ g` of a β-space vector g, so the whole model is three maps (`beta`,
//! `pull`, `push`) and the curvature term `curv` of the Hessian:
//! `∇²L(w) v = Jᵀ (XᵀX/N) J v + curv(w, ∇_βL, v)`. For the first three J is diagonal
//! per block; one source of truth: the CPU trainer calls these, and
//! `shaders/train/net.wgsl` mirrors them function by function. `DeepLinear`'s J is
//! dense: its twin is `shaders/train/deep_linear.wgsl`, on whole vectors.

pub use super::deep_linear::DeepLinear;
use crate::lanes::{lane_loop, Num};
use serde::{Deserialize, Serialize};

/// The parametrisation a config names (`model.param`); `depth` and `width` complete
/// `deep_linear` (`Param::of`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamName {
    Linear,
    Uv,
    PlusMinus,
    DeepLinear,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    Linear,
    Uv,
    PlusMinus,
    DeepLinear(DeepLinear),
}

impl Param {
    /// The GPU kernels' `PARAM` constant.
    pub fn code(self) -> u32 {
        match self {
            Param::Linear => 0,
            Param::Uv => 1,
            Param::PlusMinus => 2,
            Param::DeepLinear(_) => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Param::Linear => "linear",
            Param::Uv => "uv",
            Param::PlusMinus => "plus_minus",
            Param::DeepLinear(_) => "deep_linear",
        }
    }

    /// Parameters p for d features.
    pub fn params(self, d: usize) -> usize {
        match self {
            Param::Linear => d,
            Param::DeepLinear(n) => n.params(d),
            _ => 2 * d,
        }
    }

    /// β(w). Generic over the float type so that the CPU lane groups (`T` = `Lanes`,
    /// `Lanes32`) run this very code; `T = f64` is the scalar reference.
    #[inline(always)]
    pub fn beta<T: Num>(self, w: &[T], out: &mut [T]) {
        if let Param::DeepLinear(n) = self {
            return n.beta(w, out);
        }
        let d = out.len();
        for i in 0..d {
            lane_loop::<T>();
            out[i] = match self {
                Param::Linear => w[i],
                Param::Uv => w[i] * w[d + i],
                Param::PlusMinus => w[i] * w[i] - w[d + i] * w[d + i],
                Param::DeepLinear(_) => unreachable!(),
            };
        }
    }

    /// Jᵀ g (g ∈ R^d) into out ∈ R^p.
    #[inline(always)]
    pub fn pull<T: Num>(self, w: &[T], g: &[T], out: &mut [T]) {
        if let Param::DeepLinear(n) = self {
            return n.pull(w, g, out);
        }
        let d = g.len();
        for i in 0..d {
            lane_loop::<T>();
            match self {
                Param::Linear => out[i] = g[i],
                Param::Uv => {
                    out[i] = w[d + i] * g[i];
                    out[d + i] = w[i] * g[i];
                }
                Param::PlusMinus => {
                    out[i] = w[i] * 2.0 * g[i];
                    out[d + i] = w[d + i] * -2.0 * g[i];
                }
                Param::DeepLinear(_) => unreachable!(),
            }
        }
    }

    /// J v (v ∈ R^p) into out ∈ R^d.
    #[inline(always)]
    pub fn push<T: Num>(self, w: &[T], v: &[T], out: &mut [T]) {
        if let Param::DeepLinear(n) = self {
            return n.push(w, v, out);
        }
        let d = out.len();
        for i in 0..d {
            lane_loop::<T>();
            out[i] = match self {
                Param::Linear => v[i],
                Param::Uv => w[d + i] * v[i] + w[i] * v[d + i],
                Param::PlusMinus => (w[i] * v[i] - w[d + i] * v[d + i]) * 2.0,
                Param::DeepLinear(_) => unreachable!(),
            };
        }
    }

    /// The second-derivative part of the Hessian, (∂(Jᵀ g)/∂w) v at fixed g, added
    /// into out ∈ R^p (w is read by `DeepLinear` only).
    #[inline(always)]
    pub fn curv_add<T: Num>(self, w: &[T], g: &[T], v: &[T], out: &mut [T]) {
        if let Param::DeepLinear(n) = self {
            return n.curv_add(w, g, v, out);
        }
        let d = g.len();
        for i in 0..d {
            lane_loop::<T>();
            match self {
                Param::Linear => {}
                Param::Uv => {
                    out[i] += v[d + i] * g[i];
                    out[d + i] += v[i] * g[i];
                }
                Param::PlusMinus => {
                    out[i] += v[i] * 2.0 * g[i];
                    out[d + i] -= v[d + i] * 2.0 * g[i];
                }
                Param::DeepLinear(_) => unreachable!(),
            }
        }
    }

    /// The standard initialisation at scale α: Linear 0; Uv u = √2α, v = 0;
    /// PlusMinus w₊ = w₋ = α.
    pub fn init(self, d: usize, alpha: f64) -> Vec<f64> {
        match self {
            Param::Linear => vec![0.0; d],
            Param::Uv => {
                let mut w = vec![0.0; 2 * d];
                w[..d]
                    .iter_mut()
                    .for_each(|u| *u = std::f64::consts::SQRT_2 * alpha);
                w
            }
            Param::PlusMinus => vec![alpha; 2 * d],
            Param::DeepLinear(n) => n.init(d, alpha),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finite differences are only a test oracle here (DESIGN: no FD in the engine).
    fn num_jac(p: Param, w: &[f64], d: usize) -> Vec<Vec<f64>> {
        let h = 1e-6;
        (0..w.len())
            .map(|k| {
                let (mut a, mut b) = (w.to_vec(), w.to_vec());
                a[k] += h;
                b[k] -= h;
                let (mut ba, mut bb) = (vec![0.0; d], vec![0.0; d]);
                p.beta(&a, &mut ba);
                p.beta(&b, &mut bb);
                ba.iter()
                    .zip(&bb)
                    .map(|(x, y)| (x - y) / (2.0 * h))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn pull_push_curv_match_derivatives() {
        let d = 3;
        let deep = |depth, width| Param::DeepLinear(DeepLinear { depth, width });
        for p in [
            Param::Linear,
            Param::Uv,
            Param::PlusMinus,
            deep(3, 4),
            deep(4, 2),
            deep(3, 1),
        ] {
            // Bounded entries (the same as ever for the p ≤ 6 of the diagonal ones), so
            // that the deep products stay O(1) and central differences resolve 1e-8.
            let w: Vec<f64> = (0..p.params(d))
                .map(|k| 0.3 + 0.17 * (k % 8) as f64)
                .collect();
            let jac = num_jac(p, &w, d); // jac[k][i] = ∂β_i/∂w_k
            let g = [0.5, -1.0, 2.0];
            let mut pulled = vec![0.0; w.len()];
            p.pull(&w, &g, &mut pulled);
            for k in 0..w.len() {
                let want: f64 = (0..d).map(|i| jac[k][i] * g[i]).sum();
                assert!((pulled[k] - want).abs() < 1e-8, "{p:?} pull {k}");
            }
            let v: Vec<f64> = (0..w.len()).map(|k| 1.0 - 0.4 * (k % 6) as f64).collect();
            let mut pushed = vec![0.0; d];
            p.push(&w, &v, &mut pushed);
            for i in 0..d {
                let want: f64 = (0..w.len()).map(|k| jac[k][i] * v[k]).sum();
                assert!((pushed[i] - want).abs() < 1e-8, "{p:?} push {i}");
            }
            // curv: derivative of w ↦ J(w)ᵀ g in direction v.
            let h = 1e-6;
            let wa: Vec<f64> = w.iter().zip(&v).map(|(a, b)| a + h * b).collect();
            let wb: Vec<f64> = w.iter().zip(&v).map(|(a, b)| a - h * b).collect();
            let (mut pa, mut pb) = (vec![0.0; w.len()], vec![0.0; w.len()]);
            p.pull(&wa, &g, &mut pa);
            p.pull(&wb, &g, &mut pb);
            let mut c = vec![0.0; w.len()];
            p.curv_add(&w, &g, &v, &mut c);
            for k in 0..w.len() {
                assert!(
                    (c[k] - (pa[k] - pb[k]) / (2.0 * h)).abs() < 1e-6,
                    "{p:?} curv {k}"
                );
            }
        }
    }
}
