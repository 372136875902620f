//! Sizes and fields every experiment bounds alike: step sizes (at least one step, each
//! listed once), report times on the step grid, fields an experiment would ignore,
//! names, model kinds, substeps with any solver, host memory, shards and tolerances.
//! Each exits with 2 and one line naming the field.

mod common;
use common::bad_config::{bad, edit, run, BIN, SWEEP, TRAIN, WEAK};
use std::process::Command;

/// Every family checks its step sizes alike (`config::parse::check_eta`): a whole number
/// of at least one step to the horizon, each η listed once.
#[test]
fn step_sizes_give_at_least_one_step_and_are_listed_once() {
    let weak_data = edit(TRAIN, "implicit_bias_sweep", "weak_order");
    for (cfg, name) in [
        (TRAIN, "trainer"),
        (weak_data.as_str(), "data weak_order"),
        (SWEEP, "width_sweep"),
    ] {
        let at_least_one = &["error: etas[0]: ", "whole number of steps, at least one"];
        bad(&edit(cfg, "[0.1]", "[1e10]"), &[], at_least_one);
        eprintln!("{name}: η beyond the horizon refused");
        bad(
            &edit(cfg, "[0.1]", "[0.1, 0.05, 0.1]"),
            &[],
            &["error: etas[2]: 0.1 is listed twice"],
        );
    }
    bad(
        &edit(WEAK, "[0.2, 0.1]", "[0.2, 2.5]"),
        &[],
        &["error: etas[1]: ", "at least one"],
    );
}

/// A report time that is not a whole number of steps is blamed on its checkpoint.
#[test]
fn checkpoints_off_the_step_grid_name_the_checkpoint() {
    for cfg in [TRAIN, SWEEP] {
        let with = edit(
            cfg,
            r#""etas": [0.1],"#,
            r#""etas": [0.1], "checkpoints": [0.1, 0.05],"#,
        );
        bad(
            &with,
            &[],
            &[
                "error: checkpoints[1]: ",
                "not a whole number of steps of etas[0]",
            ],
        );
    }
}

