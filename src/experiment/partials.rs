//! Proving a `partials.json` before its sums are trusted (by `smflow merge`, and by
//! anything that resumes from a shard): a SHA-256 digest over the file's content, and
//! checks of its shape, its counts and its exact sums against the plan of its config.
//!
//! The digest is computed over a canonical serialisation (serde_json of the fields in
//! the struct's fixed order, the `digest` field left out); it detects any edit made
//! after the run. It is not a signature: whoever can run smflow can forge one. The
//! shape and count checks therefore do not rely on it — they catch a file whose digest
//! was recomputed after an edit, and a file written by a faulty smflow.

use crate::backend::shifts;
use crate::dynamics::Channel;
use crate::experiment::{split, Plan, PlannedRun, Shard};
use crate::observables::Observable;
use crate::output::digest::digest_of;
use crate::output::files::Partials;
use crate::stats::exact_sum::ExactSum;
use serde::Serialize;

/// What the digest covers: every field of [`Partials`] but the digest itself.
#[derive(Serialize)]
struct Covered<'a> {
    format: &'static str,
    smflow_version: &'a str,
    shard: &'a Option<String>,
    backend: &'a str,
    adapter: &'a str,
    precision: &'a str,
    wall_seconds: f64,
    path_steps: f64,
    config: &'a serde_json::Value,
    moments: &'a [Vec<Vec<crate::stats::MomentsParts>>],
}

impl Partials {
    /// The digest of this content (`sha256:` and 64 hex digits).
    pub fn compute_digest(&self) -> String {
        let c = Covered {
            format: "smflow partials v1",
            smflow_version: &self.smflow_version,
            shard: &self.shard,
            backend: &self.backend,
            adapter: &self.adapter,
            precision: &self.precision,
            wall_seconds: self.wall_seconds,
            path_steps: self.path_steps,
            config: &self.config,
            moments: &self.moments,
        };
        digest_of(&serde_json::to_vec(&c).expect("partials serialise"))
    }

    /// A copy carrying the digest of its content.
    pub fn sealed(&self) -> Partials {
        let mut p = self.clone();
        p.digest = p.compute_digest();
        p
    }

    /// Whether the stored digest matches the content.
    pub fn check_digest(&self) -> Result<(), String> {
        if self.digest.is_empty() {
            return Err("no digest (written by an older smflow, or edited)".into());
        }
        if self.digest != self.compute_digest() {
            return Err("digest mismatch (the file was modified after the run)".into());
        }
        Ok(())
    }

    /// The shard this file claims to hold (`None` in the file: the whole run).
    pub fn shard(&self) -> Result<Shard, String> {
        match &self.shard {
            None => Ok(Shard::WHOLE),
            Some(s) => Shard::parse(s).map_err(|e| format!("bad shard label {s:?} ({e})")),
        }
    }

    /// Checks the digest, then that the statistics have the plan's shape (runs ×
    /// batches × checkpoints·observables), that every statistic accounts for exactly
    /// this shard's share of its run's (and batch's) paths, and that the exact sums are
    /// sane where that is checkable. The error names the run, the statistic and the
    /// numbers; callers prefix the file.
    pub fn verify(&self, plan: &Plan, shard: Shard) -> Result<(), String> {
        self.check_digest()?;
        if self.moments.len() != plan.runs.len() {
            return Err(format!(
                "{} runs, but its config plans {} (dynamics × η)",
                self.moments.len(),
                plan.runs.len()
            ));
        }
        let label = shard.label();
        let mut path_steps = 0.0;
        for (run, per_batch) in plan.runs.iter().zip(&self.moments) {
            let name = run_name(run);
            if per_batch.len() as u64 != plan.batches {
                return Err(format!(
                    "{name}: {} batches, expected {}",
                    per_batch.len(),
                    plan.batches
                ));
            }
            let (n_ck, n_obs) = (run.spec.checkpoints.len(), run.spec.n_stats());
            let mine = shard.range(run.paths);
            let sh = shifts(&plan.checked.model, &run.spec);
            for (b, stats) in per_batch.iter().enumerate() {
                let at = if plan.batches > 1 {
                    format!("{name}, batch {} of {}", b + 1, plan.batches)
                } else {
                    name.clone()
                };
                if stats.len() != n_ck * n_obs {
                    let per = match run.spec.channels().len() {
                        1 => format!("{n_obs} observables"),
                        c => format!(
                            "{} observables × {c} coupled channels (sde, sgd, difference)",
                            run.spec.observables.len()
                        ),
                    };
                    return Err(format!(
                        "{at}: {} statistics, expected {} ({n_ck} checkpoints × {per})",
                        stats.len(),
                        n_ck * n_obs
                    ));
                }
                let part = split(run.paths, plan.batches, b as u64);
                let share = part
                    .end
                    .min(mine.end)
                    .saturating_sub(part.start.max(mine.start));
                path_steps += share as f64 * run.spec.work_per_path();
                for (k, m) in stats.iter().enumerate() {
                    let (c, o) = (k / n_obs, k % n_obs);
                    let (channel, obs) = run.spec.stat(o);
                    let t = plan.checked.times.get(c).copied().unwrap_or(f64::NAN);
                    let stat = match channel {
                        Channel::Value => format!("{at}, t={t} {obs}"),
                        Channel::Sgd => format!("{at}, t={t} {obs} (coupled sgd)"),
                        Channel::Difference => format!("{at}, t={t} {obs} (coupled difference)"),
                    };
                    let total = m.count.checked_add(m.diverged);
                    if total != Some(share) {
                        let whose = if plan.batches > 1 {
                            format!(
                                "shard {label} holds {share} of this batch's paths ({} of the run's {})",
                                mine.end - mine.start,
                                run.paths
                            )
                        } else {
                            format!(
                                "shard {label} holds {share} of the run's {} paths",
                                run.paths
                            )
                        };
                        return Err(format!(
                            "{stat}: count {} + diverged {} = {}, but {whose}",
                            m.count,
                            m.diverged,
                            total.map_or("overflow".to_string(), |v| v.to_string())
                        ));
                    }
                    check_sums(m, obs, sh[k], plain_value(&run.spec, channel))
                        .map_err(|e| format!("{stat}: {e}"))?;
                }
            }
        }
        let rel = (self.path_steps - path_steps).abs() / path_steps.abs().max(1.0);
        if !(rel <= 1e-9) {
            return Err(format!(
                "path_steps {} but shard {label} of the plan simulates {path_steps}",
                self.path_steps
            ));
        }
        Ok(())
    }
}

