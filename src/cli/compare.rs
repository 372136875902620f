//! `smflow compare CONFIG`: the same replicas on the cpu (f64) and gpu backends.
//! Reports the largest path deviation on a sample of replicas, and each statistic's
//! difference in units of its standard error. Since both backends simulate the same
//! paths (same Philox draws), differences are float rounding only: far below one
//! standard error. Exits with 1 when a check fails.

use super::{load_config, Failure};
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::backend::Backend;
use crate::experiment::{analyze, execute, plan, RunMeta, Shard};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    pub config: PathBuf,
    /// Override the config's paths (statistics comparison): 1 … 4294967295.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::config::parse::cli_paths)]
    pub paths: Option<u64>,
    /// Override the config's seed: 0 … 18446744073709551615.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::config::parse::cli_seed)]
    pub seed: Option<u64>,
    /// Replicas compared path by path (final states) per run, at least 1 (a
    /// finite-data experiment's random calls run at least 2).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: u64,
    /// Largest allowed path deviation, relative: |gpu − cpu| ≤ tol · (1 + |cpu|).
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true,
          value_parser = crate::config::parse::cli_tolerance)]
    pub path_tol: f64,
    /// Largest allowed |mean_gpu − mean_cpu| in standard errors.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true,
          value_parser = crate::config::parse::cli_tolerance)]
    pub se_tol: f64,
    /// Write compare.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print nothing but errors: compare.json (with --out) and the exit status carry the
    /// verdict.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Serialize)]
struct RunComparison {
    dynamics: String,
    eta: f64,
    sampled_paths: u64,
    /// Sampled paths not diverged on both backends: the ones the deviations measure.
    compared_paths: u64,
    max_abs_deviation: f64,
    max_rel_deviation: f64,
}

#[derive(Serialize)]
struct StatComparison {
    dynamics: String,
    eta: f64,
    t: f64,
    observable: String,
    cpu: f64,
    gpu: f64,
    stderr: f64,
    diff_in_stderr: f64,
    /// |gpu − cpu| ≤ ROUNDING · (1 + |cpu|): equal up to the float rounding of the GPU's
    /// arithmetic, whatever the standard error.
    within_rounding: bool,
}

/// Relative difference of a statistic that float rounding alone explains: the GPU's f32
/// arithmetic over a run's steps moves every path, and so every mean, by ≲ 1e-6
/// relative (f64 runs agree far closer; one bound serves both). A statistic whose standard error is smaller
/// still — a deterministic run, or a nearly deterministic observable such as SGD's
/// dist2 on the quadratic, where the data cancel from x₁ − x₂ (se 2e-9 at 64 paths) —
/// is compared against this instead of its standard error.
const ROUNDING: f64 = 1e-5;

#[derive(Serialize)]
struct Comparison {
    adapter: String,
    precision: String,
    paths: Vec<RunComparison>,
    statistics: Vec<StatComparison>,
    max_path_rel_deviation: f64,
    max_diff_in_stderr: f64,
    /// The largest difference in standard errors among the statistics beyond float
    /// rounding (`within_rounding` false): what the se tolerance is held to.
    max_diff_in_stderr_beyond_rounding: f64,
    rounding_floor_relative: f64,
    /// `invariant` only: each histogram on both backends (`cli::compare_invariant`),
    /// held to the se tolerance too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    histograms: Vec<super::compare_invariant::HistogramComparison>,
    passed: bool,
}

