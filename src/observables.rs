//! Observables g evaluated on a replica's state (particles × d).
//!
//! Single-particle observables act on particle `p` (weak-order studies use p = 0);
//! the two-particle ones serve the n-point experiment. The WGSL twin is
//! `shaders/common/observables.wgsl`.

use crate::model::{Model, Vector};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Observable {
    /// |x_p|²
    Norm2(u8),
    /// first coordinate of x_p
    X0(u8),
    /// cos(first coordinate of x_p)
    Cos(u8),
    /// R(x_p)
    Loss(u8),
    /// x_p[0] · x_q[0]
    Prod(u8, u8),
    /// |x_p − x_q|²
    Dist2(u8, u8),
}

/// Names accepted in configs for single-particle observables.
pub const NAMES: [&str; 4] = ["norm2", "x0", "cos", "loss"];

impl Observable {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "norm2" => Observable::Norm2(0),
            "x0" => Observable::X0(0),
            "cos" => Observable::Cos(0),
            "loss" => Observable::Loss(0),
            _ => return None,
        })
    }

    pub fn eval<M: Model>(&self, m: &M, x: &[Vector]) -> f64 {
        let d = m.dim();
        match *self {
            Observable::Norm2(p) => x[p as usize][..d].iter().map(|v| v * v).sum(),
            Observable::X0(p) => x[p as usize][0],
            Observable::Cos(p) => x[p as usize][0].cos(),
            Observable::Loss(p) => m.loss(&x[p as usize]),
            Observable::Prod(p, q) => x[p as usize][0] * x[q as usize][0],
            Observable::Dist2(p, q) => (0..d)
                .map(|i| (x[p as usize][i] - x[q as usize][i]).powi(2))
                .sum(),
        }
    }

    /// Highest particle index the observable reads.
    /// Whether g ≥ 0 on every state (|x|², |x_p − x_q|², x_p[0]²): a negative mean of
    /// such an observable is an artefact (an extrapolation gone wrong, or a bug).
    pub fn nonnegative(&self) -> bool {
        match *self {
            Observable::Norm2(_) | Observable::Dist2(..) => true,
            Observable::Prod(p, q) => p == q,
            _ => false,
        }
    }

    pub fn max_particle(&self) -> usize {
        match *self {
            Observable::Norm2(p) | Observable::X0(p) | Observable::Cos(p) | Observable::Loss(p) => {
                p as usize
            }
            Observable::Prod(p, q) | Observable::Dist2(p, q) => p.max(q) as usize,
        }
    }
}

impl fmt::Display for Observable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, p) = match *self {
            Observable::Norm2(p) => ("norm2", p),
            Observable::X0(p) => ("x0", p),
            Observable::Cos(p) => ("cos", p),
            Observable::Loss(p) => ("loss", p),
            Observable::Prod(p, q) => return write!(f, "x0[{p}]*x0[{q}]"),
            Observable::Dist2(p, q) => return write!(f, "dist2[{p},{q}]"),
        };
        if p == 0 {
            write!(f, "{name}")
        } else {
            write!(f, "{name}[{p}]")
        }
    }
}
