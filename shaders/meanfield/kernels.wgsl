// Mean-field kernels (twin of src/meanfield/cpu.rs): M replicas × n neurons, one drift
// evaluation = prep → forward → resid → update [→ apply_parts] → tick, recorded for
// many steps in one command buffer. The order-2 drift (MODIFIED: mgf, smf2) inserts
// the three passes of cpu::add_correction after resid: grad [→ grad_parts] (g_k, an
// update without applying), rho_forward → rho_fold (ρ_j, a forward/resid pair reducing
// ∇Φ_j(z_l)·g_l instead of a_l σ(w_l·θ_j)); update then adds the correction. Needs the composed header (meanfield::gpu::compose:
// `alias real`, sizes, mode flags, step constants), math, Philox and two_layer.wgsl.
//
// Layout: coordinate c (0 = a, 1 + i = w_i) of neuron k of chunk replica rl at
// (rl·PER + c)·NN + k, so a workgroup of consecutive neurons loads consecutive words.
// A workgroup covers one tile of WG neurons of one replica (workgroup_id.y) and one
// slice of SC samples (workgroup_id.z); within it every invocation reads the same θ_j,
// so sample loads are broadcasts, never per-lane gathers.
//
// ctl = [step k, evaluation e within the step, global index of the chunk's first
// replica, -]: advanced on the device by `tick`, so no host round trip per step.

@group(0) @binding(0) var<storage, read_write> ctl: array<u32>;
@group(0) @binding(1) var<storage, read_write> z: array<real>;
// RK4 stage point (the state drifts are evaluated at) and slope accumulator; msgd and
// msme1 keep their momenta in acc.
@group(0) @binding(2) var<storage, read_write> stg: array<real>;
@group(0) @binding(3) var<storage, read_write> acc: array<real>;
// Sample rows and labels: the data set, the test set, or per-replica streamed samples.
@group(0) @binding(4) var<storage, read_write> xs: array<real>;
@group(0) @binding(5) var<storage, read_write> ys: array<real>;
// Per-replica sample indices (sgd on a data set) and weights c_j (smf1).
@group(0) @binding(6) var<storage, read_write> idx: array<u32>;
@group(0) @binding(7) var<storage, read_write> cw: array<real>;
// Per-tile partial sums of f_n(θ_j): [rl][tile][j].
@group(0) @binding(8) var<storage, read_write> part: array<real>;
// c_j r_j (training) or r_j (test set): [rl][j].
@group(0) @binding(9) var<storage, read_write> gres: array<real>;
// Per-slice drifts when the samples are split (SCH > 1): [rl][slice][c][k].
@group(0) @binding(10) var<storage, read_write> dpart: array<real>;
// Teacher: a*_m (MT), then w*_m (MT × D).
@group(0) @binding(11) var<storage, read_write> teach: array<real>;
// Per-tile (Σa², Σ|w|², Σφ, #coordinates beyond the bound or non-finite).
@group(0) @binding(12) var<storage, read_write> tstat: array<vec4<real>>;
// Per replica: risk, ⟨a²⟩, ⟨|w|²⟩, ⟨φ⟩, bad count.
@group(0) @binding(13) var<storage, read_write> obs: array<real>;
// Order-2 drift (MODIFIED), per replica (stride AUXS): r_j (NS), ρ_j (NS), then
// g = ∇F at the evaluated neurons, [c][k] (PER × NN).
@group(0) @binding(14) var<storage, read_write> aux: array<real>;

fn zi(rl: u32, c: u32, k: u32) -> u32 {
    return (rl * PER + c) * NN + k;
}

fn ri(rl: u32, j: u32) -> u32 {
    return rl * AUXS + j;
}

fn rhoi(rl: u32, j: u32) -> u32 {
    return rl * AUXS + NS + j;
}

fn gi(rl: u32, c: u32, k: u32) -> u32 {
    return rl * AUXS + 2u * NS + c * NN + k;
}

// Neurons the drift is evaluated at: the RK4 stage point, else the state.
fn zload(i: u32) -> real {
    if (READ_STG) {
        return stg[i];
    }
    return z[i];
}

// Offset of sample j's row in xs.
fn row(rl: u32, j: u32) -> u32 {
    if (XMODE == 1u) {
        return (rl * NS + j) * D;
    }
    if (XMODE == 2u) {
        return idx[rl * NS + j] * D;
    }
    return j * D;
}

fn label(rl: u32, j: u32) -> real {
    if (XMODE == 1u) {
        return ys[rl * NS + j];
    }
    if (XMODE == 2u) {
        return ys[idx[rl * NS + j]];
    }
    return ys[j];
}