pub fn compare(a: CompareArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&a.config).map_err(|e| {
        Failure::BadInput(format!("config: cannot read {}: {e}", a.config.display()))
    })?;
    // By family: weak_order with a data set is the finite-data trainer's.
    match super::run::experiment_of(&text).map(|e| e.family()) {
        Some(crate::config::Family::Training) => return super::compare_train::compare(a, &text),
        Some(crate::config::Family::WidthSweep) => return super::compare_mf::compare(a, &text),
        _ => {}
    }
    let checked = load_config(&a.config, a.paths, a.seed)?;
    let gpu = GpuBackend::new(checked.precision.unwrap_or(crate::backend::Precision::F32))
        .map_err(|e| Failure::BadInput(format!("backend: {e:#}")))?;
    let cpu = CpuBackend::default();
    announce(&a, &cpu.adapter(), &gpu.adapter());
    let plan = plan(&checked);
    let mut paths = Vec::new();
    for run in &plan.runs {
        let n = a.sample.min(run.paths).max(1);
        let c = cpu.final_states(&checked.model, &run.spec, 0..n)?;
        let g = gpu.final_states(&checked.model, &run.spec, 0..n)?;
        let (mut abs, mut rel, mut compared) = (0.0f64, 0.0f64, 0u64);
        // A replica diverged on both backends (a coordinate beyond the bound, or not
        // finite: f32 may overflow where f64 is still finite) is not a deviation.
        let row = c.len() / n as usize;
        let diverged = |v: &[f64]| v.iter().any(|x| !(x.abs() <= run.spec.bound));
        for (xs, ys) in c.chunks(row.max(1)).zip(g.chunks(row.max(1))) {
            if diverged(xs) && diverged(ys) {
                continue;
            }
            compared += 1;
            for (x, y) in xs.iter().zip(ys) {
                let d = (x - y).abs();
                abs = abs.max(if d.is_nan() { f64::INFINITY } else { d });
                rel = rel.max(if d.is_nan() {
                    f64::INFINITY
                } else {
                    d / (1.0 + x.abs())
                });
            }
        }
        paths.push(RunComparison {
            dynamics: run.spec.dynamics.name().into(),
            eta: run.spec.eta,
            sampled_paths: n,
            compared_paths: compared,
            max_abs_deviation: abs,
            max_rel_deviation: rel,
        });
    }
    let meta = |b: &dyn Backend| RunMeta {
        backend: b.name().into(),
        adapter: b.adapter(),
        precision: b.precision().name().into(),
        shard: None,
    };
    let rc = analyze(
        &plan,
        &execute(&plan, &cpu, Shard::WHOLE, &|_| {})?,
        &meta(&cpu),
    );
    let rg = analyze(
        &plan,
        &execute(&plan, &gpu, Shard::WHOLE, &|_| {})?,
        &meta(&gpu),
    );
    // Every point, then every weak error (a coupled one is the mean of the per-replica
    // differences D, so this compares the coupled pairs' statistics too), then every
    // paired difference.
    let errors = rc.weak_errors.iter().zip(&rg.weak_errors).map(|(c, g)| {
        let pair = format!("{}-{}", c.pair[0], c.pair[1]);
        let what = format!("{} weak error ({})", c.observable, c.estimator);
        (
            pair,
            c.eta,
            c.t,
            what,
            c.signed,
            g.signed,
            c.stderr.max(g.stderr),
        )
    });
    let points = rc.points.iter().zip(&rg.points).map(|(c, g)| {
        let se = c.stderr.max(g.stderr);
        (
            c.dynamics.clone(),
            c.eta,
            c.t,
            c.observable.clone(),
            c.mean,
            g.mean,
            se,
        )
    });
    // Both reports come from one plan: the same rows in the same order.
    let rows =
        |r: &crate::output::report::Report| [r.points.len(), r.weak_errors.len(), r.paired.len()];
    if rows(&rc) != rows(&rg) {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "internal: the cpu and gpu reports have {:?} and {:?} (points, weak errors, paired) rows",
            rows(&rc),
            rows(&rg)
        )));
    }
    // n_point's paired SGD − SMF differences (the coupled partner's statistics).
    let paired = rc.paired.iter().zip(&rg.paired).map(|(c, g)| {
        let pair = c
            .particles
            .map_or(String::new(), |[p, q]| format!(" [{p}, {q}]"));
        (
            format!("{}-{}", c.reference, c.dynamics),
            c.eta,
            c.t,
            format!("{}{pair} (paired)", c.quantity),
            c.difference,
            g.difference,
            c.stderr.max(g.stderr),
        )
    });
    let mut stats = Vec::new();
    for (dynamics, eta, t, observable, cpu_mean, gpu_mean, se) in points.chain(errors).chain(paired)
    {
        let diff = gpu_mean - cpu_mean;
        // Null on both sides (an undefined estimate, say why in the warnings) is
        // agreement; null on one side only is not.
        let both_null = cpu_mean.is_nan() && gpu_mean.is_nan();
        let within_rounding = both_null || diff.abs() <= ROUNDING * (1.0 + cpu_mean.abs());
        // Deterministic runs (one path, stderr 0): only rounding can pass them.
        let in_se = if within_rounding && (se.is_nan() || both_null) {
            0.0
        } else if diff.is_nan() {
            f64::INFINITY
        } else if se > 0.0 {
            diff.abs() / se
        } else if within_rounding {
            0.0
        } else {
            f64::INFINITY
        };
        stats.push(StatComparison {
            dynamics,
            eta,
            t,
            observable,
            cpu: cpu_mean,
            gpu: gpu_mean,
            stderr: se,
            diff_in_stderr: in_se,
            within_rounding,
        });
    }
    let max_rel = paths
        .iter()
        .map(|p| p.max_rel_deviation)
        .fold(0.0, f64::max);
    let max_se = stats.iter().map(|s| s.diff_in_stderr).fold(0.0, f64::max);
    let beyond: Vec<f64> = stats
        .iter()
        .filter(|s| !s.within_rounding)
        .map(|s| s.diff_in_stderr)
        .collect();
    let max_beyond = beyond.iter().copied().fold(0.0, f64::max);
    let histograms = if checked.experiment == crate::experiment::config::ExperimentKind::Invariant {
        super::compare_invariant::compare(&checked, &cpu, &gpu, a.quiet)?
    } else {
        Vec::new()
    };
    let max_hist = histograms.iter().map(|h| h.worst()).fold(0.0, f64::max);
    // Paths diverged on both backends are not deviations; but a compare that could
    // compare no path at all has shown nothing, and does not pass.
    let compared: u64 = paths.iter().map(|p| p.compared_paths).sum();
    let passed =
        compared > 0 && max_rel <= a.path_tol && max_beyond <= a.se_tol && max_hist <= a.se_tol;
    if !a.quiet {
        println!(
            "{:<6} {:>8} {:>8} {:>14} {:>14}",
            "dyn", "eta", "paths", "max |Δx|", "max rel Δx"
        );
        for p in &paths {
            println!(
                "{:<6} {:>8} {:>8} {:>14.3e} {:>14.3e}",
                p.dynamics, p.eta, p.sampled_paths, p.max_abs_deviation, p.max_rel_deviation
            );
        }
        println!(
            "statistics: {} compared, {} equal to float rounding ({ROUNDING:.0e} relative); the other {}: \
             max |mean_gpu − mean_cpu| = {:.3} standard errors (tolerance {})",
            stats.len(),
            stats.len() - beyond.len(),
            beyond.len(),
            max_beyond,
            a.se_tol
        );
        println!(
            "paths: {compared} compared (not diverged on both backends), max relative deviation \
             {:.3e} (tolerance {:.1e})",
            max_rel, a.path_tol
        );
        if !histograms.is_empty() {
            println!(
                "histograms: {} compared, max difference {max_hist:.3} standard errors (tolerance {})",
                histograms.len(),
                a.se_tol
            );
        }
    }
    let cmp = Comparison {
        adapter: gpu.adapter(),
        precision: gpu.precision().name().into(),
        paths,
        statistics: stats,
        max_path_rel_deviation: max_rel,
        max_diff_in_stderr: max_se,
        max_diff_in_stderr_beyond_rounding: max_beyond,
        rounding_floor_relative: ROUNDING,
        histograms,
        passed,
    };
    let failure = if compared == 0 {
        "FAIL: no sampled path could be compared: every one diverged on both backends \
         (lower the step sizes, or raise diverge_bound)"
    } else {
        "FAIL: gpu and cpu disagree beyond tolerance"
    };
    conclude(a.out.as_deref(), &cmp, passed, failure)?;
    if !a.quiet {
        println!("PASS: gpu agrees with the cpu reference");
    }
    Ok(())
}

