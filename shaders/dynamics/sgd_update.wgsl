// The SGD update (twin of `path::discrete_step`): particles xs[first .. first + count)
// take x ← x − η (1/b) Σ_j ∇R(x, θ_j) with the step's batch θ_1..θ_b, θ_j from normals
// j·NT .. (j+1)·NT of `zs` (the step's BATCH·NT normals, `rng_batch`). Shared by
// `discrete.wgsl` (every particle) and a coupled SDE run's SGD partner (`sde.wgsl`).

fn sgd_update(first: u32, count: u32, zs: batch_normals) {
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
    for (var p = 0u; p < count; p++) {
        for (var i = 0u; i < D; i++) {
            xs[first + p][i] -= SGD_SCALE * gsum[p][i];
        }
    }
}
