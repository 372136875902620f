//! Every bad config or command line exits with 2 and one line naming the field
//! (`path.to.field: what is wrong (allowed: …)`), for every experiment; syntax errors
//! are reported as such and never re-parsed as another experiment; step counts beyond
//! u32 are refused instead of hanging. And every shipped config parses and checks.

use std::path::Path;
mod common;
use common::bad_config::{bad, edit, run, SWEEP, TRAIN, WEAK};

#[test]
fn negative_seed_names_seed_and_its_range() {
    bad(
        &edit(WEAK, "\"seed\": 1", "\"seed\": -1"),
        &[],
        &[
            "error: seed: invalid value: integer `-1`, expected u64",
            "(allowed: an integer 0 … 18446744073709551615)",
        ],
    );
}

#[test]
fn seed_beyond_u64_names_seed() {
    bad(
        &edit(WEAK, "\"seed\": 1", "\"seed\": 18446744073709551616"),
        &[],
        &[
            "error: seed: ",
            "allowed: an integer 0 … 18446744073709551615",
        ],
    );
}

#[test]
fn paths_as_a_string_names_paths() {
    bad(
        &edit(WEAK, "\"paths\": 100", "\"paths\": \"50\""),
        &[],
        &[
            "error: paths: invalid type: string \"50\"",
            "allowed: an integer",
        ],
    );
}

#[test]
fn nan_horizon_names_horizon() {
    bad(
        &edit(WEAK, "\"horizon\": 1.0", "\"horizon\": NaN"),
        &[],
        &["error: horizon: ", "NaN/Infinity are not JSON numbers"],
    );
}

#[test]
fn infinite_eta_names_the_entry() {
    bad(
        &edit(WEAK, "[0.2, 0.1]", "[Infinity]"),
        &[],
        &["error: etas[0]: ", "NaN/Infinity are not JSON numbers"],
    );
}

#[test]
fn error_inside_a_tagged_model_keeps_its_path() {
    bad(
        &edit(WEAK, "\"mean\": [0.3]", "\"mean\": \"x\""),
        &[],
        &["error: model.mean: invalid type: string \"x\""],
    );
    bad(
        &edit(WEAK, "\"mean\": [0.3]", "\"mean\": [0.3], \"foo\": 1"),
        &[],
        &["error: model.foo: unknown field `foo` (allowed: a, mean, cov)"],
    );
}

#[test]
fn unknown_sampling_names_the_field_and_the_variants() {
    bad(
        &edit(
            TRAIN,
            "\"batch\": 1",
            "\"batch\": 1, \"sampling\": \"shuffle\"",
        ),
        &[],
        &["error: sampling: unknown variant `shuffle` (allowed: replacement, epochs)"],
    );
}

#[test]
fn training_syntax_error_is_not_reparsed_as_weak_order() {
    let (code, err) = run(&edit(TRAIN, "\"paths\": 2,", "\"paths\": 2"), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("error: config: JSON syntax error at line 5"),
        "{err}"
    );
    assert!(!err.contains("unknown field"), "{err}");
}

#[test]
fn training_unknown_field_is_named() {
    bad(
        &edit(TRAIN, "\"batch\": 1", "\"batch\": 1, \"bogus\": 1"),
        &[],
        &["error: bogus: unknown field `bogus` (allowed: experiment, name, data,"],
    );
}

#[test]
fn training_data_errors_keep_their_path() {
    bad(
        &edit(TRAIN, "\"n\": 20", "\"n\": -3"),
        &[],
        &["error: data.n: invalid value: integer `-3`, expected usize"],
    );
    // The `file` variant rejects unknown keys too.
    bad(
        &edit(
            TRAIN,
            r#"{"source": "generate", "n": 20, "d": 30, "sparsity": 3}"#,
            r#"{"source": "file", "path": "x.csv", "bogus": 1}"#,
        ),
        &[],
        &["error: data.bogus: unknown field `bogus` (allowed: path, teacher)"],
    );
}

#[test]
fn negative_converge_tolerance_is_refused() {
    bad(
        &edit(
            TRAIN,
            "\"batch\": 1",
            "\"batch\": 1, \"converge_tolerance\": -1",
        ),
        &[],
        &["error: converge_tolerance: must be a finite number > 0"],
    );
}

#[test]
fn width_sweep_syntax_error_and_wrong_field() {
    let (code, err) = run(&edit(SWEEP, "\"batch\": 2,", "\"batch\": 2"), &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("error: config: JSON syntax error at line"),
        "{err}"
    );
    assert!(!err.contains("unknown"), "{err}");
    bad(
        &edit(SWEEP, "\"widths\"", "\"widht\""),
        &[],
        &["error: widht: unknown field `widht` (allowed: experiment, name, model, data, widths,"],
    );
}

#[test]
fn width_sweep_unknown_keys_in_nested_objects_are_named() {
    bad(
        &edit(
            SWEEP,
            "\"label_noise\": 0.1",
            "\"label_noise\": 0.1, \"teacher\": {}",
        ),
        &[],
        &["error: data.teacher: unknown field `teacher` (allowed: n, label_noise, seed)"],
    );
    bad(
        &edit(SWEEP, "\"seed\": 3", "\"seed\": 3, \"bogus\": 1"),
        &[],
        &["error: model.teacher.bogus: unknown field `bogus`"],
    );
    bad(
        &edit(SWEEP, "\"n\": 16", "\"n\": \"x\""),
        &[],
        &["error: data.n: invalid type: string \"x\""],
    );
}

