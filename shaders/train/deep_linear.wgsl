// The WGSL twin of `train::deep_linear::DeepLinear` (src/train/deep_linear.rs), in its
// order of operations: β = W_L ⋯ W_1, the layers row-major in w (W_1 first), with
// the partial products a_i = W_L ⋯ W_{i+1} (rows, a_L = 1, a_0 = β) and
// c_i = W_i ⋯ W_1 g (columns, c_0 = g). The Jacobian is dense, so train.wgsl's DENSE
// path works on whole vectors in scratch: `dl_rows` once per point w (and direction
// v), then `dl_pull` / `dl_curv_add` read the rows it left.
//
// Needs (composed header): D, DL_L (depth), DL_H (width), DL_M = max(D, DL_H), the
// scratch offsets OFF_BETA (a_0), OFF_JV (da_0 = J v), OFF_A (a_1 … a_{L−1}, DL_H
// each), OFF_DA (their derivatives), OFF_COL (four columns of DL_M: c, dc and the
// next of each), and train.wgsl's accessors st (w) and sc / set_sc (scratch).

fn dl_rows_of(i: u32) -> u32 {
    if (i + 1u == DL_L) {
        return 1u;
    }
    return DL_H;
}

fn dl_cols_of(i: u32) -> u32 {
    if (i == 0u) {
        return D;
    }
    return DL_H;
}

fn dl_off(i: u32) -> u32 {
    if (i == 0u) {
        return 0u;
    }
    return DL_H * D + (i - 1u) * DL_H * DL_H;
}

// Scratch offset of row a_i (i < L; a_0 is β).
fn dl_a(i: u32) -> u32 {
    if (i == 0u) {
        return OFF_BETA;
    }
    return OFF_A + (i - 1u) * DL_H;
}

// Scratch offset of da_i (i < L; da_0 is J v).
fn dl_da(i: u32) -> u32 {
    if (i == 0u) {
        return OFF_JV;
    }
    return OFF_DA + (i - 1u) * DL_H;
}

// Entry j of a_i (a_L = 1).
fn dl_a_at(i: u32, j: u32) -> real {
    if (i == DL_L) {
        return real(1.0);
    }
    return sc(dl_a(i) + j);
}

// Entry j of da_i (da_L = 0).
fn dl_da_at(i: u32, j: u32) -> real {
    if (i == DL_L) {
        return real(0.0);
    }
    return sc(dl_da(i) + j);
}

// The rows a_{L−1} … a_0 at w (state), and with `with_v` their derivatives along the
// direction v at scratch offset `v` (DeepLinear::rows_down): a_i = a_{i+1} W_{i+1},
// da_i = da_{i+1} W_{i+1} + a_{i+1} V_{i+1}.
fn dl_rows(with_v: bool, v: u32) {
    for (var ii = 0u; ii < DL_L; ii++) {
        let i = DL_L - 1u - ii;
        let rows = dl_rows_of(i);
        let cols = dl_cols_of(i);
        let off = dl_off(i);
        for (var k = 0u; k < cols; k++) {
            var s = real(0.0);
            var s1 = real(0.0);
            var s2 = real(0.0);
            for (var j = 0u; j < rows; j++) {
                let a = dl_a_at(i + 1u, j);
                s += a * st(off + j * cols + k);
                if (with_v) {
                    s1 += dl_da_at(i + 1u, j) * st(off + j * cols + k);
                    s2 += a * sc(v + off + j * cols + k);
                }
            }
            if (with_v) {
                set_sc(dl_da(i) + k, s1 + s2);
            }
            set_sc(dl_a(i) + k, s);
        }
    }
}

// Column slot q (0 … 3) of the scratch columns.
fn dl_col(q: u32) -> u32 {
    return OFF_COL + q * DL_M;
}

// out ← W_i c (length rows(i)), for the weights of w (`v` = 0xFFFFFFFF) or of the
// direction at scratch offset v; out and c are scratch offsets.
fn dl_times_col(i: u32, v: u32, c: u32, out: u32) {
    let rows = dl_rows_of(i);
    let cols = dl_cols_of(i);
    let off = dl_off(i);
    for (var j = 0u; j < rows; j++) {
        var s = real(0.0);
        for (var k = 0u; k < cols; k++) {
            var wjk = real(0.0);
            if (v == DL_STATE) {
                wjk = st(off + j * cols + k);
            } else {
                wjk = sc(v + off + j * cols + k);
            }
            s += wjk * sc(c + k);
        }
        set_sc(out + j, s);
    }
}

const DL_STATE: u32 = 0xFFFFFFFFu;

// Jᵀ g into scratch `out` (P): on W_i the outer product a_iᵀ c_{i−1}ᵀ
// (DeepLinear::pull). Needs the rows of `dl_rows` at the current w.
fn dl_pull(g: u32, out: u32) {
    for (var k = 0u; k < D; k++) {
        set_sc(dl_col(0u) + k, sc(g + k));
    }
    var cur = 0u;
    for (var i = 0u; i < DL_L; i++) {
        let rows = dl_rows_of(i);
        let cols = dl_cols_of(i);
        let off = dl_off(i);
        for (var j = 0u; j < rows; j++) {
            let a = dl_a_at(i + 1u, j);
            for (var k = 0u; k < cols; k++) {
                set_sc(out + off + j * cols + k, a * sc(dl_col(cur) + k));
            }
        }
        if (i + 1u < DL_L) {
            dl_times_col(i, DL_STATE, dl_col(cur), dl_col(1u - cur));
            cur = 1u - cur;
        }
    }
}

// out (P) += (∂(Jᵀg)/∂w) v: on W_i, da_iᵀ c_{i−1}ᵀ + a_iᵀ dc_{i−1}ᵀ
// (DeepLinear::curv_add). Needs the rows and derivatives of `dl_rows(true, v)`.
// Columns: c in slots 0/1, dc in slots 2/3 (dc_0 = 0).
fn dl_curv_add(g: u32, v: u32, out: u32) {
    for (var k = 0u; k < D; k++) {
        set_sc(dl_col(0u) + k, sc(g + k));
        set_sc(dl_col(2u) + k, real(0.0));
    }
    var cur = 0u;
    for (var i = 0u; i < DL_L; i++) {
        let rows = dl_rows_of(i);
        let cols = dl_cols_of(i);
        let off = dl_off(i);
        let c = dl_col(cur);
        let dc = dl_col(2u + cur);
        for (var j = 0u; j < rows; j++) {
            let da = dl_da_at(i + 1u, j);
            let a = dl_a_at(i + 1u, j);
            for (var k = 0u; k < cols; k++) {
                let o = out + off + j * cols + k;
                let t = sc(o) + da * sc(c + k);
                set_sc(o, t + a * sc(dc + k));
            }
        }
        if (i + 1u < DL_L) {
            let nc = dl_col(1u - cur);
            let ndc = dl_col(3u - cur);
            // next dc = V_i c + W_i dc, then c = W_i c (ndc's first sum goes through nc).
            dl_times_col(i, v, c, ndc);
            dl_times_col(i, DL_STATE, dc, nc);
            for (var j = 0u; j < rows; j++) {
                set_sc(ndc + j, sc(ndc + j) + sc(nc + j));
            }
            dl_times_col(i, DL_STATE, c, nc);
            cur = 1u - cur;
        }
    }
}
