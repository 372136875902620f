//! `smflow merge` proves its inputs: a shard's partials.json carries a digest over its
//! content, and its shape, counts and exact sums are checked against the plan of its
//! config; a tampered shard, and an --out that is one of the inputs, are refused with
//! exit 2 and a message naming the shard and the problem.

use smflow::output::files::{read_partials, Partials};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smflow");

// 2 dynamics × 2 η, 2 checkpoints × 2 observables, 2000 paths: a second on the CPU.
const CFG: &str = r#"{"experiment": "weak_order",
 "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
 "x0": [1.0], "dynamics": ["sgd", "sme1"], "batch": 2,
 "etas": [0.2, 0.1], "horizon": 1.0, "checkpoints": [0.4, 1.0],
 "observables": ["norm2", "cos"], "paths": 2000,
 "sde": {"substeps": 8, "extrapolate": false}, "seed": 3}"#;

fn smflow(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

/// Runs shards 1/2 and 2/2 into `tmp`; returns their directories.
fn shards(tmp: &Path) -> Vec<PathBuf> {
    let cfg = tmp.join("cfg.json");
    std::fs::write(&cfg, CFG).unwrap();
    (1..=2)
        .map(|i| {
            let d = tmp.join(format!("shard{i}"));
            let o = smflow(&[
                "run",
                cfg.to_str().unwrap(),
                "--backend",
                "cpu",
                "--quiet",
                "--shard",
                &format!("{i}/2"),
                "--out",
                d.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            d
        })
        .collect()
}

fn merge(tmp: &Path, dirs: &[PathBuf], out: &Path) -> std::process::Output {
    let mut args = vec![
        "merge".to_string(),
        "--quiet".into(),
        "--out".into(),
        out.to_str().unwrap().into(),
    ];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap().to_string()));
    let _ = tmp;
    Command::new(BIN).args(&args).output().expect("binary runs")
}

/// Rewrites a shard's partials.json after `edit`; with `reseal`, with a fresh digest
/// (as a forger, or a faulty smflow, would).
fn tamper(dir: &Path, reseal: bool, edit: impl FnOnce(&mut Partials)) {
    let mut p = read_partials(dir).unwrap();
    edit(&mut p);
    let p = if reseal { p.sealed() } else { p };
    std::fs::write(dir.join("partials.json"), serde_json::to_vec(&p).unwrap()).unwrap();
}

/// Merging must fail with exit 2, one line naming the shard's file and `needle`.
fn refused(o: &std::process::Output, shard: &Path, needle: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{err}");
    let file = shard.join("partials.json");
    assert!(
        err.contains(&file.display().to_string()),
        "does not name {}: {err}",
        file.display()
    );
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

#[test]
fn untampered_shards_carry_a_digest_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    let p = read_partials(&d[0]).unwrap();
    assert!(
        p.digest.starts_with("sha256:") && p.digest.len() == 7 + 64,
        "{}",
        p.digest
    );
    p.check_digest().unwrap();
    let out = tmp.path().join("merged");
    let o = merge(tmp.path(), &d, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = read_partials(&out).unwrap();
    m.check_digest().unwrap();
    // The merged output verifies as a whole run of the same plan.
    let ck = smflow::experiment::config::parse(CFG, "x").unwrap();
    m.verify(
        &smflow::experiment::plan(&ck),
        smflow::experiment::Shard::WHOLE,
    )
    .unwrap();
}

#[test]
fn an_edit_without_a_new_digest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    tamper(&d[1], false, |p| p.moments[0][0][0].count += 500);
    let err = refused(
        &merge(tmp.path(), &d, &tmp.path().join("m")),
        &d[1],
        "digest mismatch (the file was modified after the run)",
    );
    eprintln!("{err}");
    assert!(!tmp.path().join("m").exists());
    // A file without any digest is refused as well.
    tamper(&d[1], false, |p| p.digest.clear());
    refused(
        &merge(tmp.path(), &d, &tmp.path().join("m")),
        &d[1],
        "no digest",
    );
}

#[test]
fn a_raised_count_is_refused_even_with_a_fixed_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    tamper(&d[0], true, |p| p.moments[1][0][3].count += 500);
    let err = refused(
        &merge(tmp.path(), &d, &tmp.path().join("m")),
        &d[0],
        "sgd η=0.1, t=1 cos: count 1460 + diverged 0 = 1460, but shard 1/2 holds 960 of the run's 2000 paths",
    );
    eprintln!("{err}");
}