fn weight(rl: u32, j: u32) -> real {
    if (CMODE == 1u) {
        return cw[rl * NS + j];
    }
    return C0;
}

fn normals4(ctr: vec4<u32>) -> vec4<real> {
    let bits = philox4x32_10(ctr, KEY);
    return vec4<real>(box_muller_bits(bits.x, bits.y), box_muller_bits(bits.z, bits.w));
}

// ---- initial neurons (model::init_neurons): normal c of neuron k is lane c % 4 of
// block (replica, k, c / 4, TAG_INIT).
@compute @workgroup_size(WG)
fn init(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let rl = wg.y;
    let k = wg.x * WG + t;
    if (k >= NN) {
        return;
    }
    let r = ctl[2] + rl;
    for (var q = 0u; q * 4u < PER; q++) {
        let nv = normals4(vec4<u32>(r, k, q, TAG_INIT));
        for (var l = 0u; l < 4u; l++) {
            let c = 4u * q + l;
            if (c < PER) {
                var v = W_STD * nv[l];
                if (c == 0u) {
                    v = A_MEAN + A_STD * nv[l];
                }
                z[zi(rl, c, k)] = v;
                if (RK4) {
                    stg[zi(rl, c, k)] = v;
                }
                if (MOMENTUM) {
                    acc[zi(rl, c, k)] = real(0.0);
                }
            }
        }
    }
}

// ---- prep: the samples of this evaluation (meanfield::fill_batch).

// sgd streaming: sample j takes normals j·PER .. j·PER + D of (replica, k): θ_j, then
// the label noise ε_j; y_j = f*(θ_j) + σ ε_j.
@compute @workgroup_size(WG)
fn prep_stream(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let rl = wg.y;
    let j = wg.x * WG + t;
    if (j >= NS) {
        return;
    }
    let r = ctl[2] + rl;
    let first = j * PER;
    let base = (rl * NS + j) * D;
    var eps = real(0.0);
    for (var q = first / 4u; q <= (first + D) / 4u; q++) {
        let nv = normals4(vec4<u32>(r, ctl[0], q, STREAM));
        for (var l = 0u; l < 4u; l++) {
            let m = 4u * q + l;
            if (m >= first && m < first + D) {
                xs[base + m - first] = nv[l];
            } else if (m == first + D) {
                eps = nv[l];
            }
        }
    }
    var f = real(0.0);
    for (var m = 0u; m < MT; m++) {
        var u = real(0.0);
        for (var i = 0u; i < D; i++) {
            u += teach[MT + m * D + i] * xs[base + i];
        }
        f += teach[m] * act_f(u);
    }
    ys[rl * NS + j] = f * INV_MT + SIGMA * eps;
}

// sgd on a data set: draw j of step k, with replacement or by epochs
// (shaders/data/sampling.wgsl; NS = the batch b here).
@compute @workgroup_size(WG)
fn prep_index(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let rl = wg.y;
    let j = wg.x * WG + t;
    if (j >= NS) {
        return;
    }
    idx[rl * NS + j] = sample_index(ctl[2] + rl, ctl[0], j, NS, NDATA, STREAM);
}

var<workgroup> shr: array<real, RWG>;
var<workgroup> sh4r: array<vec4<real>, RWG>;

// smf1: c_i = W0 + NOISE_SCALE (ξ_i − ξ̄) (`MfJob::noise_weights`: dt/N and
// sqrt(η dt/(bN)); msme1 the same per unit time), ξ = normals 0..N of (replica,
// k·SUB_FINE + e): one workgroup per replica, ξ̄ by a tree reduction. A coarse level
// (COARSEN = c > 1, `meanfield::set_normals`) sums fine substeps ec … ec+c−1 over √c.
@compute @workgroup_size(RWG)
fn prep_noise(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let rl = wg.y;
    let r = ctl[2] + rl;
    let step = ctl[0] * SUB_FINE + ctl[1] * COARSEN;
    var s = real(0.0);
    for (var q = t; q * 4u < NS; q += RWG) {
        var nv = normals4(vec4<u32>(r, step, q, STREAM));
        if (COARSEN > 1u) {
            for (var j = 1u; j < COARSEN; j++) {
                nv += normals4(vec4<u32>(r, step + j, q, STREAM));
            }
            nv *= INV_SQRT_COARSEN;
        }
        for (var l = 0u; l < 4u; l++) {
            let i = 4u * q + l;
            if (i < NS) {
                cw[rl * NS + i] = nv[l];
                s += nv[l];
            }
        }
    }
    shr[t] = s;
    workgroupBarrier();
    for (var h = RWG / 2u; h > 0u; h >>= 1u) {
        if (t < h) {
            shr[t] += shr[t + h];
        }
        workgroupBarrier();
    }
    let mean = shr[0] * INV_NS;
    for (var i = t; i < NS; i += RWG) {
        cw[rl * NS + i] = W0 + NOISE_SCALE * (cw[rl * NS + i] - mean);
    }
}

