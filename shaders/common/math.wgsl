// Transcendentals on `real`. SPIR-V GLSL.std.450 exp/log/sin/cos take only 16/32-bit
// floats, so with real = f64 they are evaluated in f32 and widened (sqrt, abs and fma
// stay native). With real = f32 the casts are no-ops.

fn r_exp(x: real) -> real {
    return real(exp(f32(x)));
}

fn r_log(x: real) -> real {
    return real(log(f32(x)));
}

fn r_cos(x: real) -> real {
    return real(cos(f32(x)));
}

fn r_sin(x: real) -> real {
    return real(sin(f32(x)));
}

// The logistic function 1/(1 + e^{−x}) (mean-field's sigmoid activation, the logistic loss).
fn r_sigmoid(x: real) -> real {
    return real(1.0) / (real(1.0) + r_exp(-x));
}
