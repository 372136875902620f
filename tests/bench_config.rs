//! `smflow bench CONFIG`: any experiment timed on each backend, interleaved over rounds,
//! through the same checks and code as `smflow run`, leaving nothing behind; and
//! `smflow compare` on statistics whose standard error is below float rounding.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smflow");

fn config(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

/// `smflow bench ARGS --json …` run in a fresh directory: (output, measurements, the
/// directory's entries afterwards).
fn bench(args: &[&str]) -> (std::process::Output, Vec<serde_json::Value>, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let o = Command::new(BIN)
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let rows = std::fs::read_to_string(&json)
        .map(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).unwrap())
        .unwrap_or_default();
    let entries = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    (o, rows, entries)
}

#[test]
fn every_experiment_family_is_timed_per_backend_and_round() {
    for (file, experiment, paths) in [
        ("quickstart.json", "weak_order", "2000"),
        ("least_squares_risk.json", "least_squares_risk", "8"),
        ("gd_vs_gf.json", "gd_vs_gf", "1"),
        ("width_sweep_quick.json", "width_sweep", "4"),
    ] {
        let (o, rows, entries) = bench(&[
            &config(file),
            "--backend",
            "cpu",
            "--paths",
            paths,
            "--rounds",
            "2",
        ]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(rows.len(), 2, "{file}: one measurement per round: {rows:?}");
        for m in &rows {
            assert_eq!(m["backend"], "cpu", "{file}: {m}");
            assert!(
                m["job"].as_str().unwrap().contains(experiment),
                "{file}: {m}"
            );
            assert_eq!(
                m["paths"].as_u64().unwrap().to_string(),
                paths,
                "{file}: {m}"
            );
            let (rate, s) = (
                m["path_steps_per_second"].as_f64().unwrap(),
                m["seconds"].as_f64().unwrap(),
            );
            assert!(rate > 0.0 && s > 0.0, "{file}: {m}");
            let steps = m["path_steps"].as_f64().unwrap();
            assert!((steps - rate * s).abs() <= 1e-9 * steps, "{file}: {m}");
        }
        assert!(stdout.contains("median cpu"), "{file}: {stdout}");
        // Only the --json file: no runs/ directory, no outputs left.
        assert_eq!(entries, ["bench.json"], "{file}");
    }
}

#[test]
fn the_gpu_is_timed_beside_the_cpu_where_there_is_an_adapter() {
    let devices = Command::new(BIN).arg("devices").output().unwrap();
    if String::from_utf8_lossy(&devices.stdout).contains("no wgpu adapter") {
        eprintln!("skipping: no wgpu adapter");
        return;
    }
    let (o, rows, _) = bench(&[
        &config("quickstart.json"),
        "--paths",
        "2000",
        "--backend",
        "cpu",
        "--backend",
        "gpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let backends: Vec<&str> = rows
        .iter()
        .map(|m| m["backend"].as_str().unwrap())
        .collect();
    assert_eq!(backends, ["cpu", "gpu"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("median gpu") && stdout.contains("× cpu"),
        "{stdout}"
    );
}

#[test]
fn bad_input_exits_2_and_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.json");
    let text = std::fs::read_to_string(config("quickstart.json")).unwrap();
    std::fs::write(&bad, text.replacen("\"horizon\"", "\"horizont\"", 1)).unwrap();
    let bad = bad.to_str().unwrap().to_string();
    let quick = config("quickstart.json");
    for (args, words) in [
        (vec![bad.as_str(), "--backend", "cpu"], "horizont"),
        (
            vec![quick.as_str(), "--backend", "cpu", "--jobs", "sgd"],
            "--jobs",
        ),
        (
            vec![quick.as_str(), "--backend", "cpu", "--rounds", "0"],
            "--rounds",
        ),
        (vec!["--backend", "cpu", "--rounds", "2"], "--rounds"),
    ] {
        let (o, rows, _) = bench(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
        assert!(rows.is_empty(), "{args:?}: measurements written");
    }
}

/// `smflow compare` on n_point: SGD's dist2 on the quadratic is deterministic up to
/// rounding (the data cancel from x₁ − x₂), so its standard error (~1e-9 at 64 paths)
/// is below the GPU's f32 rounding; such statistics are held to the rounding floor, the
/// others to 0.5 standard errors, and the comparison can still fail.
#[test]
fn compare_holds_nearly_deterministic_statistics_to_float_rounding() {
    let devices = Command::new(BIN).arg("devices").output().unwrap();
    if String::from_utf8_lossy(&devices.stdout).contains("no wgpu adapter") {
        eprintln!("skipping: no wgpu adapter");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let compare = |extra: &[&str]| {
        Command::new(BIN)
            .args([
                "compare",
                &config("n_point.json"),
                "--paths",
                "64",
                "--sample",
                "8",
                "--out",
            ])
            .arg(tmp.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let o = compare(&[]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("compare.json")).unwrap())
            .unwrap();
    let stats = c["statistics"].as_array().unwrap();
    let dist2 = stats
        .iter()
        .find(|s| s["dynamics"] == "sgd" && s["observable"] == "dist2[0,1]")
        .unwrap();
    assert_eq!(dist2["within_rounding"], true, "{dist2}");
    assert!(dist2["stderr"].as_f64().unwrap() < 1e-7, "{dist2}");
    for s in stats.iter().filter(|s| s["within_rounding"] == false) {
        assert!(s["diff_in_stderr"].as_f64().unwrap() <= 0.5, "{s}");
    }
    assert!(c["max_diff_in_stderr_beyond_rounding"].as_f64().unwrap() <= 0.5);
    // Paths held to 1e-9 relative cannot agree in f32: exit 1, FAIL.
    let o = compare(&["--path-tol", "1e-9"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// `smflow compare` on invariant: both backends histogram the same paths, so every bin
/// and every TV distance agrees to well within its standard error (a few paths moved
/// across a bin edge by rounding at most), and compare.json lists each histogram.
#[test]
fn compare_checks_invariant_histograms_on_both_backends() {
    let devices = Command::new(BIN).arg("devices").output().unwrap();
    if String::from_utf8_lossy(&devices.stdout).contains("no wgpu adapter") {
        eprintln!("skipping: no wgpu adapter");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args([
            "compare",
            &config("invariant_2d.json"),
            "--paths",
            "2000",
            "--sample",
            "8",
            "--quiet",
            "--out",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("compare.json")).unwrap())
            .unwrap();
    let h = c["histograms"].as_array().unwrap();
    // (sgd, sme1) × (angle, radius).
    assert_eq!(h.len(), 4, "{h:?}");
    for x in h {
        assert_eq!(x["bins"], 36, "{x}");
        let (nc, ng) = (
            x["count_cpu"].as_u64().unwrap(),
            x["count_gpu"].as_u64().unwrap(),
        );
        assert!(nc > 1900 && nc.abs_diff(ng) <= 2, "{x}");
        assert!(x["max_bin_diff_in_stderr"].as_f64().unwrap() <= 0.5, "{x}");
        assert!(x["tv_diff_in_stderr"].as_f64().unwrap() <= 0.5, "{x}");
        assert!(x["tv_cpu"].as_f64().unwrap() > 0.0, "{x}");
    }
    assert_eq!(c["passed"], true);
}
