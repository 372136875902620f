//! Writing a run directory: `partials.json` (exact mergeable statistics, read by
//! `smflow merge`), CSV tables, SVG plot, and `results.json` last, atomically, so a
//! directory with a results.json always holds a complete run.

use super::report::Report;
use crate::stats::MomentsParts;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The exact statistics of one run or shard.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Partials {
    pub smflow_version: String,
    /// `i/N` for a shard, null for a whole run.
    pub shard: Option<String>,
    pub backend: String,
    pub adapter: String,
    pub precision: String,
    pub wall_seconds: f64,
    pub path_steps: f64,
    /// The config as run (after --paths/--seed overrides).
    pub config: serde_json::Value,
    /// `moments[run][batch][checkpoint * n_obs + observable]`.
    pub moments: Vec<Vec<Vec<MomentsParts>>>,
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Writes every output of a finished run into `dir`; returns the files written.
pub fn write_run(dir: &Path, report: &Report, partials: &Partials) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating output directory {}", dir.display()))?;
    // A stale results.json must not vouch for a half-written directory.
    let results = dir.join("results.json");
    if results.exists() {
        std::fs::remove_file(&results)
            .with_context(|| format!("removing old {}", results.display()))?;
    }
    let mut written = Vec::new();
    let p = dir.join("partials.json");
    write_atomic(&p, &serde_json::to_vec(partials)?)?;
    written.push(p);
    let p = dir.join("points.csv");
    super::csv::write_points_csv(report, &p)?;
    written.push(p);
    if !report.weak_errors.is_empty() {
        let p = dir.join("weak_error.csv");
        super::csv::write_weak_error_csv(report, &p)?;
        written.push(p);
        let p = dir.join("weak_error.svg");
        super::svg::write_weak_error_svg(report, &p)?;
        written.push(p);
    }
    if !report.correlations.is_empty() {
        let p = dir.join("correlations.csv");
        write_correlations_csv(report, &p)?;
        written.push(p);
    }
    write_atomic(&results, &serde_json::to_vec_pretty(report)?)?;
    written.push(results);
    Ok(written)
}

fn write_correlations_csv(report: &Report, path: &Path) -> anyhow::Result<()> {
    let mut s = String::from(
        "dynamics,eta,t,particle_p,particle_q,correlation,stderr,mean_dist2,mean_dist2_stderr\n",
    );
    for c in &report.correlations {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            c.dynamics,
            c.eta,
            c.t,
            c.particles[0],
            c.particles[1],
            c.correlation,
            c.stderr,
            c.mean_dist2,
            c.mean_dist2_stderr
        ));
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

pub fn read_partials(dir: &Path) -> anyhow::Result<Partials> {
    let p = dir.join("partials.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}
