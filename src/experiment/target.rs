//! Target precision for `weak_order` (`"target": {"rel_stderr": r, "pilot_paths": n}`).
//!
//! A pilot runs the whole study with n paths per (dynamics, η) on its own Philox key
//! (the seed with its bits flipped by a fixed constant, so its paths are independent of
//! the final run's). From its weak errors at the horizon it estimates, per η, the paths
//! the final run needs for stderr ≤ r·|error|: an estimate's variance is Var/paths, so
//! paths = n·(stderr_pilot / (r·|error_pilot|))², the largest over the η's pairs and
//! observables, rounded up to 6 significant bits (so that backends agree, [`coarse_paths`])
//! and between 2 and the config's `paths`; where the pilot leaves any of them
//! unresolved (error ≤ 3 stderr: no usable |error|), the config's `paths`. The final run then simulates that
//! many paths per η with the config's own key, and reports only its own paths.
//!
//! Why that is honest: the number of paths is a function of the pilot alone, which is
//! independent of the final paths, so conditional on it every final estimate is the
//! plain Monte Carlo mean of i.i.d. replicas: unbiased, with the usual standard error.
//! (Reusing the pilot's paths in the final estimate would make the sample size depend
//! on the very values averaged — a stopping-rule bias — which this design avoids.)

use super::{analyze, execute, plan, Plan, RunMeta, Shard};
use crate::backend::Backend;
use crate::experiment::config::Checked;
use crate::output::report::TargetReport;

/// XORed into the seed to make the pilot's Philox key.
const PILOT_KEY_FLIP: u64 = 0x9E37_79B9_7F4A_7C15;

/// Runs the pilot of `ck` (which has a target) and returns the final plan, with the
/// paths per η chosen, and what was decided.
pub fn targeted_plan(
    ck: &Checked,
    backend: &dyn Backend,
    progress: crate::backend::Progress,
) -> anyhow::Result<(Plan, TargetReport)> {
    let t = ck.target.expect("a targeted config");
    let mut pilot = ck.clone();
    pilot.paths = t.pilot_paths;
    pilot.seed ^= PILOT_KEY_FLIP;
    let pilot_plan = plan(&pilot);
    let meta = RunMeta {
        backend: backend.name().into(),
        adapter: backend.adapter(),
        precision: String::new(),
        shard: None,
    };
    let report = analyze(
        &pilot_plan,
        &execute(&pilot_plan, backend, Shard::WHOLE, progress)?,
        &meta,
    );
    let wanted: Vec<Option<f64>> = ck
        .etas
        .iter()
        .map(|&eta| {
            let at: Vec<_> = report
                .weak_errors
                .iter()
                .filter(|e| e.eta == eta && e.t == ck.horizon)
                .collect();
            // An error the pilot cannot tell from zero gives no usable |error|: the cap.
            if at.is_empty() || at.iter().any(|e| !e.resolved) {
                return None;
            }
            at.iter()
                .map(|e| t.pilot_paths as f64 * (e.stderr / (t.rel_stderr * e.error)).powi(2))
                .reduce(f64::max)
        })
        .collect();
    let run: Vec<u64> = wanted
        .iter()
        .map(|w| match *w {
            Some(n) if n.is_finite() && n < ck.paths as f64 => coarse_paths(n).clamp(2, ck.paths),
            _ => ck.paths,
        })
        .collect();
    let mut p = plan(ck);
    for r in p.runs.iter_mut().filter(|r| r.spec.dynamics.is_random()) {
        let e = ck
            .etas
            .iter()
            .position(|&eta| eta == r.spec.eta)
            .expect("a planned η");
        r.paths = run[e];
    }
    Ok((
        p,
        TargetReport {
            rel_stderr: t.rel_stderr,
            pilot_paths: t.pilot_paths,
            etas: ck.etas.clone(),
            paths_wanted: wanted,
            paths_run: run,
        },
    ))
}

/// `n` paths rounded up to 6 significant bits (m·2^k, m < 64): less than 1/32 more than
/// asked, so that backends whose pilots differ by float rounding run the same count
/// unless their requests straddle one of these steps, ≥ 1/64 apart. A bare ceil() split
/// them at every integer: 3810 paths on the CPU against 3804 on the GPU, in f32, for
/// one config and seed, whose weak errors (differences of close means) differed by
/// 2e-3 relative; such requests still straddle a step a few times in a hundred. In f64
/// the backends agree to ~1e-15 and so, but for a tie, on the count.
pub fn coarse_paths(n: f64) -> u64 {
    let n = n.ceil().clamp(1.0, 2f64.powi(62)) as u64;
    let k = (u64::BITS - n.leading_zeros()).saturating_sub(6);
    n.div_ceil(1 << k) << k
}

/// Warnings about a targeted run: η where the pilot resolved no weak error (the run
/// used `paths`), and η where the cap `paths` is below what the target needs.
pub fn warnings(t: &TargetReport, cap: u64) -> Vec<String> {
    let mut out = Vec::new();
    for ((eta, w), run) in t.etas.iter().zip(&t.paths_wanted).zip(&t.paths_run) {
        match w {
            None => out.push(format!(
                "target: the pilot ({} paths) left a weak error at η={eta} unresolved; ran paths = {cap} there",
                t.pilot_paths
            )),
            Some(n) if *n > *run as f64 => out.push(format!(
                "target: η={eta} needs ~{n:.3e} paths for stderr ≤ {}·|error|; capped at paths = {cap}",
                t.rel_stderr
            )),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::coarse_paths;

    #[test]
    fn coarse_paths_round_up_to_six_significant_bits() {
        assert_eq!(coarse_paths(0.3), 1);
        assert_eq!(coarse_paths(63.0), 63);
        assert_eq!(coarse_paths(64.2), 66);
        // The two counts a CPU and a GPU pilot once asked for (f32 rounding apart).
        assert_eq!(coarse_paths(3803.2), 3840);
        assert_eq!(coarse_paths(3809.9), 3840);
        assert_eq!(coarse_paths(f64::INFINITY), 1 << 62);
        for n in [1.0, 7.5, 100.0, 3804.0, 65_537.0, 1e9] {
            let c = coarse_paths(n) as f64;
            assert!(c >= n && c <= n.ceil() * (1.0 + 1.0 / 32.0), "{n} → {c}");
        }
    }
}
