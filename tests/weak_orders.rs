//! Fitted weak orders (CPU reference): sgd–sme1 ≈ 1, sgd–sme2 ≈ sgd–smf2 ≈ 2.
//! Step sizes are chosen from the closed-form errors so every point is resolved
//! (error > 3 se) at these path counts, in the asymptotic regime (the exact error
//! ratios between consecutive η give local slopes within 0.1 of the order).

mod common;
use common::{checked, report};
use smflow::backend::cpu::CpuBackend;

fn order(r: &smflow::output::report::Report, b: &str, obs: &str) -> (f64, usize) {
    let o = r
        .orders
        .iter()
        .find(|o| o.pair[0] == "sgd" && o.pair[1] == b && o.observable == obs && o.t == 1.0)
        .unwrap_or_else(|| {
            panic!(
                "no fitted order for sgd–{b} {obs}; warnings: {:?}",
                r.warnings
            )
        });
    (o.order, o.n_points)
}

#[test]
fn quadratic_orders() {
    // Order 1: η ≤ 0.1 (local slopes 0.91, 0.96). Exact SDE solver keeps this fast.
    let r1 = report(
        &checked(
            r#"{"experiment":"weak_order","model":{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]},
            "x0":[1.0],"dynamics":["sgd","sme1"],"batch":2,"etas":[0.1,0.05,0.025],"horizon":1.0,
            "observables":["norm2","cos"],"paths":200000,"sde":{"solver":"exact"},"seed":21}"#,
        ),
        &CpuBackend::default(),
    );
    for obs in ["norm2", "cos"] {
        let (p, n) = order(&r1, "sme1", obs);
        assert!(
            (0.8..=1.2).contains(&p) && n == 3,
            "sgd–sme1 {obs}: order {p} from {n} points"
        );
    }
    // Order 2: errors 8.5e-3, 2.0e-3, 4.7e-4 (norm2) need ~2e6 paths at η = 0.05.
    let r2 = report(
        &checked(
            r#"{"experiment":"weak_order","model":{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]},
            "x0":[1.0],"dynamics":["sgd","sme2","smf2"],"batch":2,"etas":[0.2,0.1,0.05],"horizon":1.0,
            "observables":["norm2","cos"],"paths":2000000,"sde":{"solver":"exact"},"seed":22}"#,
        ),
        &CpuBackend::default(),
    );
    for b in ["sme2", "smf2"] {
        for obs in ["norm2", "cos"] {
            let (p, n) = order(&r2, b, obs);
            assert!(
                (1.7..=2.3).contains(&p) && n >= 2,
                "sgd–{b} {obs}: order {p} from {n} points"
            );
        }
    }
}

#[test]
fn multiplicative_orders_with_euler_maruyama() {
    // E x0 under SGD vs GBM: errors 5.8e-2 … 6.8e-3 (sme1), 1.3e-2 … 8.8e-4 (sme2).
    let r = report(
        &checked(
            r#"{"experiment":"weak_order","model":{"kind":"multiplicative","mean":2.0,"std":1.5},
            "x0":[1.0],"dynamics":["sgd","sme1","sme2","smf2"],"batch":2,"etas":[0.2,0.1,0.05],"horizon":1.0,
            "observables":["x0"],"paths":200000,"sde":{"substeps":8,"extrapolate":true},"seed":23}"#,
        ),
        &CpuBackend::default(),
    );
    let (p, _) = order(&r, "sme1", "x0");
    assert!((0.8..=1.2).contains(&p), "sgd–sme1: order {p}");
    for b in ["sme2", "smf2"] {
        let (p, n) = order(&r, b, "x0");
        assert!(
            (1.7..=2.3).contains(&p) && n >= 2,
            "sgd–{b}: order {p} from {n}"
        );
    }
    // The solver's error must be small against these weak errors.
    assert!(
        r.weak_errors
            .iter()
            .filter(|w| w.resolved && w.t == 1.0)
            .all(|w| w.solver_ok),
        "{:?}",
        r.warnings
    );
}
