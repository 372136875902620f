//! Output directories are checked before any work: a non-empty --out is refused unless
//! --force (which empties it, so no stale file of an earlier run survives); an --out
//! that is a file, and a `bench --json` file in a missing directory, fail at once with
//! exit 2 and a message naming the flag — for every experiment and for `merge`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smflow");

const WEAK: &str = r#"{"experiment": "weak_order",
 "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
 "x0": [1.0], "dynamics": ["sgd", "sme1"], "batch": 2,
 "etas": [0.2, 0.1], "horizon": 1.0,
 "observables": ["norm2"], "paths": 1000,
 "sde": {"substeps": 8, "extrapolate": false}, "seed": 3}"#;

const NPOINT: &str = r#"{"experiment": "n_point",
 "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
 "particles": [[1.0], [-0.5]], "dynamics": ["sgd", "smf1"], "batch": 2,
 "etas": [0.1], "horizon": 1.0, "paths": 400,
 "sde": {"substeps": 8, "extrapolate": false}, "seed": 1}"#;

fn smflow(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn run(cfg: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        cfg,
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    smflow(&args)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_second_run_into_a_non_empty_out_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let weak = write(tmp.path(), "weak.json", WEAK);
    let npoint = write(tmp.path(), "npoint.json", NPOINT);
    let out = tmp.path().join("out");
    let o = run(&weak, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("weak_error.svg").exists());
    let before = std::fs::read(out.join("results.json")).unwrap();

    let o = run(&npoint, &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "error: --out {}: not empty (use --force to replace its contents)",
            out.display()
        )
    );
    eprintln!("{}", err.trim());
    assert_eq!(std::fs::read(out.join("results.json")).unwrap(), before);

    let o = run(&npoint, &out, &["--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        names(&out),
        [
            "correlations.csv",
            "ensemble.csv",
            "partials.json",
            "points.csv",
            "results.json"
        ],
        "stale files of the first run survived"
    );

    // With the coupled estimator n_point also writes its paired differences and their plot.
    let coupled = write(
        tmp.path(),
        "coupled.json",
        &NPOINT.replace(r#""seed": 1}"#, r#""seed": 1, "estimator": "coupled"}"#),
    );
    let paired_out = tmp.path().join("paired");
    let o = run(&coupled, &paired_out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        names(&paired_out),
        [
            "correlations.csv",
            "ensemble.csv",
            "paired.csv",
            "paired.svg",
            "partials.json",
            "points.csv",
            "results.json"
        ]
    );

    // --force empties only files: a directory holding a subdirectory is refused.
    std::fs::create_dir(out.join("keep")).unwrap();
    let o = run(&npoint, &out, &["--force"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("holds a directory, keep"), "{err}");
    eprintln!("{}", err.trim());
    assert!(out.join("results.json").exists());
}

#[test]
fn merge_refuses_a_non_empty_out_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let weak = write(tmp.path(), "weak.json", WEAK);
    let shard = tmp.path().join("whole");
    assert!(run(&weak, &shard, &[]).status.success());
    let out = tmp.path().join("merged");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("stale.txt"), "old").unwrap();
    let args = |force: bool| {
        let mut v = vec!["merge", "--quiet", "--out", out.to_str().unwrap()];
        if force {
            v.push("--force");
        }
        v.push(shard.to_str().unwrap());
        v
    };
    let o = smflow(&args(false));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not empty (use --force"), "{err}");
    let o = smflow(&args(true));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.join("stale.txt").exists());
    assert!(out.join("results.json").exists());
}

/// Every kind of experiment checks --out before its backend is made or any path is
/// simulated (the full-size configs would take minutes otherwise).
#[test]
fn an_out_that_is_a_file_fails_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a_file");
    std::fs::write(&file, "not a directory").unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    for cfg in [
        "quickstart",
        "n_point",
        "invariant_1d",
        "least_squares_risk",
        "implicit_bias_sweep",
        "gd_vs_gf",
        "width_sweep",
    ] {
        let cfg = format!("{root}/configs/{cfg}.json");
        let start = Instant::now();
        let o = run(&cfg, &file, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cfg}: {err}");
        assert_eq!(
            err.trim(),
            format!(
                "error: --out {}: is a file, not a directory",
                file.display()
            ),
            "{cfg}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{cfg}: took {:?}",
            start.elapsed()
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
    }
    // A directory below a file cannot be created either.
    let below = file.join("out");
    let o = run(&format!("{root}/configs/quickstart.json"), &below, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot create the directory"), "{err}");
    eprintln!("{}", err.trim());
    // No partials anywhere in the temporary directory.
    assert_eq!(names(tmp.path()), ["a_file"]);
}

#[test]
fn a_directory_prepared_for_a_run_that_fails_is_removed_if_still_empty() {
    use smflow::output::files::prepare_out_dir;
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("a").join("b");
    let out = prepare_out_dir(&fresh, "--out", false).unwrap();
    assert!(fresh.is_dir());
    drop(out); // the run failed before writing anything
    assert!(!fresh.exists());
    let out = prepare_out_dir(&fresh, "--out", false).unwrap();
    std::fs::write(fresh.join("results.json"), "{}").unwrap();
    drop(out);
    assert!(fresh.join("results.json").exists());
    // A directory that already existed is kept, empty or not.
    let kept = tmp.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    drop(prepare_out_dir(&kept, "--out", false).unwrap());
    assert!(kept.is_dir());
    // A bad config never creates --out.
    let bad = write(
        tmp.path(),
        "bad.json",
        &WEAK.replace(r#""paths": 1000"#, r#""paths": 0"#),
    );
    let never = tmp.path().join("never");
    assert_eq!(run(&bad, &never, &[]).status.code(), Some(2));
    assert!(!never.exists());
}

#[test]
fn bench_json_into_a_missing_directory_fails_fast() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("missing").join("bench.json");
    let start = Instant::now();
    // The default 2^20 paths would take a while before the old failure.
    let o = smflow(&[
        "bench",
        "--backend",
        "cpu",
        "--json",
        json.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("--json {}", json.display())), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(
        String::from_utf8_lossy(&o.stdout).trim().is_empty(),
        "measured before failing"
    );
    eprintln!("{}", err.trim());
    // A directory given as the file is refused too.
    let o = smflow(&[
        "bench",
        "--backend",
        "cpu",
        "--json",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is a directory"));
}
