// The entry point shared by every dynamics: one invocation = one replica, the state
// of all levels and particles in registers (`xs`) for the whole segment of steps
// [k0, k1), stored back to a structure-of-arrays buffer between dispatches. When the
// segment ends at a checkpoint, paths are checked for divergence (non-finite or
// |coord| > BOUND on any level → dead from then on) and the workgroup reduces the
// alive paths' observables into one partial. The dynamics template supplies
// `fn step(k: u32, replica: u32)`.

struct Params {
    base: u32,     // global index of the chunk's first replica
    n_valid: u32,  // replicas of this chunk
    k0: u32,
    k1: u32,
    reduce: u32,   // 1: the segment ends at a checkpoint
    stride: u32,   // chunk capacity (SoA stride of `state`)
    init: u32,     // 1: start from X0
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> state: array<real>;
@group(0) @binding(2) var<storage, read_write> alive: array<u32>;
@group(0) @binding(3) var<storage, read_write> partials: array<real>;

var<private> xs: array<vec_d, LP>;

fn within_bound() -> bool {
    var ok = true;
    for (var q = 0u; q < LP; q++) {
        for (var i = 0u; i < D; i++) {
            ok = ok && (abs(xs[q][i]) <= BOUND);
        }
    }
    return ok;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = gid.x;
    var live = false;
    if (i < params.n_valid) {
        if (params.init != 0u) {
            for (var l = 0u; l < LEVELS; l++) {
                for (var p = 0u; p < P; p++) {
                    xs[l * P + p] = X0[p];
                }
            }
            live = true;
        } else {
            for (var q = 0u; q < LP; q++) {
                for (var c = 0u; c < D; c++) {
                    xs[q][c] = state[(q * D + c) * params.stride + i];
                }
            }
            live = alive[i] != 0u;
        }
        if (live) {
            let replica = params.base + i;
            for (var k = params.k0; k < params.k1; k++) {
                step(k, replica);
            }
            if (params.reduce != 0u) {
                live = within_bound();
            }
            for (var q = 0u; q < LP; q++) {
                for (var c = 0u; c < D; c++) {
                    state[(q * D + c) * params.stride + i] = xs[q][c];
                }
            }
        }
        alive[i] = select(0u, 1u, live);
    }
    if (params.reduce != 0u) {
        for (var q = 0u; q < RED_W; q++) {
            red[lid][q] = real(0.0);
        }
        if (live) {
            for (var o = 0u; o < N_OBS; o++) {
                var g: array<real, 3>;
                for (var l = 0u; l < LEVELS; l++) {
                    g[l] = observe(o, l);
                }
                let ve = combine_levels(g);
                let y = ve.x - SHIFTS[o];
                red[lid][o * 5u] = real(1.0);
                red[lid][o * 5u + 1u] = y;
                red[lid][o * 5u + 2u] = y * y;
                red[lid][o * 5u + 3u] = ve.y;
                red[lid][o * 5u + 4u] = ve.y * ve.y;
            }
        }
        reduce_workgroup(lid);
        if (lid == 0u) {
            for (var q = 0u; q < RED_W; q++) {
                partials[wid.x * RED_W + q] = red[0][q];
            }
        }
    }
}
