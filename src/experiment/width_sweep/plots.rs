//! SVG plots of a width sweep: each observable vs n at the horizon (log-log), the gap
//! to the widest run vs n, n·Var(⟨φ, ν⟩) vs n, and each observable vs t per width
//! (the first two dynamics, the second dashed).

use super::analysis::{Cell, Rate};
use super::config::Sweep;
use crate::output::lines::{Line, LinePlot};

const OBS_LABELS: [(&str, &str); 4] = [
    ("risk", "population risk (test set)"),
    ("a2", "⟨a², ν⟩"),
    ("w2", "⟨|w|², ν⟩"),
    ("phi", "⟨φ, ν⟩"),
];

fn select<'a>(
    cells: &'a [Cell],
    d: &str,
    eta: f64,
    t: f64,
    o: &str,
) -> impl Iterator<Item = &'a Cell> {
    let (d, o) = (d.to_string(), o.to_string());
    cells
        .iter()
        .filter(move |c| c.dynamics == d && c.eta == eta && c.t == t && c.observable == o)
}

/// The plot as (file name, SVG), or why it was skipped (a warning for the report; this
/// room prints nothing).
fn svg(name: String, p: LinePlot) -> Result<(String, String), String> {
    p.to_svg()
        .map(|s| (name.clone(), s))
        .map_err(|e| format!("plot {name} skipped: {e:#}"))
}

pub fn svgs(s: &Sweep, cells: &[Cell], rates: &[Rate]) -> Vec<Result<(String, String), String>> {
    let horizon = *s.times.last().unwrap();
    let runs: Vec<(String, f64, bool)> = s
        .dynamics
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            s.cfg
                .etas
                .iter()
                .map(move |e| (d.name().to_string(), *e, i % 2 == 1))
        })
        .collect();
    let label = |d: &str, eta: f64| {
        if s.cfg.etas.len() > 1 {
            format!("{d} η={eta}")
        } else {
            d.to_string()
        }
    };
    let mut out = Vec::new();
    for (o, what) in OBS_LABELS {
        let lines: Vec<Line> = runs
            .iter()
            .map(|(d, eta, dashed)| Line {
                label: label(d, *eta),
                points: select(cells, d, *eta, horizon, o)
                    .map(|c| (c.width as f64, c.mean, c.stderr))
                    .collect(),
                dashed: *dashed,
            })
            .collect();
        let positive = lines.iter().flat_map(|l| &l.points).all(|p| p.1 > 0.0);
        out.push(svg(
            format!("{o}_vs_width.svg"),
            LinePlot {
                title: format!("{}: {what} at t = {horizon} (± 2 se)", s.name),
                x_label: "width n".into(),
                y_label: what.into(),
                log_x: true,
                log_y: positive,
                lines,
            },
        ));
    }
    let gap_lines: Vec<Line> = runs
        .iter()
        .flat_map(|(d, eta, dashed)| {
            ["risk", "phi"].into_iter().map(move |o| {
                let rate = rates
                    .iter()
                    .find(|r| {
                        r.dynamics == *d && r.eta == *eta && r.t == horizon && r.observable == o
                    })
                    .map(|r| format!(" (n^-{:.2})", r.rate))
                    .unwrap_or_default();
                Line {
                    label: format!("{} {o}{rate}", label(d, *eta)),
                    points: select(cells, d, *eta, horizon, o)
                        .filter(|c| c.gap.is_finite())
                        .map(|c| (c.width as f64, c.gap.abs(), c.gap_stderr))
                        .collect(),
                    dashed: *dashed,
                }
            })
        })
        .collect();
    out.push(svg(
        "gap_vs_width.svg".into(),
        LinePlot {
            title: format!("{}: |E Φ(ν^n) − E Φ(ν^n_max)| at t = {horizon}", s.name),
            x_label: "width n".into(),
            y_label: "gap to the widest run".into(),
            log_x: true,
            log_y: true,
            lines: gap_lines,
        },
    ));
    let nvar: Vec<Line> = runs
        .iter()
        .map(|(d, eta, dashed)| Line {
            label: label(d, *eta),
            points: select(cells, d, *eta, horizon, "phi")
                .map(|c| (c.width as f64, c.n_var, c.n_var_stderr))
                .collect(),
            dashed: *dashed,
        })
        .collect();
    out.push(svg(
        "nvar_vs_width.svg".into(),
        LinePlot {
            title: format!(
                "{}: n·Var(⟨φ, ν⟩), φ = {}, t = {horizon}",
                s.name,
                s.phi.name()
            ),
            x_label: "width n".into(),
            y_label: "n · Var".into(),
            log_x: true,
            log_y: true,
            lines: nvar,
        },
    ));
    let eta = s.cfg.etas[0];
    for (o, what) in OBS_LABELS {
        let mut t_lines = Vec::new();
        for (i, d) in s.dynamics.iter().take(2).enumerate() {
            for &n in &s.widths {
                t_lines.push(Line {
                    label: format!("{} n={n}", d.name()),
                    points: cells
                        .iter()
                        .filter(|c| {
                            c.dynamics == d.name()
                                && c.eta == eta
                                && c.width == n
                                && c.observable == o
                        })
                        .map(|c| (c.t, c.mean, c.stderr))
                        .collect(),
                    dashed: i == 1,
                });
            }
        }
        let positive = t_lines.iter().flat_map(|l| &l.points).all(|p| p.1 > 0.0);
        out.push(svg(
            format!("{o}_vs_t.svg"),
            LinePlot {
                title: format!("{}: {what} vs t, η = {eta}", s.name),
                x_label: "t".into(),
                y_label: what.into(),
                log_x: false,
                log_y: positive,
                lines: t_lines,
            },
        ));
    }
    out
}
