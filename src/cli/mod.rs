//! The `smflow` command line: run, compare, bench, devices, merge.

pub mod bench;
pub mod bench_config;
pub mod compare;
pub mod compare_invariant;
pub mod compare_mf;
pub mod compare_train;
pub mod invariant;
pub mod merge;
pub mod merge_jobs;
pub mod outputs;
pub mod progress;
pub mod replay;
pub mod run;
pub mod train;
pub mod width_sweep;

use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::backend::{Backend, BackendChoice, Precision};
use crate::config::ConfigError;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "smflow", version, about = "Monte Carlo weak-order studies of SGD and its continuous models (GF, SME, SMF) on the GPU, with a CPU reference backend", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the experiment of a JSON config and write results.json, CSV and SVG.
    Run(run::RunArgs),
    /// Run the same paths on the cpu and gpu backends and report their differences.
    Compare(compare::CompareArgs),
    /// Measure path-steps per second of each backend on standard jobs.
    Bench(bench::BenchArgs),
    /// List the GPU adapters wgpu can see.
    Devices,
    /// Combine the output directories of `run --shard i/N` into one run's results.
    Merge(merge::MergeArgs),
}

/// How the program failed: bad input exits with 2, anything else with 1.
#[derive(Debug)]
pub enum Failure {
    BadInput(String),
    Runtime(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::BadInput(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

pub fn main_with(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Compare(a) => compare::compare(a),
        Command::Bench(a) => bench::bench(a),
        Command::Devices => {
            let list = crate::backend::gpu::list_adapters();
            if list.is_empty() {
                println!("no wgpu adapter found (install a Vulkan driver, e.g. mesa-vulkan-drivers for llvmpipe); the cpu backend is always available");
            }
            for a in list {
                println!("{a}");
            }
            // The adapter `--backend gpu` opens, and its measured loop cut-off.
            if let Ok(g) = GpuBackend::new(Precision::F32) {
                let limit = match g.loop_limit() {
                    Some(l) => format!("cuts shader loops off after {l} iterations per invocation (smflow splits its dispatches below that)"),
                    None => "no shader loop limit".into(),
                };
                println!("default gpu: {}; {limit}", g.adapter());
            }
            println!("cpu: {}", CpuBackend::default().adapter());
            Ok(())
        }
        Command::Merge(a) => merge::merge(a),
    }
}

/// Reads and validates a config file, applying command-line overrides first.
pub fn load_config(
    path: &PathBuf,
    paths: Option<u64>,
    seed: Option<u64>,
) -> Result<crate::experiment::config::Checked, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::BadInput(format!("config: cannot read {}: {e}", path.display())))?;
    let value = crate::config::parse::json(&text)?;
    let overrides = crate::config::parse::Overrides { paths, seed };
    Ok(crate::experiment::config::load(
        value,
        config_stem(path),
        overrides,
    )?)
}

/// The default run name: the config file's stem.
pub fn config_stem(path: &std::path::Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("run")
}

/// Picks the backend: `auto` takes a hardware GPU adapter when there is one, else the
/// CPU (`choose_backend`). `precision` unset: the GPU in f32, the CPU in f64 (the
/// reference).
pub fn make_backend(
    choice: BackendChoice,
    precision: Option<Precision>,
    quiet: bool,
) -> Result<Box<dyn Backend>, Failure> {
    choose_backend(
        choice,
        quiet,
        || {
            let b = GpuBackend::new(precision.unwrap_or(Precision::F32))?;
            let (a, soft) = (b.adapter(), b.is_software());
            Ok((Box::new(b) as Box<dyn Backend>, a, soft))
        },
        || {
            let b = CpuBackend::with_precision(precision.unwrap_or(Precision::F64));
            let a = b.adapter();
            (Box::new(b) as Box<dyn Backend>, a)
        },
    )
}

