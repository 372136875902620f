//! CSV tables derived from a [`Report`] (DESIGN §8).
//!
//! Plain std formatting, no csv crate: floats are written with `{}` (shortest string that
//! round-trips the f64, `-0.0` as Rust prints it), booleans as `true`/`false`, `None` and
//! a value that is not finite (no estimate: results.json's null) as an empty cell. Text cells are quoted per RFC 4180 only when
//! they contain a comma, quote or line break.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use super::report::Report;

/// Header of [`write_weak_error_csv`].
pub const WEAK_ERROR_HEADER: &str =
    "pair_a,pair_b,eta,t,observable,error,stderr,resolved,solver_ok,signed,estimator,variance_reduction";

/// Header of [`write_points_csv`].
pub const POINTS_HEADER: &str = "dynamics,eta,t,observable,mean,stderr,count,diverged,\
solver_error,solver_error_stderr,exact";

/// Quote a text cell if it needs it (RFC 4180).
fn text(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Shortest round-tripping decimal: plain (`0.05`, `2`) for moderate magnitudes,
/// exponent form (`1.5e-7`, `3e20`) otherwise, so tiny errors don't print 300 zeros.
/// Both forms parse back to the identical f64 (Rust, Python, numpy, pandas, R). NaN and
/// ±inf, which results.json writes as null, are empty cells here too (every reader
/// takes an empty cell as missing).
pub fn num(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        String::new()
    } else if a == 0.0 || (1e-4..1e15).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

/// The weak-error table as a string (one row per `report.weak_errors` entry).
pub fn weak_error_csv_string(report: &Report) -> String {
    let mut out = String::with_capacity(64 * (report.weak_errors.len() + 1));
    out.push_str(WEAK_ERROR_HEADER);
    out.push('\n');
    for e in &report.weak_errors {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            text(&e.pair[0]),
            text(&e.pair[1]),
            num(e.eta),
            num(e.t),
            text(&e.observable),
            num(e.error),
            num(e.stderr),
            e.resolved,
            e.solver_ok,
            num(e.signed),
            text(&e.estimator),
            opt(e.variance_reduction)
        );
    }
    out
}

/// The per-point table as a string (one row per `report.points` entry).
pub fn points_csv_string(report: &Report) -> String {
    let mut out = String::with_capacity(80 * (report.points.len() + 1));
    out.push_str(POINTS_HEADER);
    out.push('\n');
    for p in &report.points {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            text(&p.dynamics),
            num(p.eta),
            num(p.t),
            text(&p.observable),
            num(p.mean),
            num(p.stderr),
            p.count,
            p.diverged,
            opt(p.solver_error),
            opt(p.solver_error_stderr),
            opt(p.exact)
        );
    }
    out
}

fn write_string(path: &Path, s: &str) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path)
        .with_context(|| format!("creating CSV file {}", path.display()))?;
    f.write_all(s.as_bytes())
        .with_context(|| format!("writing CSV file {}", path.display()))?;
    Ok(())
}

/// Write `pair_a,…,signed,estimator,variance_reduction`,
/// one row per weak error.
pub fn write_weak_error_csv(report: &Report, path: &Path) -> anyhow::Result<()> {
    write_string(path, &weak_error_csv_string(report))
}

