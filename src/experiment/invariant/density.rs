//! The analytic side of `invariant`: the stationary and Gibbs densities of toy SGD,
//! integrated by quadrature into the histogram's bins (`marginal_bins`), so the
//! experiment and the tests compare samples with one source of truth.

use super::InvariantConfig;
use crate::model::toy_sgd::stationary_exponent;
use crate::model::{vector, ToySgd, Vector};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
/// What a histogram bins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coord {
    /// x (1-D).
    X,
    /// φ = atan2(x₂, x₁) ∈ (−π, π] (2-D): position along the ring of minima.
    Angle,
    /// r = |x| (2-D).
    Radius,
}

impl Coord {
    pub(super) fn of(self, x: &[f64]) -> f64 {
        match self {
            Coord::X => x[0],
            Coord::Angle => x[1].atan2(x[0]),
            Coord::Radius => x[0].hypot(x[1]),
        }
    }
}

/// Histogram coordinates and bin edges for a model of dimension d.
pub fn coords(d: usize, cfg: &InvariantConfig) -> Vec<(Coord, Vec<f64>)> {
    let lin = |lo: f64, hi: f64| -> Vec<f64> {
        let n = cfg.bins as usize;
        (0..=n)
            .map(|i| lo + (hi - lo) * i as f64 / n as f64)
            .collect()
    };
    let [lo, hi] = cfg.range;
    if d == 1 {
        vec![(Coord::X, lin(lo, hi))]
    } else {
        vec![(Coord::Angle, lin(-PI, PI)), (Coord::Radius, lin(lo, hi))]
    }
}

/// Composite Simpson rule on [a, b] with n (made even) panels.
fn simpson(a: f64, b: f64, n: usize, f: impl Fn(f64) -> f64) -> f64 {
    let n = n.max(2).div_ceil(2) * 2;
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

/// A density on R^d (d = 1, 2) given by its log up to a constant.
pub enum Density {
    /// f^{−p}.
    Power(f64),
    /// exp(−2f/(s f̄)).
    Gibbs { s: f64, fbar: f64 },
}

impl Density {
    /// log density minus its value at the minimum of f (f = c0), so exp() ≤ 1 and no
    /// overflow for large p.
    fn log_rel(&self, m: &ToySgd, x: &Vector) -> f64 {
        let mut at_min = crate::model::ZERO;
        at_min[0] = 1.0; // f(e₁) = c0 for both losses
        match *self {
            Density::Power(p) => m.log_power_density(x, p) - m.log_power_density(&at_min, p),
            Density::Gibbs { s, fbar } => m.log_gibbs(x, s, fbar) - m.log_gibbs(&at_min, s, fbar),
        }
    }

    fn eval(&self, m: &ToySgd, x: &Vector) -> f64 {
        self.log_rel(m, x).exp()
    }
}

/// Quadrature resolution (panels): whole-space integrals, per bin, angular inner.
const N_WHOLE: usize = 20_000;
const N_BIN: usize = 32;
const N_PHI: usize = 512;

/// ∫_0^∞ g(r) r dr via r = t/(1 − t) (the densities decay polynomially).
fn radial(g: impl Fn(f64) -> f64) -> f64 {
    simpson(0.0, 1.0, N_WHOLE / 4, |t| {
        if t >= 1.0 {
            return 0.0;
        }
        let r = t / (1.0 - t);
        g(r) * r / ((1.0 - t) * (1.0 - t))
    })
}

/// ∫_R g(x) dx via x = tan u.
fn whole_line(g: impl Fn(f64) -> f64) -> f64 {
    let h = 0.5 * PI;
    simpson(-h, h, N_WHOLE, |u| {
        let c = u.cos();
        if c <= 0.0 {
            return 0.0;
        }
        g(u.tan()) / (c * c)
    })
}

fn at_polar(r: f64, phi: f64) -> Vector {
    vector(&[r * phi.cos(), r * phi.sin()])
}

/// ∫ w(x) ρ(x) dx over R^d (unnormalised ρ = `dens`).
fn integrate(m: &ToySgd, dens: &Density, w: impl Fn(&Vector) -> f64) -> f64 {
    if m.d == 1 {
        whole_line(|x| {
            let v = vector(&[x]);
            w(&v) * dens.eval(m, &v)
        })
    } else {
        simpson(-PI, PI, N_PHI, |phi| {
            radial(|r| {
                let v = at_polar(r, phi);
                w(&v) * dens.eval(m, &v)
            })
        })
    }
}

/// Probability of each bin of `coord` (and of the rest of the space, the last entry)
/// under the normalised `dens`: the one place analytic bin masses are computed (used
/// by the experiment and the tests).
pub fn marginal_bins(m: &ToySgd, dens: &Density, coord: Coord, edges: &[f64]) -> Vec<f64> {
    let z = integrate(m, dens, |_| 1.0);
    let mut out: Vec<f64> = edges
        .windows(2)
        .map(|e| {
            let mass = match coord {
                Coord::X => simpson(e[0], e[1], N_BIN, |x| dens.eval(m, &vector(&[x]))),
                // The angular marginal ∫_0^∞ ρ(r, φ) r dr, integrated over the bin.
                Coord::Angle => simpson(e[0], e[1], N_BIN, |phi| {
                    radial(|r| dens.eval(m, &at_polar(r, phi)))
                }),
                // The radial marginal r ∫ ρ(r, φ) dφ, integrated over the bin.
                Coord::Radius => simpson(e[0], e[1], N_BIN, |r| {
                    r * simpson(-PI, PI, N_PHI, |phi| dens.eval(m, &at_polar(r, phi)))
                }),
            };
            mass / z
        })
        .collect();
    let inside: f64 = out.iter().sum();
    out.push((1.0 - inside).max(0.0));
    out
}

/// f̄ = E_ρ f under toy SGD's invariant density at s = ησ/b.
pub fn mean_loss(m: &ToySgd, s: f64) -> f64 {
    let dens = Density::Power(stationary_exponent(s));
    integrate(m, &dens, |x| m.f(x)) / integrate(m, &dens, |_| 1.0)
}
