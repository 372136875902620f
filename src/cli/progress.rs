//! `progress.json`: the state of a running `smflow run` (weak_order, n_point), written
//! atomically into its output directory as work units finish, so that a run that is
//! killed (SIGINT, SIGKILL, a crash, a lost machine) can be continued with `--resume
//! DIR` and give, bit for bit, the statistics of an uninterrupted run.
//!
//! It holds the config echo, the shard, the backend, the unit size, the replicas done
//! of each (run, batch) slice (a prefix of whole units) and the exact merged sums of
//! those units, sealed with a SHA-256 digest (as `partials.json`). Before its sums are
//! used again it is checked against the plan: digest, shape, done counts on unit
//! boundaries, each statistic's count against the replicas done, and the sums' sanity.
//! A finished run removes it once `results.json` is written.

use crate::backend::shifts;
use crate::experiment::partials::check_sums;
use crate::experiment::{slice, Collected, Done, Plan, Shard};
use crate::output::digest::digest_of;
use crate::stats::{Moments, MomentsParts};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const FILE: &str = "progress.json";
const FORMAT: &str = "smflow progress v1";
/// Units finishing faster than this are saved together (the first one at once).
const MIN_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProgressFile {
    pub format: String,
    pub smflow_version: String,
    /// `i/N` for a shard, null for a whole run.
    pub shard: Option<String>,
    pub backend: String,
    pub adapter: String,
    pub precision: String,
    /// The config as run (after --paths/--seed overrides).
    pub config: Value,
    pub unit_replicas: u64,
    pub units_done: u64,
    pub units_total: u64,
    pub wall_seconds: f64,
    pub path_steps: f64,
    /// `done[run][batch]`: replicas done of that slice of the shard.
    pub done: Vec<Vec<u64>>,
    /// `moments[run][batch][checkpoint * n_obs + observable]` of the done replicas.
    pub moments: Vec<Vec<Vec<MomentsParts>>>,
    #[serde(default)]
    pub digest: String,
}

impl ProgressFile {
    fn compute_digest(&self) -> String {
        let mut c = self.clone();
        c.digest = String::new();
        digest_of(&serde_json::to_vec(&c).expect("progress serialises"))
    }
}

/// Facts about the run that a resume must match.
#[derive(Clone, Debug)]
pub struct RunIdentity {
    pub shard: Option<String>,
    pub backend: String,
    pub adapter: String,
    pub precision: String,
    pub config: Value,
}

/// Saves the state after finished units into `dir/progress.json`.
pub struct Saver {
    path: PathBuf,
    id: RunIdentity,
    plan: Plan,
    shard: Shard,
    last: Option<Instant>,
}

impl Saver {
    pub fn new(dir: &Path, id: RunIdentity, plan: &Plan, shard: Shard) -> Saver {
        Saver {
            path: dir.join(FILE),
            id,
            plan: plan.clone(),
            shard,
            last: None,
        }
    }

    /// Writes the state if it is the first or the last unit, or `MIN_INTERVAL` has
    /// passed since the last write.
    pub fn after_unit(&mut self, done: &Done) -> anyhow::Result<()> {
        let (units_done, units_total) = done.units(&self.plan, self.shard);
        let due = self.last.is_none_or(|t| t.elapsed() >= MIN_INTERVAL);
        if !due && units_done < units_total {
            return Ok(());
        }
        self.write(done, units_done, units_total)?;
        self.last = Some(Instant::now());
        Ok(())
    }

    fn write(&self, done: &Done, units_done: u64, units_total: u64) -> anyhow::Result<()> {
        let mut f = ProgressFile {
            format: FORMAT.into(),
            smflow_version: env!("CARGO_PKG_VERSION").into(),
            shard: self.id.shard.clone(),
            backend: self.id.backend.clone(),
            adapter: self.id.adapter.clone(),
            precision: self.id.precision.clone(),
            config: self.id.config.clone(),
            unit_replicas: done.unit_replicas,
            units_done,
            units_total,
            wall_seconds: done.collected.wall_seconds,
            path_steps: done.collected.path_steps,
            done: done.replicas.clone(),
            moments: done.collected.to_parts(),
            digest: String::new(),
        };
        f.digest = f.compute_digest();
        write_durable(&self.path, &serde_json::to_vec(&f)?)
            .with_context(|| format!("saving progress to {}", self.path.display()))
    }
}