/// `sgd η=0.1`
fn run_name(run: &PlannedRun) -> String {
    format!("{} η={}", run.spec.dynamics, run.spec.eta)
}

/// Internal consistency of one statistic's exact sums: canonical buckets, no poison,
/// zero sums for zero paths, non-negative sums of squares, (Σy)² ≤ n Σy², and (where
/// the value is the observable itself, not an extrapolation) a mean in the
/// observable's range.
/// Whether a statistic's mean must lie in its observable's range: a value without
/// Talay–Tubaro extrapolation (which can leave it), or a coupled run's SGD value; not
/// a coupled difference D.
pub(crate) fn plain_value(spec: &crate::dynamics::RunSpec, channel: Channel) -> bool {
    match channel {
        Channel::Value => spec.levels() < 3,
        Channel::Sgd => true,
        Channel::Difference => false,
    }
}

pub(crate) fn check_sums(
    m: &crate::stats::MomentsParts,
    obs: Observable,
    shift: f64,
    plain_value: bool,
) -> Result<(), String> {
    const NAMES: [&str; 4] = ["Σy", "Σy²", "Σe", "Σe²"];
    let mut v = [0.0; 4];
    for (i, p) in m.sums.iter().enumerate() {
        let name = NAMES[i];
        if p.poisoned {
            return Err(format!(
                "{name} is poisoned (a non-finite value entered it)"
            ));
        }
        let sum = ExactSum::from_parts(p).map_err(|e| format!("{name}: {e}"))?;
        // What the run writes is normalised (every bucket but the sign-carrying top one
        // in [0, 2^64), no zero buckets); reading it back must give the same parts.
        if sum.to_parts() != *p {
            return Err(format!("{name}: buckets not in canonical form"));
        }
        v[i] = sum.value();
        if !v[i].is_finite() {
            return Err(format!("{name} is not finite"));
        }
    }
    let [s1, s2, e1, e2] = v;
    if m.count == 0 {
        if v.iter().any(|x| *x != 0.0) {
            return Err("no paths counted, but non-zero sums".into());
        }
        return Ok(());
    }
    for (name, s) in [("Σy²", s2), ("Σe²", e2)] {
        if s < 0.0 {
            return Err(format!("sum of squares {name} = {} is negative", num(s)));
        }
    }
    let n = m.count as f64;
    if plain_value {
        let mean = shift + s1 / n;
        let tol = 1e-3 * (shift.abs() + (s1 / n).abs()) + 1e-9;
        let (lo, hi) = match obs {
            Observable::Norm2(_) | Observable::Dist2(..) => (0.0, f64::INFINITY),
            Observable::Cos(_) => (-1.0, 1.0),
            _ => (f64::NEG_INFINITY, f64::INFINITY),
        };
        if !(mean >= lo - tol && mean <= hi + tol) {
            return Err(format!(
                "mean {} outside the range of {obs} [{lo}, {hi}]",
                num(mean)
            ));
        }
    }
    // Cauchy–Schwarz; the slack covers f32 block partials from the GPU: their rounding
    // (relative), and squares of |y| < 2^-63 that fall below f32's normal range (each
    // y² off by at most 2^-126, so (Σy)² ≤ n·(Σy² + n·2^-126) still holds).
    let tiny = f32::MIN_POSITIVE as f64;
    for ((a, sa), (b, sb)) in [(("Σy", s1), ("Σy²", s2)), (("Σe", e1), ("Σe²", e2))] {
        if sa * sa > n * (sb * (1.0 + 1e-3) + n * tiny) + 1e-300 {
            return Err(format!(
                "{a}² = {} exceeds n·{b} = {} (impossible for real values)",
                num(sa * sa),
                num(n * sb)
            ));
        }
    }
    Ok(())
}

/// Plain digits for moderate magnitudes, else scientific notation.
fn num(x: f64) -> String {
    if x == 0.0 || (1e-4..1e6).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Moments;

    /// GPU f32 partials square each centred value in f32: below |y| ≈ 2^-75 the square
    /// is 0 while y still counts in Σy. Such sums are real (they pass); sums no real
    /// values can give (Σy² far below (Σy)²/n) still fail.
    #[test]
    fn cauchy_schwarz_allows_f32_squares_that_underflowed() {
        let obs = Observable::Dist2(0, 1);
        let mut m = Moments::default();
        m.add_partial(2000, 2000.0 * 1e-26, 0.0, 0.0, 0.0);
        assert!(check_sums(&m.to_parts(), obs, 0.0, false).is_ok());
        let mut bad = Moments::default();
        bad.add_partial(2000, 2000.0 * 1e-3, 1e-9, 0.0, 0.0);
        let e = check_sums(&bad.to_parts(), obs, 0.0, false).unwrap_err();
        assert!(e.contains("impossible for real values"), "{e}");
    }
}
