//! `smflow compare` of an `invariant` config, beyond the paths and moments every small-d
//! compare checks: both backends' histograms of the same paths, bin by bin, and their
//! TV distances to the predicted density. The backends simulate the same paths, so
//! the histograms differ only by the few paths float rounding moves across a bin edge
//! (or out of the bound): each bin's difference is compared with its binomial standard
//! error, each TV difference with the TV's jackknife error.

use crate::backend::Backend;
use crate::experiment::config::Checked;
use crate::experiment::invariant::{self, RunResult};
use serde::Serialize;

/// One histogram of one (dynamics, η) on both backends.
#[derive(Serialize)]
pub struct HistogramComparison {
    dynamics: String,
    eta: f64,
    coordinate: String,
    bins: usize,
    /// Paths histogrammed (in range, not diverged) on each backend.
    count_cpu: u64,
    count_gpu: u64,
    /// max over bins of |density_gpu − density_cpu| / (binomial SE of the bin, the
    /// larger of the two; 0 where both bins are empty).
    max_bin_diff_in_stderr: f64,
    /// TV to f^-p on each backend, and the difference in units of its jackknife SE.
    tv_cpu: f64,
    tv_gpu: f64,
    tv_diff_in_stderr: f64,
}

impl HistogramComparison {
    /// The larger of the two differences in standard errors: what `--se-tol` bounds.
    pub fn worst(&self) -> f64 {
        self.max_bin_diff_in_stderr.max(self.tv_diff_in_stderr)
    }
}

/// |a − b| / se, 0 when equal, infinite when they differ with no error to measure it.
fn in_stderr(a: f64, b: f64, se: f64) -> f64 {
    let d = (a - b).abs();
    if d == 0.0 {
        0.0
    } else if se > 0.0 {
        d / se
    } else {
        f64::INFINITY
    }
}

fn pairs(c: &[RunResult], g: &[RunResult]) -> Vec<HistogramComparison> {
    let mut out = Vec::new();
    for (rc, rg) in c.iter().zip(g) {
        for (hc, hg) in rc.histograms.iter().zip(&rg.histograms) {
            let bins = hc.empirical.len();
            let max_bin = (0..bins)
                .map(|j| {
                    let se = hc.empirical_stderr[j].max(hg.empirical_stderr[j]);
                    in_stderr(hc.empirical[j], hg.empirical[j], se)
                })
                .fold(0.0, f64::max);
            let (tc, tg) = (&hc.vs_analytic, &hg.vs_analytic);
            out.push(HistogramComparison {
                dynamics: rc.dynamics.clone(),
                eta: rc.eta,
                coordinate: format!("{:?}", hc.coordinate),
                bins,
                count_cpu: rc.count,
                count_gpu: rg.count,
                max_bin_diff_in_stderr: max_bin,
                tv_cpu: tc.tv,
                tv_gpu: tg.tv,
                tv_diff_in_stderr: in_stderr(tc.tv, tg.tv, tc.tv_stderr.max(tg.tv_stderr)),
            });
        }
    }
    out
}

/// Every histogram of the config's runs on `cpu` and `gpu`, compared (printed unless
/// `quiet`).
pub fn compare(
    ck: &Checked,
    cpu: &dyn Backend,
    gpu: &dyn Backend,
    quiet: bool,
) -> anyhow::Result<Vec<HistogramComparison>> {
    let (c, _, _) = invariant::run_all(cpu, ck)?;
    let (g, _, _) = invariant::run_all(gpu, ck)?;
    let out = pairs(&c, &g);
    if !quiet {
        println!(
            "{:<6} {:>8} {:>6} {:>6} {:>10} {:>10} {:>14} {:>12}",
            "dyn", "eta", "coord", "bins", "paths cpu", "paths gpu", "max bin Δ/se", "TV Δ/se"
        );
        for h in &out {
            println!(
                "{:<6} {:>8} {:>6} {:>6} {:>10} {:>10} {:>14.3} {:>12.3}",
                h.dynamics,
                h.eta,
                h.coordinate,
                h.bins,
                h.count_cpu,
                h.count_gpu,
                h.max_bin_diff_in_stderr,
                h.tv_diff_in_stderr
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::in_stderr;

    #[test]
    fn differences_in_stderr() {
        assert_eq!(in_stderr(0.5, 0.5, 0.0), 0.0);
        assert!((in_stderr(0.5, 0.7, 0.1) - 2.0).abs() < 1e-12);
        assert!(in_stderr(0.5, 0.6, 0.0).is_infinite());
    }
}
