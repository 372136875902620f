//! `smflow run CONFIG`: plan, execute (optionally one shard), analyse, write.

use super::progress::{self, RunIdentity};
use super::{make_backend, progress_bar, Failure};
use crate::backend::BackendChoice;
use crate::config::{parse, ConfigError, Family};
use crate::experiment::{
    analyze, execute_from, plan, total_work, unit_replicas, Done, RunMeta, Shard,
};
use crate::output::files::{prepare_out_dir, resume_dir, write_run, OutDir, Partials};
use crate::output::job_progress;
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
    /// Override the config's number of paths per (dynamics, η): 1 … 4294967295.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::config::parse::cli_paths)]
    pub paths: Option<u64>,
    /// Override the config's seed: 0 … 18446744073709551615.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::config::parse::cli_seed)]
    pub seed: Option<u64>,
    /// Run only shard i of N (1-based) of every run's replicas; combine with `smflow merge`.
    #[arg(long, value_name = "i/N")]
    pub shard: Option<String>,
    /// No progress bar, no summary.
    #[arg(long)]
    pub quiet: bool,
    /// Replace the contents of a non-empty --out directory (else it is refused).
    #[arg(long)]
    pub force: bool,
    /// Continue the interrupted run whose output directory is DIR (every experiment):
    /// same config, overrides, shard and backend; the results equal an uninterrupted
    /// run's bit for bit.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
}

pub fn run(a: RunArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&a.config).map_err(|e| {
        Failure::BadInput(format!("config: cannot read {}: {e}", a.config.display()))
    })?;
    // Syntax first, then `experiment`, then that experiment's schema only.
    let value = crate::config::parse::json(&text)?;
    match crate::config::parse::experiment(&value)?.family() {
        Family::Training => return super::train::run(a, value),
        Family::WidthSweep => return super::width_sweep::run(a, value),
        Family::SmallD => {}
    }
    let overrides = crate::config::parse::Overrides {
        paths: a.paths,
        seed: a.seed,
    };
    let checked = crate::experiment::config::load(value, super::config_stem(&a.config), overrides)?;
    if checked.experiment == crate::experiment::config::ExperimentKind::Invariant {
        return super::invariant::run_cli(&a, checked);
    }
    let shard = match &a.shard {
        Some(s) => Shard::parse(s).map_err(Failure::BadInput)?,
        None => Shard::WHOLE,
    };
    let suffix = if a.shard.is_some() {
        shard.dir_suffix()
    } else {
        String::new()
    };
    let out = match &a.resume {
        Some(dir) => resume_out(&a, dir)?,
        None => prepare_out(&a, &checked.name, &suffix)?,
    };
    if checked.target.is_some() && a.shard.is_some() {
        return Err(Failure::BadInput(
            "--shard: not available with a target precision (config field target): the paths per η come from a pilot of the whole run".into(),
        ));
    }
    let plan = plan(&checked);
    let shard_label = a.shard.is_some().then(|| shard.label());
    // Config and shard are checked before a backend is opened, the backend after;
    // nothing in the directory changes before both pass. (A targeted run's plan needs
    // its pilot, so its progress is checked after the pilot.)
    let load = |plan: &crate::experiment::Plan| match &a.resume {
        Some(dir) => progress::load(dir, &checked.echo, &shard_label, plan, shard)
            .map(Some)
            .map_err(|e| resume_error(dir, e)),
        None => Ok(None),
    };
    let resumed = if checked.target.is_none() {
        load(&plan)?
    } else {
        None
    };
    let backend = preflight(
        make_backend(a.backend, checked.precision, a.quiet)?,
        &plan,
        a.backend,
        a.quiet,
    )?;
    let (plan, target, resumed) = match checked.target {
        None => (plan, None, resumed),
        Some(t) => {
            if !a.quiet {
                eprintln!(
                    "smflow: target stderr ≤ {}·|error|: pilot of {} paths per (dynamics, η) on an independent key",
                    t.rel_stderr, t.pilot_paths
                );
            }
            let (p, tr) =
                crate::experiment::target::targeted_plan(&checked, backend.as_ref(), &|_| {})?;
            if !a.quiet {
                eprintln!("smflow: paths per η: {:?}", tr.paths_run);
            }
            let resumed = load(&p)?;
            (p, Some(tr), resumed)
        }
    };
    let meta = RunMeta {
        backend: backend.name().into(),
        adapter: backend.adapter(),
        precision: backend.precision().name().into(),
        shard: shard_label,
    };
    let id = RunIdentity {
        shard: meta.shard.clone(),
        backend: meta.backend.clone(),
        adapter: meta.adapter.clone(),
        precision: meta.precision.clone(),
        config: checked.echo.clone(),
    };
    let done = match resumed {
        Some((file, done)) => {
            file.check_backend(&id.backend, &id.adapter, &id.precision)
                .map_err(|e| resume_error(&out.path, e))?;
            if !a.quiet {
                let (d, t) = done.units(&plan, shard);
                eprintln!(
                    "smflow: resuming {}: {d} of {t} work units done",
                    out.path.display()
                );
            }
            done
        }
        None => Done::none(&plan, unit_replicas(backend.as_ref())),
    };
    let mut saver = progress::Saver::new(&out.path, id, &plan, shard);
    let pb = progress_bar(total_work(&plan, shard), a.quiet);
    let collected = execute_from(
        &plan,
        backend.as_ref(),
        shard,
        &|w| pb.inc(w as u64),
        done,
        &mut |d| saver.after_unit(d),
    )?;
    pb.finish_and_clear();
    let mut report = analyze(&plan, &collected, &meta);
    if let Some(t) = target {
        report
            .warnings
            .extend(crate::experiment::target::warnings(&t, checked.paths));
        report.target = Some(t);
    }
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
        digest: String::new(),
    };
    write_run(&out.path, &report, &partials)?;
    progress::remove(&out.path)?;
    if !a.quiet {
        print_summary(&report);
        println!("wrote {}", out.path.display());
    }
    Ok(())
}

