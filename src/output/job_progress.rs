//! Resume by jobs, for the experiments whose work splits into jobs that each end in a
//! result (`width_sweep`, the finite-data experiments, `invariant`): every finished
//! job is saved at once in its own file, `progress/job-NNNNNN.json` (atomically, by
//! rename), beside `progress/run.json`, which holds what the run must match to be
//! continued (config echo after overrides, backend, adapter, precision). Each file
//! carries a SHA-256 digest; a job's digest covers the run's, so a job file cannot be
//! moved into another run. `--resume DIR` reloads the finished jobs and runs the rest.
//! One file per job keeps a save O(job), however many jobs are done. Experiments store
//! floats as f64 bit patterns, so the report is the one an uninterrupted run writes,
//! byte for byte. (`weak_order`/`n_point` resume by units of replicas: `progress.rs`.)

use crate::output::digest::digest_of;
use crate::output::files::write_atomic;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The folder, inside the output directory, that holds the progress of a run.
pub const DIR: &str = "progress";
const RUN_FILE: &str = "run.json";
/// Written last by a finished shard run (`run --shard`), whose jobs `merge` reads.
const DONE_FILE: &str = "done.json";
const FORMAT: &str = "smflow job progress";

/// What a run must match to continue another: config (after overrides) and backend.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    pub config: Value,
    pub backend: String,
    pub adapter: String,
    pub precision: String,
    /// `i/N` of a shard run (`run --shard`), absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl Identity {
    /// The identity of a run of `config` on a backend (its name, adapter and precision).
    pub fn new(
        config: &Value,
        backend: &str,
        adapter: String,
        precision: crate::backend::Precision,
    ) -> Self {
        Identity {
            config: config.clone(),
            backend: backend.into(),
            adapter,
            precision: precision.name().into(),
            shard: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RunContent {
    format: String,
    smflow_version: String,
    id: Identity,
    /// Jobs the run plans, where known before it starts.
    jobs: Option<usize>,
}

#[derive(Serialize, Deserialize)]
struct JobContent<T> {
    /// Digest of run.json: ties the job to its run.
    run: String,
    index: usize,
    /// What the job is (an experiment's own description), checked when it is replayed.
    what: Value,
    result: T,
}

#[derive(Serialize, Deserialize)]
struct Sealed<C> {
    #[serde(flatten)]
    content: C,
    digest: String,
}

/// The digest of a content, over its untyped form (keys sorted), as `load` recomputes it.
fn seal<C: Serialize>(content: &C) -> anyhow::Result<Sealed<Value>> {
    let content = serde_json::to_value(content)?;
    let digest = digest_of(&serde_json::to_vec(&content)?);
    Ok(Sealed { content, digest })
}

fn job_file(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("job-{index:06}.json"))
}

/// `progress/done.json` of a finished shard: its jobs and wall time, tied to run.json.
#[derive(Serialize, Deserialize)]
struct DoneContent {
    run: String,
    jobs: usize,
    wall_seconds: f64,
}

/// Saves finished jobs under `out/progress/`.
pub struct Store {
    dir: PathBuf,
    run: Sealed<Value>,
    written: bool,
}

impl Store {
    /// A store for a run of `jobs` jobs (None: not known in advance); nothing is
    /// written before the first job finishes.
    pub fn new(out: &Path, id: Identity, jobs: Option<usize>) -> anyhow::Result<Self> {
        let run = seal(&RunContent {
            format: FORMAT.into(),
            smflow_version: env!("CARGO_PKG_VERSION").into(),
            id,
            jobs,
        })?;
        Ok(Store {
            dir: out.join(DIR),
            run,
            written: false,
        })
    }

    /// Saves the result of job `index`, described by `what`.
    pub fn save<T: Serialize>(
        &mut self,
        index: usize,
        what: &Value,
        result: &T,
    ) -> anyhow::Result<()> {
        self.write_run()?;
        let job = seal(&JobContent {
            run: self.run.digest.clone(),
            index,
            what: what.clone(),
            result,
        })?;
        write_atomic(&job_file(&self.dir, index), &serde_json::to_vec(&job)?)?;
        Ok(())
    }

    fn write_run(&mut self) -> anyhow::Result<()> {
        if !self.written {
            std::fs::create_dir_all(&self.dir)?;
            write_atomic(&self.dir.join(RUN_FILE), &serde_json::to_vec(&self.run)?)?;
            self.written = true;
        }
        Ok(())
    }

    /// Marks a shard run finished (its jobs, this run's and any it resumed, are all
    /// saved): `progress/done.json`, written last, which `merge` requires.
    pub fn mark_shard_done(&mut self, wall_seconds: f64) -> anyhow::Result<()> {
        self.write_run()?;
        let jobs = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok()?.file_name().to_str().map(|n| n.starts_with("job-")))
            .filter(|&j| j)
            .count();
        let done = seal(&DoneContent {
            run: self.run.digest.clone(),
            jobs,
            wall_seconds,
        })?;
        write_atomic(&self.dir.join(DONE_FILE), &serde_json::to_vec(&done)?)?;
        Ok(())
    }

    /// Removes the progress once the outputs are written.
    pub fn finish(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A finished job of an interrupted run: what it was and its result.
pub struct Done<T> {
    pub what: Value,
    pub result: T,
}

/// The finished jobs (by index) of an interrupted run in `out`, checked against this
/// run's identity and (where known) number of jobs. Jobs past the last saved one are
/// None; so are gaps.
pub fn load<T: DeserializeOwned>(
    out: &Path,
    id: &Identity,
    jobs: Option<usize>,
) -> Result<Vec<Option<Done<T>>>, String> {
    if out.join("results.json").exists() {
        return Err("the run is already complete (it holds results.json)".into());
    }
    let dir = out.join(DIR);
    let (run, content) = read_run(out)?;
    let was = &content.id;
    if was.shard != id.shard {
        let name = |s: &Option<String>| {
            s.clone()
                .map_or("the whole run".into(), |s| format!("shard {s}"))
        };
        return Err(format!(
            "was {}, this is {}; resume with the same --shard",
            name(&was.shard),
            name(&id.shard)
        ));
    }
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
    if let (Some(n), Some(m)) = (jobs, content.jobs) {
        if n != m {
            return Err(format!("{DIR}/{RUN_FILE}: {m} jobs, the config plans {n}"));
        }
    }
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{DIR}: {e}"))?
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?;
            let i = name
                .strip_prefix("job-")?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((i, p))
        })
        .collect();
    found.sort();
    let len = jobs.unwrap_or_else(|| found.last().map_or(0, |(i, _)| i + 1));
    let mut out: Vec<Option<Done<T>>> = (0..len).map(|_| None).collect();
    for (i, p) in found {
        let name = format!("{DIR}/{}", p.file_name().unwrap().to_string_lossy());
        if i >= len {
            return Err(format!("{name}: job {i}, the config plans {len}"));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{name}: {e}"))?;
        let job: Sealed<Value> = checked(&text, &name)?;
        let job: JobContent<T> =
            serde_json::from_value(job.content).map_err(|e| format!("{name}: {e}"))?;
        if job.run != run.digest || job.index != i {
            return Err(format!("{name}: belongs to another run or job"));
        }
        out[i] = Some(Done {
            what: job.what,
            result: job.result,
        });
    }
    Ok(out)
}

/// A finished shard's identity, number of jobs and wall time (`progress/done.json`,
/// checked against its run.json), for `merge`.
pub fn finished_shard(out: &Path) -> Result<(Identity, usize, f64), String> {
    let (run, content) = read_run(out)?;
    let name = format!("{DIR}/{DONE_FILE}");
    let text = std::fs::read_to_string(out.join(DIR).join(DONE_FILE))
        .map_err(|_| format!("no {name}: the shard did not finish (continue it with --resume)"))?;
    let done: DoneContent = serde_json::from_value(checked(&text, &name)?.content)
        .map_err(|e| format!("{name}: {e}"))?;
    if done.run != run.digest {
        return Err(format!("{name}: belongs to another run"));
    }
    Ok((content.id, done.jobs, done.wall_seconds))
}

/// `progress/run.json` of `out`, its digest checked.
fn read_run(out: &Path) -> Result<(Sealed<Value>, RunContent), String> {
    let text = std::fs::read_to_string(out.join(DIR).join(RUN_FILE)).map_err(|_| {
        format!("no {DIR}/{RUN_FILE} (not the output directory of an interrupted smflow run, or it was killed before its first job finished)")
    })?;
    let run: Sealed<Value> = checked(&text, &format!("{DIR}/{RUN_FILE}"))?;
    let content: RunContent = serde_json::from_value(run.content.clone())
        .map_err(|e| format!("{DIR}/{RUN_FILE}: {e}"))?;
    if content.format != FORMAT {
        return Err(format!(
            "{DIR}/{RUN_FILE}: not a job progress file of this run"
        ));
    }
    Ok((run, content))
}

/// Parses a sealed file and checks its digest.
fn checked(text: &str, name: &str) -> Result<Sealed<Value>, String> {
    let s: Sealed<Value> = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let digest = digest_of(&serde_json::to_vec(&s.content).map_err(|e| e.to_string())?);
    if digest != s.digest {
        return Err(format!(
            "{name}: digest mismatch (the file was modified after it was written)"
        ));
    }
    Ok(s)
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
