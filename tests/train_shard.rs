//! Shards that save jobs: `run --shard i/N` of least_squares_risk, implicit_bias_sweep,
//! width_sweep, weak_order on the two-layer model and invariant, then `merge`, writes exactly the files of one unsharded run
//! (results.json equal but for its timing), whatever order the shards are given in,
//! and a shard interrupted and continued with `--resume` merges the same. Missing,
//! unfinished, duplicated or mismatched shards, and --shard for gd_vs_gf, are refused
//! with exit 2 and a message naming the problem.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smflow");

// 2 data sets × (gd, sgd, msgd, msme1, gf) × 2 η, 7 replicas: GF's convergence loop
// and the deterministic runs (one replica, run whole by every shard) included.
const SWEEP: &str = r#"{"experiment": "implicit_bias_sweep", "name": "sweep",
 "data": {"source": "generate", "n": 12, "d": 16, "sparsity": 3},
 "model": {"param": "uv", "alpha": 0.1}, "dynamics": ["gd", "sgd", "msgd", "msme1", "gf"],
 "momentum": {"friction": 1.0}, "etas": [0.05, 0.1], "horizon": 10, "paths": 7,
 "datasets": 2, "substeps": 2}"#;

const RISK: &str = r#"{"experiment": "least_squares_risk", "name": "risk",
 "data": {"source": "generate", "n": 30, "d": 10, "label_noise": 1.0},
 "model": {"param": "linear"}, "dynamics": ["sgd", "sme1"], "etas": [0.05],
 "batch": 3, "horizon": 2, "checkpoints": [0.5, 1], "paths": 50, "substeps": 2}"#;

const WIDTHS: &str = r#"{"experiment": "width_sweep", "name": "widths",
 "model": {"kind": "two_layer", "activation": "tanh", "d": 3,
           "teacher": {"neurons": 2, "a_scale": 1.0, "seed": 3}},
 "data": {"kind": "set", "n": 16, "label_noise": 0.1},
 "widths": [4, 8, 16], "dynamics": ["sgd", "smf1"], "etas": [0.1], "batch": 2,
 "horizon": 0.5, "paths": 9, "substeps": 1, "test_samples": 16, "seed": 1}"#;

// weak_order on the two-layer model: the mean-field engine, with coupled coarse levels
// (substeps 2) among its jobs.
const MF_ORDER: &str = r#"{"experiment": "weak_order", "name": "mf_order",
 "model": {"kind": "two_layer", "activation": "tanh", "d": 3,
           "teacher": {"neurons": 2, "a_scale": 1.0, "seed": 3}},
 "data": {"kind": "set", "n": 16, "label_noise": 0.1},
 "widths": [8], "dynamics": ["sgd", "smf1", "gd", "gf"], "etas": [0.1, 0.05], "batch": 2,
 "horizon": 0.2, "paths": 9, "substeps": 2, "test_samples": 16, "seed": 1}"#;

// invariant: 2 runs × 5 batches of 303 paths; 3 shards each count their part of every
// batch, and merge adds the counts.
const INVARIANT: &str = r#"{"experiment": "invariant", "name": "inv",
 "model": {"kind": "toy_sgd", "loss": "double_well", "c0": 0.25, "sigma": 100.0},
 "x0": [0.0], "dynamics": ["sgd", "sme1"], "etas": [0.01], "horizon": 1.0, "paths": 303,
 "sde": {"substeps": 2, "extrapolate": false},
 "invariant": {"bins": 12, "range": [-2.0, 2.0], "batches": 5}, "seed": 1}"#;

// invariant with fewer paths per batch than shards: some shards' parts are empty.
const INVARIANT_SMALL: &str = r#"{"experiment": "invariant", "name": "inv_small",
 "model": {"kind": "toy_sgd", "loss": "double_well", "c0": 0.25, "sigma": 100.0},
 "x0": [0.0], "dynamics": ["sgd"], "etas": [0.01], "horizon": 0.5, "paths": 3,
 "invariant": {"bins": 8, "range": [-2.0, 2.0], "batches": 2}, "seed": 2}"#;

