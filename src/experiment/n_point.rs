//! Experiment `n_point`: several particles of one replica started at different points
//! and driven by the same data (SGD), the same cylindrical noise (SMF) or independent
//! noises (SME). SMF reproduces SGD's joint (n-point) motion; SME only the one-point
//! laws (seed 001). Reported: per-particle means, E|x_p − x_q|², and the correlation of
//! the particles' first coordinates with a batch-means standard error.

use super::{Collected, Plan};
use crate::backend::shifts;
use crate::observables::Observable;
use crate::output::report::Correlation;

/// Batches whose correlations give the standard error of the correlation.
pub const BATCHES: u64 = 20;

/// For each particle p: x_p[0] and x_p[0]²; for each pair p < q: x_p[0]·x_q[0] and
/// |x_p − x_q|².
pub fn observables(particles: usize) -> Vec<Observable> {
    let mut v = Vec::new();
    for p in 0..particles as u8 {
        v.push(Observable::X0(p));
        v.push(Observable::Prod(p, p));
    }
    for p in 0..particles as u8 {
        for q in p + 1..particles as u8 {
            v.push(Observable::Prod(p, q));
            v.push(Observable::Dist2(p, q));
        }
    }
    v
}

fn index_of(obs: &[Observable], o: Observable) -> usize {
    obs.iter()
        .position(|x| *x == o)
        .expect("n_point observable present")
}

/// Pearson correlation from the shifted moments of one batch (or the total).
fn correlation(m: &[crate::stats::Moments], sh: &[f64], ix: [usize; 5]) -> f64 {
    let mean = |i: usize| m[i].mean_se().0 + sh[i];
    let (ex, exx, ey, eyy, exy) = (
        mean(ix[0]),
        mean(ix[1]),
        mean(ix[2]),
        mean(ix[3]),
        mean(ix[4]),
    );
    let cov = exy - ex * ey;
    let vx = exx - ex * ex;
    let vy = eyy - ey * ey;
    if vx <= 0.0 || vy <= 0.0 {
        return f64::NAN;
    }
    cov / (vx * vy).sqrt()
}

pub fn correlations(plan: &Plan, col: &Collected) -> Vec<Correlation> {
    let mut out = Vec::new();
    for (ri, run) in plan.runs.iter().enumerate() {
        let obs = &run.spec.observables;
        let n_obs = obs.len();
        let sh = shifts(&plan.checked.model, &run.spec);
        let total = col.total(ri);
        let np = run.spec.particles() as u8;
        for (c, &t) in plan.checked.times.iter().enumerate() {
            let at = |ms: &[crate::stats::Moments]| ms[c * n_obs..(c + 1) * n_obs].to_vec();
            let shc = &sh[..];
            for p in 0..np {
                for q in p + 1..np {
                    let ix = [
                        index_of(obs, Observable::X0(p)),
                        index_of(obs, Observable::Prod(p, p)),
                        index_of(obs, Observable::X0(q)),
                        index_of(obs, Observable::Prod(q, q)),
                        index_of(obs, Observable::Prod(p, q)),
                    ];
                    let corr = correlation(&at(&total), shc, ix);
                    let per_batch: Vec<f64> = col.moments[ri]
                        .iter()
                        .filter(|b| b[c * n_obs].count > 1)
                        .map(|b| correlation(&at(b), shc, ix))
                        .filter(|v| v.is_finite())
                        .collect();
                    let stderr = batch_stderr(&per_batch);
                    let d = index_of(obs, Observable::Dist2(p, q));
                    let (dm, dse) = total[c * n_obs + d].mean_se();
                    out.push(Correlation {
                        dynamics: run.spec.dynamics.name().into(),
                        eta: run.spec.eta,
                        t,
                        particles: [p as usize, q as usize],
                        correlation: corr,
                        stderr,
                        mean_dist2: dm + sh[d],
                        mean_dist2_stderr: dse,
                    });
                }
            }
        }
    }
    out
}

/// Standard error of the mean of batch estimates (NaN with fewer than 2 batches;
/// 0 when the estimate is deterministic).
fn batch_stderr(v: &[f64]) -> f64 {
    let n = v.len();
    if n < 2 {
        return f64::NAN;
    }
    let m = v.iter().sum::<f64>() / n as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt()
}