// ---- forward: part[rl][tile][j] = Σ_{k in tile} a_k σ(w_k·θ_j) for the slice's
// samples, G samples at a time: every invocation writes its G values to sh (padded rows,
// so the strided reads below hit distinct banks), then WG/G invocations per sample add
// G values each and G invocations add those WG/G partials: 3 barriers per G samples.
// The test-set variant (TEST) also sums the tile's a², |w|², φ and bad coordinates.
var<workgroup> sh: array<real, SH>;
var<workgroup> sh4: array<vec4<real>, WG>;
var<private> wv: array<real, D>;
var<private> gv: array<real, D>;

// rho_forward: the same reduction of ∇Φ_j(z_k)·g_k = σ(u) g_a + a σ'(u) θ_j·g_w.
@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    reduce_tile(wg, t, false);
}

@compute @workgroup_size(WG)
fn rho_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    reduce_tile(wg, t, true);
}

fn reduce_tile(wg: vec3<u32>, t: u32, rho: bool) {
    let tile = wg.x;
    let rl = wg.y;
    let k = tile * WG + t;
    let live = k < NN;
    var a = real(0.0);
    var ga = real(0.0);
    if (live) {
        a = zload(zi(rl, 0u, k));
        for (var i = 0u; i < D; i++) {
            wv[i] = zload(zi(rl, 1u + i, k));
        }
        if (rho) {
            ga = aux[gi(rl, 0u, k)];
            for (var i = 0u; i < D; i++) {
                gv[i] = aux[gi(rl, 1u + i, k)];
            }
        }
    }
    if (TEST && !rho && wg.z == 0u) {
        var st = vec4<real>(real(0.0));
        if (live) {
            var w2 = real(0.0);
            var bad = select(real(0.0), real(1.0), !(abs(a) <= BOUND));
            for (var i = 0u; i < D; i++) {
                w2 += wv[i] * wv[i];
                bad += select(real(0.0), real(1.0), !(abs(wv[i]) <= BOUND));
            }
            st = vec4<real>(a * a, w2, test_fn(a, wv[0], w2), bad);
        }
        sh4[t] = st;
        workgroupBarrier();
        for (var h = WG / 2u; h > 0u; h >>= 1u) {
            if (t < h) {
                sh4[t] += sh4[t + h];
            }
            workgroupBarrier();
        }
        if (t == 0u) {
            tstat[rl * TILES + tile] = sh4[0];
        }
    }
    let j1 = min(wg.z * SC + SC, NS);
    let q = t % G;
    let p = t / G;
    for (var g0 = wg.z * SC; g0 < j1; g0 += G) {
        let m = min(G, j1 - g0);
        for (var s = 0u; s < m; s++) {
            var v = real(0.0);
            if (live && rho) {
                let r = row(rl, g0 + s);
                var u = real(0.0);
                var tg = real(0.0);
                for (var i = 0u; i < D; i++) {
                    let x = xs[r + i];
                    u += wv[i] * x;
                    tg += gv[i] * x;
                }
                let fd = act_fdf(u);
                v = fd.x * ga + a * fd.y * tg;
            } else if (live) {
                let r = row(rl, g0 + s);
                var u = real(0.0);
                for (var i = 0u; i < D; i++) {
                    u += wv[i] * xs[r + i];
                }
                v = a * act_f(u);
            }
            sh[s * (WG + 1u) + t] = v;
        }
        workgroupBarrier();
        if (q < m) {
            var s1 = real(0.0);
            for (var l = 0u; l < G; l++) {
                s1 += sh[q * (WG + 1u) + p * G + l];
            }
            sh[G * (WG + 1u) + p * G + q] = s1;
        }
        workgroupBarrier();
        if (t < m) {
            var s2 = real(0.0);
            for (var l = 0u; l < WG / G; l++) {
                s2 += sh[G * (WG + 1u) + l * G + t];
            }
            part[(rl * TILES + tile) * NS + g0 + t] = s2;
        }
        workgroupBarrier();
    }
}

