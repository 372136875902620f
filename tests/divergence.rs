//! Diverging paths are counted and excluded, never averaged into NaN, on every backend.

mod common;
use common::{backends, checked, report};

#[test]
fn diverged_paths_are_counted_and_excluded() {
    // |1 − ηθ| with θ ~ N(1, 3²), η = 0.5 often exceeds 2: over 8 steps a few percent of paths
    // leave the bound 50; the GBM models diverge less but some do too.
    let ck = checked(
        r#"{"experiment":"weak_order","model":{"kind":"multiplicative","mean":1.0,"std":3.0},
        "x0":[1.0],"dynamics":["sgd","sme1"],"batch":1,"etas":[0.5],"horizon":4.0,"checkpoints":[1.0],
        "observables":["x0","norm2"],"paths":20000,"sde":{"substeps":4,"extrapolate":false},"diverge_bound":50.0,"seed":9}"#,
    );
    for b in backends() {
        let r = report(&ck, b.as_ref());
        let sgd_end: Vec<_> = r
            .points
            .iter()
            .filter(|p| p.dynamics == "sgd" && p.t == 4.0)
            .collect();
        for p in &r.points {
            assert_eq!(p.count + p.diverged, 20000, "{}: {p:?}", b.adapter());
            assert!(
                p.mean.is_finite() && p.stderr.is_finite(),
                "{}: {p:?}",
                b.adapter()
            );
        }
        assert!(
            sgd_end.iter().all(|p| p.diverged > 100),
            "{}: {sgd_end:?}",
            b.adapter()
        );
        // Once diverged, always diverged: the count cannot fall between checkpoints.
        let early = r
            .points
            .iter()
            .find(|p| p.dynamics == "sgd" && p.t == 1.0)
            .unwrap();
        assert!(early.diverged <= sgd_end[0].diverged);
        assert!(
            r.warnings.iter().any(|w| w.contains("diverged")),
            "{}: {:?}",
            b.adapter(),
            r.warnings
        );
    }
}

/// `compare` does not count a path that diverged on both backends as a deviation, though
/// f32 overflows to inf where f64 is still finite beyond the bound (it failed such runs).
#[test]
fn compare_skips_paths_diverged_on_both_backends() {
    if smflow::backend::gpu::GpuBackend::new(smflow::backend::Precision::F32).is_err() {
        eprintln!("skipping: no wgpu adapter");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("blowup.json");
    std::fs::write(
        &cfg,
        r#"{"experiment": "weak_order", "name": "blowup",
        "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
        "x0": [1.0], "dynamics": ["sgd", "sme2"], "batch": 2, "etas": [10.0, 0.1],
        "horizon": 100.0, "observables": ["x0"], "paths": 256,
        "sde": {"substeps": 8, "extrapolate": true}, "seed": 1}"#,
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_smflow"))
        .arg("compare")
        .arg(&cfg)
        .args(["--sample", "16"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("PASS"), "{out}");

    // But a compare in which every sampled path diverged on both backends compared
    // nothing, and must not pass (it printed PASS with deviation 0).
    std::fs::write(
        &cfg,
        r#"{"experiment": "weak_order", "name": "blowup",
        "model": {"kind": "quadratic", "a": [[1.5]], "mean": [0.3], "cov": [[0.64]]},
        "x0": [1e12], "dynamics": ["sgd", "sme1"], "batch": 2, "etas": [0.2, 0.1],
        "horizon": 1.0, "observables": ["norm2"], "paths": 64,
        "sde": {"substeps": 8, "extrapolate": true}, "seed": 1}"#,
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_smflow"))
        .arg("compare")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no sampled path could be compared"), "{err}");
}
