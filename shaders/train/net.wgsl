// The WGSL twin of `train::net::Param` (src/train/net.rs), one feature at a time.
// J = ∂β/∂w is diagonal per block, so every map acts on the pair
// w_j = (w[j], w[D + j]) of feature j (Linear uses only .x; p = D there).
// Needs `const PARAM: u32` (0 linear, 1 uv, 2 plus_minus) and `alias real`.

// β_j(w).
fn net_beta(w: vec2<real>) -> real {
    if (PARAM == 0u) {
        return w.x;
    }
    if (PARAM == 1u) {
        return w.x * w.y;
    }
    return w.x * w.x - w.y * w.y;
}

// (Jᵀ g)_j: the pair of parameter components of feature j.
fn net_pull(w: vec2<real>, g: real) -> vec2<real> {
    if (PARAM == 0u) {
        return vec2<real>(g, real(0.0));
    }
    if (PARAM == 1u) {
        return vec2<real>(w.y * g, w.x * g);
    }
    return vec2<real>(real(2.0) * w.x * g, real(-2.0) * w.y * g);
}

// (J v)_j for the pair v of feature j.
fn net_push(w: vec2<real>, v: vec2<real>) -> real {
    if (PARAM == 0u) {
        return v.x;
    }
    if (PARAM == 1u) {
        return w.y * v.x + w.x * v.y;
    }
    return real(2.0) * (w.x * v.x - w.y * v.y);
}

// The second-derivative part of the Hessian, (∂(Jᵀ g)/∂w) v, for feature j.
fn net_curv(g: real, v: vec2<real>) -> vec2<real> {
    if (PARAM == 0u) {
        return vec2<real>(real(0.0), real(0.0));
    }
    if (PARAM == 1u) {
        return vec2<real>(v.y * g, v.x * g);
    }
    return vec2<real>(real(2.0) * v.x * g, real(-2.0) * v.y * g);
}

// q(x) = −ln|1 − x²|, the per-step Gain increment (net::gain_q). For x² < 1/4 as
// 2 atanh(z), z = x²/(2 − x²): accurate to the last bit for the small arguments Gain
// sees (a log of 1 − x² would lose the digits of x² below the rounding of 1 − x²).
fn gain_q(x: real) -> real {
    let t = x * x;
    if (t < real(0.25)) {
        let z = t / (real(2.0) - t);
        let z2 = z * z;
        var s = real(1.0 / 21.0);
        s = real(1.0 / 19.0) + z2 * s;
        s = real(1.0 / 17.0) + z2 * s;
        s = real(1.0 / 15.0) + z2 * s;
        s = real(1.0 / 13.0) + z2 * s;
        s = real(1.0 / 11.0) + z2 * s;
        s = real(1.0 / 9.0) + z2 * s;
        s = real(1.0 / 7.0) + z2 * s;
        s = real(1.0 / 5.0) + z2 * s;
        s = real(1.0 / 3.0) + z2 * s;
        s = real(1.0) + z2 * s;
        return real(2.0) * z * s;
    }
    return -r_log(abs(real(1.0) - t));
}