/// Write `dynamics,eta,t,observable,mean,stderr,count,diverged,solver_error,
/// solver_error_stderr,exact`, one row per point (empty cell for `None`).
pub fn write_points_csv(report: &Report, path: &Path) -> anyhow::Result<()> {
    write_string(path, &points_csv_string(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::report::{Point, WeakError};

    fn report() -> Report {
        Report {
            smflow_version: "0.1.0".into(),
            experiment: "weak_order".into(),
            name: "test".into(),
            backend: "cpu".into(),
            adapter: "host".into(),
            precision: "f64".into(),
            seed: 1,
            paths: 100,
            shard: None,
            wall_seconds: 0.5,
            path_steps_per_second: 1e6,
            points: vec![
                Point {
                    dynamics: "sgd".into(),
                    eta: 0.05,
                    t: 2.0,
                    observable: "x^2".into(),
                    mean: 0.1 + 0.2,
                    stderr: 1.2345678901234567e-5,
                    count: 99,
                    diverged: 1,
                    solver_error: None,
                    solver_error_stderr: None,
                    exact: Some(1.0 / 3.0),
                },
                Point {
                    dynamics: "sme2".into(),
                    eta: 0.025,
                    t: 2.0,
                    observable: "cos(x, y)".into(),
                    mean: -0.0,
                    stderr: 0.0,
                    count: 100,
                    diverged: 0,
                    solver_error: Some(1e-300),
                    solver_error_stderr: Some(2.5e-7),
                    exact: None,
                },
            ],
            weak_errors: vec![WeakError {
                pair: ["sgd".into(), "sme2".into()],
                eta: 0.05,
                t: 2.0,
                observable: "x^2".into(),
                error: 1.0e-3,
                stderr: 2.0e-5,
                resolved: true,
                solver_ok: false,
                signed: -1.0e-3,
                estimator: "coupled".into(),
                variance_reduction: Some(1250.0),
            }],
            orders: vec![],
            correlations: vec![],
            ensembles: Vec::new(),
            paired: Vec::new(),
            warnings: vec![],
            target: None,
            config: serde_json::Value::Null,
        }
    }

    #[test]
    fn weak_error_rows() {
        let s = weak_error_csv_string(&report());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], WEAK_ERROR_HEADER);
        assert_eq!(
            lines[1],
            "sgd,sme2,0.05,2,x^2,0.001,2e-5,true,false,-0.001,coupled,1250"
        );
        let cols = lines[1].split(',').count();
        assert_eq!(cols, WEAK_ERROR_HEADER.split(',').count());
    }

    #[test]
    fn point_rows_roundtrip_and_empty_cells() {
        let r = report();
        let s = points_csv_string(&r);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], POINTS_HEADER);
        assert_eq!(POINTS_HEADER.split(',').count(), 11);
        let c: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(c.len(), 11);
        assert_eq!(c[0], "sgd");
        // Full precision: values parse back to the identical f64.
        assert_eq!(c[4].parse::<f64>().unwrap(), r.points[0].mean);
        assert_eq!(c[5].parse::<f64>().unwrap(), r.points[0].stderr);
        assert_eq!(c[6], "99");
        assert_eq!(c[7], "1");
        assert_eq!(c[8], "");
        assert_eq!(c[9], "");
        assert_eq!(c[10].parse::<f64>().unwrap(), 1.0 / 3.0);
        // A text cell with a comma is quoted.
        assert!(lines[2].starts_with("sme2,0.025,2,\"cos(x, y)\",-0,0,100,0,1e-300,"));
        assert!(lines[2].ends_with(",2.5e-7,"));
    }

    #[test]
    fn num_roundtrips() {
        for x in [
            0.0,
            -0.0,
            1.0,
            0.05,
            1e-4,
            9.99e-5,
            1e15,
            123456.789,
            -1e-300,
            5e-324,
            f64::MAX,
            0.1 + 0.2,
            1.0 / 3.0,
        ] {
            let s = num(x);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{s}");
            assert!(s.len() < 30, "{s}");
        }
        assert_eq!(num(f64::NAN), "");
        assert_eq!(num(f64::INFINITY), "");
    }

    #[test]
    fn writes_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = report();
        let we = dir.path().join("weak_errors.csv");
        let pts = dir.path().join("points.csv");
        write_weak_error_csv(&r, &we).unwrap();
        write_points_csv(&r, &pts).unwrap();
        assert_eq!(
            std::fs::read_to_string(&we).unwrap(),
            weak_error_csv_string(&r)
        );
        assert_eq!(
            std::fs::read_to_string(&pts).unwrap(),
            points_csv_string(&r)
        );
        // Empty report: header only.
        let mut e = r.clone();
        e.points.clear();
        e.weak_errors.clear();
        write_points_csv(&e, &pts).unwrap();
        assert_eq!(
            std::fs::read_to_string(&pts).unwrap(),
            format!("{POINTS_HEADER}\n")
        );
        // Unwritable path is an error, not a panic.
        assert!(write_weak_error_csv(&r, &dir.path().join("no/such/dir/x.csv")).is_err());
    }
}
