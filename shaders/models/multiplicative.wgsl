// `multiplicative`: R(x, θ) = ½ θ |x|², θ = μ + s z  (twin of
// src/model/multiplicative.rs). Constants from the header: M_MEAN (μ), M_STD (s) and
// the exact geometric-BM step EX_DRIFT, EX_VOL.

fn m_norm2(x: vec_d) -> real {
    var s = real(0.0);
    for (var i = 0u; i < D; i++) {
        s += x[i] * x[i];
    }
    return s;
}

fn sample_theta(z: array<real, NT>) -> vec_d {
    var t: vec_d;
    t[0] = M_MEAN + M_STD * z[0];
    return t;
}

fn grad_sample(x: vec_d, theta: vec_d) -> vec_d {
    var g: vec_d;
    for (var i = 0u; i < D; i++) {
        g[i] = theta[0] * x[i];
    }
    return g;
}

fn grad(x: vec_d) -> vec_d {
    var g: vec_d;
    for (var i = 0u; i < D; i++) {
        g[i] = M_MEAN * x[i];
    }
    return g;
}

fn hvp(x: vec_d, v: vec_d) -> vec_d {
    var g: vec_d;
    for (var i = 0u; i < D; i++) {
        g[i] = M_MEAN * v[i];
    }
    return g;
}

fn loss(x: vec_d) -> real {
    return real(0.5) * M_MEAN * m_norm2(x);
}

fn smf_noise(x: vec_d, dw: array<real, NSMF>) -> vec_d {
    var g: vec_d;
    for (var i = 0u; i < D; i++) {
        g[i] = -M_STD * x[i] * dw[0];
    }
    return g;
}

// Σ^{1/2} dw = s x (x·dw)/|x| (zero at x = 0).
fn sme_noise(x: vec_d, dw: vec_d) -> vec_d {
    let r = sqrt(m_norm2(x));
    var g: vec_d;
    if (r > real(0.0)) {
        var proj = real(0.0);
        for (var i = 0u; i < D; i++) {
            proj += x[i] * dw[i];
        }
        proj = proj / r;
        for (var i = 0u; i < D; i++) {
            g[i] = M_STD * x[i] * proj;
        }
    }
    return g;
}

// X ← X exp(drift + vol ξ) on the first D coordinates of z (no transition of the pair
// (X, P) exists: config refuses msme1's exact solver for this model).
fn exact_step(x: vec_z, xi: array<real, NE>) -> vec_z {
    let f = r_exp(EX_DRIFT + EX_VOL * xi[0]);
    var out = x;
    for (var i = 0u; i < D; i++) {
        out[i] = out[i] * f;
    }
    return out;
}
