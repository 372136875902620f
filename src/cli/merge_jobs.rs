//! `smflow merge` of shards that save jobs (`output::job_progress`):
//! - least_squares_risk and implicit_bias_sweep (`experiment::shard::ShardRows`): each
//!   shard saved job k as its slice of trainer call k's replicas; the slices of job k
//!   are joined in shard order (they must tile the call's replicas);
//! - width_sweep (the same `ShardRows`): each shard saved every job whole,
//!   NaN where another shard owns a replica; each replica is taken from its owner;
//! - invariant: each shard saved job k as the bin counts of its part of batch k's
//!   paths; the counts are added up (`cli::invariant::merge`).
//!
//! The experiment is then replayed from the joined jobs without computing anything, so
//! its outputs are the ones one unsharded run writes, byte for byte (results.json's
//! timing aside: the shards' wall times summed).

use super::merge::{shard_set, MergeArgs};
use super::outputs::write;
use super::replay::{Replay, Rows};
use super::Failure;
use crate::backend::rows::{RowEngine, RowJob, RowSink};
use crate::experiment::training::config::{check, parse_echo};
use crate::experiment::training::execute;
use crate::output::files::{prepare_out_dir, OutDir};
use crate::output::job_progress::{self, Done, Identity, Store};
use serde_json::Value;
use std::ops::Range;
use std::path::PathBuf;

/// One shard's directory and jobs.
struct ShardJobs<T> {
    dir: PathBuf,
    jobs: Vec<Done<T>>,
}

fn bad(d: &std::path::Path, e: impl std::fmt::Display) -> Failure {
    Failure::BadInput(format!("merge: {}: {e}", d.display()))
}

/// A finished shard's identity, number of jobs and wall time.
fn head(dir: &PathBuf) -> Result<(Identity, usize, f64), Failure> {
    let (id, n, wall) = job_progress::finished_shard(dir).map_err(|e| bad(dir, e))?;
    if id.shard.is_none() {
        return Err(bad(dir, "not a shard (run with --shard i/N)"));
    }
    Ok((id, n, wall))
}

/// Every job of the shard in `dir` (all must be there).
fn read<T: serde::de::DeserializeOwned>(
    dir: &PathBuf,
    (id, n, _): (Identity, usize, f64),
) -> Result<ShardJobs<T>, Failure> {
    let done = job_progress::load::<T>(dir, &id, Some(n)).map_err(|e| bad(dir, e))?;
    let jobs = done
        .into_iter()
        .enumerate()
        .map(|(k, j)| j.ok_or_else(|| bad(dir, format!("job {k} of {n} is missing"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ShardJobs {
        dir: dir.clone(),
        jobs,
    })
}

/// The replica range a saved job covers.
fn range(what: &Value) -> Option<Range<u64>> {
    let r = what.get("replicas")?.as_array()?;
    Some(r.first()?.as_u64()?..r.get(1)?.as_u64()?)
}

/// Job k of every shard (in shard order) joined: the slices must tile one range, or
/// (a call of ≤ 1 replica, which every shard runs whole) all be that call, of which
/// shard 1's rows are taken.
fn join(k: usize, shards: &[ShardJobs<Rows>]) -> Result<Done<Rows>, Failure> {
    let first = &shards[0].jobs[k];
    let same = |w: &Value| {
        let mut a = w.clone();
        let mut b = first.what.clone();
        a["replicas"] = Value::Null;
        b["replicas"] = Value::Null;
        a == b
    };
    let mut whole: Option<Range<u64>> = None;
    let mut rows: Rows = vec![Vec::new(); first.result.len()];
    for s in shards {
        let j = &s.jobs[k];
        let r = range(&j.what)
            .ok_or_else(|| bad(&s.dir, format!("job {k} does not say its replicas")))?;
        if !same(&j.what) || j.result.len() != rows.len() {
            return Err(bad(
                &s.dir,
                format!("job {k} is {}, shard 1's is {}", j.what, first.what),
            ));
        }
        let single = r.end - r.start <= 1 && range(&first.what) == Some(r.clone());
        match &mut whole {
            Some(w) if single && *w == r => continue,
            Some(w) if w.end == r.start => w.end = r.end,
            None => whole = Some(r.clone()),
            Some(w) => {
                return Err(bad(
                    &s.dir,
                    format!("job {k} holds replicas {r:?}, which do not follow {w:?}"),
                ))
            }
        }
        for (c, bits) in j.result.iter().enumerate() {
            rows[c].extend_from_slice(bits);
        }
    }
    let whole = whole.expect("at least one shard");
    let mut what = first.what.clone();
    what["replicas"] = serde_json::json!([whole.start, whole.end]);
    Ok(Done { what, result: rows })
}

/// Stands for the shards' engine (trainer or mean-field backend) while every call is
/// replayed from their jobs: runs nothing.
struct Merged<'a>(&'a Identity, crate::backend::Precision);

impl<J: RowJob> RowEngine<J> for Merged<'_> {
    fn name(&self) -> &'static str {
        if self.0.backend == "gpu" {
            "gpu"
        } else {
            "cpu"
        }
    }
    fn adapter(&self) -> String {
        self.0.adapter.clone()
    }
    fn precision(&self) -> crate::backend::Precision {
        self.1
    }
    fn run(&self, job: &J, r: Range<u64>, _: RowSink) -> anyhow::Result<()> {
        anyhow::bail!(
            "merge: the shards hold no run of {} for replicas {r:?} (made by another smflow version?)",
            job.label()
        )
    }
}