#[test]
fn unknown_experiment_lists_every_experiment() {
    bad(
        &edit(WEAK, "weak_order", "shuffle_sweep"),
        &[],
        &[
            "error: experiment: unknown experiment \"shuffle_sweep\"",
            "(allowed: weak_order, n_point, invariant, least_squares_risk, implicit_bias_sweep, gd_vs_gf, width_sweep)",
        ],
    );
}

#[test]
fn missing_experiment_says_so() {
    bad(
        &edit(WEAK, "\"experiment\": \"weak_order\",", ""),
        &[],
        &[
            "error: experiment: missing (allowed: weak_order,",
            "width_sweep",
        ],
    );
}

const TINY: &str = "1.16415321826934814453125e-10"; // 2^-33

#[test]
fn step_counts_beyond_u32_are_refused_weak_order() {
    bad(
        &edit(WEAK, "[0.2, 0.1]", &format!("[{TINY}]")),
        &[],
        &[
            "error: etas[0]: ",
            "gives 8589934592 steps to the horizon",
            "4294967295",
        ],
    );
}

#[test]
fn step_counts_beyond_u32_are_refused_training() {
    bad(
        &edit(TRAIN, "[0.1]", &format!("[{TINY}]")),
        &[],
        &["error: etas[0]: ", "gives 8589934592 steps to the horizon"],
    );
}

#[test]
fn step_counts_beyond_u32_are_refused_width_sweep() {
    bad(
        &edit(
            edit(SWEEP, "[0.1]", &format!("[{TINY}]")).as_str(),
            "0.2,",
            "1,",
        ),
        &[],
        &["error: etas[0]: ", "gives 8589934592 steps to the horizon"],
    );
}

/// Epochs need a finite set, and an epoch position k·b + j fits one counter word.
#[test]
fn width_sweep_epochs_need_a_set_and_fewer_than_2_32_draws() {
    let epochs = edit(
        SWEEP,
        r#""batch": 2,"#,
        r#""batch": 2, "sampling": "epochs","#,
    );
    bad(
        &edit(
            &epochs,
            r#"{"kind": "set", "n": 16, "label_noise": 0.1}"#,
            r#"{"kind": "stream"}"#,
        ),
        &[],
        &[
            "error: sampling: ",
            "needs a finite data set",
            "\"replacement\"",
        ],
    );
    bad(
        &edit(
            &edit(&epochs, "[0.1]", "[1e-9]").replace("0.2,", "2,"),
            "\"batch\": 2",
            "\"batch\": 4",
        ),
        &[],
        &["error: horizon: ", "horizon/η × batch must stay below 2^32"],
    );
}

#[test]
fn bad_paths_and_seed_options_name_the_option() {
    for p in ["-5", "0"] {
        bad(
            WEAK,
            &["--paths", p],
            &["'--paths <PATHS>'", "must be a whole number 1 … 4294967295"],
        );
    }
    bad(
        WEAK,
        &["--seed", "-1"],
        &["'--seed <SEED>'", "0 … 18446744073709551615"],
    );
    // Allowed by the option, refused by the experiment: still named as the option.
    bad(
        SWEEP,
        &["--paths", "1"],
        &["error: --paths: must be in 2 …"],
    );
}

/// Every file in configs/ parses and checks with its experiment's checker.
#[test]
fn shipped_configs_parse_and_check() {
    use smflow::config::parse::{experiment, json, Overrides};
    use smflow::config::Family;
    use smflow::experiment::training::config as training;
    use smflow::experiment::width_sweep::config as sweep;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let ctx = path.display().to_string();
        let value = json(&text).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let kind = experiment(&value).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let o = Overrides::default();
        let r = match kind.family() {
            Family::Training => {
                training::parse(value, o).and_then(|c| training::check(c, "t").map(|_| ()))
            }
            Family::WidthSweep => {
                sweep::parse(value, o).and_then(|c| sweep::check(c, "t").map(|_| ()))
            }
            Family::SmallD => smflow::experiment::config::load(value, "t", o).map(|_| ()),
        };
        r.unwrap_or_else(|e| panic!("{ctx}: {e}"));
        n += 1;
    }
    assert!(n >= 12, "only {n} configs found in {}", dir.display());
}

/// One dynamics enum serves every engine; each engine's config refuses the dynamics it
/// does not run and lists the ones it does.
#[test]
fn a_dynamics_of_another_engine_is_refused_with_the_allowed_names() {
    bad(
        &edit(WEAK, "\"sme1\"]", "\"sgf\"]"),
        &[],
        &[
            "error: dynamics[1]: unknown dynamics \"sgf\"; allowed: gd, sgd, gf, mgf, sme1, sme2, smf1, smf2",
        ],
    );
    bad(
        &edit(SWEEP, "[\"sgd\"]", "[\"sme1\"]"),
        &[],
        &["error: dynamics[0]: unknown dynamics \"sme1\"; allowed: sgd, gd, gf, smf1, mgf, smf2"],
    );
}

/// Experiments that run whole refuse `--shard` with one message, naming the experiment
/// (implicit_bias_sweep, least_squares_risk, width_sweep and invariant shard:
/// tests/train_shard.rs).
#[test]
fn shard_is_refused_by_the_experiments_that_run_whole() {
    // gd_vs_gf refuses the fields it does not read (batch, datasets).
    let gd_vs_gf = edit(TRAIN, "implicit_bias_sweep", "gd_vs_gf")
        .replace(r#""batch": 1, "#, "")
        .replace(r#""datasets": 1, "#, "");
    for (cfg, name) in [(gd_vs_gf.as_str(), "gd_vs_gf")] {
        bad(
            cfg,
            &["--shard", "1/2"],
            &[&format!(
                "error: --shard: not available for experiment \"{name}\" (run it whole"
            )],
        );
    }
}