/// One time-grid check for every family (`config::parse::check_schedule`): a weak-order
/// study reports at times after x₀, so its checkpoints lie in (0, horizon] and at least
/// one step of every η; the finite-data and mean-field experiments may report at 0.
#[test]
fn report_times_are_checked_alike_with_time_zero_only_where_it_means_something() {
    let at = |t: &str| {
        edit(
            WEAK,
            r#""horizon": 1.0,"#,
            &format!(r#""horizon": 1.0, "checkpoints": [{t}],"#),
        )
    };
    bad(
        &at("0.5, 0"),
        &[],
        &[
            "error: checkpoints[1]: ",
            "must be a time in (0, horizon = 1]",
        ],
    );
    // 1e-13 is a whole number (0) of steps, but not a time after x₀.
    bad(
        &at("1e-13"),
        &[],
        &[
            "error: checkpoints[0]: ",
            "less than one step of etas[0] = 0.2",
        ],
    );
    bad(
        &at("0.4, 0.15"),
        &[],
        &[
            "error: checkpoints[1]: ",
            "not a whole number of steps of etas[0]",
        ],
    );
    for cfg in [TRAIN, SWEEP] {
        bad(
            &edit(
                cfg,
                r#""etas": [0.1],"#,
                r#""etas": [0.1], "checkpoints": [0, 2],"#,
            ),
            &[],
            &[
                "error: checkpoints[1]: ",
                "must be a time in [0, horizon = ",
            ],
        );
        bad(
            &edit(cfg, r#""etas": [0.1],"#, r#""etas": [],"#),
            &[],
            &["error: etas: must list at least one step size"],
        );
    }
}

/// gd_vs_gf runs gd, gf and mgf only, and refuses the fields it would ignore; the other
/// finite-data experiments refuse gd_vs_gf's `ratios`.
#[test]
fn fields_an_experiment_does_not_read_are_refused() {
    let gd_vs_gf = edit(TRAIN, "implicit_bias_sweep", "gd_vs_gf");
    bad(&gd_vs_gf, &[], &["error: batch: not read by gd_vs_gf"]);
    let plain = gd_vs_gf
        .replace(r#""batch": 1, "#, "")
        .replace(r#""datasets": 1, "#, "");
    bad(
        &edit(&plain, r#"["gd"]"#, r#"["gd", "sgd"]"#),
        &[],
        &[
            "error: dynamics[1]: gd_vs_gf runs gd, gf and mgf",
            "not sgd",
        ],
    );
    bad(
        &edit(
            &plain,
            r#""paths": 2,"#,
            r#""paths": 2, "sampling": "epochs","#,
        ),
        &[],
        &["error: sampling: not read"],
    );
    let risk = edit(TRAIN, "implicit_bias_sweep", "least_squares_risk");
    bad(
        &risk,
        &[],
        &["error: datasets: not read by least_squares_risk"],
    );
    bad(
        &edit(TRAIN, r#""paths": 2,"#, r#""paths": 2, "ratios": [2],"#),
        &[],
        &["error: ratios: not read by implicit_bias_sweep"],
    );
}

/// The default output directory `runs/<name>-<time>` needs a plain name (one that
/// would escape `runs/` is refused, naming `name`); a misspelt model kind is named as
/// such, not routed to another engine by `data`.
#[test]
fn names_and_model_kinds_are_checked() {
    for name in ["../escaped", "/tmp/abs", "", ".hidden"] {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("c.json");
        let text = edit(
            WEAK,
            r#""seed": 1"#,
            &format!(r#""seed": 1, "name": {name:?}"#),
        );
        std::fs::write(&cfg, text).unwrap();
        let o = Command::new(BIN)
            .arg("run")
            .arg(&cfg)
            .args(["--backend", "cpu", "--quiet"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name:?}: {err}");
        assert!(
            err.contains("error: name: ") && err.contains("plain file name"),
            "{err}"
        );
        let made: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(made.len(), 1, "{name:?}: only the config, got {made:?}");
    }
    let typo = edit(SWEEP, r#""kind": "two_layer""#, r#""kind": "two-layer""#).replace(
        r#""experiment": "width_sweep""#,
        r#""experiment": "weak_order""#,
    );
    bad(
        &typo,
        &[],
        &[
            "error: model.kind: unknown variant `two-layer`",
            "two_layer",
        ],
    );
}

/// A config file's stem names a run without `name`, spaces and all, and its shards
/// merge (merge rereads the stored config, name included).
#[test]
fn a_run_named_by_a_file_stem_with_a_space_shards_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/invariant_1d.json"
    ))
    .unwrap()
    .replace("  \"name\": \"invariant_1d\",\n", "");
    assert!(!text.contains("\"name\""));
    let cfg = tmp.path().join("inv 1d.json");
    std::fs::write(&cfg, text).unwrap();
    let mut dirs = Vec::new();
    for i in 1..=2 {
        let d = tmp.path().join(format!("s{i}"));
        let o = Command::new(BIN)
            .arg("run")
            .arg(&cfg)
            .args(["--backend", "cpu", "--quiet", "--paths", "40"])
            .args(["--shard", &format!("{i}/2"), "--out"])
            .arg(&d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dirs.push(d);
    }
    let o = Command::new(BIN)
        .args(["merge", "--quiet", "--out"])
        .arg(tmp.path().join("m"))
        .args(&dirs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `sde.substeps` is checked whatever the solver (the exact solver's flows use it).
#[test]
fn substeps_are_bounded_with_the_exact_solver_too() {
    let exact = edit(
        WEAK,
        r#""substeps": 8, "extrapolate": true"#,
        r#""solver": "exact", "substeps": 4294967295"#,
    )
    .replace(r#""estimator""#, "\"x\"");
    bad(&exact, &[], &["error: sde.substeps: must be in 1 … 4096"]);
    bad(
        &exact.replace("4294967295", "0"),
        &[],
        &["error: sde.substeps: must be in 1 … 4096"],
    );
}

/// Sizes that would abort on a failed allocation are refused up front, naming the field.
#[test]
fn batches_and_data_sets_beyond_the_host_budget_are_refused() {
    let budget = |cfg: &str, wanted: &[&str]| {
        let (code, err) = run(cfg, &[]);
        assert_eq!(code, Some(2), "{err}");
        for w in wanted {
            assert!(err.contains(w), "stderr lacks {w:?}: {err}");
        }
    };
    budget(
        &edit(WEAK, r#""batch": 2"#, r#""batch": 4294967295"#),
        &["error: batch: ", "beyond the host budget"],
    );
    budget(
        &edit(SWEEP, r#""batch": 2"#, r#""batch": 4294967295"#),
        &["error: batch: ", "beyond the host budget"],
    );
    budget(
        &edit(TRAIN, r#""n": 20, "d": 30"#, r#""n": 16777216, "d": 4096"#),
        &["error: data.n: ", "beyond the host budget"],
    );
}

/// invariant's batches hold whole paths; a target needs a weak error to size; `--shard`
/// has at most as many shards as a run can have replicas.
#[test]
fn batches_targets_and_shards_are_bounded() {
    let inv = r#"{"experiment": "invariant",
     "model": {"kind": "toy_sgd", "loss": "double_well", "c0": 0.25, "sigma": 100.0},
     "x0": [0.0], "dynamics": ["sgd"], "etas": [0.01], "horizon": 1.0, "paths": 10,
     "sde": {"substeps": 2, "extrapolate": false},
     "invariant": {"bins": 10, "range": [-2.0, 2.0], "batches": 20}, "seed": 1}"#;
    bad(
        inv,
        &[],
        &["error: invariant.batches: must be at most paths = 10"],
    );
    let target = edit(
        WEAK,
        r#""seed": 1"#,
        r#""seed": 1, "target": {"rel_stderr": 0.2, "pilot_paths": 10}"#,
    );
    bad(
        &edit(&target, r#"["sgd", "sme1"]"#, r#"["sme1"]"#),
        &[],
        &["error: target: ", "give none"],
    );
    let (code, err) = run(WEAK, &["--shard", "1/4294967296"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--shard: N must be at most 4294967295"),
        "{err}"
    );
}

/// `compare`'s tolerances are finite and ≥ 0 (a NaN tolerance failed every comparison).
#[test]
fn compare_tolerances_must_be_finite_and_non_negative() {
    for (opt, v) in [
        ("--path-tol", "NaN"),
        ("--se-tol", "-0.5"),
        ("--path-tol", "inf"),
    ] {
        let o = Command::new(BIN)
            .args(["compare", "configs/quickstart.json", opt, v])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(opt) && err.contains("must be a finite number ≥ 0"),
            "{err}"
        );
    }
}
