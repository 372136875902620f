// The entry points shared by every dynamics; one invocation = one replica.
// `main` advances the state of all levels and particles, held in registers (`xs`), over
// the segment of steps [k0, k1), from X0 (init) or the structure-of-arrays `state`
// buffer, and stores it back. `reduce` runs after a segment that ends at a
// checkpoint: paths are checked for divergence (non-finite or |coord| > BOUND on any
// level → dead from then on) and the workgroup reduces the alive paths' observables
// into one partial. Two entry points, not one with a `reduce` flag: a barrier turns
// the whole llvmpipe kernel into a coroutine (per-invocation frames on every
// dispatch), which cost more than several sgd steps; now only `reduce` pays it.
// The dynamics template supplies `fn step(k: u32, replica: u32)`. A coupled SDE run
// (COUPLED) carries its SGD partner's P particles in the slots after the positions,
// xs[LP .. LP + P) (heavy-ball runs keep their momenta after them, from xs[MOM]), and
// reduces three statistics per observable: the SDE value, SGD's value and D = their
// difference (index ch·N_OBS + o, as `RunSpec::stat`).

struct Params {
    base: u32,     // global index of the chunk's first replica
    n_valid: u32,  // replicas of this chunk
    k0: u32,
    k1: u32,
    cp: u32,       // the checkpoint `reduce` records (index into SHIFTS)
    stride: u32,   // chunk capacity (SoA stride of `state`)
    init: u32,     // 1: start from X0
    skip: u32,     // lanes before the range (the chunk starts on a multiple of WG)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> state: array<real>;
@group(0) @binding(2) var<storage, read_write> alive: array<u32>;
@group(0) @binding(3) var<storage, read_write> partials: array<real>;

var<private> xs: array<vec_d, LPS>;

fn within_bound() -> bool {
    var ok = true;
    for (var q = 0u; q < LPS; q++) {
        for (var i = 0u; i < D; i++) {
            ok = ok && (abs(xs[q][i]) <= BOUND);
        }
    }
    return ok;
}

fn load_state(i: u32) {
    for (var q = 0u; q < LPS; q++) {
        for (var c = 0u; c < D; c++) {
            xs[q][c] = state[(q * D + c) * params.stride + i];
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.n_valid) {
        return;
    }
    if (i < params.skip) {
        alive[i] = 0u;
        return;
    }
    if (params.init != 0u) {
        for (var l = 0u; l < LEVELS; l++) {
            for (var p = 0u; p < P; p++) {
                xs[l * P + p] = X0[p];
            }
        }
        if (COUPLED) {
            for (var p = 0u; p < P; p++) {
                // min: in bounds in the kernels where COUPLED is false.
                xs[min(LP + p, LPS - 1u)] = X0[p];
            }
        }
        // msgd / msme1: the momenta xs[MOM ..] start at 0 (MOM = LPS otherwise).
        for (var q = MOM; q < LPS; q++) {
            xs[q] = vec_d();
        }
        alive[i] = 1u;
    } else {
        if (alive[i] == 0u) {
            return;
        }
        load_state(i);
    }
    let replica = params.base + i;
    for (var k = params.k0; k < params.k1; k++) {
        step(k, replica);
    }
    for (var q = 0u; q < LPS; q++) {
        for (var c = 0u; c < D; c++) {
            state[(q * D + c) * params.stride + i] = xs[q][c];
        }
    }
}

// Statistic k's contribution (value, solver error) of this lane, shifted.
fn put_stat(lid: u32, k: u32, ve: vec2<real>) {
    let y = ve.x - SHIFTS[params.cp * N_STAT + k];
    put_column(lid, k * 5u, real(1.0));
    put_column(lid, k * 5u + 1u, y);
    put_column(lid, k * 5u + 2u, y * y);
    put_column(lid, k * 5u + 3u, ve.y);
    put_column(lid, k * 5u + 4u, ve.y * ve.y);
}

@compute @workgroup_size(WG)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let i = gid.x;
    var live = false;
    if (i < params.n_valid) {
        live = alive[i] != 0u;
        if (live) {
            load_state(i);
            live = within_bound();
            alive[i] = select(0u, 1u, live);
        }
    }
    for (var q = 0u; q < RED_W; q++) {
        put_column(lid, q, real(0.0));
    }
    if (live) {
        for (var o = 0u; o < N_OBS; o++) {
            var g: array<real, 3>;
            for (var l = 0u; l < LEVELS; l++) {
                g[l] = observe(o, l);
            }
            let ve = combine_levels(g);
            put_stat(lid, o, ve);
            if (COUPLED) {
                // observe(o, LEVELS) reads xs[LEVELS·P + p] = xs[LP + p]: the SGD partner.
                let g_sgd = observe(o, LEVELS);
                put_stat(lid, N_OBS + o, vec2<real>(g_sgd, real(0.0)));
                put_stat(lid, 2u * N_OBS + o, vec2<real>(g_sgd - ve.x, -ve.y));
            }
        }
    }
    reduce_workgroup(lid, wid.x);
}
