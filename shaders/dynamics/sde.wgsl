// sme* / smf* / msme1 (twin of `steps::em_levels` and `steps::exact_step`).
// Euler–Maruyama on coupled levels: fine substep s uses normals s·NC .. (s+1)·NC of
// the step; level l steps every 2^l fine substeps with the sum of the fine increments,
// by `sde_level(l, dw, dt)`: the dynamics' own step (`sde_level.wgsl` for sme/smf,
// `msme1.wgsl` for the heavy ball).
// NC = NSMF (SMF: one reduced cylindrical noise shared by the particles) or P·D (SME:
// independent per particle). EXACT: one OU/GBM transition per SGD step (msme1: of the
// pair (X, P)), particle p using normals p·NE .. (p+1)·NE (SME) or the shared 0..NE (SMF).
//
// Substeps run in groups of 4, which use exactly NC Philox blocks (4·NC normals,
// `rng_group`, generated straight-line by the composer), so inside a group every
// normal's index and every level's "is it my turn" test are compile-time constants
// once unrolled (levels ≤ 3: spans 1, 2, 4 divide 4). A last partial group (SUBSTEPS
// not a multiple of 4) draws unused normals, which changes no draw.
//
// COUPLED (twin of `steps::bridge_shift`, DESIGN §7b): each step first advances the
// discrete partner's particles xs[LP .. LP + P) (sgd; msgd for msme1) with its own
// normals (its stream, one batch shared by the particles), then
// pins the SDE's increments
// to them: ΔW_s = SQRT_DT ξ_s + shift, shift = sqrt(η)/S · ζ − SQRT_DT ξ̄, with ζ =
// b^{-1/2} Σ_j z_j and ξ̄ the mean of the step's own normals (a first pass over them;
// with CACHE_NORMALS, when they are few, the pass keeps them for the Euler–Maruyama
// loop instead of it drawing them again).

// The noise of particle p for a level's increments dw, before the NOISE_SCALE factor
// (twin of `steps::EmConsts::noise`): the shared reduced noise G·dW (SMF, or any
// coupled run: SGD's own noise factor) or Σ^{1/2} dW_p (SME).
fn level_noise(p: u32, x: vec_d, dw: array<real, NC>) -> vec_d {
    if (SHARED_NOISE) {
        var w: array<real, NSMF>;
        for (var j = 0u; j < NSMF; j++) {
            w[j] = dw[min(j, NC - 1u)];
        }
        return smf_noise(x, w);
    }
    var w: vec_d;
    for (var i = 0u; i < D; i++) {
        w[i] = dw[min(p * D + i, NC - 1u)];
    }
    return sme_noise(x, w);
}

// The exact step: normals from `rng_exact` (P·NE, or NE shared by the particles), on X
// or (MOMENTUM: msme1) on the pair (X, P) stacked in z. The `min`s keep the momentum
// indices constant-in-bounds in the kernels where MOMENTUM is false.
fn exact_all() {
    var xa = rng_exact(0u);
    for (var p = 0u; p < P; p++) {
        let base = select(p * NE, 0u, SHARED_NOISE);
        var xi: array<real, NE>;
        for (var i = 0u; i < NE; i++) {
            let n = base + i;
            xi[i] = xa[n / 4u][n % 4u];
        }
        let mp = min(MOM + p, LPS - 1u);
        var z: vec_z;
        for (var i = 0u; i < D; i++) {
            z[i] = xs[p][i];
            if (MOMENTUM) {
                z[min(D + i, NZ - 1u)] = xs[mp][i];
            }
        }
        z = exact_step(z, xi);
        for (var i = 0u; i < D; i++) {
            xs[p][i] = z[i];
            if (MOMENTUM) {
                xs[mp][i] = z[min(D + i, NZ - 1u)];
            }
        }
    }
}

var<private> step_normals: array<array<vec4<real>, NC>, N_CACHED_GROUPS>;

// The normals of substeps g .. g + 3 of the current step.
fn group_normals(g: u32) -> array<vec4<real>, NC> {
    if (CACHE_NORMALS) {
        return step_normals[g / 4u];
    }
    return rng_group(g / 4u * NC);
}

// The constant part of a coupled step's increments from SGD's batch normals `zs`.
fn bridge_shift(zs: batch_normals) -> array<real, NC> {
    var xi: array<real, NC>;
    for (var g = 0u; g < SUBSTEPS; g += 4u) {
        var zg = rng_group(g / 4u * NC);
        if (CACHE_NORMALS) {
            step_normals[g / 4u] = zg;
        }
        for (var s = 0u; s < 4u; s++) {
            if (SUBSTEPS % 4u == 0u || g + s < SUBSTEPS) {
                for (var j = 0u; j < NC; j++) {
                    let n = s * NC + j;
                    xi[j] += zg[n / 4u][n % 4u];
                }
            }
        }
    }
    var out: array<real, NC>;
    for (var j = 0u; j < NC; j++) {
        var zeta = real(0.0);
        for (var i = 0u; i < BATCH; i++) {
            let n = i * NC + j;
            zeta += zs[n / 4u][n % 4u];
        }
        out[j] = BRIDGE_PIN * (zeta / ROOT_B) - SQRT_DT * (xi[j] / real(SUBSTEPS));
    }
    return out;
}

fn step(k: u32, replica: u32) {
    var shift: array<real, NC>;
    if (COUPLED) {
        rng_begin(KEY, replica, k, SGD_STREAM);
        let zs = rng_batch(0u);
        minibatch_update(LP, P, zs);
        rng_begin(KEY, replica, k, STREAM);
        shift = bridge_shift(zs);
    }
    rng_begin(KEY, replica, k, STREAM);
    if (EXACT) {
        exact_all();
        return;
    }
    var acc: array<array<real, NC>, 3>;
    for (var g = 0u; g < SUBSTEPS; g += 4u) {
        // The 4·NC normals of substeps g .. g + 3: blocks g·NC/4 .. g·NC/4 + NC − 1.
        var zg = group_normals(g);
        for (var s = 0u; s < 4u; s++) {
            if (SUBSTEPS % 4u == 0u || g + s < SUBSTEPS) {
                var dw: array<real, NC>;
                for (var j = 0u; j < NC; j++) {
                    let n = s * NC + j;
                    dw[j] = SQRT_DT * zg[n / 4u][n % 4u];
                    if (COUPLED) {
                        dw[j] += shift[j];
                    }
                }
                sde_level(0u, dw, DT_LEVEL[0]);
                for (var l = 1u; l < LEVELS; l++) {
                    for (var j = 0u; j < NC; j++) {
                        acc[l][j] += dw[j];
                    }
                    let span = 1u << l;
                    if (s % span == span - 1u) {
                        sde_level(l, acc[l], DT_LEVEL[l]);
                        for (var j = 0u; j < NC; j++) {
                            acc[l][j] = real(0.0);
                        }
                    }
                }
            }
        }
    }
}