/// The first line of every `compare` (unless quiet): the two backends, on stderr.
pub fn announce(a: &CompareArgs, cpu: &str, gpu: &str) {
    if !a.quiet {
        eprintln!("smflow compare: cpu ({cpu}) vs gpu ({gpu})");
    }
}

/// The end of every `compare`: writes `compare.json` under `out` when given (atomically,
/// so a file there is complete), then turns the verdict into the exit status.
pub fn conclude(
    out: Option<&std::path::Path>,
    doc: &impl Serialize,
    passed: bool,
    failure: &str,
) -> Result<(), Failure> {
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| Failure::Runtime(e.into()))?;
        let bytes = serde_json::to_vec_pretty(doc).map_err(|e| Failure::Runtime(e.into()))?;
        crate::output::files::write_atomic(&dir.join("compare.json"), &bytes)?;
    }
    if passed {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!("{failure}")))
    }
}

/// A compared run's label suffix for a coupled coarse solver level (`coarsen` > 1:
/// every `coarsen` fine substeps as one), empty for the fine level.
pub fn level_note(coarsen: u32, substeps: u32) -> String {
    if coarsen > 1 {
        format!(" (coarse level, substeps {substeps})")
    } else {
        String::new()
    }
}

/// The runs of a path-by-path compare (mean-field, finite data): each run compared or
/// skipped (a job the adapter refuses is reported, not compared), the largest
/// deviation, and the rows diverged on one backend only (near the edge of stability
/// rounding can decide whether a path blows up: reported, not hidden in the maximum).

