//! `deep_linear` (DESIGN §4b, seed 004): the end-to-end predictor of a depth-L linear
//! network, β = W_L ⋯ W_1 with W_1 ∈ R^{h×d}, W_2 … W_{L−1} ∈ R^{h×h}, W_L ∈ R^{1×h}.
//! The parameters w are the layers row-major, W_1 first (p = hd + (L−2)h² + h).
//!
//! Unlike `uv` / `plus_minus` the Jacobian J = ∂β/∂w is dense, so each map is a pass
//! over the layers with the partial products
//!   a_i = W_L ⋯ W_{i+1} (a row, a_L = 1) and c_i = W_i ⋯ W_1 g (a column, c_0 = g):
//! ⟨β, g⟩ = a_i W_i c_{i−1}, so (Jᵀg) on W_i is the outer product a_iᵀ c_{i−1}ᵀ; J v
//! is the forward-mode derivative of the row product; and the Hessian's curvature part
//! (∂(Jᵀg)/∂w) v is da_iᵀ c_{i−1}ᵀ + a_iᵀ dc_{i−1}ᵀ with the derivatives da, dc of
//! the partial products along v. Written over `T: Num` like `net::Param`, whose
//! `DeepLinear` variant calls these. The GPU twin is `shaders/train/deep_linear.wgsl`
//! (train.wgsl's DENSE path), in the same order of operations.

use crate::lanes::Num;

/// Depth L and width h.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeepLinear {
    pub depth: u32,
    pub width: u32,
}

/// Shape of layer i (0-based, W_{i+1}): rows × cols at offset `off` in w.
#[derive(Clone, Copy)]
struct Layer {
    rows: usize,
    cols: usize,
    off: usize,
}

impl Layer {
    /// r W (r of length rows) → length cols.
    fn row_times<T: Num>(&self, w: &[T], r: &[T]) -> Vec<T> {
        let mut out = vec![T::ZERO; self.cols];
        for (j, &rj) in r.iter().enumerate() {
            let row = &w[self.off + j * self.cols..self.off + (j + 1) * self.cols];
            for (o, &wjk) in out.iter_mut().zip(row) {
                *o += rj * wjk;
            }
        }
        out
    }

    /// W c (c of length cols) → length rows.
    fn times_col<T: Num>(&self, w: &[T], c: &[T]) -> Vec<T> {
        (0..self.rows)
            .map(|j| {
                let row = &w[self.off + j * self.cols..self.off + (j + 1) * self.cols];
                let mut s = T::ZERO;
                for (&wjk, &ck) in row.iter().zip(c) {
                    s += wjk * ck;
                }
                s
            })
            .collect()
    }

    /// out[W] += a ⊗ c (the rows × cols outer product).
    fn add_outer<T: Num>(&self, a: &[T], c: &[T], out: &mut [T]) {
        for (j, &aj) in a.iter().enumerate() {
            let row = &mut out[self.off + j * self.cols..self.off + (j + 1) * self.cols];
            for (o, &ck) in row.iter_mut().zip(c) {
                *o += aj * ck;
            }
        }
    }
}

fn add<T: Num>(a: &mut [T], b: &[T]) {
    a.iter_mut().zip(b).for_each(|(x, &y)| *x += y);
}

impl DeepLinear {
    pub const MIN_DEPTH: u32 = 3;
    pub const MAX_DEPTH: u32 = 8;
    pub const MAX_WIDTH: u32 = 256;

    fn layers(&self, d: usize) -> Vec<Layer> {
        let (l, h) = (self.depth as usize, self.width as usize);
        let mut off = 0;
        (0..l)
            .map(|i| {
                let rows = if i + 1 == l { 1 } else { h };
                let cols = if i == 0 { d } else { h };
                let layer = Layer { rows, cols, off };
                off += rows * cols;
                layer
            })
            .collect()
    }

    /// Parameters p for d features.
    pub fn params(&self, d: usize) -> usize {
        let (l, h) = (self.depth as usize, self.width as usize);
        h * d + (l - 2) * h * h + h
    }

