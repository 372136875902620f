// Philox4x32-10 (Salmon et al. 2011), the WGSL twin of src/rng.rs (DESIGN §6).
// Needs `alias real` and `fn box_muller_bits` (rng/box_muller_f32.wgsl or _f64.wgsl,
// composed with the float type by `compose::real_header`) and `fn mulhilo` (the 32×32
// → 64 product: rng/mulhilo_u32.wgsl, or rng/mulhilo_u64.wgsl with SHADER_INT64).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = ctr;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// u32 -> uniform in (0, 1): (u >> 8) * 2^-24 + 2^-25 (exact in f64; in f32 rounded
// to even for u >= 1/2, where it needs 25 bits).
fn uniform01(u: u32) -> real {
    return real(u >> 8u) * real(5.9604644775390625e-8) + real(2.98023223876953125e-8);
}

// Normals of one (replica, step, stream): normal j is Box–Muller pair (j % 4) / 2 of
// Philox block j / 4, counter (replica, step, j / 4, stream). Kernels take normals a
// whole block (vec4) at a time through straight-line functions the composer writes
// (`rng_blocks_fn`): llvmpipe/NIR does not unroll loops around Philox, and a private
// array indexed in such a loop becomes per-lane scratch memory (gathers/scatters),
// which once cost more than the whole RNG. No cache, no branch on the draw index.
var<private> rng_ctr: vec4<u32>;
var<private> rng_key: vec2<u32>;

fn rng_begin(key: vec2<u32>, replica: u32, step: u32, stream: u32) {
    rng_key = key;
    rng_ctr = vec4<u32>(replica, step, 0u, stream);
}

// Normals 4b .. 4b + 3 of the current counter. `pairs` (a constant at every call
// site) = 1: only 4b and 4b + 1 are transformed; the other two lanes are 0.
fn rng_normals4(b: u32, pairs: u32) -> vec4<real> {
    let bits = philox4x32_10(vec4<u32>(rng_ctr.x, rng_ctr.y, b, rng_ctr.w), rng_key);
    let n01 = box_muller_bits(bits.x, bits.y);
    var n23 = vec2<real>(real(0.0), real(0.0));
    if (pairs > 1u) {
        n23 = box_muller_bits(bits.z, bits.w);
    }
    return vec4<real>(n01, n23);
}
