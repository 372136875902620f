// msme1 (twin of `momentum::msme1_level`, DESIGN §3b): one symplectic Euler–Maruyama
// step of size dt of every particle of level l, driven by `sde.wgsl`'s level loop:
// P ← P − (γP + ∇R(X)) dt + sqrt(η/b) Σ^{1/2}(X) dW, then X ← X + P dt. The momenta sit
// after the positions (and a coupled run's partner) in the state: xs[MOM + l·P + p].

fn sde_level(l: u32, dw: array<real, NC>, dt: real) {
    for (var p = 0u; p < P; p++) {
        let q = l * P + p;
        let x = xs[q];
        let g = grad(x);
        let noise = level_noise(p, x, dw);
        for (var i = 0u; i < D; i++) {
            let v = heavy_ball(xs[MOM + q][i], g[i], FRICTION, dt) + NOISE_SCALE * noise[i];
            xs[MOM + q][i] = v;
            xs[q][i] += v * dt;
        }
    }
}
