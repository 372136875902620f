//! SVG plots derived from a [`Report`] (DESIGN §8): log-log weak error vs η with error
//! bars, fitted order lines and slope-1/slope-2 reference guides.
//!
//! Drawn with `plotters`' SVG backend (no font files needed: text is emitted as SVG
//! `<text>` and sized by plotters' naive estimator). Robust to empty reports and to
//! zero/NaN/inf errors, which are skipped.

use super::log_axis::{log_range, log_ticks, pos, tick};
use std::path::Path;

use anyhow::{anyhow, Context as _};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::{Order, Report, WeakError};

const WIDTH: u32 = 900;
const HEIGHT: u32 = 640;
/// Approximate height of the plotting area (HEIGHT less caption, x labels, margins).
const PLOT_HEIGHT_PX: f64 = 520.0;

/// Tableau-10 colours, cycled per series.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const GUIDE: RGBColor = RGBColor(110, 110, 110);

/// One plotted point: η, error, and the error-bar ends (lower clipped to the axis).
#[derive(Clone, Debug)]
struct PlotPoint {
    eta: f64,
    error: f64,
    /// error − 2·stderr if positive, else `None` (the bar runs to the axis bottom).
    lo: Option<f64>,
    hi: f64,
    resolved: bool,
}

/// One (pair, observable) series at the horizon.
#[derive(Clone, Debug)]
struct Series {
    pair: [String; 2],
    observable: String,
    points: Vec<PlotPoint>,
    order: Option<Order>,
}

impl Series {
    fn label(&self) -> String {
        let base = format!("{} vs {}, {}", self.pair[0], self.pair[1], self.observable);
        match &self.order {
            Some(o) => format!(
                "{base}: order {:.3} (95% CI [{:.3}, {:.3}], n={})",
                o.order, o.ci95[0], o.ci95[1], o.n_points
            ),
            None => format!("{base} (no fit)"),
        }
    }

    fn eta_range(&self) -> (f64, f64) {
        let lo = self
            .points
            .iter()
            .map(|p| p.eta)
            .fold(f64::INFINITY, f64::min);
        let hi = self.points.iter().map(|p| p.eta).fold(0.0, f64::max);
        (lo, hi)
    }

    /// Fitted line endpoints over the series' η range, if an order is present and finite.
    fn fit_line(&self) -> Option<[(f64, f64); 2]> {
        let o = self.order.as_ref()?;
        let (lo, hi) = self.eta_range();
        let f = |eta: f64| (o.intercept + o.order * eta.ln()).exp();
        let line = [(lo, f(lo)), (hi, f(hi))];
        line.iter().all(|&(x, y)| pos(x) && pos(y)).then_some(line)
    }
}

fn same_t(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The largest finite t among the weak errors.
fn horizon(errors: &[WeakError]) -> Option<f64> {
    errors
        .iter()
        .map(|e| e.t)
        .filter(|t| t.is_finite())
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))
}

/// Group the weak errors at the horizon into series (first-seen order), skipping
/// non-positive or non-finite η/errors, and attach the matching fitted order.
fn collect_series(report: &Report) -> (Option<f64>, Vec<Series>) {
    let Some(t) = horizon(&report.weak_errors) else {
        return (None, Vec::new());
    };
    let mut series: Vec<Series> = Vec::new();
    for e in report.weak_errors.iter().filter(|e| same_t(e.t, t)) {
        if !pos(e.eta) || !pos(e.error) {
            continue;
        }
        let se = if e.stderr.is_finite() && e.stderr > 0.0 {
            e.stderr
        } else {
            0.0
        };
        let lo = e.error - 2.0 * se;
        let point = PlotPoint {
            eta: e.eta,
            error: e.error,
            lo: pos(lo).then_some(lo),
            hi: e.error + 2.0 * se,
            resolved: e.resolved,
        };
        match series
            .iter_mut()
            .find(|s| s.pair == e.pair && s.observable == e.observable)
        {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                pair: e.pair.clone(),
                observable: e.observable.clone(),
                points: vec![point],
                order: None,
            }),
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.eta.total_cmp(&b.eta));
        s.order = report
            .orders
            .iter()
            .filter(|o| o.pair == s.pair && o.observable == s.observable && same_t(o.t, t))
            .find(|o| o.order.is_finite() && o.intercept.is_finite())
            .cloned();
    }
    (Some(t), series)
}

