//! The CPU backend's hot loops compiled for AVX-512, AVX2 and the portable baseline
//! (`rng::simd`) give the same bits: the normal generator directly, over counter
//! layouts that leave partial chunks and Box–Muller pairs, and whole runs of the
//! binary forced to each level by `SMFLOW_SIMD` (exact partial sums compared).

use smflow::lanes::{Lanes, Lanes32, LANES};
use smflow::rng::simd::{detected, Level};
use smflow::rng::{fill_normals_at, fill_normals_lanes_at, key_from_seed, single};
use std::process::Command;

fn levels() -> Vec<Level> {
    let all = [Level::Scalar, Level::Avx2, Level::Avx512];
    let have: Vec<Level> = all.into_iter().filter(|l| *l <= detected()).collect();
    eprintln!("levels on this CPU: {:?}", have);
    have
}

#[test]
fn every_level_draws_the_same_normals() {
    let key = key_from_seed(0x5EED_0F_5EED);
    for per_step in [1, 2, 3, 4, 5, 8, 9, 33] {
        for n_steps in [1, 7, 64, 129] {
            for (replica, stream, k0) in
                [(0, 0, 0), (12345, 7 << 24, 99), (u32::MAX, u32::MAX, 4000)]
            {
                let draw = |l: Level| {
                    let mut out = vec![0.0; n_steps * per_step];
                    fill_normals_at(l, key, replica, stream, k0, n_steps, per_step, &mut out);
                    out.iter().map(|v| v.to_bits()).collect::<Vec<u64>>()
                };
                let reference = draw(Level::Scalar);
                for l in levels() {
                    assert!(
                        draw(l) == reference,
                        "{l:?} differs from scalar (per_step {per_step}, steps {n_steps}, replica {replica})"
                    );
                }
            }
        }
    }
}

