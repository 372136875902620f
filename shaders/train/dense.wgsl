// The finite-data trainer's dynamics on whole vectors, for a model whose Jacobian is
// dense (deep_linear: its maps are deep_linear.wgsl): train.wgsl's DENSE path. The
// same updates as train.wgsl's per-feature ones (ops::Group), reusing its data passes
// (full_grad, noisy_grad, hvp_data) and accessors; concatenated after it. Jᵀ(·) goes
// into the P-vectors PV / PV2 of scratch, then every parameter is updated in turn
// (as ops::Group does, one coordinate at a time).

// With β and G in scratch (and the rows of dl_rows at w): the drift (ops::Group::drift)
// into PV, −Jᵀg or −(Jᵀg + (η/2)(Jᵀ q/N + curv(g, Jᵀg))).
fn dense_drift_from_grad() {
    dl_pull(OFF_G, OFF_PV);
    if (MODIFIED) {
        dl_rows(true, OFF_PV);
        hvp_data();
        for (var j = 0u; j < D; j++) {
            set_sc(OFF_Q + j, sc(OFF_Q + j) * INV_N);
        }
        dl_pull(OFF_Q, OFF_PV2);
        dl_curv_add(OFF_G, OFF_PV, OFF_PV2);
    }
    for (var c = 0u; c < P; c++) {
        var v = sc(OFF_PV + c);
        if (MODIFIED) {
            v += HALF_ETA * sc(OFF_PV2 + c);
        }
        set_sc(OFF_PV + c, -v);
    }
}

// gd / sgd / msgd with ∇_βL in G: the Gain, then w (and the momentum).
fn dense_discrete_update() {
    if (TRACK_GAIN) {
        for (var j = 0u; j < D; j++) {
            set_st(P + j, st(P + j) + (gain_q(ETA * sc(OFF_G + j))));
        }
    }
    dl_pull(OFF_G, OFF_PV);
    for (var c = 0u; c < P; c++) {
        if (MOMENTUM) {
            let v = heavy_ball(st(OFF_MOM + c), sc(OFF_PV + c), FRICTION, ETA);
            set_st(OFF_MOM + c, v);
            set_st(c, st(c) + v * ETA);
        } else {
            set_st(c, st(c) - ETA * sc(OFF_PV + c));
        }
    }
}

fn dense_rk4_substep() {
    for (var c = 0u; c < P; c++) {
        set_sc(OFF_W0 + c, st(c));
    }
    for (var stage = 0u; stage < 4u; stage++) {
        dl_rows(false, 0u);
        full_grad();
        dense_drift_from_grad();
        for (var c = 0u; c < P; c++) {
            let r = rk4_coord(stage, sc(OFF_W0 + c), sc(OFF_ACC + c), sc(OFF_PV + c), DT, DT6);
            set_st(c, r.next);
            set_sc(OFF_ACC + c, r.sum);
        }
    }
}

fn dense_em_substep(sub: u32) {
    dl_rows(false, 0u);
    let ssq = noisy_grad(sub);
    dense_drift_from_grad();
    var scale = NOISE_SCALE;
    if (PESME) {
        scale = sqrt(PESME_C * real(0.5) * ssq.y * INV_N);
    }
    if (!PESME) {
        for (var j = 0u; j < D; j++) {
            set_sc(OFF_T + j, sc(OFF_T + j) + sc(OFF_G + j) * ssq.x);
        }
    }
    // The rows at w are still dl_rows' (MODIFIED recomputed them at the same w).
    dl_pull(OFF_T, OFF_PV2);
    for (var c = 0u; c < P; c++) {
        let w = st(c);
        let drift = sc(OFF_PV + c);
        let noise = scale * sc(OFF_PV2 + c);
        if (MOMENTUM) {
            let v = heavy_ball(st(OFF_MOM + c), -drift, FRICTION, DT) + noise;
            set_st(OFF_MOM + c, v);
            set_st(c, w + v * DT);
        } else {
            set_st(c, w + drift * DT + noise);
        }
    }
}
