//! SVG of the `invariant` experiment: per (dynamics, η) and histogram coordinate, the
//! empirical density (points, ±2 SE bars) against toy SGD's invariant density f^{−p}
//! (solid), the matched Gibbs density (dashed) and seed 002's exponent (dotted).

use crate::experiment::invariant::InvariantReport;
use anyhow::anyhow;
use plotters::prelude::*;

const PANEL_W: u32 = 620;
const PANEL_H: u32 = 400;

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

pub fn invariant_svg_string(r: &InvariantReport) -> anyhow::Result<String> {
    let cols = r
        .runs
        .iter()
        .map(|x| x.histograms.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let rows = r.runs.len().max(1);
    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (PANEL_W * cols as u32, PANEL_H * rows as u32))
                .into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let panels = root.split_evenly((rows, cols));
        for (i, run) in r.runs.iter().enumerate() {
            for (j, h) in run.histograms.iter().enumerate() {
                let area = &panels[i * cols + j];
                let mids: Vec<f64> = h.edges.windows(2).map(|e| 0.5 * (e[0] + e[1])).collect();
                let (x_lo, x_hi) = (h.edges[0], *h.edges.last().unwrap());
                let y_hi = h
                    .empirical
                    .iter()
                    .zip(&h.empirical_stderr)
                    .map(|(e, s)| e + 2.0 * s)
                    .chain(h.analytic.iter().copied())
                    .chain(h.gibbs.iter().copied())
                    .chain(h.seed_exponent.iter().copied())
                    .filter(|v| v.is_finite())
                    .fold(0.0, f64::max)
                    * 1.25;
                let y_hi = if y_hi > 0.0 { y_hi } else { 1.0 };
                if !(crate::output::log_axis::linear_ok(x_lo, x_hi)
                    && crate::output::log_axis::linear_ok(0.0, y_hi))
                {
                    return Err(anyhow::anyhow!(
                        "invariant plot: axis range [{x_lo}, {x_hi}] × [0, {y_hi}] cannot be drawn"
                    ));
                }
                let mut chart = ChartBuilder::on(area)
                    .caption(
                        format!(
                            "{} η={} s={:.3} p={:.3}: {:?}  TV {:.4}±{:.4} (Gibbs {:.4})",
                            run.dynamics,
                            run.eta,
                            run.s,
                            run.exponent,
                            h.coordinate,
                            h.vs_analytic.tv,
                            h.vs_analytic.tv_stderr,
                            h.vs_gibbs.tv
                        ),
                        ("sans-serif", 15).into_font(),
                    )
                    .margin(10)
                    .x_label_area_size(32)
                    .y_label_area_size(52)
                    .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi)
                    .map_err(plot_err)?;
                chart
                    .configure_mesh()
                    .x_desc(format!("{:?}", h.coordinate).to_lowercase())
                    .y_desc("density")
                    .draw()
                    .map_err(plot_err)?;
                let line = |v: &[f64]| -> Vec<(f64, f64)> {
                    mids.iter().copied().zip(v.iter().copied()).collect()
                };
                let blue = RGBColor(31, 119, 180);
                let orange = RGBColor(255, 127, 14);
                let grey = RGBColor(127, 127, 127);
                chart
                    .draw_series(LineSeries::new(line(&h.analytic), blue.stroke_width(2)))
                    .map_err(plot_err)?
                    .label("f^-p, p = 1 + 2/s")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue));
                chart
                    .draw_series(DashedLineSeries::new(
                        line(&h.gibbs),
                        6,
                        4,
                        orange.stroke_width(2),
                    ))
                    .map_err(plot_err)?
                    .label("Gibbs exp(-2f/(s fbar))")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], orange));
                chart
                    .draw_series(DashedLineSeries::new(
                        line(&h.seed_exponent),
                        2,
                        3,
                        grey.stroke_width(1),
                    ))
                    .map_err(plot_err)?
                    .label("f^-(1+1/s) (seed 002)")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey));
                chart
                    .draw_series(mids.iter().zip(&h.empirical).zip(&h.empirical_stderr).map(
                        |((&x, &y), &se)| {
                            PathElement::new(
                                vec![(x, (y - 2.0 * se).max(0.0)), (x, y + 2.0 * se)],
                                BLACK,
                            )
                        },
                    ))
                    .map_err(plot_err)?;
                chart
                    .draw_series(
                        mids.iter()
                            .zip(&h.empirical)
                            .map(|(&x, &y)| Circle::new((x, y), 2, BLACK.filled())),
                    )
                    .map_err(plot_err)?
                    .label("empirical ±2 SE")
                    .legend(|(x, y)| Circle::new((x + 9, y), 3, BLACK.filled()));
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)?;
    }
    Ok(buf)
}
