//! Writing a finished experiment's outputs for the finite-data and mean-field commands
//! (`smflow run` of least_squares_risk, implicit_bias_sweep, gd_vs_gf, width_sweep):
//! the experiment's files, then results.json, atomically and last, so a folder with a
//! results.json is complete.

use crate::experiment::training::config::Setup;
use crate::experiment::training::Output;
use crate::train::Trainer;
use serde_json::{json, Value};
use std::path::Path;

/// Writes the outputs (results.json last, atomically) and returns the files written.
pub fn write(
    dir: &Path,
    s: &Setup,
    t: &dyn Trainer,
    out: &Output,
    wall: f64,
) -> anyhow::Result<Vec<String>> {
    let info = RunInfo {
        experiment: &s.cfg.experiment,
        name: &s.name,
        // What ran (the CPU trainer is f64 whatever the config says).
        precision: t.precision().name(),
        seed: s.cfg.seed,
        echo: &s.echo,
        backend: t.name(),
        adapter: t.adapter(),
    };
    write_output(dir, &info, out, wall)
}

/// What results.json says about a run besides its results.
pub struct RunInfo<'a> {
    pub experiment: &'a str,
    pub name: &'a str,
    pub precision: &'a str,
    pub seed: u64,
    pub echo: &'a Value,
    pub backend: &'a str,
    pub adapter: String,
}

/// Writes `out`'s files, then results.json (atomically, last: a directory with a
/// results.json is complete), and returns the names written.
pub fn write_output(
    dir: &Path,
    info: &RunInfo,
    out: &Output,
    wall: f64,
) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let results = dir.join("results.json");
    if results.exists() {
        std::fs::remove_file(&results)?;
    }
    let mut written = Vec::new();
    for (name, text) in &out.files {
        crate::output::files::write_atomic(&dir.join(name), text.as_bytes())?;
        written.push(name.clone());
    }
    let doc = json!({
        "experiment": info.experiment,
        "name": info.name,
        "smflow_version": env!("CARGO_PKG_VERSION"),
        "backend": info.backend,
        "adapter": info.adapter,
        "precision": info.precision,
        "seed": info.seed,
        "wall_seconds": wall,
        "path_steps": out.path_steps,
        "path_steps_per_second": out.path_steps / wall.max(1e-9),
        "results": out.results,
        "warnings": out.warnings,
        "files": written,
        "config": info.echo,
    });
    crate::output::files::write_atomic(&results, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    written.push("results.json".into());
    Ok(written)
}
