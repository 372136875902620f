//! Log-scale axis helpers for the SVG plots: ranges, tick positions and labels.

/// Usable on a log axis: finite and positive.
pub fn pos(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// A linear axis plotters can lay out: finite ends, lo < hi, and a finite width that
/// is not lost to rounding (plotters' tick search never ends on an infinite or
/// sub-ulp range).
pub fn linear_ok(lo: f64, hi: f64) -> bool {
    let w = hi - lo;
    lo.is_finite() && hi.is_finite() && w.is_finite() && w > 1e-12 * lo.abs().max(hi.abs())
}

/// Widen `[lo, hi]` (both > 0) by `pad` on each side in log space, to at least a
/// factor of 10 overall so the log axis always has a labelled power of ten.
pub fn log_range(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (lo / pad, hi * pad);
    let ratio = hi / lo;
    if ratio < 10.0 {
        let widen = (10.0 / ratio).sqrt();
        lo /= widen;
        hi *= widen;
    }
    (lo, hi)
}

/// Log-axis ticks over `[lo, hi]`: labelled (bold) points at 1, 2, 5 × 10^k for short
/// ranges, 10^k (thinned) for long ones; light grid lines at 1..9 × 10^k.
pub fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    if !(pos(lo) && pos(hi) && lo < hi) {
        return (Vec::new(), Vec::new());
    }
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades = hi.log10() - lo.log10();
    let (mults, every): (&[f64], i32) = if decades <= 2.5 {
        (&[1.0, 2.0, 5.0], 1)
    } else {
        (&[1.0], (decades / 8.0).ceil().max(1.0) as i32)
    };
    let inside = |v: &f64| *v >= lo * (1.0 - 1e-12) && *v <= hi * (1.0 + 1e-12);
    let mut bold = Vec::new();
    let mut light = Vec::new();
    for k in k0..=k1 {
        let p = 10f64.powi(k);
        if k.rem_euclid(every) == 0 {
            bold.extend(mults.iter().map(|m| m * p).filter(inside));
        }
        if decades <= 6.0 {
            light.extend((1..10).map(|m| f64::from(m) * p).filter(inside));
        }
    }
    (bold, light)
}

/// Tick label: plain for moderate magnitudes, exponent form otherwise.
pub fn tick(v: &f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if (1e-3..1e4).contains(&a) {
        // Round to 3 significant figures, then print shortest.
        let digits = 2 - a.log10().floor() as i32;
        let s = 10f64.powi(digits.max(0));
        format!("{}", (v * s).round() / s)
    } else {
        let s = format!("{v:.2e}");
        // Drop trailing zeros of the mantissa: 1.00e-5 → 1e-5, 2.50e-6 → 2.5e-6.
        match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_ticks() {
        let (bold, light) = log_ticks(0.008, 0.3);
        assert_eq!(bold, vec![0.01, 0.02, 0.05, 0.1, 0.2]);
        assert_eq!(light.len(), 2 + 9 + 3); // 0.008, 0.009; 0.01..0.09; 0.1..0.3
        let (bold, light) = log_ticks(1e-9, 1.0);
        assert_eq!(bold.len(), 5); // every 2nd decade
        assert!(light.is_empty());
        assert_eq!(log_ticks(1.0, 1.0), (vec![], vec![]));
        assert_eq!(log_ticks(f64::NAN, 1.0), (vec![], vec![]));
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick(&0.1), "0.1");
        assert_eq!(tick(&0.05), "0.05");
        assert_eq!(tick(&2.0), "2");
        assert_eq!(tick(&1e-5), "1e-5");
        assert_eq!(tick(&2.5e-6), "2.5e-6");
        assert_eq!(tick(&0.30000000000000004), "0.3");
    }
}