    /// The rows a_L = 1, a_{L−1}, …, a_0 = β (index i holds a_i), and with a direction
    /// v their derivatives da_i along v (da_L = 0; da_0 = J v), else no derivatives.
    fn rows_down<T: Num>(
        &self,
        layers: &[Layer],
        w: &[T],
        v: Option<&[T]>,
    ) -> (Vec<Vec<T>>, Vec<Vec<T>>) {
        let l = layers.len();
        let mut a = vec![Vec::new(); l + 1];
        a[l] = vec![T::splat(1.0)];
        let mut da = Vec::new();
        if v.is_some() {
            da = vec![Vec::new(); l + 1];
            da[l] = vec![T::ZERO];
        }
        for i in (0..l).rev() {
            if let Some(v) = v {
                let mut d = layers[i].row_times(w, &da[i + 1]);
                add(&mut d, &layers[i].row_times(v, &a[i + 1]));
                da[i] = d;
            }
            a[i] = layers[i].row_times(w, &a[i + 1]);
        }
        (a, da)
    }

    /// β(w) = a_0 into out (length d).
    pub fn beta<T: Num>(&self, w: &[T], out: &mut [T]) {
        let (a, _) = self.rows_down(&self.layers(out.len()), w, None);
        out.copy_from_slice(&a[0]);
    }

    /// Jᵀ g (g ∈ R^d) into out ∈ R^p: on W_i the outer product a_iᵀ c_{i−1}ᵀ.
    pub fn pull<T: Num>(&self, w: &[T], g: &[T], out: &mut [T]) {
        let layers = self.layers(g.len());
        out.iter_mut().for_each(|o| *o = T::ZERO);
        let (a, _) = self.rows_down(&layers, w, None);
        let mut c = g.to_vec();
        for (i, layer) in layers.iter().enumerate() {
            layer.add_outer(&a[i + 1], &c, out);
            if i + 1 < layers.len() {
                c = layer.times_col(w, &c);
            }
        }
    }

    /// J v (v ∈ R^p) into out ∈ R^d: da_0, the derivative of β = a_0 along v.
    pub fn push<T: Num>(&self, w: &[T], v: &[T], out: &mut [T]) {
        let (_, da) = self.rows_down(&self.layers(out.len()), w, Some(v));
        out.copy_from_slice(&da[0]);
    }

    /// (∂(Jᵀ g)/∂w) v added into out ∈ R^p: on W_i, da_iᵀ c_{i−1}ᵀ + a_iᵀ dc_{i−1}ᵀ.
    pub fn curv_add<T: Num>(&self, w: &[T], g: &[T], v: &[T], out: &mut [T]) {
        let layers = self.layers(g.len());
        let l = layers.len();
        let (a, da) = self.rows_down(&layers, w, Some(v));
        // Columns c_{i−1} and dc_{i−1} (c_0 = g, dc_0 = 0), from the bottom.
        let mut c = g.to_vec();
        let mut dc = vec![T::ZERO; g.len()];
        for (i, layer) in layers.iter().enumerate() {
            layer.add_outer(&da[i + 1], &c, out);
            layer.add_outer(&a[i + 1], &dc, out);
            if i + 1 < l {
                let mut next_dc = layer.times_col(v, &c);
                add(&mut next_dc, &layer.times_col(w, &dc));
                c = layer.times_col(w, &c);
                dc = next_dc;
            }
        }
    }

    /// The identity-like small initialisation at scale α: W_1 = α I_{h×d} (ones on the
    /// diagonal), W_2 … W_{L−1} = α I_h, W_L = α 1ᵀ/√h; β(w0) = α^L/√h on the first
    /// min(h, d) features.
    pub fn init(&self, d: usize, alpha: f64) -> Vec<f64> {
        let layers = self.layers(d);
        let mut w = vec![0.0; self.params(d)];
        for (i, layer) in layers.iter().enumerate() {
            if i + 1 == layers.len() {
                let v = alpha / (layer.cols as f64).sqrt();
                w[layer.off..layer.off + layer.cols].fill(v);
            } else {
                for j in 0..layer.rows.min(layer.cols) {
                    w[layer.off + j * layer.cols + j] = alpha;
                }
            }
        }
        w
    }
}
