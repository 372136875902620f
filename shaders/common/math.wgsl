// What is built on the transcendentals r_exp, r_log, r_cos, r_sin and r_tanh, which
// come with the float type (`compose::real_header`): common/math_f32.wgsl, the GPU's
// builtins, or common/math_f64.wgsl, src/math.rs's algorithms (GLSL.std.450's
// exp/log/sin/cos/tanh take only 16/32-bit floats).

// The logistic function 1/(1 + e^{−x}) (mean-field's sigmoid activation, the logistic loss).
fn r_sigmoid(x: real) -> real {
    return real(1.0) / (real(1.0) + r_exp(-x));
}
