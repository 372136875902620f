//! `smflow bench CONFIG`: the speed of any experiment on each backend. The config runs
//! whole, as `smflow run` would (same checks, same numbers), on every backend in turn,
//! `--rounds` times interleaved (cpu, gpu, cpu, gpu, …: the load drifts between rounds,
//! not between backends), into a temporary directory that is removed afterwards. Each
//! run's throughput is the `path_steps_per_second` and `wall_seconds` its results.json
//! reports (replica-steps for the finite-data experiments, neuron-steps for width
//! sweeps, substeps counted); the summary gives each backend's median and its ratio to
//! the first backend's. Pipeline compilation and thread start are part of a run's wall
//! time, as they are for a user.

use super::bench::{choices, Measurement};
use super::run::{run, RunArgs};
use super::Failure;
use crate::backend::BackendChoice;
use std::path::{Path, PathBuf};

/// Runs `config` on `backends` (default: cpu, and gpu where an adapter exists) for
/// `rounds` interleaved rounds; `paths` overrides the config's.
pub fn bench_config(
    config: &Path,
    backends: &[BackendChoice],
    paths: Option<u64>,
    rounds: u32,
) -> Result<Vec<Measurement>, Failure> {
    if rounds == 0 {
        return Err(Failure::BadInput("--rounds: must be ≥ 1, got 0".into()));
    }
    let f32 = crate::backend::Precision::F32;
    let backends = choices(backends, || {
        crate::backend::gpu::GpuBackend::new(f32).is_ok()
    });
    let scratch = Scratch::new()?;
    let mut out = Vec::new();
    println!(
        "{:<5} {:<9} {:>5} {:>10} {:>14}  adapter",
        "back", "precision", "round", "seconds", "path-steps/s"
    );
    for round in 0..rounds {
        for (i, &backend) in backends.iter().enumerate() {
            let dir = scratch.0.join(format!("r{round}-{i}"));
            run(RunArgs {
                config: config.to_path_buf(),
                backend,
                out: Some(dir.clone()),
                paths,
                seed: None,
                shard: None,
                quiet: true,
                force: false,
                resume: None,
            })?;
            let m = measurement(&dir.join("results.json"), paths)?;
            println!(
                "{:<5} {:<9} {:>5} {:>10.3} {:>14.3e}  {}",
                m.backend,
                m.precision,
                round + 1,
                m.seconds,
                m.path_steps_per_second,
                m.adapter
            );
            out.push(m);
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    summarise(&out, backends.len());
    Ok(out)
}

/// A fresh directory under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, Failure> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("smflow-bench-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            Failure::Runtime(anyhow::anyhow!("cannot create {}: {e}", dir.display()))
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// The run's throughput from its results.json.
fn measurement(results: &Path, paths: Option<u64>) -> Result<Measurement, Failure> {
    let text = std::fs::read_to_string(results)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{}: {e}", results.display())))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Failure::Runtime(e.into()))?;
    let text_of = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    let (Some(seconds), Some(rate)) = (
        v["wall_seconds"].as_f64(),
        v["path_steps_per_second"].as_f64(),
    ) else {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{} has no wall_seconds / path_steps_per_second",
            results.display()
        )));
    };
    Ok(Measurement {
        backend: text_of("backend"),
        adapter: text_of("adapter"),
        precision: text_of("precision"),
        job: format!("{} ({})", text_of("name"), text_of("experiment")),
        paths: paths.or_else(|| v["config"]["paths"].as_u64()).unwrap_or(0),
        path_steps: seconds * rate,
        seconds,
        path_steps_per_second: rate,
    })
}

/// Per backend (the first `backends` measurements, then every round alike): the median
/// throughput over rounds and its ratio to the first backend's median.
fn summarise(all: &[Measurement], backends: usize) {
    let median = |i: usize| {
        let mut v: Vec<f64> = all
            .iter()
            .skip(i)
            .step_by(backends)
            .map(|m| m.path_steps_per_second)
            .collect();
        v.sort_by(f64::total_cmp);
        let h = v.len() / 2;
        if v.len() % 2 == 1 {
            v[h]
        } else {
            0.5 * (v[h - 1] + v[h])
        }
    };
    let first = median(0);
    for (i, m) in all.iter().take(backends).enumerate() {
        println!(
            "median {:<5} {:<4} {:>14.3e} path-steps/s, {:.2}× {} ({})",
            m.backend,
            m.precision,
            median(i),
            median(i) / first,
            all[0].backend,
            all[0].precision
        );
    }
}