/// Writes `path` atomically (a temporary, flushed to disk, renamed over it; then the
/// directory flushed), so that even a lost machine leaves the old or the new file.
fn write_durable(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    if let Some(dir) = path.parent() {
        // Not every platform can sync a directory; the rename stands either way.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Removes the progress file of a finished run (and a temporary left by a kill).
pub fn remove(dir: &Path) -> anyhow::Result<()> {
    for p in [dir.join(FILE), dir.join(FILE).with_extension("tmp")] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", p.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads `dir/progress.json` for `--resume dir`, checks it belongs to this run (same
/// smflow, config echo and shard) and is sound against the plan, and returns it with
/// the state to continue from; [`ProgressFile::check_backend`] then checks the backend.
/// Errors are one line (exit 2), without the `--resume DIR: ` prefix.
pub fn load(
    dir: &Path,
    config: &Value,
    shard_label: &Option<String>,
    plan: &Plan,
    shard: Shard,
) -> Result<(ProgressFile, Done), String> {
    if dir.join("results.json").exists() {
        return Err("the run is already complete (it holds results.json)".into());
    }
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "no {FILE} (not the output directory of an interrupted smflow run, or it was killed before its first work unit finished)"
            ))
        }
        Err(e) => return Err(format!("cannot read {FILE}: {e}")),
    };
    let f: ProgressFile =
        serde_json::from_str(&text).map_err(|e| format!("{FILE}: not a progress file ({e})"))?;
    if f.format != FORMAT {
        return Err(format!(
            "{FILE}: format {:?}, expected {FORMAT:?}",
            f.format
        ));
    }
    if f.digest.is_empty() || f.digest != f.compute_digest() {
        return Err(format!(
            "{FILE}: digest mismatch (the file was modified after it was written)"
        ));
    }
    let version = env!("CARGO_PKG_VERSION");
    if f.smflow_version != version {
        return Err(format!(
            "was run by smflow {}, this is {version} (finish it with that version)",
            f.smflow_version
        ));
    }
    if let Some(d) = first_difference(&f.config, config, "") {
        return Err(format!(
            "was run with a different config or seed (field {d})"
        ));
    }
    if f.shard != *shard_label {
        let s = |x: &Option<String>| x.clone().unwrap_or_else(|| "none (the whole run)".into());
        return Err(format!(
            "was run with a different config or seed (field shard: {} there, {} here)",
            s(&f.shard),
            s(shard_label)
        ));
    }
    let done = check(&f, plan, shard).map_err(|e| format!("{FILE}: {e}"))?;
    Ok((f, done))
}

impl ProgressFile {
    /// Whether this run's backend may continue the file's.
    pub fn check_backend(
        &self,
        backend: &str,
        adapter: &str,
        precision: &str,
    ) -> Result<(), String> {
        let f = self;
        // The CPU gives the same numbers on any thread count; a GPU's f32 rounding is its
        // own, so a GPU run resumes on the same adapter only.
        let same_gpu = f.backend != "gpu" || f.adapter == adapter;
        if f.backend != backend || f.precision != precision || !same_gpu {
            return Err(format!(
                "was run on backend {} ({}, {}), this is {backend} ({precision}, {adapter}); resume on the same backend and adapter (--backend {})",
                f.backend, f.precision, f.adapter, f.backend
            ));
        }
        Ok(())
    }
}

