// The per-sample loss ℓ(m, y) of the margin m = x·β (twin of src/train/loss.rs),
// selected by the composed constant LOSS (Loss::code): 0 squared, ℓ' = m − y, ℓ'' = 1;
// 1 logistic (cross-entropy, y ∈ {0, 1}), ℓ' = σ(m) − y, ℓ'' = σ(m)(1 − σ(m)).
// With real = f64, σ's exp is evaluated in f32 (math.wgsl): ~1e-7 relative.

fn loss_slope(m: real, y: real) -> real {
    if (LOSS == 1u) {
        return r_sigmoid(m) - y;
    }
    return m - y;
}

fn loss_curvature(m: real) -> real {
    if (LOSS == 1u) {
        let p = r_sigmoid(m);
        return p * (real(1.0) - p);
    }
    return real(1.0);
}
