// Bench kernel (`smflow bench --jobs rng`): the RNG work of the bench's `sgd` job and
// nothing else. Per path, CEILING_STEPS steps that each draw the first Box–Muller pair
// of Philox block (replica, step, 0, 0), the two normals one `sgd` step of that job
// uses (b = 2, d = 1), through the simulators' own functions, and fold them into one
// register; the result is stored so that no draw can be dropped. The `sgd` job's rate
// over this one's is how close the simulation kernel and its driver come to the cost
// of their random numbers on the adapter.

@group(0) @binding(0) var<storage, read_write> ceiling_out: array<real>;

@compute @workgroup_size(64)
fn rng_ceiling(@builtin(global_invocation_id) gid: vec3<u32>) {
    var x = real(1.0);
    for (var k = 0u; k < CEILING_STEPS; k++) {
        rng_begin(vec2<u32>(7u, 0u), gid.x, k, 0u);
        let z = rng_normals4(0u, 1u);
        x = x * real(0.925) + real(0.05) * (z.x + z.y);
    }
    ceiling_out[gid.x] = x;
}
