// Box–Muller where real = f32, built as src/rng/single.rs builds the CPU's f32 normals:
// the GPU's f32 log/cos/sin (common/math_f32.wgsl), with the uniform carried as hi + lo
// and the angle centred where those builtins are accurate. rng/box_muller_f64.wgsl is
// the f64 twin.

// -ln(uniform01(u)), accurate for u near 1 as well. In f32, uniform01 is not exact for
// u >= 1/2 (it needs 25 bits), so it is carried as hi + lo; near 1 the log is taken as
// ln(1 - t) = -2 atanh(t / (2 - t)) with t = 1 - hi exact, since GPU log has only
// absolute accuracy there.
fn neg_log_uniform(u: u32) -> real {
    let a = real(u >> 8u) * real(5.9604644775390625e-8);
    let hi = a + real(2.98023223876953125e-8);
    let lo = real(2.98023223876953125e-8) - (hi - a);
    if (hi > real(0.75)) {
        let t = real(1.0) - hi;
        let z = t / (real(2.0) - t);
        let z2 = z * z;
        let s = z * (real(1.0) + z2 * (real(1.0 / 3.0) + z2 * (real(0.2) + z2 * (real(1.0 / 7.0)
            + z2 * (real(1.0 / 9.0) + z2 * (real(1.0 / 11.0) + z2 * real(1.0 / 13.0)))))));
        return real(2.0) * s - lo / hi;
    }
    return -r_log(hi) - lo / hi;
}

// uniform01(u) - 1/2, exact in f32: (2 (u >> 8) + 1 - 2^24) 2^-25.
fn centred_uniform(u: u32) -> real {
    return real(i32((u >> 8u) * 2u + 1u) - 16777216) * real(2.98023223876953125e-8);
}

// Box-Muller on the uniforms of bits (b1, b2): (r cos 2πu2, r sin 2πu2) with
// r = sqrt(-2 ln u1). The angle is evaluated as 2π(u2 - 1/2) ∈ (-π, π), where GPU
// sin/cos are accurate: cos(2πu2) = -cos(2π(u2 - 1/2)), sin likewise.
fn box_muller_bits(b1: u32, b2: u32) -> vec2<real> {
    let r = sqrt(real(2.0) * neg_log_uniform(b1));
    let t = real(6.283185307179586) * centred_uniform(b2);
    return vec2<real>(-r * r_cos(t), -r * r_sin(t));
}
