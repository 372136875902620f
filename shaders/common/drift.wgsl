// Drift of gf/sme1/smf1 (MODIFIED = false) and mgf/sme2/smf2 (MODIFIED = true, c = η/2):
// −∇(R + (η/4)|∇R|²) = −(∇R + c H∇R)  (twin of `model::drift`).

fn drift(x: vec_d) -> vec_d {
    let g = grad(x);
    var out: vec_d;
    if (MODIFIED) {
        let hg = hvp(x, g);
        for (var i = 0u; i < D; i++) {
            out[i] = -(g[i] + DRIFT_C * hg[i]);
        }
    } else {
        for (var i = 0u; i < D; i++) {
            out[i] = -g[i];
        }
    }
    return out;
}
