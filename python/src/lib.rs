//! `smflow._smflow`: the native module of the `smflow` Python package.
//!
//! It runs the command line's own code path: the arguments are parsed by the CLI's
//! `clap` parser into `smflow::cli::Cli` and executed by `smflow::cli::main_with`, so a
//! run from Python writes exactly the files (and numbers) that `smflow run` writes. The
//! pure-Python layer (`python/smflow/__init__.py`) chooses the arguments and reads the
//! files back. The GIL is released while the engine runs.

use clap::error::ErrorKind;
use clap::Parser;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use smflow::cli::{main_with, with_progress_observer, Cli, Failure, Observer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

create_exception!(
    smflow,
    ConfigError,
    PyValueError,
    "Bad input: the config, an argument or the output directory (the CLI's exit 2). The message is the CLI's, after `error: `."
);
create_exception!(
    smflow,
    Error,
    PyRuntimeError,
    "Any other failure of a run (the CLI's exit 1)."
);

/// The message of a clap error without its `error: ` prefix and the trailing
/// `For more information, try '--help'.` line.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    text.lines()
        .filter(|l| !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

/// The unwind payload that stops a run from the progress observer.
struct Stopped;

/// How a run ended on its thread.
type Outcome = std::thread::Result<Result<(), Failure>>;

/// Runs `smflow ARGS...` (without the program name) in this process, the GIL released.
/// Raises `ConfigError` for bad input (a clap error or `Failure::BadInput`, with the
/// message the CLI prints after `error: `) and `Error` for any other failure.
///
/// The command runs on a thread of its own while this (the caller's) thread waits with
/// the GIL released, waking every 50 ms to run Python's pending signal handlers: a
/// Ctrl-C (KeyboardInterrupt) there asks the run to stop, and the run stops at its next
/// progress increment (a work unit), before any results.json is written; the exception
/// is raised here once it has. `progress(done, total)`, if given, is called at every
/// increment (with the GIL); an exception from it stops the run the same way.
#[pyfunction]
#[pyo3(signature = (args, progress=None))]
fn cli(py: Python<'_>, args: Vec<String>, progress: Option<Py<PyAny>>) -> PyResult<()> {
    let argv = std::iter::once("smflow".to_string()).chain(args);
    let parsed = Cli::try_parse_from(argv).map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            ConfigError::new_err(e.to_string().trim_end().to_string())
        }
        _ => ConfigError::new_err(clap_message(&e)),
    })?;
    // The first exception that stopped the run (Ctrl-C, or the progress callback's).
    let stop: Arc<Mutex<Option<PyErr>>> = Arc::default();
    let cancel = Arc::new(AtomicBool::new(false));
    let (stop_in, cancel_in) = (stop.clone(), cancel.clone());
    let observer: Observer = Arc::new(move |done: u64, total: u64| {
        if !cancel_in.load(Ordering::Relaxed) {
            let Some(f) = &progress else { return };
            let Some(e) = Python::attach(|py| f.call1(py, (done, total)).err()) else {
                return;
            };
            stop_in.lock().unwrap().get_or_insert(e);
        }
        // resume_unwind: no panic message (the panic hook is not called).
        std::panic::resume_unwind(Box::new(Stopped));
    });
    let (tx, rx) = mpsc::channel::<Outcome>();
    // In a Mutex so that the waiting closure may borrow it across `detach` (Sync).
    let rx = Mutex::new(rx);
    std::thread::Builder::new()
        .name("smflow run".into())
        .stack_size(16 << 20)
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                with_progress_observer(observer, || main_with(parsed))
            }));
            let _ = tx.send(outcome);
        })
        .map_err(|e| Error::new_err(format!("cannot start the run's thread: {e}")))?;
    let outcome = loop {
        match py.detach(|| rx.lock().unwrap().recv_timeout(Duration::from_millis(50))) {
            Ok(outcome) => break outcome,
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    stop.lock().unwrap().get_or_insert(e);
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Err(Box::new("the run's thread ended without a result"))
            }
        }
    };
    if let Some(e) = stop.lock().unwrap().take() {
        return Err(e);
    }
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Failure::BadInput(msg))) => Err(ConfigError::new_err(msg)),
        Ok(Err(Failure::Runtime(e))) => Err(Error::new_err(format!("{e:#}"))),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::new_err(format!("internal error (panic): {what}")))
        }
    }
}

/// The lines `smflow devices` prints: each GPU adapter wgpu sees, the adapter
/// `backend="gpu"` opens (if any) and the CPU backend.
#[pyfunction]
fn devices(py: Python<'_>) -> Vec<String> {
    py.detach(|| {
        use smflow::backend::Backend;
        let mut lines = smflow::backend::gpu::list_adapters();
        if let Ok(g) = smflow::backend::gpu::GpuBackend::new(smflow::backend::Precision::F32) {
            lines.push(format!("default gpu: {}", g.adapter()));
        }
        lines.push(format!(
            "cpu: {}",
            smflow::backend::cpu::CpuBackend::default().adapter()
        ));
        lines
    })
}

#[pymodule]
fn _smflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cli, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add("Error", m.py().get_type::<Error>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
