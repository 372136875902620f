// gd / sgd (twin of `path::discrete_step`): x ← x − η (1/b) Σ_j ∇R(x, θ_j); the batch
// is shared by the particles; θ_j uses normals j·NT .. (j+1)·NT of the step, taken
// from `rng_batch` (the step's BATCH·NT normals as whole Philox blocks, generated
// straight-line by the composer) with indices that are constants once unrolled.

fn step(k: u32, replica: u32) {
    if (IS_GD) {
        for (var p = 0u; p < P; p++) {
            let g = grad(xs[p]);
            for (var i = 0u; i < D; i++) {
                xs[p][i] -= ETA * g[i];
            }
        }
        return;
    }
    rng_begin(KEY, replica, k, STREAM);
    var zs = rng_batch(0u);
    var gsum: array<vec_d, P>;
    for (var j = 0u; j < BATCH; j++) {
        var z: array<real, NT>;
        for (var i = 0u; i < NT; i++) {
            let n = j * NT + i;
            z[i] = zs[n / 4u][n % 4u];
        }
        let theta = sample_theta(z);
        for (var p = 0u; p < P; p++) {
            let g = grad_sample(xs[p], theta);
            for (var i = 0u; i < D; i++) {
                gsum[p][i] += g[i];
            }
        }
    }
    for (var p = 0u; p < P; p++) {
        for (var i = 0u; i < D; i++) {
            xs[p][i] -= SGD_SCALE * gsum[p][i];
        }
    }
}