// ---- resid: gres[rl][j] = c_j (Σ_tiles part / n − y_j) (c_j = 1 on the test set),
// and r_j itself into aux when MODIFIED; rho_fold: ρ_j = Σ_tiles part / n into aux.
// A workgroup covers GR samples; PR = RWG / GR invocations per sample add every PR-th
// tile, then one adds their PR partials.
fn fold_tiles(wg: vec3<u32>, t: u32) -> real {
    let rl = wg.y;
    let q = t % GR;
    let p = t / GR;
    let j = wg.x * GR + q;
    var s = real(0.0);
    if (j < NS) {
        for (var tl = p; tl < TILES; tl += PR) {
            s += part[(rl * TILES + tl) * NS + j];
        }
    }
    shr[t] = s;
    workgroupBarrier();
    var f = real(0.0);
    if (p == 0u) {
        for (var l = 0u; l < PR; l++) {
            f += shr[l * GR + q];
        }
    }
    return f * INV_N;
}

@compute @workgroup_size(RWG)
fn resid(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let f = fold_tiles(wg, t);
    let rl = wg.y;
    let j = wg.x * GR + t % GR;
    if (t < GR && j < NS) {
        let r = f - label(rl, j);
        gres[rl * NS + j] = weight(rl, j) * r;
        if (MODIFIED) {
            aux[ri(rl, j)] = r;
        }
    }
}

@compute @workgroup_size(RWG)
fn rho_fold(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let f = fold_tiles(wg, t);
    let j = wg.x * GR + t % GR;
    if (t < GR && j < NS) {
        aux[rhoi(wg.y, j)] = f;
    }
}

// ---- update: Δz_k = −Σ_j c_j r_j ∇_z Φ(θ_j, z_k) over the slice's samples, applied
// at once (one slice) or stored for apply_parts.
fn apply(rl: u32, c: u32, k: u32, delta: real) {
    let i = zi(rl, c, k);
    if (MOMENTUM) {
        // msgd, msme1 (cpu::Net::step): delta is the force −g; the momentum lives in
        // acc (RK4's accumulator, which these dynamics do not use).
        let p = heavy_ball(acc[i], -delta, GAMMA, H);
        acc[i] = p;
        z[i] = z[i] + p * H;
    } else if (RK4) {
        // solver::rk4 through `rk4_coord`, one dispatch per stage (ctl[1] counts them):
        // the stage point in stg, the weighted sum of slopes in acc.
        let st = ctl[1] % 4u;
        let next = rk4_coord(st, z[i], acc[i], delta, H, H6);
        acc[i] = next.sum;
        stg[i] = next.next;
        if (st == 3u) {
            z[i] = next.next;
        }
    } else {
        z[i] = z[i] + delta;
    }
}

var<private> dw: array<real, D>;

// Σ_j over the slice's samples of w_j ∇_z Φ(θ_j, z_k): the a-part returned, the w-part
// in dw. grad: w_j = r_j / N (g_k = ∇_{z_k} F); else w_j = c_j r_j, plus, when MODIFIED,
// the correction (η/2)(H_F g)_k scaled by the step (CORR = (η/2)·(dt or 1)/N):
// Σ_j [ρ_j ∇Φ_j(z_k) + r_j ∇²Φ_j(z_k) g_k] with
// ∇²Φ v = (σ' θ·v_w, σ' v_a θ + a σ'' (θ·v_w) θ), as cpu::add_correction.
fn drift_sum(rl: u32, k: u32, sl: u32, gmode: bool) -> real {
    let corr = MODIFIED && !gmode;
    let a = zload(zi(rl, 0u, k));
    var ga = real(0.0);
    for (var i = 0u; i < D; i++) {
        wv[i] = zload(zi(rl, 1u + i, k));
        dw[i] = real(0.0);
    }
    if (corr) {
        ga = aux[gi(rl, 0u, k)];
        for (var i = 0u; i < D; i++) {
            gv[i] = aux[gi(rl, 1u + i, k)];
        }
    }
    var da = real(0.0);
    let j1 = min(sl * SC + SC, NS);
    for (var j = sl * SC; j < j1; j++) {
        let r = row(rl, j);
        if (corr) {
            var u = real(0.0);
            var tg = real(0.0);
            for (var i = 0u; i < D; i++) {
                let x = xs[r + i];
                u += wv[i] * x;
                tg += gv[i] * x;
            }
            let f = act_fdd(u);
            // Coefficients of ∇Φ_j (drift and ρ_j) and of r_j ∇²Φ_j g_k.
            let p = gres[rl * NS + j] + CORR * aux[rhoi(rl, j)];
            let q = CORR * aux[ri(rl, j)];
            da += p * f.x + q * f.y * tg;
            let gw = p * a * f.y + q * (f.y * ga + a * f.z * tg);
            for (var i = 0u; i < D; i++) {
                dw[i] += gw * xs[r + i];
            }
        } else {
            var u = real(0.0);
            for (var i = 0u; i < D; i++) {
                u += wv[i] * xs[r + i];
            }
            let fd = act_fdf(u);
            var g = gres[rl * NS + j];
            if (gmode) {
                g = aux[ri(rl, j)] * INV_NS;
            }
            da += g * fd.x;
            let gw = g * a * fd.y;
            for (var i = 0u; i < D; i++) {
                dw[i] += gw * xs[r + i];
            }
        }
    }
    return da;
}

