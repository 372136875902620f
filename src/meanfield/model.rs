//! The two-layer mean-field network (DESIGN §5): neurons `z = (a, w) ∈ R^{1+d}`,
//! `Φ(θ, z) = a σ(w·θ)`, network `f_n(θ) = (1/n) Σ_k Φ(θ, z_k)`, teacher
//! `f*(θ) = (1/m) Σ_j a*_j σ(w*_j·θ)` with the student's σ, initial neurons i.i.d. from
//! `μ₀ = N(a_mean, a_std²) ⊗ N(0, w_std² I_d)`.
//!
//! The WGSL twin of `Activation` and `TestFn` is `shaders/meanfield/two_layer.wgsl`
//! (codes in the same order); every formula for σ, σ' and φ lives in these two places.

use super::real::Real;
use crate::model::Capabilities;
use crate::rng::{fill_normals, normals4};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    Relu,
    Sigmoid,
    Linear,
}

pub const ACTIVATIONS: [&str; 4] = ["tanh", "relu", "sigmoid", "linear"];

impl Activation {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "tanh" => Self::Tanh,
            "relu" => Self::Relu,
            "sigmoid" => Self::Sigmoid,
            "linear" => Self::Linear,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        ACTIVATIONS[self as usize]
    }
    /// Code of the WGSL twin (`ACT` constant).
    pub fn code(self) -> u32 {
        self as u32
    }
    /// σ(u). tanh and the logistic function are the branch-free `math` versions (within
    /// 3 ulp of libm), so loops over u vectorise (`kernels`). Generic over
    /// the float type of the CPU drift (`Real`: f64, the reference, or f32).
    #[inline(always)]
    pub fn f<R: Real>(self, u: R) -> R {
        match self {
            Self::Tanh => u.tanh_fast(),
            Self::Relu => u.max(R::zero()),
            Self::Sigmoid => u.sigmoid_fast(),
            Self::Linear => u,
        }
    }
    /// σ'(u); for relu the convention σ'(0) = 0.
    #[inline(always)]
    pub fn df<R: Real>(self, u: R) -> R {
        self.df_given(u, self.f(u))
    }
    /// σ'(u) given s = σ(u) (tanh: 1 − s², logistic: s(1 − s)), so σ is computed once.
    #[inline(always)]
    pub fn df_given<R: Real>(self, u: R, s: R) -> R {
        match self {
            Self::Tanh => R::one() - s * s,
            Self::Relu => {
                if u > R::zero() {
                    R::one()
                } else {
                    R::zero()
                }
            }
            Self::Sigmoid => s * (R::one() - s),
            Self::Linear => R::one(),
        }
    }
    /// σ''(u) (0 for relu and linear), for the order-2 drift corrections.
    #[inline]
    pub fn d2f<R: Real>(self, u: R) -> R {
        let two = R::of(2.0);
        match self {
            Self::Tanh => {
                let t = self.f(u);
                -two * t * (R::one() - t * t)
            }
            Self::Sigmoid => {
                let s = self.f(u);
                s * (R::one() - s) * (R::one() - two * s)
            }
            Self::Relu | Self::Linear => R::zero(),
        }
    }
}

/// The test function φ of `⟨φ, ν⟩` (a smooth or simple function of one neuron).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestFn {
    /// a
    A,
    /// a²
    A2,
    /// |w|²
    W2,
    /// a·w₁ (coordinate 1 of β = ⟨a w, ν⟩)
    AW1,
    /// tanh(a)·w₁ (bounded in a)
    TanhAW1,
}

pub const TEST_FNS: [&str; 5] = ["a", "a2", "w2", "a_w1", "tanh_a_w1"];

impl TestFn {
    pub fn parse(s: &str) -> Option<Self> {
        let i = TEST_FNS.iter().position(|n| *n == s)?;
        Some([Self::A, Self::A2, Self::W2, Self::AW1, Self::TanhAW1][i])
    }
    pub fn name(self) -> &'static str {
        TEST_FNS[self as usize]
    }
    pub fn code(self) -> u32 {
        self as u32
    }
    /// φ(z) for z = (a, w).
    pub fn eval(self, z: &[f64]) -> f64 {
        let (a, w) = (z[0], &z[1..]);
        match self {
            Self::A => a,
            Self::A2 => a * a,
            Self::W2 => w.iter().map(|v| v * v).sum(),
            Self::AW1 => a * w[0],
            Self::TanhAW1 => a.tanh() * w[0],
        }
    }
}

/// A fixed teacher network of m neurons (row-major `w`, m × d).
#[derive(Clone, Debug, PartialEq)]
pub struct Teacher {
    pub a: Vec<f64>,
    pub w: Vec<f64>,
    pub d: usize,
}

