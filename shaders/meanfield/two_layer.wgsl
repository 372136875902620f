// The WGSL twin of src/meanfield/model.rs: `Activation` (ACT: 0 tanh, 1 relu,
// 2 sigmoid, 3 linear) and `TestFn` (PHI: 0 a, 1 a², 2 |w|², 3 a·w₁, 4 tanh(a)·w₁),
// codes in the same order. Needs `alias real`, consts ACT and PHI, r_tanh and
// r_sigmoid (common/math*.wgsl).

fn act_f(u: real) -> real {
    if (ACT == 0u) {
        return r_tanh(u);
    }
    if (ACT == 1u) {
        return max(u, real(0.0));
    }
    if (ACT == 2u) {
        return r_sigmoid(u);
    }
    return u;
}

// (σ(u), σ'(u)) in one go (one tanh/exp); relu takes σ'(0) = 0.
fn act_fdf(u: real) -> vec2<real> {
    if (ACT == 0u) {
        let t = r_tanh(u);
        return vec2<real>(t, real(1.0) - t * t);
    }
    if (ACT == 1u) {
        return vec2<real>(max(u, real(0.0)), select(real(0.0), real(1.0), u > real(0.0)));
    }
    if (ACT == 2u) {
        let s = r_sigmoid(u);
        return vec2<real>(s, s * (real(1.0) - s));
    }
    return vec2<real>(u, real(1.0));
}

// φ(z) of a neuron z = (a, w) from a, w₁ and |w|².
fn test_fn(a: real, w1: real, w2: real) -> real {
    switch PHI {
        case 0u: { return a; }
        case 1u: { return a * a; }
        case 2u: { return w2; }
        case 3u: { return a * w1; }
        default: { return r_tanh(a) * w1; }
    }
}

// (σ(u), σ'(u), σ''(u)) in one go (model::Activation::d2f): tanh −2t(1 − t²),
// sigmoid s(1 − s)(1 − 2s), relu and linear 0.
fn act_fdd(u: real) -> vec3<real> {
    if (ACT == 0u) {
        let t = r_tanh(u);
        let dt = real(1.0) - t * t;
        return vec3<real>(t, dt, real(-2.0) * t * dt);
    }
    if (ACT == 2u) {
        let s = r_sigmoid(u);
        let ds = s * (real(1.0) - s);
        return vec3<real>(s, ds, ds * (real(1.0) - real(2.0) * s));
    }
    return vec3<real>(act_fdf(u), real(0.0));
}
