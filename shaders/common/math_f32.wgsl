// Transcendentals where real = f32: the GPU's GLSL.std.450 builtins (composed by
// `compose::real_header`; common/math_f64.wgsl is the f64 twin).

fn r_exp(x: real) -> real {
    return exp(x);
}

fn r_log(x: real) -> real {
    return log(x);
}

fn r_cos(x: real) -> real {
    return cos(x);
}

fn r_sin(x: real) -> real {
    return sin(x);
}

// |u| ≥ 15 is ±1 in f32 already; the clamp keeps drivers that build tanh from exp away
// from inf/inf.
fn r_tanh(u: real) -> real {
    return tanh(clamp(u, -15.0, 15.0));
}
