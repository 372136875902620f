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
    /// SHA-256 over the fields above (`super::partials`); set by `write_run`, checked
    /// by `Partials::verify`. Empty in memory until sealed.
    #[serde(default)]
    pub digest: String,
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
    write_atomic(&p, &serde_json::to_vec(&partials.sealed())?)?;
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
    if !report.ensembles.is_empty() {
        let p = dir.join("ensemble.csv");
        write_ensemble_csv(report, &p)?;
        written.push(p);
    }
    if !report.paired.is_empty() {
        let p = dir.join("paired.csv");
        write_paired_csv(report, &p)?;
        written.push(p);
        // |SGD − SMF| against η, with the fitted orders, drawn as the weak errors are.
        let view = Report {
            weak_errors: report.paired.iter().map(|e| e.as_weak_error()).collect(),
            ..report.clone()
        };
        let p = dir.join("paired.svg");
        super::svg::write_svg(&view, "paired |SGD − SMF| of the joint statistic", &p)?;
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

fn write_ensemble_csv(report: &Report, path: &Path) -> anyhow::Result<()> {
    let mut s = String::from("dynamics,eta,t,particles,n_var,n_var_stderr\n");
    for e in &report.ensembles {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            e.dynamics, e.eta, e.t, e.particles, e.n_var, e.n_var_stderr
        ));
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

fn write_paired_csv(report: &Report, path: &Path) -> anyhow::Result<()> {
    let mut s = String::from(
        "reference,dynamics,eta,t,quantity,particle_p,particle_q,difference,stderr,reference_value,value,independent_stderr,resolved\n",
    );
    for e in &report.paired {
        let (p, q) = e
            .particles
            .map_or((String::new(), String::new()), |[p, q]| {
                (p.to_string(), q.to_string())
            });
        s.push_str(&format!(
            "{},{},{},{},{},{p},{q},{},{},{},{},{},{}\n",
            e.reference,
            e.dynamics,
            e.eta,
            e.t,
            e.quantity,
            e.difference,
            e.stderr,
            e.reference_value,
            e.value,
            e.independent_stderr,
            e.resolved
        ));
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

/// An output directory made ready by [`prepare_out_dir`]. If this call created it and
/// it is still empty when dropped (the run failed before writing), it is removed.
#[derive(Debug)]
pub struct OutDir {
    pub path: PathBuf,
    created: bool,
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if self.created {
            // Fails, harmlessly, once the run has written anything.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Makes `dir` ready to receive a run's outputs, before any work is done: creates it
/// if missing; refuses a regular file, a directory that cannot be written, and a
/// non-empty directory unless `force`, which empties it first (only of files: a
/// subdirectory is refused, so `--force` cannot remove a tree it did not write).
/// The error text names `flag` and `dir` (exit 2 at the command line).
pub fn prepare_out_dir(dir: &Path, flag: &str, force: bool) -> Result<OutDir, String> {
    let name = |why: String| format!("{flag} {}: {why}", dir.display());
    let mut created = false;
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(name("is a file, not a directory".into())),
        Ok(_) => {
            let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
                .and_then(|r| r.collect())
                .map_err(|e| name(format!("cannot list it: {e}")))?;
            if !entries.is_empty() {
                if !force {
                    return Err(name(
                        "not empty (use --force to replace its contents)".into(),
                    ));
                }
                for e in &entries {
                    let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    if is_dir {
                        return Err(name(format!(
                            "holds a directory, {}; --force replaces only files (remove it yourself)",
                            e.file_name().to_string_lossy()
                        )));
                    }
                }
                for e in &entries {
                    std::fs::remove_file(e.path()).map_err(|err| {
                        name(format!(
                            "cannot remove {}: {err}",
                            e.file_name().to_string_lossy()
                        ))
                    })?;
                }
            }
        }
        Err(_) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| name(format!("cannot create the directory: {e}")))?;
            created = true;
        }
    }
    let out = OutDir {
        path: dir.to_path_buf(),
        created,
    };
    probe_writable(dir).map_err(|e| name(format!("not writable: {e}")))?;
    Ok(out)
}

/// The output directory of an interrupted run, for `--resume`: it must exist and be
/// writable; its contents stay (it is never removed on drop).
pub fn resume_dir(dir: &Path, flag: &str) -> Result<OutDir, String> {
    let name = |why: String| format!("{flag} {}: {why}", dir.display());
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(name("is a file, not a directory".into())),
        Err(e) => return Err(name(format!("cannot open it: {e}"))),
    }
    probe_writable(dir).map_err(|e| name(format!("not writable: {e}")))?;
    Ok(OutDir {
        path: dir.to_path_buf(),
        created: false,
    })
}

/// Checks, before any work, that a file can be written at `path` (its directory exists
/// and is writable; the path is not a directory). Nothing is left behind.
pub fn check_output_file(path: &Path, flag: &str) -> Result<(), String> {
    let name = |why: String| format!("{flag} {}: {why}", path.display());
    if path.is_dir() {
        return Err(name("is a directory".into()));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(name(format!("{} is not a directory", parent.display()))),
        Err(e) => return Err(name(format!("directory {}: {e}", parent.display()))),
    }
    probe_writable(parent).map_err(|e| name(format!("cannot write in {}: {e}", parent.display())))
}

/// Creates and removes a temporary file in `dir`.
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let p = dir.join(format!(".smflow-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)?;
    std::fs::remove_file(&p)
}

pub fn read_partials(dir: &Path) -> anyhow::Result<Partials> {
    let p = dir.join("partials.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}