/// Reference guides e = c·η^k (k = 1, 2) through the point with the largest η (the
/// geometric mean of the errors there, over all series), spanning the data's η range.
fn guides(series: &[Series]) -> Vec<(u32, [(f64, f64); 2])> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let eta_lo = all().map(|p| p.eta).fold(f64::INFINITY, f64::min);
    let eta_hi = all().map(|p| p.eta).fold(0.0, f64::max);
    if !(pos(eta_lo) && pos(eta_hi)) || eta_hi / eta_lo < 1.000_001 {
        return Vec::new();
    }
    let at_hi: Vec<f64> = all()
        .filter(|p| (p.eta - eta_hi).abs() <= 1e-12 * eta_hi)
        .map(|p| p.error.ln())
        .collect();
    let anchor = (at_hi.iter().sum::<f64>() / at_hi.len() as f64).exp();
    [1u32, 2]
        .into_iter()
        .map(|k| {
            let y_lo = anchor * (eta_lo / eta_hi).powi(k as i32);
            (k, [(eta_lo, y_lo), (eta_hi, anchor)])
        })
        .filter(|(_, l)| l.iter().all(|&(x, y)| pos(x) && pos(y)))
        .collect()
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

fn draw_empty(root: &DrawingArea<SVGBackend, Shift>, title: &str) -> anyhow::Result<()> {
    root.fill(&WHITE).map_err(plot_err)?;
    root.draw(&Text::new(
        title.to_string(),
        (20, 20),
        ("sans-serif", 24).into_font(),
    ))
    .map_err(plot_err)?;
    root.draw(&Text::new(
        "no weak errors to plot (none positive and finite)".to_string(),
        (20, 70),
        ("sans-serif", 16).into_font(),
    ))
    .map_err(plot_err)?;
    Ok(())
}

