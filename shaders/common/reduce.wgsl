// Workgroup reduction of the per-replica checkpoint contributions
// (count, Σ(v − shift), Σ(v − shift)², Σe, Σe²) per statistic, written to the
// group's partial. The sums are the pairwise tree (lid + WG/2, …, + 1), but after a
// single barrier (per slice, below) invocation q evaluates column q's tree alone: on llvmpipe each
// barrier is a switch of all WG invocations, and log2(WG) of them cost more than a
// whole sgd step; on a GPU it is WG − 1 adds per column, once per checkpoint. Same
// sums, same order, as the tree. Must be called from uniform control flow.
//
// The workgroup array holds RED_COLS columns (what fits every device's workgroup
// memory, `compose::REDUCE_BUDGET`). When the RED_W columns are more (SLICED: n_point's
// pairs, a coupled run's three channels), each lane keeps its contributions in
// `mine` and the columns are reduced RED_COLS at a time; every column's tree is the
// same, so the sums are too.

const RED_W: u32 = N_STAT * 5u;
const SLICED: bool = RED_COLS < RED_W;
var<workgroup> red: array<array<real, RED_COLS>, WG>;
var<private> mine: array<real, MINE>;

// Column q of this lane's contributions.
fn put_column(lid: u32, q: u32, v: real) {
    if (SLICED) {
        mine[min(q, MINE - 1u)] = v;
    } else {
        red[lid][min(q, RED_COLS - 1u)] = v;
    }
}

fn reduce_workgroup(lid: u32, group: u32) {
    for (var c0 = 0u; c0 < RED_W; c0 += RED_COLS) {
        if (SLICED) {
            if (c0 > 0u) {
                workgroupBarrier(); // the previous slice's trees have read `red`
            }
            for (var q = 0u; q < RED_COLS; q++) {
                red[lid][q] = mine[min(c0 + q, MINE - 1u)];
            }
        }
        workgroupBarrier();
        for (var q = lid; q < RED_COLS; q += WG) {
            if (c0 + q < RED_W) {
                for (var s = WG / 2u; s > 0u; s = s >> 1u) {
                    for (var i = 0u; i < s; i++) {
                        red[i][q] += red[i + s][q];
                    }
                }
                partials[group * RED_W + c0 + q] = red[0][q];
            }
        }
    }
}
