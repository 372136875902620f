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
use crate::rng::simd::{self, Level};

/// `u (m × B) = W (m × d, row stride `per`) · Xᵀ`, X the batch (B × d, row-major):
/// `u[k·B + j] = w_k · θ_j`.
pub fn pre_activations(w: &[f64], per: usize, m: usize, d: usize, x: &[f64], u: &mut [f64]) {
    let b = x.len() / d;
    assert!(
        m == 0 || w.len() >= (m - 1) * per + d,
        "neuron block out of bounds"
    );
    assert!(u.len() >= m * b);
    // SAFETY: the asserts bound every index the GEMM touches: A rows k < m at k·per + i,
    // i < d; B = Xᵀ at j·d + i; C rows of length B.
    unsafe {
        matrixmultiply::dgemm(
            m,
            d,
            b,
            1.0,
            w.as_ptr(),
            per as isize,
            1,
            x.as_ptr(),
            1,
            d as isize,
            0.0,
            u.as_mut_ptr(),
            b as isize,
            1,
        )
    }
}

/// `Δw (m × d, row stride `per`) = −M (m × B) · X (B × d)`: overwrites the d weight
/// coordinates of each of the m neuron rows of `delta` (the first of each row is left).
pub fn weight_update(mm: &[f64], x: &[f64], d: usize, per: usize, delta: &mut [f64]) {
    let b = x.len() / d;
    let m = mm.len() / b;
    assert!(
        m == 0 || delta.len() >= (m - 1) * per + d,
        "neuron block out of bounds"
    );
    // SAFETY: as in `pre_activations`; C's rows are disjoint (per ≥ d).
    unsafe {
        matrixmultiply::dgemm(
            m,
            b,
            d,
            -1.0,
            mm.as_ptr(),
            b as isize,
            1,
            x.as_ptr(),
            d as isize,
            1,
            0.0,
            delta.as_mut_ptr(),
            per as isize,
            1,
        )
    }
}

/// `r (1 × B) += aᵀ s`: `r_j += Σ_k a_k s_kj` over the m rows of `s` (m × B), with
/// a_k = `z[k·per]` (each neuron's outer weight), as one GEMM (no serial chain over k).
pub fn add_weighted_rows(z: &[f64], per: usize, s: &[f64], r: &mut [f64]) {
    let b = r.len();
    let m = s.len() / b;
    assert!(m == 0 || z.len() > (m - 1) * per, "neuron block out of bounds");
    // SAFETY: A = z at k·per, k < m (asserted); B = s (m × B); C = r (1 × B).
    unsafe {
        matrixmultiply::dgemm(
            1,
            m,
            b,
            1.0,
            z.as_ptr(),
            1,
            per as isize,
            s.as_ptr(),
            b as isize,
            1,
            1.0,
            r.as_mut_ptr(),
            b as isize,
            1,
        )
    }
}

/// `out[k·per] = −Σ_j s_kj v_j` for the m rows of `s` (m × B): the outer weights'
/// update Δa = −S v as one GEMM (the other coordinates of each row are left).
pub fn outer_update(s: &[f64], v: &[f64], per: usize, out: &mut [f64]) {
    let b = v.len();
    let m = s.len() / b;
    assert!(m == 0 || out.len() > (m - 1) * per, "neuron block out of bounds");
    // SAFETY: A = s (m × B); B = v (B × 1); C = out at k·per, k < m (asserted).
    unsafe {
        matrixmultiply::dgemm(
            m,
            b,
            1,
            -1.0,
            s.as_ptr(),
            b as isize,
            1,
            v.as_ptr(),
            1,
            1,
            0.0,
            out.as_mut_ptr(),
            per as isize,
            1,
        )
    }
}

/// `s = σ(u)`, `ds = σ'(u)` elementwise (`Activation::f` and `df_given`: σ computed once).
pub fn activations(act: Activation, u: &[f64], s: &mut [f64], ds: &mut [f64]) {
    activations_at(simd::level(), act, u, s, ds)
}

/// `activations` compiled for `level` (capped by what the CPU has). Every level does the
/// same IEEE operations in the same order, so all give the same bits (tested).
pub fn activations_at(level: Level, act: Activation, u: &[f64], s: &mut [f64], ds: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        match level.min(simd::detected()) {
            // SAFETY: `simd::level()` never exceeds what the CPU reports.
            Level::Avx512 => unsafe { return activations_avx512(act, u, s, ds) },
            Level::Avx2 => unsafe { return activations_avx2(act, u, s, ds) },
            Level::Scalar => {}
        }
    }
    activations_body(act, u, s, ds)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2")]
unsafe fn activations_avx512(act: Activation, u: &[f64], s: &mut [f64], ds: &mut [f64]) {
    activations_body(act, u, s, ds)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn activations_avx2(act: Activation, u: &[f64], s: &mut [f64], ds: &mut [f64]) {
    activations_body(act, u, s, ds)
}

/// One straight loop per activation (each arm passes `act` as a constant, so the
/// inlined `f`/`df_given` lose their `match`), inlined into each compiled copy.
#[inline(always)]
fn activations_body(act: Activation, u: &[f64], s: &mut [f64], ds: &mut [f64]) {
    #[inline(always)]
    fn each(act: Activation, u: &[f64], s: &mut [f64], ds: &mut [f64]) {
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

    #[test]
    fn every_level_gives_the_bits_of_the_scalar_formulas() {
        let u: Vec<f64> = (0..1003)
            .map(|i| (crate::rng::uniform((i as u32).wrapping_mul(2_654_435_761)) - 0.5) * 30.0)
            .chain([0.0, -0.0, 0.625, -0.625, 25.0, f64::NAN])
            .collect();
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
            Activation::Linear,
        ] {
            for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
                let (mut s, mut ds) = (vec![0.0; u.len()], vec![0.0; u.len()]);
                activations_at(level, act, &u, &mut s, &mut ds);
                for (i, &x) in u.iter().enumerate() {
                    assert_eq!(
                        s[i].to_bits(),
                        act.f(x).to_bits(),
                        "{act:?} {level:?} σ({x})"
                    );
                    assert_eq!(
                        ds[i].to_bits(),
                        act.df(x).to_bits(),
                        "{act:?} {level:?} σ'({x})"
                    );
                }
            }
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
