//! Monte Carlo means against closed forms, on every available backend:
//! SGD on the quadratic model is a Gaussian recursion; SME/SMF are Ornstein–Uhlenbeck
//! (quadratic) or geometric Brownian motion (multiplicative). Tolerance: 4 standard
//! errors (plus the solver's own 95% error bound for Euler–Maruyama runs; with
//! Talay–Tubaro at these substeps that bound is far below one standard error).

mod common;
use common::assert_matches_exact;

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