fn draw(
    root: &DrawingArea<SVGBackend, Shift>,
    report: &Report,
    y_desc: &str,
) -> anyhow::Result<()> {
    let (t, series) = collect_series(report);
    let title = if report.name.is_empty() {
        report.experiment.clone()
    } else {
        report.name.clone()
    };
    let (Some(t), false) = (t, series.is_empty()) else {
        return draw_empty(root, &title);
    };
    let guides = guides(&series);
    let any_unresolved = series.iter().any(|s| s.points.iter().any(|p| !p.resolved));

    // Axis ranges: all markers, bar tops, positive bar bottoms, fit and guide ends.
    let mut xs: Vec<f64> = Vec::new();
    let mut ys: Vec<f64> = Vec::new();
    for s in &series {
        for p in &s.points {
            xs.push(p.eta);
            ys.push(p.error);
            ys.extend(p.lo);
            if pos(p.hi) {
                ys.push(p.hi);
            }
        }
        if let Some(l) = s.fit_line() {
            ys.extend(l.iter().map(|&(_, y)| y));
        }
    }
    for (_, l) in &guides {
        ys.extend(l.iter().map(|&(_, y)| y));
    }
    let min = |v: &[f64]| {
        v.iter()
            .copied()
            .filter(|&x| pos(x))
            .fold(f64::INFINITY, f64::min)
    };
    let max = |v: &[f64]| v.iter().copied().filter(|&x| pos(x)).fold(0.0, f64::max);
    let (x_lo, x_hi) = log_range(min(&xs), max(&xs), 1.25);
    let (y_lo, y_hi) = log_range(min(&ys), max(&ys), 1.6);
    // Headroom for the legend (upper left), so it never covers data: the data keep
    // the lower (1 − f) of the plot's height.
    let entries = series.len() + guides.len() + usize::from(any_unresolved);
    let f = ((20 * entries + 24) as f64 / PLOT_HEIGHT_PX).min(0.6);
    let y_hi = (y_lo.ln() + (y_hi / y_lo).ln() / (1.0 - f)).exp();

    let (x_ticks, y_ticks) = (log_ticks(x_lo, x_hi), log_ticks(y_lo, y_hi));

    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{title}  (t = {})", tick(&t)),
            ("sans-serif", 22).into_font(),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (x_lo..x_hi)
                .log_scale()
                .with_key_points(x_ticks.0)
                .with_light_points(x_ticks.1),
            (y_lo..y_hi)
                .log_scale()
                .with_key_points(y_ticks.0)
                .with_light_points(y_ticks.1),
        )
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("step size η")
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(205, 205, 205))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(plot_err)?;

    // Reference guides (dashed), drawn first so data sits on top.
    for (k, line) in &guides {
        let style = ShapeStyle::from(&GUIDE).stroke_width(1);
        let dashed = DashedLineSeries::new(line.iter().copied(), 6, 5, style);
        chart
            .draw_series(dashed)
            .map_err(plot_err)?
            .label(format!("slope {k} reference"))
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (6, 0)], style)
                    + PathElement::new(vec![(11, 0), (17, 0)], style)
            });
    }

    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let solid = ShapeStyle::from(&color).stroke_width(2);
        let light = ShapeStyle::from(&color.mix(0.45)).stroke_width(1);

        // Fitted line e = exp(intercept)·η^order.
        if let Some(line) = s.fit_line() {
            chart
                .draw_series(LineSeries::new(line.iter().copied(), solid))
                .map_err(plot_err)?;
        }

        // Error bars: error ± 2·stderr, lower end clipped to the axis bottom (no cap
        // there when clipped).
        let bar_style = |p: &PlotPoint| {
            if p.resolved {
                solid.stroke_width(1)
            } else {
                light
            }
        };
        let bars: Vec<&PlotPoint> = s.points.iter().filter(|p| p.hi > p.error).collect();
        chart
            .draw_series(bars.iter().map(|p| {
                let lo = p.lo.unwrap_or(y_lo).max(y_lo);
                let hi = p.hi.min(y_hi);
                PathElement::new(vec![(p.eta, lo), (p.eta, hi)], bar_style(p))
            }))
            .map_err(plot_err)?;
        chart
            .draw_series(bars.iter().flat_map(|p| {
                let ends = [Some(p.hi.min(y_hi)), p.lo.map(|lo| lo.max(y_lo))];
                ends.into_iter().flatten().map(move |y| {
                    EmptyElement::at((p.eta, y))
                        + PathElement::new(vec![(-4, 0), (4, 0)], bar_style(p))
                })
            }))
            .map_err(plot_err)?;

        // Markers: filled for resolved points, hollow and lighter for unresolved.
        let label = s.label();
        chart
            .draw_series(s.points.iter().map(|p| {
                if p.resolved {
                    Circle::new((p.eta, p.error), 4, color.filled())
                } else {
                    Circle::new((p.eta, p.error), 4, color.mix(0.6).stroke_width(1))
                }
            }))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (18, 0)], solid)
                    + Circle::new((9, 0), 4, color.filled())
            });
    }

    if any_unresolved {
        // Legend-only entry explaining hollow markers.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(plot_err)?
            .label("hollow: unresolved (error ≤ 3 stderr), not fitted")
            .legend(|(x, y)| Circle::new((x + 9, y), 4, BLACK.mix(0.6).stroke_width(1)));
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

/// Render the weak-error plot to an SVG string.
pub fn weak_error_svg_string(report: &Report) -> anyhow::Result<String> {
    svg_string(report, WEAK_ERROR)
}

/// The y axis of the weak-error plot.
const WEAK_ERROR: &str = "weak error |E g(SGD) − E g(model)|";

/// The plot of `report.weak_errors` and `report.orders` with y axis `y_desc`.
fn svg_string(report: &Report, y_desc: &str) -> anyhow::Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, report, y_desc)?;
        root.present().map_err(plot_err)?;
    }
    Ok(buf)
}

