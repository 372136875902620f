// Loop-limit probe, run once per device (`device::probe_loop_limit`). llvmpipe ends an
// invocation's loops after a fixed number of iterations in all (Mesa's
// LP_MAX_TGSI_LOOP_ITERATIONS, one counter for every loop of the invocation) and carries
// on as if they had finished: a kernel that loops longer computes wrong numbers
// without any error. io[0] asks for that many iterations of a loop whose trip count
// only the device knows (so no compiler can fold it), io[1] receives how many ran;
// io[2]/io[3] do the same for a short second loop, to see whether the limit is shared.
// The LCG keeps the body from being folded into a closed form.

@group(0) @binding(0) var<storage, read_write> io: array<u32, 5>;

@compute @workgroup_size(1)
fn loop_probe() {
    var h = 1u;
    var i = 0u;
    loop {
        if (i >= io[0]) {
            break;
        }
        h = h * 1664525u + 1013904223u;
        i++;
    }
    io[1] = i;
    var j = 0u;
    loop {
        if (j >= io[2]) {
            break;
        }
        h = h * 1664525u + 1013904223u;
        j++;
    }
    io[3] = j;
    io[4] = h;
}
