//! `smflow run` for experiment `invariant` (`experiment::invariant` holds the runs and
//! their analysis): the output folder, resumable jobs, results.json, the bins CSV, the
//! SVG and the printed summary.

use super::run::RunArgs;
use super::{make_backend, Failure};
use crate::experiment::config::Checked;
use crate::experiment::invariant::{self, BatchCount, Distance, InvariantReport};
use crate::experiment::{RunMeta, Shard};
use anyhow::Context as _;
use std::path::Path;

/// `smflow run` for experiment invariant: runs, writes results.json, bins CSV, SVG; a
/// shard (`--shard i/N`) counts its part of every batch and saves it as its jobs, for
/// `merge` to add up ([`merge`]).
pub fn run_cli(a: &RunArgs, ck: Checked) -> Result<(), Failure> {
    let shard = super::run::job_shard(a)?;
    let out = super::run::out_dir(a, &ck.name, shard)?;
    let backend = make_backend(a.backend, ck.precision, a.quiet)?;
    let mut id = crate::output::job_progress::Identity::new(
        &ck.echo,
        backend.name(),
        backend.adapter(),
        backend.precision(),
    );
    id.shard = shard.map(|s| s.label());
    let n_jobs = invariant::jobs(&ck);
    let (loaded, mut store) = super::run::job_store::<BatchCount>(a, &out, id, Some(n_jobs))?;
    let mut done: Vec<_> = loaded.into_iter().map(|j| j.map(|d| d.result)).collect();
    done.resize(n_jobs, None);
    let part = shard.unwrap_or(Shard::WHOLE);
    let pb = super::progress_bar(invariant::total_work(&ck, part), a.quiet);
    let (counts, work, wall) = invariant::run_jobs(
        backend.as_ref(),
        &ck,
        part,
        &mut done,
        &|w| pb.inc(w as u64),
        &mut |i, w, c| store.save(i, &w, c),
    )?;
    pb.finish_and_clear();
    if let Some(sh) = shard {
        let what = format!(
            "{} [invariant] backend {} ({})",
            ck.name,
            backend.name(),
            backend.adapter()
        );
        return super::run::finish_job_shard(a, &mut store, sh, &what, &out, wall);
    }
    let meta = RunMeta {
        backend: backend.name().into(),
        adapter: backend.adapter(),
        precision: backend.precision().name().into(),
        shard: None,
    };
    let report = invariant::report(
        &ck,
        &meta,
        invariant::analyse_jobs(&ck, counts)?,
        work,
        wall,
    );
    write(&out.path, &report)?;
    store.finish();
    if !a.quiet {
        print_summary(&report);
        println!("wrote {}", out.path.display());
    }
    Ok(())
}

/// `smflow merge` of invariant shards: job k's counts of every shard added up (each
/// shard counted its part of batch k's paths, and every path depends only on its index),
/// then analysed and written as one unsharded run of `id`'s config (`wall`: the shards'
/// sum of wall times; the path-steps are the plan's).
pub fn merge(
    out: &Path,
    id: &crate::output::job_progress::Identity,
    shards: &[(std::path::PathBuf, Vec<BatchCount>)],
    wall: f64,
) -> Result<InvariantReport, Failure> {
    let cfg: crate::experiment::config::Config = serde_json::from_value(id.config.clone())
        .map_err(|e| Failure::BadInput(format!("merge: the shards' config: {e}")))?;
    let name = cfg.name.clone().unwrap_or_else(|| "invariant".into());
    let ck = crate::experiment::config::check(cfg, &name)?;
    let (first, rest) = shards.split_first().expect("at least one shard");
    let mut counts = first.1.clone();
    for (dir, jobs) in rest {
        let bad = |e: String| Failure::BadInput(format!("merge: {}: {e}", dir.display()));
        if jobs.len() != counts.len() {
            return Err(bad(format!(
                "{} jobs, the first shard {}",
                jobs.len(),
                counts.len()
            )));
        }
        for (k, (total, c)) in counts.iter_mut().zip(jobs).enumerate() {
            total.add(c).map_err(|e| bad(format!("job {k}: {e}")))?;
        }
    }
    let meta = RunMeta {
        backend: id.backend.clone(),
        adapter: id.adapter.clone(),
        precision: id.precision.clone(),
        shard: None,
    };
    let work = invariant::total_work(&ck, Shard::WHOLE);
    let runs = invariant::analyse_jobs(&ck, counts)?;
    let report = invariant::report(&ck, &meta, runs, work, wall);
    write(out, &report)?;
    Ok(report)
}

/// Writes invariant_bins.csv, invariant.svg and (last, atomically) results.json.
pub fn write(dir: &Path, r: &InvariantReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let results = dir.join("results.json");
    if results.exists() {
        std::fs::remove_file(&results)?;
    }
    let p = dir.join("invariant_bins.csv");
    std::fs::write(&p, bins_csv(r)).with_context(|| format!("writing {}", p.display()))?;
    let p = dir.join("invariant.svg");
    std::fs::write(
        &p,
        crate::experiment::invariant::hist_svg::invariant_svg_string(r)?,
    )
    .with_context(|| format!("writing {}", p.display()))?;
    let tmp = dir.join("results.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(r)?)?;
    std::fs::rename(&tmp, &results)?;
    Ok(())
}

pub fn bins_csv(r: &InvariantReport) -> String {
    use crate::output::csv::num;
    let mut s = String::from(
        "dynamics,eta,coordinate,lo,hi,empirical_density,empirical_stderr,analytic_density,gibbs_density,seed_exponent_density\n",
    );
    for run in &r.runs {
        for h in &run.histograms {
            let coord = serde_json::to_value(h.coordinate).unwrap();
            for j in 0..h.empirical.len() {
                s.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},{}\n",
                    run.dynamics,
                    num(run.eta),
                    coord.as_str().unwrap_or("?"),
                    num(h.edges[j]),
                    num(h.edges[j + 1]),
                    num(h.empirical[j]),
                    num(h.empirical_stderr[j]),
                    num(h.analytic[j]),
                    num(h.gibbs[j]),
                    num(h.seed_exponent[j]),
                ));
            }
        }
    }
    s
}

pub fn print_summary(r: &InvariantReport) {
    println!(
        "{} [invariant] toy_sgd {} σ={} backend {} ({}), {} paths, T={}, {:.1} s",
        r.name, r.loss, r.sigma, r.backend, r.precision, r.paths, r.horizon, r.wall_seconds
    );
    for run in &r.runs {
        println!(
            "{:<5} η={:<7} s=ησ/b={:<6} p=1+2/s={:.4}  (seed 002: {:.4})",
            run.dynamics, run.eta, run.s, run.exponent, run.seed_exponent
        );
        for h in &run.histograms {
            let f = |d: &Distance| {
                format!(
                    "{:.4} ± {:.4} (max|z| {:.1})",
                    d.tv, d.tv_stderr, d.max_abs_z
                )
            };
            println!(
                "   {:<6?} TV to f^-p {}  [noise floor {:.4}]; to Gibbs {}; to seed exponent {}",
                h.coordinate,
                f(&h.vs_analytic),
                h.vs_analytic.noise_floor,
                f(&h.vs_gibbs),
                f(&h.vs_seed_exponent)
            );
        }
        if run.flat_side[2].is_finite() {
            println!(
                "   mass on the flat side (x₁ < 0): {:.4} ± {:.4}; f^-p {:.4}; Gibbs {:.4}",
                run.flat_side[0], run.flat_side[1], run.flat_side[2], run.flat_side[3]
            );
        }
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
}
