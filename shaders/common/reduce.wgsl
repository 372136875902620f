// Workgroup reduction of the per-replica checkpoint contributions
// (count, Σ(v − shift), Σ(v − shift)², Σe, Σe²) per statistic, written to the
// group's partial. The sums are the pairwise tree (lid + WG/2, …, + 1), but after a
// single barrier invocation q evaluates column q's tree alone: on llvmpipe each
// barrier is a switch of all WG invocations, and log2(WG) of them cost more than a
// whole sgd step; on a GPU it is WG − 1 adds per column, once per checkpoint. Same
// sums, same order, as the tree. Must be called from uniform control flow.

const RED_W: u32 = N_STAT * 5u;
var<workgroup> red: array<array<real, RED_W>, WG>;

fn reduce_workgroup(lid: u32, group: u32) {
    workgroupBarrier();
    for (var q = lid; q < RED_W; q += WG) {
        for (var s = WG / 2u; s > 0u; s = s >> 1u) {
            for (var i = 0u; i < s; i++) {
                red[i][q] += red[i + s][q];
            }
        }
        partials[group * RED_W + q] = red[0][q];
    }
}
