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

/// The 1-D quadratic model of these tests: a = 1.5, θ ~ N(0.3, 0.8²).
fn quadratic_1d() -> smflow::model::Quadratic {
    use nalgebra::{DMatrix, DVector};
    smflow::model::Quadratic::new(
        DMatrix::from_element(1, 1, 1.5),
        DVector::from_element(1, 0.3),
        DMatrix::from_element(1, 1, 0.64),
    )
}

/// An ensemble's n·Var within 4 of its batch-means standard errors of `want`.
fn assert_n_var_near(e: &smflow::output::report::Ensemble, want: f64, who: &str) {
    let z = (e.n_var - want) / e.n_var_stderr;
    assert!(
        z.abs() < 4.0,
        "{who} {} η={} t={}: n·Var {} ± {} vs closed form {want} (z = {z})",
        e.dynamics,
        e.eta,
        e.t,
        e.n_var,
        e.n_var_stderr
    );
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
    let q = quadratic_1d();
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
            assert_n_var_near(e, want, &b.adapter());
        }
    }
}

/// `"estimator": "coupled"`: each SMF run carries SGD's particles (the sgd run's paths,
/// its stream) and reports SGD − SMF per replica (`paired`); SME's independent noises
/// are not coupled. On the quadratic model the particles' differences are
/// deterministic, so E|x_p − x_q|²'s difference has a closed form: Δ0² (1 − ηa)^{2K}
/// for SGD against the Talay–Tubaro combination of the Euler–Maruyama levels
/// 2 Δ0² (1 − a_c h)^{2n} − Δ0² (1 − 2 a_c h)^{n} for SMF (h = η/S, n = SK; a_c = a, or
/// a(1 + ηa/2) for smf2), with orders 0.99 and 1.91 between η = 0.1 and 0.05. Every
/// paired value also equals the difference of the two runs' own estimates (the partner
/// is the sgd run), pairing cuts the standard error of n·Var's difference, and the
/// coupled SMF keeps its law (its own n·Var within 4 standard errors of n·Var of the
/// OU). Every backend, each against the CPU's values; three particles coupled are 180
/// reduction columns, so the GPU reduces them in slices.
#[test]
fn coupled_n_point_pairs_smf_with_sgd() {
    let ck = checked(
        r#"{"experiment":"n_point","model":{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]},
            "particles":[[1.0],[-0.5],[0.3]],"dynamics":["sgd","smf1","smf2","sme1"],"batch":2,
            "etas":[0.1,0.05],"horizon":1.0,"checkpoints":[0.5],"paths":20000,
            "sde":{"substeps":8,"extrapolate":true},"estimator":"coupled","seed":7}"#,
    );
    let coupled: Vec<_> = smflow::experiment::plan(&ck)
        .runs
        .iter()
        .map(|r| (r.spec.dynamics.name(), r.spec.coupling.is_some()))
        .collect();
    // Per dynamics, one run per η.
    let want: Vec<_> = [
        ("sgd", false),
        ("smf1", true),
        ("smf2", true),
        ("sme1", false),
    ]
    .iter()
    .flat_map(|r| [*r, *r])
    .collect();
    assert_eq!(coupled, want);
    let quadratic = quadratic_1d();
    let (a, s) = (1.5, 8.0);
    let x0 = [1.0, -0.5, 0.3];
    let mut first: Option<Vec<smflow::output::report::Paired>> = None;
    for b in backends() {
        let r = report(&ck, b.as_ref());
        let f32 = b.precision() == smflow::backend::Precision::F32;
        let tol = |x: f64| (if f32 { 1e-5 } else { 1e-10 }) * (1.0 + x.abs());
        // 2 SMF runs × 2 η × 2 checkpoints × (3 pairs × 2 quantities + n·Var).
        assert_eq!(r.paired.len(), 2 * 2 * 2 * 7, "{}", b.adapter());
        for e in r.ensembles.iter().filter(|e| e.dynamics.starts_with("smf")) {
            let c = if e.dynamics == "smf2" {
                0.5 * e.eta
            } else {
                0.0
            };
            let want = 3.0 * quadratic.ou_moments(&[1.0], c, e.eta / 2.0, e.t).1[(0, 0)];
            assert_n_var_near(e, want, &format!("{} coupled", b.adapter()));
        }
        for (dy, lo, hi) in [("smf1", 0.9, 1.1), ("smf2", 1.8, 2.0)] {
            for pq in ["[0,1]", "[0,2]", "[1,2]"] {
                let o = r
                    .orders
                    .iter()
                    .find(|o| {
                        o.pair == ["sgd", dy]
                            && o.observable == format!("mean_dist2{pq}")
                            && o.t == 1.0
                    })
                    .unwrap_or_else(|| panic!("{}: no {dy} mean_dist2{pq} order", b.adapter()));
                assert!(
                    o.order > lo && o.order < hi && o.n_points == 2,
                    "{}: {dy} mean_dist2{pq} order {} from {} points",
                    b.adapter(),
                    o.order,
                    o.n_points
                );
            }
        }
        for e in &r.paired {
            let here = format!(
                "{} {}−{} t={} {} {:?}",
                b.adapter(),
                e.reference,
                e.dynamics,
                e.t,
                e.quantity,
                e.particles
            );
            assert_eq!(e.reference, "sgd", "{here}");
            let corr = |dy: &str| {
                r.correlations
                    .iter()
                    .find(|c| {
                        c.dynamics == dy
                            && c.eta == e.eta
                            && c.t == e.t
                            && Some(c.particles) == e.particles
                    })
                    .unwrap()
            };
            let n_var = |dy: &str| {
                r.ensembles
                    .iter()
                    .find(|c| c.dynamics == dy && c.eta == e.eta && c.t == e.t)
                    .unwrap()
            };
            let (separate, se_sgd, se_smf) = match e.quantity.as_str() {
                "mean_dist2" => {
                    let (g, m) = (corr("sgd"), corr(&e.dynamics));
                    let [p, q] = e.particles.unwrap();
                    let d0 = (x0[p] - x0[q]) * (x0[p] - x0[q]);
                    let (eta, k) = (e.eta, (e.t / e.eta).round());
                    let ac = if e.dynamics == "smf2" {
                        a * (1.0 + 0.5 * eta * a)
                    } else {
                        a
                    };
                    let h = eta / s;
                    let level = |h: f64, n: f64| d0 * (1.0 - ac * h).powf(2.0 * n);
                    let smf = 2.0 * level(h, s * k) - level(2.0 * h, s * k / 2.0);
                    let want = d0 * (1.0 - eta * a).powf(2.0 * k) - smf;
                    assert!(
                        (e.difference - want).abs() <= tol(want),
                        "{here}: {} vs closed form {want}",
                        e.difference
                    );
                    (
                        g.mean_dist2 - m.mean_dist2,
                        g.mean_dist2_stderr,
                        m.mean_dist2_stderr,
                    )
                }
                "correlation" => {
                    let (g, m) = (corr("sgd"), corr(&e.dynamics));
                    (g.correlation - m.correlation, g.stderr, m.stderr)
                }
                "n_var" => {
                    let (g, m) = (n_var("sgd"), n_var(&e.dynamics));
                    // Pairing removes most of SGD's and SMF's common fluctuation.
                    assert!(
                        e.stderr < e.independent_stderr / 3.0,
                        "{here}: paired stderr {} vs independent {}",
                        e.stderr,
                        e.independent_stderr
                    );
                    (g.n_var - m.n_var, g.n_var_stderr, m.n_var_stderr)
                }
                other => panic!("{here}: quantity {other}"),
            };
            assert!(
                (e.difference - separate).abs() <= tol(separate),
                "{here}: paired {} vs the runs' own {separate}",
                e.difference
            );
            assert!(
                (e.independent_stderr - se_sgd.hypot(se_smf)).abs() <= 1e-12,
                "{here}"
            );
        }
        match &first {
            None => first = Some(r.paired.clone()),
            Some(cpu) => {
                for (c, g) in cpu.iter().zip(&r.paired) {
                    assert_eq!(
                        (&c.dynamics, c.t, &c.quantity, c.particles),
                        (&g.dynamics, g.t, &g.quantity, g.particles)
                    );
                    assert!(
                        (c.difference - g.difference).abs() <= 1e-5 * (1.0 + c.difference.abs()),
                        "{}: {} {} {:?}: cpu {} gpu {}",
                        b.adapter(),
                        c.dynamics,
                        c.quantity,
                        c.particles,
                        c.difference,
                        g.difference
                    );
                }
            }
        }
    }
}

