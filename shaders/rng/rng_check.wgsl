// Test kernel: raw Philox blocks, uniforms and normals for given (counter, key) pairs,
// through the same functions the simulators use (tests/gpu_kernels.rs).

struct CheckInput {
    ctr: vec4<u32>,
    key: vec4<u32>, // key in .xy
}

@group(0) @binding(0) var<storage, read> check_in: array<CheckInput>;
@group(0) @binding(1) var<storage, read_write> check_bits: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> check_real: array<real>;

@compute @workgroup_size(64)
fn rng_check(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&check_in)) {
        return;
    }
    let inp = check_in[i];
    let bits = philox4x32_10(inp.ctr, inp.key.xy);
    check_bits[i] = bits;
    for (var l = 0u; l < 4u; l++) {
        check_real[i * 8u + l] = uniform01(bits[l]);
    }
    rng_begin(inp.key.xy, inp.ctr.x, inp.ctr.y, inp.ctr.w);
    let n = rng_normals4(inp.ctr.z, 2u);
    for (var l = 0u; l < 4u; l++) {
        check_real[i * 8u + 4u + l] = n[l];
    }
}
