//! n-point motion (seed 001): SMF reproduces the joint motion of SGD particles driven by
//! the same data; SME, with independent noises per particle, reproduces only each
//! particle's own law. Checked on every available backend, both models.

mod common;
use common::{backends, checked, report};
use smflow::output::report::Correlation;

fn at<'a>(cs: &'a [Correlation], dynamics: &str) -> &'a Correlation {
    cs.iter()
        .find(|c| c.dynamics == dynamics && c.t == 1.0)
        .unwrap_or_else(|| panic!("no {dynamics}"))
}

#[test]
fn smf_reproduces_sgd_two_point_motion_and_sme_does_not() {
    for (model, particles) in [
        (
            r#"{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]}"#,
            "[[1.0],[-0.5]]",
        ),
        (
            r#"{"kind":"multiplicative","mean":1.0,"std":1.0}"#,
            "[[1.0],[0.5]]",
        ),
    ] {
        let ck = checked(&format!(
            r#"{{"experiment":"n_point","model":{model},"particles":{particles},"dynamics":["sgd","smf2","sme2"],
            "batch":2,"etas":[0.1],"horizon":1.0,"paths":40000,"sde":{{"substeps":8,"extrapolate":true}},"seed":3}}"#
        ));
        for b in backends() {
            let r = report(&ck, b.as_ref());
            let (sgd, smf, sme) = (
                at(&r.correlations, "sgd"),
                at(&r.correlations, "smf2"),
                at(&r.correlations, "sme2"),
            );
            // Same data / same noise: the particles move together (|corr| = 1 exactly for
            // these models, up to rounding).
            assert!(
                sgd.correlation.abs() > 0.999,
                "{}: sgd corr {}",
                b.adapter(),
                sgd.correlation
            );
            assert!(
                smf.correlation.abs() > 0.999,
                "{}: smf corr {}",
                b.adapter(),
                smf.correlation
            );
            // Independent noises: uncorrelated within 4 batch-means standard errors.
            assert!(
                sme.correlation.abs() < 4.0 * sme.stderr + 0.01,
                "{}: sme corr {} ± {}",
                b.adapter(),
                sme.correlation,
                sme.stderr
            );
            // E|x1 − x2|²: SMF2 within 5% of SGD (its O(η²) model gap is 2.6% for the
            // quadratic model at η = 0.1), SME2 far away.
            let rel = (smf.mean_dist2 - sgd.mean_dist2).abs() / sgd.mean_dist2;
            assert!(
                rel < 0.05,
                "{}: smf dist2 {} vs sgd {}",
                b.adapter(),
                smf.mean_dist2,
                sgd.mean_dist2
            );
            let z = (sme.mean_dist2 - sgd.mean_dist2)
                / (sme.mean_dist2_stderr.powi(2) + sgd.mean_dist2_stderr.powi(2)).sqrt();
            assert!(
                z > 10.0,
                "{}: sme dist2 {} vs sgd {} (z = {z})",
                b.adapter(),
                sme.mean_dist2,
                sgd.mean_dist2
            );
        }
    }
}

/// n·Var of the ensemble mean of n = 3 particles (the same statistic as width_sweep's
/// for neurons) against closed forms on the quadratic model, where the particles'
/// differences are deterministic under shared data or noise: SGD and SMF give
/// n·Var x (Var x the one-point variance: the Gaussian recursion's, or the OU's), SME
/// with independent noises Var x; gd 0. Exact solver (no discretisation error), every
/// backend, at both checkpoints, within 4 batch-means standard errors.
#[test]
fn ensemble_n_var_matches_closed_forms() {
    use nalgebra::{DMatrix, DVector};
    let q = smflow::model::Quadratic::new(
        DMatrix::from_element(1, 1, 1.5),
        DVector::from_element(1, 0.3),
        DMatrix::from_element(1, 1, 0.64),
    );
    let ck = checked(
        r#"{"experiment":"n_point","model":{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]},
            "particles":[[1.0],[-0.5],[0.3]],"dynamics":["gd","sgd","sme1","smf1","smf2"],"batch":2,
            "etas":[0.1],"horizon":1.0,"checkpoints":[0.5],"paths":100000,"sde":{"solver":"exact"},"seed":5}"#,
    );
    let (eta, batch, n) = (0.1, 2, 3.0);
    for b in backends() {
        let r = report(&ck, b.as_ref());
        assert_eq!(r.ensembles.len(), 5 * 2, "{}", b.adapter());
        for e in &r.ensembles {
            if e.dynamics == "gd" {
                // Deterministic: 0, not a rounding-negative null with a warning.
                assert_eq!((e.n_var, e.n_var_stderr), (0.0, 0.0), "{}", b.adapter());
                continue;
            }
            let steps = (e.t / eta).round() as u32;
            let ou = |c: f64| q.ou_moments(&[1.0], c, eta / batch as f64, e.t).1[(0, 0)];
            let want = match e.dynamics.as_str() {
                "sgd" => n * q.sgd_moments(&[1.0], eta, batch, steps).1[(0, 0)],
                "sme1" => ou(0.0),
                "smf1" => n * ou(0.0),
                "smf2" => n * ou(0.5 * eta),
                other => panic!("{other}"),
            };
            assert_eq!(e.particles, 3);
            let z = (e.n_var - want) / e.n_var_stderr;
            assert!(
                z.abs() < 4.0,
                "{} {} t={}: n·Var {} ± {} vs closed form {want} (z = {z})",
                b.adapter(),
                e.dynamics,
                e.t,
                e.n_var,
                e.n_var_stderr
            );
        }
    }
}