/// The run's output directory (`--out`, else `runs/<name>-<timestamp><suffix>/`), made
/// ready before any work: created, writable, and empty unless `--force` (which empties
/// it). Every experiment calls this right after its config is validated.
pub fn prepare_out(a: &RunArgs, name: &str, suffix: &str) -> Result<OutDir, Failure> {
    let dir = match &a.out {
        Some(d) => d.clone(),
        None => super::default_out(name, "", suffix)?,
    };
    prepare_out_dir(&dir, "--out", a.force).map_err(Failure::BadInput)
}

/// `--resume DIR`: DIR (which `--out`, if given, must name too), never emptied.
pub(super) fn resume_out(a: &RunArgs, dir: &std::path::Path) -> Result<OutDir, Failure> {
    if a.force {
        return Err(Failure::BadInput(format!(
            "--resume {}: cannot be combined with --force (which would empty it)",
            dir.display()
        )));
    }
    if let Some(out) = &a.out {
        let same = match (out.canonicalize(), dir.canonicalize()) {
            (Ok(o), Ok(d)) => o == d,
            _ => out == dir,
        };
        if !same {
            return Err(Failure::BadInput(format!(
                "--resume {} writes into that directory; --out {} names another (drop --out)",
                dir.display(),
                out.display()
            )));
        }
    }
    resume_dir(dir, "--resume").map_err(Failure::BadInput)
}

pub(super) fn resume_error(dir: &std::path::Path, e: String) -> Failure {
    Failure::BadInput(format!("--resume {}: {e}", dir.display()))
}

