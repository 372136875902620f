//! Bad configs through the command line: shared by tests/config_errors.rs and
//! tests/config_bounds.rs.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_smflow");

pub const WEAK: &str = r#"{"experiment": "weak_order",
 "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
 "x0": [1.0], "dynamics": ["sgd", "sme1"], "batch": 2,
 "etas": [0.2, 0.1], "horizon": 1.0,
 "observables": ["norm2"], "paths": 100,
 "sde": {"substeps": 8, "extrapolate": true}, "seed": 1}"#;

pub const TRAIN: &str = r#"{"experiment": "implicit_bias_sweep",
 "data": {"source": "generate", "n": 20, "d": 30, "sparsity": 3},
 "model": {"param": "uv", "alpha": 0.1},
 "dynamics": ["gd"], "etas": [0.1], "batch": 1, "horizon": 1,
 "paths": 2, "datasets": 1, "substeps": 1, "test_samples": 10}"#;

pub const SWEEP: &str = r#"{"experiment": "width_sweep",
 "model": {"kind": "two_layer", "activation": "tanh", "d": 2,
           "teacher": {"neurons": 2, "a_scale": 1.0, "seed": 3}},
 "data": {"kind": "set", "n": 16, "label_noise": 0.1},
 "widths": [4, 8], "dynamics": ["sgd"], "etas": [0.1], "batch": 2,
 "horizon": 0.2, "paths": 4, "substeps": 1, "test_samples": 16, "seed": 1}"#;

/// Runs `smflow run CONFIG ARGS…` (killed after 60 s: today's bad step counts hang)
/// and returns (exit code, stderr).
pub fn run(text: &str, args: &[&str]) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.json");
    std::fs::write(&cfg, text).unwrap();
    let out = tmp.path().join("out");
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&cfg)
        .args(["--backend", "cpu", "--quiet", "--out"])
        .arg(&out)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.and_then(|s| s.code()), err)
}

/// Asserts exit code 2 and that stderr contains every one of `wanted`.
pub fn bad(text: &str, args: &[&str], wanted: &[&str]) {
    let (code, err) = run(text, args);
    assert_eq!(
        code,
        Some(2),
        "exit code (None: killed after 60 s); stderr: {err}"
    );
    for w in wanted {
        assert!(err.contains(w), "stderr lacks {w:?}: {err}");
    }
}

pub fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "{from:?} not in the base config");
    base.replacen(from, to, 1)
}
