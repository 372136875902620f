//! The CPU mean-field drift's hot loops: pre-activations and weight updates as matrix
//! products (`matrixmultiply`'s packed, runtime-dispatched AVX2/FMA GEMM; a replica's
//! n × d neurons times the d × B batch), and σ, σ' over whole blocks through the
//! branch-free `math::tanh`/`sigmoid` (`Activation::f`), compiled per SIMD level
//! (`rng::simd`).
//!
//! Agreement with the scalar reference (`cpu::drift_reference`: dot products in order,
//! libm σ) is to float rounding, not bit for bit: the GEMM sums in its own order, with
//! FMA where the CPU has it. `tests/meanfield_cpu.rs` holds every dynamics × activation
//! to 1e-12 relative.

use super::model::Activation;
use super::real::Real;
use crate::rng::simd;
#[cfg(test)]
use crate::rng::simd::Level;

/// `u (m × B) = W (m × d, row stride `per`) · Xᵀ`, X the batch (B × d, row-major):
/// `u[k·B + j] = w_k · θ_j`.
pub fn pre_activations<R: Real>(w: &[R], per: usize, m: usize, d: usize, x: &[R], u: &mut [R]) {
    let b = x.len() / d;
    assert!(
        m == 0 || w.len() >= (m - 1) * per + d,
        "neuron block out of bounds"
    );
    assert!(u.len() >= m * b);
    // SAFETY: the asserts bound every index the GEMM touches: A rows k < m at k·per + i,
    // i < d; B = Xᵀ at j·d + i; C rows of length B.
    unsafe {
        R::gemm(
            m,
            d,
            b,
            R::one(),
            w.as_ptr(),
            per as isize,
            1,
            x.as_ptr(),
            1,
            d as isize,
            R::zero(),
            u.as_mut_ptr(),
            b as isize,
            1,
        )
    }
}

/// `Δw (m × d, row stride `per`) = −M (m × B) · X (B × d)`: overwrites the d weight
/// coordinates of each of the m neuron rows of `delta` (the first of each row is left).
pub fn weight_update<R: Real>(mm: &[R], x: &[R], d: usize, per: usize, delta: &mut [R]) {
    let b = x.len() / d;
    let m = mm.len() / b;
    assert!(
        m == 0 || delta.len() >= (m - 1) * per + d,
        "neuron block out of bounds"
    );
    // SAFETY: as in `pre_activations`; C's rows are disjoint (per ≥ d).
    unsafe {
        R::gemm(
            m,
            b,
            d,
            -R::one(),
            mm.as_ptr(),
            b as isize,
            1,
            x.as_ptr(),
            d as isize,
            1,
            R::zero(),
            delta.as_mut_ptr(),
            per as isize,
            1,
        )
    }
}

/// `r (1 × B) += aᵀ s`: `r_j += Σ_k a_k s_kj` over the m rows of `s` (m × B), with
/// a_k = `z[k·per]` (each neuron's outer weight). Four rows at a time into four
/// accumulators, so the adds over k are four chains, not one (a GEMM would pack all of
/// `s` first: more memory traffic than this product's arithmetic).
pub fn add_weighted_rows<R: Real>(z: &[R], per: usize, s: &[R], r: &mut [R]) {
    let b = r.len();
    let m = s.len() / b;
    assert!(
        m == 0 || z.len() > (m - 1) * per,
        "neuron block out of bounds"
    );
    let mut acc = vec![R::zero(); 4 * b];
    let (a0, rest) = acc.split_at_mut(b);
    let (a1, rest) = rest.split_at_mut(b);
    let (a2, a3) = rest.split_at_mut(b);
    let quads = m / 4;
    for q in 0..quads {
        let k = 4 * q;
        let rows = &s[k * b..(k + 4) * b];
        let (w0, w1, w2, w3) = (
            z[k * per],
            z[(k + 1) * per],
            z[(k + 2) * per],
            z[(k + 3) * per],
        );
        for j in 0..b {
            a0[j] += w0 * rows[j];
            a1[j] += w1 * rows[b + j];
            a2[j] += w2 * rows[2 * b + j];
            a3[j] += w3 * rows[3 * b + j];
        }
    }
    for k in 4 * quads..m {
        let w = z[k * per];
        for (a, v) in a0.iter_mut().zip(&s[k * b..(k + 1) * b]) {
            *a += w * *v;
        }
    }
    for j in 0..b {
        r[j] += (a0[j] + a1[j]) + (a2[j] + a3[j]);
    }
}

/// `out[k·per] = −Σ_j s_kj v_j` for the m rows of `s` (m × B): the outer weights'
/// update Δa = −S v (the other coordinates of each row are left). Rows are independent,
/// so their short sums overlap in the pipeline.
pub fn outer_update<R: Real>(s: &[R], v: &[R], per: usize, out: &mut [R]) {
    let b = v.len();
    let m = s.len() / b;
    assert!(
        m == 0 || out.len() > (m - 1) * per,
        "neuron block out of bounds"
    );
    for (k, row) in s.chunks_exact(b).enumerate() {
        let mut d = R::zero();
        for (x, y) in row.iter().zip(v) {
            d -= *x * *y;
        }
        out[k * per] = d;
    }
}