/// `--backend` for any kind of backend. `gpu` returns (backend, adapter, is software).
/// `auto` takes a hardware GPU, else the CPU, and says which: it passes over a software
/// rasteriser (llvmpipe), which the CPU lane groups match or beat on every engine's
/// jobs (benches/README.md, "auto"), so that the choice never depends on a timing and a
/// machine without a GPU always runs the CPU (the f64 reference unless the config asks
/// for f32). `--backend gpu` still takes llvmpipe.
pub fn choose_backend<B: ?Sized>(
    choice: BackendChoice,
    quiet: bool,
    gpu: impl FnOnce() -> anyhow::Result<(Box<B>, String, bool)>,
    cpu: impl FnOnce() -> (Box<B>, String),
) -> Result<Box<B>, Failure> {
    let say = |s: String| {
        if !quiet {
            eprintln!("smflow: {s}");
        }
    };
    match choice {
        BackendChoice::Cpu => {
            let (b, a) = cpu();
            say(format!("backend cpu — {a}"));
            Ok(b)
        }
        BackendChoice::Gpu => {
            let (b, a, _) = gpu().map_err(|e| Failure::BadInput(format!("backend: {e:#}")))?;
            say(format!("backend gpu — {a}"));
            Ok(b)
        }
        BackendChoice::Auto => match gpu() {
            Ok((_, a, true)) => {
                let (b, c) = cpu();
                say(format!(
                    "backend auto → cpu — {c} (the only GPU adapter, {a}, is a software rasteriser, slower than the CPU lane groups at the same precision; --backend gpu forces it)"
                ));
                Ok(b)
            }
            Ok((b, a, _)) => {
                say(format!("backend auto → gpu — {a}"));
                Ok(b)
            }
            Err(e) => {
                let (b, c) = cpu();
                say(format!(
                    "backend auto → cpu — {c} (no usable GPU adapter: {e:#})"
                ));
                Ok(b)
            }
        },
    }
}

/// What an embedding host (the Python package) sees of a run's progress: after every
/// increment, (work done, total work) in path-steps, in increasing order, on whichever
/// thread finished the work (calls are serialised). It may stop the run by unwinding
/// (`std::panic::resume_unwind`), which the host catches at its own boundary: the run
/// then ends where it was, before any results.json is written.
pub type Observer = std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>;

thread_local! {
    static OBSERVER: std::cell::RefCell<Option<Observer>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a command) with `observer` seeing the progress of the runs it starts on
/// this thread.
pub fn with_progress_observer<R>(observer: Observer, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            OBSERVER.with(|o| o.borrow_mut().take());
        }
    }
    OBSERVER.with(|o| *o.borrow_mut() = Some(observer));
    let _reset = Reset;
    f()
}

/// A run's progress in path-steps: the terminal bar (hidden with --quiet or when stderr
/// is not a terminal) and the [`Observer`] of the thread that started the run, if a
/// host installed one.
pub struct Progress {
    bar: indicatif::ProgressBar,
    observer: Option<Observer>,
    /// Work done; its lock also serialises the observer's calls.
    done: std::sync::Mutex<u64>,
    total: u64,
}

impl Progress {
    pub fn inc(&self, work: u64) {
        self.bar.inc(work);
        let Some(observer) = &self.observer else {
            return;
        };
        // An observer that unwound poisons the lock: the count is still right.
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *done += work;
        observer(*done, self.total);
    }

    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// A run's progress over `total` path-steps (see [`Progress`]).
pub fn progress_bar(total: f64, quiet: bool) -> Progress {
    use std::io::IsTerminal;
    let total_steps = total.max(1.0) as u64;
    let bar = if quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let pb = indicatif::ProgressBar::new(total_steps);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent}% path-steps, eta {eta}",
            )
            .expect("valid template"),
        );
        pb
    };
    Progress {
        bar,
        observer: OBSERVER.with(|o| o.borrow().clone()),
        done: std::sync::Mutex::new(0),
        total: total_steps,
    }
}

/// `runs/<name><infix>-<timestamp><suffix>`, the default output directory of a run
/// (infix "") or merge ("-merged"): the name (the config's `name`, or its file's stem)
/// must be one plain path component, so that the directory lands under `runs/`.
pub fn default_out(name: &str, infix: &str, suffix: &str) -> Result<PathBuf, Failure> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 200;
    if !plain {
        return Err(Failure::BadInput(format!(
            "name: {name:?} cannot name the default output directory runs/<name>-<time> \
             (it must be a plain file name of 1 … 200 bytes: no '/' or '\\', not starting \
             with '.'); give --out{}",
            if infix.is_empty() {
                ", or rename it (config field name, or the config file)"
            } else {
                ""
            }
        )));
    }
    Ok(PathBuf::from("runs").join(format!("{name}{infix}-{}{suffix}", timestamp())))
}

/// UTC timestamp `YYYYMMDD-HHMMSS` for default output directories.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (H. Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
