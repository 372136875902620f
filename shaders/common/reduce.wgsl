// Workgroup tree reduction of the per-replica checkpoint contributions
// (count, Σ(v − shift), Σ(v − shift)², Σe, Σe²) per observable: 6 barriers for 64
// invocations. Must be called from uniform control flow.

const RED_W: u32 = N_OBS * 5u;
var<workgroup> red: array<array<real, RED_W>, 64>;

fn reduce_workgroup(lid: u32) {
    for (var s = 32u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            for (var q = 0u; q < RED_W; q++) {
                red[lid][q] += red[lid + s][q];
            }
        }
    }
    workgroupBarrier();
}
