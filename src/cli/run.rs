//! `smflow run CONFIG`: plan, execute (optionally one shard), analyse, write.

use super::{load_config, make_backend, precision_name, progress_bar, timestamp, Failure};
use crate::backend::BackendChoice;
use crate::experiment::{analyze, execute, plan, total_work, RunMeta, Shard};
use crate::output::files::{write_run, Partials};
use crate::output::report::Report;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Experiment config (JSON); see README "Config reference".
    pub config: PathBuf,
    /// auto: a GPU adapter if any, else the CPU reference.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// Output directory [default: runs/<name>-<UTC timestamp>/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the config's number of paths per (dynamics, η).
    #[arg(long)]
    pub paths: Option<u64>,
    /// Override the config's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run only shard i of N (1-based) of every run's replicas; combine with `smflow merge`.
    #[arg(long, value_name = "i/N")]
    pub shard: Option<String>,
    /// No progress bar, no summary.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: RunArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&a.config).map_err(|e| {
        Failure::BadInput(format!("config: cannot read {}: {e}", a.config.display()))
    })?;
    if let Some(kind) = experiment_of(&text) {
        if crate::experiment::training::config::EXPERIMENTS.contains(&kind.as_str()) {
            return super::train::run(a, &text);
        }
        if kind == "width_sweep" {
            return super::width_sweep::run(a, &text);
        }
    }
    let checked = load_config(&a.config, a.paths, a.seed)?;
    if checked.experiment == crate::config::ExperimentKind::Invariant {
        return crate::experiment::invariant::run_cli(&a, checked);
    }
    let shard = match &a.shard {
        Some(s) => Shard::parse(s).map_err(Failure::BadInput)?,
        None => Shard::WHOLE,
    };
    let backend = make_backend(a.backend, checked.precision, a.quiet)?;
    let plan = plan(&checked);
    let pb = progress_bar(total_work(&plan, shard), a.quiet);
    let collected = execute(&plan, backend.as_ref(), shard, &|w| pb.inc(w as u64))?;
    pb.finish_and_clear();
    let meta = RunMeta {
        backend: backend.name().into(),
        adapter: backend.adapter(),
        precision: precision_name(backend.precision()).into(),
        shard: (a.shard.is_some()).then(|| shard.label()),
    };
    let report = analyze(&plan, &collected, &meta);
    let partials = Partials {
        smflow_version: env!("CARGO_PKG_VERSION").into(),
        shard: meta.shard.clone(),
        backend: meta.backend.clone(),
        adapter: meta.adapter.clone(),
        precision: meta.precision.clone(),
        wall_seconds: collected.wall_seconds,
        path_steps: collected.path_steps,
        config: checked.echo.clone(),
        moments: collected.to_parts(),
    };
    let dir = a.out.unwrap_or_else(|| {
        let suffix = if a.shard.is_some() {
            format!("-shard{}of{}", shard.index + 1, shard.count)
        } else {
            String::new()
        };
        PathBuf::from("runs").join(format!("{}-{}{suffix}", checked.name, timestamp()))
    });
    write_run(&dir, &report, &partials)?;
    if !a.quiet {
        print_summary(&report);
        println!("wrote {}", dir.display());
    }
    Ok(())
}

/// The config's `experiment` field, if the text is a JSON object that has one.
pub fn experiment_of(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(v.get("experiment")?.as_str()?.to_string())
}

/// A short table of what the run found, at the horizon.
pub fn print_summary(r: &Report) {
    println!(
        "{} [{}] backend {} ({}), {} paths, {:.1} s, {:.3e} path-steps/s",
        r.name,
        r.experiment,
        r.backend,
        r.precision,
        r.paths,
        r.wall_seconds,
        r.path_steps_per_second
    );
    let horizon = r.points.iter().map(|p| p.t).fold(0.0, f64::max);
    if !r.orders.is_empty() {
        println!(
            "{:<12} {:<8} {:>8} {:>18} {:>4}",
            "pair", "obs", "order", "95% CI", "n"
        );
        for o in r.orders.iter().filter(|o| o.t == horizon) {
            println!(
                "{:<12} {:<8} {:>8.3} [{:>7.3}, {:>7.3}] {:>4}",
                format!("{}-{}", o.pair[0], o.pair[1]),
                o.observable,
                o.order,
                o.ci95[0],
                o.ci95[1],
                o.n_points
            );
        }
    }
    for c in r.correlations.iter().filter(|c| c.t == horizon) {
        println!(
            "{:<6} η={:<6} particles {:?}: corr {:.4} ± {:.4}, E|x_p − x_q|² = {:.5} ± {:.5}",
            c.dynamics,
            c.eta,
            c.particles,
            c.correlation,
            c.stderr,
            c.mean_dist2,
            c.mean_dist2_stderr
        );
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
}
