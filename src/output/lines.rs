//! A generic line plot (series of (x, y ± err) points, optional log axes) as SVG, for
//! the finite-data experiments: risk vs t, test loss vs η, distance vs η.

use super::log_axis::{log_range, log_ticks, pos, tick};
use anyhow::anyhow;
use plotters::prelude::*;

use super::svg::PALETTE;

#[derive(Clone, Debug, Default)]
pub struct Line {
    pub label: String,
    /// (x, y, standard error); non-finite or (on log axes) non-positive points skipped.
    pub points: Vec<(f64, f64, f64)>,
    pub dashed: bool,
}

#[derive(Clone, Debug, Default)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub lines: Vec<Line>,
}

fn ok(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || pos(v))
}

fn range(vals: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let v: Vec<f64> = vals.filter(|v| ok(*v, log)).collect();
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        // log_range works on values (not their logarithms): pad by 10^0.05 each side.
        log_range(lo, hi, 10f64.powf(0.05))
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-12 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    }
}

impl LinePlot {
    pub fn to_svg(&self) -> anyhow::Result<String> {
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, (900, 600)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
            let pts = || self.lines.iter().flat_map(|l| l.points.iter());
            let (x0, x1) = range(pts().map(|p| p.0), self.log_x);
            let (y0, y1) = range(
                pts().flat_map(|p| [p.1, p.1 + 2.0 * p.2, p.1 - 2.0 * p.2]),
                self.log_y,
            );
            let drawable = |a: f64, b: f64, log: bool| {
                if log {
                    super::log_axis::linear_ok(a.log10(), b.log10())
                } else {
                    super::log_axis::linear_ok(a, b)
                }
            };
            if !(drawable(x0, x1, self.log_x) && drawable(y0, y1, self.log_y)) {
                return Err(anyhow!("plot {:?}: axis range is not finite", self.title));
            }
            let map = |v: f64, log: bool| if log { v.log10() } else { v };
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(75)
                .build_cartesian_2d(
                    map(x0, self.log_x)..map(x1, self.log_x),
                    map(y0, self.log_y)..map(y1, self.log_y),
                )
                .map_err(|e| anyhow!("{e:?}"))?;
            let fmt = |log: bool| move |v: &f64| if log { tick(&10f64.powf(*v)) } else { tick(v) };
            let (xt, _) = log_ticks(x0, x1);
            let (yt, _) = log_ticks(y0, y1);
            chart
                .configure_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc(self.y_label.as_str())
                .x_label_formatter(&fmt(self.log_x))
                .y_label_formatter(&fmt(self.log_y))
                .x_labels(if self.log_x { xt.len().max(2) } else { 8 })
                .y_labels(if self.log_y { yt.len().max(2) } else { 8 })
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
            for (i, line) in self.lines.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let xy: Vec<(f64, f64)> = line
                    .points
                    .iter()
                    .filter(|p| ok(p.0, self.log_x) && ok(p.1, self.log_y))
                    .map(|p| (map(p.0, self.log_x), map(p.1, self.log_y)))
                    .collect();
                let style = color.stroke_width(2);
                let series = if line.dashed {
                    chart.draw_series(DashedLineSeries::new(xy.clone(), 6, 4, style))
                } else {
                    chart.draw_series(LineSeries::new(xy.clone(), style))
                }
                .map_err(|e| anyhow!("{e:?}"))?;
                series
                    .label(line.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
                chart
                    .draw_series(xy.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| anyhow!("{e:?}"))?;
                for p in &line.points {
                    let (lo, hi) = (p.1 - 2.0 * p.2, p.1 + 2.0 * p.2);
                    if p.2 > 0.0 && ok(p.0, self.log_x) && ok(hi, self.log_y) {
                        let lo = if ok(lo, self.log_y) { lo } else { y0 };
                        let x = map(p.0, self.log_x);
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(x, map(lo, self.log_y)), (x, map(hi, self.log_y))],
                                color,
                            )))
                            .map_err(|e| anyhow!("{e:?}"))?;
                    }
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
            root.present().map_err(|e| anyhow!("{e:?}"))?;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_lines_and_survives_bad_points() {
        let p = LinePlot {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: true,
            log_y: true,
            lines: vec![
                Line {
                    label: "a".into(),
                    points: vec![(0.1, 1.0, 0.1), (1.0, 0.5, 0.0), (0.0, f64::NAN, 0.0)],
                    dashed: false,
                },
                Line {
                    label: "b".into(),
                    points: vec![],
                    dashed: true,
                },
            ],
        };
        let s = p.to_svg().unwrap();
        assert!(s.contains("<svg"), "{s}");
        assert!(
            s.contains("<text") && s.matches("<circle").count() >= 2,
            "{s}"
        );
    }

    #[test]
    fn log_axes_cover_the_data_with_a_margin() {
        for (lo, hi) in [(16.0, 8192.0), (0.0845, 0.12), (1e-9, 3e-2), (0.0125, 0.1)] {
            let (a, b) = range([lo, hi].into_iter(), true);
            assert!(a.is_finite() && b.is_finite(), "{lo}..{hi}: {a}..{b}");
            assert!(a < lo && b > hi, "{lo}..{hi} not inside {a}..{b}");
            assert!(
                a > lo / 20.0 && b < hi * 20.0,
                "{lo}..{hi}: {a}..{b} far too wide"
            );
        }
        let (a, b) = range([-1.0, 3.0].into_iter(), false);
        assert!(a < -1.0 && b > 3.0 && b - a < 5.0);
    }

    #[test]
    fn a_wide_log_log_plot_renders() {
        let plot = LinePlot {
            title: "t".into(),
            x_label: "n".into(),
            y_label: "y".into(),
            log_x: true,
            log_y: true,
            lines: vec![Line {
                label: "a".into(),
                points: (4..14)
                    .map(|k| ((1u32 << k) as f64, 0.1 + 1.0 / (1u32 << k) as f64, 1e-3))
                    .collect(),
                dashed: false,
            }],
        };
        let svg = plot.to_svg().unwrap();
        assert!(svg.contains("<svg"));
    }
}