/// The file's shape, done counts and sums against the plan.
fn check(f: &ProgressFile, plan: &Plan, shard: Shard) -> Result<Done, String> {
    let unit = f.unit_replicas;
    if unit == 0 || !unit.is_multiple_of(64) {
        return Err(format!(
            "unit_replicas {unit} is not a positive multiple of 64"
        ));
    }
    if f.moments.len() != plan.runs.len() || f.done.len() != plan.runs.len() {
        return Err(format!(
            "{} runs, but the config plans {}",
            f.moments.len(),
            plan.runs.len()
        ));
    }
    let mut col = Collected::empty(plan);
    let mut path_steps = 0.0;
    for (ri, run) in plan.runs.iter().enumerate() {
        let name = format!("{} η={}", run.spec.dynamics, run.spec.eta);
        let nb = plan.batches as usize;
        if f.moments[ri].len() != nb || f.done[ri].len() != nb {
            return Err(format!("{name}: batches differ from the plan's {nb}"));
        }
        let n_obs = run.spec.n_stats();
        let n_stats = run.spec.checkpoints.len() * n_obs;
        let sh = shifts(&plan.checked.model, &run.spec);
        for b in 0..nb {
            let r = slice(plan, shard, ri, b as u64);
            let len = r.end - r.start;
            let d = f.done[ri][b];
            if d > len || (d != 0 && d != len && !(r.start + d).is_multiple_of(unit)) {
                return Err(format!(
                    "{name}, batch {b}: {d} replicas done of {len}, not a whole number of {unit}-replica units"
                ));
            }
            path_steps += d as f64 * run.spec.work_per_path();
            let stats = &f.moments[ri][b];
            if stats.len() != n_stats {
                return Err(format!(
                    "{name}, batch {b}: {} statistics, expected {n_stats}",
                    stats.len()
                ));
            }
            for (k, p) in stats.iter().enumerate() {
                let stat = format!("{name}, batch {b}, statistic {k}");
                if p.count.checked_add(p.diverged) != Some(d) {
                    return Err(format!(
                        "{stat}: count {} + diverged {} but {d} replicas done",
                        p.count, p.diverged
                    ));
                }
                let (channel, obs) = run.spec.stat(k % n_obs);
                check_sums(
                    p,
                    obs,
                    sh[k],
                    crate::experiment::partials::plain_value(&run.spec, channel),
                )
                .map_err(|e| format!("{stat}: {e}"))?;
                col.moments[ri][b][k] =
                    Moments::from_parts(p).map_err(|e| format!("{stat}: {e}"))?;
            }
        }
    }
    let rel = (f.path_steps - path_steps).abs() / path_steps.max(1.0);
    if rel.is_nan() || rel > 1e-9 || f.wall_seconds.is_nan() || f.wall_seconds < 0.0 {
        return Err(format!(
            "path_steps {} / wall_seconds {} do not match the {path_steps} path-steps done",
            f.path_steps, f.wall_seconds
        ));
    }
    col.path_steps = f.path_steps;
    col.wall_seconds = f.wall_seconds;
    Ok(Done {
        unit_replicas: unit,
        replicas: f.done.clone(),
        collected: col,
    })
}

/// The first place where two config echoes differ: `seed: 1 there, 2 here`.
pub fn first_difference(there: &Value, here: &Value, at: &str) -> Option<String> {
    let show = |v: Option<&Value>| match v {
        None => "absent".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 60 {
                format!("{}…", s.chars().take(60).collect::<String>())
            } else {
                s
            }
        }
    };
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match (there, here) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => {
                        if let Some(d) = first_difference(x, y, &join(k)) {
                            return Some(d);
                        }
                    }
                    (x, y) => {
                        return Some(format!("{}: {} there, {} here", join(k), show(x), show(y)))
                    }
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{at}[{i}]"))),
        _ if there == here => None,
        _ => Some(format!(
            "{}: {} there, {} here",
            if at.is_empty() { "config" } else { at },
            show(Some(there)),
            show(Some(here))
        )),
    }
}
