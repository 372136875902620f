//! Monte Carlo means against closed forms, on every available backend:
//! SGD on the quadratic model is a Gaussian recursion; SME/SMF are Ornstein–Uhlenbeck
//! (quadratic) or geometric Brownian motion (multiplicative). Tolerance: 4 standard
//! errors (plus the solver's own 95% error bound for Euler–Maruyama runs; with
//! Talay–Tubaro at these substeps that bound is far below one standard error).

mod common;
use common::{backends, checked, report};

fn assert_matches_exact(json: &str, min_points: usize) {
    let ck = checked(json);
    for b in backends() {
        let r = report(&ck, b.as_ref());
        let mut n = 0;
        for p in &r.points {
            let Some(exact) = p.exact else { continue };
            let solver = p
                .solver_error
                .map_or(0.0, |e| e.abs() + 2.0 * p.solver_error_stderr.unwrap());
            let tol = 4.0 * p.stderr + solver + 1e-6 * (1.0 + exact.abs());
            assert!(
                (p.mean - exact).abs() <= tol,
                "{}: {} η={} t={} {}: mean {} vs exact {} (|Δ| = {:.3e} > tol {:.3e}, se {:.3e})",
                b.adapter(),
                p.dynamics,
                p.eta,
                p.t,
                p.observable,
                p.mean,
                exact,
                (p.mean - exact).abs(),
                tol,
                p.stderr
            );
            assert_eq!(p.diverged, 0);
            n += 1;
        }
        assert!(
            n >= min_points,
            "{}: only {n} points had closed forms",
            b.adapter()
        );
    }
}

#[test]
fn quadratic_1d_sgd_and_ou_moments() {
    assert_matches_exact(
        r#"{"experiment":"weak_order","model":{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]},
            "x0":[1.0],"dynamics":["gd","sgd","gf","mgf","sme1","sme2","smf1","smf2"],"batch":2,"etas":[0.2,0.05],
            "horizon":1.0,"checkpoints":[0.4],"observables":["norm2","cos","x0","loss"],"paths":100000,
            "sde":{"substeps":8,"extrapolate":true},"seed":11}"#,
        8 * 2 * 2 * 4,
    );
}

#[test]
fn quadratic_2d_exact_solver_moments() {
    assert_matches_exact(
        r#"{"experiment":"weak_order","model":{"kind":"quadratic","a":[[1.5,0.4],[0.4,0.8]],"mean":[0.3,-0.2],"cov":[[0.64,0.2],[0.2,0.5]]},
            "x0":[1.0,0.5],"dynamics":["sgd","sme1","sme2","smf2"],"batch":3,"etas":[0.1],
            "horizon":1.0,"observables":["norm2","cos","loss"],"paths":100000,
            "sde":{"solver":"exact"},"seed":12}"#,
        4 * 3,
    );
}

#[test]
fn multiplicative_sgd_and_gbm_moments() {
    assert_matches_exact(
        r#"{"experiment":"weak_order","model":{"kind":"multiplicative","mean":2.0,"std":1.5},
            "x0":[1.0],"dynamics":["sgd","sme1","sme2","smf1","smf2"],"batch":2,"etas":[0.1],
            "horizon":1.0,"observables":["norm2","x0","cos"],"paths":100000,
            "sde":{"substeps":16,"extrapolate":true},"seed":13}"#,
        2 + 4 * 3,
    );
}

#[test]
fn multiplicative_2d_exact_solver_moments() {
    assert_matches_exact(
        r#"{"experiment":"weak_order","model":{"kind":"multiplicative","mean":1.0,"std":1.0},
            "x0":[0.6,-0.8],"dynamics":["sgd","sme2","smf2"],"batch":1,"etas":[0.1],
            "horizon":1.0,"observables":["norm2","x0","loss"],"paths":100000,
            "sde":{"solver":"exact"},"seed":14}"#,
        3 + 2 * 3,
    );
}