impl Teacher {
    pub fn m(&self) -> usize {
        self.a.len()
    }
    /// f*(θ) = (1/m) Σ_j a*_j σ(w*_j·θ).
    pub fn eval(&self, act: Activation, theta: &[f64]) -> f64 {
        let d = self.d;
        let s: f64 = (0..self.m())
            .map(|j| self.a[j] * act.f(dot(&self.w[j * d..(j + 1) * d], theta)))
            .sum();
        s / self.m() as f64
    }
    /// A teacher of m neurons with a*_j ~ N(0, a_scale²), w*_j ~ N(0, I_d/… ) drawn from
    /// `seed` (stream `TAG_TEACHER`): `w*_j` is normalised to unit length so the
    /// pre-activations w*·θ are standard normal for θ ~ N(0, I).
    pub fn generate(m: usize, d: usize, a_scale: f64, seed: u64) -> Teacher {
        let key = crate::rng::key_from_seed(seed);
        let per = d + 1;
        let mut z = vec![0.0; m * per];
        fill_normals(key, 0, TAG_TEACHER, 0, m, per, &mut z);
        let mut a = Vec::with_capacity(m);
        let mut w = Vec::with_capacity(m * d);
        for j in 0..m {
            let row = &z[j * per..(j + 1) * per];
            a.push(a_scale * row[0]);
            let norm = dot(&row[1..], &row[1..]).sqrt().max(1e-300);
            w.extend(row[1..].iter().map(|v| v / norm));
        }
        Teacher { a, w, d }
    }
    /// β* = (1/m) Σ_j a*_j w*_j: the teacher of a linear network.
    pub fn beta(&self) -> Vec<f64> {
        let d = self.d;
        let mut b = vec![0.0; d];
        for j in 0..self.m() {
            for i in 0..d {
                b[i] += self.a[j] * self.w[j * d + i] / self.m() as f64;
            }
        }
        b
    }
}

/// μ₀ = N(a_mean, a_std²) ⊗ N(0, w_std² I_d).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Init {
    #[serde(default)]
    pub a_mean: f64,
    #[serde(default = "one")]
    pub a_std: f64,
    #[serde(default = "one")]
    pub w_std: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Init {
    fn default() -> Self {
        Init {
            a_mean: 0.0,
            a_std: 1.0,
            w_std: 1.0,
        }
    }
}

/// Philox streams of the model's own draws (never shared with the dynamics' streams,
/// whose top byte is the dynamics code ≤ 6).
pub const TAG_TEACHER: u32 = 0x4D46_0001;
pub const TAG_INIT: u32 = 0x4D46_0002;
pub const TAG_FEATURES: u32 = 0x4D46_0003;
pub const TAG_LABEL_NOISE: u32 = 0x4D46_0004;
pub const TAG_TEST: u32 = 0x4D46_0005;

/// The initial neurons of replica `r`, row-major `n × (1+d)`, drawn in f64 and rounded
/// once to `R`. Neuron k uses the normals of counter `(r, k, ·, TAG_INIT)`, so the first
/// n neurons of a wider network are the neurons of the narrower one (widths are coupled
/// replica by replica), and SGD and SMF runs of the same replica start from the same
/// neurons. Drawn a block of neurons at a time into an L1-sized buffer: the whole draw
/// in f64 would be one more pass over memory (9 MB at n = 2^16, d = 16).
pub fn init_neurons<R: Real>(
    init: &Init,
    key: [u32; 2],
    r: u32,
    n: usize,
    d: usize,
    out: &mut [R],
) {
    const BLOCK: usize = 128;
    let per = d + 1;
    let mut z = vec![0.0; BLOCK * per];
    for (q, rows) in out[..n * per].chunks_mut(BLOCK * per).enumerate() {
        let z = &mut z[..rows.len()];
        fill_normals(
            key,
            r,
            TAG_INIT,
            (q * BLOCK) as u32,
            rows.len() / per,
            per,
            z,
        );
        for (row, zk) in rows.chunks_exact_mut(per).zip(z.chunks_exact(per)) {
            row[0] = R::of(init.a_mean + init.a_std * zk[0]);
            for (v, zi) in row[1..].iter_mut().zip(&zk[1..]) {
                *v = R::of(*zi * init.w_std);
            }
        }
    }
}

/// Row `i` of an N(0, I_d) feature stream `tag` keyed by `key`.
pub fn gaussian_row(key: [u32; 2], tag: u32, i: u32, d: usize, out: &mut [f64]) {
    for (j, v) in out.iter_mut().enumerate().take(d) {
        *v = normals4([i, (j / 4) as u32, 0, tag], key)[j % 4];
    }
}

/// `N` inputs θ_i ~ N(0, I_d) from stream `tag` of `seed`, labelled `f*(θ_i) + σ ε_i`.
pub fn gaussian_set(
    teacher: &Teacher,
    act: Activation,
    n: usize,
    label_noise: f64,
    seed: u64,
    tag: u32,
) -> crate::data::DataSet {
    let d = teacher.d;
    let key = crate::rng::key_from_seed(seed);
    let mut x = vec![0.0; n * d];
    for i in 0..n {
        gaussian_row(key, tag, i as u32, d, &mut x[i * d..(i + 1) * d]);
    }
    let y_clean: Vec<f64> = (0..n)
        .map(|i| teacher.eval(act, &x[i * d..(i + 1) * d]))
        .collect();
    let y = y_clean
        .iter()
        .enumerate()
        .map(|(i, c)| c + label_noise * normals4([i as u32, 0, 0, TAG_LABEL_NOISE ^ tag], key)[0])
        .collect();
    crate::data::DataSet {
        n,
        d,
        x,
        y,
        y_clean: Some(y_clean),
        teacher: None,
        noise_std: label_noise,
    }
}