/// The one refusal of `--shard` by an experiment that runs whole (gd_vs_gf, whose runs
/// are deterministic: one replica each, nothing to split).
pub fn refuse_shard(a: &RunArgs, kind: crate::config::Experiment) -> Result<(), Failure> {
    use crate::config::Experiment::*;
    let shards = matches!(
        kind,
        WeakOrder
            | NPoint
            | Invariant
            | LeastSquaresRisk
            | ImplicitBiasSweep
            | WidthSweep
            | DataWeakOrder
            | MeanFieldWeakOrder
    );
    match a.shard {
        Some(_) if !shards => Err(Failure::BadInput(format!(
            "--shard: not available for experiment {:?} (run it whole: its runs are \
             deterministic; weak_order, n_point, invariant, least_squares_risk, implicit_bias_sweep \
             and width_sweep shard)",
            kind.name()
        ))),
        _ => Ok(()),
    }
}

/// Reads and checks the config of an experiment that resumes by jobs (the finite-data
/// experiments and width_sweep; gd_vs_gf, whose runs are deterministic, does not shard)
/// with its family's `parse` and `check`:
/// syntax and schema first, then the shard refusal, then validation, every error
/// blamed on the command-line option that set the field where one did.
pub fn check_whole<C, S>(
    a: &RunArgs,
    value: serde_json::Value,
    parse: impl FnOnce(serde_json::Value, parse::Overrides) -> Result<C, ConfigError>,
    check: impl FnOnce(C, &str) -> Result<S, ConfigError>,
) -> Result<(S, parse::Overrides), Failure> {
    let overrides = parse::Overrides {
        paths: a.paths,
        seed: a.seed,
    };
    let kind = parse::experiment(&value)?;
    let cfg = parse(value, overrides)?;
    refuse_shard(a, kind)?;
    let checked = check(cfg, super::config_stem(&a.config)).map_err(|e| overrides.blame(e))?;
    Ok((checked, overrides))
}

/// The output directory of a run that resumes by jobs: `--resume DIR`, else `--out`
/// (or the default, `-shardIofN` appended for a shard) made ready as `prepare_out` does.
pub fn out_dir(a: &RunArgs, name: &str, shard: Option<Shard>) -> Result<OutDir, Failure> {
    match (&a.resume, shard) {
        (Some(d), _) => resume_out(a, d),
        (None, Some(sh)) => prepare_out(a, name, &sh.dir_suffix()),
        (None, None) => prepare_out(a, name, ""),
    }
}

/// `--shard i/N` of a run that resumes by jobs (`None`: the whole run).
pub fn job_shard(a: &RunArgs) -> Result<Option<Shard>, Failure> {
    a.shard
        .as_deref()
        .map(Shard::parse)
        .transpose()
        .map_err(Failure::BadInput)
}

/// Ends a shard of a run that resumes by jobs: its jobs (progress/) are its output,
/// marked finished for `merge`; says so unless quiet.
pub fn finish_job_shard(
    a: &RunArgs,
    store: &mut job_progress::Store,
    shard: Shard,
    what: &str,
    dir: &OutDir,
    wall: f64,
) -> Result<(), Failure> {
    store.mark_shard_done(wall).map_err(Failure::Runtime)?;
    if !a.quiet {
        println!(
            "{what} shard {}, {wall:.1} s: wrote {} (combine all {} shards with smflow merge)",
            shard.label(),
            dir.path.display(),
            shard.count
        );
    }
    Ok(())
}

/// The job store of a run (`output::job_progress`) and, with `--resume`, the jobs the
/// interrupted run finished (checked against `id` and `jobs`), saying how many.
pub fn job_store<T: serde::de::DeserializeOwned>(
    a: &RunArgs,
    out: &OutDir,
    id: job_progress::Identity,
    jobs: Option<usize>,
) -> Result<(Vec<Option<job_progress::Done<T>>>, job_progress::Store), Failure> {
    let done = match &a.resume {
        Some(d) => job_progress::load::<T>(d, &id, jobs).map_err(|e| resume_error(d, e))?,
        None => Vec::new(),
    };
    if a.resume.is_some() && !a.quiet {
        let n = done.iter().filter(|j| j.is_some()).count();
        let of = jobs.map_or(String::new(), |m| format!(" of {m}"));
        eprintln!("smflow: resuming {}: {n}{of} jobs done", out.path.display());
    }
    let store = job_progress::Store::new(&out.path, id, jobs).map_err(Failure::Runtime)?;
    Ok((done, store))
}