#[test]
fn a_halved_exact_sum_bucket_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    // A negative Σ(g − shift) of sgd η=0.2 (normalised: 2^64 − 1 in the buckets below
    // the top one, which carries the sign −1): halving its highest such bucket makes
    // the mean of g absurdly negative, outside the observable's range.
    let p = read_partials(&d[0]).unwrap();
    let k = p.moments[0][0]
        .iter()
        .position(|m| {
            m.sums[0]
                .buckets
                .last()
                .is_some_and(|(_, v)| v.starts_with('-'))
        })
        .expect("sgd η=0.2 has a negative sum of shifted values");
    tamper(&d[0], true, |p| {
        let b = &mut p.moments[0][0][k].sums[0].buckets;
        let n = b.len();
        let v: i128 = b[n - 2].1.parse().unwrap();
        b[n - 2].1 = (v / 2).to_string();
    });
    let (t, obs) = (["0.4", "1"][k / 2], ["norm2", "cos"][k % 2]);
    let err = refused(
        &merge(tmp.path(), &d, &tmp.path().join("m")),
        &d[0],
        &format!("sgd η=0.2, t={t} {obs}: mean -"),
    );
    assert!(
        err.contains(&format!("outside the range of {obs}")),
        "{err}"
    );
    eprintln!("{err}");
}

#[test]
fn a_negative_sum_of_squares_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    tamper(&d[1], true, |p| {
        let s2 = &mut p.moments[2][0][1].sums[1];
        let mut neg = smflow::stats::exact_sum::ExactSum::default();
        neg.add(-4.0);
        *s2 = neg.to_parts();
    });
    let err = refused(
        &merge(tmp.path(), &d, &tmp.path().join("m")),
        &d[1],
        "sme1 η=0.2, t=0.4 cos: sum of squares Σy² = -4 is negative",
    );
    eprintln!("{err}");
}

#[test]
fn a_deleted_statistic_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    tamper(&d[1], true, |p| {
        p.moments[3][0].remove(1);
    });
    let err = refused(
        &merge(tmp.path(), &d, &tmp.path().join("m")),
        &d[1],
        "sme1 η=0.1: 11 statistics, expected 12 (2 checkpoints × 2 observables × 3 coupled channels (sde, sgd, difference))",
    );
    eprintln!("{err}");
    // A deleted run too.
    tamper(&d[1], true, |p| {
        p.moments.pop();
    });
    refused(
        &merge(tmp.path(), &d, &tmp.path().join("m")),
        &d[1],
        "3 runs, but its config plans 4",
    );
}

#[test]
fn out_equal_to_an_input_shard_is_refused_and_the_shard_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    let snapshot = |dir: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(&d[1]);
    // The same directory under another spelling.
    let alias = tmp.path().join("shard1").join("..").join("shard2");
    for out in [d[1].clone(), alias] {
        for force in [false, true] {
            let mut args = vec!["merge", "--quiet", "--out", out.to_str().unwrap()];
            if force {
                args.push("--force");
            }
            args.extend(d.iter().map(|p| p.to_str().unwrap()));
            let o = smflow(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{err}");
            assert!(err.contains("is the input directory"), "{err}");
            eprintln!("{err}");
        }
    }
    assert_eq!(snapshot(&d[1]), before, "the input shard was modified");
}

/// A run's paths come from one backend and precision: shards from two are refused (as
/// the job-merging experiments refuse them), not joined as "cpu + gpu".
#[test]
fn shards_of_two_backends_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    tamper(&d[1], true, |p| {
        p.backend = "gpu".into();
        p.precision = "f32".into();
    });
    let o = merge(tmp.path(), &d, &tmp.path().join("m"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ran on gpu (f32)")
            && err.contains("merge shards of one backend and precision"),
        "{err}"
    );
    assert!(!tmp.path().join("m").exists());
}

/// A shard stopped before its end (progress.json, no partials.json) is named as
/// interrupted, with the command that finishes it, not as a missing file.
#[test]
fn an_interrupted_shard_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shards(tmp.path());
    // What a killed run leaves: its progress, no partials or results.
    std::fs::remove_file(d[1].join("partials.json")).unwrap();
    std::fs::remove_file(d[1].join("results.json")).unwrap();
    std::fs::write(d[1].join("progress.json"), "{}").unwrap();
    let o = merge(tmp.path(), &d, &tmp.path().join("m"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is an interrupted run") && err.contains("--resume"),
        "{err}"
    );
}
