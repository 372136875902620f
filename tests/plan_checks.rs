//! The whole plan is checked before any work (issue 9, items 4 and 7): plans that
//! cannot run fail at once, with exit 2 and the field and the limit named, instead of
//! hanging, growing memory or aborting on a failed allocation.

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smflow");
const CONFIGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/");

/// Runs `smflow run` on a shipped config with `edit` applied; returns (exit code,
/// stderr, seconds).
fn run_edited(
    config: &str,
    edit: impl Fn(&mut serde_json::Value),
    extra: &[&str],
) -> (i32, String, f64) {
    let text = std::fs::read_to_string(format!("{CONFIGS}{config}")).unwrap();
    let mut c: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut c);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.json");
    std::fs::write(&cfg, c.to_string()).unwrap();
    let out = tmp.path().join("out");
    let mut args = vec![
        "run",
        cfg.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let t0 = Instant::now();
    let o = Command::new(BIN).args(&args).output().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(!out.join("results.json").exists());
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        secs,
    )
}

/// An invariant histogram over ±1e308 (its width overflows) hung in plotters' tick
/// search after the whole computation.
#[test]
fn an_unrepresentable_invariant_range_is_refused_up_front() {
    let (code, err, secs) = run_edited(
        "invariant_1d.json",
        |c| c["invariant"]["range"] = serde_json::json!([-1e308, 1e308]),
        &["--paths", "100"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invariant.range:"), "{err}");
    assert!(secs < 10.0, "took {secs} s");
}

/// Per-replica results beyond the host budget: a training experiment with 2^32 − 1
/// replicas (grew memory by 35 MB/s) and a width sweep (aborted on a failed
/// allocation) are refused before any work, naming --paths and the budget.
#[test]
fn per_replica_results_beyond_the_host_budget_are_refused() {
    for cfg in [
        "least_squares_risk.json",
        "implicit_bias_sweep.json",
        "width_sweep_quick.json",
    ] {
        let (code, err, secs) = run_edited(cfg, |_| {}, &["--paths", "4294967295"]);
        assert_eq!(code, 2, "{cfg}: {err}");
        assert!(
            err.contains("--paths:") && err.contains("host budget"),
            "{cfg}: {err}"
        );
        assert!(secs < 10.0, "{cfg}: took {secs} s");
    }
}

/// The budget is the stated one: lowering it refuses a run that fits the default.
#[test]
fn the_host_budget_can_be_lowered() {
    let text = std::fs::read_to_string(format!("{CONFIGS}width_sweep_quick.json")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.json");
    std::fs::write(&cfg, text).unwrap();
    let o = Command::new(BIN)
        .args([
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
            "--quiet",
            "--out",
        ])
        .arg(tmp.path().join("out"))
        .env("SMFLOW_HOST_MEMORY_GIB", "0.000001")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("paths:") && err.contains("at most"), "{err}");
}

/// With only an OpenGL adapter (forced here with WGPU_BACKEND=gl), `devices` says it is
/// the fallback without f64 and what to install. Skipped where there is no GL adapter.
#[test]
fn devices_names_the_opengl_fallback_and_what_to_install() {
    let t0 = Instant::now();
    let o = Command::new(BIN)
        .arg("devices")
        .env("WGPU_BACKEND", "gl")
        .output()
        .unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "took {:?}",
        t0.elapsed()
    );
    let text = String::from_utf8_lossy(&o.stdout);
    if !text.contains("[Gl,") {
        eprintln!("no OpenGL adapter: skipped ({text})");
        return;
    }
    for line in text.lines().filter(|l| l.contains("[Gl,")) {
        assert!(
            line.contains("no f64") && line.contains("mesa-vulkan-drivers"),
            "{line}"
        );
    }
}

/// A job one of whose steps exceeds a software adapter's loop limit is refused before
/// any work with `--backend gpu` (exit 2, naming `--backend cpu`), and `--backend auto`
/// gives way to the CPU and says why. Skipped where the adapter has no loop limit.
#[test]
fn jobs_beyond_the_loop_limit_are_refused_before_any_work_or_go_to_the_cpu() {
    use smflow::backend::gpu::GpuBackend;
    use smflow::backend::Precision;
    match GpuBackend::new(Precision::F32) {
        Ok(g) if g.loop_limit().is_some() => {}
        _ => {
            eprintln!("no adapter with a loop limit: skipped");
            return;
        }
    }
    let d = 8;
    let eye: Vec<Vec<f64>> = (0..d)
        .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let cfg = serde_json::json!({
        "experiment": "n_point",
        "model": {"kind": "quadratic", "a": eye, "mean": vec![0.0; d], "cov": eye},
        "particles": (0..8).map(|p| vec![0.1 * p as f64; d]).collect::<Vec<_>>(),
        "dynamics": ["sgd", "sme2"], "etas": [0.5], "horizon": 1.0, "paths": 40,
        "sde": {"substeps": 16}
    });
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let out = tmp.path().join("out");
    let run = |backend: &str| {
        Command::new(BIN)
            .args([
                "run",
                path.to_str().unwrap(),
                "--backend",
                backend,
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let o = run("gpu");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("shader loop iterations") && err.contains("--backend cpu"),
        "{err}"
    );
    assert!(!out.exists(), "nothing may be written before the refusal");
    let o = run("auto");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("backend auto → cpu"), "{err}");
    assert!(out.join("results.json").exists());
}
