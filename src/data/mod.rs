//! Finite data sets (DESIGN §2): `N` samples `(x_i, y_i)`, `x_i ∈ R^d`, generated from a
//! seed or read from a file. Everything downstream sees the same `f64` numbers on every
//! backend: the GPU receives them rounded once to f32.
//!
//! Generated sets: features `x_ij ~ N(0, 1)`, teacher `β*` dense or s-sparse with
//! `N(0, scale²)` entries on a uniformly drawn support, labels `y_i = x_iᵀβ* + σ ε_i`
//! (`"labels": "linear"`, the default) or `y_i ~ Bernoulli(σ(x_iᵀβ*))`, σ the logistic
//! function (`"labels": "logistic"`, for the logistic loss).
//! All draws come from Philox with the data seed as key, in streams of their own
//! (`TAG_*`), so a data set never shares random numbers with the paths trained on it.

pub mod load;
pub mod sampling;

use crate::config::ConfigError;
use crate::rng::{index_below, key_from_seed, normals4, philox4x32_10, uniform};
use serde::{Deserialize, Serialize};

const TAG_FEATURES: u32 = 0xDA7A_0001;
const TAG_TEACHER: u32 = 0xDA7A_0002;
const TAG_NOISE: u32 = 0xDA7A_0003;
/// Stream of the per-replica label noise (`label_noise`).
pub const TAG_REPLICA_LABELS: u32 = 0xDA7A_0004;

#[derive(Clone, Debug, PartialEq)]
pub struct DataSet {
    /// Samples N.
    pub n: usize,
    /// Features d.
    pub d: usize,
    /// Row-major N × d.
    pub x: Vec<f64>,
    /// Labels as used for training.
    pub y: Vec<f64>,
    /// Noise-free labels `Xβ*` where the teacher is known (generated sets).
    pub y_clean: Option<Vec<f64>>,
    /// The teacher β*, where known.
    pub teacher: Option<Vec<f64>>,
    /// Standard deviation σ of the label noise of a generated set (0 for files).
    pub noise_std: f64,
}

/// How to generate a data set.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Samples N.
    pub n: usize,
    /// Features d.
    pub d: usize,
    /// Non-zero entries of β* (default: d, a dense teacher).
    #[serde(default)]
    pub sparsity: Option<usize>,
    /// Standard deviation of the teacher's non-zero entries.
    #[serde(default = "one")]
    pub teacher_scale: f64,
    /// Label noise σ.
    #[serde(default)]
    pub label_noise: f64,
    /// Seed of the data set (default: the run's seed).
    #[serde(default)]
    pub seed: Option<u64>,
    /// How labels come from the teacher: `linear` (x_iᵀβ* + σε) or `logistic`
    /// (Bernoulli(σ(x_iᵀβ*)), y ∈ {0, 1}).
    #[serde(default)]
    pub labels: Labels,
}

/// How a generated set's labels come from the teacher.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Labels {
    #[default]
    Linear,
    Logistic,
}

fn one() -> f64 {
    1.0
}

/// Where a data set comes from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum DataConfig {
    Generate(GenerateConfig),
    /// CSV (one sample per row, features then label; an optional header row) or JSON
    /// (`{"x": [[...], ...], "y": [...], "teacher": [...]?}`), by file extension.
    File {
        path: String,
        #[serde(default)]
        teacher: Option<Vec<f64>>,
    },
}

impl DataConfig {
    /// Validates and materialises the data set; `field` names the config key.
    pub fn build(&self, field: &str, run_seed: u64) -> Result<DataSet, ConfigError> {
        match self {
            DataConfig::Generate(g) => {
                g.check(field)?;
                Ok(generate(g, g.seed.unwrap_or(run_seed)))
            }
            DataConfig::File { path, teacher } => {
                let mut ds = load::load(field, path)?;
                if let Some(t) = teacher {
                    if t.len() != ds.d {
                        return Err(ConfigError {
                            field: format!("{field}.teacher"),
                            message: format!("must have d = {} entries, got {}", ds.d, t.len()),
                        });
                    }
                    ds.teacher = Some(t.clone());
                }
                Ok(ds)
            }
        }
    }
}

