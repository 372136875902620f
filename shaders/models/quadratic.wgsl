// `quadratic`: R(x, θ) = ½ (x − θ)ᵀ A (x − θ), θ = m + S^{1/2} z  (twin of
// src/model/quadratic.rs). Constants from the header (src/backend/gpu/model_consts.rs):
// Q_A, Q_MEAN, Q_SHALF, Q_F = A S^{1/2}, Q_SIGHALF = Σ^{1/2}, Q_TR_AS = tr(A S),
// and the exact OU step EX_MEAN, EX_E, EX_C (row-major NZ×NZ).

fn q_matvec(m: array<real, DD>, v: vec_d) -> vec_d {
    var out: vec_d;
    for (var i = 0u; i < D; i++) {
        var s = real(0.0);
        for (var j = 0u; j < D; j++) {
            s += m[i * D + j] * v[j];
        }
        out[i] = s;
    }
    return out;
}

fn sample_theta(z: array<real, NT>) -> vec_d {
    var zz: vec_d;
    for (var i = 0u; i < D; i++) {
        zz[i] = z[i];
    }
    var t = q_matvec(Q_SHALF, zz);
    for (var i = 0u; i < D; i++) {
        t[i] += Q_MEAN[i];
    }
    return t;
}

fn grad_sample(x: vec_d, theta: vec_d) -> vec_d {
    var diff: vec_d;
    for (var i = 0u; i < D; i++) {
        diff[i] = x[i] - theta[i];
    }
    return q_matvec(Q_A, diff);
}

fn grad(x: vec_d) -> vec_d {
    var diff: vec_d;
    for (var i = 0u; i < D; i++) {
        diff[i] = x[i] - Q_MEAN[i];
    }
    return q_matvec(Q_A, diff);
}

fn hvp(x: vec_d, v: vec_d) -> vec_d {
    return q_matvec(Q_A, v);
}

fn loss(x: vec_d) -> real {
    let g = grad(x);
    var quad = real(0.0);
    for (var i = 0u; i < D; i++) {
        quad += (x[i] - Q_MEAN[i]) * g[i];
    }
    return real(0.5) * (quad + Q_TR_AS);
}

fn smf_noise(x: vec_d, dw: array<real, NSMF>) -> vec_d {
    var w: vec_d;
    for (var i = 0u; i < D; i++) {
        w[i] = dw[i];
    }
    return q_matvec(Q_F, w);
}

fn sme_noise(x: vec_d, dw: vec_d) -> vec_d {
    return q_matvec(Q_SIGHALF, dw);
}

// z ← m + E (z − m) + C ξ on the NZ coordinates of z: X (NZ = D), or msme1's pair
// (X, P) stacked (NZ = 2D, m = (mean, 0)); NE = NZ normals.
fn exact_step(z: vec_z, xi: array<real, NE>) -> vec_z {
    var out: vec_z;
    for (var i = 0u; i < NZ; i++) {
        var s = EX_MEAN[i];
        for (var j = 0u; j < NZ; j++) {
            s += EX_E[i * NZ + j] * (z[j] - EX_MEAN[j]) + EX_C[i * NZ + j] * xi[j];
        }
        out[i] = s;
    }
    return out;
}
