// gf / mgf (twin of `path::ode_step`): RK4 on the drift, SUBSTEPS >> l steps of size
// DT_LEVEL[l] per SGD step on level l (fine and coarse).

fn rk4(x: vec_d, h: real) -> vec_d {
    let k1 = drift(x);
    var y: vec_d;
    for (var i = 0u; i < D; i++) {
        y[i] = x[i] + real(0.5) * h * k1[i];
    }
    let k2 = drift(y);
    for (var i = 0u; i < D; i++) {
        y[i] = x[i] + real(0.5) * h * k2[i];
    }
    let k3 = drift(y);
    for (var i = 0u; i < D; i++) {
        y[i] = x[i] + h * k3[i];
    }
    let k4 = drift(y);
    var o = x;
    for (var i = 0u; i < D; i++) {
        o[i] += h / real(6.0) * (k1[i] + real(2.0) * k2[i] + real(2.0) * k3[i] + k4[i]);
    }
    return o;
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
