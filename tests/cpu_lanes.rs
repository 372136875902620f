//! The CPU backend's lane groups (8 replicas side by side, `smflow::lanes`) carry
//! exactly the bits of the scalar reference `path::simulate`, replica by replica: for
//! every model × dynamics × solver, several particles, coupled runs, paths that
//! diverge inside a group, and partial groups (1–8 replicas), at every SIMD level the
//! CPU has (AVX-512, AVX2, the portable baseline).

mod common;

use common::cases::{models, spec, toy_models};
use smflow::dynamics::path::{prepare, simulate, simulate_lanes_at, GroupWork, PathRecord};
use smflow::dynamics::{Coupling, Dynamics, Kind, RunSpec, Solver};
use smflow::lanes::{Lanes, Lanes32};
use smflow::model::AnyModel;
use smflow::rng::simd::{detected, Level};
use smflow::with_model;

fn levels() -> Vec<Level> {
    let all = [Level::Scalar, Level::Avx2, Level::Avx512];
    all.into_iter().filter(|l| *l <= detected()).collect()
}

fn substeps(extrapolate: bool) -> Solver {
    Solver::Substeps {
        substeps: 4,
        extrapolate,
    }
}

/// Every model × dynamics × solver with one particle; two particles; coupled SDE
/// runs; and a tight bound so that some paths diverge.
fn cases() -> Vec<(AnyModel, RunSpec)> {
    let mut out = Vec::new();
    for m in models().into_iter().chain(toy_models()) {
        let caps = m.as_dyn().capabilities();
        for name in smflow::dynamics::NAMES {
            let dy = Dynamics::parse(name).unwrap();
            let solvers = match dy.kind() {
                Kind::Discrete => vec![Solver::Exact],
                Kind::Ode => vec![substeps(false), substeps(true)],
                // The exact solver where the model declares the transition (msme1's
                // is of the pair (X, P): the quadratic model's OU pair).
                Kind::Sde if caps.has(dy.exact_needs()) => {
                    vec![substeps(true), substeps(false), Solver::Exact]
                }
                Kind::Sde => vec![substeps(true), substeps(false)],
            };
            for s in solvers {
                out.push((m.clone(), spec(&m, dy, s, 1, 3)));
                if dy.kind() != Kind::Ode {
                    out.push((m.clone(), spec(&m, dy, s, 2, 3)));
                }
                // Coupled to its discrete partner, with one particle (weak_order) and, for
                // SMF, two (n_point: the partner carries every particle).
                if dy.kind() == Kind::Sde && s != Solver::Exact {
                    let most = if dy.shared_noise() { 2 } else { 1 };
                    for particles in 1..=most {
                        let mut c = spec(&m, dy, s, particles, 3);
                        let partner = dy.reference().unwrap();
                        c.coupling = Some(Coupling {
                            sgd_stream: RunSpec::stream_tag(partner, 3),
                        });
                        out.push((m.clone(), c));
                    }
                }
            }
        }
        // Large steps and a tight bound: some replicas diverge, others do not.
        let mut wild = spec(&m, Dynamics::Sgd, Solver::Exact, 1, 3);
        wild.eta = 1.9;
        wild.bound = 3.0;
        wild.checkpoints = vec![1, 3, 8];
        out.push((m.clone(), wild));
    }
    out
}

fn bits(rec: &PathRecord) -> (Vec<u64>, Vec<bool>) {
    (
        rec.values.iter().map(|v| v.to_bits()).collect(),
        rec.alive.clone(),
    )
}

