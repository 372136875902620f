//! The coupled weak-error estimator (DESIGN §7b): SGD's data normals pin the SDE's
//! Brownian increments over each step, so the per-replica difference D is tiny while
//! each run keeps its law. Tolerances are k standard errors of the estimate at hand.

mod common;
use common::{checked, collect, report};
use smflow::backend::cpu::CpuBackend;
use smflow::backend::Backend;
use smflow::experiment::{plan, Shard};
use smflow::output::report::{Point, Report, WeakError};

/// Quadratic model (OU), every SDE dynamics, η = 2^-3 … 2^-7.
fn quadratic(extra: &str) -> String {
    format!(
        r#"{{"experiment":"weak_order","model":{{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]}},
        "x0":[1.0],"dynamics":["sgd","sme1","sme2","smf1","smf2"],"batch":2,
        "etas":[0.125,0.0625,0.03125,0.015625,0.0078125],"horizon":1.0,
        "observables":["norm2","cos","x0"],"sde":{{"substeps":8,"extrapolate":true}},"seed":31{extra}}}"#
    )
}

/// A 2-D quadratic with a non-diagonal A and covariance (factor A S^{1/2} ≠ Σ^{1/2}).
fn quadratic_2d(extra: &str) -> String {
    format!(
        r#"{{"experiment":"weak_order","model":{{"kind":"quadratic","a":[[1.2,0.4],[0.4,0.8]],"mean":[0.3,-0.2],"cov":[[0.5,0.2],[0.2,0.9]]}},
        "x0":[1.0,0.5],"dynamics":["sgd","sme1","sme2","smf2"],"batch":3,
        "etas":[0.1,0.05],"horizon":1.0,
        "observables":["norm2","x0","loss"],"sde":{{"substeps":16,"extrapolate":true}},"seed":32{extra}}}"#
    )
}

/// Multiplicative model (geometric BM), sme1 and sme2.
fn multiplicative(extra: &str) -> String {
    format!(
        r#"{{"experiment":"weak_order","model":{{"kind":"multiplicative","mean":2.0,"std":1.5}},
        "x0":[1.0],"dynamics":["sgd","sme1","sme2","smf2"],"batch":2,
        "etas":[0.1,0.05,0.025],"horizon":1.0,
        "observables":["x0","norm2"],"sde":{{"substeps":8,"extrapolate":true}},"seed":33{extra}}}"#
    )
}

fn point<'a>(r: &'a Report, d: &str, eta: f64, obs: &str) -> &'a Point {
    r.points
        .iter()
        .find(|p| p.dynamics == d && p.eta == eta && p.observable == obs && p.t == 1.0)
        .unwrap_or_else(|| panic!("no point {d} η={eta} {obs}"))
}

/// The Euler–Maruyama bias a point may legitimately carry: its solver-error estimate
/// plus 2 of that estimate's standard errors.
fn solver_allowance(p: &Point) -> f64 {
    p.solver_error.unwrap_or(0.0).abs() + 2.0 * p.solver_error_stderr.unwrap_or(0.0)
}

fn errors(r: &Report) -> impl Iterator<Item = &WeakError> {
    r.weak_errors.iter().filter(|e| e.t == 1.0)
}

/// Each coupled weak error agrees with the closed-form E g_sde − E g_sgd within 4
/// standard errors of the estimate plus 2 of the solver's own error estimate (the
/// Euler–Maruyama bias the estimate legitimately carries).
fn check_against_closed_form(r: &Report) {
    let mut n = 0;
    for e in errors(r) {
        assert_eq!(e.estimator, "coupled", "{e:?}");
        let a = point(r, &e.pair[0], e.eta, &e.observable);
        let b = point(r, &e.pair[1], e.eta, &e.observable);
        let (Some(xa), Some(xb)) = (a.exact, b.exact) else {
            continue;
        };
        let exact = xb - xa;
        let solver = solver_allowance(b);
        let dev = (e.signed - exact).abs();
        eprintln!(
            "{}–{} η={} {}: coupled {:.6e} ± {:.2e}, exact {:.6e}, {:.2} se (solver {:.1e})",
            e.pair[0],
            e.pair[1],
            e.eta,
            e.observable,
            e.signed,
            e.stderr,
            exact,
            dev / e.stderr,
            solver
        );
        assert!(
            dev <= 4.0 * e.stderr + solver,
            "{}–{} η={} {}: coupled {} ± {}, exact {exact}",
            e.pair[0],
            e.pair[1],
            e.eta,
            e.observable,
            e.signed,
            e.stderr
        );
        n += 1;
    }
    assert!(n >= 6, "only {n} weak errors with a closed form");
}