/// Rows of one run on both backends: the largest relative deviation over rows finite on
/// both, the rows diverged on one backend only, and the rows compared.
pub struct Deviation {
    pub worst: f64,
    pub split: usize,
    pub compared: usize,
}

pub struct PathTally {
    runs: Vec<serde_json::Value>,
    /// Runs compared (not skipped): a compare that compared none does not pass.
    compared: usize,
    /// Rows compared (not diverged on both backends): nor does one that compared none.
    rows: usize,
    worst: f64,
    split: usize,
    /// The JSON key of the split count, per run and in the summary.
    split_key: &'static str,
    /// Print nothing (`--quiet`).
    quiet: bool,
}

impl PathTally {
    pub fn new(split_key: &'static str, quiet: bool) -> Self {
        Self {
            runs: Vec::new(),
            compared: 0,
            rows: 0,
            worst: 0.0,
            split: 0,
            split_key,
            quiet,
        }
    }

    /// A run the GPU refused: `label` prints it, `run` (a JSON object) names it.
    pub fn skipped(&mut self, label: &str, mut run: serde_json::Value, e: &anyhow::Error) {
        if !self.quiet {
            println!("{label} skipped: {e:#}");
        }
        run["skipped"] = format!("{e:#}").into();
        self.runs.push(run);
    }

    /// A run compared over `replicas`: its largest deviation and split count.
    pub fn compared(
        &mut self,
        label: &str,
        mut run: serde_json::Value,
        replicas: u64,
        dev: Deviation,
    ) {
        let Deviation {
            worst: dev,
            split,
            compared,
        } = dev;
        self.compared += 1;
        self.rows += compared;
        self.worst = self.worst.max(dev);
        self.split += split;
        let note = if split > 0 {
            format!(", {split} {} only", self.split_key.replace('_', " "))
        } else {
            String::new()
        };
        if !self.quiet {
            println!("{label} {replicas:>5} replicas: max relative deviation {dev:.2e}{note}");
        }
        run["replicas"] = replicas.into();
        run["max_rel_deviation"] = dev.into();
        run[self.split_key] = split.into();
        self.runs.push(run);
    }

    /// The verdict line, compare.json (with the adapter and precision) and the exit status.
    pub fn conclude(
        self,
        adapter: String,
        precision: &str,
        a: &CompareArgs,
        failure: &str,
    ) -> Result<(), Failure> {
        let passed = self.compared > 0 && self.rows > 0 && self.worst <= a.path_tol;
        let mut doc = serde_json::json!({"adapter": adapter, "precision": precision,
            "runs": self.runs, "max_rel_deviation": self.worst, "path_tol": a.path_tol,
            "passed": passed});
        doc[self.split_key] = self.split.into();
        if !self.quiet {
            if self.compared == 0 {
                println!("no run compared (the adapter refused every one): FAIL");
            } else if self.rows == 0 {
                println!("no row compared (every one diverged on both backends): FAIL");
            } else {
                println!(
                    "max relative deviation {:.2e} (tolerance {:.0e}): {}",
                    self.worst,
                    a.path_tol,
                    if passed { "PASS" } else { "FAIL" }
                );
            }
        }
        let failure = if self.compared == 0 {
            "no run compared: the adapter refused every one"
        } else if self.rows == 0 {
            "no row compared: every one diverged on both backends (lower the step sizes, or \
             raise diverge_bound)"
        } else {
            failure
        };
        conclude(a.out.as_deref(), &doc, passed, failure)
    }
}