#[test]
fn lane_groups_are_bit_identical_to_the_scalar_reference() {
    let levels = levels();
    eprintln!("levels on this CPU: {levels:?}");
    let cases = cases();
    let mut mixed = 0; // cases whose 8 reference paths both diverge and survive
                       // One workspace for every case, as a CPU chunk reuses it: nothing an earlier
                       // model, dynamics, particle count or level count left in it may leak into a path.
    let mut work = GroupWork::<Lanes>::new();
    for (m, s) in &cases {
        with_model!(m, mm => {
            let prep = prepare(mm, s);
            let first = 5u32;
            let reference: Vec<_> = (0..8)
                .map(|i| {
                    let mut rec = PathRecord::new(s);
                    simulate(mm, s, &prep, first + i, &mut rec);
                    bits(&rec)
                })
                .collect();
            let ended = reference.iter().filter(|(_, a)| a.last() == Some(&false)).count();
            mixed += usize::from(ended > 0 && ended < 8);
            for &level in &levels {
                for n in [8, 1, 3, 7] {
                    let mut recs: Vec<PathRecord> = (0..n).map(|_| PathRecord::new(s)).collect();
                    simulate_lanes_at(level, mm, s, &prep, first, &mut recs, &mut work);
                    for (i, rec) in recs.iter().enumerate() {
                        assert!(
                            bits(rec) == reference[i],
                            "{} d={} {:?} {:?} P={} coupled={} level {level:?}, group of {n}: replica {} differs",
                            m.name(),
                            m.as_dyn().dim(),
                            s.dynamics,
                            s.solver,
                            s.particles(),
                            s.coupling.is_some(),
                            first as usize + i
                        );
                    }
                }
            }
        });
    }
    // The divergence cases must really mix diverged and surviving lanes in a group.
    assert!(
        mixed >= 3,
        "only {mixed} cases mix diverged and surviving paths"
    );
    eprintln!(
        "{} cases, {mixed} with diverged and surviving paths",
        cases.len()
    );
}

/// The f32 option (`Lanes32`, 16 replicas a group): the same bits at every SIMD level
/// and in every partial group (a lane never depends on its neighbours or on the
/// level), and each replica's values those of the f64 reference to f32 accuracy
/// wherever both paths survive. The tolerance is relative to the path's scale, as
/// f32 rounding (2^-24 per operation) accumulates over a path's steps and substeps.
#[test]
fn f32_lane_groups_track_the_f64_reference() {
    let levels = levels();
    let mut work = GroupWork::<Lanes32>::new();
    let mut worst: f64 = 0.0;
    let mut compared = 0usize;
    for (m, s) in &cases() {
        with_model!(m, mm => {
            let prep = prepare(mm, s);
            let first = 5u32;
            let reference: Vec<PathRecord> = (0..16)
                .map(|i| {
                    let mut rec = PathRecord::new(s);
                    simulate(mm, s, &prep, first + i, &mut rec);
                    rec
                })
                .collect();
            let mut full: Option<Vec<(Vec<u64>, Vec<bool>)>> = None;
            for &level in &levels {
                for n in [16, 1, 9, 15] {
                    let mut recs: Vec<PathRecord> = (0..n).map(|_| PathRecord::new(s)).collect();
                    simulate_lanes_at(level, mm, s, &prep, first, &mut recs, &mut work);
                    let got: Vec<_> = recs.iter().map(bits).collect();
                    let want = full.get_or_insert_with(|| got.clone());
                    assert!(
                        got[..] == want[..n],
                        "{} {:?} {:?}: f32 group of {n} at {level:?} differs from the full group",
                        m.name(),
                        s.dynamics,
                        s.solver
                    );
                    if n != 16 {
                        continue;
                    }
                    for (g, r) in recs.iter().zip(&reference) {
                        let both = g.alive.iter().zip(&r.alive).map(|(a, b)| a & b);
                        let per_cp = s.n_stats() * 2;
                        for (c, ok) in both.enumerate() {
                            if !ok {
                                continue;
                            }
                            for k in (0..per_cp).step_by(2) {
                                let (x, y) = (g.values[c * per_cp + k], r.values[c * per_cp + k]);
                                let err = (x - y).abs() / (1.0 + y.abs());
                                worst = worst.max(err);
                                compared += 1;
                                assert!(
                                    err < 1e-3,
                                    "{} d={} {:?} {:?} P={}: f32 value {x} vs f64 {y}",
                                    m.name(),
                                    m.as_dyn().dim(),
                                    s.dynamics,
                                    s.solver,
                                    s.particles()
                                );
                            }
                        }
                    }
                }
            }
        });
    }
    eprintln!("f32 vs f64: {compared} values, worst relative deviation {worst:.2e}");
    assert!(compared > 1000, "only {compared} values compared");
}