impl GenerateConfig {
    pub fn check(&self, field: &str) -> Result<(), ConfigError> {
        let bad = |k: &str, m: String| {
            Err(ConfigError {
                field: format!("{field}.{k}"),
                message: m,
            })
        };
        if self.n == 0 || self.n > (1 << 24) {
            return bad("n", "must be in 1 ..= 16777216 samples".into());
        }
        if self.d == 0 || self.d > 4096 {
            return bad("d", "must be in 1 ..= 4096 features".into());
        }
        if let Some(s) = self.sparsity {
            if s == 0 || s > self.d {
                return bad("sparsity", format!("must be in 1 ..= d = {}", self.d));
            }
        }
        if !(self.teacher_scale.is_finite() && self.teacher_scale > 0.0) {
            return bad("teacher_scale", "must be a positive number".into());
        }
        if !(self.label_noise.is_finite() && self.label_noise >= 0.0) {
            return bad("label_noise", "must be a number ≥ 0".into());
        }
        if self.labels == Labels::Logistic && self.label_noise != 0.0 {
            return bad(
                "label_noise",
                "must be 0 with \"labels\": \"logistic\" (Bernoulli labels carry their own noise)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Normal number `j` of row `i` of a data stream.
fn normal(key: [u32; 2], tag: u32, i: u32, j: u32) -> f64 {
    normals4([i, j / 4, 0, tag], key)[(j % 4) as usize]
}

/// The data set of a generation config and seed (identical on every machine).
pub fn generate(g: &GenerateConfig, seed: u64) -> DataSet {
    let key = key_from_seed(seed);
    let (n, d) = (g.n, g.d);
    let mut x = vec![0.0; n * d];
    for i in 0..n {
        for j in 0..d {
            x[i * d + j] = normal(key, TAG_FEATURES, i as u32, j as u32);
        }
    }
    // Support: a partial Fisher–Yates shuffle of 0..d driven by Philox.
    let s = g.sparsity.unwrap_or(d);
    let mut order: Vec<usize> = (0..d).collect();
    for k in 0..s {
        let u = philox4x32_10([k as u32, 0, 1, TAG_TEACHER], key)[0];
        let pick = k + index_below(u, (d - k) as u32) as usize;
        order.swap(k, pick);
    }
    let mut teacher = vec![0.0; d];
    for (k, &j) in order.iter().take(s).enumerate() {
        teacher[j] = g.teacher_scale * normal(key, TAG_TEACHER, k as u32, 0);
    }
    let y_clean: Vec<f64> = (0..n)
        .map(|i| dot(&x[i * d..(i + 1) * d], &teacher))
        .collect();
    if g.labels == Labels::Logistic {
        // y_i = 1 with probability σ(x_iᵀβ*), from a uniform of its own counter.
        let y = y_clean
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let u = uniform(philox4x32_10([i as u32, 0, 1, TAG_NOISE], key)[0]);
                f64::from(u < crate::math::sigmoid(*m))
            })
            .collect();
        return DataSet {
            n,
            d,
            x,
            y,
            y_clean: None,
            teacher: Some(teacher),
            noise_std: 0.0,
        };
    }
    let y = y_clean
        .iter()
        .enumerate()
        .map(|(i, c)| c + g.label_noise * normal(key, TAG_NOISE, i as u32, 0))
        .collect();
    DataSet {
        n,
        d,
        x,
        y,
        y_clean: Some(y_clean),
        teacher: Some(teacher),
        noise_std: g.label_noise,
    }
}

/// Label noise ε_i of replica `r` when each replica draws its own labels
/// `y_i = (Xβ*)_i + σ ε_i` (Monte Carlo over label noise, seed 000 §5.1). Keyed by the
/// run's seed; the GPU computes the same draw.
pub fn label_noise(key: [u32; 2], replica: u32, i: u32) -> f64 {
    normals4([replica, i / 4, 0, TAG_REPLICA_LABELS], key)[(i % 4) as usize]
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

impl DataSet {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// X as a nalgebra matrix (N × d).
    pub fn matrix(&self) -> nalgebra::DMatrix<f64> {
        nalgebra::DMatrix::from_row_slice(self.n, self.d, &self.x)
    }

    pub fn labels(&self) -> nalgebra::DVector<f64> {
        nalgebra::DVector::from_column_slice(&self.y)
    }

    /// Mean squared error ½·mean((Xβ − y)²) of β on this set.
    pub fn loss(&self, beta: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..self.n {
            let e = dot(self.row(i), beta) - self.y[i];
            s += e * e;
        }
        0.5 * s / self.n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: usize, d: usize, s: Option<usize>) -> GenerateConfig {
        GenerateConfig {
            n,
            d,
            sparsity: s,
            teacher_scale: 1.0,
            label_noise: 0.5,
            seed: None,
            labels: Labels::Linear,
        }
    }

    #[test]
    fn generation_is_deterministic_and_seed_dependent() {
        let a = generate(&cfg(20, 30, Some(3)), 7);
        assert_eq!(a, generate(&cfg(20, 30, Some(3)), 7));
        assert_ne!(a.x, generate(&cfg(20, 30, Some(3)), 8).x);
        let t = a.teacher.as_ref().unwrap();
        assert_eq!(t.iter().filter(|v| **v != 0.0).count(), 3);
    }

    #[test]
    fn features_are_standard_normal() {
        // 2e5 draws: mean within 4 SE (SE = 1/√n), variance within 4 SE (SE ≈ √(2/n)).
        let a = generate(&cfg(2000, 100, None), 3);
        let n = a.x.len() as f64;
        let m = a.x.iter().sum::<f64>() / n;
        let v = a.x.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
        assert!(m.abs() < 4.0 / n.sqrt(), "mean {m}");
        assert!((v - 1.0).abs() < 4.0 * (2.0 / n).sqrt(), "var {v}");
    }

    /// Logistic labels are 0/1 with P(y = 1 | x) = σ(xᵀβ*): over 20 000 samples the
    /// mean of y − σ(xᵀβ*) is within 4 standard errors (each term's variance ≤ 1/4) of 0.
    #[test]
    fn logistic_labels_are_bernoulli_of_the_teacher_margin() {
        let mut g = cfg(20_000, 5, None);
        g.label_noise = 0.0;
        g.labels = Labels::Logistic;
        g.check("data").unwrap();
        let a = generate(&g, 11);
        assert!(a.y.iter().all(|y| *y == 0.0 || *y == 1.0));
        let t = a.teacher.as_ref().unwrap();
        let n = a.n as f64;
        let dev: f64 = (0..a.n)
            .map(|i| a.y[i] - crate::math::sigmoid(dot(a.row(i), t)))
            .sum::<f64>()
            / n;
        assert!(dev.abs() < 4.0 * 0.5 / n.sqrt(), "mean deviation {dev}");
        let ones = a.y.iter().sum::<f64>() / n;
        assert!(ones > 0.2 && ones < 0.8, "share of ones {ones}");
        g.label_noise = 0.1;
        assert_eq!(g.check("data").unwrap_err().field, "data.label_noise");
    }

    #[test]
    fn bad_generation_fields_are_named() {
        let e = cfg(20, 30, Some(31)).check("data").unwrap_err();
        assert_eq!(e.field, "data.sparsity");
        let e = cfg(0, 30, None).check("data").unwrap_err();
        assert_eq!(e.field, "data.n");
    }
}
