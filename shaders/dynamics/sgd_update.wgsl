// The minibatch updates, shared by `discrete.wgsl` (every particle) and a coupled SDE
// run's discrete partner xs[LP .. LP + P) (`sde.wgsl`, `minibatch_update`). The step's batch is
// θ_1..θ_b, θ_j from normals j·NT .. (j+1)·NT of `zs` (the step's BATCH·NT normals,
// `rng_batch`), shared by the particles.
//
// sgd (twin of `steps::discrete_step`): particles xs[first .. first + count) take
// x ← x − η (1/b) Σ_j ∇R(x, θ_j).

fn sgd_update(first: u32, count: u32, zs: batch_normals) {
    let gsum = batch_gradient(first, count, zs);
    for (var p = 0u; p < count; p++) {
        for (var i = 0u; i < D; i++) {
            xs[first + p][i] -= SGD_SCALE * gsum[p][i];
        }
    }
}

// Σ_j ∇R(x, θ_j) for particles xs[first .. first + count) (twin of
// `steps::batch_gradient_sum`), entry p for particle first + p.
fn batch_gradient(first: u32, count: u32, zs: batch_normals) -> array<vec_d, P> {
    var gsum: array<vec_d, P>;
    for (var j = 0u; j < BATCH; j++) {
        var z: array<real, NT>;
        for (var i = 0u; i < NT; i++) {
            let n = j * NT + i;
            z[i] = zs[n / 4u][n % 4u];
        }
        let theta = sample_theta(z);
        for (var p = 0u; p < count; p++) {
            let g = grad_sample(xs[first + p], theta);
            for (var i = 0u; i < D; i++) {
                gsum[p][i] += g[i];
            }
        }
    }
    return gsum;
}

// msgd (twin of `momentum::msgd_step`, DESIGN §3b): heavy ball in friction form,
// p ← p − η(γ p + (1/b) Σ_j ∇R(x, θ_j)), then x ← x + η p; the momentum of xs[q] is
// xs[MOM + q].
fn msgd_update(first: u32, count: u32, zs: batch_normals) {
    let gsum = batch_gradient(first, count, zs);
    for (var p = 0u; p < count; p++) {
        let q = first + p;
        for (var i = 0u; i < D; i++) {
            let v = heavy_ball(xs[MOM + q][i], gsum[p][i] * INV_B, FRICTION, ETA);
            xs[MOM + q][i] = v;
            xs[q][i] += v * ETA;
        }
    }
}

// The step of particles xs[first .. first + count) under the run's discrete dynamics
// (sgd, or msgd for the heavy-ball runs).
fn minibatch_update(first: u32, count: u32, zs: batch_normals) {
    if (MOMENTUM) {
        msgd_update(first, count, zs);
    } else {
        sgd_update(first, count, zs);
    }
}
