// Observables g on a replica's state (twin of src/observables.rs). The composer
// generates `fn observe(o, level)` that applies observable o to the right particles.

fn obs_norm2(x: vec_d) -> real {
    var s = real(0.0);
    for (var i = 0u; i < D; i++) {
        s += x[i] * x[i];
    }
    return s;
}

fn obs_x0(x: vec_d) -> real {
    return x[0];
}

fn obs_cos(x: vec_d) -> real {
    return r_cos(x[0]);
}

fn obs_loss(x: vec_d) -> real {
    return loss(x);
}

fn obs_prod(a: vec_d, b: vec_d) -> real {
    return a[0] * b[0];
}

fn obs_dist2(a: vec_d, b: vec_d) -> real {
    var s = real(0.0);
    for (var i = 0u; i < D; i++) {
        let t = a[i] - b[i];
        s += t * t;
    }
    return s;
}

// Value and solver-error estimate from the levels' observables: the twin of
// `solver::levels::value_and_error` (src/solver/levels.rs), in the same order.
fn combine_levels(g: array<real, 3>) -> vec2<real> {
    if (LEVELS == 1u) {
        return vec2<real>(g[0], real(0.0));
    }
    if (LEVELS == 2u) {
        if (ODE) {
            return vec2<real>(g[0], (g[0] - g[1]) / real(15.0));
        }
        return vec2<real>(g[0], g[0] - g[1]);
    }
    let fine = real(2.0) * g[0] - g[1];
    let coarse = real(2.0) * g[1] - g[2];
    return vec2<real>(fine, (fine - coarse) / real(3.0));
}
