// sme* / smf*: one Euler–Maruyama step of size dt of every particle of level l with the
// increments dw (twin of `steps::em_level`), driven by `sde.wgsl`'s level loop.

fn sde_level(l: u32, dw: array<real, NC>, dt: real) {
    for (var p = 0u; p < P; p++) {
        let x = xs[l * P + p];
        let b = drift(x);
        let noise = level_noise(p, x, dw);
        for (var i = 0u; i < D; i++) {
            xs[l * P + p][i] += b[i] * dt + NOISE_SCALE * noise[i];
        }
    }
}