fn smflow(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

fn ok(args: &[&str]) {
    let o = smflow(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn refused(args: &[&str], words: &str) {
    let o = smflow(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(words), "{args:?}: {err}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smflow-train-shard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the config whole and as shards 1..=n; returns (whole dir, shard dirs).
fn whole_and_shards(dir: &Path, cfg: &str, n: u32) -> (PathBuf, Vec<PathBuf>) {
    let c = dir.join("cfg.json");
    std::fs::write(&c, cfg).unwrap();
    let whole = dir.join("whole");
    ok(&[
        "run",
        s(&c),
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        s(&whole),
    ]);
    let shards = (1..=n)
        .map(|i| {
            let d = dir.join(format!("shard{i}"));
            let shard = format!("{i}/{n}");
            ok(&[
                "run",
                s(&c),
                "--backend",
                "cpu",
                "--quiet",
                "--shard",
                &shard,
                "--out",
                s(&d),
            ]);
            assert!(
                !d.join("results.json").exists(),
                "a shard writes no results"
            );
            d
        })
        .collect();
    (whole, shards)
}

fn merge(dirs: &[&PathBuf], out: &Path) -> std::process::Output {
    let mut args = vec![
        "merge".to_string(),
        "--quiet".into(),
        "--out".into(),
        s(out).into(),
    ];
    args.extend(dirs.iter().map(|d| s(d).to_string()));
    Command::new(BIN).args(&args).output().expect("binary runs")
}

/// Every file of `a` equals `b`'s byte for byte; results.json but for timing.
fn assert_same_outputs(a: &Path, b: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    for n in names {
        let (x, y) = (a.join(&n), b.join(&n));
        if n == "results.json" {
            let strip = |p: &Path| {
                let mut v: Value =
                    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                let o = v.as_object_mut().unwrap();
                o.remove("wall_seconds");
                o.remove("path_steps_per_second");
                v
            };
            assert_eq!(strip(&x), strip(&y), "results.json differs");
        } else {
            assert!(
                std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
                "{n:?} differs between {} and {}",
                a.display(),
                b.display()
            );
        }
    }
}

#[test]
fn merged_shards_equal_the_whole_run() {
    for (name, cfg, n) in [
        ("sweep", SWEEP, 3),
        ("risk", RISK, 2),
        ("widths", WIDTHS, 4),
        ("mf_order", MF_ORDER, 2),
        ("invariant", INVARIANT, 3),
        ("invariant-small", INVARIANT_SMALL, 5),
    ] {
        let dir = tmp(name);
        let (whole, shards) = whole_and_shards(&dir, cfg, n);
        let out = dir.join("merged");
        // Given in reverse order: merge orders them.
        let rev: Vec<&PathBuf> = shards.iter().rev().collect();
        let o = merge(&rev, &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_same_outputs(&whole, &out);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn an_interrupted_shard_resumes_and_merges_the_same() {
    let dir = tmp("resume");
    let (whole, shards) = whole_and_shards(&dir, SWEEP, 2);
    // "Interrupt" shard 2: drop its done marker and its last jobs.
    let progress = shards[1].join("progress");
    std::fs::remove_file(progress.join("done.json")).unwrap();
    let mut jobs: Vec<_> = std::fs::read_dir(&progress)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("job-"))
        .collect();
    jobs.sort();
    assert!(jobs.len() > 4);
    for j in &jobs[jobs.len() - 4..] {
        std::fs::remove_file(j).unwrap();
    }
    let out = dir.join("merged");
    refused(
        &[
            "merge",
            "--quiet",
            "--out",
            s(&out),
            s(&shards[0]),
            s(&shards[1]),
        ],
        "did not finish",
    );
    let cfg = dir.join("cfg.json");
    // The shard must be named again, and the same one.
    refused(
        &[
            "run",
            s(&cfg),
            "--backend",
            "cpu",
            "--quiet",
            "--resume",
            s(&shards[1]),
            "--shard",
            "1/2",
        ],
        "resume with the same --shard",
    );
    ok(&[
        "run",
        s(&cfg),
        "--backend",
        "cpu",
        "--quiet",
        "--resume",
        s(&shards[1]),
        "--shard",
        "2/2",
    ]);
    let o = merge(&[&shards[0], &shards[1]], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_outputs(&whole, &out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_shard_sets_are_refused() {
    let dir = tmp("bad");
    let (_, shards) = whole_and_shards(&dir, SWEEP, 3);
    let out = dir.join("merged");
    let o = s(&out);
    refused(
        &["merge", "--quiet", "--out", o, s(&shards[0]), s(&shards[2])],
        "shards 2/3 are missing",
    );
    refused(
        &[
            "merge",
            "--quiet",
            "--out",
            o,
            s(&shards[0]),
            s(&shards[0]),
            s(&shards[1]),
        ],
        "given twice",
    );
    // A shard of another seed.
    let cfg = dir.join("cfg.json");
    let other = dir.join("other");
    ok(&[
        "run",
        s(&cfg),
        "--backend",
        "cpu",
        "--quiet",
        "--shard",
        "3/3",
        "--seed",
        "9",
        "--out",
        s(&other),
    ]);
    refused(
        &[
            "merge",
            "--quiet",
            "--out",
            o,
            s(&shards[0]),
            s(&shards[1]),
            s(&other),
        ],
        "different config or seed",
    );
    // A tampered job file.
    let job = shards[1].join("progress").join("job-000001.json");
    let text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(&job, text.replacen("\"result\":[[", "\"result\":[[1,", 1)).unwrap();
    refused(
        &[
            "merge",
            "--quiet",
            "--out",
            o,
            s(&shards[0]),
            s(&shards[1]),
            s(&shards[2]),
        ],
        "digest mismatch",
    );
    assert!(!out.join("results.json").exists());
    // gd_vs_gf's runs are deterministic: nothing to shard.
    let gd = dir.join("gd.json");
    std::fs::write(
        &gd,
        r#"{"experiment": "gd_vs_gf", "data": {"source": "generate", "n": 10, "d": 12, "sparsity": 2},
            "model": {"param": "uv"}, "dynamics": ["gd"], "etas": [0.1], "horizon": 1, "paths": 1}"#,
    )
    .unwrap();
    refused(
        &["run", s(&gd), "--backend", "cpu", "--shard", "1/2"],
        "--shard: not available",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