#[test]
fn coupled_errors_match_the_closed_form() {
    let cpu = CpuBackend::default();
    check_against_closed_form(&report(&checked(&quadratic(r#","paths":20000"#)), &cpu));
    check_against_closed_form(&report(&checked(&quadratic_2d(r#","paths":20000"#)), &cpu));
    check_against_closed_form(&report(
        &checked(&multiplicative(r#","paths":20000"#)),
        &cpu,
    ));
}

/// The SDE marginal of a coupled run (its points) has the exact SDE law: E|x|² and
/// E x₀ within 4 standard errors of the OU / GBM moments. A bridge with the wrong
/// scaling (increments that do not sum to sqrt(η) ζ with the right variance) changes
/// E|x|² by far more than that.
#[test]
fn coupling_keeps_the_sde_law() {
    let cpu = CpuBackend::default();
    for cfg in [
        quadratic(r#","paths":40000"#),
        quadratic_2d(r#","paths":40000"#),
        multiplicative(r#","paths":40000"#),
    ] {
        let r = report(&checked(&cfg), &cpu);
        let mut n = 0;
        for p in r
            .points
            .iter()
            .filter(|p| p.dynamics.starts_with("sm") && p.t == 1.0)
        {
            let Some(x) = p.exact else { continue };
            let solver = solver_allowance(p);
            assert!(
                (p.mean - x).abs() <= 4.0 * p.stderr + solver,
                "{} η={} {}: coupled SDE marginal {} ± {}, exact {x}",
                p.dynamics,
                p.eta,
                p.observable,
                p.mean,
                p.stderr
            );
            n += 1;
        }
        assert!(n >= 6, "only {n} SDE points with a closed form");
    }
}

/// Variance reduction ≥ 100 at η ≤ 2^-5, and the fitted orders in band from 2·10^4
/// paths: sgd–sme1 and sgd–smf1 ≈ 1, sgd–sme2 and sgd–smf2 ≈ 2.
#[test]
fn coupled_orders_from_few_paths() {
    let r = report(
        &checked(&quadratic(r#","paths":20000"#)),
        &CpuBackend::default(),
    );
    for e in errors(&r).filter(|e| e.eta <= 0.03125 && e.observable == "norm2") {
        let vr = e.variance_reduction.expect("coupled errors report it");
        assert!(
            vr >= 100.0,
            "{}–{} η={}: variance reduction {vr}",
            e.pair[0],
            e.pair[1],
            e.eta
        );
    }
    for (b, band) in [
        ("sme1", 0.9..=1.2),
        ("smf1", 0.9..=1.2),
        ("sme2", 1.8..=2.2),
        ("smf2", 1.8..=2.2),
    ] {
        let o = r
            .orders
            .iter()
            .find(|o| o.pair[1] == b && o.observable == "norm2" && o.t == 1.0)
            .unwrap_or_else(|| panic!("no order for sgd–{b}: {:?}", r.warnings));
        eprintln!(
            "sgd–{b} norm2: order {:.3} ± {:.3} from {} points",
            o.order, o.stderr, o.n_points
        );
        assert!(
            band.contains(&o.order) && o.n_points == 5,
            "sgd–{b}: order {} from {}",
            o.order,
            o.n_points
        );
    }
}

/// Coupled and independent estimates of the same weak error agree within 4 combined
/// standard errors; the independent ones say so and report no variance reduction.
#[test]
fn coupled_and_independent_estimates_agree() {
    let cpu = CpuBackend::default();
    let c = report(&checked(&multiplicative(r#","paths":20000"#)), &cpu);
    let i = report(
        &checked(&multiplicative(
            r#","paths":200000,"estimator":"independent""#,
        )),
        &cpu,
    );
    let mut n = 0;
    for (ec, ei) in errors(&c).zip(errors(&i)) {
        assert_eq!(
            (&ec.pair, ec.eta, &ec.observable),
            (&ei.pair, ei.eta, &ei.observable)
        );
        assert_eq!(ei.estimator, "independent");
        assert!(ei.variance_reduction.is_none());
        let se = (ec.stderr.powi(2) + ei.stderr.powi(2)).sqrt();
        assert!(
            (ec.signed - ei.signed).abs() <= 4.0 * se,
            "{}–{} η={} {}: coupled {} ± {}, independent {} ± {}",
            ec.pair[0],
            ec.pair[1],
            ec.eta,
            ec.observable,
            ec.signed,
            ec.stderr,
            ei.signed,
            ei.stderr
        );
        // The point of coupling: a far smaller stderr from 10× fewer paths.
        assert!(
            ec.stderr < ei.stderr,
            "coupled stderr {} ≥ independent {}",
            ec.stderr,
            ei.stderr
        );
        n += 1;
    }
    assert!(n >= 9);
}

/// SGD inside a coupled run is the independent SGD run, replica by replica: the
/// coupled run's SGD statistics equal the sgd run's exactly (same sums, same counts).
#[test]
fn the_coupled_sgd_partner_is_the_sgd_run() {
    let ck = checked(&quadratic_2d(r#","paths":3000"#));
    let p = plan(&ck);
    let col = collect(&ck, &CpuBackend::default(), Shard::WHOLE);
    let mut checked_runs = 0;
    for (ri, run) in p.runs.iter().enumerate() {
        let Some(c) = run.spec.coupling else { continue };
        let sgd = p
            .runs
            .iter()
            .position(|r| r.spec.stream == c.sgd_stream)
            .expect("the sgd run it is coupled to");
        let (mine, theirs) = (col.total(ri), col.total(sgd));
        let n_obs = run.spec.observables.len();
        for cp in 0..run.spec.checkpoints.len() {
            for o in 0..n_obs {
                let a = &mine[cp * run.spec.n_stats() + n_obs + o];
                let b = &theirs[cp * n_obs + o];
                assert_eq!(a.count, b.count);
                assert_eq!(
                    (a.s1.value().to_bits(), a.s2.value().to_bits()),
                    (b.s1.value().to_bits(), b.s2.value().to_bits()),
                    "{} η={}: coupled sgd sums differ from the sgd run's",
                    run.spec.dynamics,
                    run.spec.eta
                );
            }
        }
        checked_runs += 1;
    }
    assert_eq!(checked_runs, 6, "3 SDE dynamics × 2 step sizes are coupled");
}

fn bits(c: &smflow::experiment::Collected) -> Vec<Vec<Vec<smflow::stats::MomentsParts>>> {
    c.to_parts()
}

/// Shards merged equal one run, and chunk sizes 1, 7 and the default give identical
/// statistics (exact sums).
#[test]
fn coupled_statistics_do_not_depend_on_shards_or_chunks() {
    let ck = checked(&quadratic_2d(r#","paths":700"#));
    let whole = bits(&collect(&ck, &CpuBackend::default(), Shard::WHOLE));
    for chunk in [1, 7] {
        assert!(
            bits(&collect(&ck, &CpuBackend::with_chunk(chunk), Shard::WHOLE)) == whole,
            "chunk {chunk}"
        );
    }
    let mut merged = collect(&ck, &CpuBackend::default(), Shard { index: 0, count: 3 });
    for i in 1..3 {
        merged.merge(&collect(
            &ck,
            &CpuBackend::default(),
            Shard { index: i, count: 3 },
        ));
    }
    assert!(
        bits(&merged) == whole,
        "3 shards merged differ from one run"
    );
}

/// GPU (llvmpipe in CI) pairs agree with CPU pairs path by path (f32 rounding), and the
/// coupled weak errors within a standard error.
#[test]
fn gpu_coupled_pairs_match_the_cpu() {
    let backends = common::backends();
    if backends.len() < 2 {
        return;
    }
    let ck = checked(&quadratic_2d(r#","paths":4096"#));
    let p = plan(&ck);
    for run in p.runs.iter().filter(|r| r.spec.coupling.is_some()) {
        let c = backends[0]
            .final_states(&ck.model, &run.spec, 0..256)
            .unwrap();
        let g = backends[1]
            .final_states(&ck.model, &run.spec, 0..256)
            .unwrap();
        let dev = c
            .iter()
            .zip(&g)
            .map(|(x, y)| (x - y).abs() / (1.0 + x.abs()))
            .fold(0.0, f64::max);
        assert!(
            dev < 1e-4,
            "{} η={}: path deviation {dev}",
            run.spec.dynamics,
            run.spec.eta
        );
    }
    let rc = report(&ck, backends[0].as_ref());
    let rg = report(&ck, backends[1].as_ref());
    for (ec, eg) in rc.weak_errors.iter().zip(&rg.weak_errors) {
        assert_eq!(eg.estimator, "coupled");
        assert!(
            (ec.signed - eg.signed).abs() <= ec.stderr,
            "{}–{} η={} {}: cpu {} gpu {} (se {})",
            ec.pair[0],
            ec.pair[1],
            ec.eta,
            ec.observable,
            ec.signed,
            eg.signed,
            ec.stderr
        );
    }
}

/// Where coupling does not apply the default is independent, and asking for it is an
/// error naming the field.
#[test]
fn estimator_config() {
    let exact = checked(
        &quadratic(r#","paths":10,"sde":{"solver":"exact"}"#)
            .replace(r#""sde":{"substeps":8,"extrapolate":true},"#, ""),
    );
    assert_eq!(
        exact.estimator,
        smflow::experiment::config::Estimator::Independent
    );
    let bad = |extra: &str, cfg: &str| {
        let e = smflow::experiment::config::parse(cfg, "t")
            .err()
            .unwrap_or_else(|| panic!("accepted {extra}"));
        e.to_string()
    };
    let e = bad(
        "coupled + exact",
        &quadratic(r#","paths":10,"estimator":"coupled","sde":{"solver":"exact"}"#)
            .replace(r#""sde":{"substeps":8,"extrapolate":true},"#, ""),
    );
    assert!(e.contains("estimator") && e.contains("em"), "{e}");
    let e = bad(
        "unknown",
        &quadratic(r#","paths":10,"estimator":"antithetic""#),
    );
    assert!(
        e.contains("estimator") && e.contains("allowed: coupled, independent"),
        "{e}"
    );
    // n_point pairs its SMF runs with SGD when asked (tests/n_point.rs), and is
    // independent by default; invariant has no estimator.
    let npoint = r#"{"experiment":"n_point","model":{"kind":"quadratic","a":[[1.5]],"mean":[0.3],"cov":[[0.64]]},
        "particles":[[1.0],[-0.5]],"dynamics":["sgd","smf1"],"etas":[0.1],"horizon":1.0,"paths":10"#;
    assert_eq!(
        checked(&format!(r#"{npoint},"estimator":"coupled"}}"#)).estimator,
        smflow::experiment::config::Estimator::Coupled
    );
    assert_eq!(
        checked(&format!("{npoint}}}")).estimator,
        smflow::experiment::config::Estimator::Independent
    );
    // Nothing to pair: SME's and msme1's particles have independent noises.
    for dynamics in [
        r#"["sgd","sme1"]"#,
        r#"["smf1","smf2"]"#,
        r#"["msgd","msme1"]"#,
    ] {
        let cfg = npoint.replace(r#"["sgd","smf1"]"#, dynamics)
            + r#","estimator":"coupled","momentum":{"friction":1.0}}"#;
        let e = bad(dynamics, &cfg);
        assert!(
            e.contains("estimator") && e.contains("smf1 and smf2 runs with sgd"),
            "{dynamics}: {e}"
        );
    }
    let invariant = r#"{"experiment":"invariant","model":{"kind":"toy_sgd","loss":"double_well","c0":0.25,"sigma":100.0},
        "x0":[1.0],"dynamics":["sgd","sme1"],"etas":[0.1],"horizon":1.0,"paths":10,"estimator":"coupled",
        "invariant":{"bins":10,"range":[-2.0,2.0],"batches":2}}"#;
    let e = bad("invariant", invariant);
    assert!(
        e.contains("estimator") && e.contains("only weak_order and n_point"),
        "{e}"
    );
}

/// A target precision: the pilot chooses the paths per η, and the final run meets
/// stderr ≤ rel_stderr·|error| at every η (within 1.5×: the pilot's variance estimate
/// is itself random), using exactly the paths it reports.
#[test]
fn target_precision_chooses_paths_per_eta() {
    use smflow::experiment::{analyze, execute, target::targeted_plan, RunMeta};
    // E x only: this model's order-2 error in E|x|² nearly vanishes (the pilot cannot
    // resolve it, so it would ask for the cap everywhere).
    let ck = checked(
        &multiplicative(r#","paths":50000,"target":{"rel_stderr":0.05,"pilot_paths":4000}"#)
            .replace(r#""observables":["x0","norm2"]"#, r#""observables":["x0"]"#),
    );
    let cpu = CpuBackend::default();
    let (p, t) = targeted_plan(&ck, &cpu, &|_| {}).unwrap();
    eprintln!("paths wanted {:?}, run {:?}", t.paths_wanted, t.paths_run);
    assert_eq!(t.paths_run.len(), 3);
    assert!(t.paths_run.iter().all(|&n| (2..=50000).contains(&n)));
    assert!(
        t.paths_wanted.iter().any(|w| w.is_some()),
        "the pilot resolved nothing"
    );
    let meta = RunMeta {
        backend: "cpu".into(),
        adapter: cpu.adapter(),
        precision: "f64".into(),
        shard: None,
    };
    let r = analyze(
        &p,
        &execute(&p, &cpu, Shard::WHOLE, &|_| {}).unwrap(),
        &meta,
    );
    for e in errors(&r) {
        let i = ck.etas.iter().position(|&x| x == e.eta).unwrap();
        if t.paths_wanted[i].is_some_and(|w| w <= t.paths_run[i] as f64) {
            assert!(
                e.stderr <= 1.5 * 0.05 * e.error,
                "{}–{} η={} {}: stderr {} vs error {} with {} paths",
                e.pair[0],
                e.pair[1],
                e.eta,
                e.observable,
                e.stderr,
                e.error,
                t.paths_run[i]
            );
        }
    }
    for pt in r.points.iter().filter(|p| p.dynamics != "gd") {
        let i = ck.etas.iter().position(|&x| x == pt.eta).unwrap();
        assert_eq!(
            pt.count + pt.diverged,
            t.paths_run[i],
            "{} η={}",
            pt.dynamics,
            pt.eta
        );
    }
}

#[test]
fn target_config_errors_name_the_field() {
    let e = smflow::experiment::config::parse(
        &quadratic(r#","paths":1000,"target":{"rel_stderr":0.1,"pilot_paths":5000}"#),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("target.pilot_paths"), "{e}");
    let e = smflow::experiment::config::parse(
        &quadratic(r#","paths":1000,"target":{"rel_stderr":-1}"#),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("target.rel_stderr"), "{e}");
}

/// toy_sgd (state-dependent noise sqrt(σ f) ξ): coupled and independent estimates of
/// sgd–sme1 and sgd–sme2 agree within 4 combined standard errors, and the coupling
/// reduces the variance.
#[test]
fn toy_sgd_coupling_agrees_with_independent_sampling() {
    let cfg = |extra: &str| {
        format!(
            r#"{{"experiment":"weak_order","model":{{"kind":"toy_sgd","loss":"double_well","c0":0.25,"sigma":2.0}},
            "x0":[0.5],"dynamics":["sgd","sme1","sme2"],"batch":1,"etas":[0.05,0.025],"horizon":0.5,
            "observables":["norm2","x0"],"sde":{{"substeps":8,"extrapolate":true}},"seed":41{extra}}}"#
        )
    };
    let cpu = CpuBackend::default();
    let c = report(&checked(&cfg(r#","paths":5000"#)), &cpu);
    let i = report(
        &checked(&cfg(r#","paths":100000,"estimator":"independent""#)),
        &cpu,
    );
    let mut n = 0;
    for (ec, ei) in errors_at(&c, 0.5).zip(errors_at(&i, 0.5)) {
        assert_eq!(
            (&ec.pair, ec.eta, &ec.observable),
            (&ei.pair, ei.eta, &ei.observable)
        );
        assert_eq!(ec.estimator, "coupled");
        let se = (ec.stderr.powi(2) + ei.stderr.powi(2)).sqrt();
        assert!(
            (ec.signed - ei.signed).abs() <= 4.0 * se,
            "{}–{} η={} {}: coupled {} ± {}, independent {} ± {}",
            ec.pair[0],
            ec.pair[1],
            ec.eta,
            ec.observable,
            ec.signed,
            ec.stderr,
            ei.signed,
            ei.stderr
        );
        let vr = ec.variance_reduction.expect("coupled");
        assert!(
            vr > 10.0,
            "{}–{} η={} {}: variance reduction {vr}",
            ec.pair[0],
            ec.pair[1],
            ec.eta,
            ec.observable
        );
        n += 1;
    }
    assert_eq!(n, 8);
}

fn errors_at(r: &Report, t: f64) -> impl Iterator<Item = &WeakError> {
    r.weak_errors.iter().filter(move |e| e.t == t)
}
