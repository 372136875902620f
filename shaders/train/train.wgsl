// Finite-data training kernels (twin of src/train/ops.rs `Replica`): one invocation =
// one replica, advancing steps [k0, k1) of a segment. Needs the composed header
// (train::gpu::compose: `alias real`, D, P, N, B, SUBSTEPS, PARAM, the dynamics flags
// and step constants, scratch offsets, `fn label(i)`), math, Philox and net.wgsl.
//
// Layout (structure of arrays, so a SIMD group of replicas touches consecutive
// addresses): coordinate c of replica `lane` of the chunk at c·stride + lane, in
// `state` (the reported row: w (P), then Gain (D); then, for msgd / msme1, the
// momentum of w (P) at OFF_MOM, laid out like w), `scr` (scratch: β, ∇_βL, noise
// sums, Hessian-vector work, RK4 stage base and accumulator) and `ylab` (the
// replica's own labels when resampled). X (N×D row-major) and y are shared by all
// replicas; the index of a data access is the same in every invocation (except the
// minibatch rows of sgd), so those loads are uniform.
//
// Loop orders avoid private arrays of size N or D: full gradients loop over samples
// i, form the loss slope e_i (loss.wgsl) and accumulate the D-vector sums in scratch; sgd forms its
// B residuals first (private, size B), then per feature j the gradient, the Gain and
// the update of the pair (w_j, w_{D+j}) in place (J is diagonal per feature).
// DENSE (deep_linear, a dense J): the same updates on whole vectors (dense.wgsl),
// β-space vectors pulled back into P-vectors of scratch by deep_linear.wgsl.