// Coordinate c of neuron k's total: applied (update) or stored as g (grad).
fn put(rl: u32, c: u32, k: u32, v: real, gmode: bool) {
    if (gmode) {
        aux[gi(rl, c, k)] = v;
    } else {
        apply(rl, c, k, v);
    }
}

// The slice's sum `sign · (da, dw)`: put at once (one slice) or stored for the parts
// kernel.
fn finish(rl: u32, sl: u32, k: u32, da: real, sign: real, gmode: bool) {
    if (SCH == 1u) {
        put(rl, 0u, k, sign * da, gmode);
        for (var i = 0u; i < D; i++) {
            put(rl, 1u + i, k, sign * dw[i], gmode);
        }
    } else {
        let b = (rl * SCH + sl) * PER;
        dpart[b * NN + k] = sign * da;
        for (var i = 0u; i < D; i++) {
            dpart[(b + 1u + i) * NN + k] = sign * dw[i];
        }
    }
}

@compute @workgroup_size(WG)
fn update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let k = wg.x * WG + t;
    if (k < NN) {
        finish(wg.y, wg.z, k, drift_sum(wg.y, k, wg.z, false), real(-1.0), false);
    }
}

// g_k = (1/N) Σ_j r_j ∇Φ_j(z_k) (MODIFIED).
@compute @workgroup_size(WG)
fn grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let k = wg.x * WG + t;
    if (k < NN) {
        finish(wg.y, wg.z, k, drift_sum(wg.y, k, wg.z, true), real(1.0), true);
    }
}

fn sum_parts(wg: vec3<u32>, t: u32, gmode: bool) {
    let rl = wg.y;
    let k = wg.x * WG + t;
    if (k >= NN) {
        return;
    }
    for (var c = 0u; c < PER; c++) {
        var s = real(0.0);
        for (var sl = 0u; sl < SCH; sl++) {
            s += dpart[((rl * SCH + sl) * PER + c) * NN + k];
        }
        put(rl, c, k, s, gmode);
    }
}

@compute @workgroup_size(WG)
fn apply_parts(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    sum_parts(wg, t, false);
}

@compute @workgroup_size(WG)
fn grad_parts(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    sum_parts(wg, t, true);
}

// ---- tick: next evaluation (e) / step (k).
@compute @workgroup_size(1)
fn tick() {
    let e = ctl[1] + 1u;
    if (e == EVALS) {
        ctl[0] = ctl[0] + 1u;
        ctl[1] = 0u;
    } else {
        ctl[1] = e;
    }
}

// ---- observables of the test-set pass: one workgroup per replica folds the test
// residuals (from resid) and the per-tile sums (from forward).
@compute @workgroup_size(RWG)
fn observe(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let rl = wg.y;
    var s = real(0.0);
    for (var j = t; j < NS; j += RWG) {
        let r = gres[rl * NS + j];
        s += r * r;
    }
    var st = vec4<real>(real(0.0));
    for (var tl = t; tl < TILES; tl += RWG) {
        st += tstat[rl * TILES + tl];
    }
    shr[t] = s;
    sh4r[t] = st;
    workgroupBarrier();
    for (var h = RWG / 2u; h > 0u; h >>= 1u) {
        if (t < h) {
            shr[t] += shr[t + h];
            sh4r[t] += sh4r[t + h];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let o = rl * 8u;
        obs[o] = real(0.5) * shr[0] * INV_NS;
        obs[o + 1u] = sh4r[0].x * INV_N;
        obs[o + 2u] = sh4r[0].y * INV_N;
        obs[o + 3u] = sh4r[0].z * INV_N;
        obs[o + 4u] = sh4r[0].w;
    }
}
