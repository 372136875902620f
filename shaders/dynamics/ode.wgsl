// gf / mgf (twin of `path::ode_step`): RK4 on the drift, SUBSTEPS >> l steps of size
// DT_LEVEL[l] per SGD step on level l (fine and coarse).

// One RK4 step (`rk4_coord`, shaders/solver/rk4.wgsl) of the particle at x.
fn rk4(x: vec_d, h: real) -> vec_d {
    let h6 = h / real(6.0);
    var y = x;
    var sum: vec_d;
    for (var st = 0u; st < 4u; st++) {
        let k = drift(y);
        for (var i = 0u; i < D; i++) {
            let c = rk4_coord(st, x[i], sum[i], k[i], h, h6);
            sum[i] = c.sum;
            y[i] = c.next;
        }
    }
    return y;
}

fn step(k: u32, replica: u32) {
    for (var l = 0u; l < LEVELS; l++) {
        let n = SUBSTEPS >> l;
        let h = DT_LEVEL[l];
        for (var p = 0u; p < P; p++) {
            var x = xs[l * P + p];
            for (var s = 0u; s < n; s++) {
                x = rk4(x, h);
            }
            xs[l * P + p] = x;
        }
    }
}
