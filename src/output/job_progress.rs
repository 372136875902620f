//! Resume by jobs, for the experiments that keep per-replica results (`width_sweep`,
//! the finite-data trainer): after each finished job its results `T` are saved in
//! `progress.json` (atomically, by rename; the first job, then at most every 2 s, and
//! the last), with the config echo, the backend and a SHA-256 digest. `--resume DIR`
//! reloads the finished jobs and runs the rest. Experiments store floats as f64 bit
//! patterns, so the report is the one an uninterrupted run writes, byte for byte.
//! (`weak_order`/`n_point` resume by units of replicas instead: `progress.rs`.)

use crate::output::files::write_atomic;
use crate::output::partials::digest_of;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const FILE: &str = "progress.json";
const FORMAT: &str = "smflow job progress";
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
struct Content<T> {
    format: String,
    smflow_version: String,
    id: Identity,
    /// Per job, in execution order: its results, or null while not done.
    jobs: Vec<Option<T>>,
}

#[derive(Serialize, Deserialize)]
struct File<T> {
    #[serde(flatten)]
    content: Content<T>,
    digest: String,
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

    /// Whether a save is due after a finished job: the first, then at most every 2 s,
    /// and the last (`last`: no job is left).
    pub fn due(&self, last: bool) -> bool {
        last || self.last.is_none_or(|t| t.elapsed() >= MIN_INTERVAL)
    }

    /// Writes the state after a finished job if it is `due`: the first, then at most
    /// every 2 s, and the last (`last`: no job is left).
    pub fn after_job<T: Serialize>(
        &mut self,
        jobs: &[Option<T>],
        last: bool,
    ) -> anyhow::Result<()> {
        if !self.due(last) {
            return Ok(());
        }
        let content = Content {
            format: FORMAT.into(),
            smflow_version: env!("CARGO_PKG_VERSION").into(),
            id: self.id.clone(),
            jobs: jobs.iter().map(|j| j.as_ref()).collect::<Vec<_>>(),
        };
        // Digest over the untyped form (keys sorted), as `load` recomputes it.
        let content: Content<Value> = serde_json::from_value(serde_json::to_value(&content)?)?;
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
/// identity and (where known) number of jobs.
pub fn load<T: DeserializeOwned>(
    dir: &Path,
    id: &Identity,
    n_jobs: Option<usize>,
) -> Result<Vec<Option<T>>, String> {
    if dir.join("results.json").exists() {
        return Err("the run is already complete (it holds results.json)".into());
    }
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        format!("no {FILE} (not the output directory of an interrupted smflow run, or it was killed before its first job finished)")
    })?;
    // The digest is over the serialised content, so check it on the untyped value.
    let raw: File<Value> = serde_json::from_str(&text).map_err(|e| format!("{FILE}: {e}"))?;
    if raw.content.format != FORMAT {
        return Err(format!("{FILE}: not a job progress file of this run"));
    }
    let digest = digest_of(&serde_json::to_vec(&raw.content).map_err(|e| e.to_string())?);
    if digest != raw.digest {
        return Err(format!(
            "{FILE}: digest mismatch (the file was modified after it was written)"
        ));
    }
    let was = &raw.content.id;
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
    if let Some(n) = n_jobs.filter(|&n| n != raw.content.jobs.len()) {
        return Err(format!(
            "{FILE}: {} jobs, the config plans {n}",
            raw.content.jobs.len()
        ));
    }
    raw.content
        .jobs
        .into_iter()
        .map(|j| j.map(serde_json::from_value).transpose())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{FILE}: {e}"))
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