/// What the two-layer model declares, by where its inputs come from. On a finite data
/// set: the data set's full gradient and its noise root N^{-1/2} Σ_i G(z, ν, θ_i) dB_i
/// (smf1, smf2, msme1). On streamed inputs θ ~ N(0, I_d): the full gradient for the
/// linear activation only (the population drift, exact through [`linear_population`];
/// no finite set gives it for the others), and no noise root. Mean-field runs no sme
/// or sgf (`meanfield::SUPPORTED`), so the SGF's noise is not declared.
pub fn capabilities(act: Activation, streamed: bool) -> Capabilities {
    Capabilities {
        full_gradient: !streamed || act == Activation::Linear,
        noise_root: !streamed,
        ..Capabilities::GRADIENT_AND_NOISE
    }
}

/// How errors name the model: "two_layer (tanh) on a data set" or "… on streamed inputs".
pub fn model_name(act: Activation, streamed: bool) -> String {
    let inputs = if streamed {
        "streamed inputs"
    } else {
        "a data set"
    };
    format!("two_layer ({}) on {inputs}", act.name())
}

/// The 2d points ±√d e_i with equal weights: a cubature exact for every polynomial of
/// degree ≤ 3 under N(0, I_d). With a linear activation the mean-field drift and the
/// population risk are quadratic in θ, so averaging over these points gives the
/// *population* drift exactly; for the other activations there is no such finite set.
pub fn linear_population(teacher: &Teacher, act: Activation) -> crate::data::DataSet {
    let d = teacher.d;
    let n = 2 * d;
    let s = (d as f64).sqrt();
    let mut x = vec![0.0; n * d];
    for i in 0..d {
        x[(2 * i) * d + i] = s;
        x[(2 * i + 1) * d + i] = -s;
    }
    let y: Vec<f64> = (0..n)
        .map(|i| teacher.eval(act, &x[i * d..(i + 1) * d]))
        .collect();
    crate::data::DataSet {
        n,
        d,
        x,
        y: y.clone(),
        y_clean: Some(y),
        teacher: None,
        noise_std: 0.0,
    }
}

#[inline]
pub fn dot<R: Real>(a: &[R], b: &[R]) -> R {
    a.iter()
        .zip(b)
        .fold(-R::zero(), |s, (p, q)| s.add_product(*p, *q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_central_differences() {
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Linear,
            Activation::Relu,
        ] {
            for u in [-1.7f64, -0.3, 0.4, 2.2] {
                let h = 1e-6;
                let fd = (act.f(u + h) - act.f(u - h)) / (2.0 * h);
                assert!((fd - act.df(u)).abs() < 1e-8, "{act:?} at {u}");
                let fd2 = (act.df(u + h) - act.df(u - h)) / (2.0 * h);
                assert!((fd2 - act.d2f(u)).abs() < 1e-7, "{act:?}'' at {u}");
            }
        }
    }

    #[test]
    fn cubature_reproduces_gaussian_second_moments() {
        let t = Teacher::generate(3, 4, 1.0, 5);
        let p = linear_population(&t, Activation::Linear);
        for i in 0..4 {
            for j in 0..4 {
                let m: f64 = (0..p.n).map(|s| p.row(s)[i] * p.row(s)[j]).sum::<f64>() / p.n as f64;
                assert!((m - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        let beta = t.beta();
        let th = [0.3, -1.0, 0.5, 2.0];
        assert!((t.eval(Activation::Linear, &th) - dot(&beta, &th)).abs() < 1e-12);
    }

    #[test]
    fn wider_networks_extend_narrower_ones() {
        let (d, key) = (3, [7, 9]);
        let mut small = vec![0.0; 4 * (d + 1)];
        let mut big = vec![0.0; 16 * (d + 1)];
        init_neurons(&Init::default(), key, 2, 4, d, &mut small);
        init_neurons(&Init::default(), key, 2, 16, d, &mut big);
        assert_eq!(small[..], big[..small.len()]);
        // Drawn block by block, as one draw, and rounded once.
        let n = 300;
        let mut whole = vec![0.0; n * (d + 1)];
        fill_normals(key, 2, TAG_INIT, 0, n, d + 1, &mut whole);
        let init = Init {
            a_mean: 0.5,
            a_std: 2.0,
            w_std: 0.25,
        };
        let (mut z64, mut z32) = (vec![0.0; whole.len()], vec![0.0f32; whole.len()]);
        init_neurons(&init, key, 2, n, d, &mut z64);
        init_neurons(&init, key, 2, n, d, &mut z32);
        for (i, zi) in whole.iter().enumerate() {
            let want = if i % (d + 1) == 0 {
                0.5 + 2.0 * zi
            } else {
                zi * 0.25
            };
            assert_eq!(z64[i], want, "f64 {i}");
            assert_eq!(z32[i], want as f32, "f32 {i}");
        }
    }
}