/// The lane-group generator gives lane l exactly replica first + l's normals (wrapping
/// past u32::MAX), at every level, for step sizes that leave partial blocks and pairs.
#[test]
fn lane_groups_draw_each_replicas_normals() {
    let key = key_from_seed(0x5EED_0F_5EED);
    for per_step in [1, 2, 3, 4, 5, 8, 9, 33] {
        for n_steps in [1, 7, 64, 129] {
            for (first, stream, k0) in [(0, 0, 0), (12345, 7 << 24, 99), (u32::MAX - 3, 5, 4000)] {
                let mut want = vec![vec![0.0; n_steps * per_step]; LANES];
                for (l, w) in want.iter_mut().enumerate() {
                    let r = first.wrapping_add(l as u32);
                    fill_normals_at(Level::Scalar, key, r, stream, k0, n_steps, per_step, w);
                }
                for lv in levels() {
                    let mut got = vec![Lanes([f64::NAN; LANES]); n_steps * per_step];
                    fill_normals_lanes_at(lv, key, first, stream, k0, n_steps, per_step, &mut got);
                    for (i, g) in got.iter().enumerate() {
                        for (l, w) in want.iter().enumerate() {
                            assert!(
                                g.0[l].to_bits() == w[i].to_bits(),
                                "{lv:?}: normal {i} of lane {l} (per_step {per_step}, first {first})"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The f32 lane groups (`Lanes32`, 16 replicas): lane l is replica first + l's
/// `rng::single` normals, bit for bit, at every level.
#[test]
fn f32_lane_groups_draw_each_replicas_normals() {
    let key = key_from_seed(0x5EED_0F_5EED);
    for per_step in [1, 2, 3, 5, 8, 9, 33] {
        for n_steps in [1, 7, 64] {
            for (first, stream, k0) in [(0, 0, 0), (u32::MAX - 3, 5, 4000)] {
                for lv in levels() {
                    let mut got = vec![Lanes32([f32::NAN; 16]); n_steps * per_step];
                    fill_normals_lanes_at(lv, key, first, stream, k0, n_steps, per_step, &mut got);
                    for (i, g) in got.iter().enumerate() {
                        let (s, j) = (i / per_step, i % per_step);
                        for l in 0..16 {
                            let r = first.wrapping_add(l as u32);
                            let block =
                                single::normals4([r, k0 + s as u32, (j / 4) as u32, stream], key);
                            assert!(
                                g.0[l].to_bits() == block[j % 4].to_bits(),
                                "{lv:?}: f32 normal {i} of lane {l} (per_step {per_step}, first {first})"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn whole_runs_are_bit_identical_at_every_level() {
    whole_runs_at_every_level("f64");
}

#[test]
fn whole_f32_runs_are_bit_identical_at_every_level() {
    whole_runs_at_every_level("f32");
}

/// Runs `config` (with `"precision"` set) on the CPU backend forced to `level`, checks
/// that results.json names that precision, and returns the output directory.
fn run_at_level(
    dir: &std::path::Path,
    config: &str,
    precision: &str,
    level: Level,
) -> std::path::PathBuf {
    let cfg = dir.join("c.json");
    std::fs::write(&cfg, config.replace("PREC", precision)).unwrap();
    let out = dir.join(level.name());
    let o = Command::new(env!("CARGO_BIN_EXE_smflow"))
        .args([
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
            "--quiet",
            "--force",
            "--out",
        ])
        .arg(&out)
        .env("SMFLOW_SIMD", level.name())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        r["precision"], precision,
        "results.json names the precision that ran"
    );
    out
}

fn whole_runs_at_every_level(precision: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"{"experiment":"weak_order","model":{"kind":"quadratic","a":[[1.2,0.4],[0.4,0.8]],"mean":[0.3,-0.2],"cov":[[0.5,0.2],[0.2,0.9]]},
        "x0":[1.0,0.5],"dynamics":["sgd","sme1","sme2","smf2"],"batch":3,"etas":[0.1,0.05],"horizon":1.0,
        "observables":["norm2","x0"],"paths":2001,"sde":{"substeps":8,"extrapolate":true},"seed":5,"precision":"PREC"}"#;
    let moments = |l: Level| {
        let out = run_at_level(dir.path(), config, precision, l);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("partials.json")).unwrap())
                .unwrap();
        v["moments"].clone()
    };
    let reference = moments(Level::Scalar);
    for l in levels() {
        assert!(
            moments(l) == reference,
            "{l:?}: exact sums differ from the scalar build's"
        );
    }
}

/// Runs `config` at every level in f64 and in f32: `file` of the output is the same at
/// every level, and the f32 one differs from the f64 one.
fn same_file_at_every_level(config: &str, file: &str) {
    let mut by_precision = Vec::new();
    for precision in ["f64", "f32"] {
        let dir = tempfile::tempdir().unwrap();
        let read = |l: Level| {
            let out = run_at_level(dir.path(), config, precision, l);
            std::fs::read_to_string(out.join(file)).unwrap()
        };
        let reference = read(Level::Scalar);
        for l in levels() {
            assert!(
                read(l) == reference,
                "{precision} {l:?}: {file} differs from the scalar build's"
            );
        }
        by_precision.push(reference);
    }
    assert_ne!(
        by_precision[0], by_precision[1],
        "f32 must not give the f64 numbers"
    );
}

#[test]
fn whole_trainer_runs_are_bit_identical_at_every_level() {
    let config = r#"{"experiment":"least_squares_risk","data":{"source":"generate","n":30,"d":7,"label_noise":0.5},
        "model":{"param":"linear"},"dynamics":["gd","sgd","sme2","smf1","sgf"],"etas":[0.05],"batch":3,
        "horizon":2,"checkpoints":[0.5,2],"paths":301,"substeps":2,"seed":9,"precision":"PREC"}"#;
    same_file_at_every_level(config, "risk_mc.csv");
}

/// A mean-field width sweep (sgd, smf1, smf2, mgf; widths 13 and 40; d = 5, so lane
/// chunks of coordinates and samples are partial) gives the same width_sweep.csv at
/// every level, in f64 and in f32, and f32 ≠ f64.
#[test]
fn whole_mean_field_runs_are_bit_identical_at_every_level() {
    let config = r#"{"experiment":"width_sweep","model":{"kind":"two_layer","activation":"tanh","d":5,
        "teacher":{"neurons":3,"a_scale":2.0,"seed":3},"init":{"a_mean":0.0,"a_std":1.0,"w_std":1.0}},
        "data":{"kind":"set","n":11,"label_noise":0.1},"widths":[13,40],"dynamics":["sgd","smf1","smf2","mgf"],
        "etas":[0.1],"batch":3,"horizon":0.5,"checkpoints":[0.5],"paths":24,"substeps":2,
        "test_function":"tanh_a_w1","test_samples":20,"seed":4,"precision":"PREC"}"#;
    same_file_at_every_level(config, "width_sweep.csv");
}
