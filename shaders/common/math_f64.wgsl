// Transcendentals where real = f64: the algorithms and constants of src/math.rs (`ln`,
// `sincos_tau`, `exp`, `tanh`), so that GPU f64 agrees with the CPU reference to f64
// rounding. GLSL.std.450's exp/log/sin/cos/tanh take only 16/32-bit floats (they once
// ran here in f32 and were widened); ldexp, round (to even) and sqrt are native in f64.
// Composed by `compose::real_header`; common/math_f32.wgsl is the f32 twin.

const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;

// ln x: `math::ln` for finite x > 0.
fn r_log(x: f64) -> f64 {
    // x = m·2^e with m ∈ [1, 2), as the CPU reads them from the bits (WGSL has no f64
    // bitcast, and naga's f64 frexp needs SHADER_INT64): e from an f32 log2, of x^{1/16}
    // beyond f32's range, is off by at most one; then m = x·2^-e is exact and fixed up.
    if (!(x > 0.0 && x <= 1.7976931348623157e308)) {
        return f64(log(f32(x))); // 0: −inf, inf: inf, NaN: NaN (as the drivers give them)
    }
    var y = x;
    var k = 1.0;
    if (x < 1e-37 || x > 1e37) {
        y = sqrt(sqrt(sqrt(sqrt(x))));
        k = 16.0;
    }
    var e = i32(floor(k * log2(f32(y))));
    // In two halves, so that no factor leaves the normal range (x subnormal, or near
    // f64::MAX where e reaches 1024).
    var m = ldexp(ldexp(x, -(e / 2)), e / 2 - e);
    let up = m >= 2.0;
    m = select(m, 0.5 * m, up);
    e += select(0, 1, up);
    let down = m < 1.0;
    m = select(m, 2.0 * m, down);
    e -= select(0, 1, down);
    // Bring m into [√½, √2) so |s| ≤ 0.1716 below.
    let big = m > 1.4142135623730951;
    m = select(m, 0.5 * m, big);
    let ef = f64(e + select(0, 1, big));
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // 2 atanh(s) = 2s (1 + z/3 + z²/5 + …), truncated where z^n/(2n+1) < 2^-56.
    let p = 1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0
        + z * (1.0 / 11.0 + z * (1.0 / 13.0 + z * (1.0 / 15.0 + z * (1.0 / 17.0
        + z * (1.0 / 19.0 + z * (1.0 / 21.0 + z * (1.0 / 23.0)))))))))));
    return ef * LN2_HI + (ef * LN2_LO + 2.0 * s * p);
}

// (sin 2πu, cos 2πu) for |u| < 2^50: `math::sincos_tau`.
fn sincos_tau(u: f64) -> vec2<f64> {
    // Reduce by whole turns and quarter turns exactly: t ∈ [−½, ½], r ∈ [−⅛, ⅛].
    let t = u - round(u);
    let q = round(4.0 * t);
    let r = t - 0.25 * q;
    // a = 2πr ∈ [−π/4, π/4]; 2π split so the product keeps full precision.
    let a = r * 6.283185307179586 + r * 2.4492935982947064e-16;
    let a2 = a * a;
    // Taylor series to a^17 / a^18: truncation error < (π/4)^19/19! ≈ 1e-19.
    let s = a * (1.0 + a2 * (-1.0 / 6.0 + a2 * (1.0 / 120.0 + a2 * (-1.0 / 5040.0
        + a2 * (1.0 / 362880.0 + a2 * (-1.0 / 39916800.0 + a2 * (1.0 / 6227020800.0
        + a2 * (-1.0 / 1307674368000.0 + a2 * (1.0 / 355687428096000.0)))))))));
    let c = 1.0 + a2 * (-0.5 + a2 * (1.0 / 24.0 + a2 * (-1.0 / 720.0 + a2 * (1.0 / 40320.0
        + a2 * (-1.0 / 3628800.0 + a2 * (1.0 / 479001600.0 + a2 * (-1.0 / 87178291200.0
        + a2 * (1.0 / 20922789888000.0 + a2 * (-1.0 / 6402373705728000.0)))))))));
    // Rotate by q quarter turns: q mod 4 = 0: (s, c), 1: (c, −s), 2: (−s, −c), 3: (−c, s).
    let qi = i32(q) & 3;
    let swap = (qi & 1) == 1;
    let ss = select(s, c, swap);
    let cc = select(c, s, swap);
    return vec2<f64>(select(ss, -ss, qi >= 2), select(cc, -cc, qi == 1 || qi == 2));
}

// cos and sin of any moderate x, through the turns x/2π (absolute error ~|x|·2^-53).
fn r_cos(x: f64) -> f64 {
    return sincos_tau(x * 0.15915494309189535).y;
}

fn r_sin(x: f64) -> f64 {
    return sincos_tau(x * 0.15915494309189535).x;
}

// (2^n, e^r − 1) with x = n ln 2 + r, |r| ≤ ½ ln 2, for x clamped to ±708 (NaN stays
// NaN): `math::exp_parts`, Cody–Waite reduction and the Taylor series to 1/13!.
fn exp_parts(x: f64) -> vec2<f64> {
    let y = select(select(x, 708.0, x > 708.0), -708.0, x < -708.0);
    let n = round(y * 1.4426950408889634);
    let r = (y - n * 6.9314575195312500e-1) - n * 1.42860682030941723212e-6;
    let q = ((((((((((((1.0 / 6227020800.0) * r + 1.0 / 479001600.0) * r
        + 1.0 / 39916800.0) * r + 1.0 / 3628800.0) * r + 1.0 / 362880.0) * r
        + 1.0 / 40320.0) * r + 1.0 / 5040.0) * r + 1.0 / 720.0) * r + 1.0 / 120.0) * r
        + 1.0 / 24.0) * r + 1.0 / 6.0) * r + 1.0 / 2.0) * r + 1.0;
    return vec2<f64>(ldexp(f64(1.0), i32(n)), r * q);
}

// e^x for every x (clamped at ±708: never inf): `math::exp`.
fn r_exp(x: f64) -> f64 {
    let e = exp_parts(x);
    return e.x * e.y + e.x;
}

// tanh x = ±m/(m + 2), m = e^{2|x|} − 1 = 2^n (e^r − 1) + (2^n − 1): `math::tanh`.
fn r_tanh(x: f64) -> f64 {
    let ax = abs(x);
    let e = exp_parts(2.0 * select(ax, 20.0, ax > 20.0));
    let m = e.x * e.y + (e.x - 1.0);
    let t = m / (m + 2.0);
    return select(t, -t, x < 0.0);
}