/// `s = σ(u)`, `ds = σ'(u)` elementwise (`Activation::f` and `df_given`: σ computed once).
pub fn activations<R: Real>(act: Activation, u: &[R], s: &mut [R], ds: &mut [R]) {
    R::activations(simd::level(), act, u, s, ds)
}

crate::per_level! {
    /// `activations` compiled for `level` (capped by what the CPU has). Every level does
    /// the same IEEE operations in the same order, so all give the same bits (tested).
    pub fn activations_at(act: Activation, u: &[f64], s: &mut [f64], ds: &mut [f64]) => activations_body::<f64>
}

crate::per_level! {
    /// `activations_at` in f32 (the `"precision": "f32"` CPU path).
    pub fn activations_f32_at(act: Activation, u: &[f32], s: &mut [f32], ds: &mut [f32]) => activations_body::<f32>
}

/// One straight loop per activation (each arm passes `act` as a constant, so the
/// inlined `f`/`df_given` lose their `match`), inlined into each compiled copy.
#[inline(always)]
fn activations_body<R: Real>(act: Activation, u: &[R], s: &mut [R], ds: &mut [R]) {
    #[inline(always)]
    fn each<R: Real>(act: Activation, u: &[R], s: &mut [R], ds: &mut [R]) {
        for ((u, s), ds) in u.iter().zip(s.iter_mut()).zip(ds.iter_mut()) {
            let v = act.f(*u);
            *s = v;
            *ds = act.df_given(*u, v);
        }
    }
    match act {
        Activation::Tanh => each(Activation::Tanh, u, s, ds),
        Activation::Sigmoid => each(Activation::Sigmoid, u, s, ds),
        Activation::Relu => each(Activation::Relu, u, s, ds),
        Activation::Linear => each(Activation::Linear, u, s, ds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every SIMD level of `R::activations` against the scalar formulas, bit for bit.
    fn every_level_gives_the_bits<R: Real>() {
        let u: Vec<R> = (0..1003)
            .map(|i| (crate::rng::uniform((i as u32).wrapping_mul(2_654_435_761)) - 0.5) * 30.0)
            .chain([0.0, -0.0, 0.625, -0.625, 25.0, f64::NAN])
            .map(R::of)
            .collect();
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
            Activation::Linear,
        ] {
            for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
                let (mut s, mut ds) = (vec![R::zero(); u.len()], vec![R::zero(); u.len()]);
                R::activations(level, act, &u, &mut s, &mut ds);
                for (i, &x) in u.iter().enumerate() {
                    let (want, dwant) = (act.f(x), act.df(x));
                    let same = |a: R, b: R| a == b || (a.is_nan() && b.is_nan());
                    assert!(
                        same(s[i], want) && s[i].is_sign_negative() == want.is_sign_negative(),
                        "{act:?} {level:?} σ({x:?})"
                    );
                    assert!(same(ds[i], dwant), "{act:?} {level:?} σ'({x:?})");
                }
            }
        }
    }

    #[test]
    fn every_level_gives_the_bits_of_the_scalar_formulas() {
        every_level_gives_the_bits::<f64>();
        every_level_gives_the_bits::<f32>();
    }

    #[test]
    fn f32_products_match_f64_products_to_f32_rounding() {
        let (m, d, b, per) = (37, 5, 3, 7);
        let w: Vec<f64> = (0..m * per).map(|i| (i as f64 * 0.37).sin()).collect();
        let x: Vec<f64> = (0..b * d).map(|i| (i as f64 * 0.71).cos()).collect();
        let (w32, x32): (Vec<f32>, Vec<f32>) = (
            w.iter().map(|v| *v as f32).collect(),
            x.iter().map(|v| *v as f32).collect(),
        );
        let (mut u, mut u32_) = (vec![0.0; m * b], vec![0.0f32; m * b]);
        pre_activations(&w, per, m, d, &x, &mut u);
        pre_activations(&w32, per, m, d, &x32, &mut u32_);
        for (a, b) in u.iter().zip(&u32_) {
            assert!((a - *b as f64).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn products_match_dot_products() {
        let (m, d, b, per) = (37, 5, 3, 7); // rows padded: per > d + 1
        let w: Vec<f64> = (0..m * per).map(|i| (i as f64 * 0.37).sin()).collect();
        let x: Vec<f64> = (0..b * d).map(|i| (i as f64 * 0.71).cos()).collect();
        let mut u = vec![f64::NAN; m * b]; // beta = 0: C is never read
        pre_activations(&w, per, m, d, &x, &mut u);
        let mm: Vec<f64> = (0..m * b).map(|i| (i as f64 * 0.13).sin()).collect();
        let mut delta = vec![7.0; m * per];
        weight_update(&mm, &x, d, per, &mut delta);
        for k in 0..m {
            for j in 0..b {
                let want: f64 = (0..d).map(|i| w[k * per + i] * x[j * d + i]).sum();
                assert!((u[k * b + j] - want).abs() < 1e-14, "u[{k},{j}]");
            }
            for i in 0..d {
                let want: f64 = -(0..b).map(|j| mm[k * b + j] * x[j * d + i]).sum::<f64>();
                assert!((delta[k * per + i] - want).abs() < 1e-14, "Δw[{k},{i}]");
            }
            assert!(
                delta[k * per + d..(k + 1) * per].iter().all(|v| *v == 7.0),
                "row {k} padding"
            );
        }
    }
}
