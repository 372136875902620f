//! Proving a `partials.json` before its sums are trusted (by `smflow merge`, and by
//! anything that resumes from a shard): a SHA-256 digest over the file's content, and
//! checks of its shape, its counts and its exact sums against the plan of its config.
//!
//! The digest is computed over a canonical serialisation (serde_json of the fields in
//! the struct's fixed order, the `digest` field left out); it detects any edit made
//! after the run. It is not a signature: whoever can run smflow can forge one. The
//! shape and count checks therefore do not rely on it — they catch a file whose digest
//! was recomputed after an edit, and a file written by a faulty smflow.

use super::files::Partials;
use crate::backend::shifts;
use crate::experiment::{split, Plan, PlannedRun, Shard};
use crate::observables::Observable;
use crate::stats::exact_sum::ExactSum;
use serde::Serialize;

/// Prefix of the digest string; names the algorithm and the serialisation.
pub const DIGEST_PREFIX: &str = "sha256:";

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
            let (n_ck, n_obs) = (run.spec.checkpoints.len(), run.spec.observables.len());
            let mine = shard.range(run.paths);
            let sh = shifts(&plan.checked.model, &run.spec);
            for (b, stats) in per_batch.iter().enumerate() {
                let at = if plan.batches > 1 {
                    format!("{name}, batch {} of {}", b + 1, plan.batches)
                } else {
                    name.clone()
                };
                if stats.len() != n_ck * n_obs {
                    return Err(format!(
                        "{at}: {} statistics, expected {} ({n_ck} checkpoints × {n_obs} observables)",
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
                    let obs = run.spec.observables[o];
                    let t = plan.checked.times.get(c).copied().unwrap_or(f64::NAN);
                    let stat = format!("{at}, t={t} {obs}");
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
                    check_sums(m, obs, sh[k], run.spec.levels() < 3)
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
    // Cauchy–Schwarz; the slack covers f32 block partials from the GPU.
    for ((a, sa), (b, sb)) in [(("Σy", s1), ("Σy²", s2)), (("Σe", e1), ("Σe²", e2))] {
        if sa * sa > n * sb * (1.0 + 1e-3) + 1e-300 {
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

/// `sha256:` and the 64 hex digits of the SHA-256 of `bytes` (also seals progress.json).
pub fn digest_of(bytes: &[u8]) -> String {
    let mut s = String::from(DIGEST_PREFIX);
    for b in sha256(bytes) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// SHA-256 (FIPS 180-4).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sha256;

    fn hex(b: [u8; 32]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha256_known_answers() {
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }
}
