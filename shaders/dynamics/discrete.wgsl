// gd / sgd / msgd (twin of `steps::discrete_step`, `momentum::msgd_step`): x ← x − η
// (1/b) Σ_j ∇R(x, θ_j), or its heavy ball; the batch is shared by the particles
// (`sgd_update.wgsl`), its normals taken from `rng_batch`
// (the step's BATCH·NT normals as whole Philox blocks, generated straight-line by the
// composer) with indices that are constants once unrolled.

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
    minibatch_update(0u, P, rng_batch(0u));
}
