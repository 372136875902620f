// sme* / smf* (twin of `path::em_step` and `path::exact_step`).
// Euler–Maruyama on coupled levels: fine substep s uses normals s·NC .. (s+1)·NC of
// the step; level l steps every 2^l fine substeps with the sum of the fine increments.
// NC = NSMF (SMF: one reduced cylindrical noise shared by the particles) or P·D (SME:
// independent per particle). EXACT: one OU/GBM transition per SGD step, particle p
// using normals p·NE .. (p+1)·NE (SME) or the shared 0..NE (SMF).

fn em_level(l: u32, dw: array<real, NC>, dt: real) {
    for (var p = 0u; p < P; p++) {
        let x = xs[l * P + p];
        let b = drift(x);
        var noise: vec_d;
        if (SHARED_NOISE) {
            var w: array<real, NSMF>;
            for (var j = 0u; j < NSMF; j++) {
                w[j] = dw[min(j, NC - 1u)];
            }
            noise = smf_noise(x, w);
        } else {
            var w: vec_d;
            for (var i = 0u; i < D; i++) {
                w[i] = dw[min(p * D + i, NC - 1u)];
            }
            noise = sme_noise(x, w);
        }
        for (var i = 0u; i < D; i++) {
            xs[l * P + p][i] += b[i] * dt + NOISE_SCALE * noise[i];
        }
    }
}

fn step(k: u32, replica: u32) {
    rng_begin(KEY, replica, k, STREAM);
    if (EXACT) {
        for (var p = 0u; p < P; p++) {
            let base = select(p * NE, 0u, SHARED_NOISE);
            var xi: array<real, NE>;
            for (var i = 0u; i < NE; i++) {
                xi[i] = rng_normal(base + i);
            }
            xs[p] = exact_step(xs[p], xi);
        }
        return;
    }
    var acc: array<array<real, NC>, 3>;
    for (var s = 0u; s < SUBSTEPS; s++) {
        var dw: array<real, NC>;
        for (var j = 0u; j < NC; j++) {
            dw[j] = SQRT_DT * rng_normal(s * NC + j);
        }
        em_level(0u, dw, DT_LEVEL[0]);
        for (var l = 1u; l < LEVELS; l++) {
            for (var j = 0u; j < NC; j++) {
                acc[l][j] += dw[j];
            }
            let span = 1u << l;
            if (s % span == span - 1u) {
                em_level(l, acc[l], DT_LEVEL[l]);
                for (var j = 0u; j < NC; j++) {
                    acc[l][j] = real(0.0);
                }
            }
        }
    }
}