pub fn merge(a: MergeArgs) -> Result<(), Failure> {
    let mut heads = a
        .dirs
        .iter()
        .map(|d| head(d).map(|h| (d.clone(), h)))
        .collect::<Result<Vec<_>, _>>()?;
    let labels: Vec<(String, &PathBuf)> = heads
        .iter()
        .map(|(d, h)| (h.0.shard.clone().unwrap_or_default(), d))
        .collect();
    let count = shard_set(&labels)?;
    // (`shard_set` has checked every label.)
    let index = |id: &Identity| -> u64 {
        let l = id.shard.as_deref().unwrap_or("1/1");
        crate::experiment::Shard::parse(l).map_or(0, |s| s.index)
    };
    heads.sort_by_key(|(_, h)| index(&h.0));
    let (d0, (id0, n0, _)) = &heads[0];
    for (d, (id, n, _)) in &heads[1..] {
        if id.config != id0.config {
            return Err(bad(
                d,
                format!(
                    "was run with a different config or seed than {}",
                    d0.display()
                ),
            ));
        }
        if (&id.backend, &id.precision) != (&id0.backend, &id0.precision) {
            return Err(bad(
                d,
                format!(
                    "ran on {} ({}), {} on {} ({}): merge shards of one backend and precision",
                    id.backend,
                    id.precision,
                    d0.display(),
                    id0.backend,
                    id0.precision
                ),
            ));
        }
        if n != n0 {
            return Err(bad(d, format!("{n} jobs, {} has {n0}", d0.display())));
        }
    }
    let mut adapters: Vec<&str> = heads.iter().map(|(_, h)| h.0.adapter.as_str()).collect();
    adapters.dedup();
    let id = Identity {
        adapter: adapters.join(" + "),
        ..id0.clone()
    };
    let precision =
        crate::config::check_precision(Some(&id.precision))?.expect("a precision was given");
    let wall: f64 = heads.iter().map(|(_, h)| h.2).sum();
    // The engine that reads the jobs: the envelope's dispatch (weak_order on the
    // two-layer model is the mean-field engine's, on a data set the trainer's).
    let experiment = crate::config::parse::experiment(&id.config)?;
    if experiment == crate::config::Experiment::Invariant {
        let shards = heads
            .into_iter()
            .map(|(d, h)| {
                let s = read::<crate::experiment::invariant::BatchCount>(&d, h)?;
                Ok((s.dir, s.jobs.into_iter().map(|j| j.result).collect()))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let cfg_name = id
            .config
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("invariant");
        let out = out_dir(&a, cfg_name)?;
        let report = super::invariant::merge(&out.path, &id, &shards, wall)?;
        if !a.quiet {
            super::invariant::print_summary(&report);
            println!("wrote {}", out.path.display());
        }
        return Ok(());
    }
    if experiment.family() == crate::config::Family::WidthSweep {
        let shards = heads
            .into_iter()
            .map(|(d, h)| read::<Vec<Vec<[u64; 4]>>>(&d, h))
            .collect::<Result<Vec<_>, _>>()?;
        return merge_sweep(&a, &shards, count, &id, precision, wall);
    }
    let shards = heads
        .into_iter()
        .map(|(d, h)| read::<Rows>(&d, h))
        .collect::<Result<Vec<_>, _>>()?;
    let done = (0..shards[0].jobs.len())
        .map(|k| join(k, &shards).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    let cfg = parse_echo(id.config.clone())?;
    let name = cfg.name.clone().unwrap_or_else(|| cfg.experiment.clone());
    let setup = check(cfg, &name)?;
    let out = out_dir(&a, &setup.name)?;
    let inner = Merged(&id, precision);
    // Every call is replayed, so the store never writes.
    let mut store = Store::new(&out.path, id.clone(), None).map_err(Failure::Runtime)?;
    let replay = Replay::new(&inner, done, &mut store);
    let result = execute(&setup, &replay, &|_| {})?;
    write(&out.path, &setup, &replay, &result, wall)?;
    summary(&a, &result, &out.path);
    Ok(())
}

/// `--out`, or runs/<name>-merged-<timestamp>, made ready (removed again if nothing is
/// written into it).
fn out_dir(a: &MergeArgs, name: &str) -> Result<OutDir, Failure> {
    let dir = match &a.out {
        Some(d) => d.clone(),
        None => super::default_out(name, "-merged", "")?,
    };
    prepare_out_dir(&dir, "--out", a.force).map_err(|e| Failure::BadInput(format!("merge: {e}")))
}

fn summary(a: &MergeArgs, result: &crate::experiment::training::Output, out: &std::path::Path) {
    if !a.quiet {
        for line in &result.summary {
            println!("{line}");
        }
        for w in &result.warnings {
            println!("warning: {w}");
        }
        println!("wrote {}", out.display());
    }
}

/// width_sweep: job k's observables of replica r from the shard that owns r.
fn merge_sweep(
    a: &MergeArgs,
    shards: &[ShardJobs<Vec<Vec<[u64; 4]>>>],
    count: u64,
    id: &Identity,
    precision: crate::backend::Precision,
    wall: f64,
) -> Result<(), Failure> {
    use crate::experiment::width_sweep::{self as ws, config as wsc};
    let cfg = wsc::parse(id.config.clone(), Default::default())?;
    let name = cfg.name.clone().unwrap_or_else(|| cfg.experiment.clone());
    let sweep = wsc::check(cfg, &name)?;
    let paths = sweep.cfg.paths;
    let jobs = ws::jobs(&sweep);
    let mut done = Vec::with_capacity(jobs);
    for k in 0..jobs {
        let first = shards[0]
            .jobs
            .get(k)
            .ok_or_else(|| bad(&shards[0].dir, format!("job {k} of {jobs} is missing")))?;
        let mut bits = first.result.clone();
        for (i, s) in shards.iter().enumerate() {
            let j = &s.jobs[k];
            let mine = crate::experiment::Shard {
                index: i as u64,
                count,
            }
            .slice(&(0..paths));
            let fits = j.what == first.what
                && j.result.len() == bits.len()
                && j.result.iter().all(|c| c.len() as u64 == paths);
            if !fits {
                return Err(bad(
                    &s.dir,
                    format!("job {k} is {}, shard 1's is {}", j.what, first.what),
                ));
            }
            for (c, rows) in j.result.iter().enumerate() {
                let r = mine.start as usize..mine.end as usize;
                bits[c][r.clone()].copy_from_slice(&rows[r]);
            }
        }
        done.push(Some(ws::from_bits(&bits)));
    }
    let out = out_dir(a, &sweep.name)?;
    let backend = Merged(id, precision);
    let result = ws::execute_from(&sweep, &backend, &|_| {}, &mut done, &mut |_, _, _| Ok(()))
        .map_err(Failure::Runtime)?;
    let info = super::outputs::RunInfo {
        experiment: sweep.experiment.name(),
        name: &sweep.name,
        precision: precision.name(),
        seed: sweep.cfg.seed,
        echo: &sweep.echo,
        backend: RowEngine::<crate::meanfield::MfJob>::name(&backend),
        adapter: id.adapter.clone(),
    };
    super::outputs::write_output(&out.path, &info, &result, wall).map_err(Failure::Runtime)?;
    summary(a, &result, &out.path);
    Ok(())
}
