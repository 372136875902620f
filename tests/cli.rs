//! The binary as a user runs it: a run writes complete outputs; sharded runs merge to
//! the unsharded results; every kind of bad input exits with 2, one line naming the
//! field, and leaves no results.json behind.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smflow");

const GOOD: &str = r#"{"experiment": "weak_order",
 "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
 "x0": [1.0], "dynamics": ["sgd", "sme1", "sme2"], "batch": 2,
 "etas": [0.2, 0.1, 0.05, 0.025], "horizon": 1.0,
 "observables": ["norm2", "cos"], "paths": 400000,
 "sde": {"substeps": 32, "extrapolate": true}, "seed": 1}"#;

fn smflow(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn run_writes_results_and_shards_merge_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "issue.json", GOOD);
    let out = tmp.path().join("whole");
    let o = smflow(&[
        "run",
        &cfg,
        "--backend",
        "cpu",
        "--paths",
        "3000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "results.json",
        "weak_error.csv",
        "weak_error.svg",
        "points.csv",
        "partials.json",
    ] {
        assert!(out.join(f).exists(), "missing {f}");
    }
    let r = results(&out);
    for key in [
        "points",
        "weak_errors",
        "orders",
        "backend",
        "adapter",
        "precision",
        "seed",
        "wall_seconds",
        "path_steps_per_second",
        "smflow_version",
        "config",
    ] {
        assert!(r.get(key).is_some(), "results.json lacks {key}");
    }
    assert_eq!(r["points"].as_array().unwrap().len(), 3 * 4 * 2);
    assert_eq!(r["weak_errors"].as_array().unwrap().len(), 2 * 4 * 2);
    let p0 = &r["points"][0];
    for key in [
        "dynamics",
        "eta",
        "t",
        "observable",
        "mean",
        "stderr",
        "count",
        "diverged",
        "solver_error",
    ] {
        assert!(p0.get(key).is_some(), "point lacks {key}");
    }

    let mut dirs = Vec::new();
    for i in 1..=3 {
        let d = tmp.path().join(format!("shard{i}"));
        let o = smflow(&[
            "run",
            &cfg,
            "--backend",
            "cpu",
            "--paths",
            "3000",
            "--shard",
            &format!("{i}/3"),
            "--quiet",
            "--out",
            d.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dirs.push(d.to_str().unwrap().to_string());
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["merge", "--quiet", "--out", merged.to_str().unwrap()];
    args.extend(dirs.iter().map(|s| s.as_str()));
    let o = smflow(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(results(&merged)["points"], r["points"]);
    assert_eq!(results(&merged)["weak_errors"], r["weak_errors"]);

    // Merging an incomplete set of shards is refused.
    let o = smflow(&[
        "merge",
        "--quiet",
        "--out",
        tmp.path().join("bad").to_str().unwrap(),
        &dirs[0],
        &dirs[1],
    ]);
    assert_eq!(o.status.code(), Some(2));
}

/// Each case: (what to change, text the one-line error must contain).
fn bad_cases() -> Vec<(String, &'static str)> {
    let sub = |from: &str, to: &str| {
        assert!(GOOD.contains(from), "{from}");
        GOOD.replacen(from, to, 1)
    };
    vec![
        (
            sub(r#""seed": 1"#, r#""seed": 1, "colour": "red""#),
            "unknown field `colour`",
        ),
        (sub(r#""a": [[1.5]]"#, r#""a": [[1.5, 0.1]]"#), "model.a"),
        (
            sub(r#""cov": [[0.64]]"#, r#""cov": [[-0.64]]"#),
            "model.cov",
        ),
        (
            sub(
                r#""a": [[1.5]], "mean": [0.3], "cov": [[0.64]]"#,
                r#""a": [[1.5,0],[0,1]], "mean": [0.3,0], "cov": [[1,0.5],[0.4,1]]"#,
            ),
            "model.cov: must be symmetric",
        ),
        (sub(r#""x0": [1.0]"#, r#""x0": [1.0, 2.0]"#), "x0"),
        (sub("0.025]", "0.03]"), "etas[3]"),
        (sub("0.025]", "0.0]"), "etas[3]"),
        (sub("0.025]", "-0.1]"), "etas[3]"),
        (
            sub(r#""sme2"]"#, r#""sme3"]"#),
            "dynamics[2]: unknown dynamics \"sme3\"",
        ),
        (
            sub(r#""cos"]"#, r#""sin"]"#),
            "observables[1]: unknown observable \"sin\"",
        ),
        (sub(r#""paths": 400000"#, r#""paths": 0"#), "paths"),
        (
            sub(
                r#""horizon": 1.0"#,
                r#""horizon": 1.0, "checkpoints": [0.33]"#,
            ),
            "checkpoints[0]",
        ),
        (
            sub(r#""kind": "quadratic""#, r#""kind": "cubic""#),
            "unknown variant `cubic`",
        ),
        (sub(r#""substeps": 32"#, r#""substeps": 6"#), "sde.substeps"),
        (
            sub(r#""seed": 1"#, r#""seed": 1, "precision": "f16""#),
            "precision",
        ),
    ]
}

#[test]
fn bad_input_exits_2_with_a_one_line_error_and_no_results() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (text, needle)) in bad_cases().into_iter().enumerate() {
        let cfg = write(tmp.path(), &format!("bad{i}.json"), &text);
        let out = tmp.path().join(format!("out{i}"));
        let o = smflow(&[
            "run",
            &cfg,
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i} ({needle}): {err}");
        assert!(
            err.contains(needle),
            "case {i}: expected {needle:?} in {err:?}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "case {i}: not one line: {err:?}"
        );
        assert!(!err.contains("panicked"), "case {i}: {err}");
        assert!(
            !out.join("results.json").exists(),
            "case {i}: results.json written"
        );
    }
    // Command-line values are checked too.
    let cfg = write(tmp.path(), "good.json", GOOD);
    for args in [
        vec!["run", &cfg, "--paths", "0"],
        vec!["run", &cfg, "--shard", "4/3"],
        vec!["run", "/nonexistent.json"],
    ] {
        let o = smflow(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn f64_on_an_adapter_without_it_is_a_clear_error() {
    // Only checkable where an adapter lacks SHADER_F64; otherwise the f64 path must run.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "f64.json",
        &GOOD.replace(r#""seed": 1"#, r#""seed": 1, "precision": "f64""#),
    );
    let out = tmp.path().join("o");
    let o = smflow(&[
        "run",
        &cfg,
        "--backend",
        "gpu",
        "--paths",
        "256",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        assert!(results(&out)["precision"] == "f64");
    } else {
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("f64") || err.contains("adapter"), "{err}");
        assert!(!out.join("results.json").exists());
    }
}

#[test]
fn devices_bench_and_compare_run() {
    let o = smflow(&["devices"]);
    assert!(o.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    // `smflow bench --paths 4096 ARGS --json …`: its stdout and measurements.
    let bench = |args: &[&str]| {
        let mut all = vec!["bench", "--paths", "4096", "--json", json.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = smflow(&all);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let b: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (o, b.as_array().unwrap().clone())
    };
    let (o, rows) = bench(&["--backend", "cpu"]);
    assert!(rows
        .iter()
        .all(|m| m["path_steps_per_second"].as_f64().unwrap() > 0.0));
    if String::from_utf8_lossy(&o.stdout).is_empty()
        || String::from_utf8_lossy(&smflow(&["devices"]).stdout).contains("no wgpu adapter")
    {
        eprintln!("skipping compare: no wgpu adapter");
        return;
    }
    let cfg = write(tmp.path(), "cmp.json", GOOD);
    // compare into `dir` (plus `extra` flags): its output and compare.json.
    let compare = |dir: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["compare", cfg.as_str(), "--paths", "2000", "--sample", "32"];
        args.extend_from_slice(extra);
        args.extend(["--out", dir.to_str().unwrap()]);
        let o = smflow(&args);
        let doc = std::fs::read_to_string(dir.join("compare.json")).unwrap_or_default();
        (o, serde_json::from_str::<serde_json::Value>(&doc).ok())
    };
    let (o, c) = compare(tmp.path(), &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("PASS"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let c = c.expect("compare.json");
    assert_eq!(c["passed"], true);
    // --quiet: nothing printed, the same verdict in compare.json and the exit status.
    let (o, q) = compare(&tmp.path().join("quiet"), &["--quiet"]);
    assert!(o.status.success());
    assert_eq!((o.stdout.len(), o.stderr.len()), (0, 0), "{o:?}");
    let q = q.expect("compare.json");
    assert_eq!(q["paths"], c["paths"]);
    assert_eq!(q["passed"], true);

    // The GPU's bare-RNG ceiling beside the sgd job: both measured, same path-steps.
    let (_, rows) = bench(&["--backend", "gpu", "--jobs", "sgd,rng"]);
    let jobs: Vec<&str> = rows.iter().map(|m| m["job"].as_str().unwrap()).collect();
    assert_eq!(jobs, ["sgd", "rng_ceiling"]);
    for m in &rows {
        assert_eq!(m["path_steps"].as_f64().unwrap(), 4096.0 * 40.0, "{m}");
        assert!(m["path_steps_per_second"].as_f64().unwrap() > 0.0);
    }
}