/// Write a log-log plot of weak error vs η at the horizon (largest t in
/// `report.weak_errors`): one series per (pair, observable) with ±2·stderr error bars
/// (hollow, lighter markers for unresolved points), the fitted order line from
/// `report.orders` with its 95% CI in the legend, and dashed slope-1/slope-2 guides.
pub fn write_weak_error_svg(report: &Report, path: &Path) -> anyhow::Result<()> {
    write_svg(report, WEAK_ERROR, path)
}

/// The same plot with another y axis (n_point's paired differences, `paired.svg`).
pub fn write_svg(report: &Report, y_desc: &str, path: &Path) -> anyhow::Result<()> {
    let svg = svg_string(report, y_desc)?;
    std::fs::write(path, svg).with_context(|| format!("writing SVG {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn we(pair: (&str, &str), obs: &str, eta: f64, t: f64, error: f64, se: f64) -> WeakError {
        WeakError {
            pair: [pair.0.into(), pair.1.into()],
            eta,
            t,
            observable: obs.into(),
            error,
            stderr: se,
            resolved: error > 3.0 * se,
            solver_ok: true,
            signed: -error,
            estimator: "independent".into(),
            variance_reduction: None,
        }
    }

    fn order(pair: (&str, &str), obs: &str, t: f64, p: f64, c: f64) -> Order {
        Order {
            pair: [pair.0.into(), pair.1.into()],
            observable: obs.into(),
            t,
            order: p,
            stderr: 0.03,
            ci95: [p - 0.06, p + 0.06],
            n_points: 4,
            intercept: c.ln(),
        }
    }

    fn report(weak_errors: Vec<WeakError>, orders: Vec<Order>) -> Report {
        Report {
            smflow_version: "0.1.0".into(),
            experiment: "weak_order".into(),
            name: "quadratic 1-D <test> & co".into(),
            backend: "cpu".into(),
            adapter: "host".into(),
            precision: "f64".into(),
            seed: 7,
            paths: 1000,
            shard: None,
            wall_seconds: 1.0,
            path_steps_per_second: 1e6,
            points: vec![],
            weak_errors,
            orders,
            correlations: vec![],
            ensembles: Vec::new(),
            paired: Vec::new(),
            warnings: vec![],
            target: None,
            config: serde_json::Value::Null,
        }
    }

    fn study() -> Report {
        let etas = [0.2, 0.1, 0.05, 0.025];
        let mut w = Vec::new();
        for &eta in &etas {
            // An earlier checkpoint that must not be plotted.
            w.push(we(("sgd", "sme1"), "x^2", eta, 1.0, 0.5 * eta, 1e-4));
            w.push(we(("sgd", "sme1"), "x^2", eta, 2.0, 0.8 * eta, 1e-4));
            // Order-2 pair; the smallest η is unresolved with a bar crossing zero.
            let se = if eta < 0.03 { 1e-3 } else { 1e-5 };
            w.push(we(("sgd", "sme2"), "x^2", eta, 2.0, 0.6 * eta * eta, se));
        }
        // Junk that must be skipped without panicking.
        w.push(we(("sgd", "sme2"), "x^2", 0.4, 2.0, 0.0, 1e-5));
        w.push(we(("sgd", "sme2"), "x^2", 0.3, 2.0, f64::NAN, 1e-5));
        w.push(we(("sgd", "sme2"), "x^2", f64::NAN, 2.0, 1e-3, 1e-5));
        w.push(we(("sgd", "sme2"), "x^2", 0.15, 2.0, 1e-3, f64::NAN));
        // A series with only junk at the horizon: no series drawn for it.
        w.push(we(("sgd", "gf"), "x", 0.1, 2.0, f64::INFINITY, 1e-5));
        let orders = vec![
            order(("sgd", "sme1"), "x^2", 2.0, 1.0, 0.8),
            order(("sgd", "sme2"), "x^2", 2.0, 2.0, 0.6),
            order(("sgd", "sme1"), "x^2", 1.0, 1.0, 0.5),
        ];
        report(w, orders)
    }

    #[test]
    fn series_at_horizon() {
        let (t, s) = collect_series(&study());
        assert_eq!(t, Some(2.0));
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].points.len(), 4);
        assert!(s[0]
            .points
            .iter()
            .all(|p| (p.error - 0.8 * p.eta).abs() < 1e-15));
        assert_eq!(s[1].points.len(), 5); // 4 + the NaN-stderr point (no bar)
        assert_eq!(s[0].order.as_ref().unwrap().t, 2.0);
        assert!(s[1].points.iter().any(|p| !p.resolved && p.lo.is_none()));
        let g = guides(&s);
        assert_eq!(g.len(), 2);
        let (_, l2) = g[1];
        assert!(((l2[1].1 / l2[0].1).ln() / (l2[1].0 / l2[0].0).ln() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn writes_svg_with_a_path_per_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weak_error.svg");
        write_weak_error_svg(&study(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        // Title is XML-escaped; axis labels present.
        assert!(svg.contains("quadratic 1-D &lt;test&gt; &amp; co"));
        assert!(svg.contains("step size η"));
        assert!(svg.contains("weak error |E g(SGD) − E g(model)|"));
        // Legend entries with fitted order and CI for each series, plus the guides.
        assert!(svg.contains("sgd vs sme1, x^2: order 1.000 (95% CI [0.940, 1.060], n=4)"));
        assert!(svg.contains("sgd vs sme2, x^2: order 2.000"));
        assert!(svg.contains("slope 1 reference"));
        assert!(svg.contains("slope 2 reference"));
        assert!(svg.contains("hollow: unresolved"));
        assert!(!svg.contains("sgd vs gf"));
        // Each series' fitted line is drawn as a polyline in its colour.
        for c in ["#1F77B4", "#FF7F0E"] {
            let n = svg
                .match_indices("<polyline")
                .filter(|(i, _)| svg[*i..].split('>').next().unwrap().contains(c))
                .count();
            assert!(n >= 2, "colour {c}: {n} polylines");
        }
        assert!(svg.matches("<circle").count() >= 9);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn empty_and_degenerate_reports_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.svg");
        write_weak_error_svg(&report(vec![], vec![]), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg") && svg.contains("no weak errors"));

        // Only zero / NaN errors.
        let r = report(
            vec![
                we(("a", "b"), "x", 0.1, 1.0, 0.0, 0.0),
                we(("a", "b"), "x", 0.1, f64::NAN, 1.0, 0.0),
                we(("a", "b"), "x", 0.05, 1.0, f64::NAN, f64::NAN),
            ],
            vec![],
        );
        assert!(weak_error_svg_string(&r)
            .unwrap()
            .contains("no weak errors"));

        // A single point, zero stderr, an order with non-finite intercept.
        let mut o = order(("a", "b"), "x", 1.0, 1.0, 1.0);
        o.intercept = f64::NEG_INFINITY;
        let r = report(vec![we(("a", "b"), "x", 0.1, 1.0, 1e-3, 0.0)], vec![o]);
        let svg = weak_error_svg_string(&r).unwrap();
        assert!(svg.contains("<circle") && svg.contains("a vs b, x (no fit)"));
        assert!(!svg.contains("NaN"));

        // Unwritable path is an error.
        assert!(write_weak_error_svg(&r, &dir.path().join("no/dir/x.svg")).is_err());
    }
}
