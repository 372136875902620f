// Philox's 32×32 → 64-bit product with native 64-bit integers (composed in only
// where the adapter has SHADER_INT64; `mulhilo_u32.wgsl` is the portable twin).
// One widening multiply instead of four 16-bit ones (on AVX2 llvmpipe: vpmuludq).

// (hi, lo) of the 64-bit product a * b.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let p = u64(a) * u64(b);
    return vec2<u32>(u32(p >> 32u), u32(p));
}
