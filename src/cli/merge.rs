//! `smflow merge DIR...`: joins shard outputs. Their statistics are exact sums, so the
//! merged results equal, bit for bit, what one unsharded run gives. (Shards of the
//! finite-data experiments and width_sweep: `merge_jobs`.)

use super::{run::print_summary, Failure};
use crate::experiment::config::check;
use crate::experiment::{analyze, plan, Collected, RunMeta};
use crate::output::files::{prepare_out_dir, read_partials, write_run, Partials};
use crate::stats::Moments;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Output directories of `smflow run --shard i/N` (all N shards).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged results [default: runs/<name>-merged-<timestamp>/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub quiet: bool,
    /// Replace the contents of a non-empty --out directory.
    #[arg(long)]
    pub force: bool,
}

pub fn merge(a: MergeArgs) -> Result<(), Failure> {
    // Before anything is read or written: --out must not be one of the inputs.
    if let Some(out) = &a.out {
        if let Ok(o) = out.canonicalize() {
            for d in &a.dirs {
                if d.canonicalize().is_ok_and(|c| c == o) {
                    return Err(Failure::BadInput(format!(
                        "merge: --out {} is the input directory {} (choose a new directory)",
                        out.display(),
                        d.display()
                    )));
                }
            }
        }
    }
    // Shards of the finite-data experiments hold their jobs (progress/), not partials.
    let d0 = &a.dirs[0];
    if !d0.join("partials.json").exists() && d0.join(crate::output::job_progress::DIR).is_dir() {
        return super::merge_jobs::merge(a);
    }
    // A shard stopped before its end holds progress.json and no partials.json.
    if let Some(d) = a
        .dirs
        .iter()
        .find(|d| !d.join("partials.json").exists() && d.join(super::progress::FILE).exists())
    {
        return Err(Failure::BadInput(format!(
            "merge: {} is an interrupted run (progress.json, no partials.json): finish it \
             with `smflow run CONFIG --resume {0} …` (the same config, shard and backend), \
             then merge",
            d.display()
        )));
    }
    let parts: Vec<Partials> = a
        .dirs
        .iter()
        .map(|d| read_partials(d))
        .collect::<anyhow::Result<_>>()
        .map_err(|e| Failure::BadInput(format!("merge: {e:#}")))?;
    let file = |d: &PathBuf| d.join("partials.json").display().to_string();
    // The digest first: nothing of a modified file (its config included) is used.
    for (p, d) in parts.iter().zip(&a.dirs) {
        p.check_digest()
            .map_err(|e| Failure::BadInput(format!("merge: {}: {e}", file(d))))?;
    }
    let first = &parts[0];
    for (p, d) in parts.iter().zip(&a.dirs) {
        if p.config != first.config {
            return Err(Failure::BadInput(format!(
                "merge: {} was run with a different config or seed than {}",
                d.display(),
                a.dirs[0].display()
            )));
        }
        // As the job-merging experiments (`merge_jobs`): a run's paths come from one
        // backend and precision, so the merged statistics are one run's.
        if (&p.backend, &p.precision) != (&first.backend, &first.precision) {
            return Err(Failure::BadInput(format!(
                "merge: {} ran on {} ({}), {} on {} ({}): merge shards of one backend and \
                 precision",
                d.display(),
                p.backend,
                p.precision,
                a.dirs[0].display(),
                first.backend,
                first.precision
            )));
        }
    }
    let labels: Vec<(String, &PathBuf)> = parts
        .iter()
        .zip(&a.dirs)
        .map(|(p, d)| (p.shard.clone().unwrap_or_else(|| "1/1".into()), d))
        .collect();
    shard_set(&labels)?;
    let cfg: crate::experiment::config::Config = serde_json::from_value(first.config.clone())
        .map_err(|e| Failure::BadInput(format!("merge: config in partials.json: {e}")))?;
    let checked = check(cfg, "merged")?;
    if checked.target.is_some() {
        return Err(Failure::BadInput(
            "merge: the shards' config has a target precision (field target), whose plan comes from a pilot; targeted runs are not sharded".into(),
        ));
    }
    let plan = plan(&checked);
    for (p, d) in parts.iter().zip(&a.dirs) {
        let shard = p
            .shard()
            .map_err(|e| Failure::BadInput(format!("merge: {}: {e}", file(d))))?;
        p.verify(&plan, shard)
            .map_err(|e| Failure::BadInput(format!("merge: {}: {e}", file(d))))?;
    }
    let mut total: Option<Collected> = None;
    for p in &parts {
        let moments = p
            .moments
            .iter()
            .map(|r| {
                r.iter()
                    .map(|b| {
                        b.iter()
                            .map(Moments::from_parts)
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::BadInput(format!("merge: partials.json: {e}")))?;
        let c = Collected {
            moments,
            path_steps: p.path_steps,
            wall_seconds: p.wall_seconds,
        };
        match &mut total {
            None => total = Some(c),
            Some(t) => t.merge(&c),
        }
    }
    let total = total.expect("at least one dir");
    let join = |f: fn(&Partials) -> &String| {
        let mut v: Vec<&String> = parts.iter().map(f).collect();
        v.dedup();
        v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" + ")
    };
    let meta = RunMeta {
        backend: join(|p| &p.backend),
        adapter: join(|p| &p.adapter),
        precision: join(|p| &p.precision),
        shard: None,
    };
    let report = analyze(&plan, &total, &meta);
    let partials = Partials {
        smflow_version: env!("CARGO_PKG_VERSION").into(),
        shard: None,
        backend: meta.backend.clone(),
        adapter: meta.adapter.clone(),
        precision: meta.precision.clone(),
        wall_seconds: total.wall_seconds,
        path_steps: total.path_steps,
        config: first.config.clone(),
        moments: total.to_parts(),
        digest: String::new(),
    };
    let dir = match a.out {
        Some(d) => d,
        None => super::default_out(&checked.name, "-merged", "")?,
    };
    let out = prepare_out_dir(&dir, "--out", a.force)
        .map_err(|e| Failure::BadInput(format!("merge: {e}")))?;
    write_run(&out.path, &report, &partials)?;
    if !a.quiet {
        print_summary(&report);
        println!("wrote {}", dir.display());
    }
    Ok(())
}

/// Checks that `labels` (each shard's `i/N` and its directory) are shards 1 … N of one
/// split, each once; returns N.
pub(super) fn shard_set(labels: &[(String, &PathBuf)]) -> Result<u64, Failure> {
    let mut seen = Vec::new();
    let mut count = None;
    for (label, d) in labels {
        let (i, n) = label
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
            .ok_or_else(|| {
                Failure::BadInput(format!(
                    "merge: bad shard label {label:?} in {}",
                    d.display()
                ))
            })?;
        if *count.get_or_insert(n) != n {
            return Err(Failure::BadInput(format!(
                "merge: {} is shard {label}, others are of {} shards",
                d.display(),
                count.unwrap()
            )));
        }
        if seen.contains(&i) {
            return Err(Failure::BadInput(format!(
                "merge: shard {label} given twice ({})",
                d.display()
            )));
        }
        seen.push(i);
    }
    let n = count.unwrap_or(1);
    let missing: Vec<String> = (1..=n)
        .filter(|i| !seen.contains(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::BadInput(format!(
            "merge: shards {} are missing",
            missing.join(", ")
        )));
    }
    Ok(n)
}
