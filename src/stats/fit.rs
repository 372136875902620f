//! Order of convergence: weighted least-squares slope of log e against log η.
//!
//! Var(log e) ≈ (se/e)² (delta method), so the weights are (e/se)². With n > 2 points
//! the slope's variance is inflated by the reduced χ² when the points scatter more than
//! their error bars say, and the 95% interval uses Student's t with n − 2 degrees of
//! freedom; with 2 points it rests on the error bars alone (normal quantile).

use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OrderFit {
    pub order: f64,
    /// log-intercept: e ≈ exp(intercept) η^order.
    pub intercept: f64,
    pub stderr: f64,
    pub ci95: [f64; 2],
    pub n_points: usize,
}

/// Fits log e = a + p log η over points (η, e, se) with e > 0, se > 0.
pub fn fit_order(points: &[(f64, f64, f64)]) -> Option<OrderFit> {
    let pts: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|(eta, e, se)| *eta > 0.0 && *e > 0.0 && se.is_finite())
        .map(|&(eta, e, se)| {
            (
                eta.ln(),
                e.ln(),
                if se > 0.0 { (e / se).powi(2) } else { 1e12 },
            )
        })
        .collect();
    let n = pts.len();
    if n < 2 {
        return None;
    }
    let sw: f64 = pts.iter().map(|p| p.2).sum();
    let xm = pts.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
    let ym = pts.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
    let sxx: f64 = pts.iter().map(|p| p.2 * (p.0 - xm).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| p.2 * (p.0 - xm) * (p.1 - ym)).sum();
    let slope = sxy / sxx;
    let intercept = ym - slope * xm;
    let mut var = 1.0 / sxx;
    let q = if n > 2 {
        let chi2: f64 = pts
            .iter()
            .map(|p| p.2 * (p.1 - intercept - slope * p.0).powi(2))
            .sum();
        var *= (chi2 / (n - 2) as f64).max(1.0);
        student_t975(n - 2)
    } else {
        1.959964
    };
    let se = var.sqrt();
    Some(OrderFit {
        order: slope,
        intercept,
        stderr: se,
        ci95: [slope - q * se, slope + q * se],
        n_points: n,
    })
}

/// 97.5% quantile of Student's t with `dof` degrees of freedom.
pub fn student_t975(dof: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        0 => f64::INFINITY,
        1..=30 => T[dof - 1],
        _ => 1.959964 + 2.4 / dof as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_exact_power_law() {
        let pts: Vec<_> = [0.2, 0.1, 0.05, 0.025]
            .iter()
            .map(|&h: &f64| (h, 3.0 * h * h, 1e-3 * h * h))
            .collect();
        let f = fit_order(&pts).unwrap();
        assert!((f.order - 2.0).abs() < 1e-12);
        assert!((f.intercept - 3f64.ln()).abs() < 1e-12);
        assert!(f.ci95[0] <= 2.0 && 2.0 <= f.ci95[1]);
    }

    #[test]
    fn needs_two_points() {
        assert!(fit_order(&[(0.1, 1.0, 0.1)]).is_none());
    }
}