struct Params {
    base: u32,    // global index of the chunk's first replica
    n_valid: u32, // replicas in this chunk
    k0: u32,
    k1: u32,
    stride: u32,  // chunk capacity (SoA stride)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> state: array<real>;
@group(0) @binding(2) var<storage, read_write> scr: array<real>;
@group(0) @binding(3) var<storage, read> xdata: array<real>;
@group(0) @binding(4) var<storage, read> ydata: array<real>;
@group(0) @binding(5) var<storage, read_write> ylab: array<real>;

// Index of this invocation's replica within the chunk.
var<private> lane: u32;

fn at(c: u32) -> u32 {
    return c * params.stride + lane;
}

// State and scratch accessors. With PRIV (composed: small rows), a replica's row and
// scratch live in private arrays for the whole segment, loaded and stored once per
// dispatch: on llvmpipe a storage access with a per-invocation address is a loop over
// the SIMD lanes, a private array indexed by a loop counter one vector access.
var<private> prow: array<real, PRIV_ROW>;
var<private> pscr: array<real, PRIV_SCR>;

fn st(c: u32) -> real {
    if (PRIV) {
        return prow[c];
    }
    return state[at(c)];
}

fn set_st(c: u32, v: real) {
    if (PRIV) {
        prow[c] = v;
    } else {
        state[at(c)] = v;
    }
}

fn sc(c: u32) -> real {
    if (PRIV) {
        return pscr[c];
    }
    return scr[at(c)];
}

fn set_sc(c: u32, v: real) {
    if (PRIV) {
        pscr[c] = v;
    } else {
        scr[at(c)] = v;
    }
}

fn wpair(j: u32) -> vec2<real> {
    if (PARAM == 0u) {
        return vec2<real>(st(j), real(0.0));
    }
    return vec2<real>(st(j), st(D + j));
}

fn set_wpair(j: u32, w: vec2<real>) {
    set_st(j, w.x);
    if (PARAM != 0u) {
        set_st(D + j, w.y);
    }
}

// The momentum pair of feature j (msgd / msme1), laid out like w.
fn mpair(j: u32) -> vec2<real> {
    if (PARAM == 0u) {
        return vec2<real>(st(OFF_MOM + j), real(0.0));
    }
    return vec2<real>(st(OFF_MOM + j), st(OFF_MOM + D + j));
}

fn set_mpair(j: u32, v: vec2<real>) {
    set_st(OFF_MOM + j, v.x);
    if (PARAM != 0u) {
        set_st(OFF_MOM + D + j, v.y);
    }
}

// heavy_ball (heavy_ball.wgsl) of both parameters of feature j.
fn heavy_ball2(v: vec2<real>, g: vec2<real>, dt: real) -> vec2<real> {
    return vec2<real>(heavy_ball(v.x, g.x, FRICTION, dt), heavy_ball(v.y, g.y, FRICTION, dt));
}

// Scratch pairs (W0, ACC) of feature j, laid out like w.
fn spair(off: u32, j: u32) -> vec2<real> {
    if (PARAM == 0u) {
        return vec2<real>(sc(off + j), real(0.0));
    }
    return vec2<real>(sc(off + j), sc(off + D + j));
}

fn set_spair(off: u32, j: u32, v: vec2<real>) {
    set_sc(off + j, v.x);
    if (PARAM != 0u) {
        set_sc(off + D + j, v.y);
    }
}

// ---- full-gradient passes ----

// β(w) into scratch.
fn store_beta() {
    for (var j = 0u; j < D; j++) {
        set_sc(OFF_BETA + j, net_beta(wpair(j)));
    }
}

// Margin x_iᵀβ with β from scratch.
fn margin(i: u32) -> real {
    var m = real(0.0);
    let row = i * D;
    for (var j = 0u; j < D; j++) {
        m += xdata[row + j] * sc(OFF_BETA + j);
    }
    return m;
}

// Loss slope e_i = ℓ'(x_iᵀβ, y_i) (the residual x_iᵀβ − y_i of the squared loss).
fn residual(i: u32) -> real {
    return loss_slope(margin(i), label(i));
}

// ∇_βL(β) into scratch G (ops::full_grad).
fn full_grad() {
    for (var j = 0u; j < D; j++) {
        set_sc(OFF_G + j, real(0.0));
    }
    for (var i = 0u; i < N; i++) {
        let e = residual(i);
        let row = i * D;
        for (var j = 0u; j < D; j++) {
            set_sc(OFF_G + j, sc(OFF_G + j) + (e * xdata[row + j]));
        }
    }
    for (var j = 0u; j < D; j++) {
        set_sc(OFF_G + j, sc(OFF_G + j) * (INV_N));
    }
}

// Normal number `n` of the current (replica, step) counter, for n visited in
// increasing order: one Philox block per 4 (rng::fill_normals' layout).
var<private> nrm_cache: vec4<real>;

fn next_normal(n: u32, first: bool) -> real {
    if (first || n % 4u == 0u) {
        nrm_cache = rng_normals4(n / 4u, 2u);
    }
    return nrm_cache[n % 4u];
}

// Normal number `n` of the current (replica, step) counter, in any order.
fn normal_at(n: u32) -> real {
    return rng_normals4(n / 4u, 2u)[n % 4u];
}

// The Brownian increment of sample i on substep `sub`: √dt · normal(sub·N + i), or on a
// coarse level (ops::coarsen_normals) √dt · Σ_{j<C} normal((sub·C + j)·N + i) / √C.
fn increment(sub: u32, i: u32) -> real {
    if (COARSEN == 1u) {
        return SQRT_DT * next_normal(sub * N + i, i == 0u);
    }
    var s = real(0.0);
    for (var j = 0u; j < COARSEN; j++) {
        s += normal_at((sub * COARSEN + j) * N + i);
    }
    return SQRT_DT * (s * INV_SQRT_COARSEN);
}

// As full_grad, and the EM noise sums of substep `sub` (ops::Replica::em) into
// scratch T: Σ_i z_i x_i (Pesme) or −Σ_i e_i z_i x_i, z_i = increment(sub, i).
// Returns (Σ_i z_i, Σ_i e_i²).
fn noisy_grad(sub: u32) -> vec2<real> {
    for (var j = 0u; j < D; j++) {
        set_sc(OFF_G + j, real(0.0));
        set_sc(OFF_T + j, real(0.0));
    }
    var s = real(0.0);
    var sq = real(0.0);
    for (var i = 0u; i < N; i++) {
        let e = residual(i);
        let z = increment(sub, i);
        s += z;
        sq += e * e;
        var c = -e * z;
        if (PESME) {
            c = z;
        }
        let row = i * D;
        for (var j = 0u; j < D; j++) {
            let x = xdata[row + j];
            set_sc(OFF_G + j, sc(OFF_G + j) + (e * x));
            set_sc(OFF_T + j, sc(OFF_T + j) + (c * x));
        }
    }
    for (var j = 0u; j < D; j++) {
        set_sc(OFF_G + j, sc(OFF_G + j) * (INV_N));
    }
    return vec2<real>(s, sq);
}

// Q = (Σ_i ℓ''_i x_i x_iᵀ) J Jᵀ g (N × the data part of the Hessian-vector product
// ∇²L ∇L, ops::hvp), with JV = J Jᵀ g in scratch on the way; β in scratch.
fn hvp_pass() {
    for (var j = 0u; j < D; j++) {
        let w = wpair(j);
        let v = net_pull(w, sc(OFF_G + j));
        set_sc(OFF_JV + j, net_push(w, v));
    }
    hvp_data();
}

// Q = Σ_i ℓ''_i x_i (x_iᵀ JV), JV = J v in scratch; β in scratch.
fn hvp_data() {
    for (var j = 0u; j < D; j++) {
        set_sc(OFF_Q + j, real(0.0));
    }
    for (var i = 0u; i < N; i++) {
        let row = i * D;
        var s = real(0.0);
        for (var j = 0u; j < D; j++) {
            s += xdata[row + j] * sc(OFF_JV + j);
        }
        if (LOSS != 0u) {
            s *= loss_curvature(margin(i));
        }
        for (var j = 0u; j < D; j++) {
            set_sc(OFF_Q + j, sc(OFF_Q + j) + (s * xdata[row + j]));
        }
    }
}

// Drift pair of feature j at w (ops::Replica::drift): −Jᵀg, or for the modified
// dynamics −(Jᵀg + (η/2)(Jᵀ q + curv(g, Jᵀg))). Needs G (and Q) in scratch.
fn drift_pair(j: u32, w: vec2<real>) -> vec2<real> {
    let g = sc(OFF_G + j);
    var v = net_pull(w, g);
    if (MODIFIED) {
        let q = sc(OFF_Q + j) * INV_N;
        let h = net_pull(w, q) + net_curv(g, v);
        v += HALF_ETA * h;
    }
    return -v;
}

// ---- the dynamics ----

// gd (x ← x − η ∇L), sgd (minibatch of B) and msgd (sgd's minibatch, heavy ball), with
// the Gain when tracked.
fn discrete_step(k: u32, replica: u32) {
    if (DENSE) {
        dl_rows(false, 0u);
        if (FULL) {
            full_grad();
            dense_discrete_update();
            return;
        }
    }
    if (FULL) {
        store_beta();
        full_grad();
        for (var j = 0u; j < D; j++) {
            let g = sc(OFF_G + j);
            update_discrete(j, g);
        }
        return;
    }
    var idx: array<u32, B>;
    var res: array<real, B>;
    var bits = vec4<u32>(0u);
    for (var s = 0u; s < B; s++) {
        var i = 0u;
        // Minibatch indices: shaders/data/sampling.wgsl (one Philox block per 4
        // draws with replacement).
        if (EPOCHS) {
            i = sample_epoch(replica, k, s, B, N, STREAM);
        } else {
            if (s % 4u == 0u) {
                bits = philox4x32_10(vec4<u32>(replica, k, s / 4u, STREAM), KEY);
            }
            i = sample_below(bits[s % 4u], N);
        }
        idx[s] = i;
        var m = real(0.0);
        let row = i * D;
        for (var j = 0u; j < D; j++) {
            m += xdata[row + j] * beta_j(j);
        }
        res[s] = loss_slope(m, label(i));
    }
    for (var j = 0u; j < D; j++) {
        var g = real(0.0);
        for (var s = 0u; s < B; s++) {
            g += res[s] * xdata[idx[s] * D + j];
        }
        if (DENSE) {
            set_sc(OFF_G + j, g * INV_B);
        } else {
            update_discrete(j, g * INV_B);
        }
    }
    if (DENSE) {
        dense_discrete_update();
    }
}

// β_j of the current w: computed per feature, or (DENSE) read from scratch.
fn beta_j(j: u32) -> real {
    if (DENSE) {
        return sc(OFF_BETA + j);
    }
    return net_beta(wpair(j));
}

fn update_discrete(j: u32, g: real) {
    if (TRACK_GAIN) {
        set_st(P + j, st(P + j) + (gain_q(ETA * g)));
    }
    let w = wpair(j);
    if (MOMENTUM) {
        // msgd: p ← p − η(γp + ĝ), then w ← w + ηp (ops::Group::discrete).
        let v = heavy_ball2(mpair(j), net_pull(w, g), ETA);
        set_mpair(j, v);
        set_wpair(j, w + v * ETA);
        return;
    }
    set_wpair(j, w - ETA * net_pull(w, g));
}

// One RK4 substep of size DT (ops::Replica::rk4); the stage points live in `state`,
// the base point and the weighted sum of stage slopes in scratch W0, ACC.
fn rk4_substep() {
    if (DENSE) {
        dense_rk4_substep();
        return;
    }
    for (var j = 0u; j < D; j++) {
        set_spair(OFF_W0, j, wpair(j));
    }
    for (var st = 0u; st < 4u; st++) {
        store_beta();
        full_grad();
        if (MODIFIED) {
            hvp_pass();
        }
        for (var j = 0u; j < D; j++) {
            let kk = drift_pair(j, wpair(j));
            let w0 = spair(OFF_W0, j);
            let acc = spair(OFF_ACC, j);
            // Both parameters of feature j through `rk4_coord` (shaders/solver/rk4.wgsl).
            let a = rk4_coord(st, w0.x, acc.x, kk.x, DT, DT6);
            let b = rk4_coord(st, w0.y, acc.y, kk.y, DT, DT6);
            set_wpair(j, vec2<real>(a.next, b.next));
            set_spair(OFF_ACC, j, vec2<real>(a.sum, b.sum));
        }
    }
}

// One Euler–Maruyama substep (ops::Replica::em) with the N Brownian increments of
// substep `sub`.
fn em_substep(sub: u32) {
    if (DENSE) {
        dense_em_substep(sub);
        return;
    }
    store_beta();
    let ssq = noisy_grad(sub);
    if (MODIFIED) {
        hvp_pass();
    }
    var scale = NOISE_SCALE;
    if (PESME) {
        // sqrt(2ηL/(bN)), L = Σe²/(2N).
        scale = sqrt(PESME_C * real(0.5) * ssq.y * INV_N);
    }
    for (var j = 0u; j < D; j++) {
        let w = wpair(j);
        let drift = drift_pair(j, w);
        var t = sc(OFF_T + j);
        if (!PESME) {
            t += sc(OFF_G + j) * ssq.x;
        }
        if (MOMENTUM) {
            // msme1, symplectic: the momentum first (force = the drift), then w with it.
            let v = heavy_ball2(mpair(j), -drift, DT) + scale * net_pull(w, t);
            set_mpair(j, v);
            set_wpair(j, w + v * DT);
            continue;
        }
        set_wpair(j, w + drift * DT + scale * net_pull(w, t));
    }
}

fn train_step(k: u32, replica: u32) {
    if (DISCRETE) {
        discrete_step(k, replica);
    } else if (ODE) {
        for (var s = 0u; s < SUBSTEPS; s++) {
            rk4_substep();
        }
    } else {
        rng_begin(KEY, replica, k, STREAM);
        for (var s = 0u; s < SUBSTEPS; s++) {
            em_substep(s);
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= params.n_valid) {
        return;
    }
    lane = gid.x;
    let replica = params.base + gid.x;
    if (PRIV) {
        for (var c = 0u; c < ROW; c++) {
            prow[c] = state[at(c)];
        }
    }
    for (var k = params.k0; k < params.k1; k++) {
        train_step(k, replica);
    }
    if (PRIV) {
        for (var c = 0u; c < ROW; c++) {
            state[at(c)] = prow[c];
        }
    }
}

// Per-replica labels y_i = y_clean_i + σ ε_i, ε_i = data::label_noise(key, r, i):
// lane i % 4 of Box–Muller on philox((r, i / 4, 0, TAG_REPLICA_LABELS)).
@compute @workgroup_size(WG)
fn labels(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= params.n_valid) {
        return;
    }
    lane = gid.x;
    let replica = params.base + gid.x;
    for (var q = 0u; q < N; q += 4u) {
        let bits = philox4x32_10(vec4<u32>(replica, q / 4u, 0u, TAG_LABELS), KEY);
        let z = vec4<real>(box_muller_bits(bits.x, bits.y), box_muller_bits(bits.z, bits.w));
        for (var l = 0u; l < 4u; l++) {
            if (q + l < N) {
                ylab[at(q + l)] = ydata[q + l] + NOISE_STD * z[l];
            }
        }
    }
}
