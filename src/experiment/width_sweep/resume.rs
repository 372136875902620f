//! Resume for `width_sweep`: after each finished (dynamics, η, width) job its
//! per-replica observables are saved in `progress.json` (atomically, by rename; the
//! first job, then at most every 2 s, and the last), with the config echo, the backend
//! and a SHA-256 digest. `--resume DIR` reloads the finished jobs and runs the rest;
//! the values are stored as f64 bit patterns, so the report is the one an
//! uninterrupted run writes, byte for byte.

use super::analysis::Runs;
use crate::output::files::write_atomic;
use crate::output::partials::digest_of;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const FILE: &str = "progress.json";
const FORMAT: &str = "smflow width_sweep progress";
const MIN_INTERVAL: Duration = Duration::from_secs(2);

/// What a run must match to continue another: config (after overrides) and backend.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    pub config: Value,
    pub backend: String,
    pub adapter: String,
    pub precision: String,
}

#[derive(Serialize, Deserialize)]
struct Content {
    format: String,
    smflow_version: String,
    id: Identity,
    /// Per job (dynamics, η, width, in execution order): `[checkpoint][replica]` of
    /// the 4 observables as f64 bits, or null while not done.
    jobs: Vec<Option<Vec<Vec<[u64; 4]>>>>,
}

#[derive(Serialize, Deserialize)]
struct File {
    #[serde(flatten)]
    content: Content,
    digest: String,
}

fn to_bits(r: &Runs) -> Vec<Vec<[u64; 4]>> {
    r.iter()
        .map(|c| c.iter().map(|o| o.map(f64::to_bits)).collect())
        .collect()
}

fn from_bits(r: &[Vec<[u64; 4]>]) -> Runs {
    r.iter()
        .map(|c| c.iter().map(|o| o.map(f64::from_bits)).collect())
        .collect()
}

/// Saves the finished jobs into `dir/progress.json`.
pub struct Saver {
    path: PathBuf,
    id: Identity,
    last: Option<Instant>,
}

impl Saver {
    pub fn new(dir: &Path, id: Identity) -> Self {
        Saver {
            path: dir.join(FILE),
            id,
            last: None,
        }
    }

    /// Writes the state after a finished job: the first, then at most every 2 s, and
    /// the last.
    pub fn after_job(&mut self, jobs: &[Option<Runs>]) -> anyhow::Result<()> {
        let all = jobs.iter().all(Option::is_some);
        if !all && self.last.is_some_and(|t| t.elapsed() < MIN_INTERVAL) {
            return Ok(());
        }
        let content = Content {
            format: FORMAT.into(),
            smflow_version: env!("CARGO_PKG_VERSION").into(),
            id: self.id.clone(),
            jobs: jobs.iter().map(|j| j.as_ref().map(to_bits)).collect(),
        };
        let digest = digest_of(&serde_json::to_vec(&content)?);
        let bytes = serde_json::to_vec(&File { content, digest })?;
        write_atomic(&self.path, &bytes)?;
        self.last = Some(Instant::now());
        Ok(())
    }

    /// Removes the file once the outputs are written.
    pub fn finish(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The finished jobs of an interrupted run in `dir`, checked against this run's
/// identity and number of jobs.
pub fn load(dir: &Path, id: &Identity, n_jobs: usize) -> Result<Vec<Option<Runs>>, String> {
    if dir.join("results.json").exists() {
        return Err("the run is already complete (it holds results.json)".into());
    }
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        format!("no {FILE} (not the output directory of an interrupted smflow run, or it was killed before its first job finished)")
    })?;
    let f: File = serde_json::from_str(&text).map_err(|e| format!("{FILE}: {e}"))?;
    if f.content.format != FORMAT {
        return Err(format!("{FILE}: not a width_sweep progress file"));
    }
    let digest = digest_of(&serde_json::to_vec(&f.content).map_err(|e| e.to_string())?);
    if digest != f.digest {
        return Err(format!(
            "{FILE}: digest mismatch (the file was modified after it was written)"
        ));
    }
    let was = &f.content.id;
    if was.config != id.config {
        return Err(format!(
            "was run with a different config or seed (field {})",
            first_difference(&was.config, &id.config, "")
        ));
    }
    if (&was.backend, &was.adapter, &was.precision) != (&id.backend, &id.adapter, &id.precision) {
        return Err(format!(
            "was run on backend {} ({}, {}), this is {} ({}, {}); resume on the same backend and adapter",
            was.backend, was.precision, was.adapter, id.backend, id.precision, id.adapter
        ));
    }
    if f.content.jobs.len() != n_jobs {
        return Err(format!(
            "{FILE}: {} jobs, the config plans {n_jobs}",
            f.content.jobs.len()
        ));
    }
    Ok(f.content
        .jobs
        .iter()
        .map(|j| j.as_deref().map(from_bits))
        .collect())
}

/// The path of the first field where two config echoes differ.
fn first_difference(a: &Value, b: &Value, at: &str) -> String {
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => return first_difference(v, w, &join(k)),
                    None => return join(k),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map_or(at.to_string(), |k| join(k))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .position(|(v, w)| v != w)
            .map_or(at.to_string(), |i| {
                first_difference(&x[i], &y[i], &format!("{at}[{i}]"))
            }),
        _ => format!("{at}: {a} there, {b} here"),
    }
}
