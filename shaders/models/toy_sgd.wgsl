// `toy_sgd`: ∇R(x, θ) = ∇f(x) + sqrt(σ f(x)) θ, θ = z ~ N(0, I_D)  (twin of
// src/model/toy_sgd.rs). Constants from the header (src/backend/gpu/model_consts.rs):
// T_LOSS (0: double_well f = c0 + ¼(r² − 1)²; 1: ring f = c0 + ½ k0 (1 + a u)(r − 1)²,
// u = 2x₁/(1 + r²)), T_SIGMA, T_C0, T_K0, T_A. No exact transition: `exact_step` is
// the identity and is never selected (config rejects solver "exact" for toy_sgd).

fn t_dot(a: vec_d, b: vec_d) -> real {
    var s = real(0.0);
    for (var i = 0u; i < D; i++) {
        s += a[i] * b[i];
    }
    return s;
}

// f(x), clamped at 0 (rounding only).
fn t_f(x: vec_d) -> real {
    let r2 = t_dot(x, x);
    var v: real;
    if (T_LOSS == 0u) {
        v = T_C0 + real(0.25) * (r2 - real(1.0)) * (r2 - real(1.0));
    } else {
        let r = sqrt(r2);
        let u = real(2.0) * x[0] / (real(1.0) + r2);
        v = T_C0 + real(0.5) * T_K0 * (real(1.0) + T_A * u) * (r - real(1.0)) * (r - real(1.0));
    }
    return max(v, real(0.0));
}

// sqrt(σ f(x)).
fn t_amp(x: vec_d) -> real {
    return sqrt(T_SIGMA * t_f(x));
}

fn sample_theta(z: array<real, NT>) -> vec_d {
    var t: vec_d;
    for (var i = 0u; i < D; i++) {
        t[i] = z[i];
    }
    return t;
}

fn grad(x: vec_d) -> vec_d {
    let r2 = t_dot(x, x);
    var g: vec_d;
    if (T_LOSS == 0u) {
        for (var i = 0u; i < D; i++) {
            g[i] = (r2 - real(1.0)) * x[i];
        }
    } else {
        let r = sqrt(r2);
        let p = real(1.0) + r2;
        let u = real(2.0) * x[0] / p;
        let q = (r - real(1.0)) * (r - real(1.0));
        // ∇q = 2(r − 1) x/r (0 at r = 0); ∇u = 2(e₁ − u x)/(1 + r²).
        var cq = real(0.0);
        if (r > real(0.0)) {
            cq = real(2.0) * (r - real(1.0)) / r;
        }
        for (var i = 0u; i < D; i++) {
            let e1 = select(real(0.0), real(1.0), i == 0u);
            let du = real(2.0) * (e1 - u * x[i]) / p;
            g[i] = real(0.5) * T_K0 * (T_A * q * du + (real(1.0) + T_A * u) * cq * x[i]);
        }
    }
    return g;
}

fn grad_sample(x: vec_d, theta: vec_d) -> vec_d {
    var g = grad(x);
    let a = t_amp(x);
    for (var i = 0u; i < D; i++) {
        g[i] += a * theta[i];
    }
    return g;
}

fn hvp(x: vec_d, v: vec_d) -> vec_d {
    let r2 = t_dot(x, x);
    let xv = t_dot(x, v);
    var h: vec_d;
    if (T_LOSS == 0u) {
        // H = 2 x xᵀ + (r² − 1) I.
        for (var i = 0u; i < D; i++) {
            h[i] = real(2.0) * xv * x[i] + (r2 - real(1.0)) * v[i];
        }
    } else {
        let r = sqrt(r2);
        let p = real(1.0) + r2;
        let u = real(2.0) * x[0] / p;
        let q = (r - real(1.0)) * (r - real(1.0));
        var cq = real(0.0);
        var inv_r = real(0.0);
        if (r > real(0.0)) {
            cq = real(2.0) * (r - real(1.0)) / r;
            inv_r = real(1.0) / r;
        }
        var du: vec_d;
        for (var i = 0u; i < D; i++) {
            let e1 = select(real(0.0), real(1.0), i == 0u);
            du[i] = real(2.0) * (e1 - u * x[i]) / p;
        }
        let duv = t_dot(du, v);
        let dqv = cq * xv;
        let hv = xv * inv_r;
        // H_q = 2 x̂x̂ᵀ + 2(r − 1)/r (I − x̂x̂ᵀ); H_u v = −(2(∇u·v) x + 2u v + 2(x·v)∇u)/(1 + r²).
        for (var i = 0u; i < D; i++) {
            let xh = x[i] * inv_r;
            let hq = real(2.0) * hv * xh + cq * (v[i] - hv * xh);
            let hu = -(real(2.0) * duv * x[i] + real(2.0) * u * v[i] + real(2.0) * xv * du[i]) / p;
            h[i] = real(0.5) * T_K0
                * (T_A * duv * cq * x[i] + T_A * dqv * du[i] + T_A * q * hu + (real(1.0) + T_A * u) * hq);
        }
    }
    return h;
}

fn loss(x: vec_d) -> real {
    return t_f(x);
}

// ∫ G W(dθ, dt), G = −sqrt(σ f) θ: exactly −sqrt(σ f) dw.
fn smf_noise(x: vec_d, dw: array<real, NSMF>) -> vec_d {
    let a = t_amp(x);
    var g: vec_d;
    for (var i = 0u; i < D; i++) {
        g[i] = -a * dw[i];
    }
    return g;
}

// Σ^{1/2} dw = sqrt(σ f) dw.
fn sme_noise(x: vec_d, dw: vec_d) -> vec_d {
    let a = t_amp(x);
    var g: vec_d;
    for (var i = 0u; i < D; i++) {
        g[i] = a * dw[i];
    }
    return g;
}

// Never selected (no closed-form transition); present so every kernel composes.
fn exact_step(x: vec_z, xi: array<real, NE>) -> vec_z {
    return x;
}