/// Paired differences against closed forms where they are random: the multiplicative
/// model R = ½θx², θ ~ N(m, s²), particles 1 and −1/2. Shared data or noise keep the
/// particles' ratio, so x̄ = x₁/4 and |x₁ − x₂|² = 2.25 x₁², and SGD − SMF of n·Var(x̄)
/// is (Var x_K − Var X_t)/8 and of E|x₁ − x₂|² 2.25 (E x_K² − E X_t²), with SGD's
/// moments E x_K = (1 − ηm)^K, E x_K² = ((1 − ηm)² + η²s²/b)^K and SMF's (geometric
/// Brownian motion, drift −m_c x, m_c = m or m(1 + ηm/2) for smf2)
/// E X_t = e^{−m_c t}, E X_t² = e^{(−2m_c + ηs²/b) t}. Every backend, within 4 paired
/// standard errors.
#[test]
fn coupled_n_point_differences_match_geometric_brownian_closed_forms() {
    let ck = checked(
        r#"{"experiment":"n_point","model":{"kind":"multiplicative","mean":2.0,"std":1.5},
            "particles":[[1.0],[-0.5]],"dynamics":["sgd","smf1","smf2"],"batch":2,
            "etas":[0.1],"horizon":1.0,"paths":40000,
            "sde":{"substeps":16,"extrapolate":true},"estimator":"coupled","seed":11}"#,
    );
    let (m, s2, b, eta, t): (f64, f64, f64, f64, f64) = (2.0, 2.25, 2.0, 0.1, 1.0);
    let k = (t / eta).round() as i32;
    let sgd = (
        (1.0 - eta * m).powi(k),
        ((1.0 - eta * m).powi(2) + eta * eta * s2 / b).powi(k),
    );
    let smf = |mc: f64| ((-mc * t).exp(), ((-2.0 * mc + eta * s2 / b) * t).exp());
    for b_ in backends() {
        let r = report(&ck, b_.as_ref());
        // Both correlations are ±1 exactly: no difference beyond rounding to fit.
        // SMF1's distance and SMF2's n·Var differ from SGD's by tens of standard errors.
        for e in r.paired.iter().filter(|e| e.t == t) {
            let resolved = match (e.dynamics.as_str(), e.quantity.as_str()) {
                (_, "correlation") => Some(false),
                ("smf1", "mean_dist2") | ("smf2", "n_var") => Some(true),
                _ => None,
            };
            assert!(
                resolved.is_none_or(|r| r == e.resolved),
                "{} {} {}: {} ± {} resolved {}",
                b_.adapter(),
                e.dynamics,
                e.quantity,
                e.difference,
                e.stderr,
                e.resolved
            );
        }
        let mut n = 0;
        for e in r
            .paired
            .iter()
            .filter(|e| e.t == t && e.quantity != "correlation")
        {
            let mc = if e.dynamics == "smf2" {
                m * (1.0 + 0.5 * eta * m)
            } else {
                m
            };
            let (x1, x2) = smf(mc);
            let want = match e.quantity.as_str() {
                "n_var" => ((sgd.1 - sgd.0 * sgd.0) - (x2 - x1 * x1)) / 8.0,
                "mean_dist2" => 2.25 * (sgd.1 - x2),
                other => panic!("{other}"),
            };
            let z = (e.difference - want) / e.stderr;
            assert!(
                z.abs() < 4.0,
                "{} sgd − {} {}: {} ± {} vs closed form {want} (z = {z})",
                b_.adapter(),
                e.dynamics,
                e.quantity,
                e.difference,
                e.stderr
            );
            n += 1;
        }
        assert_eq!(n, 4, "{}", b_.adapter());
    }
}
