// Box–Muller where real = f64: `rng::box_muller` exactly, (r cos 2πu2, r sin 2πu2) with
// r = sqrt(−2 ln u1), through `math::ln` and `math::sincos_tau`'s WGSL twins
// (common/math_f64.wgsl). uniform01 is exact in f64, so GPU f64 normals equal the CPU
// reference's to f64 rounding. rng/box_muller_f32.wgsl is the f32 twin.

fn box_muller_bits(b1: u32, b2: u32) -> vec2<real> {
    let r = sqrt(-2.0 * r_log(uniform01(b1)));
    let sc = sincos_tau(uniform01(b2));
    return vec2<real>(r * sc.y, r * sc.x);
}
