// The friction form's momentum update (twin of `dynamics::momentum::heavy_ball`, DESIGN
// §3b): v − (γ v + g) dt for force −g over a step dt; msgd (dt = η), msme1's drift (its
// substep) and the finite-data trainer's heavy-ball updates are all written with it.
fn heavy_ball(v: real, g: real, gamma: real, dt: real) -> real {
    return v - (v * gamma + g) * dt;
}