/// Checks that the backend can run every run of the plan before any work: with
/// `--backend auto` a GPU that cannot (a software adapter's loop limit) gives way to
/// the CPU, saying why; with `--backend gpu` it is an error naming `--backend cpu`.
fn preflight(
    backend: Box<dyn crate::backend::Backend>,
    plan: &crate::experiment::Plan,
    choice: crate::backend::BackendChoice,
    quiet: bool,
) -> Result<Box<dyn crate::backend::Backend>, Failure> {
    use crate::backend::Backend as _;
    let Err(e) = plan
        .runs
        .iter()
        .try_for_each(|r| backend.preflight(&plan.checked.model, &r.spec))
    else {
        return Ok(backend);
    };
    if choice != crate::backend::BackendChoice::Auto {
        return Err(Failure::BadInput(format!("backend: {e:#}")));
    }
    let precision = plan
        .checked
        .precision
        .unwrap_or(crate::backend::Precision::F64);
    let cpu = crate::backend::cpu::CpuBackend::with_precision(precision);
    if !quiet {
        eprintln!(
            "smflow: backend auto → cpu — {} (the GPU adapter cannot run this plan: {e:#})",
            cpu.adapter()
        );
    }
    Ok(Box::new(cpu))
}

/// The config's `experiment` field, if the text is a JSON object that names a known one.
pub fn experiment_of(text: &str) -> Option<crate::config::Experiment> {
    let v = crate::config::parse::json(text).ok()?;
    crate::config::parse::experiment(&v).ok()
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
    let errors: Vec<_> = r.weak_errors.iter().filter(|e| e.t == horizon).collect();
    if !errors.is_empty() {
        println!(
            "{:<12} {:<8} {:>10} {:>11} {:>10} {:<11} {:>10}",
            "pair", "obs", "eta", "weak error", "stderr", "estimator", "var. red."
        );
        for e in errors {
            println!(
                "{:<12} {:<8} {:>10.4e} {:>11.4e} {:>10.2e} {:<11} {:>10}",
                format!("{}-{}", e.pair[0], e.pair[1]),
                e.observable,
                e.eta,
                e.error,
                e.stderr,
                e.estimator,
                e.variance_reduction
                    .map_or("-".into(), |v| format!("{v:.3e}"))
            );
        }
    }
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
            "{:<6} η={:<6} particles {:?}: corr {:.4} ± {:.4}, E|x_p − x_q|² = {:.5e} ± {:.2e}",
            c.dynamics,
            c.eta,
            c.particles,
            c.correlation,
            c.stderr,
            c.mean_dist2,
            c.mean_dist2_stderr
        );
    }
    for e in r.ensembles.iter().filter(|e| e.t == horizon) {
        println!(
            "{:<6} η={:<6} n·Var of the mean of {} particles' x[0]: {:.5e} ± {:.2e}",
            e.dynamics, e.eta, e.particles, e.n_var, e.n_var_stderr
        );
    }
    for e in r.paired.iter().filter(|e| e.t == horizon) {
        let pair = e
            .particles
            .map_or(String::new(), |pq| format!(" particles {pq:?}"));
        println!(
            "{} − {} η={:<6} {}{pair}: {:.3e} ± {:.1e} paired (± {:.1e} independent)",
            e.reference,
            e.dynamics,
            e.eta,
            e.quantity,
            e.difference,
            e.stderr,
            e.independent_stderr
        );
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
}
